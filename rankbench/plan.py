"""The plan of a run, resolved once and passed down.

:func:`resolve` turns a config into a :class:`RunPlan`: the config validated (field rules, the
registries: variant, search space, protocol, and the devices of this machine), the protocol
applied once, the space and its candidates built once, the truth loaded once with its coverage
and digest, the device and each seed's training fingerprint computed once, and each seed's run
directory. ``--dry-run`` prints it; :func:`rankbench.pipeline.run`, :func:`rankbench.ablation.
ablation` and the analysis recipes run it. Nothing is created here.
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import torch

from rankbench import rundir
from rankbench.config import RunConfig, config_problems, device_type_of, raise_problems
from rankbench.proxies import list_proxies
from rankbench.references import proxy_names
from rankbench.reports import report_name, report_setup
from rankbench.scoring.protocols import PROTOCOLS, Protocol, get_protocol
from rankbench.spaces import SPACES, create_space, space_from_config
from rankbench.spaces.base import Arch, SearchSpace
from rankbench.supernet import VARIANTS, list_variants, variant_info
from rankbench.truth import (MIN_CANDIDATES, Truth, TruthCoverage, TruthCoverageError, also_key, load_also_truth,
                             load_truth)

__all__ = ["RunPlan", "SeedRun", "ExtraTruth", "resolve", "validate_config", "registry_problems"]


# -- validation: the field rules (rankbench.config), then the registries and this machine ------
def registry_problems(cfg: RunConfig) -> tuple[list[str], SearchSpace | None]:
    """Problems of ``cfg`` against the registries (space with its settings, by building it;
    variant; protocol), one line each with its fix, and the space built (None if it cannot be)."""
    problems: list[str] = []

    def bad(key: str, value: object, rule: str, fix: str) -> None:
        problems.append(f"{key} = {value!r}: {rule}; {fix}")

    space: SearchSpace | None = None
    space_name, settings = cfg.space.name, cfg.space.settings()
    if space_name not in SPACES:
        bad("space.name", space_name, f"unknown search space; spaces: {', '.join(SPACES.names())}",
            "pick one with --space NAME (rankbench list spaces)")
    else:
        try:
            space = create_space(space_name, **settings)
        except (TypeError, ValueError) as e:
            shown = ", ".join(f"space.{k} = {v!r}" for k, v in settings.items())
            field_ = next(iter(settings)) if len(settings) == 1 else "<field>"
            problems.append(f"{shown or 'space.name'}: {e}; set it with --set space.{field_}=..."
                            + (" or --m M" if "m" in settings else ""))
    variant = cfg.model.variant
    if variant not in VARIANTS:
        bad("model.variant", variant, f"unknown variant; variants: {', '.join(VARIANTS.names())}",
            "pick one with --variant NAME (rankbench list variants)")
    elif space_name in SPACES and not variant_info(variant).supports(space_name):
        bad("model.variant", variant, f"cannot be built on search space {space_name!r}; variants for it: "
            f"{', '.join(list_variants(space_name)) or '(none)'}", "pick one with --variant NAME")
    if cfg.score.protocol not in PROTOCOLS:
        bad("score.protocol", cfg.score.protocol, f"unknown protocol; protocols: {', '.join(PROTOCOLS.names())}",
            "pick one with --protocol NAME")
    also = tuple(getattr(cfg.truth, "also", ()))
    keys = [also_key(s) for s in also]
    if cfg.truth.source in also:
        bad("truth.also", list(also), f"{cfg.truth.source!r} is truth.source already: every report ranks against it",
            "list only other truths, e.g. --set truth.also=measured")
    elif len(set(keys)) < len(keys):
        bad("truth.also", list(also), f"two extra truths go by the same name ({', '.join(keys)}) in a report",
            "give CSVs of different file names")
    if space is not None:
        problem = sampler_problem(cfg, space)
        if problem:
            problems.append(problem)
    known = list_proxies()
    unknown = [n for n in cfg.score.proxies if n != "all" and n not in known]
    if unknown:
        bad("score.proxies", list(cfg.score.proxies),
            f"unknown zero-cost prox{'y' if len(unknown) == 1 else 'ies'} {', '.join(map(repr, unknown))}; "
            f"proxies: {', '.join(known)} (or all)",
            "pick with --set score.proxies=NAME,NAME or --set score.proxies=all (rankbench list references)")
    elif cfg.score.proxies and 0 < cfg.data.train_size < cfg.score.proxy_batch_size:
        bad("score.proxy_batch_size", cfg.score.proxy_batch_size,
            f"the proxies' batch is drawn from the training split, which holds data.train_size = "
            f"{cfg.data.train_size} images", "set it with --set score.proxy_batch_size=N (N <= data.train_size)")
    return problems, space


def sampler_problem(cfg: RunConfig, space: SearchSpace) -> str | None:
    """What is wrong with ``train.sampler`` for ``space`` (an unknown name, a bad argument), by
    building it as the training will (:func:`rankbench.training.samplers.make_sampler`); None
    when it can be built."""
    spec = getattr(cfg.train, "sampler", None)
    if spec is None:  # a config from before training samplers
        return None
    from rankbench.training.samplers import list_samplers, make_sampler

    fix = "pick one with --set train.sampler=NAME or NAME:ARG (rankbench list samplers)"
    name = spec.partition(":")[0]
    if name not in list_samplers():
        return f"train.sampler = {spec!r}: unknown training sampler {name!r}; samplers: " \
               f"{', '.join(list_samplers())}; {fix}"
    try:
        make_sampler(spec, space, cfg.model.stacks * cfg.model.cells_per_stack,
                     per_cell=cfg.train.sampling == "per_cell")
    except (KeyError, TypeError, ValueError) as e:
        reason = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
        return f"train.sampler = {spec!r}: {reason}; {fix}"
    return None


def machine_problems(cfg: RunConfig, *, device_check: bool = True) -> list[str]:
    """What this machine lacks for ``cfg``: TensorBoard when asked for, and (``device_check``)
    the CUDA device ``train.device`` names."""
    problems: list[str] = []
    if cfg.train.tensorboard and importlib.util.find_spec("tensorboard") is None:
        problems.append("train.tensorboard = True: TensorBoard is not installed here; "
                        'pip install "rankbench[tb]", or drop --tensorboard')
    device = cfg.train.device
    if device_check and device.startswith("cuda"):
        if not torch.cuda.is_available():
            problems.append(f"train.device = {device!r}: CUDA is not available here; "
                            f"use --device auto or --device cpu")
        elif ":" in device and device.partition(":")[2].isdigit() and \
                int(device.partition(":")[2]) >= torch.cuda.device_count():
            problems.append(f"train.device = {device!r}: this machine has {torch.cuda.device_count()} CUDA "
                            f"device(s); use --device cuda (the first) or cuda:N with a smaller N")
    return problems


def _problems(cfg: RunConfig, device_check: bool) -> tuple[list[str], SearchSpace | None]:
    field_problems = config_problems(cfg)
    reg, space = registry_problems(cfg)
    return field_problems + reg + machine_problems(cfg, device_check=device_check), space


def validate_config(cfg: RunConfig, *, device_check: bool = True) -> RunConfig:
    """Check every value a run depends on, before anything is created; returns ``cfg``.

    The field rules (:func:`rankbench.config.config_problems`), the variant, search space (with
    its settings, by building it) and protocol against their registries, and, with
    ``device_check``, that a CUDA device asked for exists here. One
    :class:`~rankbench.config.ConfigError` lists every problem: the field, its value, the rule,
    how to set it."""
    raise_problems(_problems(cfg, device_check)[0])
    return cfg


# -- the plan ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class SeedRun:
    """One training seed of a plan: its effective config, fingerprint and run directory."""

    seed: int
    cfg: RunConfig
    training_fingerprint: str
    run_dir: Path


@dataclass(frozen=True, eq=False)
class ExtraTruth:
    """One extra truth of a plan (``truth.also``): loaded once, with its coverage of the
    candidates (it ranks those it covers) and its digest."""

    key: str  # its name in a report (rankbench.truth.also_key)
    source: str  # as truth.also names it
    truth: Truth
    coverage: TruthCoverage
    digest: str


@dataclass(frozen=True, eq=False)
class RunPlan:
    """What a run needs before any training, resolved once: checked first, so that a truth that
    cannot rank the candidates fails in seconds, not after the training.

    ``cfg`` is the effective config (protocol applied) of the first seed; ``runs`` one
    :class:`SeedRun` per seed. ``truth`` is None only for a plan resolved with
    ``truth="record"`` whose truth cannot be used; ``truth_problem`` then says why."""

    requested: RunConfig
    cfg: RunConfig
    protocol: Protocol
    space: SearchSpace
    candidates: list[Arch]
    notes: tuple[str, ...]
    device_type: str
    runs_root: Path
    runs: tuple[SeedRun, ...]
    truth: Truth | None
    coverage: TruthCoverage | None
    truth_digest: str = ""
    truth_problem: str | None = None
    #: the extra truths (``truth.also``) every report also ranks against, loaded once
    also: tuple[ExtraTruth, ...] = ()

    # -- what callers read -------------------------------------------------------------------
    @property
    def proto(self) -> Protocol:
        """The protocol (the name :class:`rankbench.pipeline.Prepared` used)."""
        return self.protocol

    @property
    def seeds(self) -> list[int]:
        return [r.seed for r in self.runs]

    @property
    def run_dirs(self) -> list[Path]:
        return [r.run_dir for r in self.runs]

    @property
    def planned(self) -> list[tuple[RunConfig, Path]]:
        """(effective config, run directory) of each seed."""
        return [(r.cfg, r.run_dir) for r in self.runs]

    @property
    def hashes(self) -> list[str]:
        return [c.hash for c in self.candidates]

    def require_truth(self) -> Truth:
        """The truth; the reason it cannot be used as an error otherwise."""
        if self.truth is None:
            raise ValueError(self.truth_problem or "the plan was resolved without its truth")
        return self.truth

    def report_name(self, calibrate: bool) -> str:
        """The name of the report a run of this plan writes (``reports/<name>/``)."""
        self.require_truth()
        return report_name(report_setup(self.cfg, calibrate=calibrate, truth_digest=self.truth_digest))

    # -- derived plans -----------------------------------------------------------------------
    def for_seed(self, seed: int) -> RunPlan:
        """This plan for one of its seeds (or any other: its run directory computed)."""
        run = next((r for r in self.runs if r.seed == seed), None) or _seed_run(
            self.cfg, seed, self.space, self.device_type, self.runs_root)
        return replace(self, cfg=run.cfg, runs=(run,))

    def with_variant(self, variant: str) -> RunPlan:
        """This plan for another supernet variant: the same candidates and truth (loaded once),
        that variant's fingerprints and run directories."""
        if variant not in VARIANTS:
            raise ValueError(f"unknown variant {variant!r}; variants: {', '.join(VARIANTS.names())}")
        cfg = replace(self.cfg, model=replace(self.cfg.model, variant=variant))
        runs = tuple(_seed_run(cfg, r.seed, self.space, self.device_type, self.runs_root) for r in self.runs)
        return replace(self, requested=replace(self.requested, model=replace(self.requested.model, variant=variant)),
                       cfg=runs[0].cfg, runs=runs)


