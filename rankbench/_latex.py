"""LaTeX tables in the booktabs style (``\\toprule``, ``\\midrule``, ``\\bottomrule``; needs
``\\usepackage{booktabs}``), for the compare and ablation tables. Cells are escaped here, so a
caller passes plain text (a run name with ``_`` or ``%`` stays a valid document)."""
from __future__ import annotations

from typing import Any, Sequence

from rankbench._io import finite_or_none

__all__ = ["escape", "booktabs", "ablation_latex"]

_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
            "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}
_UNICODE = {"±": r"$\pm$", "−": "$-$", "τ": r"$\tau$", "≥": r"$\geq$", "≤": r"$\leq$", "×": r"$\times$"}


def escape(text: Any) -> str:
    """``text`` as LaTeX that prints it verbatim (special characters escaped; ±, − and a few
    other symbols as math)."""
    out = []
    for ch in str(text):
        out.append(_SPECIAL.get(ch) or _UNICODE.get(ch) or ch)
    return "".join(out)


def booktabs(header: Sequence[str], rows: Sequence[Sequence[Any]], *, align: str | None = None,
             caption: str | None = None, label: str | None = None) -> str:
    """A ``table`` with a booktabs ``tabular``: ``header`` and ``rows`` are plain text (escaped
    here); ``align`` is the column spec (default: the first column left, the others right)."""
    ncol = len(header)
    if any(len(r) != ncol for r in rows):
        raise ValueError(f"every row needs {ncol} cells (the header's)")
    align = align or ("l" + "r" * (ncol - 1))
    lines = [r"\begin{table}[t]", r"\centering"]
    if caption:
        lines.append(rf"\caption{{{escape(caption)}}}")
    if label:
        lines.append(rf"\label{{{label}}}")
    lines += [rf"\begin{{tabular}}{{{align}}}", r"\toprule",
              " & ".join(escape(h) for h in header) + r" \\", r"\midrule"]
    lines += [" & ".join(escape(c) for c in r) + r" \\" for r in rows]
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines)


def _cell(r: dict, col: str, signed: bool = True) -> str:
    """A value with its ± std over seeds, or its [95% interval], as the Markdown table shows it."""
    v = finite_or_none(r.get(col))
    if v is None:
        return "n/a"
    s = f"{v:+.3f}" if signed else f"{v:.3f}"
    sd = finite_or_none(r.get(col + "_std"))
    if sd is not None:
        return f"{s} ± {sd:.3f}"
    lo, hi = finite_or_none(r.get(col + "_ci_low")), finite_or_none(r.get(col + "_ci_high"))
    if lo is not None and hi is not None:
        return f"{s} [{lo:+.2f}, {hi:+.2f}]"
    return s


def ablation_latex(table, paired=None, *, caption: str | None = None) -> str:
    """The ablation table (:func:`rankbench.ablation.ablation`'s DataFrame) as booktabs LaTeX,
    and the paired differences below it when given."""
    header = ["variant", "BN calibration", "Kendall τ (subnet)", "Kendall τ (class)", "Spearman", "P@10%",
              "top-1 regret"]
    rows = []
    for _, r in table.iterrows():
        r = r.to_dict()
        ref = str(r["variant"]).startswith("reference")
        rows.append([r["variant"], "" if ref else ("yes" if r["calibration"] else "no"),
                     _cell(r, "kendall_tau_subnet"), _cell(r, "kendall_tau_class"), _cell(r, "spearman_subnet"),
                     _cell(r, "precision_at_10_subnet", False), _cell(r, "top1_regret_subnet", False)])
    out = booktabs(header, rows, align="llrrrrr", caption=caption, label="tab:ablation")
    if paired is not None and len(paired):
        prow = []
        for _, r in paired.iterrows():
            d, lo, hi = (finite_or_none(r.get(k)) for k in ("difference", "ci_low", "ci_high"))
            resolved = lo is not None and hi is not None and (lo > 0 or hi < 0)
            prow.append([r["a"], r["b"], str(r["n_seeds"]),
                         "n/a" if d is None else f"{d:+.3f}" + (" *" if resolved else ""),
                         "n/a" if lo is None or hi is None else f"[{lo:+.3f}, {hi:+.3f}]"])
        out += "\n\n" + booktabs(["A", "B", "seeds", "difference (A − B)", "95% interval"], prow, align="llrrr",
                                 caption="Paired differences in Kendall τ per subnet; * = the interval excludes 0.",
                                 label="tab:ablation-paired")
    return out
