"""Supernet variants: NB101 parameter equality, gradients only on the active subnet,
forward/backward and state_dict round trips for every registered variant."""
import io
import random

import pytest
import torch

from rankbench.nb101.network import nb101_parameters
from rankbench.spaces import Subnet, create_space
from rankbench.supernet import create_supernet, list_variants

TINY = dict(width=4, stacks=2, cells_per_stack=1)


@pytest.fixture(scope="module")
def space():
    return create_space("s4", m=4)


def test_bn_subnet_params_equal_nb101_for_every_hash_class(space):
    """The weights a `bn` subnet uses are exactly NB101's network for its spec (default width)."""
    net = create_supernet(space, "bn")  # width 128, 3x3 cells: NB101's network
    for h, members in space.hash_classes().items():
        sub = members[0]
        assert net.param_count(sub) == nb101_parameters(sub.spec), sub.code
        # isomorphic subnets use the same number of weights
        assert {net.param_count(s) for s in members} == {net.param_count(sub)}


def test_mixpath_supernet_size_matches_the_paper(space):
    # MixPath paper: 52.9M parameters for the S4 supernet
    assert round(create_supernet(space, "bn").param_count() / 1e6, 1) == 52.9


@pytest.mark.parametrize("variant", list_variants())
def test_forward_backward_and_gradients_only_on_used_weights(variant, space):
    torch.manual_seed(0)
    net = create_supernet(space, variant, **TINY)
    x = torch.randn(6, 3, 16, 16)
    rng = random.Random(1)
    for _ in range(3):
        sub = space.sample(rng)
        net.zero_grad(set_to_none=True)
        out = net(x, sub)
        assert out.shape == (6, 10) and torch.isfinite(out).all()
        out.logsumexp(1).mean().backward()
        used = {name for name, _ in net.used_parameters(sub)}
        with_grad = {n for n, p in net.named_parameters() if p.grad is not None}
        assert with_grad == used, (variant, sub.code)
        assert 0 < len(used) < len(list(net.parameters()))


@pytest.mark.parametrize("variant", list_variants())
def test_per_cell_arch(variant, space):
    net = create_supernet(space, variant, width=4, stacks=2, cells_per_stack=2)
    arch = space.sample_arch(random.Random(0), net.num_cells, per_cell=True)
    assert net(torch.randn(2, 3, 8, 8), arch).shape == (2, 10)
    with pytest.raises(ValueError, match="one per cell"):
        net(torch.randn(2, 3, 8, 8), arch[:1])


@pytest.mark.parametrize("variant", list_variants())
def test_state_dict_round_trip(variant, space):
    torch.manual_seed(0)
    a = create_supernet(space, variant, **TINY)
    x = torch.randn(4, 3, 8, 8)
    sub = space.subnets()[-1]
    a.train()
    a(x, sub)  # move some running statistics
    buf = io.BytesIO()
    torch.save(a.state_dict(), buf)
    buf.seek(0)
    torch.manual_seed(1)
    b = create_supernet(space, variant, **TINY)
    b.load_state_dict(torch.load(buf))
    a.eval(), b.eval()
    for s in (space.subnets()[0], sub):
        assert torch.equal(a(x, s), b(x, s))


def test_unused_weights_get_no_momentum_or_weight_decay_update(space):
    torch.manual_seed(0)
    net = create_supernet(space, "lsbn", **TINY)
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-2)
    x, y = torch.randn(4, 3, 8, 8), torch.randint(0, 10, (4,))
    first, second = Subnet.from_code("3---"), Subnet.from_code("-1--")
    for sub in (first, second):
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(net(x, sub), y).backward()
        before = {n: p.detach().clone() for n, p in net.named_parameters()}
        opt.step()
    used = {n for n, _ in net.used_parameters(second)}
    for n, p in net.named_parameters():
        if n not in used:  # e.g. the path used in step 1 has momentum, but must not move in step 2
            assert torch.equal(p, before[n]), n
    moved = [n for n in used if not torch.equal(dict(net.named_parameters())[n], before[n])]
    assert moved


def test_shadow_bns_are_picked_by_path_count_and_subset(space):
    net = create_supernet(space, "lsbn", **TINY)
    cell = net.cells[0]
    assert len(cell.norm.sbn) == 4
    assert cell.used_bns(Subnet.from_code("33--"))[-1] is cell.norm.sbn[1]
    assert cell.used_bns(Subnet.from_code("-m1m"))[-1] is cell.norm.sbn[2]
    esbn = create_supernet(space, "esbn", **TINY).cells[0]
    assert len(esbn.norm.sbn) == 15
    assert esbn.used_bns(Subnet.from_code("3-1-"))[-1] is esbn.norm.sbn["n13"]


def test_scale_divides_the_sum_by_the_number_of_paths(space):
    torch.manual_seed(0)
    net = create_supernet(space, "scale", **TINY).eval()
    cell = net.cells[0]
    x = torch.randn(2, 4, 8, 8)
    sub = Subnet.from_code("33m-")
    expected = cell.relu(cell.norm.bn(cell.node5(cell.aggregate(x, sub)) / 3))
    assert torch.allclose(cell(x, sub), expected)


def test_spos_gives_every_hash_class_its_own_weights(space):
    net = create_supernet(space, "spos", **TINY)
    a, b = Subnet.from_code("3m--"), Subnet.from_code("--m3")  # isomorphic: one candidate
    c = Subnet.from_code("33--")
    pa = {n for n, _ in net.used_parameters(a)}
    assert pa == {n for n, _ in net.used_parameters(b)}
    cell_params_a = {n for n in pa if n.startswith("cells.")}
    cell_params_c = {n for n, _ in net.used_parameters(c) if n.startswith("cells.")}
    assert not cell_params_a & cell_params_c
    assert len(net.cells[0].candidates) == 34


def test_unknown_variant_is_a_clear_error(space):
    with pytest.raises(KeyError, match="unknown variant 'nope'; known: bn, esbn, lsbn, scale, spos"):
        create_supernet(space, "nope")
