"""The nb101 space and its weight-sharing supernet, against NAS-Bench-101 itself: the cell count,
NB101's own labelling, uniform training draws, parameter counts of all 1,030 bundled cells with
a spec, logits equal to nasbench-pytorch's Network with the sliced weights, gradients and BN
statistics only where an arch reads, and what each normalisation variant does."""
import json
import random
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn

from rankbench import nb101
from rankbench.nb101 import InvalidSpecError, ModelSpec
from rankbench.nb101.network import build_network, count_parameters
from rankbench.nb101.spec import OP_CODES, matrix_from_string
from rankbench.scoring.batched import score_group
from rankbench.scoring.calibrate import BNState, bns_of, calibrate_bn
from rankbench.scoring.score import evaluate
from rankbench.spaces import create_space
from rankbench.spaces import nb101 as space_mod
from rankbench.supernet import create_supernet, list_variants, variant_info
from rankbench.supernet.nb101_cell import NB101SupernetCell, to_nb101_network

pytestmark = pytest.mark.usefixtures("one_thread")

ASSETS = Path(__file__).parent / "assets"
SMALL = dict(width=8, stacks=3, cells_per_stack=1)
_BN = nn.modules.batchnorm._BatchNorm


def _fixture_cells() -> list[dict]:
    """The 1,030 real NB101 cells with a spec (the bundled sample's), with NB101's counts."""
    out = []
    for r in json.loads((ASSETS / "nb101_1k_specs.json").read_text())["cells"]:
        out.append({"hash": r["key"], "adjacency": r["adjacency"], "ops": [int(o) for o in r["ops"]],
                    "params": r["trainable_parameters"]})
    for h, r in json.loads((ASSETS / "nb101_30.json").read_text())["cells"].items():
        out.append({"hash": h, "adjacency": r["adjacency"], "ops": [OP_CODES[o] for o in r["ops"]],
                    "params": r["trainable_parameters"]})
    return out


CELLS = _fixture_cells()


@pytest.fixture(scope="module")
def space():
    return create_space("nb101")


@pytest.fixture(scope="module")
def archs(space):
    """(fixture row, arch) for the 1,030 cells."""
    return [(r, space.arch_from_spec(ModelSpec(matrix_from_string(r["adjacency"]), r["ops"]))) for r in CELLS]


def _variants():
    return list_variants(space="nb101")


# -- the space -------------------------------------------------------------------------------------
def test_enumeration_finds_nb101s_423624_cells_and_the_feasible_shadow_bns():
    sv = space_mod.survey()
    assert sum(sv.cells.values()) == space_mod.NUM_CELLS == 423_624
    assert sum(space_mod.labelled_cell_counts().values()) == 1_293_208
    # the module docstrings' claims: fan-in 5 never occurs; 8 input sets at vertex 5 never do
    assert {v: sorted(f) for v, f in sv.fan_ins.items()} == {1: [1], 2: [1, 2], 3: [1, 2, 3], 4: [1, 2, 3, 4],
                                                              5: [1, 2, 3, 4]}
    every = {v: {tuple(u for u in range(v) if mask >> u & 1) for mask in range(1, 2 ** v)} for v in range(1, 6)}
    missing = {v: every[v] - sv.pred_sets[v] for v in every}
    assert all(not missing[v] for v in range(1, 5))
    assert missing[5] == {(0,), (0, 1), (0, 1, 2), (0, 1, 3), (0, 2, 3), (1, 2, 3), (0, 1, 2, 3), (0, 1, 2, 3, 4)}


def test_archs_keep_nb101s_stored_labelling_and_hash(archs):
    assert len(archs) == 1030 and len({a for _, a in archs}) == 1030
    for r, a in archs:
        assert a.spec.adjacency_string == r["adjacency"], a
        assert [OP_CODES[o] for o in a.spec.ops] == r["ops"], a
        assert a.hash == r["hash"]
    for r, a in archs[::50]:  # the hash recomputed from the arch's own spec, not carried over
        assert ModelSpec(a.spec.matrix, a.spec.ops).hash == r["hash"]


def test_isomorphic_specs_give_one_arch(space, archs):
    rng = random.Random(0)
    relabelled = 0
    for r, a in archs[:200]:
        ops, n, bits = space_mod._parse(a.name)
        for order, nb in space_mod._relabellings(n, bits):
            other = ModelSpec(space_mod._matrix_of(n, nb),
                              ["input"] + [space_mod.CHAR_OP[ops[o - 1]] for o in order] + ["output"])
            b = space.arch_from_spec(other)
            assert b == a and b.name == a.name and hash(b) == hash(a)
            relabelled += other.adjacency_string != a.spec.adjacency_string
            if rng.random() < 0.02:
                assert other.hash == a.hash
    assert relabelled > 50  # the check saw other labellings, not only the stored one


