"""CIFAR-10 loading (all source kinds, NB101 split, subsets, cache, errors) and BatchLoader."""
from __future__ import annotations

import hashlib
import io
import os
import struct
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import rankbench.data.cifar10 as c10
from rankbench.data import (
    CIFAR10_MEAN,
    CIFAR10_STD,
    CLASSES,
    BatchLoader,
    CIFAR10Error,
    ImageSet,
    augment_batch,
    download_cifar10,
    load_cifar10,
    normalize,
)


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    """Every test gets its own RANKBENCH_HOME: no writes to the user's cache."""
    monkeypatch.setenv("RANKBENCH_HOME", str(tmp_path / "home"))


@pytest.fixture(scope="module")
def bundled_home(tmp_path_factory):
    return tmp_path_factory.mktemp("home")


@pytest.fixture(scope="module")
def bundled(bundled_home):
    """The bundled sample, decoded once per module into a module-wide cache."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RANKBENCH_HOME", str(bundled_home))
        return load_cifar10("bundled", progress=False)


@pytest.fixture
def cached_bundled(bundled, bundled_home, monkeypatch):
    """For tests that load the bundled sample again: reuse the module's decode cache."""
    monkeypatch.setenv("RANKBENCH_HOME", str(bundled_home))
    return bundled


def _image_hashes(s: ImageSet) -> list[str]:
    return [hashlib.sha1(x.numpy().tobytes()).hexdigest() for x in s.images]


# ---------------------------------------------------------------------------------------------
# helpers: tiny sources in the real formats


def _py2_batch(data: np.ndarray, labels: list[int]) -> bytes:
    """A batch pickled the way the official archive is (Python 2 cPickle, protocol 2)."""
    def s(b: bytes) -> bytes:  # SHORT_BINSTRING / BINSTRING (Python 2 str)
        return b"U" + bytes([len(b)]) + b if len(b) < 256 else b"T" + struct.pack("<i", len(b)) + b

    def i(v: int) -> bytes:  # BININT
        return b"J" + struct.pack("<i", v)

    out = b"\x80\x02}(" + s(b"batch_label") + s(b"a test batch")
    out += s(b"data") + b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n" + i(0) + b"\x85" + s(b"b") + b"\x87R"
    out += b"(" + i(1) + i(len(data)) + i(3072) + b"\x86"
    out += b"cnumpy\ndtype\n" + s(b"u1") + i(0) + i(1) + b"\x87R"
    out += b"(" + i(3) + s(b"|") + b"NNN" + i(-1) + i(-1) + i(0) + b"tb"
    out += b"\x89" + s(data.tobytes()) + b"tb"
    out += s(b"labels") + b"](" + b"".join(i(v) for v in labels) + b"e"
    return out + b"u."


def _official_batches(per_batch: int = 20) -> dict[str, tuple[np.ndarray, list[int]]]:
    """Six tiny batches; every pixel of batch k's images is k (test_batch: 9)."""
    rng = np.random.default_rng(0)
    out = {}
    for k, name in enumerate([f"data_batch_{j}" for j in range(1, 6)] + ["test_batch"], start=1):
        labels = [int(v) for v in rng.permutation(np.arange(per_batch) % 10)]
        data = np.full((per_batch, 3072), k if k <= 5 else 9, dtype=np.uint8)
        data[:, 0] = np.arange(per_batch)  # tell images apart (red, row 0, column 0)
        data[:, 1], data[:, 32], data[:, 1024] = 100, 50, 200  # red (0, 1), red (1, 0), green (0, 0)
        out[name] = (data, labels)
    return out


def _write_official_tar(path: Path, batches, *, pickler=_py2_batch, skip=()) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, (data, labels) in batches.items():
            if name in skip:
                continue
            raw = pickler(data, labels)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
    return path


