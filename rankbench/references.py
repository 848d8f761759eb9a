"""Reference rankers: what a supernet's ranking must beat to mean anything.

Every report ranks the same candidates, with the same metrics and intervals, by

- ``params``: trainable parameters of the stand-alone NB101 network of the candidate's cell
  (NB101's ``trainable_parameters`` when the truth is NB101's; else counted at the size the
  truth was measured at, which is the run's model size);
- ``flops``: multiply-accumulates of one forward pass of that network (convolutions and the
  classifier; BN, ReLU, pooling and additions not counted) at the same size and resolution;
- ``nb101_4``, ``nb101_12``, ``nb101_36``: NB101's own validation accuracy after 4, 12 and 36
  epochs (mean of the stored repeats), where the truth is NB101's and the store holds them.

Sizes are computed in closed form with NB101's channel rule (nasbench-pytorch's
``compute_vertex_channels``, the rule its ``Network`` builds with; tested against it and
against NB101's stored counts): no network is built.

Opt-in: the zero-cost proxies of :mod:`rankbench.proxies` (synflow, snip, grad_norm, grasp,
fisher, jacob_cov, naswot) on each candidate's untrained stand-alone network, scored on a seeded
batch of the run's training split; a report ranks by them only where ``score.proxies`` chooses
them (``--set score.proxies=synflow,naswot`` or ``=all``), since each costs a forward/backward
pass per candidate network.

Each ranker is an entry of :data:`REFERENCES` (``@register_reference(name, label)``): given a
:class:`ReferenceContext` (the candidates' cells, the network size and a builder for it, the
truth's NB101 store if any, a device, a seed, a shared cache; for the proxies a data batch, its
size, a cache file and the opt-in rankers chosen) it returns one score per candidate and a
description, or None where it does not apply. A new ranker is one decorated function;
``rankbench list references`` and the contract test (tests/test_registries.py) read the registry.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from rankbench import proxies as _proxies
from rankbench._registry import Registry

__all__ = ["NetworkSize", "cell_cost", "network_cost", "reference_scores", "ReferenceContext", "ReferenceRanker",
           "REFERENCES", "register_reference", "list_references", "reference_label", "proxy_names",
           "PROXY_NEEDS"]

_KERNEL = {"conv3x3-bn-relu": 3, "conv1x1-bn-relu": 1, "maxpool3x3": 0}


@dataclass(frozen=True)
class NetworkSize:
    """The NB101 skeleton a stand-alone network is built at (NB101: 128, 3, 3, 32x32)."""

    stem_channels: int = 128
    stacks: int = 3
    cells_per_stack: int = 3
    resolution: int = 32
    num_classes: int = 10
    in_channels: int = 3


def cell_cost(matrix: np.ndarray, ops: Sequence[str], cin: int, cout: int, hw: int) -> tuple[int, int]:
    """(parameters, MACs) of one NB101 cell at spatial size ``hw`` x ``hw``."""
    from nasbench_pytorch.model.model import compute_vertex_channels  # NB101's own rule

    matrix = np.asarray(matrix)
    n = matrix.shape[0]
    ch = compute_vertex_channels(cin, cout, matrix)
    params = macs = 0
    for v in range(1, n):
        if matrix[0, v]:  # 1x1 conv-BN-ReLU projection of the cell input
            params += cin * ch[v] + 2 * ch[v]
            macs += hw * hw * cin * ch[v]
        if v < n - 1:
            k = _KERNEL[ops[v]]
            if k:
                params += ch[v] * ch[v] * k * k + 2 * ch[v]
                macs += hw * hw * ch[v] * ch[v] * k * k
    return params, macs


def network_cost(matrix: np.ndarray, ops: Sequence[str], size: NetworkSize = NetworkSize()) -> tuple[int, int]:
    """(trainable parameters, MACs) of NB101's stand-alone network of a cell."""
    c, hw = size.stem_channels, size.resolution
    params = size.in_channels * c * 9 + 2 * c
    macs = hw * hw * size.in_channels * c * 9
    cin = c
    for s in range(size.stacks):
        if s > 0:
            c, hw = 2 * c, hw // 2
        for _ in range(size.cells_per_stack):
            p, m = cell_cost(matrix, ops, cin, c, hw)
            params, macs, cin = params + p, macs + m, c
    params += c * size.num_classes + size.num_classes
    macs += c * size.num_classes
    return params, macs


