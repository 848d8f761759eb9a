"""Ranking protocols: which candidates are scored, on which data, against which truth.

A protocol is a small frozen dataclass registered by name (``get_protocol("paper")``);
``ScoreConfig.protocol`` / ``rankbench run --protocol`` pick one. :meth:`Protocol.apply`
turns a :class:`~rankbench.config.RunConfig` into the effective one (the settings the
protocol fixes), so the resolved config written into a report is what really ran.

| | ``clean`` (rankbench default) | ``paper`` (the public MixPath code) |
|---|---|---|
| candidates | every distinct subnet (``score.candidates = 0``), or N distinct ones sampled with ``score.seed`` | ``score.candidates`` (1000 if 0) sampled choices *with repeats*: ``space.sample`` (m' uniform, then nodes, then ops), seeded |
| BN calibration data | training split, un-augmented; ``score.calib_batches`` fixed batches drawn once with ``score.seed`` | test split with training transforms (crop, flip, cutout); fixed batches |
| calibration statistics | reset, then a cumulative average (momentum None): exactly the mean of the calibration batches' statistics | not reset; BN momentum unchanged (a moving average starting from the trained statistics) |
| evaluation split | ``score.eval_split`` (the held-out validation split) | the test split (the one calibrated on) |
| truth | mean of the repeats (NB101: 3; measured: the seeds), with their spread | one random repeat per sampled choice (as NB101's API query) |
| Kendall tau | tau-b over all candidates (ties handled), bootstrap CIs | over all but the 30 lowest-scored (``score.drop_lowest``, 30 if 0) |

Calibration data, decided: ``clean`` calibrates on *un-augmented* training images, so the
re-estimated statistics are those of the inputs the subnet is evaluated on (clean images);
the training-time augmentation (cutout squares of zeros, padding) shifts BN statistics and
would add noise that depends on the sampled crops. ``paper`` keeps the public code's choice
(training transforms). Either way the batches are drawn once per scoring run, so every
candidate is calibrated on the same images and a score is a function of the subnet only.

Between candidates the supernet's BN state is restored in memory, under both protocols, so a
candidate's score never depends on which candidates were scored before it, nor on the order
(``paper`` does not reproduce any carry-over between candidates the public code may have);
a subnet chosen several times under ``paper`` is scored once and its row repeated.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from rankbench._registry import Registry

if TYPE_CHECKING:  # pragma: no cover
    from rankbench.config import RunConfig, ScoreConfig
    from rankbench.spaces.base import Subnet

__all__ = ["Protocol", "PROTOCOLS", "register_protocol", "get_protocol", "list_protocols", "CLEAN", "PAPER"]


@dataclass(frozen=True)
class Protocol:
    """How a supernet's ranking is measured (see the module docstring's table)."""

    name: str
    sampled: bool  # False: distinct subnets; True: space.sample() choices, repeats allowed
    default_candidates: int  # used when score.candidates == 0 (0 = every distinct subnet)
    calib_split: str  # split the BN calibration batches come from
    calib_reset: bool  # reset running stats + cumulative average (True) or keep + momentum (False)
    calib_augment: bool  # calibration batches with training transforms
    eval_split: str | None  # fixed evaluation split; None = score.eval_split
    truth_reduce: str | None  # fixed truth reduction; None = truth.reduce
    default_drop_lowest: int  # used when score.drop_lowest == 0
    summary: str

    def apply(self, cfg: "RunConfig") -> "RunConfig":
        """``cfg`` with the settings this protocol fixes filled in (the effective config)."""
        score = replace(
            cfg.score,
            protocol=self.name,
            candidates=cfg.score.candidates or self.default_candidates,
            eval_split=self.eval_split or cfg.score.eval_split,
            drop_lowest=cfg.score.drop_lowest or self.default_drop_lowest,
        )
        truth = replace(cfg.truth, reduce=self.truth_reduce) if self.truth_reduce else cfg.truth
        return replace(cfg, score=score, truth=truth)

    def candidates(self, space, score_cfg: "ScoreConfig") -> list["Subnet"]:
        """The candidate list (in scoring order) for an *effective* score config."""
        n = int(score_cfg.candidates or self.default_candidates)
        if n < 0:
            raise ValueError(f"score.candidates must be >= 0, got {n}")
        rng = random.Random(score_cfg.seed)
        if self.sampled:
            if n == 0:
                raise ValueError(f"protocol {self.name!r} samples choices: score.candidates must be > 0")
            return [space.sample(rng) for _ in range(n)]
        every = space.subnets()
        if n == 0 or n >= len(every):
            return every
        keep = set(rng.sample(range(len(every)), n))
        return [s for i, s in enumerate(every) if i in keep]


PROTOCOLS: Registry = Registry("protocol")


def register_protocol(protocol: Protocol) -> Protocol:
    PROTOCOLS.register(protocol.name, protocol.summary)(protocol)
    return protocol


def get_protocol(name: "str | Protocol") -> Protocol:
    return name if isinstance(name, Protocol) else PROTOCOLS.get(name)


def list_protocols() -> list[str]:
    return PROTOCOLS.names()


CLEAN = register_protocol(Protocol(
    name="clean",
    sampled=False,
    default_candidates=0,
    calib_split="train",
    calib_reset=True,
    calib_augment=False,
    eval_split=None,
    truth_reduce=None,
    default_drop_lowest=0,
    summary="distinct subnets; calibrate on training data with fresh statistics; evaluate on the "
            "held-out split; truth = mean of the repeats; tau-b over all",
))

PAPER = register_protocol(Protocol(
    name="paper",
    sampled=True,
    default_candidates=1000,
    calib_split="test",
    calib_reset=False,
    calib_augment=True,
    eval_split="test",
    truth_reduce="random",
    default_drop_lowest=30,
    summary="the public MixPath code: 1000 sampled choices; calibrate and evaluate on the test "
            "split without reset; truth = one random repeat; tau over all but the 30 lowest",
))
