"""BN calibration, scoring and its cache, and the ranking protocols, on a tiny supernet."""
from __future__ import annotations

import copy
import random
from dataclasses import fields, replace

import pandas as pd
import pytest
import torch
from torch import nn

import rankbench.scoring.score as score_mod
from rankbench.config import RunConfig, ScoreConfig
from rankbench.data import ImageSet
from rankbench.scoring import (
    COLUMNS,
    BNState,
    calibrate_bn,
    eval_tensors,
    evaluate,
    get_protocol,
    list_protocols,
    score_candidates,
    score_key,
)
from rankbench.spaces import create_space
from rankbench.supernet import create_supernet

RES = 8


pytestmark = pytest.mark.usefixtures("one_thread")


def _set(n: int, seed: int) -> ImageSet:
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, RES, RES), generator=g, dtype=torch.uint8)
    labels = torch.randint(0, 10, (n,), generator=g)
    return ImageSet(images, labels)


@pytest.fixture(scope="module")
def splits():
    return {"train": _set(96, 0), "valid": _set(40, 1), "test": _set(40, 2)}


def _trained_like(variant: str = "lsbn", m: int = 2, seed: int = 0, stacks: int = 1) -> nn.Module:
    """A tiny supernet whose BN running statistics are not the initial ones."""
    torch.manual_seed(seed)
    net = create_supernet("s4", variant, m=m, width=4, stacks=stacks, cells_per_stack=1)
    rng = random.Random(seed)
    net.train()
    with torch.no_grad():
        for _ in range(6):
            net(torch.randn(8, 3, RES, RES) * 2 + 0.5, net.space.sample(rng))
    return net.eval()


SCORE = ScoreConfig(calib_batches=2, calib_batch_size=16, eval_batch_size=16)


def _bn_buffers(net: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in net.state_dict().items()
            if k.endswith(("running_mean", "running_var", "num_batches_tracked"))}


# -- calibrate_bn ----------------------------------------------------------------------------
def test_calibrate_reset_gives_exact_statistics():
    torch.manual_seed(0)
    bn = nn.BatchNorm2d(3, momentum=0.1)
    net = nn.Sequential(bn).eval()
    bn.running_mean.fill_(5.0)
    batches = [torch.randn(4, 3, 5, 5) * (i + 1) + i for i in range(3)]
    calibrate_bn(net, None, batches, reset=True)
    allx = torch.cat(batches)
    # equal batch sizes: cumulative average of batch means = the exact mean of all the data
    torch.testing.assert_close(bn.running_mean, allx.mean(dim=(0, 2, 3)))
    # ... and of the unbiased batch variances
    per_batch = torch.stack([b.var(dim=(0, 2, 3), unbiased=True) for b in batches])
    torch.testing.assert_close(bn.running_var, per_batch.mean(0))
    assert bn.num_batches_tracked.item() == 3
    assert bn.momentum == 0.1 and not net.training and not bn.training  # restored

    calibrate_bn(net, None, batches[:1], reset=True)  # one batch: exactly its variance
    torch.testing.assert_close(bn.running_var, batches[0].var(dim=(0, 2, 3), unbiased=True))


def test_calibrate_without_reset_is_a_moving_average():
    bn = nn.BatchNorm2d(2, momentum=0.25)
    net = nn.Sequential(bn)
    bn.running_mean.fill_(1.0)
    x = torch.randn(6, 2, 3, 3) + 3
    calibrate_bn(net, None, [x], reset=False)
    torch.testing.assert_close(bn.running_mean, 0.75 * torch.ones(2) + 0.25 * x.mean(dim=(0, 2, 3)))
    assert bn.momentum == 0.25


def test_calibrate_touches_only_the_subnets_bns():
    net = _trained_like()
    sub = net.space.subnets()[1]  # one path
    before = _bn_buffers(net)
    used = {id(b) for b in net.used_bns(sub)}
    names = {id(m): n for n, m in net.named_modules()}
    touched = calibrate_bn(net, sub, [torch.randn(8, 3, RES, RES)], reset=True)
    assert {id(b) for b in touched} == used
    after = _bn_buffers(net)
    used_names = {names[i] for i in used}
    changed = {k.rsplit(".", 1)[0] for k in before if not torch.equal(before[k], after[k])}
    assert changed == used_names
    assert not net.training


def test_bnstate_restores_in_memory():
    net = _trained_like()
    before = copy.deepcopy(net.state_dict())
    state = BNState(net)
    sub = net.space.subnets()[-1]
    touched = calibrate_bn(net, sub, [torch.randn(8, 3, RES, RES)], reset=True)
    state.restore(touched)
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), k


