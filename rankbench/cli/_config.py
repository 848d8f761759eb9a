"""What the config-driven commands (train, run, ablation, truth) share: the options that
pick and amend a preset, and the resolved config they give."""
from __future__ import annotations

import argparse
from typing import Any

from rankbench.cli import CLIError

DEFAULT_PRESET = "quick"


def add_config_options(p: argparse.ArgumentParser) -> None:
    """--preset, --m, --device, --set and --no-progress."""
    p.add_argument("--preset", default=DEFAULT_PRESET,
                   help=f"preset name or .toml path (rankbench list presets); default {DEFAULT_PRESET}, "
                        f"which runs on the bundled data")
    p.add_argument("--m", type=int, help="maximum number of active paths, 1..4 (model.m); default: the preset's")
    p.add_argument("--device", help="auto | cpu | cuda | cuda:N (train.device)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                   help="override any config field, e.g. --set score.eval_size=500 (repeatable; applied last)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def config_from_args(args: argparse.Namespace, named: dict[str, Any]):
    """The preset, then the named options that were given (``{"section.field": value}``, plus
    --m and --device), then the --set overrides; an unknown variant or space is an error."""
    from rankbench.config import ConfigError, apply_overrides, load_preset
    from rankbench.spaces import SPACES
    from rankbench.supernet import VARIANTS

    named = {**named, "model.m": args.m, "train.device": args.device}
    try:
        cfg = load_preset(args.preset)
        cfg = apply_overrides(cfg, {k: v for k, v in named.items() if v is not None})
        cfg = apply_overrides(cfg, args.overrides)
    except ConfigError as e:
        raise CLIError(str(e)) from None
    if cfg.model.variant not in VARIANTS:
        raise CLIError(f"unknown variant {cfg.model.variant!r}; variants: {', '.join(VARIANTS.names())}")
    if cfg.model.space not in SPACES:
        raise CLIError(f"unknown search space {cfg.model.space!r}; spaces: {', '.join(SPACES.names())}")
    return cfg
