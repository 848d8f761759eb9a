"""The NB101 catalogue (hash -> spec of all 423,624 cells) against real NB101 records: the 1,030
stored specs, the bundled sample's 30,031 hashes and NB101's own parameter counts, which depend
on the vertex numbering. The full checks (every cell's parameter count, a byte-identical
rebuild) are slow-marked."""
from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

import rankbench.nb101 as nb
from rankbench.nb101.catalogue import (UnknownCellError, fill_store_specs, open_catalogue, pack_specs,
                                       unpack_specs)
from rankbench.nb101.spec import CODE_TO_OP, OP_CODES, ModelSpec, matrix_from_string
from rankbench.nb101.store import StoreWriter, bundled_file
from rankbench.references import network_cost
from rankbench.spaces import nb101 as space_mod

ASSETS = Path(__file__).parent / "assets"
REPO = Path(__file__).resolve().parents[1]


def _fixture_specs() -> dict[str, ModelSpec]:
    """The 1,030 real NB101 cells whose spec the source files give (1k vis + 30 NASLib)."""
    out = {r["key"]: ModelSpec(matrix_from_string(r["adjacency"]), [int(o) for o in r["ops"]])
           for r in json.loads((ASSETS / "nb101_1k_specs.json").read_text())["cells"]}
    for h, r in json.loads((ASSETS / "nb101_30.json").read_text())["cells"].items():
        out[h] = ModelSpec(matrix_from_string(r["adjacency"]), r["ops"])
    return out


@pytest.fixture(scope="module")
def cat():
    return open_catalogue()


@pytest.fixture(scope="module")
def sample():
    with nb.open(bundled_file("nb101-sample.h5")) as s:
        yield s


def test_catalogue_holds_every_nb101_cell(cat):
    assert len(cat) == 423_624 == space_mod.NUM_CELLS
    prefix, nv, adj, ops = cat.all_specs()
    assert len(prefix) == 423_624 and (prefix[1:] > prefix[:-1]).all()  # sorted, distinct
    # cells per number of vertices, as rankbench's enumeration counts them (test_nb101_supernet.py)
    assert np.bincount(nv.astype(int)).tolist() == [0, 0, 1, 6, 84, 2441, 62010, 359082]
    assert bundled_file("nb101-catalogue.npz").stat().st_size < 4.5e6


def test_the_1030_stored_specs_map_to_their_own_hash_in_nb101s_numbering(cat):
    specs = _fixture_specs()
    assert len(specs) == 1030
    found, nv, adj, ops = cat.lookup(list(specs))  # each found cell's hash recomputed and compared
    assert found.all()
    for i, (h, want) in enumerate(specs.items()):
        k = int(nv[i])
        got = ModelSpec(adj[i, :k, :k], [CODE_TO_OP[int(o)] for o in ops[i, :k]])
        assert (got.adjacency_string, got.ops) == (want.adjacency_string, want.ops), h  # same numbering
    h = next(iter(specs))
    assert cat.spec(h).hash == h and h in cat and h.upper() in cat


def test_every_sample_hash_is_in_the_catalogue_and_sample_specs_are_catalogue_specs(cat, sample):
    hashes, nv, adj, ops = sample.spec_columns()
    assert len(hashes) == sample.num_cells == 30_031  # every bundled cell has its spec now
    rows = cat.rows(hashes)
    assert (rows >= 0).all()
    cnv, cadj, cops = cat.spec_arrays(rows)
    assert np.array_equal(cnv, nv) and np.array_equal(cadj, adj) and np.array_equal(cops, ops)
    some = random.Random(0).sample(hashes, 200)  # full hashes recomputed for a sample
    assert cat.lookup(some)[0].all()


def test_unknown_hashes_are_reported_not_answered(cat):
    real = next(iter(_fixture_specs()))
    typo = real[:16] + ("0" if real[16] != "0" else "1") + real[17:]  # same first half: rows() matches it
    assert cat.rows([typo])[0] >= 0 and typo not in cat
    with pytest.raises(UnknownCellError, match="not the hash of any of NAS-Bench-101's 423,624 cells"):
        cat.spec(typo)
    assert cat.rows(["0" * 32, "xyz", "g" * 32, b"\xff" * 32]).tolist() == [-1, -1, -1, -1]
    assert "0" * 32 not in cat and 5 not in cat