def _seed_run(eff: RunConfig, seed: int, space: SearchSpace, dev: str, root: Path) -> SeedRun:
    cfg = replace(eff, train=replace(eff.train, seed=int(seed)))
    fp = cfg.training_fingerprint(dev)
    return SeedRun(seed=int(seed), cfg=cfg, training_fingerprint=fp,
                   run_dir=root / rundir.run_name(cfg, fingerprint=fp, space_tag=space.tag))


TruthMode = Literal["require", "record", "skip"]


def resolve(cfg: RunConfig, seeds: int = 1, runs_root: str | Path | None = None, *, validate: bool = True,
            device_check: bool = False, truth: TruthMode = "require") -> RunPlan:
    """The plan of running ``cfg`` for training seeds ``cfg.train.seed + i`` (``i < seeds``)
    under ``runs_root`` (default ``$RANKBENCH_RUNS`` or ``./runs``).

    ``validate``: check the config first (:func:`validate_config`; ``device_check`` as there).
    ``truth``: "require" loads it and checks its coverage (a truth that cannot rank the
    candidates raises here); "record" keeps the problem in ``truth_problem`` instead (a dry
    run shows it); "skip" does not load it (where only the run directories are needed)."""
    if seeds < 1:
        raise ValueError(f"seeds must be >= 1, got {seeds}")
    space: SearchSpace | None = None
    if validate:
        problems, space = _problems(cfg, device_check)
        raise_problems(problems)
    proto = get_protocol(cfg.score.protocol)
    eff = proto.apply(cfg)
    if eff.score.proxies:  # "all" and the order resolved once: the report's setup names the proxies
        eff = replace(eff, score=replace(eff.score, proxies=proxy_names(eff.score.proxies)))
    if space is None or getattr(type(space), "from_config", None) is not None or eff.space != cfg.space:
        space = space_from_config(eff)
    dev = device_type_of(eff.train.device)
    root = rundir.runs_root(runs_root)
    runs = tuple(_seed_run(eff, cfg.train.seed + i, space, dev, root) for i in range(seeds))
    candidates = list(proto.candidates(space, eff.score))
    note_fn = getattr(proto, "candidates_note", None)
    note = note_fn(space, eff.score) if note_fn is not None else None
    notes = (note,) if note else ()
    the_truth: Truth | None = None
    coverage: TruthCoverage | None = None
    problem: str | None = None
    digest = ""
    also: tuple[ExtraTruth, ...] = ()
    if truth != "skip":
        try:
            the_truth = load_truth(eff, candidates)
            coverage = the_truth.check_coverage([c.hash for c in candidates], preset=eff.preset)
            digest = the_truth.digest()
            also = _extra_truths(eff, candidates)
        except (ValueError, OSError) as e:
            if truth == "require":
                raise
            the_truth, coverage, problem = None, None, str(e)
    return RunPlan(requested=cfg, cfg=runs[0].cfg, protocol=proto, space=space, candidates=candidates,
                   notes=notes, device_type=dev, runs_root=root, runs=runs, truth=the_truth, coverage=coverage,
                   truth_digest=digest, truth_problem=problem, also=also)


def _extra_truths(eff: RunConfig, candidates: list[Arch]) -> tuple[ExtraTruth, ...]:
    """Each extra truth of ``truth.also``, loaded, with its coverage of the candidates: one that
    is missing, or covers fewer than MIN_CANDIDATES of them, fails here, before any training."""
    out = []
    hashes = [c.hash for c in candidates]
    for source in eff.truth.also:
        t = load_also_truth(eff, source, candidates)
        cov = t.coverage(hashes)
        if cov.covered < MIN_CANDIDATES:
            raise TruthCoverageError(
                f"truth.also = {list(eff.truth.also)!r}: the extra truth {t.describe_short()} covers only {cov}; "
                f"ranking against it needs at least {MIN_CANDIDATES} candidates. Measure it for this preset "
                f"(`rankbench truth --preset {eff.preset}`) or drop it with --set truth.also=")
        out.append(ExtraTruth(key=also_key(source), source=source, truth=t, coverage=cov, digest=t.digest()))
    return tuple(out)
