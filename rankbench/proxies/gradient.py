"""Loss-gradient measures: snip, grasp, fisher, grad_norm (Abdelfattah et al., ICLR 2021).

Followed: SamsungLabs/zero-cost-nas ``foresight/pruners/measures/{snip,grasp,fisher,grad_norm}.py``
as ``find_measures`` reduces them (per-weight arrays summed over every ``nn.Conv2d`` and
``nn.Linear`` weight): one batch, mean cross-entropy, BatchNorm in train mode (``bn=True``:
batch statistics), float32. Written from the formulas, not copied.

Common deviations: one forward pass serves all four (zero-cost-nas runs one per measure; a
train-mode forward depends only on weights and batch, so the values are the same); the sums
are accumulated in float64.
"""
from __future__ import annotations

import math

from rankbench.proxies._base import Probe, register_proxy, total

_ZC = "SamsungLabs/zero-cost-nas foresight/pruners/measures/"


@register_proxy("snip", needs={"loss_grad"}, source=_ZC + "snip.py", label="SNIP")
def snip(probe: Probe) -> float:
    """SNIP: sum over conv/linear weights of |dL/dw * w| (connection sensitivity).

    zero-cost-nas gets dL/dw * w as the gradient of a multiplicative all-ones weight mask;
    here it is the product itself (the same number). Higher = better."""
    g, _ = probe.loss_grads()
    return total((gi * w).abs() for gi, w in zip(g, probe.weights))


@register_proxy("grad_norm", needs={"loss_grad"}, source=_ZC + "grad_norm.py", label="grad norm")
def grad_norm(probe: Probe) -> float:
    """Gradient norm: sum over conv/linear layers of the L2 norm of dL/dW (a sum of per-layer
    norms, as zero-cost-nas, not the norm of the whole gradient). Higher = better."""
    g, _ = probe.loss_grads()
    return total(gi.double().norm() for gi in g)


@register_proxy("grasp", needs={"loss_grad", "hvp"}, source=_ZC + "grasp.py", label="GraSP")
def grasp(probe: Probe) -> float:
    """GraSP: sum over conv/linear weights of -w * (H g), H the Hessian of the loss with
    respect to the conv/linear weights and g the gradient (temperature T = 1, one iteration).

    Sign: zero-cost-nas's -w * Hg. Its code says it flipped the sign of the pruning score
    because accuracy correlated negatively with it: a choice made on benchmark data, which
    rankbench keeps (so higher = better as there) and reports signed. zero-cost-nas runs a
    second forward pass for H g; here H g is the double backward of the same pass (same value:
    the train-mode forward depends only on weights and batch)."""
    hg = probe.hvp()
    return -total(w.detach() * h for w, h in zip(probe.weights, hg))


@register_proxy("fisher", needs={"loss_grad", "activations"}, source=_ZC + "fisher.py", label="Fisher")
def fisher(probe: Probe) -> float:
    """Fisher (Theis et al. 2018, as zero-cost-nas): for each conv/linear output channel k,
    del_k = 0.5 * mean over images of (sum over positions of activation * dL/dactivation)^2;
    the activation is the layer's output (before BN).

    Reduction as ``find_measures`` returns it: zero-cost-nas broadcasts each channel's del_k
    to every weight of that channel (``reshape_elements``) and then sums, so each channel
    counts fan-in times (in_channels * kh * kw; in_features for linear). rankbench keeps that
    weighting to match the published numbers. Higher = better."""
    out = 0.0
    for layer, act, gact in probe.activations():
        a, ga = act.detach().double(), gact.detach().double()
        g_nk = (a * ga).sum(dim=tuple(range(2, a.dim()))) if a.dim() > 2 else a * ga
        del_k = 0.5 * g_nk.pow(2).mean(0)
        out += float(del_k.sum()) * math.prod(layer.weight.shape[1:])
    return out
