"""Issue 18, step 7: latent bugs found in review, each with the test that shows it fixed."""
from __future__ import annotations

import json

import pytest

import rankbench.train
from rankbench.cli import main
from rankbench.config import apply_overrides, load_preset


def test_a_finished_train_on_a_space_without_m_prints_its_summary(tmp_path, capsys, monkeypatch):
    """``rankbench train --space nb101`` printed cfg.model.m after training and died (AttributeError)."""

    def fake_train(cfg, run_dir, **_kw):
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "train_done.json").write_text(json.dumps(
            {"epochs": 1, "wall_s": 1.0, "device": "cpu", "train_loss": 2.0, "train_acc": 0.1, "images_per_s": 10.0,
             "epoch_s": 1.0}))
        return run_dir

    monkeypatch.setattr(rankbench.train, "train_supernet", fake_train)
    assert main(["train", "--space", "nb101", "--out", str(tmp_path / "run"), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "space nb101" in out and "1 epochs" in out


def test_load_truth_without_candidates_uses_the_configs_space(monkeypatch):
    """load_truth(cfg) without candidates built S4 whatever the config's space was."""
    from rankbench import truth as truth_mod
    from rankbench.truth import load_truth

    seen = []
    monkeypatch.setattr(truth_mod, "truth_from_store", lambda subnets, store, **kw: seen.append(list(subnets)))
    cfg = apply_overrides(load_preset("nb1shot1-1-quick"), {"truth.source": "nb101"})
    load_truth(cfg)
    from rankbench.spaces import space_from_config

    assert len(seen[0]) == len(space_from_config(cfg).hash_classes())


def test_reference_labels_come_from_the_registry():
    """references.REFERENCE_LABELS was a dict nobody read: the labels live in the registry now."""
    from rankbench import references

    assert not hasattr(references, "REFERENCE_LABELS")
    assert references.reference_label("flops") == "FLOPs (MACs)"
    assert references.reference_label("not-registered") == "not-registered"


@pytest.mark.parametrize("source", ("nb101", "measured", "/some/truth.csv"))
def test_no_branch_on_the_truth_source_string_is_left(source):
    from rankbench.truth import TRUTHS, truth_source

    cfg = apply_overrides(load_preset("quick"), {"truth.source": source})
    assert isinstance(truth_source(cfg), TRUTHS.get(source if source in TRUTHS else "csv"))
