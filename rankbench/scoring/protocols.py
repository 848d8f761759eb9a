"""Ranking protocols: which candidates are scored, on which data, against which truth.

A protocol is a small frozen dataclass registered by name (``get_protocol("paper")``);
``ScoreConfig.protocol`` / ``rankbench run --protocol`` pick one. :meth:`Protocol.apply`
turns a :class:`~rankbench.config.RunConfig` into the effective one (the settings the
protocol fixes), so the resolved config written into a report is what really ran; scoring
resolves the same settings itself (:meth:`Protocol.score_config`), so it cannot drift from it.

| | ``clean`` (rankbench default) | ``paper`` (the public MixPath code, ``NasBench101/``) |
|---|---|---|
| candidates | ``space.candidates(n, seed)``: every distinct subnet (``score.candidates = 0``), or n distinct ones | ``score.candidates`` (1000 if 0) distinct *ordered choices* drawn as the public code draws them (below), each scored as its network |
| BN calibration data | training split, un-augmented; ``score.calib_batches`` batches of ``score.calib_batch_size``, drawn once with ``score.seed`` | the whole test split through the evaluation transform (no crop, flip or cutout), in order, in batches of 96 (the last one partial) |
| calibration statistics | reset, then a cumulative average (momentum None): exactly the mean of the calibration batches' statistics | not reset; BN momentum unchanged (a moving average starting from the trained statistics) |
| evaluation | ``score.eval_split`` (the held-out validation split), ``score.eval_size`` images | the whole test split (the one calibrated on) |
| truth | mean of the repeats (NB101: 3; measured: the seeds), with their spread | one random repeat per choice (as NB101's API query) |
| dropped before tau | none (``score.drop_lowest`` = 0) | the 30 lowest by *uncalibrated* accuracy, for the uncalibrated and the calibrated tau alike |

``paper`` in detail, as its ``nas_train_search.py`` / ``nas_utils.py``:

- Candidates (:func:`draw_public_choices`): ``random_choice(m)`` draws m' uniform in 1..m,
  nodes ``random.sample(range(m), m')`` in draw order, one op per node; a choice equal to an
  earlier one (the same ordered node -> op list) is drawn again, until there are
  ``score.candidates``. Each choice runs one network (an S4 subnet), so the 1000 choices are
  at most 255 networks. With m = 4, 2,712 ordered choices exist (12 / 108 / 648 / 1,944 with
  1..4 paths): 1000 of them always hold the 12 one-path ones and, for ~63% of seeds, all 108
  two-path ones (one to a few fewer otherwise). With m < 4 fewer exist than 1000: all are
  taken, in draw order (the public script never finishes); :meth:`Protocol.candidates_note`
  says so.
- Calibration: the public test loader (``batch_size=96``, :data:`PUBLIC_TEST_BATCH_SIZE`,
  ``shuffle=False``); the effective config says ``calib_batches = 0`` (the whole split, in
  order) and ``calib_batch_size = 96``, ``eval_split = "test"``, ``eval_size = 0``.
- Drop rule (:meth:`Protocol.keep_mask`): a stable ascending sort by uncalibrated accuracy
  (Python's ``sorted``: ties in draw order), ``[30:]`` kept, the same mask for both settings.

Calibration data, decided: ``clean`` calibrates on *un-augmented* training images, so the
re-estimated statistics are those of the inputs the subnet is evaluated on (clean images) and
the evaluation split stays unseen; ``paper`` calibrates on the test images it then evaluates.

Where ``paper`` still differs from the public code, on purpose:

- Between candidates the supernet's BN state is restored in memory instead of reloading the
  checkpoint: the same state, so the same numbers (the public code reloads after each
  calibrated candidate; nothing else changes between candidates). A candidate's score never
  depends on which candidates were scored before it, under either protocol.
- A network chosen several times (the same subnet reached by different ordered choices) is
  scored once and its row repeated. The public code evaluates each choice, summing the paths
  in draw order, so two orderings of one 3- or 4-path subnet can differ by float rounding;
  here they are exactly equal (ties, which the drop rule breaks by draw order).
- The public code draws m' from NumPy's global generator and nodes and ops from Python's, both
  seeded once (2020) and then advanced by training; here the same two generators
  (``numpy.random.RandomState`` and ``random.Random``) are seeded with ``score.seed`` at
  scoring time: the same sampler and re-draw rule, not the same list.
- Accuracies are exact fractions (correct / n); the public code's are averages of per-batch
  percentages, which can differ in the last bits and so can order near-ties differently.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Sequence

import numpy as np

from rankbench._registry import Registry
from rankbench.spaces import Subnet

if TYPE_CHECKING:  # pragma: no cover
    from rankbench.config import RunConfig, ScoreConfig

__all__ = [
    "Protocol", "PROTOCOLS", "register_protocol", "get_protocol", "list_protocols", "CLEAN", "PAPER",
    "Choice", "PUBLIC_OPS", "PUBLIC_TEST_BATCH_SIZE", "PROTOCOL_FIELDS_WITHOUT_EFFECT",
    "count_ordered_choices", "draw_public_choices", "choice_to_subnet", "CandidateRule", "CANDIDATE_RULES",
    "candidate_rule",
]

#: an ordered choice of the public code: ((node, op), ...) in draw order, nodes 0-based
Choice = tuple[tuple[int, str], ...]
#: the public code's op list (``conv_2_matrix``'s ``selections``): op index -> NB101 op
PUBLIC_OPS = ("conv1x1-bn-relu", "conv3x3-bn-relu", "maxpool3x3")
#: the public code's test loader batch size (``--batch_size 96``, ``shuffle=False``), used for
#: its BN calibration pass over the test set
PUBLIC_TEST_BATCH_SIZE = 96
#: Protocol fields that cannot change a cached score (the others enter :func:`score_key`,
#: directly or through the effective score config): checked by tests/test_scoring.py
PROTOCOL_FIELDS_WITHOUT_EFFECT = {
    "name": "a name; protocols equal otherwise share their cached scores",
    "summary": "text",
    "candidate_rule": "which candidates are scored, not how one is scored",
    "default_candidates": "how many candidates, not how one is scored",
    "default_drop_lowest": "ranking metric, after scoring",
    "truth_reduce": "truth, not scores",
}


def count_ordered_choices(m: int, n_ops: int = len(PUBLIC_OPS)) -> int:
    """How many ordered choices ``random_choice(m)`` can return: sum over m' of
    m! / (m - m')! node orders times n_ops^m' op lists (m = 4: 2,712)."""
    return sum(math.perm(m, k) * n_ops ** k for k in range(1, m + 1))


def draw_public_choices(m: int, n: int, seed: int, ops: Sequence[str] = PUBLIC_OPS) -> list[Choice]:
    """The public code's candidate list: ``random_choice(m)`` re-drawn while the choice equals
    an earlier one, until ``n`` distinct ordered choices (all of them, in draw order, when
    fewer than ``n`` exist).

    As ``nas_utils.random_choice``: m' = ``np.random.randint(1, m + 1, size=1)[0]``, nodes =
    ``random.sample(range(m), m')``, then per node ``random.sample(range(3), 1)[0]`` indexes
    ``ops``; the NumPy and Python generators are seeded with ``seed``."""
    if not 1 <= m:
        raise ValueError(f"m must be >= 1, got {m}")
    if n < 1:
        raise ValueError(f"the number of candidates must be >= 1, got {n}")
    target = min(int(n), count_ordered_choices(m, len(ops)))
    np_rng = np.random.RandomState(seed)
    py_rng = random.Random(seed)
    seen: set[Choice] = set()
    out: list[Choice] = []
    while len(out) < target:
        k = int(np_rng.randint(low=1, high=m + 1, size=1)[0])
        path = py_rng.sample(range(m), k)
        op_ids = [py_rng.sample(range(len(ops)), 1)[0] for _ in range(k)]
        choice = tuple((node, ops[i]) for node, i in zip(path, op_ids))
        if choice not in seen:
            seen.add(choice)
            out.append(choice)
    return out


def choice_to_subnet(choice: Choice, m: int):
    """The network an ordered choice runs: an S4 subnet with ``op`` at each chosen node."""
    ops: list[str | None] = [None] * m
    for node, op in choice:
        ops[node] = op
    return Subnet(tuple(ops))


@dataclass(frozen=True)
class Protocol:
    """How a supernet's ranking is measured (see the module docstring's table)."""

    name: str
    candidate_rule: str  # "subnets": distinct subnets; "public-choices": the public code's ordered choices
    default_candidates: int  # used when score.candidates == 0 (0 = every distinct subnet)
    calib_split: str  # split the BN calibration batches come from
    calib_reset: bool  # reset running stats + cumulative average (True) or keep + momentum (False)
    calib_augment: bool  # calibration batches with training transforms
    calib_batches: int | None  # fixed score.calib_batches (0 = the whole split, in order); None = the config's
    calib_batch_size: int | None  # fixed score.calib_batch_size; None = the config's
    eval_split: str | None  # fixed evaluation split; None = score.eval_split
    eval_size: int | None  # fixed score.eval_size (0 = the whole split); None = the config's
    truth_reduce: str | None  # fixed truth reduction; None = truth.reduce
    default_drop_lowest: int  # used when score.drop_lowest == 0
    summary: str

    # -- effective config ----------------------------------------------------------------
    def fixed_score_fields(self) -> tuple[str, ...]:
        """The ScoreConfig fields this protocol sets whatever the config says."""
        fixed = {"calib_batches": self.calib_batches, "calib_batch_size": self.calib_batch_size,
                 "eval_split": self.eval_split, "eval_size": self.eval_size}
        return ("protocol",) + tuple(k for k, v in fixed.items() if v is not None)

    def score_config(self, score: "ScoreConfig") -> "ScoreConfig":
        """``score`` with what this protocol fixes filled in (idempotent)."""
        return replace(
            score,
            protocol=self.name,
            candidates=score.candidates or self.default_candidates,
            calib_batches=score.calib_batches if self.calib_batches is None else self.calib_batches,
            calib_batch_size=score.calib_batch_size if self.calib_batch_size is None else self.calib_batch_size,
            eval_split=self.eval_split or score.eval_split,
            eval_size=score.eval_size if self.eval_size is None else self.eval_size,
            drop_lowest=score.drop_lowest or self.default_drop_lowest,
        )

    def apply(self, cfg: "RunConfig") -> "RunConfig":
        """``cfg`` with the settings this protocol fixes filled in (the effective config)."""
        truth = replace(cfg.truth, reduce=self.truth_reduce) if self.truth_reduce else cfg.truth
        return replace(cfg, score=self.score_config(cfg.score), truth=truth)

    # -- candidates ----------------------------------------------------------------------
    def _n(self, score_cfg: "ScoreConfig") -> int:
        n = int(score_cfg.candidates or self.default_candidates)
        if n < 0:
            raise ValueError(f"score.candidates must be >= 0, got {n}")
        return n

    def choices(self, space, score_cfg: "ScoreConfig") -> list[Choice]:
        """The public code's ordered choices (``candidate_rule == "public-choices"``), in draw order."""
        if self.candidate_rule != "public-choices":
            raise ValueError(f"protocol {self.name!r} scores distinct subnets, not the public code's choices")
        m, ops = _s4_space(space, self.name)
        n = self._n(score_cfg)
        if n == 0:
            raise ValueError(f"protocol {self.name!r} draws choices: score.candidates must be > 0")
        return draw_public_choices(m, n, score_cfg.seed, ops)

    def candidates(self, space, score_cfg: "ScoreConfig") -> list:
        """The candidate networks (in scoring order) for a score config, as this protocol's
        candidate rule (:data:`CANDIDATE_RULES`) picks them. ``paper``: one per ordered choice,
        so a subnet reached by several choices appears several times."""
        return candidate_rule(self.candidate_rule).candidates(self, space, score_cfg)

    def candidates_note(self, space, score_cfg: "ScoreConfig") -> str | None:
        """A line for the report when the candidate list is not what was asked (fewer choices
        exist than ``score.candidates``); None otherwise."""
        return candidate_rule(self.candidate_rule).note(self, space, score_cfg)

    # -- ranking -------------------------------------------------------------------------
    def keep_mask(self, acc_no_calib: Sequence[float], n_drop: int) -> np.ndarray:
        """Which candidates enter tau: all but the ``n_drop`` lowest by *uncalibrated* accuracy.

        As the public code: a stable ascending sort (Python's ``sorted``; ties keep candidate,
        i.e. draw, order), then ``[n_drop:]``. The same mask serves the uncalibrated and the
        calibrated tau. All True when ``n_drop`` is 0."""
        acc = np.asarray(acc_no_calib, dtype=np.float64)
        if acc.ndim != 1:
            raise ValueError(f"acc_no_calib must be 1-d, got shape {acc.shape}")
        n_drop = int(n_drop)
        if n_drop < 0 or (n_drop and n_drop >= len(acc)):
            raise ValueError(f"cannot drop {n_drop} of {len(acc)} candidates")
        if n_drop and np.isnan(acc).any():
            raise ValueError("acc_no_calib holds NaN: the drop rule needs every uncalibrated accuracy")
        keep = np.ones(len(acc), dtype=bool)
        keep[np.argsort(acc, kind="stable")[:n_drop]] = False
        return keep


def _s4_space(space, protocol: str) -> tuple[int, tuple[str, ...]]:
    m, ops = getattr(space, "m", None), getattr(space, "ops", None)
    if getattr(space, "name", None) != "s4" or m is None or ops is None:
        raise ValueError(f"protocol {protocol!r} is the public MixPath code's S4 protocol; "
                         f"space {getattr(space, 'name', space)!r} is not S4 (use --protocol clean)")
    if tuple(ops) != PUBLIC_OPS:
        raise ValueError(f"S4 ops {tuple(ops)} are not in the public code's order {PUBLIC_OPS}")
    return int(m), tuple(ops)


# -- candidate rules: which networks a protocol scores ------------------------------------------
class CandidateRule:
    """How a protocol picks its candidates from a space. Register a subclass (an instance) in
    :data:`CANDIDATE_RULES` under the name a :class:`Protocol`'s ``candidate_rule`` gives."""

    def candidates(self, protocol: Protocol, space, score_cfg: "ScoreConfig") -> list:
        raise NotImplementedError

    def note(self, protocol: Protocol, space, score_cfg: "ScoreConfig") -> str | None:
        """A line for the report when the list is not what was asked; None otherwise."""
        return None


CANDIDATE_RULES: Registry[CandidateRule] = Registry("candidate rule")


class DistinctSubnets(CandidateRule):
    """Distinct subnets of the space: all of them, or score.candidates sampled with score.seed."""

    def candidates(self, protocol: Protocol, space, score_cfg: "ScoreConfig") -> list:
        return list(space.candidates(protocol._n(score_cfg), score_cfg.seed))


class PublicChoices(CandidateRule):
    """The public MixPath code's ordered choices on S4, in draw order (a subnet once per choice)."""

    def candidates(self, protocol: Protocol, space, score_cfg: "ScoreConfig") -> list:
        m = _s4_space(space, protocol.name)[0]
        return [choice_to_subnet(c, m) for c in protocol.choices(space, score_cfg)]

    def note(self, protocol: Protocol, space, score_cfg: "ScoreConfig") -> str | None:
        m, ops = _s4_space(space, protocol.name)
        n, total = protocol._n(score_cfg), count_ordered_choices(m, len(ops))
        if n <= total:
            return None
        return (f"protocol {protocol.name!r} asks for {n} distinct ordered choices, but S4 with m={m} has only "
                f"{total}: all {total} are scored, in draw order (the public script never finishes here)")


CANDIDATE_RULES.register("subnets")(DistinctSubnets())
CANDIDATE_RULES.register("public-choices")(PublicChoices())


def candidate_rule(name: str) -> CandidateRule:
    """The registered candidate rule ``name`` (a ValueError listing the known ones otherwise)."""
    try:
        return CANDIDATE_RULES.get(name)
    except KeyError as e:
        raise ValueError(f"unknown candidate rule {name!r}; {e.args[0]}") from None


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
    candidate_rule="subnets",
    default_candidates=0,
    calib_split="train",
    calib_reset=True,
    calib_augment=False,
    calib_batches=None,
    calib_batch_size=None,
    eval_split=None,
    eval_size=None,
    truth_reduce=None,
    default_drop_lowest=0,
    summary="distinct subnets; calibrate on training data with fresh statistics; evaluate on the "
            "held-out split; truth = mean of the repeats; tau-b over all",
))

PAPER = register_protocol(Protocol(
    name="paper",
    candidate_rule="public-choices",
    default_candidates=1000,
    calib_split="test",
    calib_reset=False,
    calib_augment=False,
    calib_batches=0,
    calib_batch_size=PUBLIC_TEST_BATCH_SIZE,
    eval_split="test",
    eval_size=0,
    truth_reduce="random",
    default_drop_lowest=30,
    summary="the public MixPath code: 1000 distinct ordered choices; calibrate on the whole test "
            "split, in order, without reset; evaluate on it; truth = one random repeat; tau over "
            "all but the 30 lowest by uncalibrated accuracy",
))