# -- the registry: every reference ranker, given one context, scores every candidate -----------
@dataclass
class ReferenceContext:
    """What a reference ranker may use: the candidates' cells (``specs``, ModelSpecs in candidate
    order), the stand-alone network size, NB101's store where the truth is NB101's (else None),
    the truth's metric, a device and a seed for rankers that run networks, and a cache shared by
    the rankers of one call (e.g. the closed-form costs, computed once for params and flops).

    For the opt-in rankers (the zero-cost proxies): ``opt_in``, the opt-in rankers chosen (the
    others do not run in :func:`reference_scores`); ``data``, a batch of the run's training
    split at ``size.resolution`` (``(images, labels)`` or an ImageSet; None: they do not apply);
    ``proxy_batch_size``, the images drawn from it (with ``seed``); ``proxy_cache``, a CSV the
    proxy values are cached in (None: no file)."""

    specs: Sequence[Any]
    size: NetworkSize = NetworkSize()
    store: Any = None
    metric: str = "validation_accuracy"
    device: str = "cpu"
    seed: int = 0
    cache: dict[str, Any] = field(default_factory=dict)
    opt_in: tuple[str, ...] = ()
    data: Any = None
    proxy_batch_size: int = 64
    proxy_cache: Any = None

    @property
    def hashes(self) -> list[str]:
        return [s.hash for s in self.specs]

    def costs(self) -> dict[str, tuple[int, int]]:
        """(parameters, MACs) per candidate hash at :attr:`size` (:func:`network_cost`), once."""
        if "costs" not in self.cache:
            costs: dict[str, tuple[int, int]] = {}
            for s in self.specs:
                if s.hash not in costs:
                    costs[s.hash] = network_cost(np.asarray(s.matrix), list(s.ops), self.size)
            self.cache["costs"] = costs
        return self.cache["costs"]

    def network(self, spec: Any) -> Any:
        """The stand-alone NB101 network of ``spec`` at :attr:`size` (torch; for rankers that run one)."""
        from rankbench.nb101.network import build_network  # torch: only for a ranker that needs it

        return build_network(spec, stem_channels=self.size.stem_channels, num_stacks=self.size.stacks,
                             cells_per_stack=self.size.cells_per_stack, num_classes=self.size.num_classes)


#: a ranker's answer: one score per candidate (higher = ranked better; NaN where unknown) and a
#: line describing it for reports; None when it does not apply to this context
Scores = "tuple[np.ndarray, str] | None"


@dataclass(frozen=True)
class ReferenceRanker:
    """A registered reference ranker."""

    name: str
    label: str  # for tables and figures
    score: Callable[[ReferenceContext], Any]  # -> (scores, description) or None
    doc: str = ""
    needs: str = ""  # what it costs beyond the cells, for ``rankbench list references``
    opt_in: bool = False  # ranks only where chosen (ReferenceContext.opt_in), not in every report

    def __call__(self, ctx: ReferenceContext) -> Any:
        return self.score(ctx)


REFERENCES: Registry[ReferenceRanker] = Registry("reference ranker")


def register_reference(name: str, label: str, *, needs: str = "", opt_in: bool = False,
                       ) -> Callable[[Callable[[ReferenceContext], Any]], Callable]:
    """Decorator: register ``score(ctx) -> (scores, description) | None`` as reference ranker
    ``name`` (``label`` for tables; ``needs``: what it costs, shown by ``rankbench list
    references``). Every report ranks the candidates by every registered ranker that applies,
    in registration order; an ``opt_in`` ranker only where the context chose it."""

    def deco(fn: Callable[[ReferenceContext], Any]) -> Callable[[ReferenceContext], Any]:
        doc = (fn.__doc__ or "").strip().split("\n\n")[0]
        doc = " ".join(line.strip() for line in doc.splitlines())
        REFERENCES.register(name, doc)(ReferenceRanker(name=name, label=label, score=fn, doc=doc, needs=needs,
                                                       opt_in=opt_in))
        return fn

    return deco


def list_references() -> list[str]:
    return REFERENCES.names()


def reference_label(name: str) -> str:
    """A reference ranker's label for tables (its name when it is not registered)."""
    return REFERENCES.get(name).label if name in REFERENCES else name


def _store_params(ctx: ReferenceContext) -> np.ndarray | None:
    """NB101's stored trainable_parameters per candidate, when the store has every one."""
    if ctx.store is None:
        return None
    hashes = ctx.hashes
    present = np.array([h in ctx.store for h in hashes], dtype=bool)
    nb = np.full(len(hashes), np.nan)
    for i in np.flatnonzero(present):
        try:
            nb[i] = ctx.store.params(hashes[i])
        except (KeyError, ValueError, LookupError):  # MissingDataError: count not stored
            pass
    return nb if np.isfinite(nb).all() else None


