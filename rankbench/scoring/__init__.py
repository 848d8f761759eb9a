"""Scoring candidate subnets with a trained supernet: BN calibration, accuracy, protocols.

``score_candidates(net, candidates, splits, score_cfg, calibrate=True)`` is the entry point;
``get_protocol("clean" | "paper")`` says which candidates, data, truth and drop rule a ranking
uses (:mod:`rankbench.scoring.protocols` compares the two).
"""
from rankbench.scoring.calibrate import BNState, bns_of, calibrate_bn
from rankbench.scoring.protocols import (
    CLEAN,
    PAPER,
    PROTOCOL_FIELDS_WITHOUT_EFFECT,
    PROTOCOLS,
    PUBLIC_OPS,
    PUBLIC_TEST_BATCH_SIZE,
    Choice,
    Protocol,
    choice_to_subnet,
    count_ordered_choices,
    draw_public_choices,
    get_protocol,
    list_protocols,
    register_protocol,
)
from rankbench.scoring.score import (
    CALIBRATION_SCORE_FIELDS,
    COLUMNS,
    SCORE_FIELDS_WITHOUT_EFFECT,
    arch_name,
    calibration_batches,
    calibration_data,
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
    "Choice", "PUBLIC_OPS", "PUBLIC_TEST_BATCH_SIZE", "PROTOCOL_FIELDS_WITHOUT_EFFECT", "count_ordered_choices",
    "draw_public_choices", "choice_to_subnet",
    "score_candidates", "evaluate", "eval_tensors", "calibration_batches", "calibration_data", "score_key",
    "score_cache_path", "subnet_columns", "arch_name", "COLUMNS", "SCORE_FIELDS_WITHOUT_EFFECT",
    "CALIBRATION_SCORE_FIELDS",
]
