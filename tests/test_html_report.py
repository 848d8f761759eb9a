"""report.html of a report and of an ablation folder: self-contained (every figure embedded, no
external URL), its tables, the truth's reliability, the config against its preset, provenance,
HTML escaped; rendered by a real headless browser where one is installed."""
from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rankbench.config import apply_overrides, load_preset
from rankbench.figures import ablation_figures, report_figures
from rankbench.html_report import (REPORT_HTML, ablation_html, publish_report, report_html, write_ablation_html,
                                   write_report_html)
from rankbench.reports import report_name, report_setup
from rankbench.spaces import create_space

DOCS = Path(__file__).resolve().parent.parent / "docs"
EVIL = "<script>alert('x')</script> & \"quotes\""


@pytest.fixture(autouse=True)
def _pages_on(monkeypatch):
    """conftest switches pages off for the rest of the suite; here they are the subject."""
    monkeypatch.setenv("RANKBENCH_REPORT_PAGES", "1")


def _cfg(**overrides):
    return apply_overrides(load_preset("quick"), {"space.m": 2, "model.width": 8, "train.epochs": 2, **overrides})


def _metrics(cfg, name: str, setup: dict, *, location: str = "data/truth-quick.csv") -> dict:
    def level(tau: float) -> dict:
        return {"n": 15, "kendall_tau": tau, "kendall_tau_ci": [tau - 0.1, tau + 0.1], "spearman": tau + 0.1,
                "precision_at_10": 0.5, "precision_at_10_naslib": 0.4, "top1_regret": 0.01}

    return {
        "report": name, "setup": setup, "variant": cfg.model.variant, "preset": cfg.preset, "seed": cfg.train.seed,
        "protocol": {"name": "clean", "summary": "distinct subnets; tau-b over all"},
        "drop_rule": "none", "config_fingerprint": "cfp123", "training_fingerprint": "tfp456",
        "weights_digest": "wd0123456789abcdef", "platform": {"cpu": "test-cpu"},
        "truth": {"source": "measured", "location": location, "metric": "validation_accuracy", "reduce_used": "mean",
                  "digest": "t", "coverage": {"covered": 15, "candidates": 15, "classes_covered": 9, "classes": 9},
                  "repeats_per_class": {"2": 9}, "noise_in_intervals": True,
                  "reliability": {"n_classes": 9, "n_seeds": 2, "n_splits": 1, "split_half_tau": 0.61,
                                  "split_half_tau_sd": 0.0, "estimated_tau": 0.778, "target_tau": 0.85,
                                  "seeds_needed": 4}},
        "truth_warnings": [], "notes": [],
        "candidates": {"n": 15, "distinct": 15, "hash_classes": 9},
        "metrics": {"no_calib": {"mean_accuracy": 0.2, "per_subnet": level(0.31), "per_class": level(0.35)},
                    "calib": {"mean_accuracy": 0.3, "per_subnet": level(0.52), "per_class": level(0.55)}},
        "references": {"params": {"description": "trainable parameters", "per_subnet": level(0.4),
                                  "per_class": level(0.45)}},
        "timings": {"train_s": 1.0}, "config": cfg.to_dict(), "created": "2025-01-01T00:00:00+0000",
    }


def _report(root: Path, variant: str = "lsbn", seed: int = 2020, **overrides) -> Path:
    """A run directory with config, versions, a training log, train_done.json and one report
    (as training and scoring leave them; no supernet, so no supernet figures)."""
    cfg = _cfg(**{"model.variant": variant, "train.seed": seed, **overrides})
    run = root / f"{variant}-quick-s4-m2-seed{seed}"
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps(cfg.to_dict()))
    (run / "versions.json").write_text(json.dumps({"python": "3.11.0", "platform": "Linux-test-x86_64",
                                                   "torch": "2.9.0", "rankbench": "0.1.0"}))
    (run / "train_done.json").write_text(json.dumps({"weights_digest": "fromdone", "epochs": 2}))
    (run / "supernet.pt").write_bytes(b"")  # finished (figures needing the supernet are not asked for)
    pd.DataFrame({"epoch": [1, 2], "lr": [0.05, 0.01], "train_loss": [2.2, 2.0], "train_acc": [0.15, 0.2]}).to_csv(
        run / "train_log.csv", index=False)
    setup = report_setup(cfg, calibrate=True, truth_digest="t")
    name = report_name(setup)
    rep = run / "reports" / name
    rep.mkdir(parents=True)
    space = create_space("s4", m=2)
    subs = space.candidates()
    rng = np.random.default_rng(seed)
    k = np.array([space.describe(s)["num_paths"] for s in subs])
    truth = 0.4 + 0.01 * k + rng.normal(0, 0.01, len(subs))
    pd.DataFrame({"name": [s.name for s in subs], "num_paths": k, "hash": [s.hash for s in subs],
                  "acc_no_calib": truth - 0.1 + rng.normal(0, 0.02, len(subs)),
                  "acc_calib": truth - 0.05 + rng.normal(0, 0.01, len(subs)), "truth": truth, "truth_std": 0.004,
                  "ref_params": k.astype(float), "kept": True}).to_csv(rep / "scores.csv", index=False)
    (rep / "metrics.json").write_text(json.dumps(_metrics(cfg, name, setup)))
    return rep


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    """(report directory, its page) with its figures drawn."""
    rep = _report(tmp_path_factory.mktemp("html") / "runs")
    report_figures(rep, supernet=False)
    return rep, write_report_html(rep).read_text()


