"""``rankbench data``: import / info / query through rankbench.cli.main, exit codes and output."""
from __future__ import annotations

import json
from pathlib import Path

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


def test_query_missing_store_exit_3(tmp_path, capsys):
    assert main(["data", "query", "--hash", "0" * 32, "--store", str(tmp_path / "none.h5")]) == 3
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