def _tiny_images(n_per_class: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {c: rng.integers(0, 256, (n_per_class, 32, 32, 3), dtype=np.uint8) for c in CLASSES}


def _write_image_folder(root: Path, train: dict, test: dict) -> Path:
    for split, imgs in (("train", train), ("test", test)):
        for cls, arr in imgs.items():
            d = root / split / cls
            d.mkdir(parents=True)
            for j, a in enumerate(arr):
                Image.fromarray(a).save(d / f"{j:04d}.png")  # lossless: exact pixels back
    return root


def _zip_folder(root: Path, dest: Path, prefix: str = "") -> Path:
    with zipfile.ZipFile(dest, "w") as z:
        for p in sorted(root.rglob("*.png")):
            z.write(p, prefix + str(p.relative_to(root)))
    return dest


# ---------------------------------------------------------------------------------------------
# the bundled real sample


def test_bundled_shapes_classes_balance(bundled):
    assert (len(bundled.train), len(bundled.valid), len(bundled.test)) == (4000, 1000, 1000)
    for s, per in ((bundled.train, 400), (bundled.valid, 100), (bundled.test, 100)):
        assert s.images.dtype == torch.uint8 and tuple(s.images.shape[1:]) == (3, 32, 32)
        assert s.labels.dtype == torch.int64
        assert s.class_counts() == [per] * 10
    d = bundled.describe()
    assert d["kind"] == "bundled-sample" and d["nb101_split"] is False
    assert "NOT NB101" in d["split"]
    assert d["sizes"] == {"train": 4000, "valid": 1000, "test": 1000}
    assert all(len(v) == 12 for v in d["checksum"].values())
    assert bundled["valid"] is bundled.valid


def test_bundled_pixels_are_real_cifar(bundled):
    # channel means near CIFAR-10's (catches swapped channels / garbage decoding)
    m = bundled.train.images.float().mean((0, 2, 3)).double() / 255
    assert torch.allclose(m, torch.tensor(CIFAR10_MEAN, dtype=torch.float64), atol=0.03)
    # layout is [C, H, W] of the JPEG as Pillow decodes it (no transposed axes)
    with zipfile.ZipFile(c10.bundled_file(c10.BUNDLED_NAME)) as z:
        ref = np.asarray(Image.open(io.BytesIO(z.read("test/airplane/0000.jpg"))).convert("RGB"))
        assert len([n for n in z.namelist() if n.startswith("train/")]) == 5000
    assert np.array_equal(bundled.test.images[0].permute(1, 2, 0).numpy(), ref)


def test_bundled_deterministic_split_and_seed(cached_bundled):
    bundled = cached_bundled
    again = load_cifar10("bundled", progress=False)  # from the decode cache of this test's home
    assert again.describe()["checksum"] == bundled.describe()["checksum"]
    other = load_cifar10("bundled", split_seed=1, progress=False)
    assert other.valid.class_counts() == [100] * 10
    assert other.describe()["checksum"]["valid"] != bundled.describe()["checksum"]["valid"]
    assert other.describe()["checksum"]["test"] == bundled.describe()["checksum"]["test"]
    tr, va = set(_image_hashes(bundled.train)), set(_image_hashes(bundled.valid))
    assert not tr & va and len(tr | va) == len(set(_image_hashes(other.train)) | set(_image_hashes(other.valid)))


def test_subsets_balanced_nested_and_deterministic(cached_bundled):
    bundled = cached_bundled
    a = load_cifar10("bundled", train_size=1000, valid_size=205, test_size=50, progress=False)
    assert a.train.class_counts() == [100] * 10
    assert sorted(a.valid.class_counts()) == [20] * 5 + [21] * 5 and len(a.valid) == 205
    assert a.test.class_counts() == [5] * 10
    small = load_cifar10("bundled", train_size=500, progress=False)
    assert set(_image_hashes(small.train)) <= set(_image_hashes(a.train))  # nested
    assert set(_image_hashes(a.train)) <= set(_image_hashes(bundled.train))
    b = load_cifar10("bundled", train_size=1000, valid_size=205, test_size=50, progress=False)
    assert a.describe()["checksum"] == b.describe()["checksum"]
    assert a.describe()["subset_sizes"] == {"train": 1000, "valid": 205, "test": 50}
    with pytest.raises(ValueError, match="exceeds"):
        load_cifar10("bundled", train_size=4001, progress=False)
    with pytest.raises(ValueError, match=">= 0"):
        load_cifar10("bundled", test_size=-1, progress=False)


def test_quotas_spill_over_from_small_classes():
    counts = np.array([1, 50, 50, 50, 50, 50, 50, 50, 50, 50])
    q = c10._quotas(counts, 100)
    assert q.sum() == 100 and q[0] == 1 and q.max() - q[1:].min() <= 1


# ---------------------------------------------------------------------------------------------
# the official python archive


def test_official_archive_nb101_split(tmp_path):
    batches = _official_batches()
    tgz = _write_official_tar(tmp_path / "cifar-10-python.tar.gz", batches)
    s = load_cifar10(tgz)
    assert (len(s.train), len(s.valid), len(s.test)) == (80, 20, 20)
    assert s.kind == "cifar10-python" and s.nb101_split and "data_batch_5" in s.split
    # train = batches 1..4 in order, valid = batch 5, test = test_batch
    assert s.train.images[:, 0, 2, 0].tolist() == [1] * 20 + [2] * 20 + [3] * 20 + [4] * 20
    assert (s.valid.images[:, :, 2:] == 5).all() and (s.test.images[:, :, 2:] == 9).all()
    assert s.valid.labels.tolist() == batches["data_batch_5"][1]
    # row layout: 1024 red, 1024 green, 1024 blue values, row-major planes
    assert s.valid.images[:, 0, 0, 0].tolist() == list(range(20))
    px = s.train.images[0]
    assert (px[0, 0, 1], px[0, 1, 0], px[1, 0, 0], px[2, 0, 0]) == (100, 50, 200, 1)
    # the extracted folder and the default location give the same thing
    with tarfile.open(tgz) as t:
        kw = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        t.extractall(tmp_path / "x", **kw)
    f = load_cifar10(tmp_path / "x" / "cifar-10-batches-py")
    assert f.kind == "cifar10-batches" and f.describe()["checksum"] == s.describe()["checksum"]
    assert load_cifar10(tmp_path / "x").describe()["checksum"] == s.describe()["checksum"]
    home = Path(os.environ["RANKBENCH_HOME"])
    (home / "cifar10").mkdir(parents=True)
    (home / "cifar10" / "cifar-10-python.tar.gz").write_bytes(tgz.read_bytes())
    d = load_cifar10("cifar10", valid_size=10)
    assert d.valid.class_counts() == [1] * 10 and len(d.train) == 80


def test_official_archive_python3_pickles(tmp_path):
    import pickle

    def py3(data, labels):
        return pickle.dumps({b"data": data, b"labels": labels}, protocol=5)

    s = load_cifar10(_write_official_tar(tmp_path / "a.tar.gz", _official_batches(), pickler=py3))
    assert len(s.train) == 80 and (s.valid.images[:, :, 2:] == 5).all()


def test_official_archive_errors(tmp_path):
    batches = _official_batches()
    with pytest.raises(CIFAR10Error, match="lacks data_batch_5"):
        load_cifar10(_write_official_tar(tmp_path / "a.tar.gz", batches, skip={"data_batch_5"}))
    good = _write_official_tar(tmp_path / "b.tar.gz", batches).read_bytes()
    (tmp_path / "trunc.tar.gz").write_bytes(good[: len(good) // 2])
    with pytest.raises(CIFAR10Error, match="corrupt"):
        load_cifar10(tmp_path / "trunc.tar.gz")
    (tmp_path / "junk.tar.gz").write_bytes(os.urandom(1000))
    with pytest.raises(CIFAR10Error, match="download"):
        load_cifar10(tmp_path / "junk.tar.gz")

    # a pickle that would run code is refused, not executed
    evil = b"\x80\x02cos\nsystem\nU\x04trueR."
    with pytest.raises(CIFAR10Error, match="os.system"):
        load_cifar10(_write_official_tar(tmp_path / "c.tar.gz", batches, pickler=lambda d, l: evil))


# ---------------------------------------------------------------------------------------------
# image folders and zips


def test_image_folder_and_zip(tmp_path):
    train, test = _tiny_images(5, 0), _tiny_images(2, 1)
    root = _write_image_folder(tmp_path / "imgs", train, test)
    f = load_cifar10(root, progress=False)
    assert f.kind == "image-folder" and not f.nb101_split
    assert (len(f.train), len(f.valid), len(f.test)) == (40, 10, 20)
    assert f.train.class_counts() == [4] * 10 and f.valid.class_counts() == [1] * 10
    # exact pixels, classes interleaved (data.order "mixed"), file order within a class
    assert np.array_equal(f.test.images[0].permute(1, 2, 0).numpy(), test["airplane"][0])
    assert np.array_equal(f.test.images[11].permute(1, 2, 0).numpy(), test["automobile"][1])
    assert f.test.labels.tolist() == [c for _ in range(2) for c in range(10)]
    src = load_cifar10(root, order="source", progress=False)  # class order then file order
    assert np.array_equal(src.test.images[3].permute(1, 2, 0).numpy(), test["automobile"][1])
    assert src.test.labels.tolist() == [c for c in range(10) for _ in range(2)]
    all_train = {hashlib.sha1(a.transpose(2, 0, 1).tobytes()).hexdigest() for v in train.values() for a in v}
    assert set(_image_hashes(f.train)) | set(_image_hashes(f.valid)) == all_train
    z = load_cifar10(_zip_folder(root, tmp_path / "imgs.zip", prefix="cifar10/"), progress=False)
    assert z.kind == "image-zip" and z.describe()["checksum"] == f.describe()["checksum"]


def test_decode_cache_is_used_and_keyed_on_the_file(tmp_path, monkeypatch):
    root = _write_image_folder(tmp_path / "imgs", _tiny_images(5, 0), _tiny_images(1, 1))
    zp = _zip_folder(root, tmp_path / "imgs.zip")
    first = load_cifar10(zp, progress=False)
    cache = Path(os.environ["RANKBENCH_HOME"]) / "cache"
    files = list(cache.glob("*.npz"))
    assert len(files) == 1
    # a cached load never opens the zip
    with monkeypatch.context() as mp:
        mp.setattr(c10, "_decode_images", lambda *a, **k: pytest.fail("decoded again despite the cache"))
        assert load_cifar10(zp).describe()["checksum"] == first.describe()["checksum"]
    # a changed source (new mtime) gets a new cache entry, which replaces the old one
    st = zp.stat()
    os.utime(zp, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    load_cifar10(zp, progress=False)
    assert len(list(cache.glob("*.npz"))) == 1 and not files[0].exists()
    load_cifar10(_zip_folder(root, tmp_path / "other.zip"), progress=False)  # another source
    assert len(list(cache.glob("*.npz"))) == 2
    # a damaged cache file is rebuilt with a warning
    for p in cache.glob("*.npz"):
        p.write_bytes(b"not an npz")
    with pytest.warns(UserWarning, match="damaged cache"):
        again = load_cifar10(zp, progress=False)
    assert again.describe()["checksum"] == first.describe()["checksum"]


def test_image_source_errors(tmp_path):
    root = _write_image_folder(tmp_path / "imgs", _tiny_images(2, 0), _tiny_images(1, 1))
    (root / "train" / "cat" / "0001.png").write_bytes(b"not an image")
    with pytest.raises(CIFAR10Error, match=r"cannot decode .*cat.0001\.png"):
        load_cifar10(root, progress=False)
    (tmp_path / "bad.zip").write_bytes(b"PK\x03\x04 garbage")
    with pytest.raises(CIFAR10Error, match="not a readable zip"):
        load_cifar10(tmp_path / "bad.zip", progress=False)
    only_train = tmp_path / "t"
    (only_train / "train" / "cat").mkdir(parents=True)
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(only_train / "train" / "cat" / "0.png")
    with pytest.raises(CIFAR10Error, match="no test images"):
        load_cifar10(only_train, progress=False)
    big = tmp_path / "big"
    _write_image_folder(big, {c: np.zeros((1, 32, 32, 3), np.uint8) for c in CLASSES}, _tiny_images(1, 0))
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(big / "train" / "dog" / "0000.png")
    with pytest.raises(CIFAR10Error, match="32x32"):
        load_cifar10(big, progress=False)


def test_missing_sources_say_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist.*rankbench data cifar10 --download"):
        load_cifar10(tmp_path / "nope.tar.gz")
    with pytest.raises(FileNotFoundError, match=r"not in .*cifar10.*--download.*c58f3010"):
        load_cifar10("cifar10")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="holds no CIFAR-10"):
        load_cifar10(tmp_path / "empty")


# ---------------------------------------------------------------------------------------------
# download (no network here: urlopen is replaced)


class _FakeResponse(io.BytesIO):
    def __init__(self, payload: bytes):
        super().__init__(payload)
        self.headers = {"Content-Length": str(len(payload))}


def test_download_verifies_md5_atomically(tmp_path, monkeypatch):
    payload = b"pretend archive" * 1000
    monkeypatch.setattr(c10.urllib.request, "urlopen", lambda req, timeout: _FakeResponse(payload))
    with pytest.raises(CIFAR10Error, match="md5"):
        download_cifar10(tmp_path / "d", progress=False)
    assert not [p for p in (tmp_path / "d").iterdir()]  # nothing half-written left behind
    monkeypatch.setattr(c10, "CIFAR10_MD5", hashlib.md5(payload).hexdigest())
    out = download_cifar10(tmp_path / "d", progress=False)
    assert out == tmp_path / "d" / "cifar-10-python.tar.gz" and out.read_bytes() == payload

    def offline(req, timeout):
        raise c10.urllib.error.URLError("no network")

    monkeypatch.setattr(c10.urllib.request, "urlopen", offline)
    assert download_cifar10(tmp_path / "d", progress=False) == out  # verified, not re-fetched
    with pytest.raises(ConnectionError, match="by hand"):
        download_cifar10(tmp_path / "e", progress=False)
    with pytest.raises(ValueError, match="folder"):
        download_cifar10(tmp_path / "x.tar.gz")


# ---------------------------------------------------------------------------------------------
# BatchLoader and augmentation


def _images(n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g)


def _reference_augment(x: torch.Tensor, g: torch.Generator, p: int, flip: bool, cutout: int) -> torch.Tensor:
    """Per-image reference (torchvision RandomCrop(padding) + flip, DeVries cutout after
    Normalize), drawing the same parameters in the same order as augment_batch."""
    b, _, h, w = x.shape
    oy = torch.randint(0, 2 * p + 1, (b,), generator=g)
    ox = torch.randint(0, 2 * p + 1, (b,), generator=g)
    fl = torch.rand(b, generator=g) < 0.5
    cy = torch.randint(0, h, (b,), generator=g)
    cx = torch.randint(0, w, (b,), generator=g)
    mean = np.array(CIFAR10_MEAN).reshape(3, 1, 1)
    std = np.array(CIFAR10_STD).reshape(3, 1, 1)
    out = []
    for k in range(b):
        a = np.pad(x[k].numpy(), ((0, 0), (p, p), (p, p)))
        a = a[:, oy[k]:oy[k] + h, ox[k]:ox[k] + w]
        if flip and fl[k]:
            a = a[:, :, ::-1]
        a = (a / 255.0 - mean) / std
        if cutout:
            y1, y2 = np.clip([cy[k] - cutout // 2, cy[k] + cutout // 2], 0, h)
            x1, x2 = np.clip([cx[k] - cutout // 2, cx[k] + cutout // 2], 0, w)
            a[:, y1:y2, x1:x2] = 0.0
        out.append(a)
    return torch.from_numpy(np.stack(out)).float()


@pytest.mark.parametrize("p,flip,cutout", [(4, True, 16), (0, True, 0), (4, False, 0), (2, True, 7), (0, False, 0)])
def test_augment_matches_per_image_reference(p, flip, cutout):
    x = _images(64)
    got = augment_batch(x, torch.Generator().manual_seed(3), crop_padding=p, flip=flip, cutout=cutout)
    want = _reference_augment(x, torch.Generator().manual_seed(3), p, flip, cutout)
    assert got.dtype == torch.float32 and got.shape == x.shape
    assert torch.allclose(got, want, atol=1e-5)


def test_augment_properties():
    x = _images(200)
    # flip only: every image is itself or its mirror, both happen
    out = augment_batch(x, torch.Generator().manual_seed(0), crop_padding=0, flip=True, cutout=0)
    same = (out == normalize(x)).flatten(1).all(1)
    mirrored = (out == normalize(x.flip(-1))).flatten(1).all(1)
    assert (same | mirrored).all() and 60 < mirrored.sum() < 140
    # crop only: a shifted window of the zero-padded image; all 81 offsets reachable
    out = augment_batch(x, torch.Generator().manual_seed(1), crop_padding=4, flip=False, cutout=0)
    xp = normalize(torch.nn.functional.pad(x, (4, 4, 4, 4)))  # zero (black) padding
    offsets = set()
    for k in range(len(x)):
        hits = [(i, j) for i in range(9) for j in range(9)
                if torch.equal(out[k], xp[k, :, i:i + 32, j:j + 32])]
        assert len(hits) == 1
        offsets.add(hits[0])
    assert len(offsets) > 55  # of 81; ~75 expected
    # cutout only: zeros form one axis-aligned rectangle, 8..16 a side, in all channels
    out = augment_batch(x, torch.Generator().manual_seed(2), crop_padding=0, flip=False, cutout=16)
    assert not (normalize(x) == 0).any()  # normalised zero is not a uint8 value
    full = 0
    for k in range(len(x)):
        z = out[k] == 0
        assert torch.equal(z[0], z[1]) and torch.equal(z[0], z[2])
        rows, cols = z[0].any(1).nonzero().flatten(), z[0].any(0).nonzero().flatten()
        hgt, wid = len(rows), len(cols)
        assert 8 <= hgt <= 16 and 8 <= wid <= 16 and z[0].sum() == hgt * wid
        assert rows[-1] - rows[0] + 1 == hgt and cols[-1] - cols[0] + 1 == wid
        full += hgt == wid == 16
        assert torch.equal(out[k][~z], normalize(x[k])[~z])
    assert full > 25  # ~55 expected


def test_normalize():
    x = _images(8)
    got = normalize(x)
    want = (x.double() / 255 - torch.tensor(CIFAR10_MEAN).view(3, 1, 1)) / torch.tensor(CIFAR10_STD).view(3, 1, 1)
    assert got.dtype == torch.float32 and torch.allclose(got.double(), want, atol=1e-5)
    assert torch.allclose(normalize(x.float() / 255), got, atol=1e-5)
    assert torch.allclose(normalize(x[0]), got[0])
    with pytest.raises(TypeError):
        normalize(x.long())


def test_loader_no_augment_in_order():
    x, y = _images(50), torch.arange(50) % 10
    ld = BatchLoader(x, y, 16, shuffle=False, augment=False)
    assert len(ld) == 4 and ld.num_samples == 50
    xs, ys = zip(*ld)
    assert [len(b) for b in ys] == [16, 16, 16, 2]
    assert torch.equal(torch.cat(xs), normalize(x)) and torch.equal(torch.cat(ys), y)
    assert all(b.dtype == torch.int64 for b in ys)
    assert len(BatchLoader(x, y, 16, shuffle=False, augment=False, drop_last=True)) == 3


def test_loader_deterministic_per_seed_and_epoch():
    x, y = _images(100), torch.arange(100) % 10

    def run(seed, epoch, **kw):
        ld = BatchLoader(x, y, 32, shuffle=True, augment=True, seed=seed, **kw)
        ld.set_epoch(epoch)
        return [(a.clone(), b.clone()) for a, b in ld]

    a, b = run(0, 3), run(0, 3)
    assert all(torch.equal(p[0], q[0]) and torch.equal(p[1], q[1]) for p, q in zip(a, b))
    c, d = run(0, 4), run(1, 3)
    assert not torch.equal(a[0][0], c[0][0]) and not torch.equal(a[0][1], c[0][1])
    assert not torch.equal(a[0][0], d[0][0])
    # each epoch is a permutation of the data
    assert sorted(torch.cat([q for _, q in c]).tolist()) == sorted(y.tolist())
    # resuming mid-epoch gives the remaining batches exactly
    ld = BatchLoader(x, y, 32, shuffle=True, augment=True, seed=0)
    ld.set_epoch(3)
    rest = list(ld.batches(start=2))
    assert len(rest) == 2 and all(torch.equal(p[0], q[0]) for p, q in zip(rest, a[2:]))
    # the order does not depend on whether augmentation is on
    plain = BatchLoader(x, y, 32, shuffle=True, augment=False, seed=0)
    plain.set_epoch(3)
    assert torch.equal(torch.cat([q for _, q in plain]), torch.cat([q for _, q in a]))


def test_loader_validates_inputs():
    with pytest.raises(ValueError, match="uint8"):
        BatchLoader(torch.zeros(4, 3, 32, 32), torch.zeros(4), 2, shuffle=False, augment=False)
    with pytest.raises(ValueError, match="labels"):
        BatchLoader(_images(4), torch.zeros(3), 2, shuffle=False, augment=False)
    with pytest.raises(ValueError, match="batch_size"):
        BatchLoader(_images(4), torch.zeros(4), 0, shuffle=False, augment=False)


def test_loader_from_set(bundled):
    ld = BatchLoader.from_set(bundled.test, 256, shuffle=True, augment=True, seed=1)
    assert len(ld) == 4 and sum(len(yb) for _, yb in ld) == 1000


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_loader_cuda_matches_cpu():
    x, y = _images(100), torch.arange(100) % 10
    cpu = BatchLoader(x, y, 32, shuffle=True, augment=True, seed=5)
    for kw in ({"pin_memory": True}, {"preload": True}):
        gpu = BatchLoader(x, y, 32, shuffle=True, augment=True, seed=5, device="cuda", **kw)
        for (a, b), (c, d) in zip(cpu, gpu):
            assert c.is_cuda and d.is_cuda
            assert torch.allclose(a, c.cpu(), atol=1e-5) and torch.equal(b, d.cpu())


# ---------------------------------------------------------------------------------------------
# split order: image sources are class-mixed, the official archive keeps its own order


def _longest_class_run(labels: torch.Tensor) -> int:
    y = labels.numpy()
    changes = np.flatnonzero(np.diff(y) != 0)
    return int(np.diff(np.concatenate([[-1], changes, [len(y) - 1]])).max())


def test_bundled_splits_are_class_mixed(cached_bundled):
    """A pass over any split in loader order sees every class every few images (the paper
    protocol calibrates in loader order): no run of more than 3 images of one class."""
    for name in ("train", "valid", "test"):
        labels = cached_bundled[name].labels
        assert _longest_class_run(labels) <= 3, name
        assert set(labels[:50].tolist()) == set(range(10)), name  # every class in the first 50
    assert cached_bundled.describe()["order"] == "mixed"


def test_bundled_subsets_stay_mixed_and_source_order_is_class_sorted(cached_bundled):
    sub = load_cifar10("bundled", train_size=400, valid_size=100, test_size=100, progress=False)
    for name in ("train", "valid", "test"):
        assert _longest_class_run(sub[name].labels) <= 3, name
    old = load_cifar10("bundled", order="source", progress=False)
    assert old.test.labels.tolist() == sorted(old.test.labels.tolist())  # runs made before data.order
    # the same images, only reordered: the mixed order is a permutation of the source order
    assert sorted(_image_hashes(old.test)) == sorted(_image_hashes(cached_bundled.test))
    assert _image_hashes(old.test) != _image_hashes(cached_bundled.test)


def test_class_interleaved_is_round_robin_and_stable():
    labels = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2])
    order = c10.class_interleaved(labels)
    assert labels[order].tolist() == [0, 1, 2, 0, 1, 2, 0, 2, 2]
    assert order.tolist() == [0, 3, 5, 1, 4, 6, 2, 7, 8]  # within a class: the given order


def test_official_archive_order_unchanged_by_order_setting(tmp_path):
    batches = _official_batches()
    tgz = _write_official_tar(tmp_path / "cifar-10-python.tar.gz", batches)
    for order in ("mixed", "source"):
        s = load_cifar10(tgz, order=order)
        assert s.test.labels.tolist() == batches["test_batch"][1]
        assert s.valid.labels.tolist() == batches["data_batch_5"][1]
        assert s.describe()["order"] == "official"


def test_order_is_validated():
    with pytest.raises(ValueError, match="mixed"):
        load_cifar10("bundled", order="sorted", progress=False)


def test_same_device_treats_cuda_without_index_as_the_current_one():
    from rankbench.data.loader import same_device

    cpu, c0, c, c1 = (torch.device(d) for d in ("cpu", "cuda:0", "cuda", "cuda:1"))
    assert same_device(cpu, cpu) and not same_device(cpu, c0) and not same_device(c, cpu)
    assert same_device(c0, c) and same_device(c, c0) and same_device(c1, c1)  # (current device: 0 here)
    assert not same_device(c0, c1)
