"""Contracts over every extension point's registry (reference rankers, training samplers, truth
sources, candidate rules) and ``rankbench list``: each test sweeps the registry, so a new entry is
tested the moment it is registered."""
from __future__ import annotations

import random
from contextlib import nullcontext
from dataclasses import replace

import numpy as np
import pytest

from rankbench import nb101
from rankbench._paths import bundled_dir
from rankbench.cli import main
from rankbench.cli.train import LISTS
from rankbench.config import apply_overrides, load_preset
from rankbench.references import REFERENCES, NetworkSize, ReferenceContext, reference_scores
from rankbench.scoring.protocols import CANDIDATE_RULES, CLEAN, PROTOCOLS
from rankbench.spaces import create_space
from rankbench.training.samplers import SAMPLERS, example_spec, make_sampler
from rankbench.truth import TRUTHS, Truth, truth_source


@pytest.fixture(scope="module")
def s4():
    return create_space("s4", m=2)


@pytest.fixture(scope="module")
def nb101_specs():
    """Cells the bundled NB101 sample holds (their shorter budgets too)."""
    with nb101.open() as store:
        return [store.spec(h) for h in store.hashes(with_spec=True)[:12]]


# -- reference rankers -------------------------------------------------------------------------
@pytest.mark.parametrize("name", REFERENCES.names())
@pytest.mark.parametrize("with_store", (False, True))
def test_reference_ranker_contract(name, with_store, s4, nb101_specs):
    """One score per candidate (a float array, the same on a second call) and a description, or
    None where the ranker does not apply; the same scores through reference_scores."""
    ranker = REFERENCES.get(name)
    assert ranker.name == name and ranker.label and ranker.doc
    specs = nb101_specs if with_store else [a.spec for a in s4.candidates(0, 0)]
    size = NetworkSize(stem_channels=4, stacks=1, cells_per_stack=1, resolution=8)
    # an opt-in ranker (the zero-cost proxies) is given what it needs: chosen, and a data batch
    extra = dict(opt_in=(name,), data=_batch(size.resolution), proxy_batch_size=8) if ranker.opt_in else {}
    with (nb101.open() if with_store else nullcontext()) as store:
        ctx = ReferenceContext(specs=specs, size=size, store=store, **extra)
        got = ranker(ctx)
        again = ranker(replace(ctx, cache={}))
        via, desc = reference_scores(specs, ctx.size, store=store, **extra)
        if ranker.opt_in:  # not chosen: it does not rank
            assert got is not None and name not in reference_scores(specs, ctx.size, store=store)[0]
            assert ranker.needs
    if got is None:
        assert again is None and name not in via
        return
    scores, text = got
    assert isinstance(scores, np.ndarray) and scores.shape == (len(specs),) and scores.dtype == float
    assert isinstance(text, str) and text
    np.testing.assert_array_equal(scores, again[0])
    np.testing.assert_array_equal(scores, via[name])
    assert desc[name] == text


def _batch(side: int, n: int = 12):
    """A fixed uint8 image batch (n images of side x side, 10 classes) for the proxies."""
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(n, 3, side, side), dtype=np.uint8), np.arange(n) % 10


# -- training samplers -------------------------------------------------------------------------
@pytest.mark.parametrize("name", SAMPLERS.names())
@pytest.mark.parametrize("per_cell", (False, True))
def test_training_sampler_contract(name, per_cell, s4):
    """A seeded step plan: the same seed draws the same archs, every arch is a subnet of the
    space (one per cell with per_cell); a first docstring line for ``rankbench list samplers``."""
    assert SAMPLERS.describe()[name]
    sampler = make_sampler(example_spec(name, s4), s4, 3, per_cell=per_cell)
    first = [sampler(rng) for rng in [random.Random(7)] for _ in range(20)]
    second = [sampler(rng) for rng in [random.Random(7)] for _ in range(20)]
    assert first == second
    hashes = set(s4.hash_classes())
    for arch in first:
        archs = arch if per_cell else [arch]
        assert len(archs) == (3 if per_cell else 1)
        assert all(a.hash in hashes for a in archs)


def test_an_unknown_sampler_lists_the_known_ones(s4):
    with pytest.raises(ValueError, match="uniform"):
        make_sampler("nope", s4, 3)


# -- truth sources -------------------------------------------------------------------------------
@pytest.mark.parametrize("name", TRUTHS.names())
def test_truth_source_contract(name):
    """Each source loads a truth of its own kind from its example config, with a coverage, a
    network size, an axis label, a reference store (or None) and a fix for a thin coverage."""
    cls = TRUTHS.get(name)
    preset, source = cls.example
    cfg = apply_overrides(load_preset(preset), {"truth.source": source.format(bundled=bundled_dir())})
    src = truth_source(cfg)
    assert type(src) is cls
    truth = src.load(list(cfg_candidates(cfg))[:40])
    assert isinstance(truth, Truth) and truth.source == name and len(truth.table)
    hashes = list(truth.table.index[:5])
    assert truth.coverage(hashes).covered == 5 and len(truth.digest()) == 12
    assert isinstance(src.network_size(), NetworkSize)
    assert isinstance(src.axis_label(), str) and src.axis_label()
    with src.reference_store() as store:
        assert store is None or hasattr(store, "query_many")
    assert isinstance(cls.coverage_fix(truth, preset), str)


def cfg_candidates(cfg):
    from rankbench.scoring import get_protocol
    from rankbench.spaces import space_from_config

    proto = get_protocol(cfg.score.protocol)
    eff = proto.apply(cfg)
    return proto.candidates(space_from_config(eff), eff.score)


# -- candidate rules -----------------------------------------------------------------------------
@pytest.mark.parametrize("name", CANDIDATE_RULES.names())
def test_candidate_rule_contract(name, s4):
    """Candidates with a hash and a spec, the same for the same seed; a note None or a line; some
    registered protocol uses the rule."""
    assert any(PROTOCOLS.get(p).candidate_rule == name for p in PROTOCOLS.names())
    proto = replace(CLEAN, candidate_rule=name)
    score = replace(load_preset("quick").score, candidates=5)
    got = proto.candidates(s4, score)
    assert 1 <= len(got) <= 5 and all(isinstance(a.hash, str) and a.spec is not None for a in got)
    assert [a.hash for a in proto.candidates(s4, score)] == [a.hash for a in got]
    note = proto.candidates_note(s4, score)
    assert note is None or isinstance(note, str)


# -- rankbench list ------------------------------------------------------------------------------
@pytest.mark.parametrize("what", LISTS)
def test_rankbench_list_shows_every_entry(what, capsys):
    from rankbench.config import list_presets
    from rankbench.figures import list_figures
    from rankbench.spaces import SPACES
    from rankbench.supernet import list_variants

    names = {"references": REFERENCES.names, "samplers": SAMPLERS.names, "truths": TRUTHS.names,
             "figures": list_figures, "protocols": PROTOCOLS.names, "spaces": SPACES.names,
             "variants": list_variants, "presets": list_presets}[what]()
    assert main(["list", what]) == 0
    shown = [line.split()[0] for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert shown == list(names)