def test_names_round_trip_and_errors_say_what_is_wrong(space, archs):
    for _, a in archs:
        assert space.arch_from_name(a.name) == a
        assert create_space("nb101").arch_from_name(a.name) == a  # no state needed
    assert space.arch_from_name("_1").spec.num_vertices == 2
    chain = space.arch_from_spec(ModelSpec(np.eye(4, k=1, dtype=int), ["input", "conv3x3-bn-relu", "maxpool3x3",
                                                                         "output"]))
    assert chain.name == "3m_25"
    for bad, msg in [("3m", "expected '<ops>_<hex"), ("3x_25", "unknown op"), ("3m_2", "6 bits"),
                     ("3m_zz", "not a hexadecimal"), ("333333_000001", "at most 5")]:
        with pytest.raises(ValueError, match=msg):
            space.arch_from_name(bad)
    with pytest.raises(InvalidSpecError, match="no input -> output path"):
        space.arch_from_name("33_13")  # 0->1->3 and 0->2: vertex 2 feeds nothing
    with pytest.raises(TypeError, match="ModelSpec"):
        space.arch_from_spec((np.eye(2, k=1), ["input", "output"]))
    with pytest.raises(InvalidSpecError, match="at most 9"):
        ModelSpec(np.triu(np.ones((7, 7), int), 1), ["input"] + ["conv3x3-bn-relu"] * 5 + ["output"])


def test_candidates_are_the_store_cells_with_a_spec(space, archs):
    cands = space.candidates()
    store = nb101.open()
    assert len(cands) == 30_031 and [a.hash for a in cands] == store.hashes(with_spec=True) == store.hashes()
    assert set(cands) >= {a for _, a in archs}
    some = space.candidates(100, seed=3)
    assert len(set(some)) == 100 and set(some) <= set(cands)
    assert [a.hash for a in some] == sorted(a.hash for a in some)  # hash order kept
    assert some == space.candidates(100, seed=3) != space.candidates(100, seed=4)
    assert space.candidates(40_000) == cands
    assert create_space("nb101", store=store.path).candidates(10, seed=1) == space.candidates(10, seed=1)
    for a in random.Random(0).sample(cands, 25):  # the hash a candidate carries is its spec's
        assert ModelSpec(a.spec.matrix, a.spec.ops).hash == a.hash
    assert space.tag == "nb101" and space.settings() == {}
    assert list(space.hash_classes()) == [a.hash for a in cands]


def test_candidates_come_from_the_store_truth_store_names(tmp_path):
    from rankbench.config import apply_overrides, load_preset
    from rankbench.nb101.importer import import_tfrecord
    from rankbench.spaces import space_from_config

    store = import_tfrecord(ASSETS / "nb101_30.tfrecord", tmp_path / "s.h5", progress=False).path
    cfg = apply_overrides(load_preset("nb101-quick"), {"truth.store": str(store), "score.candidates": 0})
    space = space_from_config(cfg)
    with nb101.open(store) as st:
        assert [a.hash for a in space.candidates()] == st.hashes() and len(st.hashes()) == 30
    default = space_from_config(load_preset("nb101-quick"))  # truth.store = "": nb101.open()'s choice
    assert len(default.candidates()) == 30_031


def test_describe_columns(space, archs):
    a = space.arch_from_name("3m_25")
    d = space.describe(a)
    assert d == {"num_vertices": 4, "num_edges": 3, "max_fan_in": 1, "mean_fan_in": 1.0, "fan_in_1": 2,
                 "fan_in_2": 0, "fan_in_3": 0, "fan_in_4": 0, "num_conv3x3": 1, "num_conv1x1": 0,
                 "num_maxpool": 1, "depth": 3, "output_fan_in": 1, "input_to_output": 0}
    for _, a in archs[:100]:
        d = space.describe(a)
        assert space.group_column in d
        assert d["num_vertices"] - 2 == sum(d[f"fan_in_{k}"] for k in range(1, 5))
        assert d["num_edges"] == sum(k * d[f"fan_in_{k}"] for k in range(1, 5)) + d["output_fan_in"] \
            + d["input_to_output"]


def _chi2_p(counts: Counter, expected: dict) -> float:
    keys = list(expected)
    obs = np.array([counts.get(k, 0) for k in keys], float)
    exp = np.array([expected[k] for k in keys], float)
    assert set(counts) <= set(keys)
    return float(stats.chisquare(obs, exp * obs.sum() / exp.sum()).pvalue)


