"""Build ``data/cifar10-sample.zip``: a small real CIFAR-10 subset shipped with rankbench.

Copies the ORIGINAL JPEG bytes (no re-encoding) of the first 500 training and the first 100
test images of every class, in the source zip's file order, from the CIFAR-10 JPEG copy
(layout ``train/<class>/NNNN.jpg``, ``test/<class>/NNNN.jpg``). The output is byte-for-byte
reproducible: entries are stored (JPEG does not compress), in a fixed order, with a fixed
timestamp. Re-run::

    python data/scripts/build_cifar10_sample.py [SOURCE_ZIP] [--out data/cifar10-sample.zip]
"""
from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import zipfile
from pathlib import Path

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
# the project's read-only data folder, a sibling of the checkout (../shared)
DEFAULT_SOURCE = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "cifar10" / "cifar10-jpeg.zip"
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "cifar10-sample.zip"
PER_CLASS = {"train": 500, "test": 100}
MAX_BYTES = 10 * 1024 * 1024
_EPOCH = (1980, 1, 1, 0, 0, 0)  # fixed zip timestamp: identical bytes on every rebuild


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def select(names: list[str]) -> list[str]:
    """The first PER_CLASS[split] images of each class, in the source's file order."""
    by_key: dict[tuple[str, str], list[str]] = {}
    for name in names:
        parts = name.split("/")
        if len(parts) != 3 or not parts[2].lower().endswith((".jpg", ".jpeg")):
            continue
        split, cls, _ = parts
        if split in PER_CLASS and cls in CLASSES:
            by_key.setdefault((split, cls), []).append(name)
    chosen: list[str] = []
    for split, n in PER_CLASS.items():
        for cls in CLASSES:
            files = by_key.get((split, cls), [])
            if files != sorted(files):
                sys.exit(f"error: {split}/{cls} entries are not in name order in the source zip")
            if len(files) < n:
                sys.exit(f"error: the source has {len(files)} images in {split}/{cls}, need {n}")
            chosen += files[:n]
    return chosen


def build(source: Path, out: Path) -> None:
    src_sha = sha256_file(source)
    with zipfile.ZipFile(source) as zin:
        chosen = select(zin.namelist())
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
        os.close(fd)
        try:
            with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zout:
                zout.comment = (
                    f"CIFAR-10 sample (Krizhevsky 2009): first {PER_CLASS['train']} train / "
                    f"{PER_CLASS['test']} test images per class, original JPEG bytes of "
                    f"{source.name} sha256 {src_sha}; built by data/scripts/build_cifar10_sample.py"
                ).encode()
                for name in chosen:
                    info = zipfile.ZipInfo(name, date_time=_EPOCH)
                    info.compress_type = zipfile.ZIP_STORED
                    info.external_attr = 0o644 << 16
                    zout.writestr(info, zin.read(name))  # the original bytes, not re-encoded
            os.chmod(tmp, 0o644)  # mkstemp makes it private; a shipped data file is world-readable
            os.replace(tmp, out)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    size = out.stat().st_size
    print(f"wrote {out}: {len(chosen)} images, {size / 1e6:.2f} MB, sha256 {sha256_file(out)}")
    print(f"source {source}: sha256 {src_sha}")
    if size > MAX_BYTES:
        sys.exit(f"error: {out} is {size / 1e6:.1f} MB, over the {MAX_BYTES / 1e6:.0f} MB budget")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("source", nargs="?", default=DEFAULT_SOURCE, type=Path,
                   help=f"CIFAR-10 JPEG zip (default {DEFAULT_SOURCE})")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output zip (default {DEFAULT_OUT})")
    args = p.parse_args(argv)
    if not args.source.is_file():
        sys.exit(f"error: source zip {args.source} not found; pass the path of cifar10-jpeg.zip")
    build(args.source, args.out)


if __name__ == "__main__":
    main()