def _embedded(html: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", html)]


def _check_self_contained(html: str) -> None:
    for attr in re.findall(r"""(?:src|href)\s*=\s*['"]([^'"]*)['"]""", html):
        assert attr.startswith(("data:image/png;base64,", "#")), attr[:60]
    assert not re.search(r"url\(|@import|<script|<link|<iframe", html, re.I)


def test_report_page_embeds_every_figure_and_is_self_contained(page):
    rep, html = page
    pngs = sorted((rep / "figures").glob("*.png"))
    assert {p.stem for p in pngs} == {"training_curves", "rank_agreement", "accuracy_by_num_paths"}
    assert sorted(_embedded(html)) == sorted(p.read_bytes() for p in pngs)
    assert html.index("fig-training_curves") < html.index("fig-rank_agreement")  # the registry's order
    _check_self_contained(html)
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    assert (rep / REPORT_HTML).exists() and not [p for p in rep.iterdir() if p.name.startswith(".")]


def test_report_page_tables_truth_config_and_provenance(page):
    _rep, html = page
    assert html.count("<table") >= 5  # summary, truth, reliability, config diff, provenance, versions
    assert "+0.310 [+0.210, +0.410]" in html and "+0.520 [+0.420, +0.620]" in html  # tau and its interval
    assert "reference: params" in html and "trainable parameters" in html
    assert "estimated tau against a noise-free truth" in html and "0.778" in html and "needs about 4" in html
    # the config against its preset: train.epochs 20 -> 2; the variant and seed are no overrides
    assert re.search(r"<td>train\.epochs</td><td>20</td><td>2</td>", html)
    assert "<td>model.variant</td>" not in html and "overrides preset quick (3 fields)" in html
    assert "Linux-test-x86_64" in html and "wd0123456789abcdef" in html and "test-cpu" in html


def test_pages_escape_what_they_show(tmp_path):
    rep = _report(tmp_path / "runs")
    m = json.loads((rep / "metrics.json").read_text())
    m["truth"]["location"] = EVIL
    m["notes"] = [EVIL]
    m["references"][EVIL] = m["references"]["params"]
    (rep / "metrics.json").write_text(json.dumps(m))
    html = report_html(rep)
    assert "<script" not in html and "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; &quot;quotes&quot;" in html
    _check_self_contained(html)


def _ablation(tmp_path: Path) -> Path:
    reports = [_report(tmp_path / "runs", v, s) for v in ("bn", "lsbn") for s in (2020, 2021)]
    folder = tmp_path / "runs" / "ablation-quick-s4-m2-clean-seeds2020-2021-tt"
    folder.mkdir()
    shutil.copy(DOCS / "ablation-quick.csv", folder / "ablation.csv")
    shutil.copy(DOCS / "ablation-quick-paired.csv", folder / "paired.csv")
    m = json.loads((reports[0] / "metrics.json").read_text())
    (folder / "ablation.json").write_text(json.dumps({
        "settings": {}, "config": m["config"], "variants": ["bn", "lsbn"], "seeds": [2020, 2021],
        "truth": m["truth"], "reports": {"bn": [str(r) for r in reports[:2]], "lsbn": [str(r) for r in reports[2:]]}}))
    return folder


def test_ablation_page(tmp_path):
    folder = _ablation(tmp_path)
    ablation_figures(folder)
    html = write_ablation_html(folder).read_text()
    pngs = sorted(folder.glob("*.png"))
    assert {p.stem for p in pngs} == {"ablation_tau", "ablation_paired"}
    assert sorted(_embedded(html)) == sorted(p.read_bytes() for p in pngs)
    _check_self_contained(html)
    assert "Ablation: quick preset, s4, m=2, protocol clean" in html
    assert "+0.044 ± 0.082" in html and "reference: params" in html  # the table (docs/ablation-quick.csv of 22729f4)
    assert "-0.266 *" in html and "[-0.517, -0.003]" in html  # paired differences
    assert html.count("wd0123456789abcdef") == 4 and "Linux-test-x86_64" in html  # each report's digest
    assert "estimated tau against a noise-free truth" in html
    assert re.search(r"<td>train\.epochs</td><td>20</td><td>2</td>", html)


def test_ablation_page_needs_its_table(tmp_path):
    with pytest.raises(FileNotFoundError, match="no ablation.csv"):
        ablation_html(tmp_path)


def test_publishing_never_loses_a_report(tmp_path, monkeypatch):
    """A figure that fails is a warning; the page is still written, with what there is."""
    import rankbench.figures as figs

    rep = _report(tmp_path / "runs")

    def broken(*_a, **_k):
        raise RuntimeError("no display")

    monkeypatch.setattr(figs, "report_figures", broken)
    with pytest.warns(UserWarning, match="drawing the figures .* failed \\(RuntimeError: no display\\)"):
        path = publish_report(rep)
    assert path == rep / REPORT_HTML and "No figures were drawn" in path.read_text()
    (rep / "metrics.json").write_text("{not json")
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        assert publish_report(rep) is None
    assert any("report.html failed" in str(x.message) for x in w)


def test_the_pipelines_page_is_quick_and_can_be_turned_off(tmp_path, monkeypatch):
    """What the pipeline writes beside a report: its light figures as PNG (+ CSV) and the page;
    ``RANKBENCH_REPORT_PAGES=0`` writes neither."""
    from rankbench.html_report import PAGES_ENV

    rep = _report(tmp_path / "runs")
    monkeypatch.setenv(PAGES_ENV, "0")
    assert publish_report(rep) is None and not (rep / "figures").exists() and not (rep / REPORT_HTML).exists()
    monkeypatch.delenv(PAGES_ENV)
    html = publish_report(rep).read_text()
    assert {p.suffix for p in (rep / "figures").iterdir()} == {".png", ".csv"}
    assert len(_embedded(html)) == 3 and "style='width:" in html


def _browser() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.mark.skipif(_browser() is None, reason="no headless browser (chromium) installed")
def test_report_page_renders_in_a_headless_browser(page, tmp_path):
    from PIL import Image

    rep, _html = page
    shot = tmp_path / "shot.png"
    cmd = [_browser(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
           f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", "--window-size=1280,1600",
           (rep / REPORT_HTML).resolve().as_uri()]
    subprocess.run(cmd, capture_output=True, timeout=120, check=False)
    assert shot.exists(), "the browser wrote no screenshot"
    im = Image.open(shot).convert("RGB")
    assert im.size == (1280, 1600)
    colours = im.resize((320, 400)).getcolors(maxcolors=1 << 16)
    assert colours is None or len(colours) > 50  # text, tables and figures, not a blank page
    # the first figure is drawn: a band of the page below the summary is not all white
    strip = np.asarray(im.crop((40, 700, 1240, 1500)))
    assert (strip < 200).any(axis=2).mean() > 0.01


def test_report_page_shows_every_truth_side_by_side(tmp_path):
    """A report ranked against an extra truth (truth.also; SYNTHETIC numbers here): its page has
    the scorers against both truths side by side, with each truth's coverage, and the extra
    truth's own section; a report without one has no such section."""
    from rankbench.html_report import report_html

    rep = _report(tmp_path / "runs")
    assert "Against every truth" not in report_html(rep)
    m = json.loads((rep / "metrics.json").read_text())

    def level(tau: float) -> dict:
        return {"n": 9, "kendall_tau": tau, "kendall_tau_ci": [tau - 0.2, tau + 0.2]}

    m["also"] = {"measured": {
        "truth": {"source": "measured", "location": "data/truth-nb101-quick.csv", "metric": "validation_accuracy",
                  "digest": "m1", "coverage": {"covered": 9, "candidates": 15, "classes_covered": 5, "classes": 9}},
        "truth_warnings": ["measured truth is unfinished"],
        "metrics": {"no_calib": {"per_subnet": level(0.11), "per_class": level(0.12)},
                    "calib": {"per_subnet": level(0.21), "per_class": level(0.22)}},
        "references": {"params": {"per_subnet": level(-0.05), "per_class": level(-0.06)}}}}
    (rep / "metrics.json").write_text(json.dumps(m))
    html = report_html(rep)
    section = html.split("id='truths'", 1)[1].split("</section>", 1)[0]
    assert "measured: tau per subnet [95%] (9/15 candidates)" in section
    assert "(this report&#x27;s truth): tau per subnet [95%] (15/15 candidates)" in section
    row = re.search(r"<tr[^>]*><td>with BN calibration</td>(.*?)</tr>", section).group(1)
    assert "+0.520 [+0.420, +0.620]" in row and "+0.210 [+0.010, +0.410]" in row  # own truth, then measured
    assert "reference: params" in section and "data/truth-nb101-quick.csv" in section
    assert "measured truth is unfinished" in section and "href='#truths'" in html
