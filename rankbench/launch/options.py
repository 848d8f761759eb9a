"""How jobs are launched: :class:`LauncherOptions`, from command-line options and an optional
TOML file's ``[launcher]`` table (options given on the command line win).

Only the standard library is imported here: ``rankbench --help`` stays instant and the options
are checked before submitit, torch or any data is touched.
"""
from __future__ import annotations

import dataclasses
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

__all__ = ["LAUNCHERS", "LauncherOptions", "MissingSubmitit", "require_submitit", "load_launcher_file",
           "parse_time_min", "INSTALL_HINT"]

#: the launchers ``--launcher`` accepts: submitit's LocalExecutor and its Slurm executor
LAUNCHERS = ("local", "slurm")
INSTALL_HINT = "pip install 'rankbench[cluster]' (or: pip install submitit)"
#: a local job's wall-clock limit when none is given (submitit's own default is 2 minutes)
LOCAL_DEFAULT_TIME_MIN = 7 * 24 * 60
SLURM_DEFAULT_TIME_MIN = 24 * 60


class MissingSubmitit(ImportError):
    """``--launcher`` without submitit installed."""


def require_submitit():
    """The ``submitit`` module, or :class:`MissingSubmitit` saying how to install it."""
    try:
        import submitit
    except ImportError:
        raise MissingSubmitit(f"--launcher needs submitit, an optional dependency: {INSTALL_HINT}") from None
    return submitit


@dataclass(frozen=True)
class LauncherOptions:
    """Where and how each training (or truth shard) runs as one submitit job.

    ``local``: submitit's LocalExecutor on this machine, ``jobs`` at once (default: one per
    device of ``devices``, else 1); ``devices`` (``cuda:0``, ``cuda:1``, ... or ``cpu``) are
    handed out round robin, a CUDA device as the job's only visible GPU.
    ``slurm``: submitit's Slurm executor, one job array per submission, ``array_parallelism``
    running at once; ``gpus_per_job`` > 1 trains each job with DDP over that many tasks.
    """

    kind: str
    jobs: int | None = None
    devices: tuple[str, ...] = ()
    time_min: int | None = None  # wall-clock limit per job (a requeue starts a new one)
    partition: str | None = None
    gpus_per_job: int = 1
    cpus_per_job: int | None = None
    mem_gb: float | None = None
    array_parallelism: int = 64
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    setup: tuple[str, ...] = ()  # shell lines run before each Slurm job (module load, venv ...)
    additional: Mapping[str, Any] = field(default_factory=dict)  # more sbatch options, verbatim
    max_requeues: int = 3  # timeouts / preemptions after which a job is given up
    folder: str | None = None  # submitit's logs and pickles (default: <runs root>/submitit/)
    poll_s: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in LAUNCHERS:
            raise ValueError(f"--launcher {self.kind!r}: use one of {', '.join(LAUNCHERS)}")
        if self.jobs is not None and self.jobs < 1:
            raise ValueError(f"--jobs must be >= 1, got {self.jobs}")
        for d in self.devices:
            if not re.fullmatch(r"cpu|cuda:\d+", d):
                raise ValueError(f"--devices {d!r}: give cpu or cuda:N, comma-separated (e.g. cuda:0,cuda:1)")
        if self.devices and self.kind != "local":
            raise ValueError("--devices is for --launcher local (Slurm allocates GPUs: --gpus-per-job)")
        if len({d.partition(":")[0] for d in self.devices}) > 1:
            raise ValueError(f"--devices {','.join(self.devices)}: all cpu or all cuda (the run directories "
                             f"depend on the device type)")
        if self.time_min is not None and self.time_min < 1:
            raise ValueError(f"launcher time must be >= 1 minute, got {self.time_min}")
        for name in ("gpus_per_job", "max_requeues"):
            if getattr(self, name) < 0:
                raise ValueError(f"launcher {name} must be >= 0, got {getattr(self, name)}")
        if self.array_parallelism < 1:
            raise ValueError(f"--array-parallelism must be >= 1, got {self.array_parallelism}")
        if self.cpus_per_job is not None and self.cpus_per_job < 1:
            raise ValueError(f"--cpus-per-job must be >= 1, got {self.cpus_per_job}")

    @property
    def parallel(self) -> int:
        """Local jobs at once."""
        return self.jobs or max(1, len(self.devices))

    @property
    def timeout_min(self) -> int:
        if self.time_min is not None:
            return self.time_min
        return LOCAL_DEFAULT_TIME_MIN if self.kind == "local" else SLURM_DEFAULT_TIME_MIN

    def describe(self) -> str:
        if self.kind == "local":
            where = f"devices {','.join(self.devices)}" if self.devices else "the config's device"
            return f"local (submitit LocalExecutor): {self.parallel} job(s) at once on {where}"
        parts = [f"partition {self.partition or '(cluster default)'}", f"{self.timeout_min} min",
                 f"{self.gpus_per_job} GPU(s) per job", f"at most {self.array_parallelism} at once"]
        return "slurm (submitit): " + ", ".join(parts)

    @classmethod
    def build(cls, kind: str, file: str | Path | None = None, **given: Any) -> "LauncherOptions":
        """The file's ``[launcher]`` table (if any), then every option of ``given`` that is not None."""
        values: dict[str, Any] = load_launcher_file(file) if file else {}
        values.update({k: v for k, v in given.items() if v is not None})
        values["kind"] = kind or values.get("kind")
        return cls(**values)


