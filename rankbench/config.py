"""Typed configuration: one frozen dataclass per concern, presets as TOML data.

A run's fully resolved :class:`RunConfig` is written into its run directory
(``config.json``) so that every number can be traced back and re-run. Overrides use dotted
names, ``train.epochs=5``; a wrong name or a wrong type fails loudly here.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import tomllib
from dataclasses import dataclass, field, fields, replace
from importlib import resources
from pathlib import Path
from typing import Any, get_type_hints


@dataclass(frozen=True)
class ModelConfig:
    """The supernet: search space, normalisation variant and NB101 skeleton size."""

    space: str = "s4"
    m: int = 4  # maximum number of active paths (candidate nodes 1..m)
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


@dataclass(frozen=True)
class TrainConfig:
    """Supernet training (defaults: the public MixPath code's hyper-parameters)."""

    epochs: int = 200
    lr: float = 0.025
    momentum: float = 0.9
    weight_decay: float = 3e-4  # not applied to BN parameters
    grad_clip: float = 5.0
    sampling: str = "shared"  # "shared": one subnet for all cells per step; "per_cell"
    seed: int = 2020
    device: str = "auto"  # "auto" | "cpu" | "cuda" | "cuda:N"
    amp: bool = True  # bf16 autocast on CUDA; ignored on CPU
    channels_last: bool = True  # NHWC memory format (faster on CUDA and, for narrow nets, on CPU)
    compile: bool = False  # torch.compile the supernet (CUDA)
    checkpoint_every: int = 1  # epochs between checkpoints
    num_threads: int = 0  # torch CPU threads; 0 = torch's default


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


@dataclass(frozen=True)
class RunConfig:
    preset: str = "paper"
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    score: ScoreConfig = field(default_factory=ScoreConfig)
    truth: TruthConfig = field(default_factory=TruthConfig)

    # -- serialisation -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RunConfig":
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
        blob = json.dumps({k: d[k] for k in keys}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    def training_fingerprint(self) -> str:
        """Everything that changes the trained weights (not scoring, truth or the device)."""
        d = self.to_dict()
        train = {k: v for k, v in d["train"].items() if k not in ("device", "checkpoint_every", "num_threads")}
        blob = json.dumps({"model": d["model"], "data": d["data"], "train": train}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


SECTIONS = {
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
    return value


def _section_from_dict(section: str, d: dict[str, Any]) -> Any:
    cls = SECTIONS[section]
    hints = get_type_hints(cls)
    names = {f.name for f in fields(cls)}
    unknown = set(d) - names
    if unknown:
        raise ConfigError(
            f"unknown field(s) in [{section}]: {', '.join(sorted(unknown))}; known: {', '.join(sorted(names))}"
        )
    return cls(**{k: _coerce(section, k, hints[k], v) for k, v in d.items()})


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


def apply_overrides(cfg: RunConfig, overrides: list[str] | dict[str, Any]) -> RunConfig:
    """Apply ``section.field=value`` overrides (CLI ``--set``) or a {dotted: value} dict."""
    items = overrides.items() if isinstance(overrides, dict) else [_split(o) for o in overrides]
    for key, value in items:
        if value is None:
            continue
        section, _, name = key.partition(".")
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
