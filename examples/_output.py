"""Shared by the example scripts: quick mode, the ``--out`` option and saving figures.

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


if __name__ == "__main__":
    print("examples/_output.py holds helpers for the example scripts; it is not an example.")