def test_training_draws_are_uniform_over_distinct_cells():
    # every cell of up to 5 vertices (2,532): exact uniformity, and plain rejection fails it
    cells = sum(space_mod.count_cells(5).values())
    n = 10 * cells
    rng_u, rng_p = random.Random(0), random.Random(0)
    uniform = Counter(space_mod.draw_cell(rng_u, 5) for _ in range(n))
    plain = Counter(space_mod.draw_cell(rng_p, 5, uniform=False) for _ in range(n))
    assert len(uniform) == cells  # every cell reachable
    expected = {name: 1.0 for name in set(uniform) | set(plain)}
    assert len(expected) == cells
    assert _chi2_p(uniform, expected) > 1e-3
    assert _chi2_p(plain, expected) < 1e-6


def test_space_sample_matches_nb101s_cell_sizes(space):
    sv = space_mod.survey()
    rng = random.Random(1)
    draws = [space.sample(rng) for _ in range(2000)]
    expected = {5: sum(c for n, c in sv.cells.items() if n <= 5), 6: sv.cells[6], 7: sv.cells[7]}

    def size(name: str) -> int:
        return max(5, len(name.split("_")[0]) + 2)  # sizes up to 5 in one bin (0.6% of cells)

    uniform = Counter(size(a.name) for a in draws)
    assert _chi2_p(uniform, expected) > 1e-3  # the share of each size among the 423,624 cells
    rng = random.Random(1)
    plain = Counter(size(space_mod.draw_cell(rng, uniform=False)) for _ in range(2000))
    assert _chi2_p(plain, expected) < 1e-3  # favours 7-vertex cells (many labellings)
    assert draws[:20] == [space.sample(r) for r in [random.Random(1)] for _ in range(20)]  # seeded
    per_cell = space.sample_arch(random.Random(0), 9, per_cell=True)
    assert len(per_cell) == 9 and len(set(per_cell)) > 1


# -- the supernet: NB101's weights and logits --------------------------------------------------------
@pytest.fixture(scope="module")
def net128():
    """The ``bn`` supernet at NB101's scale: width 128, 3 stacks x 3 cells (~0.2 GB)."""
    torch.manual_seed(0)
    return create_supernet("nb101", "bn")


def test_used_weights_number_nb101s_trainable_parameters_for_all_1030_cells(archs, net128):
    net = net128
    for r, a in archs:
        assert net.param_count(a) == r["params"], a


def _randomise_bns(net: nn.Module, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, _BN):
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)


@pytest.mark.parametrize("variant", _variants())
def test_count_is_the_sliced_weights_and_nasbench_networks_at_another_width(variant, archs):
    torch.manual_seed(0)
    net = create_supernet("nb101", variant, width=8, stacks=2, cells_per_stack=2)
    for r, a in archs[::20]:
        nb = count_parameters(build_network(a.spec, stem_channels=8, num_stacks=2, cells_per_stack=2))
        assert net.param_count(a) == nb, a
        sliced = sum(p[sl].numel() for cell in net.cells for p, sl in cell.used_slices(a))
        fixed = sum(p.numel() for p in list(net.stem.parameters()) + list(net.classifier.parameters()))
        assert net.param_count(a) == sliced + fixed


@pytest.mark.parametrize("variant", [v for v in _variants() if variant_info(v).norm != "scale"])
def test_logits_equal_nasbench_pytorch_network_with_the_used_weights(variant, archs):
    torch.manual_seed(0)
    net = create_supernet("nb101", variant, **SMALL)
    _randomise_bns(net)
    cells = [a for _, a in archs[::30]] if variant == "bn" else [a for _, a in archs[5::100]]
    assert len(cells) >= (35 if variant == "bn" else 10)
    x = torch.randn(6, 3, 8, 8)
    for a in cells:
        ref = to_nb101_network(net, a)
        assert count_parameters(ref) == net.param_count(a)
        for train in (False, True):  # eval first: running statistics as copied
            net.train(train), ref.train(train)
            with torch.no_grad():
                diff = (net(x, a) - ref(x)).abs().max().item()
            assert diff <= 1e-4, (a, train, diff)


