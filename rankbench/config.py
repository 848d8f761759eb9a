"""Typed configuration: one frozen dataclass per concern, presets as TOML data.

A run's fully resolved :class:`RunConfig` is written into its run directory
(``config.json``) so that every number can be traced back and re-run. Overrides use dotted
names, ``train.epochs=5``; a wrong name or a wrong type fails loudly here.
"""
from __future__ import annotations

import dataclasses
import math
import re
import tomllib
from dataclasses import dataclass, field, fields, replace
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_type_hints

from rankbench._io import short_digest

if TYPE_CHECKING:  # pragma: no cover
    from rankbench.spaces.base import SpaceSettings


@dataclass(frozen=True)
class ModelConfig:
    """The supernet: normalisation variant and NB101 skeleton size (the search space and its
    settings are the ``[space]`` section)."""

    variant: str = "lsbn"
    width: int = 128  # stem channels; doubled after each stack (NB101: 128)
    stacks: int = 3
    cells_per_stack: int = 3
    num_classes: int = 10
    bn_momentum: float = 0.1



@dataclass(frozen=True)
class DataConfig:
    """CIFAR-10 source and split (NB101 convention: 40k train / 10k validation / 10k test)."""

    source: str = "bundled"  # "bundled", or a path: cifar-10-python.tar.gz, its folder, an image zip/folder
    train_size: int = 0  # 0 = the whole train split; else a class-balanced subset of it
    valid_size: int = 0  # 0 = the whole validation split
    test_size: int = 0  # 0 = the whole test split
    batch_size: int = 96
    cutout: int = 16  # cutout square side in pixels; 0 disables
    crop_padding: int = 4
    flip: bool = True
    split_seed: int = 0  # only used where the source has no fixed split
    resolution: int = 32  # images are average-pooled to this side (quick preset: 16); 32 = native
    #: order of splits from sources without a batch order (image folders, zips, the bundled
    #: sample): "mixed" interleaves the classes (class 0, 1, ..., 9, 0, 1, ...), so that a pass in
    #: loader order sees every class in every batch as with the official archive; "source" keeps
    #: the class-sorted order of runs made before it existed. The official archive keeps its own.
    order: str = "mixed"


@dataclass(frozen=True)
class TrainConfig:
    """Supernet training (defaults: the public MixPath code's hyper-parameters).

    ``amp`` (bf16 autocast) takes effect on CUDA only: on CPU it is ignored (bf16 autocast
    there is slower on most CPUs and would change the numbers of CPU runs) and does not enter
    the training fingerprint (see :meth:`takes_effect`). ``compile`` takes effect on every
    device. ``num_threads`` (the order of CPU reductions) and ``portable`` (CPU dispatch pinned
    to AVX2, :mod:`rankbench.numerics`) change the weights of a CPU training only. ``device``,
    ``checkpoint_every``, ``checkpoint_interval_s``, ``tensorboard``, ``eval_every``,
    ``eval_candidates`` and ``eval_images`` never change the trained weights and never enter the
    fingerprint (tau tracking scores with the weights saved and restored around it:
    :mod:`rankbench.training.tau_tracking`).
    """

    epochs: int = 200
    lr: float = 0.025
    momentum: float = 0.9
    weight_decay: float = 3e-4  # not applied to BN parameters
    grad_clip: float = 5.0
    sampling: str = "shared"  # "shared": one subnet for all cells per step; "per_cell"
    seed: int = 2020
    device: str = "auto"  # "auto" | "cpu" | "cuda" | "cuda:N"
    amp: bool = True  # bf16 autocast on CUDA; no effect on CPU (and then not in the fingerprint)
    channels_last: bool = True  # NHWC memory format (faster on CUDA and, for narrow nets, on CPU)
    compile: bool = False  # compile the supernet's static blocks (rankbench.supernet.compile)
    checkpoint_every: int = 1  # epochs between checkpoints
    checkpoint_interval_s: float = 300.0  # also checkpoint within an epoch this often; 0 = epoch ends only
    num_threads: int = 0  # torch CPU threads; 0 = torch's default (changes CPU weights: in the fingerprint)
    portable: bool = False  # CPU: pin kernel dispatch to AVX2 (rankbench.numerics.apply_portable)
    tensorboard: bool = False  # event files in <run dir>/tensorboard/ (pip install "rankbench[tb]")
    #: which subnet each step trains: a registered training sampler, ``name`` or ``name:arg``
    #: (rankbench.training.samplers; ``rankbench list samplers``): uniform, fixed:<arch>, pool:<N>, ...
    sampler: str = "uniform"
    #: tau over training: every N epochs (and at the last) score ``eval_candidates`` of the run's
    #: candidates (drawn with score.seed) with and without BN calibration against the run's truth,
    #: into <run dir>/tau_over_training.csv (rankbench.training.tau_tracking); 0 = off
    eval_every: int = 0
    #: candidates scored at each of those epochs (only with eval_every). The defaults (32 candidates
    #: on 200 images) keep the cost near a fifth of a quick training at eval_every = 5
    #: (bench/bench_tau_tracking.py); their intervals are wide: a trend, not a result
    eval_candidates: int = 32
    #: images of score.eval_split each of those candidates is scored on (a fixed seeded subset, as
    #: score.eval_size does); 0 = what the run's report uses (score.eval_size)
    eval_images: int = 200

    def takes_effect(self, name: str, device_type: str) -> bool:
        """Whether field ``name`` acts on a ``device_type`` ("cpu", "cuda") training:
        ``amp`` only on CUDA; ``num_threads`` and ``portable`` only on CPU; every other field
        everywhere."""
        if name == "amp":
            return device_type == "cuda"
        if name in ("num_threads", "portable"):
            return device_type == "cpu"
        return True