@register_reference("params", "parameters")
def _params(ctx: ReferenceContext) -> Any:
    """Trainable parameters of the stand-alone network (NB101's stored count where the truth is NB101's)."""
    stored = _store_params(ctx)
    if stored is not None:
        return stored, "NB101 trainable_parameters (from the store)"
    costs = ctx.costs()
    return (np.array([costs[s.hash][0] for s in ctx.specs], dtype=float),
            f"trainable parameters of the stand-alone network at {ctx.size}")


@register_reference("flops", "FLOPs (MACs)")
def _flops(ctx: ReferenceContext) -> Any:
    """Multiply-accumulates of one forward pass of the stand-alone network."""
    costs = ctx.costs()
    return (np.array([costs[s.hash][1] for s in ctx.specs], dtype=float),
            f"multiply-accumulates of one forward pass at {ctx.size}")


def _nb101_budget(epochs: int) -> Callable[[ReferenceContext], Any]:
    def score(ctx: ReferenceContext) -> Any:
        store = ctx.store
        if store is None or epochs not in getattr(store, "epochs", ()):
            return None
        hashes = ctx.hashes
        idx = np.flatnonzero(np.array([h in store for h in hashes], dtype=bool))
        if not len(idx):
            return None
        vals = np.full(len(hashes), np.nan)
        got = np.asarray(store.query_many([hashes[i] for i in idx], epochs=epochs, metric=ctx.metric, reduce="all"),
                         dtype=float).reshape(len(idx), -1)
        have = np.isfinite(got).any(axis=1)
        vals[idx[have]] = np.nanmean(got[have], axis=1)
        if np.isfinite(vals).sum() < 3:
            return None
        return vals, (f"NB101 {ctx.metric} after {epochs} epochs (mean of the stored repeats); "
                      f"{int(np.isfinite(vals).sum())}/{len(vals)} candidates have it")

    score.__doc__ = f"NB101's own accuracy after {epochs} epochs (mean of the stored repeats), where the store has it."
    return score


for _e in (4, 12, 36):
    register_reference(f"nb101_{_e}", f"NB101 {_e} epochs")(_nb101_budget(_e))


# -- opt-in: the zero-cost proxies (rankbench.proxies), chosen with score.proxies --------------
#: what a proxy costs, for ``rankbench list references``
PROXY_NEEDS = "a forward/backward pass per candidate network; opt-in via score.proxies"

for _p in _proxies.list_proxies():
    register_reference(_p, _proxies.get_proxy(_p).label, needs=PROXY_NEEDS, opt_in=True)(
        _proxies.proxy_reference_ranker(_p))


def proxy_names(chosen: Sequence[str]) -> tuple[str, ...]:
    """``score.proxies`` resolved: "all" = every registered proxy; registration order (the
    column order), each once. An unknown name raises a KeyError listing the known ones
    (:func:`rankbench.plan.validate_config` reports it before anything is created)."""
    names = set(_proxies.list_proxies()) if "all" in chosen else set(chosen)
    for n in names:
        _proxies.get_proxy(n)
    return tuple(n for n in _proxies.list_proxies() if n in names)


def reference_scores(specs: Sequence[Any], size: NetworkSize, *, store=None, metric: str = "validation_accuracy",
                     seed: int = 0, device: str = "cpu", opt_in: Sequence[str] = (), data: Any = None,
                     proxy_batch_size: int = 64, proxy_cache: Any = None,
                     ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Per candidate (``specs``: ModelSpecs, in candidate order): a score of each registered
    reference ranker that applies (higher = ranked better; NaN where unknown), and a
    description of each for reports. Opt-in rankers only where ``opt_in`` names them (the
    zero-cost proxies also need ``data``: see :class:`ReferenceContext`)."""
    for n in opt_in:
        if n not in REFERENCES or not REFERENCES.get(n).opt_in:
            known = ", ".join(r for r in REFERENCES.names() if REFERENCES.get(r).opt_in)
            raise KeyError(f"unknown opt-in reference ranker {n!r}; known: {known}")
    ctx = ReferenceContext(specs=specs, size=size, store=store, metric=metric, device=device, seed=seed,
                           opt_in=tuple(opt_in), data=data, proxy_batch_size=int(proxy_batch_size),
                           proxy_cache=proxy_cache)
    out: dict[str, np.ndarray] = {}
    desc: dict[str, Any] = {}
    for name in REFERENCES.names():
        ranker = REFERENCES.get(name)
        if ranker.opt_in and name not in ctx.opt_in:
            continue
        got = ranker(ctx)
        if got is not None:
            out[name], desc[name] = got
    return out, desc