def parse_time_min(v: Any) -> int:
    """Minutes from a number or a Slurm time: ``90``, ``"90"``, ``"4h"``, ``"MM:SS"``,
    ``"H:MM:SS"``, ``"D-H"``, ``"D-H:MM"``, ``"D-H:MM:SS"`` (seconds round up)."""
    if isinstance(v, bool):
        raise ValueError(f"time {v!r}: give minutes or H:MM:SS")
    if isinstance(v, (int, float)):
        return int(v)
    s = str(v).strip()
    m = re.fullmatch(r"(\d+)\s*([mhd]?)", s)
    if m:
        return int(m.group(1)) * {"": 1, "m": 1, "h": 60, "d": 1440}[m.group(2)]
    days, _, rest = s.rpartition("-") if "-" in s else ("", "", s)
    parts = rest.split(":")
    if (days and not days.isdigit()) or not all(p.isdigit() for p in parts) or len(parts) > 3:
        raise ValueError(f"time {v!r}: give minutes (90), H:MM:SS (1:30:00), D-HH:MM:SS or 4h")
    n = [int(p) for p in parts]
    if days:  # D-H, D-H:M, D-H:M:S
        h, mi, sec = (n + [0, 0])[:3]
        d = int(days)
    else:  # M:S or H:M:S
        d, (h, mi, sec) = 0, ([0] + n if len(n) == 2 else n)
    return d * 1440 + h * 60 + mi + (1 if sec else 0)


_FIELDS = {f.name for f in dataclasses.fields(LauncherOptions)}
#: TOML spellings accepted besides the field names
_ALIASES = {"time": "time_min", "gpus": "gpus_per_job", "cpus": "cpus_per_job", "mem": "mem_gb",
            "launcher": "kind", "slurm_additional_parameters": "additional"}


def load_launcher_file(path: str | Path) -> dict[str, Any]:
    """The ``[launcher]`` table of a TOML file, as option values (``time`` may be "4:00:00")."""
    p = Path(path).expanduser()
    try:
        data = tomllib.loads(p.read_text())
    except FileNotFoundError:
        raise ValueError(f"--launcher-config {path}: no such file") from None
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"--launcher-config {path}: not valid TOML ({e})") from None
    table = data.get("launcher")
    if not isinstance(table, dict):
        raise ValueError(f"--launcher-config {path}: no [launcher] table (e.g. [launcher] partition = \"gpu\")")
    out: dict[str, Any] = {}
    for k, v in table.items():
        name = _ALIASES.get(k, k)
        if name not in _FIELDS:
            known = sorted((_FIELDS | set(_ALIASES)) - {"poll_s"})
            raise ValueError(f"{path}: [launcher] {k} is not a launcher option; known: {', '.join(known)}")
        if name == "time_min":
            v = parse_time_min(v)
        elif name in ("devices", "setup"):
            v = tuple(v.split(",")) if isinstance(v, str) and name == "devices" else tuple(v)
        out[name] = v
    return out