# -- scoring ---------------------------------------------------------------------------------
@pytest.mark.parametrize("protocol,channels_last", [("clean", True), ("paper", True), ("clean", False)])
@pytest.mark.parametrize("variant", ["bn", "lsbn", "esbn", "scale", "spos"])
@pytest.mark.parametrize("group_size", [1, 4])
def test_in_memory_restore_equals_fresh_copies(splits, protocol, channels_last, variant, group_size):
    """score_candidates (one by one restoring the touched BNs, or in groups sharing the stem
    and first-cell work) == a naive loop over deep copies, bit for bit."""
    net = _trained_like(variant, stacks=2)
    before = copy.deepcopy(net.state_dict())
    proto = get_protocol(protocol)
    cands = net.space.subnets()
    got = score_candidates(net, cands, splits, SCORE, calibrate=True, protocol=proto, progress=False,
                           channels_last=channels_last, group_size=group_size)
    for k, v in net.state_dict().items():  # the supernet is left as it was
        assert torch.equal(v, before[k]), k
        assert v.is_contiguous(), k

    fmt = torch.channels_last if channels_last else torch.contiguous_format
    eff = proto.score_config(SCORE)  # what the protocol fixes (paper: the whole test split, in order)
    calib = score_mod.calibration_data(splits, proto, SCORE)
    calib = [b.contiguous(memory_format=fmt) for b in calib]
    x, y = eval_tensors(splits, eff.eval_split)
    x = x.contiguous(memory_format=fmt)
    for i, sub in enumerate(cands):
        fresh = copy.deepcopy(net).to(memory_format=fmt)
        calibrate_bn(fresh, sub, calib, reset=proto.calib_reset)
        acc, loss = evaluate(fresh, sub, x, y, SCORE.eval_batch_size)
        assert got["accuracy"][i] == acc and got["loss"][i] == loss, sub.code


def test_scores_frame_and_determinism(splits):
    net = _trained_like(variant="bn")
    cands = net.space.subnets()
    a = score_candidates(net, cands, splits, SCORE, calibrate=True, protocol="paper", progress=False)
    b = score_candidates(net, cands, splits, SCORE, calibrate=True, protocol="paper", progress=False)
    assert list(a.columns) == COLUMNS
    pd.testing.assert_frame_equal(a, b)
    assert a["calibrated"].all() and len(a) == len(cands)
    assert (a["name"] == [score_mod.arch_name(s) for s in cands]).all()
    assert (a["subnet"] == [s.code for s in cands]).all()
    assert (a["hash"] == [s.hash for s in cands]).all()
    assert set(a["adjacency"].str.len()) <= {9, 16, 25}  # pruned 3..5-vertex cells
    assert a["accuracy"].between(0, 1).all()
    c = score_candidates(net, cands, splits, SCORE, calibrate=False, progress=False)
    assert not c["calibrated"].any()
    # no calibration: eval mode only, so a different eval batch size gives the same accuracies
    d = score_candidates(net, cands, splits, replace(SCORE, eval_batch_size=7), calibrate=False, progress=False)
    pd.testing.assert_series_equal(c["accuracy"], d["accuracy"])
    # channels-last (the default) and contiguous memory formats agree up to float rounding
    e = score_candidates(net, cands, splits, SCORE, calibrate=False, progress=False, channels_last=False)
    pd.testing.assert_series_equal(c["loss"], e["loss"], rtol=1e-4)


def _count_scored(monkeypatch, interrupt_after: int | None = None) -> list:
    """Patch both scoring paths to record each subnet scored; optionally raise
    KeyboardInterrupt once ``interrupt_after`` subnets are done (between groups)."""
    calls: list = []
    real_eval, real_group = score_mod.evaluate, score_mod.score_group

    def check(n):
        if interrupt_after is not None and len(calls) + n > interrupt_after:
            raise KeyboardInterrupt

    def evaluate(*a, **k):
        check(1)
        calls.append(a[1])
        return real_eval(*a, **k)

    def score_group(net, group, *a, **k):
        check(len(group))
        calls.extend(group)
        return real_group(net, group, *a, **k)

    monkeypatch.setattr(score_mod, "evaluate", evaluate)
    monkeypatch.setattr(score_mod, "score_group", score_group)
    return calls


