"""Score candidate subnets with a trained supernet: optional BN calibration, then top-1
accuracy and loss on a held-out split, with a resumable per-run cache.

Fast by construction: the evaluation images are normalised once into one tensor on the
network's device, the calibration batches are drawn once, candidates are scored in groups of
:data:`GROUP_SIZE` that compute the stem and the first cell's paths once per batch
(:mod:`rankbench.scoring.batched`, the same numbers as one by one), and the BN state is
restored in memory (no deep copy, no reload). A network chosen several times (``paper``
protocol) is scored once. Scoring runs in channels-last memory format (about 2x faster on
CPU for these small-channel networks; the network is converted back afterwards).

Cache: ``run_dir/scores/<key>.csv`` holds one row per distinct network already scored, by
``arch.name``; ``<key>`` hashes everything that changes a score (see :func:`score_key`;
:data:`SCORE_FIELDS_WITHOUT_EFFECT` lists the score settings left out, and why). The file is
rewritten atomically after each group (one by one: every :data:`FLUSH_EVERY` candidates
and when scoring stops for any reason), so a rerun, or a run after an interruption, scores
only the missing networks.
"""
from __future__ import annotations

import json
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Any, Iterable, Sequence

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from rankbench import distributed
from rankbench._io import atomic_path, short_digest, write_json
from rankbench.config import DataConfig
from rankbench.data import BatchLoader, normalize
from rankbench.nb101.spec import matrix_to_string
from rankbench.numerics import check_same_platform
from rankbench.scoring.batched import score_group, supports_sharing
from rankbench.scoring.calibrate import BNState, calibrate_bn
from rankbench.scoring.protocols import Protocol, get_protocol

__all__ = [
    "COLUMNS", "FLUSH_EVERY", "SCORE_VERSION", "SCORE_FIELDS_WITHOUT_EFFECT", "CALIBRATION_SCORE_FIELDS",
    "score_candidates", "evaluate", "eval_tensors", "calibration_batches", "calibration_data", "score_key",
    "score_cache_path", "subnet_columns", "arch_name",
]

#: bump when a change to this module changes scores: old caches are then not reused
SCORE_VERSION = 2
#: the cache is rewritten after this many newly scored subnets (per-candidate loop)
FLUSH_EVERY = 16
#: candidates scored together, sharing the stem and first-cell work on each batch
#: (:mod:`rankbench.scoring.batched`); the cache is rewritten after each group
GROUP_SIZE = 32
#: columns of a scores frame (one row per candidate, in candidate order); ``subnet`` is S4's
#: code (== ``name`` for S4), ``num_paths`` S4's path count (empty for other spaces)
COLUMNS = ["name", "subnet", "num_paths", "hash", "adjacency", "ops", "accuracy", "loss", "calibrated"]
#: ScoreConfig fields that cannot change a subnet's score, so not in :func:`score_key`
#: (tests/test_scoring.py checks that every other field changes the key)
SCORE_FIELDS_WITHOUT_EFFECT = {
    "candidates": "which subnets are scored; each one's score is independent of the others",
    "drop_lowest": "a ranking metric, applied after scoring",
    "group_size": "scoring candidates in groups gives the per-candidate numbers bit for bit",
    "protocol": "its effect is the effective score config and its calibration rule, both in the key",
    "proxies": "zero-cost proxies are reference rankers of the report, not supernet scores",
    "proxy_batch_size": "zero-cost proxies are reference rankers of the report, not supernet scores",
}
#: ScoreConfig fields that change a score only when calibrating
CALIBRATION_SCORE_FIELDS = ("calib_batches", "calib_batch_size")


def _device_of(net: nn.Module) -> torch.device:
    for p in net.parameters():
        return p.device
    return torch.device("cpu")


def _split(splits: Any, name: str):
    try:
        return splits[name]
    except (KeyError, TypeError):
        part = getattr(splits, name, None)
        if part is None:
            raise KeyError(f"no split {name!r}; splits: train, valid, test") from None
        return part


def arch_name(arch) -> str:
    """``arch.name`` (unique within its space), or S4's ``code`` where ``name`` is missing."""
    name = getattr(arch, "name", None)
    return str(name) if name is not None else str(arch.code)


