"""Shipped files hold no absolute path of the machine that made them (issue: paths in
docs/ablation tables, data/truth-quick.json, script defaults). Run outputs may; shipped
files use paths relative to the repository or the package."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# an absolute POSIX path under a typical machine-specific root, or a Windows drive path
ABSOLUTE = re.compile(r"(?<![\w.~])/(?:work|home|root|tmp|Users|mnt|scratch|data|private|var/folders)/[\w.\-]+"
                      r"|\b[A-Za-z]:\\\\[\w]")
TEXT_SUFFIXES = {".py", ".md", ".json", ".csv", ".toml", ".txt", ".cfg", ".yaml", ".yml", ".sh", ""}


def _shipped() -> list[Path]:
    try:
        out = subprocess.run(["git", "-C", str(REPO), "ls-files"], capture_output=True, text=True, check=True,
                             timeout=30).stdout.split()
    except (OSError, subprocess.SubprocessError):
        pytest.skip("not a git checkout")
    files = [REPO / f for f in out if (REPO / f).suffix in TEXT_SUFFIXES and (REPO / f).is_file()]
    return [f for f in files if f.name != Path(__file__).name]


def test_pattern_catches_what_it_should():
    assert ABSOLUTE.search('"command": "/work/venv/bin/rankbench truth"')
    assert ABSOLUTE.search("truth: csv: /home/alice/rankbench/data/truth-quick.csv")
    assert ABSOLUTE.search(r"C:\\Users\bob")
    assert not ABSOLUTE.search("#!/usr/bin/env python3")
    assert not ABSOLUTE.search("data/truth-quick.csv and ~/.cache/rankbench/nb101.h5")


def test_no_shipped_file_holds_an_absolute_path():
    hits = []
    for f in _shipped():
        try:
            text = f.read_text()
        except UnicodeDecodeError:
            continue
        for i, line in enumerate(text.splitlines(), 1):
            m = ABSOLUTE.search(line)
            if m:
                hits.append(f"{f.relative_to(REPO)}:{i}: {m.group(0)}")
    assert not hits, "absolute paths in shipped files:\n" + "\n".join(hits[:30])
