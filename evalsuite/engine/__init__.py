"""The run lifecycle: resolve → lock → scenario (:mod:`evalsuite.scenarios`) → store → score →
report, with the run directory lock, provenance, determinism and multi-process sharding. The
store itself lives in :mod:`evalsuite.results.store`.
"""
