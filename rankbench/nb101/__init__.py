"""NAS-Bench-101: cell specs, hashing, the stand-alone network and the TensorFlow-free store.

``rankbench.nb101.open()`` opens the store (see :mod:`rankbench.nb101.store` for where it is
looked for and its format); ``import_tfrecord`` builds one from the official tfrecord files;
``open_catalogue()`` maps the hash of any of NB101's 423,624 cells to its spec
(:mod:`rankbench.nb101.catalogue`).
"""
from rankbench.nb101.catalogue import Catalogue, UnknownCellError, fill_store_specs, open_catalogue
from rankbench.nb101.importer import ImportSummary, StoreExistsError, import_tfrecord
from rankbench.nb101.spec import OPS, InvalidSpecError, ModelSpec, hash_spec
from rankbench.nb101.store import (
    FIELDS,
    METRICS,
    Coverage,
    MissingDataError,
    NB101Store,
    NotInStoreError,
    default_path,
    open,
)
from rankbench.nb101.tfrecord import CorruptRecordError

__all__ = [
    "OPS", "InvalidSpecError", "ModelSpec", "hash_spec",
    "open", "default_path", "NB101Store", "Coverage", "FIELDS", "METRICS",
    "NotInStoreError", "MissingDataError", "CorruptRecordError",
    "import_tfrecord", "ImportSummary", "StoreExistsError",
    "open_catalogue", "Catalogue", "UnknownCellError", "fill_store_specs",
]