def test_scale_divides_every_vertex_sum_by_its_fan_in_maxpool_included(space):
    torch.manual_seed(0)
    bn, sc = create_supernet(space, "bn", **SMALL), create_supernet(space, "scale", **SMALL)
    sc.load_state_dict(bn.state_dict())  # same parameter names: one BN per (vertex, op)
    assert all(c.divide for c in sc.cells) and not any(c.divide for c in bn.cells)
    x = torch.randn(4, 3, 8, 8)
    bn.eval(), sc.eval()
    # fan-in 1 everywhere: scaling changes nothing
    chain = space.arch_from_name("3m_25")
    assert torch.equal(bn(x, chain), sc(x, chain))
    # a max-pool vertex summing two inputs (no BN there): its output is halved under scale
    a = space.arch_from_spec(ModelSpec(matrix_from_string("0110000110000010000100000"),
                                       ["input", "conv1x1-bn-relu", "maxpool3x3", "conv3x3-bn-relu", "output"]))
    assert a.fan_ins == (1, 2, 1) and a.spec.ops[2] == "maxpool3x3"
    cell_bn, cell_sc = bn.cells[0], sc.cells[0]
    h = bn.stem(x)
    pool_in = {}
    for c, key in ((cell_bn, "bn"), (cell_sc, "scale")):
        c.pool.register_forward_hook(lambda mod, inp, out, key=key: pool_in.setdefault(key, inp[0]))
    cell_bn(h, a), cell_sc(h, a)
    assert torch.allclose(pool_in["scale"] * 2, pool_in["bn"], atol=1e-6)


def test_shadow_bns_are_chosen_by_fan_in_and_by_input_set(space):
    a = space.arch_from_spec(ModelSpec(matrix_from_string("0111000100000100000100000"),
                                       ["input", "conv3x3-bn-relu", "conv1x1-bn-relu", "conv3x3-bn-relu",
                                        "output"]))
    assert a.fan_ins == (1, 2, 2)
    got = {}
    for variant in ("bn", "lsbn", "esbn"):
        net = create_supernet(space, variant, width=4, stacks=1, cells_per_stack=1)
        cell = net.cells[0]
        names = {id(m): n for n, m in cell.named_modules()}
        got[variant] = sorted(names[id(b)] for b in cell.used_bns(a) if id(b) in names and "proj" not in names[id(b)])
    assert got["bn"] == ["vertices.0.conv3x3-bn-relu.norm.bn", "vertices.1.conv1x1-bn-relu.norm.bn",
                         "vertices.2.conv3x3-bn-relu.norm.bn"]
    # vertex 2 sums {0, 1} and vertex 3 sums {0, 2}: the same fan-in, different sets
    assert got["lsbn"] == ["vertices.0.conv3x3-bn-relu.norm.sbn.0", "vertices.1.conv1x1-bn-relu.norm.sbn.1",
                           "vertices.2.conv3x3-bn-relu.norm.sbn.1"]
    assert got["esbn"] == ["vertices.0.conv3x3-bn-relu.norm.sbn.n0", "vertices.1.conv1x1-bn-relu.norm.sbn.n01",
                           "vertices.2.conv3x3-bn-relu.norm.sbn.n02"]


def test_variant_sizes_match_the_docstring_table(net128):
    """BNs per (vertex, conv op) and the width-128 supernet sizes in nb101_cell's docstring."""
    per_cell_width = sum(128 * 2 ** s for s in range(3)) * 3  # sum of C over the 9 cells
    sizes = {}
    for variant in _variants():
        cell = NB101SupernetCell(4, 4, norm=variant_info(variant).norm)
        per_vertex = [len([m for m in cell.vertices[v]["conv3x3-bn-relu"].modules() if isinstance(m, _BN)])
                      for v in range(5)]
        sizes[variant] = per_vertex
    assert sizes == {"bn": [1] * 5, "scale": [1] * 5, "lsbn": [1, 2, 3, 4, 5], "esbn": [1, 3, 7, 15, 31]}
    bn_total = net128.param_count()
    assert bn_total == 56_914_570
    extra = {v: (sum(s) - 5) * 2 * 2 * per_cell_width for v, s in sizes.items()}  # 2 conv ops, 2 x C each
    assert extra == {"bn": 0, "scale": 0, "lsbn": 107_520, "esbn": 559_104}
    assert create_supernet("nb101", "lsbn", width=16).param_count() - create_supernet(
        "nb101", "bn", width=16).param_count() == 107_520 // 8


def test_spos_is_s4_only():
    assert "spos" not in _variants()
    assert set(_variants()) == {v for v in list_variants() if variant_info(v).norm is not None}
    with pytest.raises(ValueError, match="supports"):
        create_supernet("nb101", "spos")


