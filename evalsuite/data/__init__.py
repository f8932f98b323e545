"""Cases and datasets: the manifest format and its validation, the dataset registry and loaders,
masks, image IO, and the builder of the shipped sets (``sets/``, package data).
"""
