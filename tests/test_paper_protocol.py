"""The ``paper`` protocol is the public MixPath code's (xiaomi-automl/MixPath, NasBench101/):
its candidates, its BN calibration pass and its drop rule, each checked against an
independent transcription of that code (``random_choice``, the ``check_dict`` re-draw loop,
``conv_2_matrix``, the calibration loop, the sort and ``[30:]``)."""
from __future__ import annotations

import ast
import copy
import itertools
import random
from collections import Counter

import numpy as np
import pytest
import torch
from scipy.stats import kendalltau
from torch import nn

import rankbench.scoring.score as score_mod
from rankbench.config import RunConfig, ScoreConfig
from rankbench.data import ImageSet
from rankbench.nb101.spec import ModelSpec
from rankbench.scoring import (
    PUBLIC_OPS,
    count_ordered_choices,
    eval_tensors,
    evaluate,
    get_protocol,
    list_protocols,
    score_candidates,
)
from rankbench.spaces import create_space
from rankbench.supernet import create_supernet

pytestmark = pytest.mark.usefixtures("one_thread")

PAPER = get_protocol("paper")
RES = 8


# -- the public code, transcribed ---------------------------------------------------------------
def _public_random_choice(m, np_random, py_random):
    """nas_utils.random_choice, with its global generators passed in."""
    choice = {}
    m_ = np_random.randint(low=1, high=m + 1, size=1)[0]
    path_list = py_random.sample(range(m), m_)
    ops = []
    for i in range(m_):
        ops.append(py_random.sample(range(3), 1)[0])
    choice['op'] = ops
    choice['path'] = path_list
    return choice


def _public_search(m, search_num, seed):
    """The check_dict loop of validate_search, called search_num times."""
    np_random, py_random = np.random.RandomState(seed), random.Random(seed)
    check_dict = []
    for _ in range(search_num):
        choice = _public_random_choice(m, np_random, py_random)
        while choice in check_dict:
            choice = _public_random_choice(m, np_random, py_random)
        check_dict.append(choice)
    return check_dict


def _public_spec(choice) -> ModelSpec:
    """nas_utils.conv_2_matrix."""
    selections = ['conv1x1-bn-relu', 'conv3x3-bn-relu', 'maxpool3x3']
    ops = ['input'] + [selections[0]] * 4
    for i, id in enumerate(choice['path']):
        ops[id + 1] = selections[choice['op'][i]]
    ops += ['conv1x1-bn-relu', 'output']
    matrix = np.zeros((7, 7), dtype=int)
    for id in choice['path']:
        matrix[0, id + 1] = 1
        matrix[id + 1, 5] = 1
    matrix[5, -1] = 1
    return ModelSpec(matrix, ops)


def _as_ordered(choice) -> tuple:
    return tuple((int(p), PUBLIC_OPS[o]) for p, o in zip(choice['path'], choice['op']))


def _score(candidates: int, seed: int = 0) -> ScoreConfig:
    return PAPER.score_config(ScoreConfig(protocol="paper", candidates=candidates, seed=seed))


# -- candidates --------------------------------------------------------------------------------
def test_public_op_order_is_the_space_order():
    assert tuple(create_space("s4", m=4).ops) == PUBLIC_OPS
    assert [count_ordered_choices(m) for m in (1, 2, 3, 4)] == [3, 24, 225, 2712]


@pytest.mark.parametrize("seed", [0, 2020])
def test_candidates_are_the_public_samplers(seed):
    """1000 distinct ordered choices, equal to the public loop's, each run as its network."""
    space = create_space("s4", m=4)
    public = _public_search(4, 1000, seed)
    ours = PAPER.choices(space, _score(0, seed))  # 0 -> the protocol's 1000
    assert ours == [_as_ordered(c) for c in public]
    assert len(set(ours)) == 1000
    cands = PAPER.candidates(space, _score(0, seed))
    assert len(cands) == 1000
    for c, sub in zip(public, cands):
        spec = _public_spec(c)
        assert sub.hash == spec.hash and sub.spec.ops == spec.ops
        assert np.array_equal(sub.spec.matrix, spec.matrix)
    assert PAPER.choices(space, _score(0, seed)) == ours  # reproducible
    assert PAPER.choices(space, _score(0, seed + 1)) != ours
    assert PAPER.candidates_note(space, _score(0, seed)) is None


