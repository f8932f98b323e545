"""The run lifecycle: resolve → lock → scenario (generate | profile | frontier | plan) → store →
score → report, with the run directory store, its lock, provenance, what the sweep scenarios share
(:mod:`evalsuite.engine.sweep`) and multi-process sharding.
"""
