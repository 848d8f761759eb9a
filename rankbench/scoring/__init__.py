"""Scoring candidate subnets with a trained supernet: BN calibration, accuracy, protocols.

``score_candidates(net, candidates, splits, score_cfg, calibrate=True)`` is the entry point;
``get_protocol("clean" | "paper")`` says which candidates, data and truth a ranking uses
(:mod:`rankbench.scoring.protocols` compares the two).
"""
from rankbench.scoring.calibrate import BNState, bns_of, calibrate_bn
from rankbench.scoring.protocols import (
    CLEAN,
    PAPER,
    PROTOCOLS,
    Protocol,
    get_protocol,
    list_protocols,
    register_protocol,
)
from rankbench.scoring.score import (
    COLUMNS,
    calibration_batches,
    eval_tensors,
    evaluate,
    score_cache_path,
    score_candidates,
    score_key,
    subnet_columns,
)

__all__ = [
    "calibrate_bn", "bns_of", "BNState",
    "Protocol", "PROTOCOLS", "CLEAN", "PAPER", "get_protocol", "list_protocols", "register_protocol",
    "score_candidates", "evaluate", "eval_tensors", "calibration_batches", "score_key", "score_cache_path",
    "subnet_columns", "COLUMNS",
]
