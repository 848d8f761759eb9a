"""The NB101 skeleton around supernet cells: stem, stacks of cells, pooling, classifier.

It knows nothing of the search space: ``make_cell(in_channels, channels)`` builds each cell
and an architecture is passed through to the cells untouched.
"""
from __future__ import annotations

import math
from typing import Callable, Iterator, Sequence, cast

from torch import Tensor, nn

from rankbench.spaces.base import Arch, SearchSpace
from rankbench.supernet.cell import SupernetCell, _bns, run_memo
from rankbench.supernet.ops import Classifier, ConvBnRelu

__all__ = ["Supernet", "NetArch"]

#: an architecture for one forward pass: one arch shared by every cell, or a list (or tuple)
#: of one arch per cell
NetArch = Arch | Sequence[Arch]


class Supernet(nn.Module):
    """NB101's network with a supernet cell in every position.

    stem 3x3 conv-BN-ReLU (``width`` channels) -> ``stacks`` stacks of ``cells_per_stack``
    cells, 2x2 max-pool and channel doubling between stacks -> global average pool -> linear.
    ``forward(x, arch)`` runs only the modules ``arch`` uses, so only they get gradients.

    ``forward(x, arch, memo=memo)`` with one dict per input batch reuses, across the subnets
    run on that batch, the outputs of :meth:`shared_modules` (the stem, and the first cell's
    modules that read only the stem's output): exactly the numbers of separate forward
    passes, as long as those modules' mode and BN statistics do not change in between.
    """

    def __init__(self, space: SearchSpace, variant: str, make_cell: Callable[[int, int], nn.Module], *,
                 width: int = 128, stacks: int = 3, cells_per_stack: int = 3, num_classes: int = 10,
                 bn_momentum: float = 0.1):
        super().__init__()
        if width < 1 or stacks < 1 or cells_per_stack < 1:
            raise ValueError(f"width, stacks and cells_per_stack must be positive, got {width}, {stacks}, "
                             f"{cells_per_stack}")
        self.space, self.variant = space, variant
        self.stem = ConvBnRelu(3, width, 3, bn_momentum)
        self.cells = nn.ModuleList()
        self._downsample_before: set[int] = set()
        in_ch = channels = width
        for s in range(stacks):
            if s > 0:
                channels *= 2
                self._downsample_before.add(len(self.cells))
            for _ in range(cells_per_stack):
                self.cells.append(make_cell(in_ch, channels))
                in_ch = channels
        self.pool = nn.MaxPool2d(2, 2)
        self.classifier = Classifier(channels, num_classes)
        self._init_weights()
        self._param_names = {id(p): n for n, p in self.named_parameters()}

    @property
    def num_cells(self) -> int:
        return len(self.cells)

    @property
    def _cells(self) -> Sequence[SupernetCell]:
        """``cells``, typed as the cells they are."""
        return cast("Sequence[SupernetCell]", self.cells)

    def _init_weights(self) -> None:
        # as NB101 / nasbench-pytorch: He-normal convs, N(0, 0.01) classifier, BN 1/0
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                n = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / n))
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.01)
                nn.init.zeros_(m.bias)

    def _per_cell(self, arch: NetArch) -> Sequence[Arch]:
        if not isinstance(arch, (list, tuple)):
            return [cast(Arch, arch)] * self.num_cells
        if len(arch) != self.num_cells:
            raise ValueError(f"got {len(arch)} archs for {self.num_cells} cells; give one, or one per cell")
        return arch

    def features(self, x: Tensor, arch: NetArch, memo: dict | None = None) -> Tensor:
        x = run_memo(self.stem, x, memo)
        for i, (cell, sub) in enumerate(zip(self.cells, self._per_cell(arch))):
            if i in self._downsample_before:
                x = self.pool(x)
            x = cell(x, sub, memo) if i == 0 else cell(x, sub)
        return x

    def forward(self, x: Tensor, arch: NetArch, memo: dict | None = None) -> Tensor:
        return self.classifier(self.features(x, arch, memo))

    # -- what a subnet uses ------------------------------------------------------------------
    def used_modules(self, arch: NetArch) -> list[nn.Module]:
        mods: list[nn.Module] = [self.stem]
        for cell, sub in zip(self._cells, self._per_cell(arch)):
            mods.extend(cell.used_modules(sub))
        mods.append(self.classifier)
        return mods

    def shared_modules(self, arch: NetArch) -> list[nn.Module]:
        """The modules of ``arch`` whose output depends on the input batch only, not on the
        rest of the architecture: the stem and the first cell's ``input_modules``."""
        mods: list[nn.Module] = [self.stem]
        return mods + list(self._cells[0].input_modules(self._per_cell(arch)[0]))

    def used_parameters(self, arch: NetArch) -> Iterator[tuple[str, nn.Parameter]]:
        """(name, parameter) of every weight ``arch`` uses, each once."""
        seen: set[int] = set()
        for mod in self.used_modules(arch):
            for p in mod.parameters():
                if id(p) not in seen:
                    seen.add(id(p))
                    name = self._param_names.get(id(p))
                    if name is None:  # a copy (deepcopy, unpickling) holds new tensors: re-map once
                        self._param_names = {id(q): n for n, q in self.named_parameters()}
                        name = self._param_names[id(p)]
                    yield name, p

    def used_bns(self, arch: NetArch) -> list[nn.BatchNorm2d]:
        """Every BatchNorm ``arch`` passes through (what BN calibration re-estimates)."""
        return _bns(self.used_modules(arch))

    def param_count(self, arch: NetArch | None = None) -> int:
        """Trainable parameters of the whole supernet, or the weights ``arch`` uses: every
        element of its used parameters, except in cells that use slices of shared weights
        and say how many elements they use (an optional ``cell.param_count(arch)``)."""
        if arch is None:
            return sum(p.numel() for p in self.parameters())
        total = _numel([self.stem, self.classifier])
        for cell, a in zip(self._cells, self._per_cell(arch)):
            count = getattr(cell, "param_count", None)
            total += int(count(a)) if count is not None else _numel(cell.used_modules(a))
        return total


def _numel(mods: Sequence[nn.Module]) -> int:
    """Elements of the parameters of ``mods``, each parameter once."""
    params = {id(p): p for mod in mods for p in mod.parameters()}
    return sum(p.numel() for p in params.values())