def subnet_columns(arch) -> dict[str, Any]:
    """The identifying columns of an architecture: name, S4 code and paths (where it has
    them), NB101 hash, pruned adjacency and ops."""
    spec = arch.spec
    num_paths = getattr(arch, "num_paths", None)
    return {
        "name": arch_name(arch),
        "subnet": str(getattr(arch, "code", arch_name(arch))),
        "num_paths": int(num_paths) if num_paths is not None else None,
        "hash": spec.hash,
        "adjacency": matrix_to_string(spec.matrix),
        "ops": ",".join(spec.ops),
    }


# -- data ------------------------------------------------------------------------------------
def eval_tensors(splits: Any, split: str, *, size: int = 0, seed: int = 0,
                 device: str | torch.device = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """The evaluation set, normalised once: float32 images and int64 labels on ``device``.

    ``size`` > 0 keeps a deterministic subset (a permutation seeded by ``seed``, kept in
    the split's order)."""
    part = _split(splits, split)
    images, labels = torch.as_tensor(part.images), torch.as_tensor(part.labels).long()
    n = len(labels)
    if size and size < n:
        g = torch.Generator().manual_seed(int(seed))
        idx = torch.sort(torch.randperm(n, generator=g)[:size]).values
        images, labels = images[idx], labels[idx]
    return normalize(images.to(device)), labels.to(device)


def calibration_batches(splits: Any, split: str, *, num_batches: int, batch_size: int, seed: int = 0,
                        augment: bool = False, data_cfg: Any = None,
                        device: str | torch.device = "cpu") -> list[torch.Tensor]:
    """``num_batches`` batches of ``batch_size`` images from ``split``, drawn once (shuffled
    with ``seed``, full batches only); ``num_batches = 0``: the whole split in its order (the
    last batch partial), as a test loader with ``shuffle=False`` gives it. With ``augment``
    the training transforms of ``data_cfg`` are applied (seeded); without, the evaluation
    transform (normalisation only), so the images equal :func:`eval_tensors`' exactly.
    Normalised float32 tensors on ``device``."""
    if num_batches < 0 or batch_size < 1:
        raise ValueError(f"calibration needs calib_batches >= 0 (0 = the whole split) and calib_batch_size >= 1, "
                         f"got {num_batches} and {batch_size}")
    dc = data_cfg or DataConfig()
    part = _split(splits, split)
    n = len(part.labels)
    whole = num_batches == 0
    bs = min(int(batch_size), n)
    loader = BatchLoader(part.images, part.labels, bs, shuffle=not whole, augment=augment,
                         crop_padding=dc.crop_padding, flip=dc.flip, cutout=dc.cutout, seed=seed,
                         drop_last=not whole, device=device)
    out = []
    for x, _ in loader:
        out.append(x)
        if len(out) == num_batches:
            break
    if whole:
        return out
    if len(out) < num_batches:
        warnings.warn(f"BN calibration: the {split} split ({n} images) holds only {len(out)} batches of "
                      f"{bs}; calibrating on {len(out)} instead of {num_batches}", stacklevel=2)
    return out


@torch.no_grad()
def evaluate(net: nn.Module, arch: Any, images: torch.Tensor, labels: torch.Tensor,
             batch_size: int = 500) -> tuple[float, float]:
    """(top-1 accuracy as a fraction, mean cross-entropy) of ``net(x, arch)`` in eval mode
    (``net(x)`` when ``arch`` is None). Module modes are restored afterwards."""
    modes = [(m, m.training) for m in net.modules()]
    net.eval()
    try:
        correct = torch.zeros((), dtype=torch.int64, device=labels.device)
        loss = torch.zeros((), dtype=torch.float64, device=labels.device)
        for i in range(0, len(labels), int(batch_size)):
            x, y = images[i:i + batch_size], labels[i:i + batch_size]
            out = (net(x) if arch is None else net(x, arch)).float()
            loss += F.cross_entropy(out, y, reduction="sum").double()
            correct += (out.argmax(1) == y).sum()
    finally:
        for m, training in modes:
            m.training = training
    n = len(labels)
    return int(correct.item()) / n, float(loss.item()) / n


def calibration_data(splits: Any, protocol: "str | Protocol", score_cfg: Any, *, data_cfg: Any = None,
                     device: str | torch.device = "cpu") -> list[torch.Tensor]:
    """The BN calibration batches ``protocol`` uses for ``score_cfg`` (its split, transform,
    batches and batch size: :meth:`Protocol.score_config` resolved), as a list of tensors."""
    proto = get_protocol(protocol)
    s = proto.score_config(score_cfg)
    return calibration_batches(splits, proto.calib_split, num_batches=s.calib_batches, batch_size=s.calib_batch_size,
                               seed=s.seed, augment=proto.calib_augment, data_cfg=data_cfg, device=device)


# -- cache -----------------------------------------------------------------------------------
def _key_content(cfg: Any, protocol: Protocol, calibrate: bool, weights_id: str = "",
                 channels_last: bool = True, training_fingerprint: str | None = None) -> dict[str, Any]:
    s = protocol.score_config(cfg.score)
    content: dict[str, Any] = {
        "version": SCORE_VERSION,
        "memory_format": "channels_last" if channels_last else "contiguous",
        "training": training_fingerprint or cfg.training_fingerprint(),
        "weights": weights_id,
        "calibrate": bool(calibrate),
        "eval": {"split": s.eval_split, "size": s.eval_size, "batch_size": s.eval_batch_size,
                 "seed": s.seed},
    }
    if calibrate:
        content["calibration"] = {
            "split": protocol.calib_split, "reset": protocol.calib_reset, "augment": protocol.calib_augment,
            "batches": s.calib_batches, "batch_size": s.calib_batch_size, "seed": s.seed,
        }
    return content


def score_key(cfg: Any, calibrate: bool, protocol: "str | Protocol | None" = None, *,
              weights_id: str = "", channels_last: bool = True, training_fingerprint: str | None = None) -> str:
    """The cache key of a scoring setup: a hash of what changes a subnet's score.

    That is the trained weights (training fingerprint, and ``weights_id``, e.g. the finished
    training's stamp), the evaluation split, subset, batch size and seed, and, when
    calibrating, the calibration data, batches and reset rule, all as ``protocol`` resolves
    them (:meth:`Protocol.score_config`). Not the candidate list: each subnet's score is
    independent of the others (the BN state is restored between candidates), so runs with
    different candidate lists share cached subnets. Not the truth or the ranking metrics
    either (:data:`SCORE_FIELDS_WITHOUT_EFFECT`). ``training_fingerprint``: ``cfg``'s, when the
    caller computed it already (a plan)."""
    proto = get_protocol(protocol or cfg.score.protocol)
    return ("calib-" if calibrate else "nocalib-") + short_digest(
        _key_content(cfg, proto, calibrate, weights_id, channels_last, training_fingerprint))


def score_cache_path(run_dir: str | Path, cfg: Any, calibrate: bool,
                     protocol: "str | Protocol | None" = None, *, channels_last: bool = True,
                     platform: dict | None = None, training_fingerprint: str | None = None) -> Path:
    """``run_dir/scores/<key>.csv`` for this setup; writes ``<key>.json`` describing the key
    (and ``platform``, the compute platform the scores are made on).

    The weights are identified by the run's ``train_done.json`` as well as the training
    fingerprint, so a retrained run never reuses scores of earlier weights."""
    run_dir = Path(run_dir)
    done = run_dir / "train_done.json"
    weights_id = short_digest(done.read_bytes()) if done.exists() else ""
    proto = get_protocol(protocol or cfg.score.protocol)
    fp = training_fingerprint or cfg.training_fingerprint()
    key = score_key(cfg, calibrate, proto, weights_id=weights_id, channels_last=channels_last, training_fingerprint=fp)
    path = run_dir / "scores" / f"{key}.csv"
    meta = path.with_suffix(".json")
    if not meta.exists():
        write_json(meta, {"key": key, **_key_content(cfg, proto, calibrate, weights_id, channels_last, fp),
                          "protocol": asdict(proto), **({"platform": platform} if platform else {})})
    return path


def check_score_cache_platform(path: str | Path, platform: dict) -> str | None:
    """Before scores cached at ``path`` are reused: None when they were made on ``platform``
    (or there are none yet); else :class:`rankbench.numerics.PlatformMismatch`, or with the
    platform override the note to record."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        recorded = json.loads(path.with_suffix(".json").read_text()).get("platform")
    except (OSError, ValueError):
        recorded = None
    return check_same_platform(f"the score cache {path.parent.parent.name}/scores/{path.name}", recorded, platform)


def _read_cache(path: Path | None, calibrate: bool) -> dict[str, dict[str, Any]]:
    if path is None or not path.exists():
        return {}
    try:
        df = pd.read_csv(path, dtype={"name": str, "subnet": str, "hash": str, "adjacency": str, "ops": str})
        missing = set(COLUMNS) - set(df.columns)
        if missing:
            raise ValueError(f"missing columns {sorted(missing)}")
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        warnings.warn(f"ignoring unreadable score cache {path} ({e}); scoring again", stacklevel=3)
        return {}
    rows = {}
    for r in df[COLUMNS].to_dict("records"):
        r["num_paths"] = int(r["num_paths"]) if pd.notna(r["num_paths"]) else None
        r["accuracy"], r["loss"] = float(r["accuracy"]), float(r["loss"])
        r["calibrated"] = bool(calibrate)
        rows[r["name"]] = r
    return rows


def _write_cache(path: Path, rows: dict[str, dict[str, Any]]) -> None:
    with atomic_path(path, ".csv") as tmp:
        pd.DataFrame(list(rows.values()), columns=COLUMNS).to_csv(tmp, index=False)


# -- scoring ---------------------------------------------------------------------------------
def score_candidates(net: nn.Module, candidates: Iterable, splits: Any, score_cfg: Any, *, calibrate: bool,
                     protocol: "str | Protocol | None" = None, data_cfg: Any = None,
                     cache_path: str | Path | None = None, progress: bool = True,
                     channels_last: bool = True, group_size: int | None = None) -> pd.DataFrame:
    """Score each candidate architecture with the supernet ``net``.

    For each distinct candidate (by ``arch.name``): with ``calibrate``, re-estimate the BNs
    it uses (:func:`~rankbench.scoring.calibrate.calibrate_bn`, the protocol's data and reset
    rule: :func:`calibration_data`), then measure top-1 accuracy (a fraction) and mean loss
    on ``score_cfg.eval_split`` (``eval_size`` > 0: a fixed subset) in eval mode; then
    restore the BN state in memory. What the protocol fixes overrides ``score_cfg``
    (:meth:`Protocol.score_config`; pass the effective config to see it); ``data_cfg`` gives
    the augmentation when the protocol calibrates with training transforms.

    Returns one row per candidate, in order (repeats included), with :data:`COLUMNS`.
    Deterministic for a seed. With ``cache_path`` the scored subnets are cached there and
    only the missing ones are scored (see the module docstring). ``channels_last`` runs the
    forward passes in that memory format (faster; the same numbers up to float rounding; a
    cache is per format, see :func:`score_key`). Candidates are scored ``group_size`` at a
    time sharing the stem and first-cell work (:mod:`rankbench.scoring.batched`; the same
    numbers as one by one); ``group_size=1`` scores them one by one. Default:
    ``score_cfg.group_size`` (:data:`GROUP_SIZE` when it has none).
    """
    proto = get_protocol(protocol or score_cfg.protocol)
    score_cfg = proto.score_config(score_cfg)
    if group_size is None:
        group_size = getattr(score_cfg, "group_size", GROUP_SIZE)
    if int(group_size) < 1:
        raise ValueError(f"score.group_size must be >= 1 (1 = one candidate at a time), got {group_size}")
    candidates = list(candidates)
    if not candidates:
        raise ValueError("no candidates to score")
    cache = Path(cache_path) if cache_path is not None else None
    rows = _read_cache(cache, calibrate)
    distinct: dict[str, Any] = {}
    for a in candidates:
        distinct.setdefault(arch_name(a), a)
    todo = [a for name, a in distinct.items() if name not in rows]
    if todo and distributed.is_distributed():  # under torchrun: shard, gather, rank 0 writes the cache
        def work(mine: list) -> dict:
            part: dict = {}
            _score_into(part, net, mine, splits, score_cfg, proto, calibrate=calibrate, data_cfg=data_cfg,
                        cache=None, progress=progress and distributed.is_main(), channels_last=channels_last,
                        group_size=group_size)
            return part

        rows.update(distributed.gather_sharded(todo, work, key=arch_name))
        if cache is not None and distributed.is_main():
            _write_cache(cache, rows)
        distributed.barrier()
    elif todo:
        _score_into(rows, net, todo, splits, score_cfg, proto, calibrate=calibrate, data_cfg=data_cfg,
                    cache=cache, progress=progress, channels_last=channels_last, group_size=group_size)
    out = []
    for a in candidates:
        r = rows[arch_name(a)]
        out.append({**r, "calibrated": bool(calibrate)})
    return pd.DataFrame(out, columns=COLUMNS)


def _score_into(rows: dict, net: nn.Module, todo: Sequence, splits: Any, score_cfg: Any, proto: Protocol, *,
                calibrate: bool, data_cfg: Any, cache: Path | None, progress: bool,
                channels_last: bool = True, group_size: int = GROUP_SIZE) -> None:
    device = _device_of(net)
    images, labels = eval_tensors(splits, score_cfg.eval_split, size=score_cfg.eval_size, seed=score_cfg.seed,
                                  device=device)
    if channels_last and images.dim() == 4:
        images = images.contiguous(memory_format=torch.channels_last)
    calib = None
    if calibrate and _calibrates_on_eval_images(proto, score_cfg, len(_split(splits, score_cfg.eval_split).labels)):
        calib = list(images.split(int(score_cfg.calib_batch_size)))  # the same tensors, no copy
    elif calibrate:
        calib = calibration_data(splits, proto, score_cfg, data_cfg=data_cfg, device=device)
    restore_format = False
    if channels_last and images.dim() == 4:
        calib = [b.contiguous(memory_format=torch.channels_last) for b in calib] if calib is not None else None
        restore_format = _to_channels_last(net)
    share = group_size > 1 and supports_sharing(net)
    state = BNState(net) if calibrate and not share else None  # one by one: restore in memory
    groups = [todo[i:i + group_size] for i in range(0, len(todo), group_size)] if share else [[s] for s in todo]
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(todo), desc=f"scoring ({'calibrated' if calibrate else 'no calibration'})",
                   unit="subnet", leave=False)
    new = 0
    try:
        for group in groups:
            if share:
                results = score_group(net, group, images, labels, calib=calib, reset=proto.calib_reset,
                                      batch_size=score_cfg.eval_batch_size)
            else:
                s = group[0]
                # calib is None exactly when not calibrate
                touched = calibrate_bn(net, s, calib, reset=proto.calib_reset) if calib is not None else []
                try:
                    results = [evaluate(net, s, images, labels, score_cfg.eval_batch_size)]
                finally:
                    if state is not None:
                        state.restore(touched)
            for s, (acc, loss) in zip(group, results):
                rows[arch_name(s)] = {**subnet_columns(s), "accuracy": acc, "loss": loss, "calibrated": bool(calibrate)}
            new += len(group)
            if bar is not None:
                bar.update(len(group))
            if cache is not None and (share or new % FLUSH_EVERY == 0):
                _write_cache(cache, rows)
    finally:
        if bar is not None:
            bar.close()
        if restore_format:
            net.to(memory_format=torch.contiguous_format)  # type: ignore[call-overload]  # not in torch's stub
        if cache is not None and new and not share and new % FLUSH_EVERY:
            _write_cache(cache, rows)


def _calibrates_on_eval_images(proto: Protocol, score_cfg: Any, n_split: int) -> bool:
    """True when the calibration data are the evaluation images in order (``paper``: the whole
    test split, un-augmented), so the evaluation tensor can be sliced instead of copied."""
    return (score_cfg.calib_batches == 0 and not proto.calib_augment and proto.calib_split == score_cfg.eval_split
            and (score_cfg.eval_size == 0 or score_cfg.eval_size >= n_split))


def _to_channels_last(net: nn.Module) -> bool:
    """Convert ``net``'s 4-d weights to channels-last; True if they were all contiguous (so
    that converting back restores them exactly as they were)."""
    four_d = [p for p in list(net.parameters()) + list(net.buffers()) if p.dim() == 4]
    was_contiguous = all(p.is_contiguous() for p in four_d)
    net.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # not in torch's stub
    return was_contiguous

