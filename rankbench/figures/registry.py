"""Figures register themselves: a name, a scope, whether they apply, how they draw.

A figure is a function ``draw(ctx, out) -> [paths written]`` decorated with
:func:`register_figure`. Its scope says what ``ctx`` is:

- ``"run"``: one run (:class:`~rankbench.figures._context.RunContext`: its config, its report
  if it has one, its training log, its supernet, loaded on first use);
- ``"runs"``: several runs grouped by config (:class:`~rankbench.figures._context.RunsContext`);
- ``"ablation"``: an ablation folder's tables (:class:`~rankbench.figures._context.AblationContext`).

``applies(ctx)`` says whether the figure can be drawn from what ``ctx`` holds and
``why_not(ctx)`` says, in one line, why not. :func:`rankbench.figures.make_figures`, the
report pages and the tests iterate this registry, so a new figure is drawn and tested the moment
it is registered.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from rankbench._registry import Registry

__all__ = ["SCOPES", "FigureSpec", "FIGURES", "register_figure", "get_figure", "list_figures", "figure_of_file"]

#: what a figure is drawn from: one run, several runs, an ablation folder
SCOPES = ("run", "runs", "ablation")

Draw = Callable[[Any, Path], "list[Path]"]


@dataclass(frozen=True)
class FigureSpec:
    """A registered figure."""

    name: str
    scope: str
    draw: Draw
    applies: Callable[[Any], bool]
    why_not: Callable[[Any], str]
    doc: str
    #: drawn from a report's scores (goes into the report's folder), not from the run as a whole
    per_report: bool = False
    #: needs the trained supernet (loads weights; the slow figures)
    needs_supernet: bool = False
    #: position among the figures of its scope (a report page shows them in this order)
    order: int = 100
    #: how the names of the files it writes begin (``accuracy_by_`` for accuracy_by_num_paths.png)
    stem: str = ""

    def __call__(self, ctx: Any, out: Path) -> list[Path]:
        return self.draw(ctx, Path(out))


FIGURES: Registry[FigureSpec] = Registry("figure")


def _always(_ctx: Any) -> bool:
    return True


def register_figure(name: str, scope: str, *, applies: Callable[[Any], bool] | None = None,
                    why_not: Callable[[Any], str] | str | None = None, per_report: bool = False,
                    needs_supernet: bool = False, order: int = 100, stem: str | None = None
                    ) -> Callable[[Draw], Draw]:
    """Decorator: register ``draw(ctx, out)`` as figure ``name`` of ``scope`` (one of
    :data:`SCOPES`). ``why_not``: a line (or a function of ``ctx`` returning one) saying why the
    figure does not apply; ``order``: its position among the figures of its scope; ``stem``:
    how the names of the files it writes begin (default ``name``)."""
    if scope not in SCOPES:
        raise ValueError(f"figure {name!r}: scope must be one of {', '.join(SCOPES)}, got {scope!r}")

    def reason(ctx: Any) -> str:
        if callable(why_not):
            return why_not(ctx)
        return why_not or f"{name} does not apply"

    def deco(draw: Draw) -> Draw:
        lines = (draw.__doc__ or "").strip().split("\n\n")[0]
        doc = " ".join(line.strip() for line in lines.splitlines())
        FIGURES.register(name, doc)(FigureSpec(name=name, scope=scope, draw=draw, applies=applies or _always,
                                               why_not=reason, doc=doc, per_report=per_report,
                                               needs_supernet=needs_supernet, order=order,
                                               stem=name if stem is None else stem))
        return draw

    return deco


def get_figure(name: str) -> FigureSpec:
    """The registered figure ``name`` (a KeyError listing the known ones otherwise)."""
    return FIGURES.get(name)


def list_figures(scope: str | None = None) -> list[str]:
    """Names of the registered figures (of ``scope``): by scope, then by their ``order``."""
    if scope is not None and scope not in SCOPES:
        raise ValueError(f"scope must be one of {', '.join(SCOPES)}, got {scope!r}")
    specs = [FIGURES.get(n) for n in FIGURES.names()]
    specs = sorted((s for s in specs if scope is None or s.scope == scope),
                   key=lambda s: (SCOPES.index(s.scope), s.order))  # stable: registration order breaks ties
    return [s.name for s in specs]


def figure_of_file(path: str | Path, scope: str | None = None) -> FigureSpec | None:
    """The registered figure (of ``scope``) that writes a file named like ``path``
    (``accuracy_by_num_paths.png`` -> accuracy_by_group); None if none does."""
    stem = Path(path).stem
    specs = [get_figure(n) for n in list_figures(scope)]
    matches = [s for s in specs if stem == s.stem or (s.stem.endswith(("_", "cell")) and stem.startswith(s.stem))]
    return max(matches, key=lambda s: len(s.stem)) if matches else None
