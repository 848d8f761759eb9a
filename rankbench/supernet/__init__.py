"""Supernets for multi-path NAS-Bench-101 spaces, one per normalisation variant.

``create_supernet(space, "lsbn", width=...)`` builds any registered variant;
``list_variants()`` is what ``rankbench list variants`` prints and what the tests sweep.
"""
from __future__ import annotations

from rankbench._registry import Registry
from rankbench.spaces import create_space
from rankbench.supernet.cell import MixPathCell, SPOSCell
from rankbench.supernet.network import Arch, Supernet

VARIANTS: Registry = Registry("variant")
register_variant = VARIANTS.register


def _mixpath(norm: str):
    def build(space, *, width=128, stacks=3, cells_per_stack=3, num_classes=10, bn_momentum=0.1) -> Supernet:
        def make_cell(cin: int, cout: int) -> MixPathCell:
            return MixPathCell(cin, cout, space.m, space.ops, norm=norm, bn_momentum=bn_momentum)

        return Supernet(space, norm, make_cell, width=width, stacks=stacks, cells_per_stack=cells_per_stack,
                        num_classes=num_classes, bn_momentum=bn_momentum)

    return build


register_variant("bn", "MixPath supernet, one vanilla BatchNorm after the aggregation")(_mixpath("bn"))
register_variant("lsbn", "MixPath supernet, linear shadow BN: one BN per number of active paths (m)")(_mixpath("lsbn"))
register_variant("esbn", "MixPath supernet, exponential shadow BN: one BN per subset of active nodes (2^m - 1)")(
    _mixpath("esbn"))
register_variant("scale", "MixPath supernet, simple scaling: sum / number of active paths, then one BN")(
    _mixpath("scale"))


@register_variant("spos", "SPOS baseline: every path combination (NB101 hash class) has its own weights")
def _spos(space, *, width=128, stacks=3, cells_per_stack=3, num_classes=10, bn_momentum=0.1) -> Supernet:
    subnets = space.subnets()

    def make_cell(cin: int, cout: int) -> SPOSCell:
        return SPOSCell(cin, cout, subnets, bn_momentum=bn_momentum)

    return Supernet(space, "spos", make_cell, width=width, stacks=stacks, cells_per_stack=cells_per_stack,
                    num_classes=num_classes, bn_momentum=bn_momentum)


def create_supernet(space="s4", variant: str = "lsbn", **kw) -> Supernet:
    """Build variant ``variant`` over ``space`` (a space object, or a registered name; then
    ``m=`` may be given). Keyword arguments: width, stacks, cells_per_stack, num_classes,
    bn_momentum."""
    if isinstance(space, str):
        space = create_space(space, **({"m": kw.pop("m")} if "m" in kw else {}))
    return VARIANTS.get(variant)(space, **kw)


def supernet_from_config(model_cfg) -> Supernet:
    """Build the supernet a :class:`rankbench.config.ModelConfig` describes."""
    space = create_space(model_cfg.space, m=model_cfg.m)
    return create_supernet(space, model_cfg.variant, width=model_cfg.width, stacks=model_cfg.stacks,
                           cells_per_stack=model_cfg.cells_per_stack, num_classes=model_cfg.num_classes,
                           bn_momentum=model_cfg.bn_momentum)


def list_variants() -> list[str]:
    return VARIANTS.names()


__all__ = ["Arch", "Supernet", "MixPathCell", "SPOSCell", "create_supernet", "supernet_from_config",
           "list_variants", "register_variant", "VARIANTS"]
