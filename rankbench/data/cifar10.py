"""CIFAR-10 for training and scoring supernets, split the NAS-Bench-101 way.

Sources (``load_cifar10(source=...)``):

- ``"bundled"``: the real 6,000-image sample shipped in the repo (``data/cifar10-sample.zip``).
- ``"cifar10"``: the default location ``data_home()/"cifar10"``, where
  :func:`download_cifar10` (``rankbench data cifar10 --download``) puts the official archive.
- a path: the official ``cifar-10-python.tar.gz``, its extracted ``cifar-10-batches-py``
  folder, or an image zip / folder laid out ``train/<class>/NNNN.jpg``, ``test/<class>/...``.

Splits: the official archive gives NB101's exact split (train = data_batch_1..4, valid =
data_batch_5, test = test_batch). Image sources have no batch order, so valid is a
deterministic class-balanced fifth of the train folder: NOT NB101's exact split, and
``describe()`` says so. Decoded images are cached under ``data_home()/"cache"``.

Order: the official batches are class-mixed, and a pass over a split in loader order (the
``paper`` protocol's calibration) sees every class in every batch. An image source lists its
files by class; with ``order="mixed"`` (the default) its splits interleave the classes — the
first image of each class in class order, then the second of each, ... (files by name within a
class) — so that loader order means the same as for the official archive. ``order="source"``
keeps the class-sorted order of runs made before ``data.order`` existed. Training (seeded
shuffles), the ``clean`` protocol (seeded draws), subsets and the truth's evaluation do not
depend on the order; a pass in loader order does.
"""
from __future__ import annotations

import glob
import hashlib
import io
import os
import pickle
import tarfile
import urllib.error
import urllib.request
import warnings
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch

from rankbench._io import atomic_path, short_digest
from rankbench._paths import bundled_file, data_home

__all__ = [
    "CLASSES", "CIFAR10_MEAN", "CIFAR10_STD", "CIFAR10_URL", "CIFAR10_MD5", "ARCHIVE_NAME",
    "ImageSet", "CIFAR10Splits", "load_cifar10", "download_cifar10", "default_dir",
]

CLASSES: tuple[str, ...] = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)
#: per-channel mean/std of the 50k training images in [0, 1] (the values DARTS and the public
#: MixPath code normalise with)
CIFAR10_MEAN: tuple[float, float, float] = (0.49139968, 0.48215827, 0.44653124)
CIFAR10_STD: tuple[float, float, float] = (0.24703233, 0.24348505, 0.26158768)

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
ARCHIVE_NAME = "cifar-10-python.tar.gz"
BATCHES_DIR = "cifar-10-batches-py"
BUNDLED_NAME = "cifar10-sample.zip"

_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 5))
_VALID_BATCH = "data_batch_5"
_TEST_BATCH = "test_batch"
_IMAGE_EXTS = (".jpg", ".jpeg", ".png")
_CACHE_VERSION = 1
_NB101_SPLIT = "NB101: train = data_batch_1..4, valid = data_batch_5, test = test_batch"


def _fix_hint() -> str:
    d = default_dir()
    return (
        f"Fix: run `rankbench data cifar10 --download` (or, in Python, "
        f"`rankbench.data.download_cifar10()`), which fetches {CIFAR10_URL} into {d}; or download "
        f"that file by hand (md5 {CIFAR10_MD5}) and put it in {d}; or pass its path as the source. "
        f"Set RANKBENCH_HOME to keep data somewhere else than {data_home()}."
    )


class CIFAR10Error(ValueError):
    """A CIFAR-10 source that exists but cannot be read (corrupt, wrong layout)."""


# ---------------------------------------------------------------------------------------------
# containers


