"""The supernet cell of NAS-Bench-1Shot1's spaces (``nb1shot1-1/2/3``): the NB101 cell.

Their archs are NB101 cells in NB101's numbering (:mod:`rankbench.spaces.nb1shot1`), so the
weight-sharing NB101 cell (:mod:`rankbench.supernet.nb101_cell`: NB101's channel rule by slicing,
weights and logits equal to NB101's network of the cell) runs them unchanged. It is not
NB-1Shot1's own one-shot model, which concatenates every choice block at full width.
"""
from __future__ import annotations

from rankbench.spaces.nb1shot1 import PARENTS
from rankbench.supernet.cell import register_cell
from rankbench.supernet.nb101_cell import _nb101_cell

for _number in sorted(PARENTS):
    register_cell(f"nb1shot1-{_number}")(_nb101_cell)
