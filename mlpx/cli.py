"""The command line: ``mlpx train`` and ``mlpx info`` (``python -m mlpx`` is the same).

``mlpx train`` with no options reproduces tutorial 004: the moons data (500 samples,
noise 0.2, seed 42), an 80/20 train/test split, features standardised on the train split,
the network ``[2, 16, 8, 1]`` (relu, relu, sigmoid) trained by full-batch gradient descent
at learning rate 0.1 for 2000 epochs. It prints a header, a progress bar (standard error),
the loss every ``--print-every`` epochs, and as its last line ``test accuracy: 0.980``
(``test r2: 0.812`` for regression).

``mlpx info`` lists the backends, whether each is usable here, its devices and version, and
whether the compiled kernels (optimizer steps, hidden activations, softmax and sigmoid
gradients, row gather) run.

Exit codes: 0 success, 1 training diverged (NaN/inf loss), 2 a bad option value or input
(one line ``mlpx: error: ...`` on standard error, no traceback).
"""

from __future__ import annotations

import argparse
import csv
import difflib
import io
import math
import os
import platform
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mlpx import datasets
from mlpx._backend import (
    BACKEND_NAMES,
    DTYPE_NAMES,
    Backend,
    backend_report,
    from_host,
    resolve_backend,
    resolve_dtype,
)
from mlpx._errors import (
    BackendUnavailableError,
    MlpxTypeError,
    MlpxValueError,
    NonFiniteLossError,
)
from mlpx.activations import ACTIVATIONS
from mlpx.callbacks import Callback, Checkpoint, ProgressBar
from mlpx.model import MLP
from mlpx.optim import OPTIMIZERS
from mlpx.precision import MATMUL_PRECISIONS, matmul_function

DATASETS = ("moons", "circles", "xor", "spirals", "blobs", "digits")
HIDDEN_ACTIVATIONS = tuple(name for name, act in ACTIVATIONS.items() if not act.output_only)
TASKS = ("auto", "classification", "regression")

# ``--task auto``: a numeric target with a non-integer value and more than this many
# distinct values is a regression target; anything else is a classification target.
MAX_FLOAT_CLASSES = 10

TRAIN_EPILOG = f"""\
data sources:
  --dataset NAME    a generated dataset on the chosen backend (default moons: 500 samples,
                    noise 0.2); digits needs scikit-learn.
  --data FILE       .csv (UTF-8): the first row is a header when it has text in a column
                    that is numeric everywhere else, or text in every column; --target is
                    a column name or a 0-based index (default: the last column); every
                    other column must be numeric, with no missing values (empty, NA, NaN,
                    null, ?). Errors name the line of the file.
                    .npz: arrays X (n_samples, n_features) and y (or the key --target).
                    .npy: one 2-D numeric array; --target is a column index (default last).
  Features are standardised with the mean and deviation of the train split; regression
  targets too (R^2 does not change).

the task (--task auto):
  regression when the target is numeric, has a non-integer value and more than
  {MAX_FLOAT_CLASSES} distinct values (or has several columns); classification otherwise
  (text, booleans, integers, few distinct values). Classification labels are mapped to
  0..k-1 in sorted order.

the network:
  [n_features, *--hidden, n_outputs], --activation in the hidden layers; the output is
  1 sigmoid unit for 2 classes, k softmax units for k > 2 classes, identity for regression.

exit codes: 0 done, 1 training diverged (NaN/inf loss), 2 bad option or input,
  130 interrupted (Ctrl-C): training stops after the current step; --save writes nothing.
"""


class CliError(Exception):
    """A bad option value or input file; :func:`main` prints it and returns 2."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors raise :class:`CliError` instead of exiting."""

    def error(self, message: str):  # type: ignore[override]
        raise CliError(f"{message} (see '{self.prog} --help')")


# --------------------------------------------------------------------------- option types


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None


def positive_int(text: str) -> int:
    """An int >= 1 (``--epochs``)."""
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be an integer >= 1")
    return value


def non_negative_int(text: str) -> int:
    """An int >= 0 (``--print-every``, ``--seed``)."""
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} must be an integer >= 0")
    return value


def batch_size(text: str) -> int | None:
    """An int >= 1, or ``full`` for full-batch gradient descent (None)."""
    if text.strip().lower() in ("full", "none"):
        return None
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be an integer >= 1 or 'full'")
    return value


