"""Few-shot NAS splits (rankbench.fewshot): what a split holds, and one score table from the
sub-supernets' tables (synthetic tables shaped as a report's scores.csv)."""
from __future__ import annotations

import random

import pandas as pd
import pytest

from rankbench.fewshot import Splitting, combine_scores, split_of, split_ops
from rankbench.spaces import create_space
from rankbench.training.samplers import make_sampler


@pytest.fixture(scope="module")
def s4():
    return create_space("s4", m=3)


def test_split_ops_per_space():
    assert split_ops(create_space("s4", m=4), 1) == ("1", "3", "m", "-")
    assert split_ops(create_space("s4", m=1), 1) == ("1", "3", "m")  # the one node is never off
    assert split_ops(create_space("nb101"), 5) == ("3", "1", "m", "-")
    for bad in (0, 4, True, "1"):
        with pytest.raises(ValueError, match="1..3"):
            split_ops(create_space("s4", m=3), bad)


@pytest.mark.parametrize("node", (1, 2, 3))
def test_the_splits_of_a_node_partition_s4(s4, node):
    """Every subnet in exactly one split, the one whose op it runs at the node; isomorphic
    subnets can lie in different splits (they train other weights)."""
    split = Splitting(s4, node)
    by_split: dict[str, list[str]] = {op: [] for op in split.ops}
    for a in s4.candidates():
        by_split[split.split_of(a)].append(a.name)
    assert sum(map(len, by_split.values())) == len(s4.candidates()) == 63
    assert all(len(names) == len(set(names)) for names in by_split.values())
    # each op split: the node runs it, the other two nodes anything (4 x 4 choices)
    assert {op: len(v) for op, v in by_split.items()} == {"1": 16, "3": 16, "m": 16, "-": 15}
    assert all(n[node - 1] == op for op, names in by_split.items() for n in names)
    iso = s4.hash_classes()[s4.arch_from_name("3--").hash]
    assert len({split_of(a, 1) for a in iso}) == 2  # "3--" and "-3-", "--3": splits 3 and -


def test_split_of_nb101_reads_the_canonical_vertex():
    space = create_space("nb101")
    a = space.arch_from_name("3m_25")  # input -> conv3x3 -> maxpool -> output
    assert [split_of(a, v) for v in range(1, 6)] == ["3", "m", "-", "-", "-"]
    assert split_of(space.arch_from_name("_1"), 1) == "-"
    with pytest.raises(ValueError, match="1..5"):
        split_of(a, 6)


def test_each_split_has_its_sampler(s4):
    split = Splitting(s4, 2)
    for op in split.ops:
        sampler = make_sampler(split.sampler_spec(op), s4, 3)
        rng = random.Random(0)
        assert all(split.split_of(sampler(rng)) == op for _ in range(50))
    with pytest.raises(ValueError, match="no split"):
        split.sampler_spec("x")


def _table(space, acc_of):
    """A scores.csv-shaped table: every candidate, accuracies from ``acc_of(name)``."""
    archs = space.candidates()
    return pd.DataFrame({"name": [a.name for a in archs], "num_paths": [a.num_paths for a in archs],
                         "hash": [a.hash for a in archs],
                         "acc_no_calib": [acc_of(a.name) for a in archs],
                         "acc_calib": [acc_of(a.name) + 0.5 for a in archs],
                         "truth": [float(i) for i in range(len(archs))]})


def test_combine_takes_each_candidate_from_its_own_split(s4):
    split = Splitting(s4, 1)
    codes = {op: k for k, op in enumerate(split.ops)}  # table k scores everything 100 k + ...
    names = [a.name for a in s4.candidates()]
    tables = {op: _table(s4, lambda n, k=k: 100.0 * k + names.index(n)) for op, k in codes.items()}
    out = split.combine(tables)
    assert list(out["name"]) == names  # the candidates' order
    assert list(out.columns) == ["name", "num_paths", "hash", "acc_no_calib", "acc_calib", "truth", "split"]
    for _, row in out.iterrows():
        own = split.split_of(s4.arch_from_name(row["name"]))
        assert row["split"] == own
        assert row["acc_no_calib"] == 100.0 * codes[own] + names.index(row["name"])
        assert row["acc_calib"] == row["acc_no_calib"] + 0.5
    assert out["truth"].tolist() == [float(i) for i in range(len(names))]
    # tables that hold only their own split's candidates give the same table
    own_only = {op: t[[split.split_of(s4.arch_from_name(n)) == op for n in t["name"]]] for op, t in tables.items()}
    pd.testing.assert_frame_equal(combine_scores(own_only, split).sort_values("name").reset_index(drop=True),
                                  out.sort_values("name").reset_index(drop=True))


def test_combine_refuses_what_it_cannot_combine(s4):
    split = Splitting(s4, 1)
    full = {op: _table(s4, lambda n: 0.1) for op in split.ops}
    with pytest.raises(ValueError, match="no score from their own split"):
        split.combine({op: t for op, t in full.items() if op != "m"})
    with pytest.raises(ValueError, match="1 candidate.*m1- \\(split m\\)"):  # its split's table lacks it
        split.combine({**full, "m": full["m"][full["m"]["name"] != "m1-"]})
    split.combine({**full, "m": full["m"][full["m"]["name"] != "1m-"]})  # "1m-" lies in split 1: fine
    with pytest.raises(ValueError, match="not splits"):
        split.combine({**full, "x": full["m"]})
    with pytest.raises(ValueError, match="twice"):
        split.combine({**full, "3": pd.concat([full["3"], full["3"].iloc[:1]])})
    with pytest.raises(ValueError, match="no 'name' column"):
        split.combine({**full, "3": full["3"].drop(columns="name")})


def test_combine_on_nb101_names():
    space = create_space("nb101")
    split = Splitting(space, 2)
    names = ["3m_25", "31_25", "_1", "3_5"]  # vertex 2: m, 1, none, none
    tables = {op: pd.DataFrame({"name": names, "acc_calib": [float(k)] * 4}) for k, op in enumerate(split.ops)}
    out = split.combine(tables)
    assert out["split"].tolist() == ["m", "1", "-", "-"]
    assert out["acc_calib"].tolist() == [2.0, 1.0, 3.0, 3.0]
