"""Zero-cost proxies as reference rankers: synflow, snip, grasp, fisher, grad_norm, jacob_cov,
NASWOT on a candidate's untrained stand-alone NB101 network.

Each proxy registers itself by name (``register_proxy``), one module per family:
:mod:`~rankbench.proxies.gradient` (snip, grasp, fisher, grad_norm),
:mod:`~rankbench.proxies.synflow`, :mod:`~rankbench.proxies.activation` (jacob_cov, naswot).
Every score is signed so that higher = better predicted accuracy, in the direction its
reference implementation ranks; no sign is flipped after looking at a benchmark
(zero-cost-nas's NB101 notebook reports |Spearman|; rankbench reports the signed value).

    from rankbench.proxies import compute_proxies, list_proxies
    df = compute_proxies(specs, model_cfg=cfg.model, data=splits.train, seed=0, batch_size=64,
                         cache_path="proxies.csv")
"""
# isort: off  (registration order = list_proxies() order = column order)
from rankbench.proxies import synflow as _synflow  # noqa: F401  (registers synflow)
from rankbench.proxies import gradient as _gradient  # noqa: F401  (registers snip, grad_norm, grasp, fisher)
from rankbench.proxies import activation as _activation  # noqa: F401  (registers jacob_cov, naswot)
# isort: on
from rankbench.proxies._base import (
    PROXIES,
    Probe,
    Proxy,
    get_proxy,
    list_proxies,
    register_proxy,
)
from rankbench.proxies.compute import (
    FORMULAS_VERSION,
    ProxySetup,
    compute_proxies,
    proxy_reference_ranker,
    proxy_reference_scores,
    select_batch,
)

__all__ = [
    "FORMULAS_VERSION",
    "PROXIES",
    "Probe",
    "Proxy",
    "ProxySetup",
    "compute_proxies",
    "get_proxy",
    "list_proxies",
    "proxy_reference_ranker",
    "proxy_reference_scores",
    "register_proxy",
    "select_batch",
]
