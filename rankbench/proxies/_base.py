"""The proxy registry and the shared passes every measure reads (:class:`Probe`).

A zero-cost proxy scores an *untrained* network from one batch. Most of them read the same
forward pass (BatchNorm in train mode, i.e. batch statistics, as zero-cost-nas and NASWOT
run it) and the same loss gradient, so a :class:`Probe` runs that pass once per network and
hands each registered measure what it asks for. Each measure gives the value a separate pass
would give: a train-mode forward is a pure function of the weights and the batch (the running
statistics it updates are never read), so reusing it changes no number.
"""
from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from rankbench._registry import Registry

__all__ = ["PROXIES", "Probe", "Proxy", "get_proxy", "list_proxies", "prunable_layers", "register_proxy"]

#: what a measure needs from the shared pass
NEEDS = frozenset({"loss_grad", "hvp", "activations", "relu_codes", "input_jacobian", "network"})


@dataclass(frozen=True)
class Proxy:
    """A registered measure: ``fn(probe) -> float``, higher = better predicted accuracy."""

    name: str
    fn: Callable[[Probe], float]
    needs: frozenset[str]
    source: str  # the standard implementation it follows
    label: str = ""

    def __call__(self, probe: Probe) -> float:
        return float(self.fn(probe))


PROXIES: Registry[Proxy] = Registry("zero-cost proxy")


def register_proxy(name: str, *, needs: set[str] | frozenset[str], source: str, label: str = "",
                   ) -> Callable[[Callable[[Probe], float]], Callable[[Probe], float]]:
    """Decorator: register ``fn(probe) -> float`` as proxy ``name``."""
    unknown = set(needs) - NEEDS
    if unknown:
        raise ValueError(f"proxy {name!r} needs unknown pass(es) {sorted(unknown)}; known: {sorted(NEEDS)}")

    def deco(fn: Callable[[Probe], float]) -> Callable[[Probe], float]:
        PROXIES.register(name, doc=fn.__doc__)(Proxy(name, fn, frozenset(needs), source, label or name))
        return fn

    return deco


def list_proxies() -> list[str]:
    """Names of the registered proxies, in registration order."""
    return PROXIES.names()


def get_proxy(name: str) -> Proxy:
    return PROXIES.get(name)