def learning_rate(text: str) -> float:
    """A finite float > 0 (``--lr``)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text} must be a finite number > 0, e.g. 0.1")
    return value


def test_rows(text: str) -> float | int:
    """A fraction in (0, 1) or a row count >= 1 (``--test-size``)."""
    try:
        return positive_int(text)
    except argparse.ArgumentTypeError:
        pass
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(
            f"{text} must be a fraction in (0, 1) such as 0.2, or a row count >= 1"
        )
    return value


def hidden_sizes(text: str) -> tuple[int, ...]:
    """Comma-separated hidden layer sizes (``16,8``); ``none`` for no hidden layer."""
    if text.strip().lower() in ("", "none"):
        return ()
    sizes = []
    for part in text.split(","):
        try:
            size = int(part)
        except ValueError:
            size = 0
        if size < 1:
            raise argparse.ArgumentTypeError(
                f"{text!r} must be comma-separated layer sizes >= 1 such as 16,8 "
                "('none' for no hidden layer)"
            )
        sizes.append(size)
    return tuple(sizes)


# --------------------------------------------------------------------------- the parser


def build_parser() -> argparse.ArgumentParser:
    """The ``mlpx`` parser with its ``train`` and ``info`` subcommands."""
    from mlpx import __version__

    parser = _Parser(
        prog="mlpx",
        description="Train multi-layer perceptrons on NumPy, CuPy, PyTorch or "
        "array-api-strict from the command line.",
    )
    parser.add_argument("--version", action="version", version=f"mlpx {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    train = commands.add_parser(
        "train",
        help="train an MLP and print its test accuracy",
        description="Train an MLP on a generated dataset or a file. The last line printed\n"
        "is 'test accuracy: 0.968' (or 'test r2: 0.812' for regression).",
        epilog=TRAIN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_train_options(train)
    train.set_defaults(handler=run_train)
    info = commands.add_parser("info", help="list the usable backends and devices")
    info.set_defaults(handler=run_info)
    return parser


def _add_train_options(train: argparse.ArgumentParser) -> None:
    data = train.add_argument_group("data")
    source = data.add_mutually_exclusive_group()
    source.add_argument("--dataset", choices=DATASETS, default=None,
                        help="a generated dataset (default: moons)")
    source.add_argument("--data", metavar="FILE", type=Path, default=None,
                        help="a .csv, .npz or .npy file instead of --dataset")
    data.add_argument("--target", metavar="COLUMN", default=None,
                      help="with --data: the target column (name or 0-based index) or npz "
                      "key (default: the last column, or y)")
    data.add_argument("--task", choices=TASKS, default="auto",
                      help="classification or regression (default: auto, see below)")
    data.add_argument("--test-size", type=test_rows, default=0.2, metavar="SIZE",
                      help="fraction or number of rows held out for testing (default: 0.2)")
    data.add_argument("--stratify", action="store_true",
                      help="keep the class proportions in the train/test split")

    net = train.add_argument_group("network and training")
    net.add_argument("--hidden", type=hidden_sizes, default=(16, 8), metavar="SIZES",
                     help="hidden layer sizes, comma-separated (default: 16,8)")
    net.add_argument("--activation", choices=HIDDEN_ACTIVATIONS, default="relu",
                     help="activation of the hidden layers (default: relu)")
    net.add_argument("--epochs", type=positive_int, default=2000, metavar="N",
                     help="passes over the training data (default: 2000)")
    net.add_argument("--batch-size", type=batch_size, default=None, metavar="N",
                     help="samples per step, or 'full' (default: full batch)")
    net.add_argument("--optimizer", choices=tuple(OPTIMIZERS), default="sgd",
                     help="optimizer (default: sgd)")
    net.add_argument("--lr", type=learning_rate, default=0.1,
                     help="learning rate (default: 0.1)")
    net.add_argument("--seed", type=non_negative_int, default=42, metavar="N",
                     help="seeds the data, the split, the weights and the shuffling "
                     "(default: 42)")

    run = train.add_argument_group("backend and output")
    run.add_argument("--backend", choices=BACKEND_NAMES, default="numpy",
                     help="array library to train on (default: numpy)")
    run.add_argument("--device", default=None,
                     help="device of the backend, e.g. cuda:1 (default: the backend's own)")
    run.add_argument("--dtype", choices=DTYPE_NAMES, default="float32",
                     help="floating dtype (default: float32)")
    run.add_argument("--matmul-precision", choices=MATMUL_PRECISIONS, default="highest",
                     help="bfloat16: mixed-precision matrix products with float32 weights, "
                     "--backend torch only (default: highest)")
    run.add_argument("--print-every", type=non_negative_int, default=None, metavar="N",
                     help="print the loss every N epochs, 0 for never "
                     "(default: epochs // 20)")
    run.add_argument("--quiet", action="store_true", help="no progress bar")

    files = train.add_argument_group("files")
    files.add_argument("--plot", metavar="FILE", type=Path, default=None,
                       help="write a figure (.png, .svg or .pdf): the decision boundary (2 "
                       "features) or the confusion matrix (more) on the test split, beside "
                       "the train and test loss curves; needs matplotlib (mlpx[plot])")
    files.add_argument("--save", metavar="FILE", type=Path, default=None,
                       help="write the trained model to FILE (safetensors; load it with "
                       "mlpx.load); not written when training is interrupted")
    files.add_argument("--checkpoint", metavar="FILE", type=Path, default=None,
                       help="save the training state to FILE every --checkpoint-every "
                       "epochs, to continue later with --resume FILE")
    files.add_argument("--checkpoint-every", type=positive_int, default=10, metavar="N",
                       help="epochs between checkpoints (default: 10)")
    files.add_argument("--resume", metavar="FILE", type=Path, default=None,
                       help="continue the run that --checkpoint FILE saved (same data and "
                       "options) until --epochs in total")


# --------------------------------------------------------------------------- backend


def resolve_cli_backend(name: str, device: str | None) -> Backend:
    """Resolve ``--backend`` and ``--device``, and check the device can hold an array."""
    backend = resolve_backend(name)
    if device is None:
        return backend
    try:
        backend = resolve_backend(name, device)
        backend.xp.zeros((1,), device=backend.device)
    except (RuntimeError, AssertionError, ValueError, TypeError) as exc:
        raise CliError(f"--device {device!r} is not usable with backend {name}: {exc}") from None
    return backend


def check_matmul_precision(args: argparse.Namespace, backend: Backend) -> None:
    """Refuse a ``--matmul-precision`` the backend or dtype cannot run, before any work."""
    try:
        matmul_function(args.matmul_precision, xp=backend.xp,
                        dtype=resolve_dtype(args.dtype, xp=backend.xp),
                        backend_name=backend.name, dtype_label=args.dtype)
    except MlpxValueError as exc:
        raise CliError(f"--matmul-precision {args.matmul_precision}: {exc}") from None


def device_label(backend: Backend) -> str:
    """A short name of the backend's device for the header."""
    return str(backend.device)


