"""The package's boundaries are type-checked and linted in CI: mypy and ruff with the settings
of pyproject.toml ([tool.mypy], [tool.ruff]) must pass. Skipped where they are not installed
(``pip install -e ".[test]"`` installs both)."""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _run(module: str, *args: str) -> subprocess.CompletedProcess:
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed (pip install -e '.[test]')")
    return subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)


def test_mypy_passes():
    r = _run("mypy")  # files and settings: pyproject.toml [tool.mypy]
    assert r.returncode == 0, r.stdout + r.stderr


def test_ruff_passes():
    r = _run("ruff", "check", "rankbench", "tests/test_golden.py", "tests/test_plan.py", "tests/test_registries.py",
             "tests/test_typecheck.py")
    assert r.returncode == 0, r.stdout + r.stderr