# -- training and scoring contracts --------------------------------------------------------------------
@pytest.mark.parametrize("variant", _variants())
def test_gradients_and_statistics_only_where_the_arch_reads(variant, space):
    torch.manual_seed(0)
    net = create_supernet(space, variant, **SMALL)
    x = torch.randn(4, 3, 8, 8)
    for a in [space.sample(random.Random(s)) for s in range(4)] + [space.arch_from_name("_1")]:
        net.zero_grad(set_to_none=True)
        before = {id(b): b.running_mean.clone() for b in net.modules() if isinstance(b, _BN)}
        net.train()
        net(x, a).logsumexp(1).mean().backward()
        used = dict(net.used_parameters(a))
        for name, p in net.named_parameters():
            assert (p.grad is not None) == (name in used), (a, name)
        masks = {id(p): torch.zeros_like(p, dtype=torch.bool) for p in used.values()}
        for cell in net.cells:
            for p, sl in cell.used_slices(a):
                masks[id(p)][sl] = True
        for mod in (net.stem, net.classifier):
            for p in mod.parameters():
                masks[id(p)][...] = True
        for name, p in used.items():
            assert not p.grad[~masks[id(p)]].any(), (a, name)  # nothing outside the used slices
        assert sum(int(m.sum()) for m in masks.values()) == net.param_count(a)
        moved = {id(b) for b in net.modules() if isinstance(b, _BN) and not torch.equal(b.running_mean, before[id(b)])}
        assert moved <= {id(b) for b in bns_of(net, a)}


def test_memo_calibration_and_batched_scoring_match_one_by_one(space):
    torch.manual_seed(0)
    net = create_supernet(space, "lsbn", width=4, stacks=2, cells_per_stack=1)
    _randomise_bns(net)
    group = space.candidates(5, seed=0) + [space.arch_from_name("_1")]
    calib = [torch.randn(8, 3, 8, 8) for _ in range(2)]
    images, labels = torch.randn(16, 3, 8, 8), torch.randint(0, 10, (16,))
    memo = {}
    net.eval()
    with torch.no_grad():
        for a in group:
            assert torch.equal(net(images, a, memo=memo), net(images, a))
    state = BNState(net)
    alone = []
    for a in group:
        touched = calibrate_bn(net, a, calib, reset=True)
        assert {id(b) for b in touched} == {id(b) for b in bns_of(net, a)}
        alone.append(evaluate(net, a, images, labels, batch_size=8))
        state.restore(touched)
    assert score_group(net, group, images, labels, calib=calib, reset=True, batch_size=8) == alone


def test_quick_preset_ranks_bundled_cells_against_nb101s_own_accuracy():
    from rankbench.config import load_preset
    from rankbench.spaces import space_from_config

    cfg = load_preset("nb101-quick")
    space = space_from_config(cfg)
    assert space.name == "nb101" and cfg.truth.source == "nb101" and cfg.truth.epochs == 108
    assert 0 < cfg.score.candidates <= 1030
    cands = space.candidates(cfg.score.candidates, cfg.score.seed)
    acc = nb101.open().query_many([a.hash for a in cands], epochs=108, metric="validation_accuracy")
    assert len(cands) == cfg.score.candidates and np.isfinite(acc).all() and (acc > 0.1).mean() > 0.9


@pytest.mark.parametrize("channels_last", (False, True))
def test_the_scoring_max_pool_equals_atens(channels_last):
    """Scoring's 3x3 max-pool (shifted maxima, CPU, no autograd) gives ATen's values and memory
    format exactly, on whole tensors and on channel slices, with ties (ReLU zeros) and -inf-free
    padding; with autograd the module itself runs."""
    import torch.nn as nn

    from rankbench.supernet.nb101_cell import _max_pool3x3

    pool = nn.MaxPool2d(3, stride=1, padding=1)
    g = torch.Generator().manual_seed(0)
    for shape in ((2, 8, 16, 16), (3, 5, 8, 8), (1, 4, 3, 5), (2, 3, 1, 1)):
        x = torch.relu(torch.randn(shape, generator=g))  # many exact ties at 0
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        for t in (x, x[:, : max(1, shape[1] // 2)]):  # a vertex's channel slice
            with torch.no_grad():
                ours, ref = _max_pool3x3(pool, t), pool(t)
            assert torch.equal(ours, ref)
            assert ours.stride() == ref.stride()
    x = torch.randn(2, 4, 6, 6, requires_grad=True)
    y = _max_pool3x3(pool, x)  # training: the module, whose gradient goes to one input on ties
    y.sum().backward()
    assert torch.equal(x.grad, torch.autograd.grad(pool(x).sum(), x)[0])