# --------------------------------------------------------------------------- data


@dataclass
class Dataset:
    """The data of one run, on the backend.

    Attributes
    ----------
    name : str
        The dataset name or file name.
    X : array of shape (n_samples, n_features)
    y : array
        Class indices of shape (n_samples,) (int64) for classification, targets of shape
        (n_samples, n_targets) for regression.
    task : {"classification", "regression"}
    classes : list of str or None
        The class labels behind the indices 0..k-1.
    """

    name: str
    X: Any
    y: Any
    task: str
    classes: list[str] | None


_GENERATORS = {
    "moons": datasets.make_moons,
    "circles": datasets.make_circles,
    "xor": datasets.make_xor,
    "spirals": datasets.make_spirals,
    "blobs": datasets.make_blobs,
}


def load_dataset(args: argparse.Namespace, backend: Backend) -> Dataset:
    """The data ``--dataset`` or ``--data`` asks for, on ``backend`` in ``--dtype``."""
    if args.target is not None and args.data is None:
        raise CliError("--target needs --data (it names the target column of that file)")
    if args.data is not None:
        X, y = read_data_file(args.data, args.target)
        return host_dataset(args.data.name, X, y, args.task, backend=backend, dtype=args.dtype)
    name = args.dataset or "moons"
    X, y = _generate(name, seed=args.seed, backend=backend, dtype=args.dtype)
    if args.task == "regression":
        raise CliError(f"--task regression does not fit --dataset {name}, which has class labels")
    n_classes = int(backend.xp.max(y)) + 1
    return Dataset(name, X, y, "classification", [str(k) for k in range(n_classes)])


def _generate(name: str, *, seed: int, backend: Backend, dtype: str) -> tuple[Any, Any]:
    if name != "digits":
        return _GENERATORS[name](seed=seed, backend=backend, dtype=dtype)
    try:
        return datasets.load_digits(backend=backend, dtype=dtype)
    except ImportError as exc:
        if isinstance(exc, BackendUnavailableError):
            raise
        raise CliError(f"--dataset digits: {exc}") from None


def read_data_file(path: Path, target: str | None) -> tuple[np.ndarray, np.ndarray]:
    """Read ``--data``: features (n_samples, n_features) float64 and the target (host).

    Raises
    ------
    CliError
        Missing file, a directory, unknown type, unknown target, non-numeric, missing or
        non-finite features; each message names the file.
    """
    if path.is_dir():
        raise CliError(f"--data: {path} is a directory, not a file; give the path of a "
                       ".csv, .npz or .npy file")
    if not path.is_file():
        raise CliError(f"--data: no such file: {path}")
    readers = {".csv": read_csv, ".npz": read_npz, ".npy": read_npy}
    reader = readers.get(path.suffix.lower())
    if reader is None:
        raise CliError(f"--data: cannot read {path.suffix or 'files without a suffix'}; "
                       "use a .csv, .npz or .npy file")
    try:
        X, y = reader(path, target)
    except (OSError, ValueError, UnicodeDecodeError, zipfile.BadZipFile, csv.Error) as exc:
        raise CliError(f"--data: cannot read {path}: {exc}") from None
    return _check_features(X, y, path)


# Cells that mean "no value": pandas' default ``na_values`` and ``?`` (UCI data sets),
# compared in lower case. "nan" parses as a float, so it is listed here too.
MISSING_MARKERS = frozenset({
    "", "#n/a", "#n/a n/a", "#na", "-1.#ind", "-1.#qnan", "1.#ind", "1.#qnan", "<na>",
    "n/a", "na", "nan", "-nan", "+nan", "null", "none", "?",
})

# At most this many column names are listed in an error message.
MAX_LISTED_COLUMNS = 20


@dataclass
class _CsvTable:
    """The cells of a CSV file below its header, with where each row is in the file.

    Attributes
    ----------
    path : Path
    cells : array of str of shape (n_rows, n_columns)
        The stripped cells of the data rows.
    values : array of float64 of shape (n_rows, n_columns)
        The cells as numbers; NaN where a cell is not a number or is missing.
    missing : array of bool of shape (n_rows, n_columns)
        Which cells mark a missing value (see ``MISSING_MARKERS``).
    lines : array of int of shape (n_rows,)
        The 1-based line of the file on which each data row starts.
    header : list of str or None
        The column names, when the first row is a header.
    """

    path: Path
    cells: np.ndarray
    values: np.ndarray
    missing: np.ndarray
    lines: np.ndarray
    header: list[str] | None

    def column(self, k: int) -> str:
        """``column 'name'`` with a header, ``column k`` (0-based) without."""
        return f"column {self.header[k]!r}" if self.header else f"column {k}"

    def where(self, row: int, k: int) -> str:
        """``column 'name' on line 7`` for data row ``row`` (0-based) and column ``k``."""
        return f"{self.column(k)} on line {self.lines[row]}"