@pytest.mark.parametrize("group_size", [1, 32])
def test_repeated_candidates_are_scored_once(splits, monkeypatch, group_size):
    net = _trained_like()
    subs = net.space.subnets()
    cands = [subs[0], subs[3], subs[0], subs[0], subs[3]]
    calls = _count_scored(monkeypatch)
    df = score_candidates(net, cands, splits, SCORE, calibrate=True, progress=False, group_size=group_size)
    assert calls == [subs[0], subs[3]] and len(df) == 5
    assert df.loc[0, "accuracy"] == df.loc[2, "accuracy"] == df.loc[3, "accuracy"]


def test_group_size_comes_from_the_config(splits, monkeypatch):
    net = _trained_like()
    cands = net.space.subnets()[:5]
    groups = []
    real = score_mod.score_group
    monkeypatch.setattr(score_mod, "score_group", lambda n, g, *a, **k: groups.append(len(g)) or real(n, g, *a, **k))
    score_candidates(net, cands, splits, replace(SCORE, group_size=2), calibrate=True, progress=False)
    assert groups == [2, 2, 1]
    with pytest.raises(ValueError, match="group_size must be >= 1"):
        score_candidates(net, cands, splits, replace(SCORE, group_size=0), calibrate=True, progress=False)


def test_eval_subset_is_deterministic(splits):
    x1, y1 = eval_tensors(splits, "valid", size=10, seed=3)
    x2, y2 = eval_tensors(splits, "valid", size=10, seed=3)
    x3, _ = eval_tensors(splits, "valid", size=10, seed=4)
    assert x1.shape[0] == 10 and torch.equal(x1, x2) and torch.equal(y1, y2) and not torch.equal(x1, x3)


@pytest.mark.parametrize("group_size,flush_every,interrupt_after,saved", [
    (1, 2, 5, 5),      # one by one: flushed every 2, and on the way out
    (1, 1000, 5, 5),   # one by one: flushed only on the way out
    (4, 1000, 9, 8),   # in groups of 4: flushed after each group; the 3rd group is interrupted
])
def test_cache_resumes_after_interruption(splits, tmp_path, monkeypatch, group_size, flush_every, interrupt_after,
                                          saved):
    net = _trained_like()
    cands = net.space.subnets()  # 15
    full = score_candidates(net, cands, splits, SCORE, calibrate=True, progress=False)
    cache = tmp_path / "scores" / "k.csv"
    monkeypatch.setattr(score_mod, "FLUSH_EVERY", flush_every)
    kw = dict(calibrate=True, cache_path=cache, progress=False, group_size=group_size)
    with monkeypatch.context() as mp:
        _count_scored(mp, interrupt_after=interrupt_after)
        with pytest.raises(KeyboardInterrupt):
            score_candidates(net, cands, splits, SCORE, **kw)
    assert len(pd.read_csv(cache)) == saved

    calls = _count_scored(monkeypatch)
    resumed = score_candidates(net, cands, splits, SCORE, **kw)
    assert len(calls) == len(cands) - saved
    pd.testing.assert_frame_equal(resumed, full)
    calls.clear()
    again = score_candidates(net, cands, splits, SCORE, **kw)
    assert not calls
    pd.testing.assert_frame_equal(again, full)


def test_score_key():
    cfg = RunConfig()
    k = score_key(cfg, True)
    assert k == score_key(cfg, True) and k.startswith("calib-")
    assert k != score_key(cfg, False)
    assert score_key(cfg, True) != score_key(replace(cfg, score=replace(cfg.score, calib_batches=9)), True)
    assert score_key(cfg, True) != score_key(cfg, True, "paper")
    assert score_key(cfg, True) != score_key(cfg, True, weights_id="abc")
    assert score_key(cfg, True) != score_key(cfg, True, channels_last=False)
    # not the candidate list, the ranking metrics, or calibration settings when not calibrating
    assert score_key(cfg, True) == score_key(replace(cfg, score=replace(cfg.score, candidates=5, drop_lowest=3)), True)
    assert score_key(cfg, False) == score_key(replace(cfg, score=replace(cfg.score, calib_batches=9)), False)
    other = replace(cfg, train=replace(cfg.train, seed=1))
    assert score_key(cfg, False) != score_key(other, False)
    for calib in (True, False):  # the evaluation subset is in the key
        assert score_key(cfg, calib) != score_key(replace(cfg, score=replace(cfg.score, eval_size=100)), calib)


#: a different value for the string fields of ScoreConfig (others: see _other)
_STR_ALTERNATIVES = {"protocol": {"clean": "paper", "paper": "clean"}, "eval_split": {"valid": "test", "test": "valid"}}


