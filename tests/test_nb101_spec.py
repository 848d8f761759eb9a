"""NB101 specs on real cells: hashes and parameter counts, and every validation rule."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rankbench.nb101 import InvalidSpecError, ModelSpec
from rankbench.nb101.network import nb101_parameters

ASSETS = Path(__file__).parent / "assets"


@pytest.fixture(scope="module")
def cells() -> list[dict]:
    return json.loads((ASSETS / "nb101_1k_specs.json").read_text())["cells"]


def test_hash_of_all_1000_real_cells_equals_their_key(cells):
    assert len(cells) == 1000
    wrong = [c["key"] for c in cells if ModelSpec.from_string(c["adjacency"], c["ops"]).hash != c["key"]]
    assert wrong == []


def test_parameter_count_of_real_cells(cells):
    # every 200th cell: builds NB101's 128-channel network, so keep the sample small
    for c in cells[::200]:
        spec = ModelSpec.from_string(c["adjacency"], c["ops"])
        assert nb101_parameters(spec) == c["trainable_parameters"], c["key"]


I, O, C3, C1, MP = "input", "output", "conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3"


def _m(n, edges):
    m = np.zeros((n, n), int)
    for i, j in edges:
        m[i, j] = 1
    return m


@pytest.mark.parametrize("matrix, ops, words", [
    (np.zeros((2, 3), int), [I, O], "square"),
    (np.array([[0, 2], [0, 0]]), [I, O], "0 or 1"),
    (_m(3, [(0, 1), (1, 2)]), [I, O], "must match"),
    (np.zeros((1, 1), int), [I], "at least"),
    (_m(8, [(0, 7)]), [I] + [C3] * 6 + [O], "at most 7"),
    (_m(3, [(0, 1), (1, 2), (2, 1)]), [I, C3, O], "upper-triangular"),
    (_m(3, [(0, 1), (1, 1), (1, 2)]), [I, C3, O], "upper-triangular"),
    (_m(7, [(0, 1), (0, 2), (0, 3), (0, 4), (0, 5), (1, 6), (2, 6), (3, 6), (4, 6), (5, 6)]),
     [I, C3, C3, C3, C3, C3, O], "at most 9"),
    (_m(3, [(0, 1), (1, 2)]), [C3, C3, O], "first op"),
    (_m(3, [(0, 1), (1, 2)]), [I, C3, C3], "last"),
    (_m(4, [(0, 1), (1, 2), (2, 3)]), [I, O, C3, O], "interior"),
    (_m(3, [(0, 1), (1, 2)]), [I, "conv5x5", O], "not an NB101 op"),
    (_m(3, [(0, 1), (1, 2)]), [-1, 7, -2], "not an NB101 code"),
    (_m(4, [(0, 1), (2, 3)]), [I, C3, C1, O], "not connected"),
])
def test_every_validation_rule_has_its_message(matrix, ops, words):
    with pytest.raises(InvalidSpecError, match=words):
        ModelSpec(matrix, ops)


@pytest.mark.parametrize("adjacency, words", [
    ("011", "3 characters"),
    ("01000", "5 characters"),
    ("0120", "only 0 and 1"),
])
def test_bad_adjacency_strings(adjacency, words):
    with pytest.raises(InvalidSpecError, match=words):
        ModelSpec.from_string(adjacency, "input,output")


def test_hash_is_isomorphism_invariant():
    # two parallel branches listed in either order are the same cell
    a = ModelSpec(_m(4, [(0, 1), (0, 2), (1, 3), (2, 3)]), [I, C3, MP, O])
    b = ModelSpec(_m(4, [(0, 1), (0, 2), (1, 3), (2, 3)]), [I, MP, C3, O])
    c = ModelSpec(_m(4, [(0, 1), (0, 2), (1, 3), (2, 3)]), [I, C1, C3, O])
    assert a.hash == b.hash != c.hash


def test_pruning_drops_dead_vertices():
    # vertex 2 is fed by the input but reaches nothing: pruned, like NB101 does
    spec = ModelSpec(_m(4, [(0, 1), (0, 2), (1, 3)]), [I, C3, MP, O])
    assert spec.num_vertices == 3 and spec.ops == (I, C3, O)
    assert spec.hash == ModelSpec(_m(3, [(0, 1), (1, 2)]), [I, C3, O]).hash
