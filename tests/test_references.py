"""Reference rankers: the closed-form parameter and MAC counts of NB101's stand-alone networks
against NB101's own stored counts and against nasbench-pytorch's Network."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import rankbench.nb101 as nb101
from rankbench.nb101.network import build_network, count_parameters
from rankbench.references import NetworkSize, network_cost, reference_scores


@pytest.fixture(scope="module")
def store():
    with nb101.open() as s:  # the bundled sample (conftest isolates RANKBENCH_HOME/DATA)
        yield s


def test_params_equal_nb101_trainable_parameters_for_bundled_cells(store):
    """Every bundled cell has a spec (from the catalogue); the closed form matches NB101's count
    on a seeded sample of 2,000 of them here (all 30,031: the slow catalogue test)."""
    import random

    hashes = store.hashes(with_spec=True)
    assert len(hashes) == 30031
    sample = random.Random(0).sample(sorted(hashes), 2000)
    bad = [h for h in sample if network_cost(store.spec(h).matrix, store.spec(h).ops)[0] != store.params(h)]
    assert not bad, f"{len(bad)} cells differ, e.g. {bad[:3]}"


def _macs(net: torch.nn.Module, resolution: int) -> int:
    total = [0]

    def hook(m, _inp, out):
        if isinstance(m, torch.nn.Conv2d):
            total[0] += out[0].numel() * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]
        elif isinstance(m, torch.nn.Linear):
            total[0] += m.in_features * m.out_features

    for m in net.modules():
        m.register_forward_hook(hook)
    net.eval()
    with torch.no_grad():
        net(torch.zeros(1, 3, resolution, resolution))
    return total[0]


def test_params_and_macs_equal_nasbench_pytorch_at_another_size(store):
    size = NetworkSize(stem_channels=16, stacks=3, cells_per_stack=1, resolution=16)
    for h in store.hashes(with_spec=True)[:12]:
        spec = store.spec(h)
        net = build_network(spec, stem_channels=16, num_stacks=3, cells_per_stack=1)
        assert network_cost(spec.matrix, spec.ops, size) == (count_parameters(net), _macs(net, 16)), h


def test_reference_scores_use_the_store_where_it_has_them(store):
    specs = [store.spec(h) for h in store.hashes(with_spec=True)[:40]]
    scores, desc = reference_scores(specs, NetworkSize(), store=store)
    assert {"params", "flops", "nb101_4", "nb101_12", "nb101_36"} <= set(scores)
    assert scores["params"].tolist() == [float(store.params(s.hash)) for s in specs]
    want = store.query_many([s.hash for s in specs], epochs=4, reduce="mean")
    np.testing.assert_array_equal(scores["nb101_4"], np.asarray(want, float))
    no_store, _ = reference_scores(specs, NetworkSize())
    assert set(no_store) == {"params", "flops"}
