"""Which runs a comparison figure may pool: runs are grouped by their resolved config (every
field that can change a number, except the training seed), and each group is named by what
sets it apart ("LSBN (3 seeds)", "LSBN (seed 1, train.epochs=20)").

A figure that compares variants draws one group per variant; runs that differ in anything else
(epochs, width, space, the scoring setup of the report read) are refused unless the caller
allows mixed configs, and then each config is its own, labelled, group.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from rankbench.figures.style import order_variants, variant_label

__all__ = ["NO_EFFECT_FIELDS", "SEED_FIELD", "MixedConfigError", "RunGroup", "config_fields", "differing_fields",
           "group_runs"]

#: the training seed: runs that differ only in it are repeats of one config
SEED_FIELD = "train.seed"
#: fields that cannot change a number (where and how fast it ran, how often it saved, what it
#: logged, the preset's name): ignored when runs are compared
NO_EFFECT_FIELDS = frozenset({
    "preset", "train.device", "train.num_threads", "train.checkpoint_every", "train.checkpoint_interval_s",
    "train.tensorboard", "train.eval_every", "train.eval_candidates", "train.eval_images",
})
#: config sections that belong to a report's scoring setup, not to the trained supernet; a
#: figure that reads scores compares the reports' setups instead
_SCORING_SECTIONS = ("score", "truth")
#: the field a comparison figure is about (one group per value, no refusal)
_COMPARED = "model.variant"
#: fields shown at most in a group's label (all are in the error and the CSV)
_LABEL_FIELDS = 4


class MixedConfigError(ValueError):
    """Runs a figure would pool differ in more than the compared field and the seed."""


def _flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        elif isinstance(v, (list, tuple)):
            out[key] = json.dumps(v, sort_keys=True, default=str)
        else:
            out[key] = v
    return out


def config_fields(cfg, setup: dict | None = None) -> dict[str, Any]:
    """The dotted fields of a run's resolved config that can change its numbers, less the seed.

    ``setup``: the scoring setup of the report a figure reads (``metrics.json`` "setup"); its
    fields replace the config's [score] and [truth] sections, prefixed ``report.``. Without it
    those sections are left out (training-only figures)."""
    flat = _flatten(cfg.to_dict())
    out = {k: v for k, v in flat.items()
           if k not in NO_EFFECT_FIELDS and k != SEED_FIELD and k.split(".", 1)[0] not in _SCORING_SECTIONS}
    if setup is not None:
        out.update(_flatten(setup, "report."))
    return out


def differing_fields(fields: Sequence[dict[str, Any]]) -> list[str]:
    """The keys whose values are not the same in every dict (a missing key counts as a value)."""
    keys = sorted(set().union(*fields)) if fields else []
    missing = object()
    return [k for k in keys if len({json.dumps(f.get(k, missing), default=repr) for f in fields}) > 1]


@dataclass(frozen=True)
class RunGroup:
    """Runs of one config, differing only in their training seed."""

    variant: str
    runs: tuple[Path, ...]
    seeds: tuple[int, ...]
    #: the group's values of the fields in which the groups differ (model.variant left out)
    distinct: dict[str, Any] = field(default_factory=dict)
    #: the reports read, one per run (figures that read scores), else empty
    reports: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """``LSBN (3 seeds)``, ``LSBN (seed 2020)``, ``LSBN (2 seeds, train.epochs=20)``."""
        n = len(self.runs)
        if n == 1:
            what = f"seed {self.seeds[0]}"
        elif len(set(self.seeds)) == n:
            what = f"{n} seeds"
        else:
            what = f"{n} runs"
        parts = [f"{k}={_short(v)}" for k, v in self.distinct.items()]
        if len(parts) > _LABEL_FIELDS:
            parts = parts[:_LABEL_FIELDS] + [f"+{len(parts) - _LABEL_FIELDS} more"]
        return f"{variant_label(self.variant)} ({', '.join([what] + parts)})"

    @property
    def config(self) -> str:
        """The distinguishing fields as ``key=value; ...`` ("" when only the variant differs)."""
        return "; ".join(f"{k}={_short(v)}" for k, v in self.distinct.items())


def _short(v: Any) -> str:
    return "(unset)" if v is None else str(v)


def group_runs(runs: Sequence[str | os.PathLike], configs: Sequence[Any], *, setups: Sequence[dict] | None = None,
               reports: Sequence[str] | None = None, allow_mixed: bool = False, what: str = "this figure"
               ) -> list[RunGroup]:
    """Group ``runs`` (with their resolved ``configs``, and for figures that read scores the
    ``setups`` and names of the ``reports`` read) by config, less the seed and the fields in
    :data:`NO_EFFECT_FIELDS`.

    Groups may differ in the variant (what a comparison shows). Any other difference raises
    :class:`MixedConfigError` naming the fields and each run's values, unless ``allow_mixed``:
    then each config is its own group, labelled by the fields that set it apart. Groups come in
    the registry's variant order, then by label."""
    if len(runs) != len(configs) or (setups is not None and len(setups) != len(runs)):
        raise ValueError("one config (and setup) per run")
    fields = [config_fields(c, s) for c, s in zip(configs, setups if setups is not None else [None] * len(runs))]
    diff = differing_fields(fields)
    others = [k for k in diff if k != _COMPARED]
    if others and not allow_mixed:
        lines = []
        for k in others:
            vals: dict[str, list[str]] = {}
            for r, f in zip(runs, fields):
                vals.setdefault(_short(f.get(k)), []).append(Path(r).name)
            lines.append(f"  {k}: " + "; ".join(f"{v} ({', '.join(rs)})" for v, rs in vals.items()))
        raise MixedConfigError(
            f"{what} would pool runs of different configs; they differ in {', '.join(others)}:\n"
            + "\n".join(lines)
            + "\npass runs of one config (seeds and variants may differ), pick one report for all "
              "(--report NAME), or --allow-mixed to draw each config as its own labelled group")
    # a field that repeats another in every run (report.score.protocol = report.protocol) says nothing new
    shown: list[str] = []
    for k in others:
        if not any(all(f.get(k) == f.get(j) for f in fields) for j in shown):
            shown.append(k)
    buckets: dict[str, list[int]] = {}
    for i, f in enumerate(fields):
        key = json.dumps({k: f.get(k) for k in diff}, sort_keys=True, default=repr)
        buckets.setdefault(key, []).append(i)
    groups = []
    for idx in buckets.values():
        f = fields[idx[0]]
        groups.append(RunGroup(
            variant=str(f.get(_COMPARED, configs[idx[0]].model.variant)),
            runs=tuple(Path(runs[i]) for i in idx),
            seeds=tuple(int(configs[i].train.seed) for i in idx),
            distinct={k: f.get(k) for k in shown},
            reports=tuple(reports[i] for i in idx) if reports is not None else (),
        ))
    order = {v: i for i, v in enumerate(order_variants([g.variant for g in groups]))}
    return sorted(groups, key=lambda g: (order[g.variant], g.label))
