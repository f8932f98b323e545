"""Cases and datasets: the manifest format and its validation, the dataset registry and loaders,
masks, image IO, and the builders of the shipped sets (``sets/``, package data): ``build.py``
(``smoke``, ``inpaint-core``, ``t2i-core``) and ``build_text.py`` (``text-inpaint``, rendered once
with fonts).
"""
