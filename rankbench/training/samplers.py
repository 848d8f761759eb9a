"""Training samplers: which subnet each training step of a supernet trains.

A sampler is registered by name with :func:`register_sampler`; its factory takes the space,
the number of cells, whether each cell draws its own subnet (``train.sampling = per_cell``)
and an optional argument (the text after ``:`` in ``name:arg``, so that ``fixed:<arch>`` or
``pool:<N>`` can be added as entries), and returns an :data:`ArchSampler`: ``rng -> arch``,
called once per step with the training's seeded :class:`random.Random`. :func:`make_sampler`
builds one from its name; ``rankbench list samplers`` and the contract test read the registry.
"""
from __future__ import annotations

from typing import Any, Callable, Protocol

from rankbench._registry import Registry
from rankbench.training.loop import ArchSampler

__all__ = ["SAMPLERS", "SamplerFactory", "register_sampler", "make_sampler", "example_spec", "list_samplers",
           "DEFAULT_SAMPLER", "pool_of"]

DEFAULT_SAMPLER = "uniform"


class SamplerFactory(Protocol):
    def __call__(self, space: Any, num_cells: int, *, per_cell: bool = False, arg: str | None = None
                 ) -> ArchSampler: ...


SAMPLERS: Registry[SamplerFactory] = Registry("training sampler")


def register_sampler(name: str) -> Callable[[SamplerFactory], SamplerFactory]:
    """Decorator: register a sampler factory as ``name`` (its docstring's first line describes it)."""
    return SAMPLERS.register(name)


def example_spec(name: str, space: Any) -> str:
    """A valid spec of sampler ``name`` for ``space`` (for the contract test and docs): the name,
    with the argument its factory's ``example_arg(space)`` gives when it takes one."""
    example = getattr(SAMPLERS.get(name), "example_arg", None)
    return f"{name}:{example(space)}" if example else name


def make_sampler(spec: str, space: Any, num_cells: int, *, per_cell: bool = False) -> ArchSampler:
    """The sampler ``spec`` names (``name`` or ``name:arg``) for ``space``."""
    name, _, arg = spec.partition(":")
    try:
        factory = SAMPLERS.get(name)
    except KeyError as e:
        raise ValueError(e.args[0]) from None
    return factory(space, num_cells, per_cell=per_cell, arg=arg or None)


def list_samplers() -> list[str]:
    return SAMPLERS.names()


@register_sampler("uniform")
def uniform(space: Any, num_cells: int, *, per_cell: bool = False, arg: str | None = None) -> ArchSampler:
    """Each step a subnet drawn uniformly by the space (SearchSpace.sample_arch), for every cell or per cell."""
    if arg is not None:
        raise ValueError(f"training sampler 'uniform' takes no argument, got {arg!r}")

    def sample(rng: Any) -> Any:
        return space.sample_arch(rng, num_cells, per_cell)

    return sample


def _per_step(arch: Any, num_cells: int, per_cell: bool) -> Any:
    return [arch] * num_cells if per_cell else arch


@register_sampler("fixed")
def fixed(space: Any, num_cells: int, *, per_cell: bool = False, arg: str | None = None) -> ArchSampler:
    """fixed:<arch>: every step the same subnet (its arch name), so the supernet trains one stand-alone network."""
    if not arg:
        raise ValueError("training sampler 'fixed' needs an arch: fixed:<arch name> (as `rankbench spaces` and "
                         "the reports' 'arch' column write it)")
    arch = space.arch_from_name(arg)
    step = _per_step(arch, num_cells, per_cell)

    def sample(rng: Any) -> Any:
        return step

    return sample


fixed.example_arg = lambda space: space.candidates(1, 0)[0].name  # type: ignore[attr-defined]


def pool_of(space: Any, n: int, seed: int = 0) -> list[Any]:
    """``n`` distinct subnets drawn by the space's own training distribution with ``seed``, in
    draw order (ValueError if the space has fewer than ``n`` distinct subnets to draw)."""
    import random

    rng, seen, out = random.Random(f"pool:{n}:{seed}"), set(), []
    misses = 0
    while len(out) < n:
        a = space.sample(rng)
        if a.name in seen:
            misses += 1
            if misses > 100 * n + 1000:
                raise ValueError(f"training sampler pool:{n}: the space draws fewer than {n} distinct subnets "
                                 f"({len(out)} found); use a smaller pool")
            continue
        seen.add(a.name)
        out.append(a)
    return out


@register_sampler("pool")
def pool(space: Any, num_cells: int, *, per_cell: bool = False, arg: str | None = None) -> ArchSampler:
    """pool:<N>[:<seed>]: N distinct subnets drawn once with the seed (default 0), then each step one of them, uniformly."""
    text = arg or ""
    n_text, _, seed_text = text.partition(":")
    try:
        n, seed = int(n_text), int(seed_text or 0)
    except ValueError:
        raise ValueError(f"training sampler 'pool' takes pool:<N> or pool:<N>:<seed> with integers, got "
                         f"{'pool:' + text!r}") from None
    if n < 1:
        raise ValueError(f"training sampler pool:{text}: the pool size N must be >= 1")
    members = pool_of(space, n, seed)

    def sample(rng: Any) -> Any:
        if per_cell:
            return [members[rng.randrange(n)] for _ in range(num_cells)]
        return members[rng.randrange(n)]

    return sample


pool.example_arg = lambda space: "3"  # type: ignore[attr-defined]
