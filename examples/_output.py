"""Shared by the example scripts: quick mode, the ``--out`` option, saving figures, and the
MNIST-sized synthetic data of the GPU and mixed-precision scripts.

Not an example: running it (as the nox ``examples`` session does with every
``examples/*.py``) prints one line and exits 0. The scripts import it as ``_output``, which
works because Python puts a script's own folder first on ``sys.path``.

Figures go to ``--out DIR`` when given, else to ``examples/output/`` (ignored by git), or to
a new temporary folder with ``MLPX_EXAMPLE_QUICK=1`` (the nox ``examples`` session).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import tempfile
from pathlib import Path

QUICK = os.environ.get("MLPX_EXAMPLE_QUICK") == "1"
DPI = 100  # small PNGs (the README gallery copies some of them)


def add_out_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--out DIR`` (the folder for the figures) to an example's parser."""
    parser.add_argument("--out", default=None, metavar="DIR",
                        help="folder for the pictures (default: examples/output/, a temporary "
                             "folder with MLPX_EXAMPLE_QUICK=1)")


def output_folder(out: str | None, name: str) -> Path:
    """``--out``, else ``examples/output/`` (a temporary folder in quick mode); created."""
    if out is not None:
        folder = Path(out)
    elif QUICK:
        folder = Path(tempfile.mkdtemp(prefix=f"mlpx-{name}-"))
    else:
        folder = Path(__file__).resolve().parent / "output"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def have_matplotlib() -> bool:
    """True when matplotlib is installed; otherwise say how to get the figures."""
    if importlib.util.find_spec("matplotlib") is not None:
        return True
    print("matplotlib is not installed, so no figures are saved (pip install 'mlpx[plot]')")
    return False


def save(figure, path: Path, dpi: int = DPI) -> Path:
    """Write ``figure`` to ``path`` as PNG, close it, print where it went; returns path."""
    import matplotlib.pyplot as plt

    figure.savefig(path, dpi=dpi)
    plt.close(figure)
    print(f"wrote {path}")
    return path


def mnist_sized_blobs(n_train: int, *, cluster_std: float) -> tuple:
    """10 Gaussian blobs in 784 dimensions (MNIST's shape, no download), split 80/20 and
    standardised on the training part: ``(X_train, X_test, y_train, y_test)``."""
    from mlpx.datasets import StandardScaler, make_blobs, train_test_split

    X, y = make_blobs(n_samples=n_train + n_train // 4, n_features=784, centers=10,
                      cluster_std=cluster_std, seed=0)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, seed=0)
    scaler = StandardScaler().fit(X_train)
    return scaler.transform(X_train), scaler.transform(X_test), y_train, y_test


if __name__ == "__main__":
    print("examples/_output.py holds helpers for the example scripts; it is not an example.")