def read_csv(path: Path, target: str | None) -> tuple[np.ndarray, np.ndarray]:
    """A CSV file: optional header row, ``target`` column by name or 0-based index.

    Every message about a cell names the file, the column (its header name, or its 0-based
    index without a header) and the 1-based line of the file, header and blank lines counted.
    A file of numbers only is read by NumPy's C parser (:func:`_numeric_csv`); any other,
    and any file with something to report, cell by cell.
    """
    text = _utf8_text(path)
    numeric = _numeric_csv(text, path, target)
    if numeric is not None:
        return numeric
    lines, rows = _csv_rows(path, text)
    n_columns = _check_row_lengths(path, lines, rows)
    cells = np.array(rows, dtype=str)
    values = np.vectorize(_number, otypes=[np.float64])(cells)
    missing = np.vectorize(_is_missing, otypes=[bool])(cells)
    header = _header(cells, ~np.isnan(values), missing)
    skip = 0 if header is None else 1
    if cells.shape[0] == skip:
        raise CliError(f"--data: {path} has a header (line {lines[0]}) but no data rows")
    table = _CsvTable(path, cells[skip:], values[skip:], missing[skip:],
                      np.asarray(lines[skip:]), header)
    column = _target_column(target, header, n_columns, path)
    features = [k for k in range(n_columns) if k != column]
    return _csv_features(table, features), _csv_target(table, column)


def _numeric_csv(text: str, path: Path,
                 target: str | None) -> tuple[np.ndarray, np.ndarray] | None:
    """``read_csv``'s features and target for a file of finite numbers, else None.

    The cell-by-cell reader keeps every cell as a string first: a 142 MB file of 20 000
    rows of 785 numbers took it 56 s and 3.4 GB, ``np.loadtxt`` 1.3 s and 0.4 GB (the text
    included). This takes the files that reader would accept without a word to say: no
    quotes, an optional header, feature columns of finite numbers in every other row, the
    same number of cells in each, and a target column of finite numbers or of labels with
    none missing. The header is decided by the cell-by-cell reader's rule. For anything
    else (missing values, ragged rows, quotes, text among the features) it returns None,
    and the cell-by-cell reader reads the file or says what is wrong, naming the cell.
    """
    lines = text.split("\n")
    filled = [i for i, line in enumerate(lines) if line.strip()]
    if '"' in text or len(filled) < 2:  # one row: a header without data, or data alone
        return None
    first_index = filled[0]
    first = [cell.strip() for cell in lines[first_index].split(",")]
    n_columns = len(first)
    if n_columns < 2:
        return None
    is_text = [cell.lower() not in MISSING_MARKERS and math.isnan(_number(cell))
               for cell in first]
    try:  # a target named in the first row makes it the header
        column = _target_column(target, first if any(is_text) else None, n_columns, path)
    except CliError:
        return None
    features = [k for k in range(n_columns) if k != column]
    for target_is_numeric in (True, False):
        # the first row is the header if it has text over a column of numbers below it (or
        # is all names): over the features, and over the target when it holds numbers
        over_numbers = [is_text[k] for k in (range(n_columns) if target_is_numeric
                                              else features)]
        has_header = any(over_numbers) or (
            all(text or not cell for text, cell in zip(is_text, first)) and any(is_text))
        data_lines = [line for line in lines[first_index + has_header:] if line.strip("\r")]
        if not data_lines:
            return None
        try:  # from the file, which NumPy reads in chunks: no second copy of the text
            table = np.loadtxt(path, delimiter=",", comments=None, dtype=np.float64,
                               ndmin=2, encoding="utf-8-sig", usecols=None
                               if target_is_numeric else features,
                               skiprows=first_index + has_header)
        except ValueError:  # text, missing values or ragged rows
            continue
        if table.shape != (len(data_lines), n_columns - (not target_is_numeric)) or not (
                np.isfinite(table).all()):
            return None
        if column != _target_column(target, first if has_header else None, n_columns, path):
            return None  # the target was named in a row that is not the header
        if target_is_numeric:
            return np.delete(table, column, axis=1), table[:, column].copy()
        labels = _label_column(data_lines, column, n_columns)
        return None if labels is None else (table, labels)
    return None


def _label_column(data_lines: list[str], column: int, n_columns: int) -> np.ndarray | None:
    """The target cells of unquoted CSV lines as text (labels), as ``_csv_target`` gives
    a column that holds text; None unless every line has ``n_columns`` cells, no label is
    missing, no number infinite, and some label is not a number."""
    if any(line.count(",") != n_columns - 1 for line in data_lines):
        return None
    # split from the nearer end: only the cells up to the target's are made strings
    if 2 * column < n_columns:
        labels = [line.split(",", column + 1)[column].strip() for line in data_lines]
    else:
        labels = [line.rsplit(",", n_columns - column)[1].strip() for line in data_lines]
    values = np.array([_number(label) for label in labels])
    if (np.isinf(values).any() or not np.isnan(values).any()
            or any(label.lower() in MISSING_MARKERS for label in labels)):
        return None
    return np.array(labels, dtype=str)


