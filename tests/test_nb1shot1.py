"""NAS-Bench-1Shot1's three search spaces: their sizes against the paper's, membership by an
independent construction, candidates from the bundled NB101 cells, uniform training draws, and a
tiny end-to-end run per space (train, score, rank against NB101's own accuracy)."""
from __future__ import annotations

import itertools
import random
from collections import Counter

import numpy as np
import pytest
from scipy import stats

from rankbench import nb101
from rankbench.config import apply_overrides, load_preset
from rankbench.nb101 import ModelSpec
from rankbench.spaces import create_space, list_spaces
from rankbench.spaces import nb101 as nb101_mod
from rankbench.spaces import nb1shot1 as mod

pytestmark = pytest.mark.usefixtures("one_thread")

SPACES = [f"nb1shot1-{k}" for k in sorted(mod.PARENTS)]
OPS = ("conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3")


def test_registered_with_a_preset_each():
    assert set(SPACES) <= set(list_spaces())
    for name in SPACES:
        cfg = load_preset(f"{name}-quick")
        assert cfg.space.name == name and cfg.truth.source == "nb101"


@pytest.mark.parametrize("number", sorted(mod.PARENTS))
def test_sizes_against_the_paper(number):
    c = mod.count_architectures(number)
    assert c["parent_choices"] == {1: 180, 2: 360, 3: 5400}[number]
    # the paper's 6,240 / 363,648 are configurations with ops on the blocks that feed something;
    # its 29,160 for space 2 is every configuration (the same rule gives 16,632)
    if number == 2:
        assert c["configurations"] == mod.PAPER_COUNTS[2] and c["paper_rule"] == 16_632
    else:
        assert c["paper_rule"] == mod.PAPER_COUNTS[number]
    # distinct NB101 cells (isomorphic configurations merged, loose ends pruned)
    assert c["cells"] == {1: 2_685, 2: 7_773, 3: 55_854}[number]


@pytest.mark.parametrize("number", [1, 2, pytest.param(3, marks=pytest.mark.slow)])  # 3: ~5 s
def test_cells_equal_an_independent_construction(number):
    """Every configuration as NB-1Shot1 converts it (a 7-vertex NB101 matrix, unused vertices
    empty), pruned by ModelSpec, named by the nb101 space's own labelling rule."""
    parents = mod.PARENTS[number]
    blocks = len(parents) - 1
    pruned: set[tuple[bytes, int]] = set()
    for choice in itertools.product(*[[(0,)] if v == 1 else list(itertools.combinations(range(v), p))
                                      for v, p in enumerate(parents, start=1)]):
        m = np.zeros((7, 7), int)
        for v, ps in enumerate(choice, start=1):
            for u in ps:
                m[u, 6 if v == blocks + 1 else v] = 1  # the output is NB101's vertex 6
        spec = ModelSpec(m, ["input"] + ["conv3x3-bn-relu"] * 5 + ["output"])
        pruned.add((spec.matrix.astype(np.int8).tobytes(), spec.num_vertices))
    names = set()
    for raw, n in pruned:
        matrix = np.frombuffer(raw, np.int8).reshape(n, n)
        bits = nb101_mod._bits_of(matrix)
        for ops in itertools.product("31m", repeat=n - 2):
            names.add(nb101_mod._canonical("".join(ops), n, bits)[0])
    assert names == set(mod.space_cells(number))


@pytest.fixture(scope="module")
def every():
    return create_space("nb101").candidates()  # the bundled sample's 30,031 cells


@pytest.mark.parametrize("name", SPACES)
def test_candidates_are_the_bundled_cells_of_the_space(name, every):
    space = create_space(name)
    cands = space.candidates()
    members = set(space.cells)
    assert cands == [a for a in every if a.name in members]  # hash order, the store's cells
    assert len(cands) == {"nb1shot1-1": 195, "nb1shot1-2": 573, "nb1shot1-3": 4025}[name]
    acc = nb101.open().query_many([a.hash for a in cands])
    assert np.isfinite(acc).all()  # every one has NB101's own accuracy: ground truth
    some = space.candidates(50, seed=1)
    assert len(some) == 50 and set(some) <= set(cands) and some == space.candidates(50, seed=1)
    assert [a.hash for a in some] == sorted(a.hash for a in some)


def test_membership_is_checked():
    s1, s3 = create_space("nb1shot1-1"), create_space("nb1shot1-3")
    chain = ModelSpec(np.eye(7, k=1, dtype=int), ["input"] + ["conv3x3-bn-relu"] * 5 + ["output"])
    with pytest.raises(ValueError, match="not in search space nb1shot1-3"):
        s3.arch_from_spec(chain)  # blocks 4 and 5 need two parents
    with pytest.raises(ValueError, match="not in search space nb1shot1-1"):
        s1.arch_from_name(create_space("nb101").arch_from_spec(chain).name)
    a = s1.sample(random.Random(0))
    assert s1.arch_from_spec(a.spec) == a and s1.arch_from_name(a.name) == a


def test_training_draws_are_uniform_over_the_space_cells():
    space = create_space("nb1shot1-1")
    rng = random.Random(0)
    n = 10 * len(space.cells)
    counts = Counter(space.sample(rng).name for _ in range(n))
    assert set(counts) == set(space.cells)
    obs = np.array([counts[c] for c in space.cells], float)
    assert stats.chisquare(obs).pvalue > 1e-3
    assert [space.sample(r).name for r in [random.Random(5)] for _ in range(5)] == \
        [space.sample(r).name for r in [random.Random(5)] for _ in range(5)]


TINY = {
    "model.width": 4, "model.stacks": 1, "model.cells_per_stack": 1,
    "data.resolution": 16, "data.train_size": 100, "data.valid_size": 50, "data.test_size": 50,
    "data.batch_size": 50, "train.epochs": 1, "train.num_threads": 1, "score.candidates": 6,
    "score.calib_batches": 1, "score.calib_batch_size": 25, "score.eval_batch_size": 50,
}


@pytest.mark.parametrize("name", SPACES)
def test_tiny_run_per_space(name, tmp_path, monkeypatch):
    import rankbench.html_report
    from rankbench.pipeline import run

    monkeypatch.setattr(rankbench.html_report, "publish_report", lambda *a, **k: None)  # figures: tested elsewhere
    cfg = apply_overrides(load_preset(f"{name}-quick"), TINY)
    (res,), _ = run(cfg, calibrate=False, runs_root=tmp_path, progress=False, n_boot=20, echo=None)
    scores = res.scores
    assert len(scores) == 6 and scores["truth"].notna().all()
    members = set(create_space(name).cells)
    assert all(n in members for n in scores["name"])
    assert res.run_dir.name.startswith(f"lsbn-{name}-quick-{name}-")