def prunable_layers(net: nn.Module) -> list[nn.Conv2d | nn.Linear]:
    """The layers zero-cost-nas measures (``get_layer_metric_array``): every ``nn.Conv2d`` and
    ``nn.Linear``, in module order. BatchNorm affine parameters are not measured."""
    return [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


@dataclass(eq=False)
class Probe:
    """One untrained network, one batch, and the passes the requested measures share.

    ``net`` is put in train mode (BatchNorm uses batch statistics). ``x`` is the standardised
    float batch, ``y`` its labels. ``needs`` names the passes to record (see :data:`NEEDS`);
    measures call :meth:`loss_grads`, :meth:`hvp`, :meth:`input_jacobian`, :attr:`relu_kernel`.
    """

    net: nn.Module
    x: torch.Tensor
    y: torch.Tensor
    needs: frozenset[str] = NEEDS
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = F.cross_entropy
    #: builds an identical fresh copy of ``net`` (same weights); None = ``copy.deepcopy``
    factory: Callable[[], nn.Module] | None = None
    _state: dict = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.layers = prunable_layers(self.net)
        self.weights: list[torch.Tensor] = [m.weight for m in self.layers]

    def _require(self, need: str) -> None:
        if need not in self.needs:
            raise RuntimeError(f"this Probe was built without {need!r} in needs (it has {sorted(self.needs)}); "
                               f"register the proxy with needs={{{need!r}, ...}}")

    # -- the forward pass ----------------------------------------------------------------
    def _forward(self) -> dict:
        st = self._state
        if "out" in st:
            return st
        self.net.train()
        acts: list[torch.Tensor] = []
        act_layers: list[nn.Conv2d | nn.Linear] = []
        kernel = torch.zeros(len(self.x), len(self.x), dtype=torch.float64, device=self.x.device)
        handles = []
        if "activations" in self.needs:
            def keep_output(mod, inp, out):
                acts.append(out)
                act_layers.append(mod)
            handles += [m.register_forward_hook(keep_output) for m in self.layers]
        if "relu_codes" in self.needs:
            def add_codes(mod, inp, out):
                # codes as +-1: s s^T = units - 2 * Hamming, so c c^T + (1-c)(1-c)^T = (units + s s^T) / 2;
                # one product instead of two, exact in float32 below 2**24 units per ReLU
                s = (inp[0].detach().reshape(len(inp[0]), -1) > 0).to(torch.float32).mul_(2).sub_(1)
                kernel.add_((s @ s.T).double().add_(s.shape[1]).mul_(0.5))
            handles += [m.register_forward_hook(add_codes) for m in self.net.modules() if isinstance(m, nn.ReLU)]
        x = self.x.detach().clone().requires_grad_("input_jacobian" in self.needs)
        try:
            out = self.net(x)
        finally:
            for h in handles:
                h.remove()
        st.update(out=out, x=x, acts=acts, act_layers=act_layers, relu_kernel=kernel)
        return st

    @property
    def relu_kernel(self) -> torch.Tensor:
        """NASWOT's K_H: sum over ReLUs of (N_A - Hamming distance) of the binary codes of the
        ReLU inputs (float64, [N, N])."""
        self._require("relu_codes")
        return self._forward()["relu_kernel"]

    def loss_grads(self) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """(dL/dW for each prunable weight, dL/d(output) for each prunable layer call); the
        loss is ``loss_fn`` (mean cross-entropy) on the batch. Zeros where a weight is unused."""
        st = self._forward()
        if "grads" not in st:
            loss = self.loss_fn(st["out"], self.y)
            inputs = self.weights + st["acts"]
            g = torch.autograd.grad(loss, inputs, retain_graph=True, allow_unused=True,
                                    create_graph="hvp" in self.needs)
            g = [torch.zeros_like(t) if gi is None else gi for gi, t in zip(g, inputs)]
            st["grads"] = (g[:len(self.weights)], g[len(self.weights):])
        return st["grads"]

    def hvp(self) -> list[torch.Tensor]:
        """H g for each prunable weight: the Hessian of the loss with respect to the prunable
        weights (BN parameters held fixed) times the (detached) gradient g."""
        st = self._state
        if "hvp" not in st:
            self._require("hvp")
            g, _ = self.loss_grads()
            z = torch.stack([(gi.detach() * gi).sum() for gi in g]).sum()
            hg = torch.autograd.grad(z, self.weights, retain_graph=True, allow_unused=True)
            st["hvp"] = [torch.zeros_like(w) if h is None else h for h, w in zip(hg, self.weights)]
        return st["hvp"]

    def input_jacobian(self) -> torch.Tensor:
        """d(sum of all logits)/dx, one row per image ([N, C*H*W])."""
        st = self._forward()
        if "jac" not in st:
            self._require("input_jacobian")
            (j,) = torch.autograd.grad(st["out"].sum(), st["x"], retain_graph=True)
            st["jac"] = j.reshape(len(j), -1)
        return st["jac"]

    def activations(self) -> list[tuple[nn.Conv2d | nn.Linear, torch.Tensor, torch.Tensor]]:
        """(layer, output, dL/doutput) for every call of a prunable layer in the forward pass."""
        self._require("activations")
        st = self._forward()
        _, gacts = self.loss_grads()
        return list(zip(st["act_layers"], st["acts"], gacts))

    def fresh_network(self) -> nn.Module:
        """A copy of the network with the same weights that a measure may change (SynFlow):
        ``factory()`` (a rebuild from the same seed, cheaper than a deep copy) or a deep copy."""
        net = self.factory() if self.factory is not None else copy.deepcopy(self.net)
        return net.to(self.x.device)

    def close(self) -> None:
        """Drop the autograd graph."""
        self._state.clear()


def total(values) -> float:
    """Sum of tensors/floats in float64, as a Python float."""
    return float(sum(torch.as_tensor(v).double().sum().item() for v in values))

