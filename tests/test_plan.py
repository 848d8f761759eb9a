"""The run plan (rankbench.plan): resolved once, passed down; the truth loaded once per command."""
from __future__ import annotations

import pytest

import rankbench.pipeline
import rankbench.plan
from rankbench.cli import main
from rankbench.config import ConfigError, apply_overrides, load_preset
from rankbench.pipeline import planned_run_dirs
from rankbench.plan import RunPlan, resolve, validate_config
from rankbench.rundir import run_dir_for


@pytest.fixture
def count_truth_loads(monkeypatch):
    calls = []
    real = rankbench.plan.load_truth

    def counted(*a, **k):
        calls.append(a)
        return real(*a, **k)

    monkeypatch.setattr(rankbench.plan, "load_truth", counted)
    return calls


def test_resolve_holds_what_a_run_needs(tmp_path):
    cfg = apply_overrides(load_preset("quick"), {"train.device": "cpu", "score.protocol": "paper"})
    p = resolve(cfg, 3, tmp_path)
    assert isinstance(p, RunPlan) and p.seeds == [2020, 2021, 2022] and p.runs_root == tmp_path
    assert p.cfg.score.eval_split == "test"  # the protocol applied once
    assert p.requested is cfg and p.device_type == "cpu"
    assert [c.hash for c in p.candidates] == p.hashes and p.coverage.covered == len(p.candidates)
    assert p.truth_digest == p.truth.digest() and p.report_name(True).startswith("paper-calib-")
    for run in p.runs:  # each seed's fingerprint and directory as the run directory helpers compute them
        assert run.training_fingerprint == run.cfg.training_fingerprint("cpu")
        assert run.run_dir == run_dir_for(run.cfg, tmp_path)
    assert planned_run_dirs(cfg, 3, tmp_path) == p.planned
    one = p.for_seed(2021)
    assert one.seeds == [2021] and one.cfg.train.seed == 2021 and one.truth is p.truth
    bn = p.with_variant("bn")
    assert bn.truth is p.truth and bn.candidates is p.candidates and bn.cfg.model.variant == "bn"
    assert [d for _, d in bn.planned] == [run_dir_for(c, tmp_path) for c, _ in bn.planned]


def test_a_truth_problem_is_raised_or_recorded(tmp_path):
    cfg = apply_overrides(load_preset("quick"), {"truth.source": str(tmp_path / "missing.csv")})
    with pytest.raises(FileNotFoundError):
        resolve(cfg)
    p = resolve(cfg, truth="record")
    assert p.truth is None and "missing.csv" in p.truth_problem
    with pytest.raises(ValueError, match="missing.csv"):
        p.require_truth()
    assert resolve(cfg, truth="skip").truth_problem is None


def test_the_registries_are_checked_by_the_plan_not_the_config():
    from rankbench.config import validate_config as field_rules

    cfg = apply_overrides(load_preset("quick"), {"model.variant": "nope", "score.protocol": "nope"})
    assert field_rules(cfg) is cfg  # rankbench.config: field rules only
    with pytest.raises(ConfigError, match="2 problems") as e:
        validate_config(cfg)
    assert "model.variant" in str(e.value) and "score.protocol" in str(e.value)
    with pytest.raises(ConfigError):
        resolve(cfg)


@pytest.mark.parametrize("argv", (["run", "--dry-run", "--seeds", "2"], ["ablation", "--dry-run", "--seeds", "2"]))
def test_a_dry_run_loads_the_truth_once(count_truth_loads, capsys, argv, tmp_path):
    assert main([*argv, "--runs-root", str(tmp_path)]) == 0
    capsys.readouterr()
    assert len(count_truth_loads) == 1


def test_run_with_a_plan_resolves_nothing_again(monkeypatch, tmp_path):
    cfg = apply_overrides(load_preset("quick"), {"train.device": "cpu"})
    plan = resolve(cfg, 2, tmp_path)
    monkeypatch.setattr(rankbench.pipeline, "resolve", lambda *a, **k: pytest.fail("resolved twice"))
    seen = []
    monkeypatch.setattr(rankbench.pipeline, "run_seed", lambda p, **k: seen.append(p) or pytest.skip("enough"))
    try:
        rankbench.pipeline.run(cfg, calibrate=False, seeds=2, runs_root=tmp_path, plan=plan, echo=None)
    except pytest.skip.Exception:
        pass
    assert seen and seen[0].truth is plan.truth and seen[0].seeds == [2020]


def test_the_report_is_a_typed_object_that_writes_and_loads(tmp_path):
    import json
    import math

    from rankbench.reports import RunReport, load_report

    names = [f for f in RunReport.__dataclass_fields__ if f not in ("extra", "also")]
    rep = RunReport(**{n: {} for n in names})  # also: empty, so not written (as before extra truths)
    rep.report, rep.metrics = "clean-calib-0123456789ab", {"calib": {"per_subnet": {"kendall_tau": math.nan}}}
    rep.extra = {"from_a_newer_version": 1}
    d = rep.write(tmp_path / "reports" / rep.report)
    data = json.loads((d / "metrics.json").read_text())
    assert list(data)[:len(names)] == names and data["from_a_newer_version"] == 1
    assert data["metrics"]["calib"]["per_subnet"]["kendall_tau"] is None  # strict JSON
    back = RunReport.load(d)
    assert back.report == rep.report and back.extra == {"from_a_newer_version": 1}
    assert load_report(d).data.to_dict() == back.to_dict()
    assert "also" not in data and back.also == {}
    rep.also = {"measured": {"metrics": {}}}  # ranked against an extra truth: written after "created"
    data = json.loads((rep.write(d) / "metrics.json").read_text())
    assert list(data)[:len(names) + 1] == [*names, "also"] and RunReport.load(d).also == rep.also