@dataclass(frozen=True)
class ScoreConfig:
    """How a trained supernet scores candidate subnets."""

    protocol: str = "clean"  # "clean" (rankbench default) | "paper" (public MixPath code)
    candidates: int = 0  # 0 = every distinct subnet; N = N sampled (with repeats under "paper")
    calib_batches: int = 10  # BN calibration: batches of training data, cumulative average
    calib_batch_size: int = 128
    eval_split: str = "valid"  # held-out split the accuracy is measured on
    eval_batch_size: int = 500
    eval_size: int = 0  # 0 = the whole eval split
    drop_lowest: int = 0  # "paper": tau over all but the N lowest scored (30 in the public code)
    seed: int = 0
    group_size: int = 32  # candidates scored together, sharing the stem's work (same numbers); 1 = one by one
    #: zero-cost proxies (rankbench.proxies) ranked beside the supernet as opt-in reference
    #: rankers (``ref_<proxy>`` columns); () = none, "all" = every registered proxy. Set with
    #: ``--set score.proxies=synflow,naswot`` (or ``=all``); checked by the plan
    proxies: tuple[str, ...] = ()
    proxy_batch_size: int = 64  # training images each proxy scores a network on (only with proxies)


@dataclass(frozen=True)
class TruthConfig:
    """Where the ground truth comes from."""

    source: str = "nb101"  # "nb101" (a store) | "measured" (rankbench truth output) | a path
    store: str = ""  # NB101 store path; "" = RANKBENCH_DATA, then the default, then the bundled sample
    metric: str = "validation_accuracy"  # or "test_accuracy"
    reduce: str = "mean"  # "mean" of the 3 repeats | "random" (one repeat, as the public code)
    epochs: int = 108
    seeds: int = 2  # measured truth: from-scratch trainings per hash class
    train_epochs: int = 0  # measured truth: epochs per from-scratch training (0 = train.epochs)
    #: measured truth: how many of the space's candidates it covers, drawn with score.seed as the
    #: run draws its candidates (so with truth.candidates <= score.candidates they are a subset of
    #: the run's); 0 = every hash class of the space
    candidates: int = 0
    #: extra truths every report also ranks against, side by side with ``source`` (each named as
    #: ``source`` is: "measured", "nb101" or a CSV path), on the candidates each covers; () = none
    also: tuple[str, ...] = ()


def _default_space() -> "SpaceSettings":
    return _space_section_from_dict({})


