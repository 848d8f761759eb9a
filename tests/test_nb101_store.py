"""The TensorFlow-free importer and the store, on the committed real fixture (30 full NB101 cells)."""
from __future__ import annotations

import base64
import io
import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

import rankbench.nb101 as nb
from rankbench.nb101.importer import NotNB101Error, StoreExistsError, import_tfrecord, resolve_destination
from rankbench.nb101.metrics_proto import (
    EvaluationData,
    ModelMetrics,
    ProtoDecodeError,
    decode_model_metrics,
    encode_model_metrics,
)
from rankbench.nb101.tfrecord import NotTFRecordError, masked_crc32c, read_records, write_records

ASSETS = Path(__file__).parent / "assets"
TFRECORD = ASSETS / "nb101_30.tfrecord"
FIELDS8 = ("halfway_train_accuracy", "halfway_validation_accuracy", "halfway_test_accuracy",
           "halfway_training_time", "final_train_accuracy", "final_validation_accuracy",
           "final_test_accuracy", "final_training_time")


@pytest.fixture(scope="module")
def expected() -> dict:
    return json.loads((ASSETS / "nb101_30.json").read_text())["cells"]


@pytest.fixture(scope="module")
def store_path(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("store") / "nb101.h5"
    summary = import_tfrecord(TFRECORD, out, progress=False)
    assert (summary.records, summary.cells, summary.epochs, summary.max_repeats) == (90, 30, (108,), 3)
    return out


@pytest.fixture()
def store(store_path):
    with nb.open(store_path) as s:
        yield s


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# -- framing and protobuf ----------------------------------------------------------------------
def test_masked_crc_known_value():
    # CRC-32C check value of "123456789" is 0xE3069283; masked by TFRecord's rule by hand
    assert masked_crc32c(b"123456789") == 0xC78AB0E5
    assert masked_crc32c(b"") == 0xA282EAD8  # crc32c("") == 0, so masked == the delta


def test_proto_roundtrip_and_unknown_fields():
    mm = ModelMetrics([EvaluationData(0.0, 0.0, 0.1, 0.1, 0.1, "ckpt"),
                       EvaluationData(108.0, 1396.137939453125, 1.0, 0.9255809187889099, 0.92, None)],
                      trainable_parameters=6315018, total_time=1400.5)
    raw = encode_model_metrics(mm)
    assert decode_model_metrics(raw) == mm
    # an unknown varint field 9 and fixed32 field 10 are skipped
    assert decode_model_metrics(raw + b"\x48\x05" + b"\x55\x00\x00\x00\x00") == mm
    assert decode_model_metrics(encode_model_metrics(ModelMetrics(trainable_parameters=-5))).trainable_parameters == -5
    with pytest.raises(ProtoDecodeError):
        decode_model_metrics(raw[:-3])


def test_fixture_records_are_official_rows(expected):
    rows = [json.loads(d) for _, _, d in read_records(TFRECORD)]
    assert len(rows) == 90
    h, epochs, adj, ops, b64 = rows[0]
    assert epochs == 108 and len(adj) == len(ops.split(",")) ** 2
    mm = decode_model_metrics(base64.b64decode(b64))
    assert [e.current_epoch for e in mm.evaluation_data] == [54.0, 108.0]
    assert mm.trainable_parameters == expected[h]["trainable_parameters"]


# -- import + query ----------------------------------------------------------------------------
def test_imported_values_equal_the_source(store, expected):
    assert len(store) == 30 and not store.is_sample
    for h, cell in expected.items():
        reps = cell["epochs"]["108"]
        for f in FIELDS8:
            want = np.array([r[f] for r in reps])
            np.testing.assert_array_equal(store.query(h, metric=f, reduce="all"), want)
            assert store.query(h, metric=f) == pytest.approx(want.mean(), rel=0, abs=1e-15)
        assert store.params(h) == cell["trainable_parameters"]
        spec = store.spec(h)
        assert spec.hash == h and spec.adjacency_string == cell["adjacency"] and list(spec.ops) == cell["ops"]
        assert store.num_repeats(h) == 3


def test_metric_aliases_and_random_repeat(store, expected):
    h, cell = next(iter(expected.items()))
    reps = cell["epochs"]["108"]
    assert store.query(h, metric="test_accuracy", reduce="all").tolist() == [r["final_test_accuracy"] for r in reps]
    assert store.query(h, metric="training_time") == store.query(h, metric="final_training_time")
    picks = {store.query(h, reduce="random", rng=s) for s in range(40)}
    assert picks == {r["final_validation_accuracy"] for r in reps}
    assert store.query(h, reduce="random", rng=3) == store.query(h, reduce="random", rng=3)
    with pytest.raises(ValueError, match="unknown metric"):
        store.query(h, metric="accuracy")
    with pytest.raises(ValueError, match="reduce"):
        store.query(h, reduce="median")


def test_query_by_spec_and_missing_cells(store, expected):
    h, cell = next(iter(expected.items()))
    spec = nb.ModelSpec.from_string(cell["adjacency"], cell["ops"])
    assert store.query(spec) == store.query(h) and spec in store and h.upper() in store
    with pytest.raises(nb.NotInStoreError, match=f"not in this store .*{store.path.name}.*30 cells"):
        store.query("0" * 32)
    with pytest.raises(KeyError):
        store.params("f" * 32)
    with pytest.raises(nb.MissingDataError, match="no 4-epoch results"):
        store.query(h, epochs=4)
    with pytest.raises(nb.MissingDataError, match="total_time"):
        store.query(h, metric="total_time")


def test_query_many_with_missing_hashes(store, expected):
    hashes = list(expected)
    asked = [hashes[0], "0" * 32, hashes[1], "not-a-hash", hashes[2] + "0", nb.ModelSpec.from_string(
        expected[hashes[3]]["adjacency"], expected[hashes[3]]["ops"])]
    got = store.query_many(asked)
    want = [np.mean([r["final_validation_accuracy"] for r in expected[h]["epochs"]["108"]])
            for h in (hashes[0], hashes[1], hashes[3])]
    assert np.isnan(got[[1, 3, 4]]).all()
    np.testing.assert_allclose(got[[0, 2, 5]], want, rtol=0, atol=1e-15)
    allr = store.query_many(asked, reduce="all", metric="test_accuracy")
    assert allr.shape == (6, 3) and np.isnan(allr[1]).all()
    assert allr[0].tolist() == [r["final_test_accuracy"] for r in expected[hashes[0]]["epochs"]["108"]]
    rnd = store.query_many(hashes, reduce="random", rng=0)
    for h, v in zip(hashes, rnd):
        assert v in [r["final_validation_accuracy"] for r in expected[h]["epochs"]["108"]]
    with pytest.raises(nb.NotInStoreError):
        store.query_many(asked, missing="raise")
    assert store.query_many([]).shape == (0,)
    np.testing.assert_array_equal(store.rows(np.array(hashes[:2])), [store.row(hashes[0]), store.row(hashes[1])])


def test_rows_match_exact_hashes_only(store, expected):
    h = sorted(expected)[0]
    r = store.row(h)
    asked = [h, h.upper(), " " + h, h + "0", h[:31], h[:31] + "\x16", "\x10" * 32, "é" * 32, "0" * 32]
    assert store.rows(asked).tolist() == [r, r] + [-1] * 7
    assert store.rows(np.array([h, h.upper()])).tolist() == [r, r]
    assert store.rows(np.array([h.encode()], dtype="S32")).tolist() == [r]


def test_coverage_and_info(store, expected):
    hashes = list(expected)
    cov = store.coverage(hashes[:5] + hashes[:2] + ["0" * 32])
    assert (cov.asked, cov.found, cov.missing) == (6, 5, ["0" * 32])
    assert cov.fraction == pytest.approx(5 / 6)
    info = store.info()
    assert info["num_cells"] == 30 and info["epochs"] == [108] and info["is_sample"] is False
    assert info["repeats_per_cell"] == {108: {3: 30}} and info["cells_with_spec"] == 30
    assert info["fields"][108] == list(FIELDS8)  # total_time is not in the fixture: absent
    assert info["provenance"]["source"] == "nb101_30.tfrecord"
    assert store.hashes() == sorted(expected)


# -- corrupt input: clear error, nothing left behind -------------------------------------------
def _import_fails(tmp_path: Path, data: bytes, match: str) -> None:
    src = tmp_path / "in" / "bad.tfrecord"
    src.parent.mkdir()
    src.write_bytes(data)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    with pytest.raises(nb.CorruptRecordError, match=match):
        import_tfrecord(src, out_dir / "nb101.h5", progress=False)
    assert _leftovers(out_dir) == []


def _offsets() -> list[int]:
    return [off for _, off, _ in read_records(TFRECORD)]


def test_flipped_data_byte_is_a_crc_error(tmp_path):
    data = bytearray(TFRECORD.read_bytes())
    off = _offsets()[7]
    data[off + 12 + 20] ^= 0x01
    _import_fails(tmp_path, bytes(data), f"record 7, byte offset {off}: data CRC mismatch")


def test_flipped_length_byte_is_a_crc_error(tmp_path):
    data = bytearray(TFRECORD.read_bytes())
    off = _offsets()[3]
    data[off] ^= 0x01
    _import_fails(tmp_path, bytes(data), f"record 3, byte offset {off}: length CRC mismatch")


@pytest.mark.parametrize("cut", [5, 30, -2])
def test_truncated_file_is_an_error(tmp_path, cut):
    offs = _offsets()
    full = TFRECORD.read_bytes()
    end = offs[-1] + cut if cut > 0 else len(full) + cut
    _import_fails(tmp_path, full[:end], f"record 89, byte offset {offs[-1]}: truncated")


def test_truncated_record_message_counts_the_crc(tmp_path):
    offs = _offsets()
    full = TFRECORD.read_bytes()
    # record 89 is whole but for the last byte of its data CRC: length + 3 bytes after its header
    last = len(full) - offs[-1] - 16
    _import_fails(tmp_path, full[:-1], rf"record 89, byte offset {offs[-1]}: truncated record: its header "
                                        rf"announces {last} data bytes and a 4-byte CRC \({last + 4} bytes\), only "
                                        rf"{last + 3} bytes are left")


def test_existing_store_survives_a_failed_import(tmp_path, store_path):
    out = tmp_path / "nb101.h5"
    shutil.copy(store_path, out)
    before = out.read_bytes()
    bad = tmp_path / "bad.tfrecord"
    bad.write_bytes(TFRECORD.read_bytes()[:-1])
    with pytest.raises(nb.CorruptRecordError):
        import_tfrecord(bad, out, progress=False, force=True)
    assert out.read_bytes() == before and _leftovers(tmp_path) == ["bad.tfrecord", "nb101.h5"]


def _row(adj: str, ops: str, h: str = "a" * 32, epochs=108, b64: str | None = None) -> bytes:
    if b64 is None:
        mm = ModelMetrics([EvaluationData(108.0, 1.0, 1.0, 0.9, 0.9)], trainable_parameters=1)
        b64 = base64.b64encode(encode_model_metrics(mm)).decode()
    return json.dumps([h, epochs, adj, ops, b64]).encode()


@pytest.mark.parametrize("row, match", [
    (b"not json", "not a UTF-8 JSON row"),
    (b'["a", 108]', "5-element"),
    (_row("0100", "input,output", h="xyz"), "hash 'xyz'"),
    (_row("0100", "input,output", epochs="108"), "epochs"),
    (_row("0100", "input,output", b64="!!!"), "base64"),
    (_row("0100", "input,output", b64=base64.b64encode(b"\x0a\x05\x09").decode()), "protobuf"),
    (_row("010", "input,output"), "n\\*n"),
    (_row("0100", "input,conv3x3-bn-relu,output"), "3 ops for a 2-vertex"),
    (_row("0100", "input,conv5x5"), "unknown op"),
    (_row("0110", "input,output"), "upper-triangular"),
    (_row("0100", "conv3x3-bn-relu,output"), "first op"),
    (_row("0100", "input,maxpool3x3"), "last op"),
    (_row("010001000", "input,output,output"), "interior"),
])
def test_malformed_records_are_errors(tmp_path, row, match):
    good = _row("0100", "input,output", h="b" * 32)
    path = tmp_path / "rows.tfrecord"
    write_records(path, [good, row])
    out = tmp_path / "out" / "nb101.h5"
    with pytest.raises(nb.CorruptRecordError, match=f"record 1, byte offset {16 + len(good)}: .*{match}"):
        import_tfrecord(path, out, progress=False)
    assert not out.parent.exists() or _leftovers(out.parent) == []


def test_official_layout_init_halfway_final(tmp_path):
    # official records hold 3 evaluations (at init, halfway, final) with checkpoint paths and
    # total_time; synthetic values here, only the layout is under test
    def ev(epoch, acc):
        return EvaluationData(float(epoch), epoch * 10.0, acc, acc - 0.01, acc - 0.02, f"/ckpt/{epoch}")

    full = ModelMetrics([ev(0, 0.1), ev(54, 0.7), ev(108, 0.9)], trainable_parameters=227274, total_time=1234.5)
    shuffled = ModelMetrics([ev(108, 0.8), ev(0, 0.1), ev(54, 0.6)], trainable_parameters=227274)
    rows = [_row("0100", "input,output", h="c" * 32,
                 b64=base64.b64encode(encode_model_metrics(m)).decode()) for m in (full, shuffled)]
    path = tmp_path / "official.tfrecord"
    write_records(path, rows)
    out = tmp_path / "s.h5"
    import_tfrecord(path, out, progress=False)
    with nb.open(out) as s:
        assert s.query("c" * 32, reduce="all").tolist() == [0.89, 0.79]
        assert s.query("c" * 32, metric="halfway_train_accuracy", reduce="all").tolist() == [0.7, 0.6]
        assert s.query("c" * 32, metric="training_time", reduce="all").tolist() == [1080.0, 1080.0]
        assert s.query("c" * 32, metric="total_time", reduce="all").tolist() == [1234.5]
        assert s.params("c" * 32) == 227274 and s.num_repeats("c" * 32) == 2


def test_empty_file_is_an_error(tmp_path):
    _import_fails(tmp_path, b"", "no records")


@pytest.mark.parametrize("data, words", [
    (bytes(range(256)) * 20, "first record's header fails its check"),  # arbitrary bytes
    (b"\x89HDF\r\n\x1a\n" + bytes(100), "HDF5 file"),
    (b"\x1f\x8b" + bytes(100), "gzip"),
    (b"tiny", "4 bytes, shorter than one record header"),
])
def test_not_a_tfrecord_at_all(tmp_path, data, words):
    path = tmp_path / "x.tfrecord"
    path.write_bytes(data)
    with pytest.raises(NotTFRecordError, match=f"not a TFRecord file: .*{words}"):
        list(read_records(path))


def test_store_given_as_tfrecord_is_not_a_tfrecord(tmp_path, store_path):
    with pytest.raises(NotTFRecordError, match="looks like an HDF5 file"):
        import_tfrecord(store_path, tmp_path / "o.h5", progress=False)
    assert not (tmp_path / "o.h5").exists()


def test_bad_first_record_data_is_corruption_not_another_format(tmp_path):
    data = bytearray(TFRECORD.read_bytes())
    data[12 + 20] ^= 0x01  # record 0's header is fine, its data is not
    with pytest.raises(nb.CorruptRecordError, match="record 0, byte offset 0: data CRC mismatch") as e:
        list(read_records(io.BytesIO(bytes(data))))
    assert not isinstance(e.value, NotTFRecordError)


def test_tfrecord_of_something_else(tmp_path):
    path = tmp_path / "other.tfrecord"
    write_records(path, [b"not an NB101 row", _row("0100", "input,output")])
    with pytest.raises(NotNB101Error, match="record 0, byte offset 0: a TFRecord file, but not NAS-Bench-101's"):
        import_tfrecord(path, tmp_path / "o.h5", progress=False)


# -- the destination, checked before the import -------------------------------------------------
def test_destination_folder_means_nb101_h5_inside(tmp_path, monkeypatch):
    assert resolve_destination(tmp_path) == tmp_path / "nb101.h5"
    assert resolve_destination(str(tmp_path / "new") + "/") == tmp_path / "new" / "nb101.h5"
    assert resolve_destination(tmp_path / "new" / "s.h5") == tmp_path / "new" / "s.h5"
    monkeypatch.setenv("RANKBENCH_HOME", str(tmp_path / "home"))
    assert resolve_destination(None) == tmp_path / "home" / "nb101.h5"


def test_destination_refuses_what_it_would_clobber(tmp_path, store_path):
    other = tmp_path / "notes.h5"
    other.write_text("my notes")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="not a rankbench NB101 store; refusing to overwrite"):
        resolve_destination(other)
    with pytest.raises(ValueError, match="file, not a folder"):
        resolve_destination(tmp_path / "file" / "nb101.h5")
    with pytest.raises(ValueError, match="ending in .h5"):
        resolve_destination(tmp_path / "store")
    with pytest.raises(StoreExistsError, match=r"already holds an NB101 store \(30 cells, 90 records, from "
                                               r"nb101_30.tfrecord\); refusing to replace it: add --force"):
        resolve_destination(store_path)
    assert resolve_destination(store_path, force=True) == store_path  # replaced atomically, when asked
    with pytest.raises(ValueError, match="not a rankbench NB101 store; refusing to overwrite"):
        resolve_destination(other, force=True)  # --force never replaces anything but a store
    assert other.read_text() == "my notes"


