"""The run lifecycle: resolve → lock → scenario (generate | profile) → store → score → report,
with the run directory store, its lock, provenance and multi-process sharding.
"""