def _csv_rows(path: Path, text: str) -> tuple[list[int], list[list[str]]]:
    """The non-blank rows of a CSV file (stripped cells) and the line each starts on."""
    reader = csv.reader(io.StringIO(text, newline=""))
    lines, rows, start = [], [], 1
    try:
        for row in reader:
            cells = [cell.strip() for cell in row]
            if any(cells):
                lines.append(start)
                rows.append(cells)
            start = reader.line_num + 1
    except csv.Error as exc:
        raise CliError(f"--data: {path} line {reader.line_num} is not valid CSV: {exc}") from None
    if not rows:
        raise CliError(f"--data: {path} is empty; it needs one row per sample with feature "
                       "columns and a target column")
    return lines, rows


def _utf8_text(path: Path) -> str:
    """The text of a UTF-8 file (a byte order mark is dropped); binary files are refused."""
    data = path.read_bytes()
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise CliError(
            f"--data: {path} is not UTF-8 text CSV (byte 0x{data[exc.start]:02x} on line "
            f"{line}); save it as UTF-8 CSV, or check it is a CSV file at all"
        ) from None
    if "\x00" in text:
        line = text[:text.index("\x00")].count("\n") + 1
        raise CliError(f"--data: {path} is not UTF-8 text CSV (a NUL byte on line {line}); "
                       "it looks like a binary file")
    return text


def _check_row_lengths(path: Path, lines: list[int], rows: list[list[str]]) -> int:
    """The number of columns, after checking every row has it and it is at least 2."""
    n_columns = len(rows[0])
    for line, row in zip(lines, rows, strict=True):
        if len(row) != n_columns:
            raise CliError(
                f"--data: {path} line {line} has {len(row)} columns but line {lines[0]} has "
                f"{n_columns}; every row needs the same columns (quote values with commas)"
            )
    if n_columns < 2:
        raise CliError(f"--data: {path} has one column; it needs feature columns and a target "
                       "column, separated by commas")
    return n_columns


def _is_missing(text: str) -> bool:
    """Whether a stripped cell marks a missing value (empty, NA, NaN, null, ?, ...)."""
    return text.lower() in MISSING_MARKERS


def _number(text: str) -> float:
    """A stripped cell as a float; NaN when it is not a number (or is ``nan``)."""
    try:
        return float(text)
    except ValueError:
        return math.nan


def _header(cells: np.ndarray, numeric: np.ndarray, missing: np.ndarray) -> list[str] | None:
    """The first row as column names, if it is a header.

    It is one when it has text in a column that holds numbers (or missing values) in every
    other row, or when every cell of it is text (no numbers, no missing-value markers but
    empty names).

    Parameters
    ----------
    cells : array of str of shape (n_rows, n_columns)
    numeric, missing : array of bool of shape (n_rows, n_columns)
        Which cells are numbers, and which mark missing values.
    """
    text = ~numeric[0] & ~missing[0]
    named = text | (cells[0] == "")
    if cells.shape[0] > 1:
        below = (numeric[1:] | missing[1:]).all(axis=0)
        is_header = (text & below).any() or (named.all() and text.any())
    else:
        is_header = text.any()
    return [str(name) for name in cells[0]] if is_header else None


def _csv_features(table: _CsvTable, features: list[int]) -> np.ndarray:
    """The feature columns as float64, refusing missing, non-numeric and infinite cells."""
    cells, X = table.cells[:, features], table.values[:, features]
    missing = table.missing[:, features]
    if missing.any():
        row, k = np.argwhere(missing)[0]
        more = f" ({missing.sum()} missing values in all)" if missing.sum() > 1 else ""
        raise CliError(
            f"--data: {table.path} has a missing value {_show_cell(cells[row, k])} in "
            f"{table.where(row, features[k])}{more}; fill in or drop the rows with missing "
            "values"
        )
    if np.isnan(X).any():
        row, k = np.argwhere(np.isnan(X))[0]
        name = table.header[features[k]] if table.header else str(features[k])
        raise CliError(
            f"--data: {table.path} has a non-numeric value {_show_cell(cells[row, k])} in "
            f"{table.where(row, features[k])}; every column but the target must hold "
            f"numbers: encode a categorical column as numbers, or make it the target with "
            f"--target {name}"
        )
    if np.isinf(X).any():
        row, k = np.argwhere(np.isinf(X))[0]
        raise CliError(f"--data: {table.path} has an infinite value {_show_cell(cells[row, k])} "
                       f"in {table.where(row, features[k])}; features must be finite")
    return X


def _show_cell(text: str) -> str:
    """A cell for an error message: ``'NA'``, or ``(an empty cell)``."""
    return repr(str(text)) if text else "(an empty cell)"


def _csv_target(table: _CsvTable, column: int) -> np.ndarray:
    """The target column: float64 when every value is a number, else its text."""
    text, y = table.cells[:, column], table.values[:, column]
    missing = np.flatnonzero(table.missing[:, column])
    if missing.size:
        row = missing[0]
        raise CliError(
            f"--data: {table.path} has a missing target value {_show_cell(text[row])} in the "
            f"target {table.where(row, column)}; drop the rows without a target"
        )
    if np.isnan(y).any():
        return text
    infinite = np.flatnonzero(np.isinf(y))
    if infinite.size:
        row = infinite[0]
        raise CliError(f"--data: {table.path} has an infinite target value "
                       f"{_show_cell(text[row])} in the target {table.where(row, column)}")
    return y


