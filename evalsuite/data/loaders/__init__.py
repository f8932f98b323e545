"""Loaders for datasets users already have on disk: BrushBench, COCO-2014 captions, folder/CSV.

Each loader returns a :class:`~evalsuite.data.cases.Dataset` (the same :class:`~evalsuite.data.cases.Case`
objects as a shipped manifest, and a fingerprint over the loader's index file and every referenced
file) and is registered in :data:`evalsuite.registry.DATASETS`:

==============  =====================================================  ============================
name            layout                                                 location
==============  =====================================================  ============================
``brushbench``  ``mapping_file.json`` + ``images/`` (masks as RLE)     ``brushbench:DIR`` or
                                                                       ``$EVALSUITE_BRUSHBENCH``
``coco2014``    ``captions_val2014.json`` [+ id list, images folder]   ``coco2014:JSON?ids=F&images=D``
                                                                       or ``$EVALSUITE_COCO2014``
``csv``         ``image,mask,prompt[,category,seed,id]`` CSV           ``csv:FILE`` or ``FILE.csv``
``folder``      ``images/`` + ``masks/`` (same stems) + ``prompts.csv`` ``folder:DIR``
==============  =====================================================  ============================
"""

from __future__ import annotations

from evalsuite.data.loaders.brushbench import load_brushbench
from evalsuite.data.loaders.coco import load_coco2014
from evalsuite.data.loaders.common import LoaderNotConfigured
from evalsuite.data.loaders.folder import load_csv, load_folder
from evalsuite.registry import DATASETS

for _name, _fn in (
    ("brushbench", load_brushbench),
    ("coco2014", load_coco2014),
    ("csv", load_csv),
    ("folder", load_folder),
):
    if _name not in DATASETS:
        DATASETS.add(_name, _fn)

__all__ = ["LoaderNotConfigured", "load_brushbench", "load_coco2014", "load_csv", "load_folder"]
