"""Contracts of the plug-in points, swept over the registries: every search space, every
variant, and every (space, variant) pair the variant registry says can be built. A new space
or variant is tested here the moment it is registered."""
import functools
import io
import random
import re

import pytest
import torch
from torch import nn

from rankbench.config import ConfigError, RunConfig, apply_overrides
from rankbench.spaces import create_space, list_spaces, space_from_config
from rankbench.spaces.base import Arch, SearchSpace
from rankbench.supernet import create_supernet, list_variants, variant_info

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = dict(width=8, stacks=2, cells_per_stack=1)
PAIRS = [(s, v) for s in list_spaces() for v in list_variants(space=s)]
UNSUPPORTED = [(s, v) for s in list_spaces() for v in list_variants() if (s, v) not in PAIRS]
_BN = nn.modules.batchnorm._BatchNorm


@functools.lru_cache(maxsize=None)
def _space(name: str):
    return create_space(name)


def _archs(space, n: int = 3, seed: int = 0) -> list:
    rng = random.Random(seed)
    return [space.sample(rng) for _ in range(n)]


def _net(space_name: str, variant: str, seed: int = 0, **kw):
    torch.manual_seed(seed)
    return create_supernet(_space(space_name), variant, **{**TINY, **kw})


# -- registries --------------------------------------------------------------------------------
def test_variant_metadata_is_complete_and_consistent():
    names = list_variants()
    assert names and len(set(names)) == len(names)
    infos = [variant_info(v) for v in names]
    assert [i.order for i in infos] == sorted(i.order for i in infos)  # list_variants is in order
    assert len({i.order for i in infos}) == len(infos)
    assert len({i.colour.lower() for i in infos}) == len(infos)
    for i in infos:
        assert i.name in names and i.label and i.description
        assert re.fullmatch(r"#[0-9A-Fa-f]{6}", i.colour), i
        assert set(i.spaces) <= set(list_spaces()), i
        assert not i.shadow or i.norm is not None, i
    for s in list_spaces():
        assert set(list_variants(space=s)) <= set(names)
        assert list_variants(space=s) == [v for v in names if s in variant_info(v).spaces]


@pytest.mark.parametrize("space_name", list_spaces())
def test_every_space_has_a_supernet(space_name):
    assert list_variants(space=space_name), f"no variant can be built on {space_name!r}: register its cell"


@pytest.mark.parametrize("space_name,variant", UNSUPPORTED)
def test_unsupported_pairs_fail_clearly(space_name, variant):
    with pytest.raises(ValueError, match=f"variant '{variant}' supports search space"):
        create_supernet(_space(space_name), variant, **TINY)


def test_unknown_variant_lists_the_known_ones():
    with pytest.raises(KeyError, match="unknown variant 'nope'; known: " + ", ".join(sorted(list_variants()))):
        create_supernet("s4", "nope")


# -- spaces ------------------------------------------------------------------------------------
@pytest.mark.parametrize("space_name", list_spaces())
def test_space_contract(space_name):
    space = _space(space_name)
    assert isinstance(space, SearchSpace) and space.name == space_name
    settings = space.settings()
    assert create_space(space_name, **settings).settings() == settings
    assert space.tag.startswith(space_name) and re.fullmatch(r"[A-Za-z0-9_.-]+", space.tag)
    archs = _archs(space, 6)
    assert archs == _archs(space, 6)  # seeded
    for a in archs:
        assert isinstance(a, Arch) and a.name and isinstance(a.name, str)
        assert space.arch_from_name(a.name) == a and hash(space.arch_from_name(a.name)) == hash(a)
        assert space.arch_from_spec(a.spec).hash == a.hash == a.spec.hash
        cols = space.describe(a)
        assert space.group_column in cols
        assert all(isinstance(v, (int, float, str, bool)) for v in cols.values()), cols
    per_cell = space.sample_arch(random.Random(0), 5, per_cell=True)
    assert len(per_cell) == 5 and all(isinstance(a, Arch) for a in per_cell)
    assert isinstance(space.sample_arch(random.Random(0), 5), Arch)


@pytest.mark.parametrize("space_name", list_spaces())
def test_space_candidates(space_name):
    space = _space(space_name)
    some = space.candidates(3, 0)
    assert 0 < len(some) <= 3 and some == space.candidates(3, 0)
    assert len({a.name for a in some}) == len(some)
    assert all(isinstance(a, Arch) for a in some)


@pytest.mark.parametrize("space_name", list_spaces())
def test_space_config_section(space_name):
    cfg = apply_overrides(RunConfig(), {"space.name": space_name})
    assert cfg.space.name == space_name
    assert RunConfig.from_dict(cfg.to_dict()) == cfg
    assert space_from_config(cfg).settings() == cfg.space.settings()
    with pytest.raises(ConfigError, match=f"search space '{space_name}' has no setting 'nope'; known: "):
        apply_overrides(cfg, ["space.nope=1"])
    with pytest.raises(ConfigError, match="unknown field"):
        RunConfig.from_dict({**cfg.to_dict(), "space": {"name": space_name, "nope": 1}})