def _target_column(target: str | None, header: list[str] | None, n_columns: int,
                   path: Path) -> int:
    """The index of the ``--target`` column of ``path`` (a header name or a 0-based index)."""
    if n_columns < 2:
        raise CliError(f"--data: {path} has {n_columns} column(s); it needs feature columns "
                       "and a target column")
    if target is None:
        return n_columns - 1
    if header is not None and target.strip() in header:
        return header.index(target.strip())
    try:
        index = int(target)
    except ValueError:
        raise CliError(f"--target {target!r} is not a column of {path}: "
                       f"{_available_columns(target, header, n_columns)}") from None
    if not -n_columns <= index < n_columns:
        raise CliError(f"--target {index} is out of range for {path}: "
                       f"{_available_columns(target, header, n_columns)}")
    return index % n_columns


def _available_columns(target: str, header: list[str] | None, n_columns: int) -> str:
    """The columns ``--target`` may name, for an error message."""
    indices = f"0-based indices 0..{n_columns - 1}"
    if header is None:
        return f"it has no header, so give one of the {indices}"
    shown = ", ".join(header[:MAX_LISTED_COLUMNS])
    if len(header) > MAX_LISTED_COLUMNS:
        shown += f", ... ({len(header)} columns)"
    wanted = target.strip()
    close = ([name for name in header if name.lower() == wanted.lower()]
             or difflib.get_close_matches(wanted, header, n=1))
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"its columns are {shown} (or {indices}){hint}"


def read_npz(path: Path, target: str | None) -> tuple[np.ndarray, np.ndarray]:
    """An ``.npz`` archive with arrays ``X`` and ``y`` (or the key ``target``)."""
    y_key = "y" if target is None else target
    with np.load(path, allow_pickle=False) as archive:
        keys = list(archive.files)
        if "X" not in keys:
            raise CliError(f"--data: {path} has no array 'X' (its arrays: {', '.join(keys)}); "
                           "save the features as X")
        if y_key not in keys:
            option = "--target" if target is not None else "--data"
            raise CliError(f"{option}: {path} has no array {y_key!r} (its arrays: "
                           f"{', '.join(keys)}); name the target array with --target KEY")
        return archive["X"], archive[y_key]


def read_npy(path: Path, target: str | None) -> tuple[np.ndarray, np.ndarray]:
    """A 2-D numeric ``.npy`` array; ``target`` is a column index (default the last)."""
    array = np.load(path, allow_pickle=False)
    if array.ndim != 2:
        raise CliError(f"--data: {path} holds an array of shape {array.shape}; a .npy file "
                       "must hold one 2-D array (n_samples, n_features + 1)")
    column = _target_column(target, None, array.shape[1], path)
    return np.delete(array, column, axis=1), array[:, column]


