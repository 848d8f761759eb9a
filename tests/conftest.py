"""Test isolation: user data locations point into a per-session temporary folder, so tests
never read or write ~/.cache/rankbench, an imported store, or ./runs."""
import os

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _isolated_data_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("rankbench-home")
    old = {k: os.environ.get(k) for k in ("RANKBENCH_HOME", "RANKBENCH_DATA", "RANKBENCH_RUNS")}
    os.environ["RANKBENCH_HOME"] = str(home)
    os.environ["RANKBENCH_RUNS"] = str(home / "runs")
    os.environ.pop("RANKBENCH_DATA", None)
    yield home
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread for a module's tests: their tensors are tiny, so one thread is the
    fastest and is immune to a busy machine. Use with
    ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