def test_import_into_a_folder(tmp_path):
    s = import_tfrecord(TFRECORD, tmp_path, progress=False)
    assert s.path == tmp_path / "nb101.h5" and s.path.is_file()


# -- a store far smaller than NB101 says so --------------------------------------------------------
def test_small_store_warns_and_says_when_it_shadows_the_sample(tmp_path, monkeypatch, store_path):
    with nb.open(store_path) as s:  # given as an argument: it shadows nothing
        assert "holds only 30 cells; NAS-Bench-101 has 423,624" in s.warning and "shadows" not in s.warning
        assert s.info()["warning"] == s.warning
    monkeypatch.delenv("RANKBENCH_DATA", raising=False)
    monkeypatch.setenv("RANKBENCH_HOME", str(tmp_path))
    shutil.copy(store_path, tmp_path / "nb101.h5")
    with nb.open() as s:
        assert "30 cells" in s.warning and "shadows the sample" in s.warning
    with nb.open(nb.store.bundled_file("nb101-sample.h5")) as s:
        assert s.warning is None
    assert nb.store.small_store_warning("x", nb.store.NB101_NUM_CELLS, shadows_sample=True) is None


# -- open(): resolution order, laziness ----------------------------------------------------------
def test_open_resolution_order(tmp_path, monkeypatch, store_path):
    monkeypatch.delenv("RANKBENCH_DATA", raising=False)
    monkeypatch.setenv("RANKBENCH_HOME", str(tmp_path / "home"))
    with nb.open() as s:  # nothing imported: the bundled sample
        assert s.is_sample and s.path.name == "nb101-sample.h5" and s.resolved_from == "the bundled sample"
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(store_path, home / "nb101.h5")
    with nb.open() as s:  # the documented default
        assert not s.is_sample and s.path == home / "nb101.h5" and s.resolved_from == "the default location"
    other = tmp_path / "env" / "nb101.h5"
    other.parent.mkdir()
    shutil.copy(store_path, other)
    monkeypatch.setenv("RANKBENCH_DATA", str(other))
    with nb.open() as s:
        assert s.path == other and s.resolved_from == "$RANKBENCH_DATA"
    monkeypatch.setenv("RANKBENCH_DATA", str(other.parent))  # a folder holding nb101.h5
    with nb.open() as s:
        assert s.path == other
    with nb.open(store_path) as s:  # the argument beats everything
        assert s.path == store_path and s.resolved_from == "the path argument"
    monkeypatch.setenv("RANKBENCH_DATA", str(tmp_path / "missing.h5"))
    with pytest.raises(FileNotFoundError, match="RANKBENCH_DATA"):
        nb.open()


