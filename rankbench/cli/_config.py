"""What the config-driven commands (train, run, ablation, truth) share: the options that
pick and amend a preset, the resolved and validated config they give, and ``--dry-run``.

Only the standard library is imported at parse time: ``rankbench --help`` stays instant.
"""
from __future__ import annotations

import argparse
import json
import math
from typing import Any

from rankbench.cli import CLIError

DEFAULT_PRESET = "quick"


def add_config_options(p: argparse.ArgumentParser) -> None:
    """--preset, --space, --m, --device, --threads, --set, --no-progress and --dry-run."""
    p.add_argument("--preset", default=None,
                   help=f"preset name or .toml path (rankbench list presets); default {DEFAULT_PRESET} "
                        f"(with --space X: X-{DEFAULT_PRESET} where such a preset exists, e.g. "
                        f"nb101-{DEFAULT_PRESET}), which runs on the bundled data")
    p.add_argument("--space", help="search space (space.name; rankbench list spaces); default: the preset's")
    p.add_argument("--m", type=int, help="S4: maximum number of active paths, 1..4 (space.m); default: the "
                                         "preset's")
    p.add_argument("--device", help="auto | cpu | cuda | cuda:N (train.device)")
    p.add_argument("--threads", type=int, metavar="N",
                   help="torch CPU threads (train.num_threads; 0 = torch's default). On CPU it changes the "
                        "order of reductions, so it is part of the training fingerprint")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                   help="override any config field, e.g. --set score.eval_size=500 (repeatable; applied last)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--dry-run", action="store_true",
                   help="print the fully resolved config (TOML, usable as --preset), where the results would "
                        "go, whether a run there would be reused, and the truth it would use; create nothing, "
                        "run nothing (the device is not checked; the folders to write are)")


def add_tensorboard_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tensorboard", action="store_true",
                   help="write TensorBoard event files into the run directory (train.tensorboard; "
                        "needs pip install 'rankbench[tb]')")


def default_preset(space: str | None) -> str:
    """``quick``, or ``<space>-quick`` for ``--space`` when that preset exists: the smoke-scale
    preset of the chosen space (its truth, candidates and scale), not S4's."""
    if space:
        from rankbench.config import list_presets

        if f"{space}-{DEFAULT_PRESET}" in list_presets():
            return f"{space}-{DEFAULT_PRESET}"
    return DEFAULT_PRESET


def config_from_args(args: argparse.Namespace, named: dict[str, Any]):
    """The preset, then the named options that were given (``{"section.field": value}``, plus
    --space, --m, --device and --tensorboard), then the --set overrides; then every value is
    validated (:func:`rankbench.plan.validate_config`), before anything is created."""
    from rankbench.config import ConfigError, apply_overrides, load_preset
    from rankbench.plan import validate_config

    named = {**named, "space.name": getattr(args, "space", None), "space.m": getattr(args, "m", None),
             "train.device": args.device, "train.num_threads": getattr(args, "threads", None),
             "train.tensorboard": True if getattr(args, "tensorboard", False) else None}
    try:
        if args.preset is None:
            args.preset = default_preset(getattr(args, "space", None))
        cfg = load_preset(args.preset)
        cfg = apply_overrides(cfg, {k: v for k, v in named.items() if v is not None})
        cfg = apply_overrides(cfg, args.overrides)
        validate_config(cfg, device_check=not getattr(args, "dry_run", False))
    except ConfigError as e:
        raise CLIError(str(e)) from None
    return cfg


# -- dry run ---------------------------------------------------------------------------------
def config_toml(cfg) -> str:
    """``cfg`` as TOML that :func:`rankbench.config.load_preset` reads back to the same config."""
    d = cfg.to_dict()
    lines = [f"{k} = {_toml_value(v)}" for k, v in d.items() if not isinstance(v, dict)]
    for section, values in d.items():
        if isinstance(values, dict):
            lines += ["", f"[{section}]"] + [f"{k} = {_toml_value(v)}" for k, v in values.items()]
    return "\n".join(lines)


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{json.dumps(str(k))} = {_toml_value(x)}" for k, x in v.items()) + " }"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return json.dumps(str(v))  # a JSON string is a TOML basic string


def print_dry_run(cfg, where: list[tuple[str, object]]) -> int:
    """Print the resolved config and ``where`` (label, text) as TOML comments (a multi-line text
    continues on indented comment lines); create nothing."""
    from rankbench.cli import EXIT_OK

    print("# dry run: nothing was created or run")
    for label, text in where:
        first, *rest = str(text).splitlines() or [""]
        print(f"# {label}: {first}")
        for line in rest:
            print(f"#   {line}")
    print(config_toml(cfg))
    return EXIT_OK
