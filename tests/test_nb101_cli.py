"""``rankbench data``: import / info / query through rankbench.cli.main, exit codes and output."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rankbench.cli import main

ASSETS = Path(__file__).parent / "assets"
TFRECORD = ASSETS / "nb101_30.tfrecord"


@pytest.fixture(scope="module")
def expected() -> dict:
    return json.loads((ASSETS / "nb101_30.json").read_text())["cells"]


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "nb101.h5"
    assert main(["data", "import", str(TFRECORD), "--out", str(out), "--quiet"]) == 0
    return out


def test_import_reports_what_it_wrote(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("RANKBENCH_HOME", str(tmp_path / "home"))
    assert main(["data", "import", str(TFRECORD), "--quiet"]) == 0  # default --out
    out = capsys.readouterr().out
    assert str(tmp_path / "home" / "nb101.h5") in out and "30 cells, 90 records" in out
    assert (tmp_path / "home" / "nb101.h5").is_file()


def test_import_corrupt_file_exit_2_nothing_written(tmp_path, capsys):
    bad = tmp_path / "bad.tfrecord"
    data = bytearray(TFRECORD.read_bytes())
    data[100] ^= 0xFF
    bad.write_bytes(bytes(data))
    out = tmp_path / "o" / "nb101.h5"
    assert main(["data", "import", str(bad), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "record 0, byte offset 0" in err and "CRC mismatch" in err and "download the file again" in err
    assert not out.exists() and (not out.parent.exists() or not any(out.parent.iterdir()))
    assert main(["data", "import", str(tmp_path / "missing.tfrecord"), "--quiet"]) == 2


def test_import_of_a_file_that_is_no_tfrecord(tmp_path, capsys, store):
    noise = tmp_path / "noise.bin"
    noise.write_bytes(bytes(range(7, 256)) * 10)
    for src, words in ((store, "looks like an HDF5 file"), (noise, "first record's header fails its check")):
        assert main(["data", "import", str(src), "--out", str(tmp_path / "o.h5"), "--quiet"]) == 2
        err = capsys.readouterr().err
        assert "not a TFRecord file" in err and words in err and "download the file again" not in err
        assert "nasbench_only108.tfrecord" in err
    assert not (tmp_path / "o.h5").exists()


def test_import_into_an_existing_folder(tmp_path, capsys):
    assert main(["data", "import", str(TFRECORD), "--out", str(tmp_path), "--quiet"]) == 0
    assert (tmp_path / "nb101.h5").is_file() and f"wrote {tmp_path / 'nb101.h5'}" in capsys.readouterr().out


def _other_h5(d: Path) -> Path:
    (d / "notes.h5").write_text("mine")
    return d / "notes.h5"


def _under_a_file(d: Path) -> Path:
    (d / "f").write_text("x")
    return d / "f" / "nb101.h5"


@pytest.mark.parametrize("make, words", [
    (_other_h5, "refusing to overwrite"),
    (_under_a_file, "is a file, not a folder"),
    (lambda d: d / "store", "ending in .h5"),
])
def test_import_checks_the_destination_before_reading(tmp_path, capsys, monkeypatch, make, words):
    import rankbench.nb101.importer as importer

    monkeypatch.setattr(importer, "read_records", lambda *a, **k: pytest.fail("the import started"))
    out = make(tmp_path)
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert main(["data", "import", str(TFRECORD), "--out", str(out), "--quiet"]) == 2
    assert words in capsys.readouterr().err
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before


def test_small_import_warns_that_it_shadows_the_sample(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("RANKBENCH_DATA", raising=False)
    monkeypatch.setenv("RANKBENCH_HOME", str(tmp_path))
    assert main(["data", "import", str(TFRECORD), "--quiet"]) == 0  # to the default location
    err = capsys.readouterr().err
    assert "warning:" in err and "holds only 30 cells; NAS-Bench-101 has 423,624" in err
    assert "shadows the sample" in err
    assert main(["data", "info"]) == 0  # found via the default location, in place of the sample
    out, err = capsys.readouterr()
    assert "(imported store, found via the default location)" in out
    assert "30 cells" in err and "shadows the sample" in err


def test_query_by_hash(store, expected, capsys):
    h, cell = next(iter(expected.items()))
    assert main(["data", "query", "--hash", h, "--store", str(store)]) == 0
    out = capsys.readouterr().out
    assert str(store) in out and h in out and f"{cell['trainable_parameters']:,}" in out
    assert "repeat 3" in out and "mean" in out and "final_test_accuracy" in out


def test_query_json(store, expected, capsys):
    h, cell = next(iter(expected.items()))
    assert main(["data", "query", "--adjacency", cell["adjacency"], "--ops", ",".join(cell["ops"]),
                 "--store", str(store), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["hash"] == h and doc["store"]["path"] == str(store) and doc["store"]["is_sample"] is False
    assert doc["trainable_parameters"] == cell["trainable_parameters"] and doc["num_repeats"] == 3
    reps = [r["final_validation_accuracy"] for r in cell["epochs"]["108"]]
    assert doc["metrics"]["final_validation_accuracy"]["repeats"] == reps
    assert doc["metrics"]["final_validation_accuracy"]["mean"] == pytest.approx(sum(reps) / 3, abs=1e-15)
    assert doc["spec"] == {"adjacency": cell["adjacency"], "ops": cell["ops"]}


def test_query_not_in_store_exit_3(store, capsys):
    assert main(["data", "query", "--hash", "0" * 32, "--store", str(store)]) == 3
    err = capsys.readouterr().err
    assert f"not in this store ({store}, 30 cells" in err
    assert "rankbench data import nasbench_only108.tfrecord" in err


def test_query_missing_epochs_exit_3(store, expected, capsys):
    h = next(iter(expected))
    assert main(["data", "query", "--hash", h, "--store", str(store), "--epochs", "4"]) == 3
    assert "no 4-epoch results" in capsys.readouterr().err


@pytest.mark.parametrize("argv, words", [
    (["--adjacency", "0100", "--ops", "input,conv5x5"], "not an NB101 op"),
    (["--adjacency", "0110", "--ops", "input,output"], "upper-triangular"),
    (["--adjacency", "01000", "--ops", "input,output"], "5 characters"),
    (["--adjacency", "0100"], "needs --ops"),
    (["--hash", "xyz"], "not an NB101 hash"),
])
def test_query_invalid_input_exit_2(store, capsys, argv, words):
    assert main(["data", "query", *argv, "--store", str(store)]) == 2
    assert words in capsys.readouterr().err


def test_missing_store_is_a_bad_argument_exit_2(tmp_path, capsys):
    # 3 means "the store lacks the cell"; a --store that does not exist is a wrong argument
    for cmd in (["query", "--hash", "0" * 32], ["info"], ["fill-specs"]):
        assert main(["data", *cmd, "--store", str(tmp_path / "none.h5")]) == 2
        assert "rankbench data import nasbench_only108.tfrecord" in capsys.readouterr().err


def test_info(store, capsys, monkeypatch, tmp_path):
    assert main(["data", "info", "--store", str(store), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["num_cells"] == 30 and doc["repeats_per_cell"] == {"108": {"3": 30}}
    monkeypatch.delenv("RANKBENCH_DATA", raising=False)
    monkeypatch.setenv("RANKBENCH_HOME", str(tmp_path))
    assert main(["data", "info"]) == 0  # falls back to the bundled sample and says so
    out, err = capsys.readouterr()
    assert "nb101-sample.h5 (bundled sample)" in out and "30,031" in out
    assert "found via" not in out and "warning" not in err


def test_query_sample_cell(capsys, monkeypatch, tmp_path):
    monkeypatch.delenv("RANKBENCH_DATA", raising=False)
    monkeypatch.setenv("RANKBENCH_HOME", str(tmp_path))
    assert main(["data", "query", "--hash", "00005c142e6f48ac74fdcf73e3439874", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["store"]["is_sample"] is True and doc["num_repeats"] == 1
    assert doc["metrics"]["final_validation_accuracy"] == {"repeats": [0.9304887652397156],
                                                          "mean": 0.9304887652397156}


# -- issue 21: replacing a store, short files, query fixes ----------------------------------------
def _first_records(tmp_path: Path, n: int) -> Path:
    """The fixture cut after its first ``n`` records: a file cut at a record boundary."""
    from rankbench.nb101.tfrecord import read_records

    offsets = [off for _, off, _ in read_records(TFRECORD)]
    path = tmp_path / "trunc.tfrecord"
    path.write_bytes(TFRECORD.read_bytes()[:offsets[n]])
    return path


def test_import_refuses_to_replace_a_store_without_force(tmp_path, capsys, store):
    import shutil

    existing = tmp_path / "existing.h5"
    shutil.copy(store, existing)
    before = existing.read_bytes()
    trunc = _first_records(tmp_path, 60)
    assert main(["data", "import", str(trunc), "--out", str(existing), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert f"{existing} already holds an NB101 store (30 cells, 90 records, from nb101_30.tfrecord)" in err
    assert "add --force to replace it, or give another --out" in err
    assert existing.read_bytes() == before
    # asked for: replaced, and the cut file is called out (records are repeat-major: 2 of 3 each)
    assert main(["data", "import", str(trunc), "--out", str(existing), "--quiet", "--force"]) == 0
    out, err = capsys.readouterr()
    assert "30 cells, 60 records" in out
    assert "WARNING: fewer than 3 records per cell: 30 of 30 cells at 108 epochs" in err
    assert "the file is incomplete" in err


def test_short_file_warns_and_full_file_does_not(tmp_path, capsys):
    assert main(["data", "import", str(_first_records(tmp_path, 61)), "--out", str(tmp_path / "a.h5"),
                 "--quiet"]) == 0
    assert "WARNING: fewer than 3 records per cell: 29 of 30 cells at 108 epochs" in capsys.readouterr().err
    assert main(["data", "import", str(TFRECORD), "--out", str(tmp_path / "b.h5"), "--quiet"]) == 0
    assert "WARNING" not in capsys.readouterr().err


def test_query_accepts_short_op_names(store, expected, capsys):
    h, cell = next(iter(expected.items()))
    short = ",".join(o.replace("-bn-relu", "") for o in cell["ops"])
    assert "conv3x3," in short or "conv1x1," in short
    assert main(["data", "query", "--adjacency", cell["adjacency"], "--ops", short, "--store", str(store),
                 "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["hash"] == h and doc["spec"]["ops"] == cell["ops"] and doc["pruned"] is None
    assert main(["data", "query", "--adjacency", "0100", "--ops", "input,conv5x5", "--store", str(store)]) == 2
    assert "(or conv3x3, conv1x1, maxpool3x3)" in capsys.readouterr().err


def test_query_says_what_pruning_removed(store, capsys):
    # input -> conv3x3 -> output, and a max-pool (vertex 2) fed by the input that feeds nothing
    argv = ["data", "query", "--adjacency", "0110000100000000", "--ops", "input,conv3x3,maxpool3x3,output",
            "--store", str(store)]
    assert main(argv) == 3  # a real NB101 cell, not in the 30-cell store
    out, err = capsys.readouterr()
    assert ("pruned: vertex 2 of the given spec is on no input -> output path and removed, as NB101 does; "
            "the cell is adjacency 010001000 ops input,conv3x3-bn-relu,output") in out
    assert "not in this store" in err
    assert main(argv + ["--json"]) == 3
    doc = json.loads(capsys.readouterr().out)
    assert doc["pruned"] == {"removed_vertices": [2], "adjacency": "010001000",
                             "ops": ["input", "conv3x3-bn-relu", "output"]}


def test_query_prints_the_spec_of_any_nb101_hash(store, capsys):
    from rankbench.nb101.spec import ModelSpec, matrix_from_string

    cell = json.loads((ASSETS / "nb101_1k_specs.json").read_text())["cells"][7]  # not in the 30-cell store
    want = ModelSpec(matrix_from_string(cell["adjacency"]), [int(o) for o in cell["ops"]])
    assert main(["data", "query", "--hash", cell["key"], "--store", str(store), "--json"]) == 3
    out, err = capsys.readouterr()
    doc = json.loads(out)
    assert doc["in_store"] is False and doc["spec_source"] == "catalogue" and doc["metrics"] == {}
    assert doc["spec"] == {"adjacency": want.adjacency_string, "ops": list(want.ops)}
    assert f"cell {cell['key']} is not in this store ({store}, 30 cells" in err
    assert main(["data", "query", "--hash", cell["key"], "--store", str(store)]) == 3
    assert "(from the NB101 catalogue: NB101's numbering)" in capsys.readouterr().out
    typo = cell["key"][:31] + ("0" if cell["key"][31] != "0" else "1")
    assert main(["data", "query", "--hash", typo, "--store", str(store)]) == 3
    assert "no NAS-Bench-101 cell has this hash either" in capsys.readouterr().err


def test_fill_specs_cli(tmp_path, capsys, monkeypatch, store):
    import h5py

    from rankbench import nb101
    from rankbench.nb101.store import StoreWriter

    monkeypatch.delenv("RANKBENCH_DATA", raising=False)
    assert main(["data", "fill-specs"]) == 0  # the bundled sample: nothing to do
    assert "already has its spec; nothing written" in capsys.readouterr().out
    with nb101.open(store) as st:  # the 30 cells' metrics, without their specs
        hashes, acc = st.hashes(), st.query_many(st.hashes(), reduce="all")
        specs = {h: st.spec(h).adjacency_string for h in hashes}
    bare = tmp_path / "bare.h5"
    with h5py.File(bare, "w") as f:
        w = StoreWriter(f)
        w.write_cells(np.array(hashes, "S32"), np.full(len(hashes), -1))
        w.write_epoch(108, np.full(len(hashes), 3), {"final_validation_accuracy": acc})
        w.finish(is_sample=False)
    other = tmp_path / "other.h5"
    other.write_text("mine")
    assert main(["data", "fill-specs", "--store", str(bare), "--out", str(other), "--quiet"]) == 2
    assert "add --force" in capsys.readouterr().err and other.read_text() == "mine"
    assert main(["data", "fill-specs", "--store", str(bare), "--quiet"]) == 0  # in place
    assert "30 specs filled in from the NB101 catalogue" in capsys.readouterr().out
    with nb101.open(bare) as st:
        assert {h: st.spec(h).adjacency_string for h in st.hashes()} == specs
        np.testing.assert_array_equal(st.query_many(hashes, reduce="all"), acc)
