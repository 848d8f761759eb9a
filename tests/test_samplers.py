"""Training samplers beyond the registry contract: FairNAS's strict fairness on S4 and the
few-shot NAS sub-supernet sampler."""
from __future__ import annotations

import random
import re
from collections import Counter

import pytest
import torch

from rankbench.config import apply_overrides, load_preset
from rankbench.data import ImageSet
from rankbench.data.cifar10 import CIFAR10Splits
from rankbench.fewshot import split_of
from rankbench.spaces import create_space
from rankbench.spaces.s4 import S4_OPS
from rankbench.supernet import supernet_from_config
from rankbench.train import fit
from rankbench.training.samplers import FairSampler, make_sampler

CELLS = 3


def _steps(sampler, rng, n):
    return [sampler(rng) for _ in range(n)]


# -- fairnas ------------------------------------------------------------------------------------
@pytest.mark.parametrize("m", (1, 2, 3, 4))
@pytest.mark.parametrize("per_cell", (False, True))
def test_fairnas_runs_every_option_of_every_node_once_per_group(m, per_cell):
    """Within every group of G steps (G = 4 options: three ops and off; 3 for m = 1) each choice
    node of each cell takes each option exactly once, and every step is a valid subnet."""
    space = create_space("s4", m=m)
    sampler = make_sampler("fairnas", space, CELLS, per_cell=per_cell)
    options = set(S4_OPS) | ({None} if m > 1 else set())
    g = len(options)
    assert sampler.group_size == g
    groups = 60
    steps = _steps(sampler, random.Random(11), g * groups)
    valid = {a.name for a in space.candidates()}
    for k in range(groups):
        group = steps[k * g:(k + 1) * g]
        cells = [[s[c] for s in group] for c in range(CELLS)] if per_cell else [group]
        for archs in cells:
            assert all(a.name in valid for a in archs)
            for node in range(m):
                assert Counter(a.ops[node] for a in archs) == Counter(options), (k, node, [a.name for a in archs])
    if per_cell:
        assert all(isinstance(s, list) and len(s) == CELLS for s in steps)
        assert any(len({a.name for a in s}) > 1 for s in steps)  # the cells draw apart
    # not a fixed cycle: the groups differ
    first_cell = [s[0] for s in steps] if per_cell else steps
    assert len({tuple(a.name for a in first_cell[k * g:(k + 1) * g]) for k in range(groups)}) >= (6 if m == 1 else 11)


def test_fairnas_is_a_function_of_the_rng_stream():
    """Two samplers on equally seeded rngs agree; a sampler handed a fresh rng starts afresh
    (a new group), so the same seed gives the same steps whatever it drew before."""
    space = create_space("s4", m=4)
    a, b = make_sampler("fairnas", space, CELLS), make_sampler("fairnas", space, CELLS)
    first = _steps(a, random.Random(3), 10)  # stops mid-group
    assert first == _steps(b, random.Random(3), 10)
    assert first == _steps(a, random.Random(3), 10)
    assert first != _steps(a, random.Random(4), 10)


def test_fairnas_resumes_exactly_at_group_boundaries_and_with_its_state():
    """The loop checkpoints the rng: a fresh sampler on the restored rng continues exactly when
    the checkpoint fell at a group boundary; with state_dict / load_state_dict also mid-group."""
    space = create_space("s4", m=3)
    whole_rng, sampler = random.Random(5), make_sampler("fairnas", space, CELLS)
    assert isinstance(sampler, FairSampler)
    head = _steps(sampler, whole_rng, 8)  # two whole groups
    saved = whole_rng.getstate()
    tail = _steps(sampler, whole_rng, 9)  # ends one step into a group
    rng = random.Random()
    rng.setstate(saved)
    assert _steps(make_sampler("fairnas", space, CELLS), rng, 9) == tail
    # mid-group: the rng alone is not enough, the sampler's state is
    mid_rng, state = whole_rng.getstate(), sampler.state_dict()
    rest = _steps(sampler, whole_rng, 7)
    rng.setstate(mid_rng)
    fresh = make_sampler("fairnas", space, CELLS)
    assert _steps(fresh, rng, 7) != rest  # a new group starts here instead
    rng.setstate(mid_rng)
    fresh.load_state_dict(state)
    assert _steps(fresh, rng, 7) == rest
    assert len(head) == 8


