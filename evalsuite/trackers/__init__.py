"""Measurement: per-step timing (CUDA events or wall clock), device sampling (NVML memory,
energy, RSS), repetition statistics (one percentile definition) and the FLOP model.
"""
