"""``compute_proxies``: zero-cost proxies of many candidates, cached and resumable.

Each candidate's stand-alone NB101 network (:func:`rankbench.nb101.network.build_network`) is
built at the size the truth was measured at (the run's ``model.width``, ``stacks``,
``cells_per_stack``, ``num_classes``), initialised from ``seed`` (the same seed for every
candidate: a network depends only on its cell and the seed), and scored on one batch of the
run's training split (``batch_size`` images drawn from ``data`` with ``seed``). The default
batch of 64 is zero-cost-nas's for NAS-Bench-201 (``nasbench2_pred.py``); its NB101 script
(``nasbench1_pred.py``) defaults to 256: pass ``batch_size=256`` to match it.

Cache: a long-format CSV (``hash,proxy,setup,value,device``), one row per (candidate hash,
proxy, setup digest), appended after each candidate, so that an interrupted computation resumes
where it stopped and a new proxy or a new candidate costs only itself. The setup digest covers
everything that changes a value (network size, resolution, batch size, the batch's checksum,
seed, the formulas' version); ``<cache>.setups.json`` says what each digest is.
"""
from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from rankbench._io import write_json
from rankbench.data.loader import normalize
from rankbench.nb101.network import build_network
from rankbench.proxies._base import Probe, get_proxy, list_proxies

__all__ = ["FORMULAS_VERSION", "ProxySetup", "compute_proxies", "proxy_reference_ranker", "proxy_reference_scores",
           "select_batch"]

#: bump when a formula changes: old cache rows then no longer match
FORMULAS_VERSION = 1
CACHE_COLUMNS = ("hash", "proxy", "setup", "value", "device")


@dataclass(frozen=True)
class ProxySetup:
    """Everything a proxy value depends on besides the cell and the proxy."""

    width: int
    stacks: int
    cells_per_stack: int
    num_classes: int
    resolution: int
    batch_size: int
    batch_checksum: str  # sha256 of the batch's image bytes then labels, first 12 hex
    seed: int
    formulas: int = FORMULAS_VERSION

    @property
    def digest(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:12]

    def describe(self) -> dict[str, Any]:
        return {**asdict(self), "digest": self.digest,
                "network": "nasbench-pytorch Network (rankbench.nb101.network.build_network), "
                           "BatchNorm in train mode; synflow without BN, float64",
                "data": f"{self.batch_size} images of the run's training split (seeded draw), "
                        f"standardised with the CIFAR-10 mean/std"}


def _batch_checksum(x: torch.Tensor, y: torch.Tensor) -> str:
    h = hashlib.sha256()
    h.update(str(x.dtype).encode())
    h.update(x.detach().cpu().contiguous().numpy().tobytes())
    h.update(y.detach().cpu().numpy().astype("<i8").tobytes())
    return h.hexdigest()[:12]