def _check_features(X: np.ndarray, y: np.ndarray, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Features as a finite float64 matrix with one target row per sample."""
    if X.ndim != 2 or X.shape[1] < 1:
        raise CliError(f"--data: the features in {path} have shape {X.shape}; they must be "
                       "2-D (n_samples, n_features)")
    if X.dtype.kind not in "biuf":
        raise CliError(f"--data: the features in {path} are not numeric (dtype {X.dtype})")
    X = X.astype(np.float64)
    if y.ndim == 0 or y.shape[0] != X.shape[0]:
        raise CliError(f"--data: {path} has {X.shape[0]} feature rows but a target of shape "
                       f"{y.shape}")
    rows, cols = np.nonzero(~np.isfinite(X))
    if rows.size:
        kind = "missing (NaN)" if np.isnan(X[rows[0], cols[0]]) else "infinite"
        raise CliError(f"--data: {path} has a {kind} feature value in row {rows[0]} "
                       f"(0-based), feature column {cols[0]}; drop or impute it first")
    if y.dtype.kind == "f" and not np.all(np.isfinite(y)):
        row = np.flatnonzero(~np.isfinite(y.reshape(y.shape[0], -1)).all(axis=1))[0]
        raise CliError(f"--data: the target in {path} has a missing or infinite value in row "
                       f"{row} (0-based); drop the rows without a finite target")
    return X, y


def infer_task(y: np.ndarray) -> str:
    """``--task auto``: "regression" or "classification" for a host target (see the epilog)."""
    if y.ndim == 2:
        return "regression"
    if y.dtype.kind not in "iuf":
        return "classification"
    values = np.unique(y)
    fractional = not np.all(values == np.round(values))
    return "regression" if fractional and values.size > MAX_FLOAT_CLASSES else "classification"


def host_dataset(name: str, X: np.ndarray, y: np.ndarray, task: str, *, backend: Backend,
                 dtype: str) -> Dataset:
    """Encode a host target for ``task`` and move the data to ``backend``."""
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim > 2:
        raise CliError(f"--data: the target has shape {y.shape}; it must be 1-D or 2-D")
    if X.shape[0] == 0:
        raise CliError(f"--data: {name} has no rows; it needs one row per sample")
    task = infer_task(y) if task == "auto" else task
    float_dtype = resolve_dtype(dtype, xp=backend.xp)
    X_device = from_host(X, backend=backend, dtype=float_dtype)
    if task == "regression":
        if y.dtype.kind not in "biuf":
            raise CliError(f"--task regression needs a numeric target; it holds text such as "
                           f"{str(y.flat[0])!r}")
        y_host = y.astype(np.float64).reshape(y.shape[0], -1)
        y_device = from_host(y_host, backend=backend, dtype=float_dtype)
        return Dataset(name, X_device, y_device, task, None)
    if y.ndim != 1:
        raise CliError(f"--task classification needs one label per row; the target has shape "
                       f"{y.shape}")
    classes, indices = np.unique(y, return_inverse=True)
    if classes.size < 2:
        raise CliError(f"--target: the target holds a single class ({_label(classes[0])}); "
                       "classification needs at least 2")
    y_device = from_host(indices.astype(np.int64), backend=backend, dtype=backend.xp.int64)
    return Dataset(name, X_device, y_device, task, [_label(value) for value in classes])


def _label(value: Any) -> str:
    """A class label for printing (2.0 -> "2")."""
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


# --------------------------------------------------------------------------- training


@dataclass
class Split:
    """Standardised train and test data on the backend."""

    X_train: Any
    X_test: Any
    y_train: Any
    y_test: Any


def split_and_scale(data: Dataset, args: argparse.Namespace) -> Split:
    """Split rows into train/test, then standardise with the train split's statistics."""
    if args.stratify and data.task != "classification":
        raise CliError("--stratify needs a classification target")
    try:
        X_train, X_test, y_train, y_test = datasets.train_test_split(
            data.X, data.y, test_size=args.test_size, seed=args.seed, stratify=args.stratify
        )
    except (MlpxValueError, MlpxTypeError) as exc:
        options = "--test-size" + (", --stratify" if args.stratify else "")
        raise CliError(f"cannot split the data ({options}): {exc}") from None
    scaler = datasets.StandardScaler().fit(X_train)
    X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
    if data.task == "regression":
        target_scaler = datasets.StandardScaler().fit(y_train)
        y_train, y_test = target_scaler.transform(y_train), target_scaler.transform(y_test)
    return Split(X_train, X_test, y_train, y_test)


def build_model(data: Dataset, args: argparse.Namespace, backend: Backend) -> MLP:
    """``[n_features, *hidden, n_outputs]`` with the output layer the task needs."""
    n_features = int(data.X.shape[1])
    if data.task == "regression":
        n_outputs, output = int(data.y.shape[1]), "identity"
    elif len(data.classes) == 2:
        n_outputs, output = 1, "sigmoid"
    else:
        n_outputs, output = len(data.classes), "softmax"
    sizes = [n_features, *args.hidden, n_outputs]
    activations = [args.activation] * len(args.hidden) + [output]
    return MLP(sizes, activations, backend=backend, dtype=args.dtype, seed=args.seed,
               matmul_precision=args.matmul_precision)


def progress_callback(args: argparse.Namespace) -> Callback:
    """The progress bar with loss lines, or only the loss lines with ``--quiet``."""
    every = max(1, args.epochs // 20) if args.print_every is None else args.print_every
    return ProgressBar(print_every=every or None, bar=not args.quiet)


def _describe_target(data: Dataset) -> str:
    if data.task == "regression":
        return f"regression, {data.y.shape[1]} target(s)"
    shown = ", ".join(data.classes[:10]) + (", ..." if len(data.classes) > 10 else "")
    return f"classification, {len(data.classes)} classes ({shown})"


def print_header(data: Dataset, split: Split, model: MLP, args: argparse.Namespace) -> None:
    """What is about to be trained: data, network, backend, optimizer."""
    batch = "full batch" if args.batch_size is None else f"batch size {args.batch_size}"
    print(f"dataset:   {data.name}, {data.X.shape[0]} samples x {data.X.shape[1]} features; "
          f"{_describe_target(data)}")
    print(f"split:     train {split.X_train.shape[0]}, test {split.X_test.shape[0]} "
          "(standardised on train)")
    print(f"network:   {' -> '.join(map(str, model.layer_sizes))}  "
          f"({', '.join(model.activations)}; loss {model.loss.name})")
    products = ("" if model.matmul_precision == "highest"
                else f" ({model.matmul_precision} matrix products)")
    print(f"backend:   {model.backend.name} on {device_label(model.backend)}, {args.dtype}"
          f"{products}")
    print(f"training:  {args.optimizer} lr {args.lr:g}, {batch}, {args.epochs} epochs, "
          f"seed {args.seed}")


def run_train(args: argparse.Namespace) -> int:
    """``mlpx train``: load, split, standardise, train, print the test score."""
    backend = resolve_cli_backend(args.backend, args.device)
    check_matmul_precision(args, backend)
    data = load_dataset(args, backend)
    split = split_and_scale(data, args)
    model = build_model(data, args, backend)
    callbacks = [progress_callback(args)]
    if args.checkpoint is not None:
        callbacks.append(Checkpoint(args.checkpoint, every=args.checkpoint_every))
    if args.save is not None:
        check_save_path(args.save)
    if args.plot is not None:
        check_plot_path(args.plot)
    print_header(data, split, model, args)
    started = time.perf_counter()
    # With --plot the test split is evaluated every epoch for its loss curve.
    validation = (split.X_test, split.y_test) if args.plot is not None else None
    history = model.fit(split.X_train, split.y_train, epochs=args.epochs,
                        batch_size=args.batch_size, optimizer=args.optimizer,
                        learning_rate=args.lr, callbacks=callbacks, verbose=False,
                        resume_from=args.resume, validation_data=validation)
    seconds = time.perf_counter() - started
    if history.interrupted:
        saved = (f"; the last checkpoint is {args.checkpoint}" if args.checkpoint is not None
                 else "")
        print(f"mlpx: interrupted after {len(history.epoch)} epochs; nothing was saved"
              f"{saved}", file=sys.stderr)
        return 130
    metric = "accuracy" if data.task == "classification" else "r2"
    print(f"trained {len(history.epoch)} epochs in {seconds:.2f} s, "
          f"final loss {history['loss'][-1]:.4f}")
    if args.save is not None:
        model.save(args.save)
        print(f"saved the model to {args.save}")
    if args.plot is not None:
        write_figure(args.plot, model, data, split, history)
        print(f"wrote the figure to {args.plot}")
    print(f"train {metric}: {model.score(split.X_train, split.y_train):.3f}")
    print(f"test {metric}: {model.score(split.X_test, split.y_test):.3f}")
    return 0


PLOT_FORMATS = (".png", ".svg", ".pdf")


def check_plot_path(path: Path) -> None:
    """Refuse a ``--plot`` file that cannot be written, before training starts."""
    if path.suffix.lower() not in PLOT_FORMATS:
        raise CliError(f"--plot: {path} must end in .png, .svg or .pdf")
    if not path.parent.is_dir():
        raise CliError(f"--plot: the directory {path.parent} does not exist; create it first")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise CliError("--plot needs matplotlib: pip install 'mlpx[plot]'") from None


def write_figure(path: Path, model: MLP, data: Dataset, split: Split, history) -> None:
    """The test split's decision boundary (2 features) or confusion matrix (classification),
    beside the train and test loss curves; written atomically."""
    import io as bytes_io

    from matplotlib.figure import Figure

    from mlpx import plot
    from mlpx.io import atomic_write_bytes

    classify = data.task == "classification"
    figure = Figure(figsize=(12.0, 5.0) if classify else (6.4, 5.0), layout="constrained")
    axes = figure.subplots(1, 2 if classify else 1, squeeze=False)[0]
    if classify and split.X_test.shape[1] == 2:
        plot.decision_boundary(model, split.X_test, split.y_test, ax=axes[0],
                               title=f"{data.name}: test split")
    elif classify:
        plot.confusion_matrix(split.y_test, model.predict(split.X_test), ax=axes[0],
                              labels=data.classes)
    plot.history(history, ax=axes[-1])
    axes[-1].set_title(f"{data.name}: loss (train and test)")
    buffer = bytes_io.BytesIO()
    figure.savefig(buffer, format=path.suffix.lower().lstrip("."), dpi=100)
    atomic_write_bytes(path, buffer.getvalue())


def check_save_path(path: Path) -> None:
    """Refuse a ``--save`` path that cannot be written, before training starts."""
    if path.is_dir():
        raise CliError(f"--save: {path} is a directory; give a file name such as "
                       f"{path / 'model.safetensors'}")
    if not path.parent.is_dir():
        raise CliError(f"--save: the directory {path.parent} does not exist; create it first")


# --------------------------------------------------------------------------- info


def run_info(args: argparse.Namespace) -> int:
    """``mlpx info``: versions, then one row per backend."""
    import array_api_compat

    from mlpx import __version__
    from mlpx._compiled import kernel_status

    print(f"mlpx {__version__}, python {platform.python_version()}, numpy {np.__version__}, "
          f"array-api-compat {array_api_compat.__version__}")
    print(kernel_status())
    print()
    columns = ("backend", "usable", "devices", "note")
    print(format_table(backend_report(), columns))
    return 0


def format_table(rows: list[dict[str, str]], columns: tuple[str, ...]) -> str:
    """Rows of strings as left-aligned columns under a header (the last column unpadded)."""
    lines = [list(columns)] + [[str(row[name]) for name in columns] for row in rows]
    widths = [max(len(line[k]) for line in lines) for k in range(len(columns) - 1)]
    return "\n".join(
        "  ".join([*(line[k].ljust(widths[k]) for k in range(len(widths))), line[-1]])
        for line in lines
    )


# --------------------------------------------------------------------------- main


def _fail(message: str) -> None:
    print(f"mlpx: error: {' '.join(message.split())}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Run the ``mlpx`` command line.

    Parameters
    ----------
    argv : list of str, optional
        The arguments after the program name (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        0 done, 1 training diverged, 2 a bad option value or input, 130 interrupted.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 0
        return args.handler(args)
    except SystemExit as exc:  # --help and --version
        return exc.code if isinstance(exc.code, int) else 0
    except (CliError, MlpxValueError, MlpxTypeError, BackendUnavailableError,
            FileNotFoundError) as exc:
        _fail(str(exc))
        return 2
    except NonFiniteLossError as exc:
        print(f"mlpx: training diverged: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("mlpx: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `mlpx info | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
