"""Zero-cost proxies (rankbench.proxies): each registered measure against an independent
computation (a different code path, or a value worked out by hand) on tiny networks, plus
determinism, signs and the cache."""
from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from rankbench.config import ModelConfig
from rankbench.nb101.network import build_network
from rankbench.nb101.spec import ModelSpec
from rankbench.proxies import (
    Probe,
    compute_proxies,
    get_proxy,
    list_proxies,
    proxy_reference_ranker,
    proxy_reference_scores,
    select_batch,
)
from rankbench.proxies import compute as compute_mod
from rankbench.proxies.activation import JACOB_COV_K, jacob_cov_score

pytestmark = pytest.mark.usefixtures("one_thread")

SPEC_A = ModelSpec(np.array([[0, 1, 1, 0, 1], [0, 0, 0, 1, 0], [0, 0, 0, 1, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0]]),
                   ["input", "conv3x3-bn-relu", "maxpool3x3", "conv1x1-bn-relu", "output"])
SPEC_B = ModelSpec(np.array([[0, 1, 0], [0, 0, 1], [0, 0, 0]]), ["input", "conv3x3-bn-relu", "output"])
SPEC_C = ModelSpec(np.array([[0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 0]]),
                   ["input", "conv1x1-bn-relu", "maxpool3x3", "output"])
TINY_CFG = ModelConfig(width=8, stacks=2, cells_per_stack=1, num_classes=10)


class Chain(nn.Module):
    """conv3x3-BN-ReLU -> conv1x1-BN-ReLU -> global mean -> linear: a 3-layer net to check by hand."""

    def __init__(self, classes: int = 3):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4)
        self.conv2, self.bn2 = nn.Conv2d(4, 5, 1, bias=False), nn.BatchNorm2d(5)
        self.relu1, self.relu2 = nn.ReLU(), nn.ReLU()
        self.fc = nn.Linear(5, classes)

    def forward(self, x):
        x = self.relu1(self.bn1(self.conv1(x)))
        x = self.relu2(self.bn2(self.conv2(x)))
        return self.fc(x.mean((2, 3)))


def _chain(seed=0):
    torch.manual_seed(seed)
    net = Chain()
    with torch.no_grad():  # non-trivial BN affine parameters and running statistics
        for bn in (net.bn1, net.bn2):
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.3, 0.3)
            bn.running_mean.uniform_(-5, 5)
            bn.running_var.uniform_(3, 9)
    x, y = torch.randn(6, 3, 5, 5), torch.tensor([0, 1, 2, 0, 1, 2])
    return net, x, y


def _nb101(spec=SPEC_A, seed=0):
    torch.manual_seed(seed)
    net = build_network(spec, stem_channels=8, num_stacks=2, cells_per_stack=1, num_classes=10)
    g = torch.Generator().manual_seed(seed + 1)
    return net, torch.randn(6, 3, 8, 8, generator=g), torch.randint(0, 10, (6,), generator=g)


NETS = {"chain": _chain, "nb101": _nb101}


