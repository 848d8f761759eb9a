"""Measures of how an untrained network separates inputs: jacob_cov and NASWOT.

- ``jacob_cov``: Mellor et al.'s first score (arXiv 2006.04647 v1) as zero-cost-nas computes
  it (``foresight/pruners/measures/jacob_cov.py``).
- ``naswot``: Mellor et al., ICML 2021 (BayesWatch/nas-without-training, ``score_networks.py``,
  ``hooklogdet``): log|K_H| of the binary activation-code kernel.

Both read the batch with BatchNorm in train mode (batch statistics), as the two reference
implementations do (neither calls ``eval()``). Written from the formulas, not copied.
"""
from __future__ import annotations

import numpy as np
import torch

from rankbench.proxies._base import Probe, register_proxy

#: zero-cost-nas's regulariser of the eigenvalues
JACOB_COV_K = 1e-5


def jacob_cov_score(jacobian: np.ndarray, k: float = JACOB_COV_K) -> float:
    """-sum_i (log(v_i + k) + 1 / (v_i + k)) over the eigenvalues v of the correlation matrix of
    the rows of ``jacobian`` ([N, D]); NaN where it is undefined (a constant row)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.corrcoef(np.asarray(jacobian, dtype=np.float64))
    if not np.isfinite(corr).all():
        return float("nan")
    v = np.linalg.eigvalsh(corr)
    with np.errstate(invalid="ignore", divide="ignore"):
        return float(-np.sum(np.log(v + k) + 1.0 / (v + k)))


@register_proxy("jacob_cov", needs={"input_jacobian"},
                source="SamsungLabs/zero-cost-nas foresight/pruners/measures/jacob_cov.py", label="Jacob. cov.")
def jacob_cov(probe: Probe) -> float:
    """jacob_cov: J = d(sum of logits)/dx per image; eigenvalues v of corrcoef(J) (images x
    images); score -sum(log(v + 1e-5) + 1/(v + 1e-5)). Higher = better (less correlated
    Jacobians). Deviations: eigenvalues from ``eigvalsh`` (the matrix is symmetric;
    zero-cost-nas's ``eig`` can return complex round-off); NaN where corrcoef is undefined,
    as zero-cost-nas (it catches the error and stores NaN). Sign as computed: zero-cost-nas's
    NB101 notebook reports |Spearman|; rankbench reports the signed correlation."""
    return jacob_cov_score(probe.input_jacobian().detach().double().cpu().numpy())


@register_proxy("naswot", needs={"relu_codes"},
                source="BayesWatch/nas-without-training score_networks.py (hooklogdet)", label="NASWOT")
def naswot(probe: Probe) -> float:
    """NASWOT: log|K_H|, K_H[i, j] = sum over every ``nn.ReLU`` of the number of units where
    images i and j have the same binary code (input > 0), i.e. N_A - Hamming distance.
    ``slogdet``'s log-determinant (-inf when K_H is singular, as the reference). Higher =
    better. The reference counts K_H in a second forward pass of the same batch after a
    backward pass (only ReLUs the backward reached: every ReLU of an NB101 network); with
    BatchNorm in train mode that pass gives the same codes, so rankbench counts them in the
    shared forward. Deviation: none in the value; K_H is accumulated in float64 from one
    product of +-1 codes per ReLU (exact)."""
    _, logdet = torch.linalg.slogdet(probe.relu_kernel)
    return float(logdet)
