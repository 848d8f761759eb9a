"""NAS-Bench-101: cell specs, hashing, the stand-alone network and the TensorFlow-free store."""
from rankbench.nb101.spec import OPS, InvalidSpecError, ModelSpec, hash_spec

__all__ = ["OPS", "InvalidSpecError", "ModelSpec", "hash_spec"]
