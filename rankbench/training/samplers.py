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

__all__ = ["SAMPLERS", "SamplerFactory", "register_sampler", "make_sampler", "list_samplers", "DEFAULT_SAMPLER"]

DEFAULT_SAMPLER = "uniform"


class SamplerFactory(Protocol):
    def __call__(self, space: Any, num_cells: int, *, per_cell: bool = False, arg: str | None = None
                 ) -> ArchSampler: ...


SAMPLERS: Registry[SamplerFactory] = Registry("training sampler")


def register_sampler(name: str) -> Callable[[SamplerFactory], SamplerFactory]:
    """Decorator: register a sampler factory as ``name`` (its docstring's first line describes it)."""
    return SAMPLERS.register(name)


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