def test_per_path_counts():
    """Every one-path choice (12) is always among the 1000. Two-path ones: 108 exist, and
    each is missed with probability ~0.005, so 108 for most seeds (then 880 three- and
    four-path choices) and 105-107 for the rest (here: as the public loop gives them)."""
    space = create_space("s4", m=4)
    seen_108 = False
    for seed in range(6):
        ours = Counter(len(c) for c in PAPER.choices(space, _score(1000, seed)))
        public = Counter(len(c['path']) for c in _public_search(4, 1000, seed))
        assert ours == public and ours[1] == 12 and 104 <= ours[2] <= 108
        assert ours[3] + ours[4] == 1000 - 12 - ours[2]
        if ours[2] == 108:
            seen_108 = True
            assert ours[3] + ours[4] == 880
    assert seen_108


@pytest.mark.parametrize("m", [1, 2, 3])
def test_small_m_takes_every_choice_in_draw_order(m):
    space = create_space("s4", m=m)
    total = count_ordered_choices(m)
    ours = PAPER.choices(space, _score(1000, 3))
    every = {tuple(zip(nodes, ops)) for k in range(1, m + 1)
             for nodes in itertools.permutations(range(m), k) for ops in itertools.product(PUBLIC_OPS, repeat=k)}
    assert len(every) == total and len(ours) == total and set(ours) == every
    assert ours == [_as_ordered(c) for c in _public_search(m, total, 3)]  # the public loop's first `total`
    note = PAPER.candidates_note(space, _score(1000, 3))
    assert note and str(total) in note and f"m={m}" in note
    assert PAPER.candidates_note(space, _score(total, 3)) is None
    assert set(PAPER.candidates(space, _score(1000, 3))) == set(space.subnets())


def test_paper_needs_s4():
    class Other:
        name, m, ops = "nb101", 4, PUBLIC_OPS

    with pytest.raises(ValueError, match="S4"):
        PAPER.candidates(Other(), _score(10))


# -- calibration -------------------------------------------------------------------------------
def _set(n: int, seed: int) -> ImageSet:
    g = torch.Generator().manual_seed(seed)
    return ImageSet(torch.randint(0, 256, (n, 3, RES, RES), generator=g, dtype=torch.uint8),
                    torch.randint(0, 10, (n,), generator=g))


@pytest.fixture(scope="module")
def splits():
    return {"train": _set(64, 0), "valid": _set(24, 1), "test": _set(200, 2)}  # test: batches of 96, 96, 8