@dataclass(frozen=True, eq=False)
class ImageSet:
    """One split: ``images`` uint8 [N, 3, 32, 32] and ``labels`` int64 [N] (class indices).

    Any square side is accepted (uint8 [N, 3, R, R]) so that downsampled copies are ImageSets too.
    """

    images: torch.Tensor
    labels: torch.Tensor

    def __post_init__(self) -> None:
        x, y = self.images, self.labels
        if x.dtype != torch.uint8 or x.dim() != 4 or x.shape[1] != 3 or x.shape[2] != x.shape[3]:
            raise ValueError(f"images must be uint8 [N, 3, 32, 32] (or [N, 3, R, R]), got "
                             f"{x.dtype} {list(x.shape)}")
        if y.dtype != torch.int64 or y.dim() != 1 or len(y) != len(x):
            raise ValueError(f"labels must be int64 [{len(x)}], got {y.dtype} {list(y.shape)}")

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def class_counts(self) -> list[int]:
        """Images per class, in :data:`CLASSES` order."""
        return torch.bincount(self.labels, minlength=len(CLASSES)).tolist()

    def subset(self, indices: np.ndarray | torch.Tensor | list[int]) -> "ImageSet":
        idx = torch.as_tensor(np.asarray(indices, dtype=np.int64))
        return ImageSet(self.images[idx].contiguous(), self.labels[idx].contiguous())

    def checksum(self) -> str:
        """sha256 of the image bytes then the labels (int64 little-endian), first 12 hex."""
        h = hashlib.sha256()
        h.update(self.images.contiguous().numpy().tobytes())
        h.update(self.labels.numpy().astype("<i8").tobytes())
        return h.hexdigest()[:12]


@dataclass(frozen=True, eq=False)
class CIFAR10Splits:
    """train / valid / test plus where they came from (``describe()`` for provenance)."""

    train: ImageSet
    valid: ImageSet
    test: ImageSet
    source: str  # resolved path of the source
    kind: str  # cifar10-python | cifar10-batches | image-zip | image-folder | bundled-sample
    split: str  # how train/valid/test were formed
    nb101_split: bool  # True only for the official archive (data_batch_5 = validation)
    split_seed: int = 0
    subset_sizes: tuple[int, int, int] = (0, 0, 0)  # requested train/valid/test sizes (0 = all)
    order: str = "mixed"  # "mixed" (classes interleaved) | "source" (class-sorted) | "official"

    def __getitem__(self, name: str) -> ImageSet:
        if name not in ("train", "valid", "test"):
            raise KeyError(f"no split {name!r}; splits: train, valid, test")
        return getattr(self, name)

    def describe(self) -> dict[str, Any]:
        """Provenance for run directories: source, kind, split rule, sizes, counts, checksums."""
        sets = {"train": self.train, "valid": self.valid, "test": self.test}
        checks = {k: s.checksum() for k, s in sets.items()}
        return {
            "source": self.source,
            "kind": self.kind,
            "split": self.split,
            "nb101_split": self.nb101_split,
            "split_seed": self.split_seed,
            "order": self.order,
            "subset_sizes": dict(zip(("train", "valid", "test"), self.subset_sizes)),
            "sizes": {k: len(s) for k, s in sets.items()},
            "class_counts": {k: s.class_counts() for k, s in sets.items()},
            "classes": list(CLASSES),
            "checksum": checks,
            "checksum_all": short_digest("".join(checks.values())),
        }


# ---------------------------------------------------------------------------------------------
# public entry points


def default_dir() -> Path:
    """``data_home()/"cifar10"``: where the downloaded official archive lives."""
    return data_home() / "cifar10"


def load_cifar10(
    source: str | os.PathLike = "bundled",
    *,
    train_size: int = 0,
    valid_size: int = 0,
    test_size: int = 0,
    split_seed: int = 0,
    order: str = "mixed",
    cache: bool = True,
    progress: bool = True,
) -> CIFAR10Splits:
    """Load CIFAR-10 from ``source`` and split it (see the module docstring).

    ``*_size`` > 0 keeps a class-balanced deterministic subset of that split (nested: a smaller
    size with the same ``split_seed`` is a subset of a larger one). ``split_seed`` picks the
    validation fifth of image sources and the subsets; it never changes NB101's official split.
    ``order`` ("mixed" | "source") orders the splits of image sources (module docstring); the
    official archive keeps its own order either way.
    """
    for name, n in (("train_size", train_size), ("valid_size", valid_size), ("test_size", test_size)):
        if int(n) < 0:
            raise ValueError(f"{name} must be >= 0 (0 = the whole split), got {n}")
    if order not in ("mixed", "source"):
        raise ValueError(f"order must be 'mixed' (classes interleaved) or 'source', got {order!r}")
    path, kind = _resolve(source)
    if kind in ("cifar10-python", "cifar10-batches"):
        parts = _read_official(path, kind)
        train = _concat([parts[b] for b in _TRAIN_BATCHES])
        valid, test = parts[_VALID_BATCH], parts[_TEST_BATCH]
        split, nb101 = _NB101_SPLIT, True
    else:
        full = _read_images_cached(path, kind, cache=cache, progress=progress)
        if order == "mixed":
            full = {k: (x[o], y[o]) for k, (x, y) in full.items() for o in [class_interleaved(y)]}
        tr_idx, va_idx = _train_valid_split(full["train"][1], split_seed)
        tr_x, tr_y = full["train"]
        train, valid = (tr_x[tr_idx], tr_y[tr_idx]), (tr_x[va_idx], tr_y[va_idx])
        test = full["test"]
        split = (f"class-balanced: valid = 1/5 of each class of the train folder chosen by "
                 f"split_seed={split_seed}, train = the rest, test = the test folder; NOT NB101's "
                 f"exact split (the official archive is needed for that)")
        nb101 = False
    sets = []
    for name, (x, y), n in (("train", train, train_size), ("valid", valid, valid_size),
                            ("test", test, test_size)):
        if n:
            if n > len(y):
                raise ValueError(f"{name}_size={n} exceeds the {len(y)} images of the {name} split "
                                 f"of {path}; use 0 for the whole split")
            idx = _balanced_subset(y, int(n), split_seed, name)
            x, y = x[idx], y[idx]
        sets.append(ImageSet(torch.from_numpy(np.ascontiguousarray(x)),
                             torch.from_numpy(np.ascontiguousarray(y, dtype=np.int64))))
    return CIFAR10Splits(
        train=sets[0], valid=sets[1], test=sets[2], source=str(path), kind=kind, split=split,
        nb101_split=nb101, split_seed=int(split_seed), order=order if not nb101 else "official",
        subset_sizes=(int(train_size), int(valid_size), int(test_size)),
    )


