"""Weight-sharing supernets over NAS-Bench-101 cell spaces, one per normalisation variant.

``create_supernet(space, "lsbn", width=...)`` builds any registered variant on any space it
supports: the NB101 skeleton (:class:`Supernet`) around the space's cell
(:func:`register_cell`) with the variant's normalisation (:mod:`~rankbench.supernet.norms`)
injected. :data:`VARIANTS` carries each variant's metadata (label, colour, order, spaces):
``list_variants()`` is what ``rankbench list variants`` prints and what the tests sweep.
Every ``*_cell.py`` module of this package is imported with it: a space's cell module registers
itself.
"""
from __future__ import annotations

import importlib
import pkgutil

from rankbench.spaces import create_space, space_from_config
from rankbench.spaces.base import Arch, SearchSpace
from rankbench.supernet.cell import MixPathCell, SPOSCell, cell_spaces, get_cell, register_cell
from rankbench.supernet.network import NetArch, Supernet
from rankbench.supernet.norms import NORMS
from rankbench.variants import VARIANTS, VariantInfo, list_variants, register_variant, variant_info

__all__ = ["Arch", "NetArch", "Supernet", "MixPathCell", "SPOSCell", "create_supernet", "supernet_from_config",
           "list_variants", "variant_info", "register_variant", "register_cell", "cell_spaces", "VariantInfo",
           "VARIANTS", "NORMS"]


def create_supernet(space: SearchSpace | str = "s4", variant: str = "lsbn", *, width: int = 128, stacks: int = 3,
                    cells_per_stack: int = 3, num_classes: int = 10, bn_momentum: float = 0.1,
                    **space_settings) -> Supernet:
    """Build variant ``variant`` over ``space``: a space object, or a registered name (then
    the space's settings may be given, e.g. ``m=3`` for S4). A variant that does not support
    the space (``variant_info(variant).spaces``) is a ValueError."""
    info = variant_info(variant)
    if isinstance(space, str):
        space = create_space(space, **space_settings)
    elif space_settings:
        raise TypeError(f"space settings {sorted(space_settings)} given with a space object; "
                        f"pass them to create_space, or give the space by name")
    if not info.supports(space.name):
        raise ValueError(f"variant {variant!r} supports search space(s) {', '.join(info.spaces) or '(none)'}, "
                         f"not {space.name!r}; variants for {space.name!r}: {', '.join(list_variants(space.name))}")
    if info.norm is None:
        factory, norm = get_cell(space.name, variant), None
    else:
        factory, norm = get_cell(space.name), NORMS.get(info.norm)

    def make_cell(cin: int, cout: int):
        return factory(space, cin, cout, norm=norm, bn_momentum=bn_momentum)

    return Supernet(space, variant, make_cell, width=width, stacks=stacks, cells_per_stack=cells_per_stack,
                    num_classes=num_classes, bn_momentum=bn_momentum)


def supernet_from_config(cfg) -> Supernet:
    """Build the supernet a :class:`rankbench.config.RunConfig` describes (its ``space`` and
    ``model`` sections)."""
    model, space = cfg.model, space_from_config(cfg)
    return create_supernet(space, model.variant, width=model.width, stacks=model.stacks,
                           cells_per_stack=model.cells_per_stack, num_classes=model.num_classes,
                           bn_momentum=model.bn_momentum)


# a space's cell lives in a module named *_cell.py here, which registers it (register_cell)
for _mod in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    if _mod.endswith("_cell"):
        importlib.import_module(f"{__name__}.{_mod}")