def test_fairnas_path_counts_follow_the_valid_permutations():
    """m = 4: each node off 1 step in 4; 1, 2, 3, 4 paths in 2/42, 9/42, 18/42, 13/42 of the
    steps (exact over the valid sets of permutations; 8,400 steps, a loose band)."""
    space = create_space("s4", m=4)
    steps = _steps(make_sampler("fairnas", space, CELLS), random.Random(0), 8400)
    share = Counter(a.num_paths for a in steps)
    for k, p in {1: 2 / 42, 2: 9 / 42, 3: 18 / 42, 4: 13 / 42}.items():
        assert abs(share[k] / len(steps) - p) < 0.02, (k, share)
    assert all(sum(a.ops[n] is None for a in steps) == len(steps) // 4 for n in range(4))


#: a (choice node, op)'s own weights in the S4 supernet: its projection and op, per cell
_PATH = re.compile(r"^cells\.(\d+)\.paths\.(\d+)\.([^.]+)\.")


@pytest.fixture(scope="module")
def tiny():
    """A width-4 S4 supernet config (m = 4, 3 cells) and 128 synthetic training images."""
    cfg = apply_overrides(load_preset("quick"), {
        "model.width": 4, "model.cells_per_stack": 1, "data.resolution": 16, "data.batch_size": 32,
        "train.epochs": 2, "train.num_threads": 1, "train.device": "cpu", "train.checkpoint_interval_s": 0})
    g = torch.Generator().manual_seed(0)

    def images(n):
        return ImageSet(torch.randint(0, 256, (n, 3, 16, 16), dtype=torch.uint8, generator=g),
                        torch.randint(0, 10, (n,), generator=g))

    return cfg, CIFAR10Splits(train=images(128), valid=images(32), test=images(32), source="synthetic",
                              kind="synthetic", split="random", nb101_split=False)


@pytest.mark.parametrize("per_cell", (False, True))
def test_fairnas_trains_every_op_weight_exactly_once_per_group(tiny, per_cell):
    """The weight-level statement: over every group of 4 steps, each (cell, node, op)'s own
    weights (projection + op) are among the step's used parameters exactly once, and every such
    weight of the supernet is."""
    cfg, _ = tiny
    torch.manual_seed(0)
    net = supernet_from_config(cfg)
    own = {n for n, _ in net.named_parameters() if _PATH.match(n)}
    assert len({_PATH.match(n).groups() for n in own}) == net.num_cells * 4 * 3
    sampler = make_sampler("fairnas", net.space, net.num_cells, per_cell=per_cell)
    rng = random.Random(1)
    for _ in range(25):
        counts = Counter(n for _ in range(4) for n, _p in net.used_parameters(sampler(rng)) if _PATH.match(n))
        assert set(counts) == own and set(counts.values()) == {1}


def test_fairnas_and_fewshot_train_through_the_loop(tiny, tmp_path):
    """A 2-epoch tiny training with each (8 steps: two FairNAS groups): finite losses, and the
    steps the loop trained are fair (FairNAS) or in the split (few-shot)."""
    cfg, splits = tiny
    for spec, check in (("fairnas", None), ("fewshot:2=m", lambda a: split_of(a, 2) == "m")):
        torch.manual_seed(0)
        net = supernet_from_config(cfg)
        sampler, trained = make_sampler(spec, net.space, net.num_cells), []

        def recording(rng, sampler=sampler, trained=trained):
            trained.append(sampler(rng))
            return trained[-1]

        out = fit(net, recording, splits, cfg, tmp_path / spec.replace(":", "_"), progress=False)
        assert len(trained) == 8 and out["train_loss"] == out["train_loss"] < 1e3
        if check is None:
            for k in (0, 4):
                assert all(Counter(a.ops[n] for a in trained[k:k + 4]) == Counter(S4_OPS + (None,)) for n in range(4))
        else:
            assert all(check(a) for a in trained)


@pytest.mark.parametrize("space_name, settings", [("nb101", {}), ("nb1shot1-1", {})])
def test_fairnas_refuses_other_spaces(space_name, settings):
    with pytest.raises(ValueError, match="s4"):
        make_sampler("fairnas", create_space(space_name, **settings), CELLS)


def test_fairnas_takes_no_argument():
    with pytest.raises(ValueError, match="no argument"):
        make_sampler("fairnas:2", create_space("s4", m=4), CELLS)


# -- fewshot ------------------------------------------------------------------------------------
@pytest.mark.parametrize("node, op", [(1, "3"), (2, "-"), (4, "m"), (3, "1")])
@pytest.mark.parametrize("per_cell", (False, True))
def test_fewshot_on_s4_trains_only_its_split_and_all_of_it(node, op, per_cell):
    space = create_space("s4", m=4)
    sampler = make_sampler(f"fewshot:{node}={op}", space, CELLS, per_cell=per_cell)
    drawn = _steps(sampler, random.Random(2), 600)
    archs = [a for s in drawn for a in (s if per_cell else [s])]
    assert all(split_of(a, node) == op for a in archs)
    split = {a.name for a in space.candidates() if split_of(a, node) == op}
    assert {a.name for a in archs} == split  # every subnet of the split is trained
    assert drawn == _steps(make_sampler(f"fewshot:{node}={op}", space, CELLS, per_cell=per_cell),
                           random.Random(2), 600)


def test_fewshot_on_s4_is_the_public_draw_given_the_split():
    """The split's draw is the space's own draw conditioned on it: the same frequencies as the
    space's draws filtered to the split (8,000 steps, ~3 sd bands on path counts)."""
    space = create_space("s4", m=4)
    rng = random.Random(9)
    own = [a for a in (space.sample(rng) for _ in range(40000)) if split_of(a, 1) == "1"]
    got = _steps(make_sampler("fewshot:1=1", space, CELLS), random.Random(1), 8000)
    for k in range(1, 5):
        share = [sum(a.num_paths == k for a in draws) / len(draws) for draws in (got, own)]
        assert abs(share[0] - share[1]) < 0.025, (k, share)


@pytest.mark.parametrize("node, op", [(1, "3"), (3, "m"), (5, "1"), (4, "-"), (1, "-")])
def test_fewshot_on_nb101_splits_on_a_vertex_op(node, op):
    space = create_space("nb101")
    drawn = _steps(make_sampler(f"fewshot:{node}={op}", space, CELLS), random.Random(4), 40)
    assert all(split_of(a, node) == op for a in drawn)
    ops = [a.name.partition("_")[0] for a in drawn]
    if op == "-":
        assert all(len(o) < node for o in ops)
        if node == 1:
            assert {a.name for a in drawn} == {"_1"}  # the single cell input -> output
        else:
            assert len({a.name for a in drawn}) > 20
    else:
        assert all(len(o) >= node and o[node - 1] == op for o in ops)
        assert len({a.name for a in drawn}) == len(drawn)
    for a in drawn:  # real cells of the space
        assert space.arch_from_name(a.name) == a


@pytest.mark.parametrize("spec, says", [("fewshot", "needs a split"), ("fewshot:3", "<node>=<op>"),
                                        ("fewshot:x=3", "<node>=<op>"), ("fewshot:0=3", "1..4"),
                                        ("fewshot:5=3", "1..4"), ("fewshot:1=x", "splits into ops")])
def test_fewshot_bad_splits_say_what_is_wrong(spec, says):
    with pytest.raises(ValueError, match=says.replace(".", r"\.")):
        make_sampler(spec, create_space("s4", m=4), CELLS)


def test_fewshot_m1_has_no_off_split_and_other_spaces_refuse():
    with pytest.raises(ValueError, match="splits into ops 1, 3, m"):
        make_sampler("fewshot:1=-", create_space("s4", m=1), CELLS)

    class Other:
        pass

    with pytest.raises(ValueError, match="s4 and nb101"):
        make_sampler("fewshot:1=3", Other(), CELLS)


def test_fewshot_on_an_nb1shot1_space_stays_in_it_and_an_empty_split_fails_when_made():
    space = create_space("nb1shot1-1")
    drawn = _steps(make_sampler("fewshot:2=m", space, CELLS), random.Random(1), 30)
    assert all(split_of(a, 2) == "m" and a.name in space.cells for a in drawn)
    with pytest.raises(ValueError, match="empty or too rare"):
        make_sampler("fewshot:1=-", space, CELLS)  # every NB-1Shot1 cell has a vertex 1
