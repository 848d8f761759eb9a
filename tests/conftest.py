"""Test isolation: user data locations point into a per-session temporary folder, so tests
never read or write ~/.cache/rankbench, an imported store, or ./runs."""
import os

from rankbench.numerics import PORTABLE_ENV

# The quick presets train in portable mode (CPU kernels pinned to AVX2), which must be set before
# torch's first CPU kernel: the whole suite runs at that level, so in-process runs can take it.
os.environ.update(PORTABLE_ENV)
# Reports' figures and HTML page cost ~3 s per tiny run: tests of the pipeline skip them;
# tests/test_html_report.py and tests/test_figures.py draw them on purpose.
os.environ.setdefault("RANKBENCH_REPORT_PAGES", "0")

import pytest  # noqa: E402
import torch  # noqa: E402


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


def synthetic_splits(train: int, valid: int, test: int, seed: int = 0):
    """Random uint8 16x16 images and labels as CIFAR10Splits (plumbing tests: no real data)."""
    from rankbench.data.cifar10 import CIFAR10Splits, ImageSet

    g = torch.Generator().manual_seed(seed)

    def images(n):
        return ImageSet(torch.randint(0, 256, (n, 3, 16, 16), dtype=torch.uint8, generator=g),
                        torch.randint(0, 10, (n,), generator=g))

    return CIFAR10Splits(train=images(train), valid=images(valid), test=images(test), source="synthetic",
                         kind="synthetic", split="random", nb101_split=False)
