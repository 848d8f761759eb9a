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
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

__all__ = ["NetworkSize", "cell_cost", "network_cost", "reference_scores", "REFERENCE_LABELS"]

#: reference ranker -> label for tables
REFERENCE_LABELS = {"params": "parameters", "flops": "FLOPs (MACs)", "nb101_4": "NB101 4 epochs",
                    "nb101_12": "NB101 12 epochs", "nb101_36": "NB101 36 epochs"}
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


def reference_scores(specs: Sequence[Any], size: NetworkSize, *, store=None, metric: str = "validation_accuracy",
                     ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Per candidate (``specs``: ModelSpecs, in candidate order): a score of each reference
    ranker (higher = ranked better; NaN where unknown), and a description for reports."""
    costs: dict[str, tuple[int, int]] = {}
    for s in specs:
        if s.hash not in costs:
            costs[s.hash] = network_cost(np.asarray(s.matrix), list(s.ops), size)
    out = {"params": np.array([costs[s.hash][0] for s in specs], dtype=float),
           "flops": np.array([costs[s.hash][1] for s in specs], dtype=float)}
    desc: dict[str, Any] = {"params": f"trainable parameters of the stand-alone network at {size}",
                            "flops": f"multiply-accumulates of one forward pass at {size}"}
    if store is not None:
        hashes = [s.hash for s in specs]
        present = np.array([h in store for h in hashes], dtype=bool)
        nb = np.full(len(hashes), np.nan)
        for i in np.flatnonzero(present):
            try:
                nb[i] = store.params(hashes[i])
            except (KeyError, ValueError, LookupError):  # MissingDataError: count not stored
                pass
        if np.isfinite(nb).all():
            out["params"] = nb
            desc["params"] = "NB101 trainable_parameters (from the store)"
        idx = np.flatnonzero(present)
        for e in (4, 12, 36):
            if e not in getattr(store, "epochs", ()) or not len(idx):
                continue
            vals = np.full(len(hashes), np.nan)
            got = np.asarray(store.query_many([hashes[i] for i in idx], epochs=e, metric=metric, reduce="all"),
                             dtype=float).reshape(len(idx), -1)
            have = np.isfinite(got).any(axis=1)
            vals[idx[have]] = np.nanmean(got[have], axis=1)
            if np.isfinite(vals).sum() >= 3:
                out[f"nb101_{e}"] = vals
                desc[f"nb101_{e}"] = (f"NB101 {metric} after {e} epochs (mean of the stored repeats); "
                                      f"{int(np.isfinite(vals).sum())}/{len(vals)} candidates have it")
    return out, desc