def _other(name: str, value):
    """A different value of the same type (a new field of a new type fails here: extend it)."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 3
    if isinstance(value, float):
        return value + 0.5
    if value is None:
        return 3
    if isinstance(value, str):
        return _STR_ALTERNATIVES.get(name, {}).get(value, value + "-other")
    if isinstance(value, tuple):  # a list of names (score.proxies)
        return (*value, "synflow") if "synflow" not in value else value[:-1]
    raise TypeError(f"field {name!r}: no rule for a {type(value).__name__}; extend _other")


@pytest.mark.parametrize("protocol", ["clean", "paper"])
@pytest.mark.parametrize("calibrate", [True, False])
def test_every_score_field_changes_the_key_or_is_listed(protocol, calibrate):
    """Every ScoreConfig field changes the cache key, or cannot change a number (listed with
    its reason), or is fixed by the protocol, or is a calibration setting when not calibrating."""
    from rankbench.scoring import CALIBRATION_SCORE_FIELDS, SCORE_FIELDS_WITHOUT_EFFECT

    proto = get_protocol(protocol)
    cfg = RunConfig()
    cfg = replace(cfg, score=replace(cfg.score, protocol=protocol))
    base = score_key(cfg, calibrate)
    exempt = set(SCORE_FIELDS_WITHOUT_EFFECT) | (set(proto.fixed_score_fields()) - {"protocol"})
    if not calibrate:
        exempt |= set(CALIBRATION_SCORE_FIELDS)
    assert set(SCORE_FIELDS_WITHOUT_EFFECT) | set(CALIBRATION_SCORE_FIELDS) <= {f.name for f in fields(ScoreConfig)}
    assert "eval_size" not in SCORE_FIELDS_WITHOUT_EFFECT
    for f in fields(ScoreConfig):
        changed = replace(cfg, score=replace(cfg.score, **{f.name: _other(f.name, getattr(cfg.score, f.name))}))
        if f.name not in exempt:
            assert score_key(changed, calibrate) != base, f"score.{f.name} does not change the cache key"


@pytest.mark.parametrize("protocol", ["clean", "paper"])
def test_every_protocol_field_changes_the_key_or_is_listed(protocol):
    """The protocol's settings that enter scoring (calibration split, reset, augmentation,
    batches, batch size; evaluation split and size) change the key; the rest are listed."""
    from rankbench.scoring import PROTOCOL_FIELDS_WITHOUT_EFFECT

    proto = get_protocol(protocol)
    cfg = RunConfig()
    base = score_key(proto.apply(cfg), True, proto)
    assert set(PROTOCOL_FIELDS_WITHOUT_EFFECT) <= {f.name for f in fields(type(proto))}
    for f in fields(type(proto)):
        value = getattr(proto, f.name)
        new = replace(proto, **{f.name: _other(f.name, value)})
        if f.name not in PROTOCOL_FIELDS_WITHOUT_EFFECT:
            assert score_key(new.apply(cfg), True, new) != base, f"protocol field {f.name} does not change the key"


# -- protocols -------------------------------------------------------------------------------
def test_protocols():
    assert {"clean", "paper"} <= set(list_protocols())
    cfg = RunConfig(score=ScoreConfig(seed=1))
    clean = get_protocol("clean")
    eff = clean.apply(cfg)
    assert eff.score == replace(cfg.score, protocol="clean") and eff.truth == cfg.truth
    space = create_space("s4", m=3)
    assert clean.candidates(space, eff.score) == space.subnets()
    some = clean.candidates(space, replace(eff.score, candidates=10))
    assert len(set(some)) == 10 and some == clean.candidates(space, replace(eff.score, candidates=10))

    paper = get_protocol("paper")
    p = paper.apply(cfg)
    assert (p.score.candidates, p.score.eval_split, p.score.eval_size, p.score.drop_lowest, p.truth.reduce) == \
        (1000, "test", 0, 30, "random")
    assert (p.score.calib_batches, p.score.calib_batch_size) == (0, 96)  # the whole split, the public loader's batch
    assert not paper.calib_reset and not paper.calib_augment and paper.calib_split == "test"
    assert paper.apply(p) == p and paper.score_config(p.score) == p.score  # idempotent
    cands = paper.candidates(space, p.score)  # m = 3: all 225 ordered choices, 63 networks
    assert len(cands) == 225 and len(set(cands)) == 63 and set(cands) == set(space.subnets())
    assert cands == paper.candidates(space, p.score)
    assert "225" in paper.candidates_note(space, p.score) and clean.candidates_note(space, eff.score) is None
    with pytest.raises(KeyError, match="unknown protocol"):
        get_protocol("nope")
