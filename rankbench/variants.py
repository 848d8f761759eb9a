"""The supernet variants and what everyone else needs to know about them.

A variant is a normalisation scheme (``rankbench.supernet.norms``) combined with the
space's supernet cell (``rankbench.supernet.register_cell``), or a variant with a cell of
its own (SPOS). Figures, pipeline, analysis, the CLI and tests read names, labels, colours,
order and supported spaces from :data:`VARIANTS`, never from re-typed lists::

    list_variants()            # ['bn', 'lsbn', 'esbn', 'scale', 'spos'] (in ``order``)
    list_variants(space="s4")  # the ones that can be built on S4
    variant_info("lsbn").label, .colour, .order, .spaces, .description, .norm, .shadow

This module does not import torch, except :attr:`VariantInfo.spaces`, which asks the
supernet's cell registry.
"""
from __future__ import annotations

from dataclasses import dataclass

from rankbench._registry import Registry

__all__ = ["VariantInfo", "VARIANTS", "register_variant", "list_variants", "variant_info"]


@dataclass(frozen=True)
class VariantInfo:
    """One variant's metadata.

    ``norm``: the normalisation scheme (a name in ``rankbench.supernet.norms.NORMS``) the
    space's cell is built with; ``None`` for a variant that brings its own cell (registered
    with ``register_cell(space, variant=name)``). ``shadow``: the norm keeps several BNs per
    place and the arch picks one (shadow BN: what the SBN-statistics figures read).
    ``only_spaces``: restrict the variant to these spaces (``None``: every space it has a
    cell for).
    """

    name: str
    label: str  # shown in legends and tables ("LSBN")
    colour: str  # hex, Okabe-Ito palette
    order: int  # position in every legend, axis and table
    description: str
    norm: str | None = None
    shadow: bool = False
    only_spaces: tuple[str, ...] | None = None

    @property
    def spaces(self) -> tuple[str, ...]:
        """The search spaces this variant can be built on (from the supernet's cell registry)."""
        from rankbench.supernet.cell import cell_spaces

        found = cell_spaces(None if self.norm is not None else self.name)
        if self.only_spaces is not None:
            found = tuple(s for s in found if s in self.only_spaces)
        return found

    def supports(self, space: str) -> bool:
        return space in self.spaces


VARIANTS: Registry[VariantInfo] = Registry("variant")


def register_variant(name: str, *, label: str, colour: str, order: int, description: str,
                     norm: str | None = None, shadow: bool = False,
                     only_spaces: tuple[str, ...] | None = None) -> VariantInfo:
    """Register a variant's metadata; returns it."""
    info = VariantInfo(name, label, colour, order, description, norm, shadow, only_spaces)
    VARIANTS.register(name, description)(info)
    return info


def variant_info(name: str) -> VariantInfo:
    """A variant's metadata (KeyError listing the known names if there is none)."""
    return VARIANTS.get(name)


def list_variants(space: str | None = None) -> list[str]:
    """Registered variant names in their display ``order``; with ``space``, only those that
    can be built on it."""
    infos = sorted((VARIANTS.get(n) for n in VARIANTS.names()), key=lambda i: (i.order, i.name))
    return [i.name for i in infos if space is None or i.supports(space)]


# Okabe-Ito colours (readable with colour-vision deficiencies and in grey)
register_variant("bn", label="BN", colour="#D55E00", order=0, norm="bn",  # vermillion: the naive baseline
                 description="MixPath supernet, one vanilla BatchNorm after the aggregation")
register_variant("lsbn", label="LSBN", colour="#0072B2", order=1, norm="lsbn", shadow=True,  # blue: the paper's method
                 description="MixPath supernet, linear shadow BN: one BN per number of summed inputs "
                             "(S4: active paths, m of them)")
register_variant("esbn", label="ESBN", colour="#56B4E9", order=2, norm="esbn", shadow=True,  # sky blue: its sibling
                 description="MixPath supernet, exponential shadow BN: one BN per set of summed inputs "
                             "(S4: subset of active nodes, 2^m - 1)")
register_variant("scale", label="scaling", colour="#009E73", order=3, norm="scale",  # bluish green
                 description="MixPath supernet, simple scaling: sum / number of summed inputs, then one BN")
register_variant("spos", label="SPOS", colour="#7F7F7F", order=4, norm=None,  # grey: single-path baseline
                 description="SPOS baseline: every path combination (NB101 hash class) has its own weights")
