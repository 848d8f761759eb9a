"""S4 supernets: NB101 parameter equality, the S4 cell's norms and SPOS, building from a
config. (tests/test_contracts.py sweeps every space x variant for forward/backward,
gradients only on used weights, state_dict round trips.)"""
import pytest
import torch

from rankbench.config import RunConfig, apply_overrides
from rankbench.nb101.network import nb101_parameters
from rankbench.spaces import Subnet, create_space
from rankbench.supernet import create_supernet, supernet_from_config, variant_info
from rankbench.supernet.norms import NORMS

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


@pytest.mark.parametrize("norm", ["bn", "lsbn", "esbn", "scale"])
def test_norms_know_only_the_summed_inputs(norm):
    """A norm is keyed by the ids of the inputs summed, not by any space's arch: the same
    classes serve S4's node 5 (inputs 1..m) and any other cell (e.g. vertex ids 0, 2, 3)."""
    torch.manual_seed(0)
    mod = NORMS.get(norm)(4, (0, 2, 3), bn_momentum=0.1).eval()
    for bn in mod.modules():
        if isinstance(bn, torch.nn.BatchNorm2d):
            bn.running_mean.uniform_(-1, 1)  # tell the BNs apart
    x = torch.randn(2, 4, 3, 3)
    one, two, other_two = mod.bns((2,)), mod.bns((0, 3)), mod.bns((2, 3))
    assert len(one) == len(two) == 1
    if norm == "lsbn":  # one BN per fan-in 1..3
        assert len(mod.sbn) == 3 and one[0] is mod.sbn[0] and two[0] is other_two[0] is mod.sbn[1]
    elif norm == "esbn":  # one BN per non-empty subset of {0, 2, 3}
        assert len(mod.sbn) == 7 and two[0] is mod.sbn["n03"] and two[0] is not other_two[0]
    else:
        assert one[0] is two[0]
    scale = 2 if norm == "scale" else 1
    assert torch.allclose(mod(x, (0, 3)), two[0](x / scale))


def test_supernet_by_name_and_from_config():
    torch.manual_seed(0)
    a = create_supernet("s4", "esbn", m=2, width=4, stacks=1, cells_per_stack=1)
    assert a.space.m == 2 and len(a.cells[0].norm.sbn) == 3
    with pytest.raises(TypeError, match="space settings"):
        create_supernet(create_space("s4"), "bn", m=2)
    cfg = apply_overrides(RunConfig(), {"space.m": 3, "model.variant": "lsbn", "model.width": 4,
                                        "model.stacks": 1, "model.cells_per_stack": 1})
    torch.manual_seed(0)
    net = supernet_from_config(cfg)
    assert net.space.settings() == {"m": 3} and net.variant == "lsbn" and len(net.cells[0].norm.sbn) == 3


def test_spos_is_s4_only_and_says_so():
    assert variant_info("spos").spaces == ("s4",)
    assert variant_info("spos").norm is None and variant_info("lsbn").norm == "lsbn"