def test_one_check_says_whether_a_run_is_finished_with_this_fingerprint(tmp_path):
    import pytest as _pytest

    from rankbench.rundir import RunDir, init_run_dir

    cfg = apply_overrides(load_preset("quick"), {"train.device": "cpu"})
    rd = RunDir(init_run_dir(tmp_path / "run", cfg))
    assert rd.other_training(cfg) is None and not rd.finished_with(cfg)
    rd.done_marker.write_text("{}")
    rd.supernet.write_bytes(b"")
    assert rd.finished_with(cfg)
    other = apply_overrides(cfg, {"train.lr": 0.5})
    assert "different training config" in rd.other_training(other)
    with _pytest.raises(ValueError, match="different training config"):
        rd.finished_with(other)


def test_score_proxies_override_forms():
    """score.proxies from --set: "a,b", a TOML list, "all"; a plain list from a dict; the
    proxies' batch must fit in a training subset (checked only where proxies are chosen)."""
    base = load_preset("quick")
    for value in ("synflow,naswot", '["synflow", "naswot"]', ["synflow", "naswot"]):
        assert apply_overrides(base, {"score.proxies": value}).score.proxies == ("synflow", "naswot")
    assert apply_overrides(base, ["score.proxies=all"]).score.proxies == ("all",)
    assert apply_overrides(base, ["score.proxies=naswot"]).score.proxies == ("naswot",)
    assert base.score.proxies == () and base.score.proxy_batch_size == 64
    with pytest.raises(ConfigError, match="list of names"):
        apply_overrides(base, ["score.proxies=3"])
    small = apply_overrides(base, {"data.train_size": 50, "train.device": "cpu"})
    validate_config(small)  # no proxies: the batch size is not checked
    with pytest.raises(ConfigError, match="score.proxy_batch_size = 64"):
        validate_config(apply_overrides(small, {"score.proxies": "naswot"}))


@pytest.mark.parametrize("spec, says", [("nope", "unknown training sampler 'nope'; samplers: uniform"),
                                        ("fixed", "needs an arch"), ("pool:x", "with integers"),
                                        ("uniform:3", "takes no argument")])
def test_a_bad_training_sampler_fails_in_the_plan_before_anything_is_written(tmp_path, capsys, spec, says):
    cfg = apply_overrides(load_preset("quick"), {"train.device": "cpu", "train.sampler": spec})
    with pytest.raises(ConfigError, match="train.sampler") as e:
        resolve(cfg, 1, tmp_path / "runs", truth="skip")
    assert says in str(e.value) and "rankbench list samplers" in str(e.value)
    assert main(["run", "--set", f"train.sampler={spec}", "--runs-root", str(tmp_path / "runs"),
                 "--device", "cpu"]) == 2
    assert "train.sampler" in capsys.readouterr().err and not (tmp_path / "runs").exists()
    # a good one (with its argument) passes
    good = resolve(apply_overrides(cfg, {"train.sampler": "pool:3"}), 1, tmp_path / "ok", truth="skip")
    assert good.cfg.train.sampler == "pool:3"


def test_nb101_quick_with_its_measured_truth_as_an_extra_truth(tmp_path, monkeypatch):
    """truth.also = ["measured"] on nb101-quick: the plan loads the preset's measured truth (here a
    SYNTHETIC one, written by the test where $RANKBENCH_HOME would hold it) once, beside NB101's,
    with its coverage of the candidates; the report's name does not move."""
    import pandas as pd

    import rankbench.truth

    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setattr(rankbench.truth, "data_home", lambda: home)
    cfg = apply_overrides(load_preset("nb101-quick"), {"train.device": "cpu"})
    hashes = resolve(cfg, 1, tmp_path / "runs", truth="skip").hashes
    covered = list(dict.fromkeys(hashes))[:40]
    pd.DataFrame([{"hash": h, "seed": s, "validation_accuracy": 0.5 + 0.001 * i + 0.0001 * s}
                  for i, h in enumerate(covered) for s in (0, 1)]).to_csv(home / "truth-nb101-quick.csv", index=False)
    with_also = apply_overrides(cfg, {"truth.also": "measured"})
    p = resolve(with_also, 1, tmp_path / "runs")
    (x,) = p.also
    assert x.key == "measured" and x.truth.source == "measured"
    assert x.truth.location == str(home / "truth-nb101-quick.csv")
    assert x.coverage.covered == sum(h in set(covered) for h in hashes) and x.coverage.candidates == len(hashes)
    assert x.coverage.classes_covered == 40 and x.digest == x.truth.digest()
    assert p.truth.source == "nb101" and p.report_name(True) == resolve(cfg, 1, tmp_path / "runs").report_name(True)
    assert p.with_variant("bn").also == p.also and p.for_seed(2021).also == p.also
    with pytest.raises(ConfigError, match="truth.also.*is truth.source already"):
        resolve(apply_overrides(cfg, {"truth.also": "nb101"}), 1, tmp_path / "runs")
