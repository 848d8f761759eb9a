"""What makes two trainings give the same weights: the compute platform, a portable CPU mode,
and a digest of the weights themselves.

A supernet trained twice with the same config on the same machine is bit-identical. On another
machine it is not: PyTorch dispatches CPU kernels by instruction set (ATen's ``AVX2`` /
``AVX512``, oneDNN's own ISA choice, MKL's code path), and the thread count changes the order
of reductions. Tiny float differences grow over an epoch into a different supernet, and a
ranking measured on it moves as much as between training seeds. Measured on one AMD EPYC
(Zen 4) with torch 2.13 (``bench/bench_dispatch.py``): ATen level alone, oneDNN ISA alone and 1
vs 2 threads each give different weights after 5 quick-preset epochs; MKL's path did not matter
there.

So every run records its :func:`platform` (CPU vendor and model, the ATen level actually
dispatched, oneDNN and MKL settings, torch build, threads, CUDA device); its ``key`` names the
fields that change numbers. A run, score cache or truth made under another key is not reused or
extended silently (:func:`check_same_platform`). ``train.portable`` (:func:`apply_portable`) pins
the dispatch to AVX2, which most x86-64 machines of the last decade have, so that machines with
different vector units compute the same kernels; it cannot promise equality across CPU vendors
or models (oneDNN may block its loops by cache size) or torch builds: the README says what was
measured.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform as _platform
from functools import lru_cache
from typing import Any, Mapping

__all__ = [
    "PORTABLE_ENV", "PlatformMismatch", "PortableModeError", "apply_portable", "cpu_info",
    "describe_platform", "platform_key", "check_same_platform", "weights_digest", "NUMERIC_FIELDS",
    "setup_compute", "ALLOW_ENV", "other_platform_allowed",
]

#: the environment portable mode sets: ATen kernels, oneDNN primitives and MKL's code path at AVX2
PORTABLE_ENV: dict[str, str] = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_CBWR": "AVX2"}

#: the fields of :func:`describe_platform` that can change a CPU number (they make ``key``)
NUMERIC_FIELDS: tuple[str, ...] = (
    "machine", "cpu_vendor", "cpu_model", "aten_capability", "onednn_max_isa", "mkl_cbwr", "torch",
    "onednn", "threads", "device", "cuda", "cudnn",
)
#: ... and of a CUDA number: the GPU and its libraries, not the host CPU (a Slurm job may land
#: on another host type with the same GPU)
CUDA_NUMERIC_FIELDS: tuple[str, ...] = ("machine", "torch", "device", "cuda", "cudnn")


def _numeric_fields(desc: Mapping[str, Any]) -> tuple[str, ...]:
    return CUDA_NUMERIC_FIELDS if str(desc.get("device", "")).startswith("cuda") else NUMERIC_FIELDS


class PortableModeError(RuntimeError):
    """Portable mode was asked for where it cannot act (kernels already dispatched, not x86)."""


class PlatformMismatch(ValueError):
    """A run, score cache or truth was made on another compute platform."""


@lru_cache(maxsize=1)
def cpu_info() -> dict[str, str]:
    """CPU vendor, model and the widest vector ISA it offers (from /proc/cpuinfo on Linux)."""
    vendor, model = "", ""
    flags: set[str] = set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, val = line.partition(":")
                key, val = key.strip(), val.strip()
                if key == "vendor_id" and not vendor:
                    vendor = val
                elif key == "model name" and not model:
                    model = val
                elif key in ("flags", "Features") and not flags:
                    flags = set(val.split())
    except OSError:
        pass
    isa = next((name for name, flag in (("AVX512", "avx512f"), ("AVX2", "avx2"), ("AVX", "avx"),
                                        ("SSE4.2", "sse4_2"), ("NEON", "asimd")) if flag in flags), "unknown")
    return {"cpu_vendor": vendor or _platform.processor() or "unknown",
            "cpu_model": model or _platform.processor() or "unknown", "cpu_isa": isa}


def _is_x86() -> bool:
    return _platform.machine().lower() in ("x86_64", "amd64", "i686", "x86")


def apply_portable() -> None:
    """Pin CPU dispatch to AVX2 for this process (:data:`PORTABLE_ENV`).

    It must run before torch's first CPU kernel: the levels are read once per process. If they
    were fixed already at another level, :class:`PortableModeError` says how to start over."""
    if not _is_x86():
        raise PortableModeError(
            f"train.portable pins x86 dispatch to AVX2; this machine is {_platform.machine()}. "
            f"Set train.portable=false (--set train.portable=false)")
    if cpu_info()["cpu_isa"] not in ("AVX2", "AVX512", "unknown"):
        raise PortableModeError(
            f"train.portable needs AVX2; this CPU offers {cpu_info()['cpu_isa']}. "
            f"Set train.portable=false (--set train.portable=false)")
    for k, v in PORTABLE_ENV.items():
        os.environ[k] = v
    import torch

    got = torch.backends.cpu.get_cpu_capability()
    if got != "AVX2":
        raise PortableModeError(
            f"train.portable asks for AVX2 CPU kernels, but this process already dispatches {got} "
            f"(torch ran a CPU kernel before portable mode was set). Start a new Python process, or "
            f"set {' '.join(f'{k}={v}' for k, v in PORTABLE_ENV.items())} in the environment before "
            f"starting it")


def _onednn_version() -> str:
    import torch

    import re

    m = re.search(r"(?:MKL-DNN|oneDNN)\s+(v[\w.]+)", torch.__config__.show())
    return m.group(1) if m else "none"


def describe_platform(device: Any = "cpu", *, portable: bool = False) -> dict[str, Any]:
    """Everything about where numbers are made that can change them, plus ``key``: a short
    digest of :data:`NUMERIC_FIELDS`. Call it where the numbers are made (after threads and
    portable mode are set)."""
    import torch

    dev = torch.device(device) if not isinstance(device, torch.device) else device
    d: dict[str, Any] = {"machine": _platform.machine(), **cpu_info()}
    d["aten_capability"] = torch.backends.cpu.get_cpu_capability()
    d["onednn_max_isa"] = os.environ.get("ONEDNN_MAX_CPU_ISA", "default")
    d["mkl_cbwr"] = os.environ.get("MKL_CBWR", "default")
    d["torch"] = torch.__version__
    d["onednn"] = _onednn_version()
    d["threads"] = torch.get_num_threads()
    d["portable"] = bool(portable)
    if dev.type == "cuda":
        d["device"] = f"cuda ({torch.cuda.get_device_name(dev)})"
        d["cuda"] = str(torch.version.cuda)
        d["cudnn"] = str(torch.backends.cudnn.version())
    else:
        d["device"] = dev.type
        d["cuda"] = d["cudnn"] = "none"
    d["key"] = platform_key(d)
    return d


def platform_key(desc: Mapping[str, Any]) -> str:
    """12 hex of the numeric fields of a :func:`describe_platform` dict (CPU or CUDA ones)."""
    blob = json.dumps({k: desc.get(k) for k in _numeric_fields(desc)}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def _summary(desc: Mapping[str, Any]) -> str:
    return (f"{desc.get('cpu_model', '?')}, {desc.get('aten_capability', '?')} kernels, oneDNN ISA "
            f"{desc.get('onednn_max_isa', '?')}, {desc.get('threads', '?')} thread(s), torch "
            f"{desc.get('torch', '?')}, {desc.get('device', '?')}")


def check_same_platform(what: str, recorded: Mapping[str, Any] | None, current: Mapping[str, Any], *,
                        allow: bool | None = None,
                        override_hint: str = "--allow-other-platform (RANKBENCH_ALLOW_OTHER_PLATFORM=1)",
                        ) -> str | None:
    """None when ``recorded`` (the platform ``what`` was made on) has the current key. Otherwise
    :class:`PlatformMismatch` naming the fields that differ, or, with ``allow``, that message
    returned as a note to print and record. ``recorded`` None (made before platforms were
    recorded) counts as a mismatch. ``allow`` None: :func:`other_platform_allowed`."""
    if allow is None:
        allow = other_platform_allowed()
    if not isinstance(recorded, Mapping):  # not recorded (or an OS string of older files)
        recorded = None
    if recorded is not None and recorded.get("key") == current.get("key"):
        return None
    if recorded is None:
        diff = "it was made before rankbench recorded platforms"
    else:
        fields = [k for k in dict.fromkeys(_numeric_fields(recorded) + _numeric_fields(current))
                  if recorded.get(k) != current.get(k)]
        diff = "; ".join(f"{k}: {recorded.get(k)!r} there, {current.get(k)!r} here" for k in fields)
    msg = (f"{what} was made on another compute platform ({diff}). Its numbers would differ if "
           f"recomputed here, so it is not reused silently")
    if allow:
        return msg + " (reused anyway: the platform override was given)"
    raise PlatformMismatch(f"{msg}. Recompute it here (another --runs-root or --out), or reuse it "
                           f"knowingly with {override_hint}")


def weights_digest(state: Any) -> str:
    """12 hex of a state dict (or a module's): names, dtypes, shapes and bytes of every tensor,
    in sorted name order. Two reports with the same name but different weights differ here."""
    import torch

    if isinstance(state, torch.nn.Module):
        state = state.state_dict()
    h = hashlib.sha256()
    for name in sorted(state):
        v = state[name]
        if not torch.is_tensor(v):
            continue
        t = v.detach().to("cpu").contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()[:12]


def setup_compute(train_cfg: Any, device: Any) -> dict[str, Any]:
    """Set this process up for ``train_cfg`` on ``device`` — portable dispatch (CPU, before any
    kernel runs) and the thread count — and return :func:`describe_platform` for it. Idempotent:
    training, scoring and the truth call it before their first tensor."""
    import torch

    dev = torch.device(device) if not isinstance(device, torch.device) else device
    portable = bool(getattr(train_cfg, "portable", False)) and dev.type == "cpu"
    if portable:
        apply_portable()
    if dev.type == "cpu" and int(getattr(train_cfg, "num_threads", 0)) > 0:
        torch.set_num_threads(int(train_cfg.num_threads))
    return describe_platform(dev, portable=portable)


#: set to 1 to reuse runs, score caches and truths made on another platform (``--allow-other-platform``)
ALLOW_ENV = "RANKBENCH_ALLOW_OTHER_PLATFORM"


def other_platform_allowed() -> bool:
    return os.environ.get(ALLOW_ENV, "").strip().lower() in ("1", "true", "yes")