def download_cifar10(dest: str | os.PathLike | None = None, *, force: bool = False,
                     progress: bool = True, timeout: float = 60.0) -> Path:
    """Download the official CIFAR-10 python archive into folder ``dest`` and verify its md5.

    ``dest`` defaults to :func:`default_dir` (what ``source="cifar10"`` reads). The file only
    appears under its final name once complete and verified. Returns the archive's path; an
    existing archive with the right md5 is kept unless ``force``.
    """
    dest = Path(dest).expanduser() if dest is not None else default_dir()
    if dest.name.endswith((".tar.gz", ".tgz")):
        raise ValueError(f"download_cifar10 takes a folder, got the file name {dest}; "
                         f"the archive is saved as <folder>/{ARCHIVE_NAME}")
    target = dest / ARCHIVE_NAME
    if target.exists() and not force:
        if _md5(target) == CIFAR10_MD5:
            return target
        warnings.warn(f"{target} has the wrong md5 (corrupt or partial); downloading it again",
                      stacklevel=2)
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency
        tqdm = None
    req = urllib.request.Request(CIFAR10_URL, headers={"User-Agent": "rankbench"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp, atomic_path(target) as tmp:
            total = int(resp.headers.get("Content-Length") or 0) or None
            md5 = hashlib.md5()
            bar = (tqdm(total=total, unit="B", unit_scale=True, desc=f"downloading {ARCHIVE_NAME}")
                   if tqdm is not None and progress else None)
            with open(tmp, "wb") as f:
                while chunk := resp.read(1 << 20):
                    f.write(chunk)
                    md5.update(chunk)
                    if bar is not None:
                        bar.update(len(chunk))
            if bar is not None:
                bar.close()
            if md5.hexdigest() != CIFAR10_MD5:
                raise CIFAR10Error(
                    f"downloaded {CIFAR10_URL} but its md5 is {md5.hexdigest()}, expected "
                    f"{CIFAR10_MD5}: the download is corrupt or the server sent something else. "
                    f"Nothing was saved; try again, or download it by hand into {dest}"
                )
    except (urllib.error.URLError, OSError, TimeoutError) as e:
        raise ConnectionError(
            f"could not download {CIFAR10_URL} ({e}). Download it by hand (e.g. with a browser "
            f"or curl), check md5 {CIFAR10_MD5}, and put it at {target}; or pass its path as the "
            f"CIFAR-10 source"
        ) from e
    return target


# ---------------------------------------------------------------------------------------------
# source resolution


def _resolve(source: str | os.PathLike) -> tuple[Path, str]:
    """(path, kind) of a source; a FileNotFoundError saying what to do when there is none."""
    s = os.fspath(source)
    if s == "bundled":
        return bundled_file(BUNDLED_NAME), "bundled-sample"
    if s == "cifar10":
        d = default_dir()
        for cand in (d / ARCHIVE_NAME, d / BATCHES_DIR):
            if cand.exists():
                return _resolve_path(cand)
        raise FileNotFoundError(
            f"CIFAR-10 is not in {d} (looked for {ARCHIVE_NAME} and {BATCHES_DIR}/). {_fix_hint()}"
        )
    return _resolve_path(Path(s).expanduser())


def _resolve_path(p: Path) -> tuple[Path, str]:
    if not p.exists():
        raise FileNotFoundError(
            f"CIFAR-10 source {p} does not exist. A source is 'bundled', 'cifar10' (the default "
            f"folder {default_dir()}), or the path of {ARCHIVE_NAME}, its {BATCHES_DIR}/ folder, "
            f"or an image zip/folder with train/<class>/*.jpg and test/<class>/*.jpg. {_fix_hint()}"
        )
    p = p.resolve()
    if p.is_dir():
        if (p / "data_batch_1").exists() or (p / _TEST_BATCH).exists():
            return p, "cifar10-batches"
        if (p / BATCHES_DIR).is_dir():
            return p / BATCHES_DIR, "cifar10-batches"
        if (p / ARCHIVE_NAME).is_file():
            return p / ARCHIVE_NAME, "cifar10-python"
        if (p / "train").is_dir() or (p / "test").is_dir():
            return p, "image-folder"
        raise FileNotFoundError(
            f"{p} is a folder but holds no CIFAR-10: expected data_batch_1..5 and test_batch "
            f"(the extracted {BATCHES_DIR}/), {ARCHIVE_NAME}, or train/<class>/ and test/<class>/ "
            f"image folders. {_fix_hint()}"
        )
    name = p.name.lower()
    if name.endswith((".tar.gz", ".tgz", ".tar")):
        return p, "cifar10-python"
    if name.endswith(".zip"):
        return p, "image-zip"
    if zipfile.is_zipfile(p):
        return p, "image-zip"
    try:
        if tarfile.is_tarfile(p):
            return p, "cifar10-python"
    except OSError:
        pass
    raise CIFAR10Error(f"{p} is neither a tar archive ({ARCHIVE_NAME}) nor a zip of images; "
                       f"{_fix_hint()}")


# ---------------------------------------------------------------------------------------------
# the official python archive (pickled batches), read without torchvision


class _BatchUnpickler(pickle.Unpickler):
    """Unpickles only what a CIFAR-10 batch holds (dicts, lists, bytes, numpy arrays):
    a pickle from an untrusted download cannot run code."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
        ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"unexpected object {module}.{name} in a CIFAR-10 batch")
        if module.startswith("numpy.core") and hasattr(np, "_core"):
            module = "numpy._core" + module[len("numpy.core"):]  # NumPy 2 moved it (no warning)
        return super().find_class(module, name)


def _decode_batch(raw: bytes, what: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        d = _BatchUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except Exception as e:
        raise CIFAR10Error(f"{what} is not a readable CIFAR-10 batch ({type(e).__name__}: {e}); "
                           f"the file is corrupt. {_fix_hint()}") from None
    if not isinstance(d, dict):
        raise CIFAR10Error(f"{what} is not a CIFAR-10 batch (a {type(d).__name__}, not a dict)")
    d = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in d.items()}
    if "data" not in d or "labels" not in d:
        raise CIFAR10Error(f"{what} lacks 'data' or 'labels' (keys: {sorted(d)}); is this the "
                           f"CIFAR-100 archive? rankbench needs CIFAR-10")
    data = np.asarray(d["data"])
    labels = np.asarray(d["labels"], dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise CIFAR10Error(f"{what}: 'data' should be uint8 [N, 3072], got {data.dtype} {data.shape}")
    if len(labels) != len(data) or (len(labels) and (labels.min() < 0 or labels.max() >= len(CLASSES))):
        raise CIFAR10Error(f"{what}: labels do not match the images or fall outside 0..9")
    # rows are 1024 red, 1024 green, 1024 blue values, each a row-major 32x32 plane
    return data.reshape(-1, 3, 32, 32), labels


def _read_official(path: Path, kind: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    needed = set(_TRAIN_BATCHES) | {_VALID_BATCH, _TEST_BATCH}
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if kind == "cifar10-batches":
        for n in sorted(needed):
            if (path / n).is_file():
                out[n] = _decode_batch((path / n).read_bytes(), f"{path / n}")
    else:
        try:
            with tarfile.open(path, "r:*") as tar:
                for m in tar:  # one sequential pass: no seeking back in the gzip stream
                    base = m.name.rsplit("/", 1)[-1]
                    if m.isfile() and base in needed and base not in out:
                        f = tar.extractfile(m)
                        if f is not None:
                            out[base] = _decode_batch(f.read(), f"{path}:{m.name}")
        except (tarfile.TarError, EOFError, OSError, zlib.error) as e:
            raise CIFAR10Error(f"{path} is not a readable CIFAR-10 archive ({type(e).__name__}: {e});"
                               f" it is corrupt or partial: delete it. {_fix_hint()}") from None
    missing = sorted(needed - set(out))
    if missing:
        raise CIFAR10Error(f"{path} lacks {', '.join(missing)}: not a complete CIFAR-10 python "
                           f"archive (CIFAR-100 and the binary version are different files). "
                           f"{_fix_hint()}")
    return out


def _concat(parts: Iterable[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = zip(*parts)
    return np.concatenate(xs), np.concatenate(ys)


# ---------------------------------------------------------------------------------------------
# image zip / folder (the JPEG copy, the bundled sample), decoded with Pillow and cached


def _image_entries(names: Iterable[str]) -> dict[str, list[tuple[int, str]]]:
    """{split: [(class index, name)]} from paths ending in <split>/<class>/<file>."""
    out: dict[str, list[tuple[int, str]]] = {"train": [], "test": []}
    for name in names:
        parts = name.replace("\\", "/").split("/")
        if (len(parts) < 3 or not parts[-1].lower().endswith(_IMAGE_EXTS) or "__MACOSX" in parts
                or parts[-1].startswith(".")):
            continue
        split, cls = parts[-3], parts[-2]
        if split in out and cls in CLASSES:
            out[split].append((CLASSES.index(cls), name))
    for v in out.values():
        v.sort(key=lambda e: (e[0], e[1].replace("\\", "/").split("/")[-1]))
    return out


def _decode_images(path: Path, kind: str, progress: bool) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    from PIL import Image, UnidentifiedImageError

    zf = None
    try:
        if kind == "image-folder":
            names = [str(p.relative_to(path)) for p in path.rglob("*") if p.is_file()]
            read = lambda n: (path / n).read_bytes()  # noqa: E731
        else:
            try:
                zf = zipfile.ZipFile(path)
            except (zipfile.BadZipFile, OSError) as e:
                raise CIFAR10Error(f"{path} is not a readable zip ({e}); it is corrupt or partial. "
                                   f"{_fix_hint()}") from None
            names = zf.namelist()
            read = zf.read
        entries = _image_entries(names)
        for split in ("train", "test"):
            if not entries[split]:
                raise CIFAR10Error(
                    f"{path} has no {split} images: expected {split}/<class>/NNNN.jpg with <class> "
                    f"one of {', '.join(CLASSES)}"
                )
        total = sum(len(v) for v in entries.values())
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=total, unit="img", desc=f"decoding {path.name} (cached afterwards)",
                       mininterval=0.5)
        out = {}
        for split, items in entries.items():
            x = np.empty((len(items), 32, 32, 3), dtype=np.uint8)
            y = np.fromiter((c for c, _ in items), dtype=np.int64, count=len(items))
            for i, (_, name) in enumerate(items):
                try:
                    with Image.open(io.BytesIO(read(name))) as im:
                        a = np.asarray(im.convert("RGB") if im.mode != "RGB" else im)
                except (UnidentifiedImageError, OSError, zipfile.BadZipFile, ValueError) as e:
                    raise CIFAR10Error(f"{path}: cannot decode {name} ({type(e).__name__}: {e}); "
                                       f"the source is corrupt: rebuild or re-download it") from None
                if a.shape != (32, 32, 3):
                    raise CIFAR10Error(f"{path}: {name} is {a.shape[1]}x{a.shape[0]}, CIFAR-10 "
                                       f"images are 32x32")
                x[i] = a
                if bar is not None and i % 256 == 255:
                    bar.update(256)
            if bar is not None:
                bar.update(len(items) % 256)
            out[split] = (np.ascontiguousarray(x.transpose(0, 3, 1, 2)), y)
        if bar is not None:
            bar.close()
        return out
    finally:
        if zf is not None:
            zf.close()


def _cache_file(path: Path, kind: str) -> tuple[Path, str]:
    """(cache file, glob of older caches of the same source): the name holds a hash of the
    path and a hash of the content's size+mtime, so an edited source gets a fresh entry."""
    where = short_digest(f"v{_CACHE_VERSION}|{kind}|{path}", 8)
    h = hashlib.sha256()
    if path.is_dir():
        for p in sorted(path.rglob("*")):
            if p.is_file():
                st = p.stat()
                h.update(f"|{p.relative_to(path)}:{st.st_size}:{st.st_mtime_ns}".encode())
    else:
        st = path.stat()
        h.update(f"|{st.st_size}:{st.st_mtime_ns}".encode())
    stem = f"cifar10-{path.name.split('.')[0]}-{where}"
    return data_home() / "cache" / f"{stem}-{h.hexdigest()[:8]}.npz", f"{glob.escape(stem)}-*.npz"


def _read_images_cached(path: Path, kind: str, *, cache: bool, progress: bool
                        ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    cfile, older = _cache_file(path, kind)
    if cache and cfile.is_file():
        try:
            with np.load(cfile, allow_pickle=False) as z:
                out = {s: (z[f"{s}_images"], z[f"{s}_labels"]) for s in ("train", "test")}
            if all(x.dtype == np.uint8 and x.shape[1:] == (3, 32, 32) and len(x) == len(y)
                   for x, y in out.values()):
                return out
        except Exception:  # a damaged cache is rebuilt, never trusted
            pass
        warnings.warn(f"ignoring damaged cache file {cfile}; decoding {path} again", stacklevel=3)
    out = _decode_images(path, kind, progress)
    if cache:
        try:
            with atomic_path(cfile, suffix=".npz") as tmp, open(tmp, "wb") as f:
                arrays: dict[str, Any] = {f"{s}_{k}": v for s, (x, y) in out.items()
                                          for k, v in (("images", x), ("labels", y))}
                np.savez(f, **arrays)
            for stale in cfile.parent.glob(older):  # caches of earlier versions of this source
                if stale != cfile:
                    stale.unlink(missing_ok=True)
        except OSError as e:
            warnings.warn(f"could not write the decode cache {cfile} ({e}); decoding again next "
                          f"time (set RANKBENCH_HOME to a writable folder)", stacklevel=3)
    return out


# ---------------------------------------------------------------------------------------------
# deterministic, platform-independent selection


def _hash_order(n: int, *key: object) -> np.ndarray:
    """A permutation of range(n) fixed by ``key``: the same on every platform and NumPy version."""
    prefix = repr(key).encode()
    digests = b"".join(hashlib.blake2b(prefix + i.to_bytes(4, "little"), digest_size=8).digest()
                       for i in range(n))
    return np.argsort(np.frombuffer(digests, dtype=">u8"), kind="stable")


def class_interleaved(labels: np.ndarray) -> np.ndarray:
    """The permutation that interleaves classes: the 1st image of each class in class order,
    then the 2nd of each, ...; within a class the given order is kept. Platform-independent
    (a stable sort on integers)."""
    labels = np.asarray(labels)
    rank = np.empty(len(labels), dtype=np.int64)
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        rank[idx] = np.arange(len(idx))
    return np.lexsort((labels, rank))  # by rank within its class, then by class


def _train_valid_split(labels: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """valid = a hash-chosen fifth of every class, train = the rest (both in source order)."""
    tr, va = [], []
    for c in range(len(CLASSES)):
        idx = np.flatnonzero(labels == c)
        order = idx[_hash_order(len(idx), "valid", int(seed), c)]
        nv = len(idx) // 5
        va.append(order[:nv])
        tr.append(order[nv:])
    return np.sort(np.concatenate(tr)), np.sort(np.concatenate(va))


def _quotas(counts: np.ndarray, n: int) -> np.ndarray:
    """Split n as evenly as possible over classes, capped by what each class has."""
    q = np.zeros(len(counts), dtype=np.int64)
    remaining = n
    order = np.argsort(counts, kind="stable")  # smallest classes first, so caps spill over
    for i, c in enumerate(order):
        share = -(-remaining // (len(order) - i))
        q[c] = min(int(counts[c]), share)
        remaining -= q[c]
    return q


def _balanced_subset(labels: np.ndarray, n: int, seed: int, salt: str) -> np.ndarray:
    counts = np.bincount(labels, minlength=len(CLASSES))
    q = _quotas(counts, n)
    keep = []
    for c in range(len(CLASSES)):
        idx = np.flatnonzero(labels == c)
        keep.append(idx[_hash_order(len(idx), "subset", salt, int(seed), c)[: q[c]]])
    return np.sort(np.concatenate(keep))


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