@dataclass(frozen=True)
class RunConfig:
    preset: str = "paper"
    #: the search space: ``name`` and the space's own settings (a SpaceSettings subclass)
    space: "SpaceSettings" = field(default_factory=_default_space)
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    score: ScoreConfig = field(default_factory=ScoreConfig)
    truth: TruthConfig = field(default_factory=TruthConfig)

    def __post_init__(self):
        if isinstance(self.space, dict):
            object.__setattr__(self, "space", _space_section_from_dict(self.space))

    # -- serialisation -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RunConfig":
        d = _migrate(d)
        kw: dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in d:
                continue
            if f.name == "preset":
                kw["preset"] = str(d["preset"])
            else:
                kw[f.name] = _section_from_dict(f.name, d[f.name])
        unknown = set(d) - {f.name for f in fields(cls)}
        if unknown:
            raise ConfigError(f"unknown config section(s): {', '.join(sorted(unknown))}; "
                              f"known: {', '.join(SECTIONS)}")
        return cls(**kw)

    def fingerprint(self, *sections: str) -> str:
        """A short stable hash of the given sections (all if none): equal configs, equal key."""
        d = self.to_dict()
        keys = sections or tuple(SECTIONS)
        return short_digest({k: d[k] for k in keys})

    def training_fingerprint(self, device_type: str | None = None) -> str:
        """Everything that changes the trained weights on a ``device_type`` ("cpu", "cuda")
        training; None: where ``train.device`` resolves here ("auto": CUDA when available).
        Not scoring, truth, the device, checkpointing or logging; a train field that has no
        effect there (``amp`` on CPU, ``num_threads`` on CUDA) counts as its default, so it moves
        no run."""
        if device_type is None:
            device_type = device_type_of(self.train.device)
        d = self.to_dict()
        default = dataclasses.asdict(TrainConfig())
        train = {k: (v if self.train.takes_effect(k, device_type) else default[k]) for k, v in d["train"].items()
                 if k not in _NOT_TRAINING and not (k in _OMITTED_AT_DEFAULT and v == default[k])}
        return short_digest({"model": _model_identity(d), "data": d["data"], "train": train})


#: train fields that never change the trained weights
_NOT_TRAINING = ("device", "checkpoint_every", "checkpoint_interval_s", "tensorboard", "eval_every",
                 "eval_candidates", "eval_images")

#: train fields added after runs were named: at their default (what every earlier run did) they
#: stay out of the fingerprint, so earlier runs keep their directories; any other value enters it
_OMITTED_AT_DEFAULT = ("sampler",)


def device_type_of(device: str) -> str:
    """"cpu" / "cuda" for a ``train.device`` value; "auto" asks torch (imported only then)."""
    if device == "auto":
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    return device.partition(":")[0]


def _model_identity(d: dict[str, Any]) -> dict[str, Any]:
    """The ``model`` part of the training fingerprint: the model section plus the space's
    name and settings, as the model section held them before ``[space]`` existed (so S4
    runs keep their fingerprints and run directories)."""
    space = dict(d["space"])
    return {**d["model"], "space": space.pop("name"), **space}


#: every field a written config (``RunConfig.to_dict``) held in ``[data]`` before ``data.order``
_DATA_FIELDS_BEFORE_ORDER = frozenset({"source", "train_size", "valid_size", "test_size", "batch_size", "cutout",
                                       "crop_padding", "flip", "split_seed", "resolution"})


def _migrate(d: dict[str, Any]) -> dict[str, Any]:
    """A config dict written by an older rankbench moved to today's form; others are returned
    as they are: a written ``[data]`` without ``order`` (every other field present: a run's
    ``config.json``, not a preset) was trained on class-sorted image sources (``"source"``);
    ``model.space`` / ``model.m`` (before ``[space]``) move to ``[space]``."""
    data = d.get("data")
    if isinstance(data, dict) and "order" not in data and _DATA_FIELDS_BEFORE_ORDER <= set(data):
        d = {**d, "data": {**data, "order": "source"}}
    return _migrate_space(d)


def _migrate_space(d: dict[str, Any]) -> dict[str, Any]:
    model = d.get("model")
    if not isinstance(model, dict) or not ({"space", "m"} & set(model)):
        return d
    model = dict(model)
    space = dict(d.get("space") or {})
    if "space" in model:
        space.setdefault("name", model.pop("space"))
    if "m" in model:
        space.setdefault("m", model.pop("m"))
    return {**d, "model": model, "space": space}


def _space_section_from_dict(d: dict[str, Any]) -> "SpaceSettings":
    """The ``[space]`` section: the settings class the named space registered (default s4),
    each field coerced to its type; an unknown field lists the space's known ones."""
    from rankbench.spaces import space_settings

    name = str(d.get("name", "s4"))
    try:
        cls = space_settings(name)
    except KeyError as e:
        raise ConfigError(f"space.name: {e.args[0]}") from None
    return _build_section("space", cls, {**d, "name": name})


SECTIONS = {
    "space": None,  # the space's own SpaceSettings class (rankbench.spaces.space_settings)
    "model": ModelConfig,
    "data": DataConfig,
    "train": TrainConfig,
    "score": ScoreConfig,
    "truth": TruthConfig,
}


