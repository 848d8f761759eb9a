"""Training samplers: which subnet each training step of a supernet trains.

A sampler is registered by name with :func:`register_sampler`; its factory takes the space,
the number of cells, whether each cell draws its own subnet (``train.sampling = per_cell``)
and an optional argument (the text after ``:`` in ``name:arg``, so that ``fixed:<arch>`` or
``pool:<N>`` can be added as entries), and returns an :data:`ArchSampler`: ``rng -> arch``,
called once per step with the training's seeded :class:`random.Random`. :func:`make_sampler`
builds one from its name; ``rankbench list samplers`` and the contract test read the registry.

Entries: ``uniform`` (the space's own draw), ``fixed:<arch>``, ``pool:<N>[:<seed>]``,
``fairnas`` (FairNAS strict fairness on S4, :class:`FairSampler`) and ``fewshot:<node>=<op>``
(one few-shot NAS sub-supernet, :mod:`rankbench.fewshot`).
"""
from __future__ import annotations

import random
from typing import Any, Callable, Protocol

from rankbench._registry import Registry
from rankbench.fewshot import Splitting, parse_split, split_ops
from rankbench.spaces.s4 import OP_CHAR, S4Space, Subnet
from rankbench.training.loop import ArchSampler

__all__ = ["SAMPLERS", "SamplerFactory", "register_sampler", "make_sampler", "example_spec", "list_samplers",
           "DEFAULT_SAMPLER", "pool_of", "FairSampler"]

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
    rng, seen, out = random.Random(f"pool:{n}:{seed}"), set[str](), list[Any]()
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
    """pool:<N>[:<seed>]: N distinct subnets drawn once with the seed (default 0), then each step one of them."""
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


# -- FairNAS strict fairness ---------------------------------------------------------------------
class FairSampler:
    """FairNAS's strict fairness (Chu et al. 2019) on S4: each group of steps trains every option
    of every choice node exactly once.

    S4's choice points are its choice nodes 1..m; a node's options are its three ops and
    ``off`` (the node inactive), since a subnet is a choice per node (``Subnet.ops``). With
    ``m = 1`` the only node can never be off, so its options are the three ops. A group is
    ``G`` steps, ``G`` the number of options (4; 3 for ``m = 1``): at its first step each node
    draws a random permutation of its options (``rng.shuffle``), and step ``i`` of the group
    runs option ``perm[i]`` at every node. So every (node, op) weight set, each node's own
    projection and op, is trained exactly once per group. A subnet needs an active node: a set
    of permutations that would turn every node off at some step is drawn again (rejection), so
    the groups are uniform over the valid sets (rejected: 1 in 4 for m = 2, 1 in 64 for m = 4).
    Unlike the public code's draw (``m'`` paths uniform in 1..m), each node is active 3 steps in
    4, so subnets with about ``3m/4`` paths dominate (share of the steps with 1, 2, 3, 4 paths,
    exact over the valid sets, m = 4: 2/42, 9/42, 18/42, 13/42; the public code's: 1/4 each).
    With ``per_cell`` every cell has its own choice nodes and draws its own permutations.

    State: the group and the position in it. The sampler draws from ``rng`` only at a group's
    first step, and remembers the state it leaves ``rng`` in: called with an ``rng`` in another
    state (a fresh or reseeded one, or one another caller drew from) it starts a new group. So
    its draws are a function of the rng stream alone. Resume: the training loop checkpoints the
    rng but not the sampler, so a run resumed mid-group starts a new group there (the
    interrupted group stays incomplete and the steps after it differ from an uninterrupted
    run's); a checkpoint at a group boundary resumes exactly. :meth:`state_dict` /
    :meth:`load_state_dict` hold what an exact resume needs, for a loop that saves them.
    """

    def __init__(self, space: S4Space, num_cells: int, *, per_cell: bool = False):
        self.space, self.num_cells, self.per_cell = space, num_cells, per_cell
        self.options: tuple[str | None, ...] = tuple(space.ops) + ((None,) if space.m > 1 else ())
        self.group_size = len(self.options)
        self._group: list[list[Subnet]] = []  # per step of the group: one subnet per cell drawing
        self._pos = 0
        self._rng_after: Any = None  # rng.getstate() after the last call

    def _draw_cell_group(self, rng: random.Random) -> list[Subnet]:
        m, g = self.space.m, self.group_size
        while True:
            perms = []
            for _ in range(m):
                perm = list(self.options)
                rng.shuffle(perm)
                perms.append(perm)
            if all(any(p[i] is not None for p in perms) for i in range(g)):
                return [Subnet(tuple(p[i] for p in perms)) for i in range(g)]

    def _draw_group(self, rng: random.Random) -> list[list[Subnet]]:
        cells = [self._draw_cell_group(rng) for _ in range(self.num_cells if self.per_cell else 1)]
        return [[c[i] for c in cells] for i in range(self.group_size)]

    def __call__(self, rng: random.Random) -> Subnet | list[Subnet]:
        if self._pos == 0 or rng.getstate() != self._rng_after:
            self._group, self._pos = self._draw_group(rng), 0
        step = self._group[self._pos]
        self._pos = (self._pos + 1) % self.group_size
        self._rng_after = rng.getstate()
        return list(step) if self.per_cell else step[0]

    def state_dict(self) -> dict[str, Any]:
        """The position in the group, the group (arch names) and the rng state it continues from."""
        return {"pos": self._pos, "group": [[a.name for a in step] for step in self._group],
                "rng_after": self._rng_after}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._pos = int(state["pos"])
        self._group = [[self.space.arch_from_name(n) for n in step] for step in state["group"]]
        after = state["rng_after"]
        self._rng_after = None if after is None else _tuples(after)


def _tuples(x: Any) -> Any:
    return tuple(_tuples(v) for v in x) if isinstance(x, (list, tuple)) else x


@register_sampler("fairnas")
def fairnas(space: Any, num_cells: int, *, per_cell: bool = False, arg: str | None = None) -> ArchSampler:
    """FairNAS strict fairness (S4): each group of 4 steps runs every op and 'off' once at every choice node."""
    if arg is not None:
        raise ValueError(f"training sampler 'fairnas' takes no argument, got {arg!r}")
    if not isinstance(space, S4Space):
        raise ValueError(f"training sampler 'fairnas' is defined for the s4 space (its choice nodes and their "
                         f"ops), not {space!r}; use uniform, pool:<N> or fewshot:<node>=<op> there")
    return FairSampler(space, num_cells, per_cell=per_cell)


# -- few-shot NAS -------------------------------------------------------------------------------
@register_sampler("fewshot")
def fewshot(space: Any, num_cells: int, *, per_cell: bool = False, arg: str | None = None) -> ArchSampler:
    """fewshot:<node>=<op>: a few-shot NAS sub-supernet: the space's draw where node <node> runs <op> ('-': none)."""
    if not arg:
        raise ValueError(f"training sampler 'fewshot' needs a split: fewshot:<node>=<op>, op one of "
                         f"{', '.join(OP_CHAR.values())} ('-': no op there; rankbench.fewshot)")
    node, op = parse_split(space, arg)
    split = Splitting(space, node)
    split.sample(random.Random(0), op)  # an empty split fails here (in the plan), not at the first step

    def sample(rng: Any) -> Any:
        if per_cell:
            return [split.sample(rng, op) for _ in range(num_cells)]
        return split.sample(rng, op)

    return sample


fewshot.example_arg = lambda space: f"1={split_ops(space, 1)[0]}"  # type: ignore[attr-defined]