def _trained_like(variant: str = "lsbn", m: int = 2, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    net = create_supernet("s4", variant, m=m, width=4, stacks=2, cells_per_stack=1)
    rng = random.Random(seed)
    net.train()
    with torch.no_grad():
        for _ in range(6):
            net(torch.randn(8, 3, RES, RES) * 2 + 0.5, net.space.sample(rng))
    return net.eval()


def test_effective_config():
    eff = PAPER.apply(RunConfig(score=ScoreConfig(protocol="paper", eval_split="valid", eval_size=7,
                                                  calib_batches=3, calib_batch_size=5)))
    s = eff.score
    assert (s.eval_split, s.eval_size, s.calib_batches, s.calib_batch_size) == ("test", 0, 0, 96)
    assert (s.candidates, s.drop_lowest, eff.truth.reduce) == (1000, 30, "random")
    assert not PAPER.calib_reset and not PAPER.calib_augment and PAPER.calib_split == "test"


@pytest.mark.parametrize("group_size", [1, 4])
def test_calibration_is_the_whole_test_split_untransformed(splits, monkeypatch, group_size):
    """What reaches the BNs: every test image once, in order, in batches of 96, exactly the
    evaluation tensors (no crop, flip or cutout), without reset."""
    seen: list = []
    real_cal, real_group = score_mod.calibrate_bn, score_mod.score_group

    def calibrate_bn(net, arch, batches, *, reset):
        seen.append((list(batches), reset))
        return real_cal(net, arch, batches, reset=reset)

    def score_group(net, group, *a, calib, reset, **k):
        seen.append((list(calib), reset))
        return real_group(net, group, *a, calib=calib, reset=reset, **k)

    monkeypatch.setattr(score_mod, "calibrate_bn", calibrate_bn)
    monkeypatch.setattr(score_mod, "score_group", score_group)
    net = _trained_like()
    cands = net.space.subnets()[:4]
    # a config that asks for something else: the protocol's settings win
    cfg = ScoreConfig(protocol="paper", calib_batches=1, calib_batch_size=16, eval_split="valid", eval_size=10,
                      group_size=group_size)
    score_candidates(net, cands, splits, cfg, calibrate=True, progress=False)
    assert len(seen) == (4 if group_size == 1 else 1)
    x, _ = eval_tensors(splits, "test")
    for batches, reset in seen:
        assert not reset
        assert [len(b) for b in batches] == [96, 96, 8]
        assert sum(len(b) for b in batches) == len(splits["test"].labels)
        assert torch.equal(torch.cat(batches), x)
    # the same data when not sliced from the evaluation tensor
    direct = score_mod.calibration_data(splits, PAPER, cfg)
    assert [len(b) for b in direct] == [96, 96, 8] and torch.equal(torch.cat(direct), x)


@pytest.mark.parametrize("group_size", [1, 4])
def test_calibrated_scores_equal_the_public_loop(splits, group_size):
    """Per candidate, as the public code: train mode, a no-grad pass over the test loader
    (batch 96, in order), then evaluation on the test set; then the checkpoint reloaded."""
    net = _trained_like("bn")
    cands = net.space.subnets()
    got = score_candidates(net, cands, splits, ScoreConfig(protocol="paper", group_size=group_size),
                           calibrate=True, progress=False, channels_last=False)
    x, y = eval_tensors(splits, "test")
    checkpoint = copy.deepcopy(net.state_dict())
    model = copy.deepcopy(net)
    for i, sub in enumerate(cands):
        with torch.no_grad():
            model.train()
            for j in range(0, len(y), 96):
                model(x[j:j + 96], sub)
        acc, loss = evaluate(model, sub, x, y)
        model.load_state_dict(checkpoint)
        assert got["accuracy"][i] == acc and got["loss"][i] == loss, sub.code
    # and not what the clean protocol's calibration gives
    clean = score_candidates(net, cands, splits, ScoreConfig(calib_batches=2, calib_batch_size=16, eval_split="test"),
                             protocol="clean", calibrate=True, progress=False, channels_last=False)
    assert not np.array_equal(clean["loss"].to_numpy(), got["loss"].to_numpy())


# -- the 30 dropped ------------------------------------------------------------------------------
def _public_kept(acc: list[float], n_drop: int) -> list[int]:
    """candidate_dict in draw order (keys unique), sorted by value, [n_drop:]."""
    candidate_dict = {}
    for i, a in enumerate(acc):
        candidate_dict[str({'i': i, 'val_top1': a})] = a
    cand_dict = {k: v for k, v in sorted(candidate_dict.items(), key=lambda item: item[1])}
    return [ast.literal_eval(k)['i'] for k in cand_dict][n_drop:]


@pytest.mark.parametrize("protocol", list_protocols())
def test_keep_mask_is_the_public_sort(protocol):
    proto = get_protocol(protocol)
    assert proto.keep_mask([0.5, 0.1, 0.5, 0.1, 0.3], 3).tolist() == [True, False, True, False, False]
    assert proto.keep_mask([0.2, 0.2, 0.2], 1).tolist() == [False, True, True]  # ties: the first drawn
    assert proto.keep_mask([0.3, 0.1], 0).all()
    rng = np.random.default_rng(0)
    for n, n_drop in ((200, 30), (60, 30), (33, 30)):
        acc = (rng.integers(0, 12, size=n) / 12).tolist()  # many ties
        mask = proto.keep_mask(np.asarray(acc), n_drop)
        kept = _public_kept(acc, n_drop)
        assert mask.sum() == n - n_drop and sorted(kept) == np.flatnonzero(mask).tolist()
        # the public tau over sorted lists equals tau over the masked candidates (any order)
        calib, truth = rng.random(n), rng.random(n)
        public = kendalltau([calib[i] for i in kept], [truth[i] for i in kept])[0]
        assert kendalltau(calib[mask], truth[mask])[0] == pytest.approx(public, abs=1e-12)
    with pytest.raises(ValueError, match="cannot drop"):
        proto.keep_mask([0.1, 0.2], 2)
    with pytest.raises(ValueError, match="NaN"):
        proto.keep_mask([0.1, float("nan"), 0.3], 1)