class ConfigError(ValueError):
    """A preset or override that does not fit the config schema."""


def _coerce(section: str, name: str, typ: Any, value: Any) -> Any:
    where = f"{section}.{name}"
    if typ is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "1", "yes", "false", "0", "no"):
            return value.lower() in ("true", "1", "yes")
        raise ConfigError(f"{where} must be true or false, got {value!r}")
    if typ is int:
        if isinstance(value, bool):
            raise ConfigError(f"{where} must be an integer, got {value!r}")
        try:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where} must be an integer, got {value!r}") from None
    if typ is float:
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where} must be a number, got {value!r}") from None
    if typ is str:
        return str(value)
    if typ == tuple[str, ...]:  # a list of names: a TOML list, or "a,b" / "a" from --set
        if isinstance(value, str):
            value = [v for v in (x.strip() for x in value.split(",")) if v]
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where} must be a list of names (e.g. {name}=a,b), got {value!r}")
        return tuple(dict.fromkeys(value))
    return value


def _section_from_dict(section: str, d: dict[str, Any]) -> Any:
    if section == "space":
        return _space_section_from_dict(d)
    cls = SECTIONS[section]
    assert cls is not None  # only [space] has no fixed class
    return _build_section(section, cls, d)


def _build_section(section: str, cls: type, d: dict[str, Any]) -> Any:
    hints = get_type_hints(cls)
    names = {f.name for f in fields(cls)}
    unknown = set(d) - names
    if unknown:
        what = f"[{section}]" if section != "space" else f"[space] (space {d.get('name')!r})"
        raise ConfigError(
            f"unknown field(s) in {what}: {', '.join(sorted(unknown))}; known: {', '.join(sorted(names))}"
        )
    try:
        return cls(**{k: _coerce(section, k, hints[k], v) for k, v in d.items()})
    except (TypeError, ValueError) as e:
        if isinstance(e, ConfigError):
            raise
        raise ConfigError(f"[{section}]: {e}") from None


def list_presets() -> list[str]:
    return sorted(p.name[:-5] for p in resources.files("rankbench.presets").iterdir() if p.name.endswith(".toml"))


def load_preset(name_or_path: str) -> RunConfig:
    """A preset by name (``quick``, ``paper``) or a path to a TOML file of the same form."""
    path = Path(name_or_path)
    if path.suffix == ".toml" and path.exists():
        text, name = path.read_text(), path.stem
    else:
        res = resources.files("rankbench.presets") / f"{name_or_path}.toml"
        if not res.is_file():
            raise ConfigError(f"unknown preset {name_or_path!r}; presets: {', '.join(list_presets())} "
                              f"(or give a path to a .toml file)")
        text, name = res.read_text(), name_or_path
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"preset {name_or_path}: invalid TOML: {e}") from None
    data.setdefault("preset", name)
    return RunConfig.from_dict(data)