def test_missing_store_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        nb.open(tmp_path / "nope.h5")
    msg = str(e.value)
    assert "nope.h5" in msg and "rankbench data import nasbench_only108.tfrecord" in msg
    assert "storage.googleapis.com/nasbench/nasbench_only108.tfrecord" in msg


def test_not_a_store(tmp_path):
    p = tmp_path / "x.h5"
    p.write_bytes(b"hello")
    with pytest.raises(ValueError, match="not an HDF5 file"):
        nb.open(p)


def test_open_is_lazy(store_path):
    t = time.perf_counter()
    s = nb.open(store_path)
    assert time.perf_counter() - t < 0.5
    assert s._hashes is None and s._cols == {}
    s.query_many(s.hashes()[:3])
    assert s._hashes is not None and list(s._cols) == [(108, "final_validation_accuracy")]
    s.close()


# -- the bundled sample ------------------------------------------------------------------------
def test_bundled_sample(expected):
    with nb.open(nb.store.bundled_file("nb101-sample.h5")) as s:
        info = s.info()
        assert s.is_sample and info["num_cells"] == 30031 and info["epochs"] == [4, 12, 36, 108]
        assert info["repeats_per_cell"][108] == {1: 30001, 3: 30}
        assert info["cells_with_spec"] == 30031  # 1,030 from the sources, the rest from the catalogue
        # the 30 full cells carry the same values as the fixture made from the same pkl
        for h, cell in expected.items():
            got = s.query(h, metric="test_accuracy", reduce="all")
            assert got.tolist() == [r["final_test_accuracy"] for r in cell["epochs"]["108"]]
        # a vis cell: one repeat, validation accuracy only (real value from nasbench-vis-20k.json)
        h = "00005c142e6f48ac74fdcf73e3439874"
        assert s.query(h, reduce="all").tolist() == [0.9304887652397156]
        assert s.query(h, epochs=4) == 0.3604767620563507
        assert s.params(h) == 8555530 and s.spec(h).hash == h
        with pytest.raises(nb.MissingDataError, match="test_accuracy"):
            s.query(h, metric="test_accuracy")
        assert s.hashes(with_spec=True) == s.hashes()