# -- independent references -----------------------------------------------------------------
def _prunable(net):
    return [(n, m) for n, m in net.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def _loss_of_weights(net, x, y):
    """f(weights) -> loss through torch.func.functional_call (train-mode BN)."""
    names = [n + ".weight" for n, _ in _prunable(net)]
    base = {k: v.detach() for k, v in net.named_parameters()}
    buffers = {k: v.clone() for k, v in net.named_buffers()}

    def f(*ws):
        p = dict(base)
        p.update(zip(names, ws))
        return F.cross_entropy(functional_call(net, {**p, **buffers}, (x,)), y)

    return f, [base[n] for n in names]


def ref_snip(net, x, y):
    """zero-cost-nas's way: gradient of a multiplicative all-ones mask."""
    f, ws = _loss_of_weights(net, x, y)
    masks = [torch.ones_like(w, requires_grad=True) for w in ws]
    g = torch.autograd.grad(f(*[w * m for w, m in zip(ws, masks)]), masks)
    return sum(float(t.abs().double().sum()) for t in g)


def ref_grad_norm(net, x, y):
    net = copy.deepcopy(net)
    net.zero_grad()
    F.cross_entropy(net(x), y).backward()
    return sum(float(m.weight.grad.double().norm()) for _, m in _prunable(net))


def ref_grasp(net, x, y):
    """-w . (H g) with torch.autograd.functional.hvp on the weights as one flat vector."""
    f, ws = _loss_of_weights(net, x, y)
    shapes = [w.shape for w in ws]
    flat = torch.cat([w.reshape(-1) for w in ws])

    def split(v):
        out, i = [], 0
        for s in shapes:
            out.append(v[i:i + math.prod(s)].reshape(s))
            i += math.prod(s)
        return out

    def flat_f(v):
        return f(*split(v))

    g = torch.autograd.functional.jacobian(flat_f, flat)
    _, hg = torch.autograd.functional.hvp(flat_f, flat, g)
    return -float((flat.double() * hg.double()).sum())


def ref_grasp_full_hessian(net, x, y):
    """-w^T H g with the full Hessian (only for tiny nets)."""
    _, ws = _loss_of_weights(net, x, y)
    shapes = [w.shape for w in ws]
    flat = torch.cat([w.reshape(-1) for w in ws]).double()
    net64 = copy.deepcopy(net).double()
    f64, _ = _loss_of_weights(net64, x.double(), y)

    def flat_f(v):
        out, i = [], 0
        for s in shapes:
            out.append(v[i:i + math.prod(s)].reshape(s))
            i += math.prod(s)
        return f64(*out)

    H = torch.autograd.functional.hessian(flat_f, flat)
    g = torch.autograd.functional.jacobian(flat_f, flat)
    return -float(flat @ H @ g)


def ref_fisher(net, x, y):
    """retain_grad on the layer outputs, then the per-channel formula with einsum."""
    net = copy.deepcopy(net)
    outs = []

    def hook(mod, inp, out):
        out.retain_grad()
        outs.append((mod, out))

    hs = [m.register_forward_hook(hook) for _, m in _prunable(net)]
    F.cross_entropy(net(x), y).backward()
    for h in hs:
        h.remove()
    total = 0.0
    for mod, out in outs:
        a, g = out.detach().double(), out.grad.double()
        g_nk = torch.einsum("nk...,nk...->nk", a, g)
        fan_in = int(np.prod(mod.weight.shape[1:]))
        total += fan_in * float((0.5 * (g_nk ** 2).mean(0)).sum())
    return total


def ref_synflow(net, x, y):
    """zero-cost-nas's way: BN forward made the identity, state_dict made absolute, float64,
    all-ones input, .backward(), sum |w * w.grad|."""
    net = copy.deepcopy(net)
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.forward = lambda t: t
    with torch.no_grad():
        for t in net.state_dict().values():
            if t.is_floating_point():
                t.abs_()
    net.double()
    net.zero_grad()
    net(torch.ones((1,) + tuple(x.shape[1:]), dtype=torch.float64)).sum().backward()
    return sum(float((m.weight * m.weight.grad).abs().sum().detach())
               for _, m in _prunable(net) if m.weight.grad is not None)


def ref_jacob_cov(net, x, y):
    """torch.autograd.functional.jacobian, numpy corrcoef written out, np.linalg.eig."""
    net = copy.deepcopy(net)
    J = torch.autograd.functional.jacobian(lambda t: net(t).sum(), x).reshape(len(x), -1).double().numpy()
    Z = J - J.mean(1, keepdims=True)
    Z /= np.linalg.norm(Z, axis=1, keepdims=True)
    v = np.linalg.eig(Z @ Z.T)[0].real
    return float(-np.sum(np.log(v + JACOB_COV_K) + 1.0 / (v + JACOB_COV_K)))


def ref_naswot(net, x, y):
    """Hamming distances of the binary codes of every ReLU's input, np.linalg.slogdet."""
    net = copy.deepcopy(net)
    codes = []
    hs = [m.register_forward_hook(lambda mod, inp, out: codes.append((inp[0].reshape(len(x), -1) > 0).numpy()))
          for m in net.modules() if isinstance(m, nn.ReLU)]
    with torch.no_grad():
        net(x)
    for h in hs:
        h.remove()
    c = np.concatenate(codes, axis=1).astype(np.int64)
    hamming = (c[:, None, :] != c[None, :, :]).sum(-1)
    K = (c.shape[1] - hamming).astype(np.float64)
    return float(np.linalg.slogdet(K)[1])


REFERENCES = {"snip": ref_snip, "grad_norm": ref_grad_norm, "grasp": ref_grasp, "fisher": ref_fisher,
              "synflow": ref_synflow, "jacob_cov": ref_jacob_cov, "naswot": ref_naswot}
#: grasp sums terms of both signs in float32 (cancellation): two code paths agree to ~1e-4
TOL = {"grasp": 1e-3, "jacob_cov": 1e-4}


def _ours(name, net, x, y):
    return get_proxy(name)(Probe(net, x, y, needs=get_proxy(name).needs))


# -- contracts over the registry --------------------------------------------------------------
def test_registry_lists_the_issue_proxies():
    assert {"synflow", "snip", "grasp", "fisher", "grad_norm", "jacob_cov", "naswot"} <= set(list_proxies())
    with pytest.raises(KeyError, match="known:"):
        get_proxy("nope")


@pytest.mark.parametrize("name", list_proxies())
def test_every_proxy_has_a_reference_and_documents_itself(name):
    assert name in REFERENCES, f"add an independent reference for {name!r} to tests/test_proxies.py"
    p = get_proxy(name)
    assert p.source and "higher = better" in " ".join((p.fn.__doc__ or "").lower().split())


@pytest.mark.parametrize("net_kind", sorted(NETS))
@pytest.mark.parametrize("name", list_proxies())
def test_proxy_matches_independent_computation(name, net_kind):
    net, x, y = NETS[net_kind]()
    ref = REFERENCES[name](copy.deepcopy(net), x, y)
    ours = _ours(name, net, x, y)
    assert np.isfinite(ours) and np.isfinite(ref)
    assert ours == pytest.approx(ref, rel=TOL.get(name, 1e-5), abs=1e-9)


@pytest.mark.parametrize("name", list_proxies())
def test_a_proxy_reads_only_the_passes_it_declares(name):
    """A measure that reads a pass missing from its ``needs`` fails loudly (not a silent 0)."""
    net, x, y = _chain()
    assert np.isfinite(get_proxy(name)(Probe(net, x, y, needs=get_proxy(name).needs)))
    others = [n for n in get_proxy(name).needs if n not in ("loss_grad", "network")]
    for missing in others:
        with pytest.raises(RuntimeError, match="needs"):
            get_proxy(name)(Probe(net, x, y, needs=get_proxy(name).needs - {missing}))


@pytest.mark.parametrize("name", list_proxies())
def test_all_proxies_at_once_equal_each_alone(name):
    """The shared pass changes no number."""
    net, x, y = _nb101(SPEC_C)
    together = Probe(copy.deepcopy(net), x, y)
    alone = _ours(name, copy.deepcopy(net), x, y)
    assert get_proxy(name)(together) == pytest.approx(alone, rel=1e-6)


# -- values worked out by hand ----------------------------------------------------------------
def test_grasp_matches_full_hessian_on_chain():
    net, x, y = _chain()
    assert _ours("grasp", net, x, y) == pytest.approx(ref_grasp_full_hessian(net, x, y), rel=1e-3)


def test_synflow_is_layers_times_output_on_a_chain():
    """BN removed and |weights| on ones: the chain is linear in each layer's weights, so each
    layer's sum of w * dR/dw is R itself (Euler), and synflow = 3 layers x R."""
    net, x, y = _chain()
    with torch.no_grad():
        net.fc.bias.zero_()
    o = torch.ones(1, 3, 5, 5, dtype=torch.float64)
    with torch.no_grad():
        h = F.conv2d(o, net.conv1.weight.double().abs(), padding=1).relu()
        h = F.conv2d(h, net.conv2.weight.double().abs()).relu().mean((2, 3))
        R = float(F.linear(h, net.fc.weight.double().abs()).sum())
    assert _ours("synflow", net, x, y) == pytest.approx(3 * R, rel=1e-10)


def test_snip_and_grad_norm_by_hand_on_a_linear_classifier():
    torch.manual_seed(0)
    net = nn.Linear(4, 3, bias=False)
    x, y = torch.randn(5, 4), torch.tensor([0, 1, 2, 1, 0])
    W, X = net.weight.detach().double().numpy(), x.double().numpy()
    z = X @ W.T
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    G = (p - np.eye(3)[y.numpy()]).T @ X / len(X)  # dL/dW of the mean cross-entropy
    assert _ours("snip", net, x, y) == pytest.approx(np.abs(G * W).sum(), rel=1e-5)
    assert _ours("grad_norm", net, x, y) == pytest.approx(np.linalg.norm(G), rel=1e-5)


def test_naswot_by_hand():
    """codes [1, 0] and [1, 1]: K = [[2, 1], [1, 2]], log det = log 3."""
    x = torch.tensor([[1.0, -1.0], [2.0, 3.0]])
    assert _ours("naswot", nn.ReLU(), x, torch.zeros(2, dtype=torch.long)) == pytest.approx(math.log(3))


def test_jacob_cov_score_by_hand():
    J = np.array([[1.0, -1.0, 0.0, 0.0], [0.0, 0.0, 1.0, -1.0]])  # correlation matrix = identity
    k = JACOB_COV_K
    assert jacob_cov_score(J) == pytest.approx(-2 * (math.log(1 + k) + 1 / (1 + k)))
    assert math.isnan(jacob_cov_score(np.array([[1.0, 1.0], [0.0, 2.0]])))  # a constant row


# -- signs ------------------------------------------------------------------------------------
def test_signs():
    net, x, y = _nb101()
    probe = Probe(net, x, y)
    vals = {n: get_proxy(n)(probe) for n in list_proxies()}
    for n in ("snip", "grad_norm", "fisher", "synflow"):
        assert vals[n] > 0, n
    # grasp is -w.Hg (zero-cost-nas's sign), jacob_cov -sum(log(v+k) + 1/(v+k)), as documented
    assert vals["grasp"] == pytest.approx(ref_grasp(net, x, y), rel=1e-3)
    # jacob_cov: less correlated Jacobians score higher
    correlated = np.array([[1, 2, 3, 4], [1, 2, 3, 5.0], [4, 3, 2, 1], [0, 1, 0, 1]])
    assert jacob_cov_score(np.eye(4)) > jacob_cov_score(correlated)


# -- compute_proxies: determinism, setup, cache -------------------------------------------------
def _data(n=20, side=8):
    g = torch.Generator().manual_seed(3)
    images = torch.randint(0, 256, (n, 3, side, side), generator=g, dtype=torch.uint8)
    return images, torch.randint(0, 10, (n,), generator=g)


def test_compute_proxies_deterministic_and_recorded():
    data = _data()
    specs = [SPEC_A, SPEC_B, SPEC_A]
    a = compute_proxies(specs, model_cfg=TINY_CFG, data=data, seed=1, batch_size=8, progress=False)
    b = compute_proxies(specs, model_cfg=TINY_CFG, data=data, seed=1, batch_size=8, progress=False)
    c = compute_proxies(specs, model_cfg=TINY_CFG, data=data, seed=2, batch_size=8, progress=False)
    assert list(a.columns) == ["hash", *list_proxies()] and len(a) == 3
    assert list(a["hash"]) == [s.hash for s in specs]
    pd_equal = a.drop(columns="hash").to_numpy()
    assert np.array_equal(pd_equal, b.drop(columns="hash").to_numpy())
    assert np.array_equal(pd_equal[0], pd_equal[2])
    assert not np.allclose(pd_equal, c.drop(columns="hash").to_numpy())
    st = a.attrs["setup"]
    recorded = (st["batch_size"], st["seed"], st["width"], st["stacks"], st["cells_per_stack"], st["resolution"])
    assert recorded == (8, 1, 8, 2, 1, 8)
    assert st["digest"] != c.attrs["setup"]["digest"] and a.attrs["computed"] == 2
    # the value of one row is that of the proxy on the seeded network and the seeded batch
    x, y = select_batch(data, 8, 1)
    torch.manual_seed(1)
    net = build_network(SPEC_B, stem_channels=8, num_stacks=2, cells_per_stack=1, num_classes=10)
    from rankbench.data.loader import normalize
    assert a.loc[1, "snip"] == pytest.approx(ref_snip(net, normalize(x), y), rel=1e-5)


def test_select_batch_seeded():
    data = _data()
    x1, y1 = select_batch(data, 8, 0)
    x2, _ = select_batch(data, 8, 0)
    x3, _ = select_batch(data, 8, 5)
    assert torch.equal(x1, x2) and not torch.equal(x1, x3) and len(y1) == 8
    with pytest.raises(ValueError, match="batch_size"):
        select_batch(data, 21, 0)


def test_cache_is_reused_and_resumable(tmp_path, monkeypatch):
    cache = tmp_path / "proxies.csv"
    data = _data()
    kw = {"model_cfg": TINY_CFG, "data": data, "seed": 0, "batch_size": 8, "cache_path": cache, "progress": False}
    first = compute_proxies([SPEC_A], ["snip", "synflow"], **kw)
    calls = []
    real = compute_mod._score_one

    def counting(spec, names, *a, **k):
        calls.append((spec.hash, tuple(names)))
        return real(spec, names, *a, **k)

    monkeypatch.setattr(compute_mod, "_score_one", counting)
    again = compute_proxies([SPEC_A], ["snip", "synflow"], **kw)
    assert calls == [] and again.attrs["computed"] == 0
    assert again.drop(columns="hash").equals(first.drop(columns="hash"))
    # a torn last line (killed mid-write) is skipped; a new proxy and a new cell cost only themselves
    with open(cache, "a") as f:
        f.write(SPEC_B.hash + ",snip,abc")
    more = compute_proxies([SPEC_A, SPEC_B], ["snip", "naswot"], **kw)
    assert sorted(calls) == sorted([(SPEC_A.hash, ("naswot",)), (SPEC_B.hash, ("snip", "naswot"))])
    assert more.loc[0, "snip"] == first.loc[0, "snip"]
    calls.clear()
    compute_proxies([SPEC_A, SPEC_B], ["snip", "naswot", "synflow"], **kw)
    assert calls == [(SPEC_B.hash, ("synflow",))]
    assert (tmp_path / "proxies.csv.setups.json").exists()


def test_reference_scores_hook():
    scores, desc = proxy_reference_scores([SPEC_B, SPEC_C], model_cfg=TINY_CFG, data=_data(), names=["snip", "naswot"],
                                          batch_size=8)
    assert set(scores) == set(desc) == {"snip", "naswot"} and scores["snip"].shape == (2,)
    assert "setup" in desc["snip"]


def test_reference_ranker_adapter(monkeypatch):
    """The ``register_reference`` contract: score(ctx) -> (scores, description) | None; every
    proxy of one context is computed in one call."""
    from types import SimpleNamespace

    # duck-typed like rankbench.references.ReferenceContext / NetworkSize
    size = SimpleNamespace(stem_channels=8, stacks=2, cells_per_stack=1, resolution=8, num_classes=10)
    ctx = SimpleNamespace(specs=[SPEC_B, SPEC_C, SPEC_B], size=size, device="cpu", seed=0, cache={}, data=_data(),
                          proxy_batch_size=8)
    calls = []
    real = compute_mod.compute_proxies
    monkeypatch.setattr(compute_mod, "compute_proxies", lambda *a, **k: calls.append(1) or real(*a, **k))
    got = {n: proxy_reference_ranker(n)(ctx) for n in list_proxies()}
    assert len(calls) == 1
    direct = compute_proxies(ctx.specs, model_cfg=size, data=ctx.data, seed=0, batch_size=8, progress=False)
    for n, (scores, desc) in got.items():
        assert np.array_equal(scores, direct[n].to_numpy(), equal_nan=True) and n in desc
    assert proxy_reference_ranker("snip")(SimpleNamespace(**{**vars(ctx), "data": None, "cache": {}})) is None
    with pytest.raises(ValueError, match="resolution"):
        proxy_reference_ranker("snip")(SimpleNamespace(**{**vars(ctx), "data": _data(side=4), "cache": {}}))