def select_batch(data: Any, batch_size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch_size`` (images, labels) of ``data``, an ``(images, labels)`` pair or an
    ``ImageSet``: all of it when it holds exactly ``batch_size``, else a draw without
    replacement seeded by ``seed``."""
    x, y = (data.images, data.labels) if hasattr(data, "images") else data
    x, y = torch.as_tensor(x), torch.as_tensor(y, dtype=torch.int64)
    if len(x) != len(y):
        raise ValueError(f"data holds {len(x)} images but {len(y)} labels")
    if batch_size < 2 or batch_size > len(x):
        raise ValueError(f"batch_size must be in 2..{len(x)} (the images in data), got {batch_size}")
    if len(x) > batch_size:
        idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(int(seed)))[:batch_size]
        x, y = x[idx], y[idx]
    return x.contiguous(), y.contiguous()


def _model_size(model_cfg: Any) -> tuple[int, int, int, int]:
    """(width, stacks, cells_per_stack, num_classes) of a ModelConfig (or NetworkSize)."""
    width = getattr(model_cfg, "width", None) or model_cfg.stem_channels
    return (int(width), int(model_cfg.stacks), int(model_cfg.cells_per_stack),
            int(getattr(model_cfg, "num_classes", 10)))


class _Cache:
    """The CSV cache: read once (a torn last line is skipped), then appended to."""

    def __init__(self, path: str | os.PathLike | None):
        self.path = Path(path) if path is not None else None
        self.values: dict[tuple[str, str, str], float] = {}
        if self.path is not None and self.path.exists():
            with open(self.path, newline="") as f:
                for row in csv.reader(f):
                    if len(row) != len(CACHE_COLUMNS) or row[0] == "hash":
                        continue
                    try:
                        self.values[(row[0], row[1], row[2])] = float(row[3])
                    except ValueError:
                        continue

    def get(self, h: str, proxy: str, setup: str) -> float | None:
        return self.values.get((h, proxy, setup))

    def add(self, h: str, setup: str, device: str, values: dict[str, float]) -> None:
        for name, v in values.items():
            self.values[(h, name, setup)] = v
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        new = not self.path.exists() or self.path.stat().st_size == 0
        with open(self.path, "a", newline="") as f:
            if not new:  # a torn last line must not swallow the next row
                with open(self.path, "rb") as r:
                    r.seek(-1, os.SEEK_END)
                    if r.read(1) != b"\n":
                        f.write("\n")
            w = csv.writer(f, lineterminator="\n")
            if new:
                w.writerow(CACHE_COLUMNS)
            for name, v in values.items():
                w.writerow([h, name, setup, repr(float(v)), device])

    def record_setup(self, setup: ProxySetup) -> None:
        if self.path is None:
            return
        side = self.path.with_name(self.path.name + ".setups.json")
        known = json.loads(side.read_text()) if side.exists() else {}
        if setup.digest not in known:
            known[setup.digest] = setup.describe()
            write_json(side, known)


def _score_one(spec: Any, names: Sequence[str], size: tuple[int, int, int, int], seed: int, momentum: float,
               x: torch.Tensor, y: torch.Tensor, device: torch.device) -> dict[str, float]:
    width, stacks, cells, classes = size

    def build() -> torch.nn.Module:  # the same weights at every call: seeded, global RNG untouched
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            return build_network(spec, stem_channels=width, num_stacks=stacks, cells_per_stack=cells,
                                 num_classes=classes, momentum=momentum)

    proxies = [get_proxy(n) for n in names]
    needs = frozenset().union(*(p.needs for p in proxies))
    probe = Probe(build().to(device), x, y, needs=needs, factory=build)
    try:
        return {p.name: p(probe) for p in proxies}
    finally:
        probe.close()


def compute_proxies(specs: Sequence[Any], names: Sequence[str] | None = None, *, model_cfg: Any, data: Any,
                    seed: int = 0, batch_size: int = 64, device: str | torch.device = "cpu",
                    cache_path: str | os.PathLike | None = None, progress: bool = True) -> pd.DataFrame:
    """Zero-cost proxies of each candidate's stand-alone NB101 network.

    ``specs``: NB101 ModelSpecs (anything with ``.matrix``, ``.ops`` and ``.hash``), in candidate
    order; ``names``: proxies (default: all registered, :func:`list_proxies`); ``model_cfg``: the
    run's ModelConfig (width, stacks, cells_per_stack, num_classes, bn_momentum); ``data``: a
    batch of the run's training split, ``(images, labels)`` or an ImageSet (uint8 images are
    standardised as training does; float images are used as given), from which ``batch_size``
    images are drawn with ``seed``; ``seed`` also initialises every network.

    Returns one row per spec (``hash`` then one column per proxy, higher = better predicted
    accuracy; NaN where a proxy is undefined). ``df.attrs["setup"]`` describes the setup and
    its digest, ``df.attrs["seconds"]`` the time spent computing (0 when all came from the cache).
    """
    names = list(list_proxies() if names is None else names)
    for n in names:
        get_proxy(n)  # unknown names fail here, listing the known ones
    device = torch.device(device)
    size = _model_size(model_cfg)
    x, y = select_batch(data, batch_size, seed)
    setup = ProxySetup(*size, resolution=int(x.shape[-1]), batch_size=int(batch_size),
                       batch_checksum=_batch_checksum(x, y), seed=int(seed))
    xs = (normalize(x) if x.dtype == torch.uint8 else x.to(torch.float32)).to(device)
    ys = y.to(device)
    momentum = float(getattr(model_cfg, "bn_momentum", 0.1))
    cache = _Cache(cache_path)
    cache.record_setup(setup)

    todo: dict[str, tuple[Any, list[str]]] = {}
    for s in specs:
        missing = [n for n in names if cache.get(s.hash, n, setup.digest) is None]
        if missing and s.hash not in todo:
            todo[s.hash] = (s, missing)
    t0 = time.perf_counter()
    with tqdm(total=len(todo), desc="zero-cost proxies", unit="cell", disable=not progress) as bar:
        for h, (spec, missing) in todo.items():
            cache.add(h, setup.digest, device.type, _score_one(spec, missing, size, seed, momentum, xs, ys, device))
            bar.update(1)
    seconds = time.perf_counter() - t0

    rows = [{"hash": s.hash, **{n: cache.get(s.hash, n, setup.digest) for n in names}} for s in specs]
    df = pd.DataFrame(rows, columns=["hash", *names])
    df[names] = df[names].astype(float)
    df.attrs["setup"] = setup.describe()
    df.attrs["seconds"] = seconds
    df.attrs["computed"] = len(todo)
    return df


def proxy_reference_scores(specs: Sequence[Any], *, model_cfg: Any, data: Any, names: Sequence[str] | None = None,
                           seed: int = 0, batch_size: int = 64, device: str | torch.device = "cpu",
                           cache_path: str | os.PathLike | None = None, progress: bool = False,
                           ) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """The reference-ranker form of :func:`compute_proxies`, shaped like
    ``rankbench.references.reference_scores``: ({proxy: scores in candidate order, higher =
    better, NaN where undefined}, {proxy: description for reports})."""
    df = compute_proxies(specs, names, model_cfg=model_cfg, data=data, seed=seed, batch_size=batch_size,
                         device=device, cache_path=cache_path, progress=progress)
    st = df.attrs["setup"]
    where = (f"stand-alone NB101 network at width {st['width']}, {st['stacks']} stacks x "
             f"{st['cells_per_stack']} cells, {st['resolution']}px, init seed {st['seed']}, "
             f"{st['batch_size']} training images (setup {st['digest']})")
    cols = [c for c in df.columns if c != "hash"]
    scores = {c: df[c].to_numpy(dtype=float) for c in cols}
    desc = {c: f"zero-cost proxy {c} ({get_proxy(c).source}) on the {where}" for c in cols}
    return scores, desc


def proxy_reference_ranker(name: str) -> Callable[[Any], tuple[np.ndarray, str] | None]:
    """Proxy ``name`` as a reference ranker ``score(ctx) -> (scores, description) | None``, the
    contract of ``rankbench.references.register_reference``. ``ctx`` (a ``ReferenceContext``)
    gives ``specs``, ``size`` (a NetworkSize: width, stacks, cells, resolution, classes),
    ``device``, ``seed`` and ``cache`` (a dict shared by the rankers of one call: every proxy is
    computed in one :func:`compute_proxies` call, once); and, read with ``getattr`` so that a
    context without them still works: ``data`` (a batch of the run's training split at
    ``size.resolution``, ``(images, labels)`` or an ImageSet; None -> the ranker does not apply),
    ``proxy_batch_size`` (default 64), ``proxy_cache`` (a CSV path; None = no file cache) and
    ``opt_in`` (the opt-in rankers chosen: the proxies among them, and ``name``, are the ones
    computed in that call; absent or none of them: every registered proxy)."""
    get_proxy(name)

    def score(ctx: Any) -> tuple[np.ndarray, str] | None:
        data = getattr(ctx, "data", None)
        if data is None:
            return None
        known = list_proxies()
        chosen = set(getattr(ctx, "opt_in", None) or ()) & set(known)
        names = [n for n in known if n in chosen or n == name] if chosen else None
        key = "proxies" if names is None else "proxies:" + ",".join(names)
        if key not in ctx.cache:
            side = int((data.images if hasattr(data, "images") else data[0]).shape[-1])
            res = int(getattr(ctx.size, "resolution", side))
            if side != res:
                raise ValueError(f"proxy data are {side}x{side} images but the networks are sized for "
                                 f"{res}x{res}: pass the run's training split at its resolution")
            scores, desc = proxy_reference_scores(
                ctx.specs, model_cfg=ctx.size, data=data, names=names, seed=int(ctx.seed), device=ctx.device,
                batch_size=int(getattr(ctx, "proxy_batch_size", 64)), cache_path=getattr(ctx, "proxy_cache", None))
            ctx.cache[key] = (scores, desc)
        scores, desc = ctx.cache[key]
        return scores[name], desc[name]

    para = " ".join(ln.strip() for ln in (get_proxy(name).fn.__doc__ or name).strip().split("\n\n")[0].splitlines())
    first = re.split(r"(?<!\bal)(?<!\be)\.\s+(?=[A-Z`])", para)[0]  # its first sentence ("et al.", "i.e." kept)
    score.__doc__ = first.rstrip(".") + "."
    return score