# -- config differences: one helper for every reader (pipeline, compare, figures) --------------
def flatten_config(cfg: RunConfig | dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A config (or its ``to_dict``) as {dotted field: value}, lists as tuples (comparable)."""
    d = cfg.to_dict() if isinstance(cfg, RunConfig) else cfg
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten_config(v, key + "."))
        else:
            out[key] = tuple(v) if isinstance(v, list) else v
    return out


def config_overrides(cfg: RunConfig, *, ignore: tuple[str, ...] | list[str] = ("model.variant", "train.seed"),
                     base: RunConfig | None = None) -> dict[str, Any]:
    """The resolved fields in which ``cfg`` differs from ``base`` (default: its preset), as
    {dotted name: value}, less ``ignore``. A preset that cannot be loaded (a path that moved):
    every field counts."""
    if base is None:
        try:
            base_d = load_preset(cfg.preset).to_dict()
        except Exception:  # a preset given as a path that moved: everything counts
            base_d = {}
    else:
        base_d = base.to_dict()
    out = {}
    for section, fields_ in cfg.to_dict().items():
        if not isinstance(fields_, dict):
            continue
        for k, v in fields_.items():
            key = f"{section}.{k}"
            if key in ignore:
                continue
            if (base_d.get(section) or {}).get(k, object()) != v:
                out[key] = v
    return out


def apply_overrides(cfg: RunConfig, overrides: list[str] | dict[str, Any]) -> RunConfig:
    """Apply ``section.field=value`` overrides (CLI ``--set``) or a {dotted: value} dict."""
    items = overrides.items() if isinstance(overrides, dict) else [_split(o) for o in overrides]
    # the space's name first, so that its settings are checked against the space chosen
    items = [(k, v) for k, v in items if v is not None]
    moved = [k for k, _ in items if k in _MOVED]
    if moved:
        raise ConfigError("; ".join(f"override {k!r}: the field is {_MOVED[k]!r} now (the [space] section)"
                                    for k in moved))
    items.sort(key=lambda kv: kv[0] != "space.name")
    for key, value in items:
        section, _, name = key.partition(".")
        if section == "space" and name:
            cfg = _override_space(cfg, key, name, value)
            continue
        if section not in SECTIONS or not name:
            raise ConfigError(f"override {key!r}: use section.field with section in {', '.join(SECTIONS)}")
        sec = getattr(cfg, section)
        hints = get_type_hints(type(sec))
        if name not in hints:
            raise ConfigError(f"override {key!r}: [{section}] has no field {name!r}; "
                              f"known: {', '.join(sorted(hints))}")
        if isinstance(value, str) and hints[name] is not str:
            value = _parse_scalar(value)
        cfg = replace(cfg, **{section: replace(sec, **{name: _coerce(section, name, hints[name], value)})})
    return cfg


#: override names of fields that moved -> today's (an old name is an error that names the new one;
#: old config.json files move through _migrate)
_MOVED = {"model.space": "space.name", "model.m": "space.m"}


def _override_space(cfg: RunConfig, key: str, name: str, value: Any) -> RunConfig:
    d = dataclasses.asdict(cfg.space)
    if name == "name":
        value = str(value)
        if value == d["name"]:
            return cfg
        d = {"name": value}  # another space: its own defaults
    elif name not in d:
        raise ConfigError(f"override {key!r}: search space {d['name']!r} has no setting {name!r}; "
                          f"known: {', '.join(sorted(k for k in d if k != 'name')) or '(none)'}")
    else:
        if isinstance(value, str) and get_type_hints(type(cfg.space))[name] is not str:
            value = _parse_scalar(value)
        d[name] = value
    return replace(cfg, space=_space_section_from_dict(d))


def _split(item: str) -> tuple[str, str]:
    if "=" not in item:
        raise ConfigError(f"override {item!r} must look like section.field=value (e.g. train.epochs=5)")
    k, v = item.split("=", 1)
    return k.strip(), v.strip()


def _parse_scalar(v: str) -> Any:
    try:
        return tomllib.loads(f"x = {v}")["x"]
    except tomllib.TOMLDecodeError:
        return v


# -- validation: everything a run depends on, checked before anything is created --------------
#: (dotted key, test, rule); a key the schema lacks (an older or newer config) is skipped
_RULES: tuple[tuple[str, Any, str], ...] = (
    ("model.width", lambda v: v >= 1, "must be >= 1"),
    ("model.stacks", lambda v: v >= 1, "must be >= 1"),
    ("model.cells_per_stack", lambda v: v >= 1, "must be >= 1"),
    ("model.num_classes", lambda v: v >= 2, "must be >= 2"),
    ("model.bn_momentum", lambda v: 0 <= v <= 1, "must be in [0, 1]"),
    ("data.train_size", lambda v: v >= 0, "must be >= 0 (0 = the whole split)"),
    ("data.valid_size", lambda v: v >= 0, "must be >= 0 (0 = the whole split)"),
    ("data.test_size", lambda v: v >= 0, "must be >= 0 (0 = the whole split)"),
    ("data.batch_size", lambda v: v >= 1, "must be >= 1"),
    ("data.cutout", lambda v: v >= 0, "must be >= 0 (0 = no cutout)"),
    ("data.crop_padding", lambda v: v >= 0, "must be >= 0"),
    ("data.resolution", lambda v: v >= 1 and 32 % v == 0, "must divide 32 (32, 16, 8, 4, 2 or 1)"),
    ("data.order", lambda v: v in ("mixed", "source"), "must be 'mixed' (classes interleaved) or 'source'"),
    ("train.epochs", lambda v: v >= 1, "must be >= 1"),
    ("train.lr", lambda v: v > 0, "the learning rate must be > 0"),
    ("train.momentum", lambda v: v >= 0, "must be >= 0"),
    ("train.weight_decay", lambda v: v >= 0, "must be >= 0"),
    ("train.grad_clip", lambda v: v >= 0, "must be >= 0 (0 = no clipping)"),
    ("train.sampling", lambda v: v in ("shared", "per_cell"), "must be 'shared' or 'per_cell'"),
    ("train.checkpoint_every", lambda v: v >= 1, "must be >= 1"),
    ("train.checkpoint_interval_s", lambda v: v >= 0, "must be >= 0 (0 = only at epoch ends)"),
    ("train.num_threads", lambda v: v >= 0, "must be >= 0 (0 = torch's default)"),
    ("train.eval_every", lambda v: v >= 0, "must be >= 0 (epochs between tau evaluations; 0 = off)"),
    ("train.eval_candidates", lambda v: v >= 3, "must be >= 3 (candidates ranked at each tau evaluation)"),
    ("train.eval_images", lambda v: v >= 0, "must be >= 0 (0 = score.eval_size, the report's)"),
    ("score.candidates", lambda v: v >= 0, "must be >= 0 (0 = every distinct subnet)"),
    ("score.calib_batches", lambda v: v >= 1, "must be >= 1"),
    ("score.calib_batch_size", lambda v: v >= 1, "must be >= 1"),
    ("score.eval_split", lambda v: v in ("train", "valid", "test"), "must be 'train', 'valid' or 'test'"),
    ("score.eval_batch_size", lambda v: v >= 1, "must be >= 1"),
    ("score.eval_size", lambda v: v >= 0, "must be >= 0 (0 = the whole split)"),
    ("score.drop_lowest", lambda v: v >= 0, "must be >= 0"),
    ("score.group_size", lambda v: v >= 1, "must be >= 1 (1 = one by one)"),
    ("score.proxy_batch_size", lambda v: v >= 2, "must be >= 2 (images each zero-cost proxy scores on)"),
    ("truth.reduce", lambda v: v in ("mean", "random"), "must be 'mean' or 'random'"),
    ("truth.epochs", lambda v: v >= 1, "must be >= 1"),
    ("truth.seeds", lambda v: v >= 1, "must be >= 1"),
    ("truth.train_epochs", lambda v: v >= 0, "must be >= 0 (0 = train.epochs)"),
    ("truth.candidates", lambda v: v >= 0, "must be >= 0 (0 = every hash class of the space)"),
    ("truth.also", lambda v: all(s.strip() for s in v),
     "each entry names a truth source as truth.source does (measured, nb101 or a CSV path)"),
)


def config_problems(cfg: RunConfig) -> list[str]:
    """Every value of ``cfg`` that breaks a field rule (:data:`_RULES`, finite numbers, the
    device's form), one line each: the field, its value, the rule, how to set it. The checks
    against the registries (variant, space, protocol) and this machine's devices are
    :func:`rankbench.plan.validate_config`'s."""
    problems: list[str] = []

    def bad(key: str, value: Any, rule: str, fix: str | None = None) -> None:
        problems.append(f"{key} = {value!r}: {rule}; {fix or f'set it with --set {key}=...'}")

    nonfinite = set()
    for section in SECTIONS:
        sec = getattr(cfg, section)
        for f in fields(sec):
            v = getattr(sec, f.name)
            if isinstance(v, float) and not math.isfinite(v):
                nonfinite.add(f"{section}.{f.name}")
                bad(f"{section}.{f.name}", v, "must be a finite number")
    for key, ok, rule in _RULES:
        section, _, name = key.partition(".")
        sec = getattr(cfg, section, None)
        if key in nonfinite or sec is None or not hasattr(sec, name):
            continue
        if not ok(getattr(sec, name)):
            bad(key, getattr(sec, name), rule)
    if not re.fullmatch(DEVICE_PATTERN, cfg.train.device):
        bad("train.device", cfg.train.device, "must be auto, cpu, cuda or cuda:N",
            "use --device auto|cpu|cuda|cuda:N")
    return problems


#: the form of ``train.device``
DEVICE_PATTERN = r"auto|cpu|cuda(:\d+)?"


def raise_problems(problems: list[str]) -> None:
    """One :class:`ConfigError` listing every problem (nothing when there is none)."""
    if problems:
        head = "invalid config" + (f" ({len(problems)} problems)" if len(problems) > 1 else "")
        raise ConfigError(head + ": " + problems[0] if len(problems) == 1
                          else head + ":\n  " + "\n  ".join(problems))


def validate_config(cfg: RunConfig) -> RunConfig:
    """Check the field rules of ``cfg`` (:func:`config_problems`); returns ``cfg``. A run's
    whole check, registries and devices included, is :func:`rankbench.plan.validate_config`."""
    raise_problems(config_problems(cfg))
    return cfg