def test_pack_unpack_round_trip():
    rng = random.Random(1)
    names = [space_mod.draw_cell(rng) for _ in range(300)] + ["_1", "3_5"]
    specs = [space_mod.NB101Arch(n).spec for n in names]
    nv = np.array([s.num_vertices for s in specs], np.int8)
    adj = np.zeros((len(specs), 7, 7), np.uint8)
    ops = np.full((len(specs), 7), -3, np.int8)
    for i, s in enumerate(specs):
        adj[i, :s.num_vertices, :s.num_vertices] = s.matrix
        ops[i, :s.num_vertices] = [OP_CODES[o] for o in s.ops]
    codes = pack_specs(nv, adj, ops)
    assert codes.dtype == np.uint32 and int(codes.max()) < 2 ** 31
    back = unpack_specs(codes)
    assert all(np.array_equal(a, b) for a, b in zip(back, (nv, adj, ops)))


def _specless_store(path: Path, hashes: list[str], sample) -> None:
    """A store holding real cells' parameter counts and 108-epoch accuracy, and no spec."""
    hashes = sorted(hashes)
    with h5py.File(path, "w") as f:
        w = StoreWriter(f)
        w.write_cells(np.array(hashes, "S32"), np.array([sample.params(h) if h in sample else -1 for h in hashes]))
        acc = sample.query_many(hashes, reduce="all")
        w.write_epoch(108, (~np.isnan(acc)).sum(axis=1), {"final_validation_accuracy": acc})
        w.finish(is_sample=False, source="test")


def test_fill_specs_adds_specs_and_changes_no_value(tmp_path, sample):
    real = sample.hashes()[:40]
    fake = "f" * 32
    src = tmp_path / "specless.h5"
    _specless_store(src, real + [fake], sample)
    with nb.open(src) as s:
        with pytest.raises(nb.MissingDataError, match="spec"):
            s.spec(real[0])
        before = s.query_many(real + [fake], reduce="all")
    out = tmp_path / "filled.h5"
    assert fill_store_specs(src, out) == (40, 1)  # the made-up hash is no NB101 cell: it keeps no spec
    with nb.open(out) as s:
        assert s.hashes(with_spec=True) == real
        assert all(s.spec(h).adjacency_string == sample.spec(h).adjacency_string for h in real)
        np.testing.assert_array_equal(s.query_many(real + [fake], reduce="all"), before)
        assert [s.params(h) for h in real] == [sample.params(h) for h in real]
        assert "40 cells: rankbench's NB101 catalogue" in s.info()["provenance"]["spec_sources"]


def _count_mismatches(sample, hashes: list[str]) -> list[str]:
    """Cells whose NB101 network, built from their stored spec (NB101's numbering), does not
    have NB101's stored ``trainable_parameters``."""
    bad = []
    for h in hashes:
        spec = sample.spec(h)
        if network_cost(spec.matrix, spec.ops)[0] != sample.params(h):
            bad.append(h)
    return bad


def test_parameter_counts_of_catalogue_specs_equal_nb101s_on_a_sample(sample):
    # the fast version of the slow test below: 1,500 random cells without a spec in the sources
    sourced = set(_fixture_specs())
    some = random.Random(2).sample([h for h in sample.hashes() if h not in sourced], 1500)
    assert _count_mismatches(sample, some) == []


@pytest.mark.slow
def test_parameter_counts_of_all_30031_bundled_cells_equal_nb101s(sample):
    """Measured (2-core machine): 30,031 of 30,031 match (~10 s). 3,824 of these cells have
    isomorphic numberings whose counts differ, so the numbering is what is tested (~25 s)."""
    hashes = sample.hashes()
    assert len(hashes) == 30_031 and all(sample.params(h) > 0 for h in hashes)
    assert _count_mismatches(sample, hashes) == []
    ambiguous = 0
    for h in hashes:
        spec = sample.spec(h)
        ops, n, bits = space_mod._labelled(spec)
        counts = {network_cost(space_mod._matrix_of(n, nb_),
                               [spec.ops[0]] + [spec.ops[o] for o in order] + [spec.ops[-1]])[0]
                  for order, nb_ in space_mod._relabellings(n, bits)}
        ambiguous += len(counts) > 1
    assert ambiguous == 3824


@pytest.mark.slow
def test_catalogue_rebuild_is_byte_identical(tmp_path):
    """Re-enumerates and re-hashes all 423,624 cells (~1.5-2.5 min on one core)."""
    out = tmp_path / "nb101-catalogue.npz"
    subprocess.run([sys.executable, str(REPO / "data" / "scripts" / "build_nb101_catalogue.py"), "--out", str(out)],
                   check=True, capture_output=True, timeout=1200)
    assert out.read_bytes() == bundled_file("nb101-catalogue.npz").read_bytes()