# -- supernets: every supported (space, variant) pair ------------------------------------------
@pytest.mark.parametrize("space_name,variant", PAIRS)
def test_gradients_exactly_on_the_weights_the_arch_uses(space_name, variant):
    """Forward/backward; gradients only on ``used_parameters``; ``param_count(arch)`` counts
    every parameter element that gets a nonzero gradient (a cell that uses slices of its
    weights counts the slices) and not many more: an element can be used and still get an
    exactly zero gradient (a BN bias whose sum reaches a train-mode BN through unclipped
    ReLUs and max-pools has a gradient that sums to zero), so the count is bounded, not equal."""
    net = _net(space_name, variant).train()
    x = torch.randn(4, 3, 8, 8)
    r = torch.randn(4, 10)
    names = dict(net.named_parameters())
    for arch in _archs(_space(space_name), 3, seed=1):
        net.zero_grad(set_to_none=True)
        out = net(x, arch)
        assert out.shape == (4, 10) and torch.isfinite(out).all()
        (out * r).sum().backward()
        used = {n for n, _ in net.used_parameters(arch)}
        with_grad = {n for n, p in names.items() if p.grad is not None}
        assert with_grad == used, arch.name
        assert 0 < len(used) < len(names)
        nonzero = sum(int((names[n].grad != 0).sum()) for n in used)
        count = net.param_count(arch)
        assert nonzero <= count <= sum(names[n].numel() for n in used), arch.name
        assert nonzero >= 0.95 * count, (arch.name, nonzero, count)
    assert net.param_count() == sum(p.numel() for p in net.parameters())


@pytest.mark.parametrize("space_name,variant", PAIRS)
def test_running_statistics_move_only_in_the_bns_the_arch_uses(space_name, variant):
    net = _net(space_name, variant).train()
    arch = _archs(_space(space_name), 1, seed=2)[0]
    bns = [m for m in net.modules() if isinstance(m, _BN)]
    before = [m.running_mean.clone() for m in bns]
    net(torch.randn(4, 3, 8, 8), arch)
    used = {id(m) for m in net.used_bns(arch)}
    assert used and used <= {id(m) for m in bns}
    for m, b in zip(bns, before):
        assert torch.equal(m.running_mean, b) != (id(m) in used), (arch.name, m)


@pytest.mark.parametrize("space_name,variant", PAIRS)
def test_state_dict_round_trip(space_name, variant):
    a = _net(space_name, variant, seed=0)
    archs = _archs(_space(space_name), 2, seed=3)
    x = torch.randn(4, 3, 8, 8)
    a.train()
    a(x, archs[0])  # move some running statistics
    buf = io.BytesIO()
    torch.save(a.state_dict(), buf)
    buf.seek(0)
    b = _net(space_name, variant, seed=1)
    b.load_state_dict(torch.load(buf))
    a.eval(), b.eval()
    for arch in archs:
        assert torch.equal(a(x, arch), b(x, arch))


@pytest.mark.parametrize("space_name,variant", PAIRS)
def test_per_cell_archs(space_name, variant):
    net = _net(space_name, variant, cells_per_stack=2)
    archs = _space(space_name).sample_arch(random.Random(4), net.num_cells, per_cell=True)
    x = torch.randn(2, 3, 8, 8)
    assert net(x, archs).shape == (2, 10)
    assert net.param_count(archs) <= sum(net.param_count(a) for a in archs)
    with pytest.raises(ValueError, match="one per cell"):
        net(x, archs[:1])


@pytest.mark.parametrize("space_name,variant", PAIRS)
def test_memo_and_compilable_blocks(space_name, variant):
    """Sharing the first cell's input work (memo) gives the same numbers, and every block
    marked ``compilable`` computes its output from its tensor inputs alone."""
    net = _net(space_name, variant).eval()
    x = torch.randn(3, 3, 8, 8)
    archs = _archs(_space(space_name), 3, seed=5)
    memo: dict = {}
    for arch in archs:
        assert torch.equal(net(x, arch, memo=memo), net(x, arch))
    seen: list = []
    hooks = [m.register_forward_hook(lambda mod, args, out: seen.append((mod, args, out)))
             for m in net.modules() if getattr(type(m), "compilable", False)]
    try:
        net(x, archs[0])
    finally:
        for h in hooks:
            h.remove()
    assert any(mod is net.stem for mod, _, _ in seen) and any(mod is net.classifier for mod, _, _ in seen)
    for mod, args, out in seen:
        assert args and all(isinstance(a, torch.Tensor) for a in args), type(mod)
        assert torch.equal(mod(*args), out), type(mod)


def test_used_parameters_of_a_deep_copy():
    import copy

    from rankbench.spaces import create_space
    from rankbench.supernet import create_supernet

    space = create_space("s4", m=2)
    net = create_supernet(space, "lsbn", width=4, stacks=1, cells_per_stack=1)
    arch = space.candidates()[-1]
    twin = copy.deepcopy(net)
    names = [n for n, _ in net.used_parameters(arch)]
    assert [n for n, _ in twin.used_parameters(arch)] == names
    assert all(p is dict(twin.named_parameters())[n] for n, p in twin.used_parameters(arch))
