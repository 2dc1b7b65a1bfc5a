"""The ``mlpx`` command line: ``main([...])`` in-process, and one ``python -m mlpx`` run."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mlpx import MlpxTypeError
from mlpx.cli import infer_task, main
from mlpx.model import MLP

REPO_ROOT = Path(__file__).resolve().parents[1]
ACCURACY_LINE = re.compile(r"^test accuracy: (\d\.\d{3})$")
R2_LINE = re.compile(r"^test r2: (-?\d+\.\d{3})$")
FAST = ["--epochs", "5", "--quiet", "--print-every", "0"]


def run_cli(capsys, *argv: str) -> tuple[int, list[str], str]:
    """Run ``mlpx ARGV`` in-process; return the exit code, stdout lines and stderr."""
    code = main([str(arg) for arg in argv])
    captured = capsys.readouterr()
    return code, captured.out.splitlines(), captured.err


def test_accuracy(lines: list[str]) -> float:
    match = ACCURACY_LINE.match(lines[-1])
    assert match, f"last line is {lines[-1]!r}"
    return float(match.group(1))


test_accuracy.__test__ = False  # a helper, not a test


def blob_data(n_per_class: int = 60, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three well separated 2-D clouds and their class indices 0, 1, 2."""
    rng = np.random.default_rng(seed)
    centers = np.array([[-4.0, 0.0], [4.0, 0.0], [0.0, 5.0]])
    X = np.vstack([c + rng.normal(size=(n_per_class, 2)) for c in centers])
    return X, np.repeat(np.arange(3), n_per_class)


def write_csv(path: Path, header: list[str] | None, columns: list) -> Path:
    with open(path, "w") as handle:
        if header:
            handle.write(",".join(header) + "\n")
        for row in zip(*columns, strict=True):
            handle.write(",".join(str(cell) for cell in row) + "\n")
    return path


# --------------------------------------------------------------------------- train


def test_default_train_reproduces_tutorial_004(capsys):
    code, lines, err = run_cli(capsys, "train")
    assert code == 0
    assert test_accuracy(lines) >= 0.95
    text = "\n".join(lines)
    assert "moons, 500 samples x 2 features" in text
    assert "2 -> 16 -> 8 -> 1" in text and "relu, relu, sigmoid" in text
    assert "train 400, test 100" in text
    assert "sgd lr 0.1, full batch, 2000 epochs, seed 42" in text
    epoch_lines = [line for line in lines if line.startswith("epoch ")]
    assert epoch_lines[0].startswith("epoch 1/2000  loss ")
    assert epoch_lines[-1].startswith("epoch 2000/2000  loss ")
    assert len(epoch_lines) == 21  # epoch 1, then every 100th
    assert "2000/2000" in err  # the progress bar goes to stderr


def test_python_m_mlpx_is_the_same_program():
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "mlpx", "train", "--epochs", "50"],
        capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stderr
    last = result.stdout.strip().splitlines()[-1]
    assert re.match(r"^test accuracy: \d\.\d{3}$", last), result.stdout


@pytest.mark.parametrize("dataset", ["moons", "circles", "xor", "spirals", "blobs", "digits"])
def test_every_dataset_runs(capsys, dataset):
    if dataset == "digits":
        pytest.importorskip("sklearn")
    code, lines, _ = run_cli(capsys, "train", "--dataset", dataset, *FAST)
    assert code == 0
    test_accuracy(lines)
    network = next(line for line in lines if line.startswith("network:"))
    output = {"blobs": "softmax", "digits": "softmax"}.get(dataset, "sigmoid")
    assert output in network


def test_digits_reaches_095(capsys):
    pytest.importorskip("sklearn")
    code, lines, _ = run_cli(
        capsys, "train", "--dataset", "digits", "--optimizer", "adam", "--lr", "0.01",
        "--epochs", "60", "--batch-size", "32", "--hidden", "64", "--quiet",
    )
    assert code == 0
    assert any("64 -> 64 -> 10" in line for line in lines)
    assert test_accuracy(lines) >= 0.95


def test_array_api_strict_backend_runs(capsys):
    pytest.importorskip("array_api_strict")
    code, lines, _ = run_cli(capsys, "train", "--backend", "array_api_strict", "--dtype",
                             "float64", *FAST)
    assert code == 0
    assert any(line.startswith("backend:   array_api_strict") for line in lines)
    test_accuracy(lines)


def test_quiet_drops_the_bar_but_keeps_loss_lines(capsys):
    code, lines, err = run_cli(capsys, "train", "--epochs", "10", "--print-every", "5",
                               "--quiet")
    assert code == 0
    assert err == ""
    assert [line.split("  ")[0] for line in lines if line.startswith("epoch ")] == [
        "epoch 1/10", "epoch 5/10", "epoch 10/10"
    ]


def test_print_every_zero_prints_no_loss_lines(capsys):
    code, lines, _ = run_cli(capsys, "train", "--epochs", "10", "--print-every", "0")
    assert code == 0
    assert not [line for line in lines if line.startswith("epoch ")]


def test_mini_batches_and_options(capsys):
    code, lines, _ = run_cli(
        capsys, "train", "--dataset", "circles", "--hidden", "8", "--activation", "tanh",
        "--batch-size", "32", "--optimizer", "adam", "--lr", "0.01", "--test-size", "50",
        "--stratify", "--seed", "3", *FAST,
    )
    assert code == 0
    text = "\n".join(lines)
    assert "2 -> 8 -> 1  (tanh, sigmoid" in text
    assert "batch size 32" in text and "test 50" in text
    test_accuracy(lines)


def test_no_hidden_layer(capsys):
    code, lines, _ = run_cli(capsys, "train", "--hidden", "none", *FAST)
    assert code == 0
    assert any("2 -> 1  (sigmoid" in line for line in lines)


# --------------------------------------------------------------------------- --data


def test_csv_with_header_and_string_labels(capsys, tmp_path):
    X, y = blob_data()
    names = np.array(["red", "green", "blue"])[y]
    path = write_csv(tmp_path / "colours.csv", ["colour", "x1", "x2"], [names, X[:, 0], X[:, 1]])
    code, lines, _ = run_cli(capsys, "train", "--data", path, "--target", "colour",
                             "--epochs", "200", "--quiet")
    assert code == 0
    assert any("3 classes (blue, green, red)" in line for line in lines)
    assert any("2 -> 16 -> 8 -> 3" in line and "softmax" in line for line in lines)
    assert test_accuracy(lines) >= 0.9


def test_csv_without_header_target_by_index(capsys, tmp_path):
    X, y = blob_data()
    labels = np.array([1, 5, 9])[y]  # integer labels that are not 0..k-1
    path = write_csv(tmp_path / "plain.csv", None, [X[:, 0], labels, X[:, 1]])
    code, lines, _ = run_cli(capsys, "train", "--data", path, "--target", "1",
                             "--epochs", "200", "--quiet")
    assert code == 0
    assert any("180 samples x 2 features" in line and "(1, 5, 9)" in line for line in lines)
    assert test_accuracy(lines) >= 0.9


def test_csv_binary_string_labels_default_last_column(capsys, tmp_path):
    X, y = blob_data()
    keep = y < 2
    labels = np.array(["no", "yes"])[y[keep]]
    path = write_csv(tmp_path / "binary.csv", ["a", "b", "label"],
                     [X[keep, 0], X[keep, 1], labels])
    code, lines, _ = run_cli(capsys, "train", "--data", path, "--epochs", "100", "--quiet")
    assert code == 0
    assert any("2 classes (no, yes)" in line for line in lines)
    assert test_accuracy(lines) >= 0.9


def test_npz_default_keys_and_target_key(capsys, tmp_path):
    X, y = blob_data()
    path = tmp_path / "data.npz"
    np.savez(path, X=X, y=y, labels=np.array(["a", "b", "c"])[y])
    for extra in ([], ["--target", "labels"]):
        code, lines, _ = run_cli(capsys, "train", "--data", path, *extra, "--epochs", "200",
                                 "--quiet")
        assert code == 0
        assert test_accuracy(lines) >= 0.9


def test_npy_target_column(capsys, tmp_path):
    X, y = blob_data()
    path = tmp_path / "data.npy"
    np.save(path, np.column_stack([y, X]))
    code, lines, _ = run_cli(capsys, "train", "--data", path, "--target", "0",
                             "--epochs", "200", "--quiet")
    assert code == 0
    assert test_accuracy(lines) >= 0.9


def test_regression_target_prints_r2(capsys, tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    target = np.sin(X[:, 0]) + 0.5 * X[:, 1] ** 2 + 0.1 * rng.normal(size=200)
    path = write_csv(tmp_path / "reg.csv", ["a", "b", "c", "target"],
                     [X[:, 0], X[:, 1], X[:, 2], target])
    code, lines, _ = run_cli(capsys, "train", "--data", path, "--epochs", "300", "--quiet")
    assert code == 0
    assert any("relu, relu, identity; loss mse" in line for line in lines)
    match = R2_LINE.match(lines[-1])
    assert match, lines[-1]
    assert float(match.group(1)) > 0.8


def test_task_option_forces_regression(capsys, tmp_path):
    X, y = blob_data()
    path = tmp_path / "data.npz"
    np.savez(path, X=X, y=y)
    code, lines, _ = run_cli(capsys, "train", "--data", path, "--task", "regression", *FAST)
    assert code == 0
    assert R2_LINE.match(lines[-1])


@pytest.mark.parametrize(
    ("values", "task"),
    [
        (np.linspace(0.0, 1.0, 50), "regression"),
        (np.arange(50), "classification"),
        (np.array([0.0, 1.0, 1.0, 0.0]), "classification"),
        (np.array([0.5, 1.5, 2.5, 0.5]), "classification"),
        (np.array(["a", "b", "a"]), "classification"),
        (np.array([True, False]), "classification"),
        (np.zeros((5, 2)), "regression"),
    ],
)
def test_auto_task_rule(values, task):
    assert infer_task(values) == task


# --------------------------------------------------------------------------- info and help


def test_info_lists_numpy_as_usable(capsys):
    code, lines, _ = run_cli(capsys, "info")
    assert code == 0
    assert lines[0].startswith("mlpx ") and "numpy" in lines[0] and "python" in lines[0]
    assert lines[1].startswith(f"{KERNELS}: ")
    assert lines[3].split()[:4] == ["backend", "usable", "devices", "note"]
    rows = {line.split()[0]: line.split() for line in lines[4:] if line.strip()}
    assert set(rows) == {"numpy", "cupy", "torch", "array_api_strict"}
    assert rows["numpy"][1:3] == ["yes", "cpu"]


KERNELS = ("compiled kernels (optimizer steps, hidden activations, softmax and sigmoid "
           "gradients, row gather)")


@pytest.mark.parametrize("kernels, env, expected", [
    (object(), None, f"{KERNELS}: yes"),
    (None, "1", f"{KERNELS}: off (MLPX_PURE_NUMPY is set)"),
    (None, None, f"{KERNELS}: not built (no C compiler"),
])
def test_info_says_whether_the_compiled_kernel_runs(capsys, monkeypatch, kernels, env,
                                                    expected):
    from mlpx import _compiled

    monkeypatch.setattr(_compiled, "kernels", kernels)
    if env is None:
        monkeypatch.delenv("MLPX_PURE_NUMPY", raising=False)
    else:
        monkeypatch.setenv("MLPX_PURE_NUMPY", env)
    code, lines, _ = run_cli(capsys, "info")
    assert code == 0
    assert lines[1].startswith(expected)


def test_no_subcommand_prints_help(capsys):
    code, lines, _ = run_cli(capsys)
    assert code == 0
    assert any("train" in line for line in lines) and any("info" in line for line in lines)


def test_help_exits_zero(capsys):
    code, lines, _ = run_cli(capsys, "train", "--help")
    assert code == 0
    assert any("--batch-size" in line for line in lines)


# --------------------------------------------------------------------------- errors


def _bad_csv(tmp_path: Path) -> Path:
    return write_csv(tmp_path / "bad.csv", ["x1", "x2", "y"],
                     [[1.0, 2.0, 3.0], ["a", "b", "c"], [0, 1, 0]])


def _csv_missing_target(tmp_path: Path) -> Path:
    return write_csv(tmp_path / "missing.csv", ["x1", "x2", "y"],
                     [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], ["a", "", "b"]])


def _good_csv(tmp_path: Path) -> Path:
    X, y = blob_data(5)
    return write_csv(tmp_path / "good.csv", ["x1", "x2", "y"], [X[:, 0], X[:, 1], y])


BAD_INPUTS = [
    (["--dataset", "foo"], "--dataset"),
    (["--data", "{tmp}/missing.csv"], "--data"),
    (["--data", "{tmp}/data.txt"], "--data"),
    (["--data", "{bad_csv}"], "--data"),
    (["--data", "{missing_target}"], "--data"),
    (["--data", "{good_csv}", "--target", "nope"], "--target"),
    (["--data", "{good_csv}", "--target", "7"], "--target"),
    (["--data", "{good_csv}", "--dataset", "moons"], "--data"),
    (["--target", "y"], "--target"),
    (["--hidden", "16,x"], "--hidden"),
    (["--hidden", "16,0"], "--hidden"),
    (["--epochs", "-5"], "--epochs"),
    (["--epochs", "0"], "--epochs"),
    (["--epochs", "1.5"], "--epochs"),
    (["--batch-size", "0"], "--batch-size"),
    (["--lr", "abc"], "--lr"),
    (["--lr", "-0.1"], "--lr"),
    (["--test-size", "1.5"], "--test-size"),
    (["--test-size", "500"], "--test-size"),
    (["--print-every", "-1"], "--print-every"),
    (["--seed", "-1"], "--seed"),
    (["--optimizer", "lbfgs"], "--optimizer"),
    (["--activation", "softmax"], "--activation"),
    (["--backend", "jax"], "--backend"),
    (["--dtype", "float16"], "--dtype"),
    (["--device", "cuda:0"], "--device"),
    (["--task", "regression"], "--task"),
    (["--task", "maybe"], "--task"),
    (["--bogus"], "--bogus"),
]


@pytest.mark.parametrize(("argv", "option"), BAD_INPUTS)
def test_bad_input_returns_2_naming_the_option(capsys, tmp_path, argv, option):
    (tmp_path / "data.txt").write_text("1,2\n")
    paths = {"tmp": tmp_path, "bad_csv": _bad_csv(tmp_path), "good_csv": _good_csv(tmp_path),
             "missing_target": _csv_missing_target(tmp_path)}
    code, lines, err = run_cli(capsys, "train", *(arg.format(**paths) for arg in argv),
                               *FAST)
    assert code == 2
    assert err.startswith("mlpx: error: ") and err.count("\n") == 1, err
    assert option in err
    assert "Traceback" not in err
    assert not lines  # nothing was trained


def test_unknown_subcommand_returns_2(capsys):
    code, _, err = run_cli(capsys, "frobnicate")
    assert code == 2
    assert err.startswith("mlpx: error: ") and "frobnicate" in err


def test_unusable_backend_returns_2(capsys):
    try:
        import cupy

        cupy.cuda.runtime.getDeviceCount()
        pytest.skip("cupy is usable here")
    except Exception:  # not installed or no GPU: exactly the case under test
        pass
    code, _, err = run_cli(capsys, "train", "--backend", "cupy", *FAST)
    assert code == 2
    assert err.startswith("mlpx: error: ") and "cupy" in err


def test_mlpx_error_inside_returns_2(capsys, monkeypatch):
    def broken_fit(self, *args, **kwargs):
        raise MlpxTypeError("something inside went wrong")

    monkeypatch.setattr(MLP, "fit", broken_fit)
    code, _, err = run_cli(capsys, "train", *FAST)
    assert code == 2
    assert err == "mlpx: error: something inside went wrong\n"


def test_divergence_returns_1(capsys, tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(100, 2))
    path = tmp_path / "reg.npz"
    np.savez(path, X=X, y=X[:, 0] * 3.3 + 0.123)
    with np.errstate(over="ignore", invalid="ignore"):
        code, _, err = run_cli(capsys, "train", "--data", path, "--lr", "50", "--epochs", "50",
                                 "--quiet")
    assert code == 1
    assert "mlpx: training diverged:" in err and "learning rate" in err


# --------------------------------------------------------------------------- CSV messages
# Every message about a cell names the file, the column (header name, or 0-based index
# without a header) and the 1-based line of the file (header and blank lines counted).


def csv_error(capsys, path: Path, *options: str) -> str:
    """Run ``mlpx train --data PATH``; check it fails with exit code 2; return the message."""
    code, lines, err = run_cli(capsys, "train", "--data", path, *options, *FAST)
    assert code == 2
    assert err.startswith("mlpx: error: ") and err.count("\n") == 1, err
    assert str(path) in err, err
    assert not lines
    return err


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # a blank line (line 3) does not shift the line numbers
        ("x1,x2,y\n1,2,0\n\n3,NA,1\n", ["missing value 'NA'", "column 'x2'", "on line 4"]),
        ("x1,x2,y\n1,2,0\n3,,1\n", ["missing value (an empty cell)", "column 'x2'", "line 3"]),
        ("x1,x2,y\n1,nan,0\n3,4,1\n", ["missing value 'nan'", "column 'x2'", "line 2"]),
        ("x1,x2,y\n1,2,0\nNULL,4,1\n", ["missing value 'NULL'", "column 'x1'", "line 3"]),
        ("x1,x2,y\r\n1,2,0\r\n3,?,1\r\n", ["missing value '?'", "column 'x2'", "line 3"]),
        ("x1,x2,y\n1,2,0\n3,#N/A,1\n", ["missing value '#N/A'", "column 'x2'", "line 3"]),
        ("x1,x2,y\n1,NaN,0\nNA,4,1\n", ["'NaN'", "line 2", "(2 missing values in all)"]),
        ("1,2,0\n3,,1\n", ["missing value (an empty cell)", "column 1 on line 2"]),
        # a quoted cell over two lines (2-3): the next row starts on line 4
        ('x1,x2,y\n1,2,"two\nlines"\n3,None,z\n', ["missing value 'None'", "line 4"]),
    ],
)
def test_csv_missing_feature_names_file_column_line(capsys, tmp_path, text, expected):
    path = tmp_path / "gaps.csv"
    path.write_bytes(text.encode())
    err = csv_error(capsys, path)
    for part in expected:
        assert part in err, err


def test_csv_non_numeric_feature_suggests_encoding_or_target(capsys, tmp_path):
    path = tmp_path / "colours.csv"
    path.write_text("x1,colour,y\n1,red,0\n\n3,blue,1\n")
    err = csv_error(capsys, path)
    assert "non-numeric value 'red' in column 'colour' on line 2" in err
    assert "encode a categorical column as numbers" in err
    assert "--target colour" in err


def test_csv_non_numeric_feature_without_header_names_index(capsys, tmp_path):
    path = tmp_path / "plain.csv"
    path.write_text("1,2,0\n3,4,1\n5,x6,0\n")
    err = csv_error(capsys, path)
    assert "non-numeric value 'x6' in column 1 on line 3" in err
    assert "--target 1" in err


def test_csv_header_of_text_above_text_columns_is_detected(capsys, tmp_path):
    # No column is numeric in every data row, yet the first row is all names.
    path = tmp_path / "text.csv"
    path.write_text("a,b,label\n1,x,cat\nz,2,dog\n")
    err = csv_error(capsys, path)
    assert "non-numeric value 'x' in column 'b' on line 2" in err


def test_csv_header_detected_with_missing_values_below(capsys, tmp_path):
    path = tmp_path / "gaps.csv"
    path.write_text("a,b,label\n1,NA,cat\n?,2,dog\n")
    err = csv_error(capsys, path)
    assert "missing value 'NA' in column 'b' on line 2" in err


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("x1,x2,y\n1,2,0\n3,4,\n", "missing target value (an empty cell) in the target "
         "column 'y' on line 3"),
        ("x1,x2,y\n1,2,cat\n\n3,4,NA\n", "missing target value 'NA' in the target column 'y' "
         "on line 4"),
        ("x1,x2,y\n1,2,0.5\n3,4,nan\n", "missing target value 'nan' in the target column 'y' "
         "on line 3"),
        ("1,2,0\n3,4,\n", "missing target value (an empty cell) in the target column 2 on "
         "line 2"),
    ],
)
def test_csv_missing_target_names_file_column_line(capsys, tmp_path, text, expected):
    path = tmp_path / "target.csv"
    path.write_text(text)
    err = csv_error(capsys, path)
    assert expected in err
    assert "drop the rows without a target" in err


def test_csv_infinite_values_name_file_column_line(capsys, tmp_path):
    path = tmp_path / "inf.csv"
    path.write_text("x1,x2,y\n1,2,0\n3,-inf,1\n")
    assert "infinite value '-inf' in column 'x2' on line 3" in csv_error(capsys, path)
    path.write_text("x1,x2,y\n1,2,0.5\n3,4,Infinity\n")
    assert "infinite target value 'Infinity' in the target column 'y' on line 3" in csv_error(
        capsys, path)


def test_csv_rows_of_different_lengths_name_the_lines(capsys, tmp_path):
    path = tmp_path / "ragged.csv"
    path.write_text("x1,x2,y\n1,2,0\n\n3,4\n")
    err = csv_error(capsys, path)
    assert "line 4 has 2 columns but line 1 has 3" in err


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("nope", "--target 'nope' is not a column of"),
        ("Y", "did you mean 'y'?"),
        ("7", "--target 7 is out of range for"),
        ("-4", "--target -4 is out of range for"),
    ],
)
def test_csv_wrong_target_lists_the_columns(capsys, tmp_path, target, expected):
    path = _good_csv(tmp_path)
    err = csv_error(capsys, path, "--target", target)
    assert expected in err
    assert "its columns are x1, x2, y (or 0-based indices 0..2)" in err


@pytest.mark.parametrize("target", ["label", "3"])
def test_csv_wrong_target_without_header_gives_index_range(capsys, tmp_path, target):
    path = tmp_path / "plain.csv"
    path.write_text("1,2,0\n3,4,1\n")
    err = csv_error(capsys, path, "--target", target)
    assert f"--target {target!r}" in err or f"--target {target} " in err
    assert "no header" in err and "0..2" in err


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "is empty"),
        (b"\n\n", "is empty"),
        (b"x1,x2,y\n", "has a header (line 1) but no data rows"),
        (b"\nx1,x2,y\n\n", "has a header (line 2) but no data rows"),
        (b"x\n1\n2\n", "has one column"),
        (b"x1;x2;y\n1;2;0\n", "has one column"),
        (b"x1,x2,y\n1,2,caf\xe9\n", "is not UTF-8 text CSV (byte 0xe9 on line 2)"),
        (b"\x89PNG\r\n\x1a\n\xff\xd8", "is not UTF-8 text CSV (byte 0x89 on line 1)"),
        (b"x,y\n1,\x002\n", "is not UTF-8 text CSV (a NUL byte on line 2)"),
    ],
)
def test_csv_unusable_file_names_the_file(capsys, tmp_path, content, expected):
    path = tmp_path / "data.csv"
    path.write_bytes(content)
    assert expected in csv_error(capsys, path)


def test_csv_with_byte_order_mark_is_read(capsys, tmp_path):
    X, y = blob_data(10)
    path = write_csv(tmp_path / "bom.csv", ["x1", "x2", "y"], [X[:, 0], X[:, 1], y])
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    code, lines, _ = run_cli(capsys, "train", "--data", path, "--target", "x1", *FAST)
    assert code == 0
    assert any("30 samples x 2 features" in line for line in lines)


def test_data_directory_is_named(capsys, tmp_path):
    path = tmp_path / "folder.csv"
    path.mkdir()
    assert "is a directory, not a file" in csv_error(capsys, path)


def test_npy_missing_feature_names_file_and_row(capsys, tmp_path):
    data = np.column_stack([np.arange(6.0), np.arange(6) % 2])
    data[4, 0] = np.nan
    path = tmp_path / "gaps.npy"
    np.save(path, data)
    err = csv_error(capsys, path)
    assert "missing (NaN) feature value in row 4 (0-based), feature column 0" in err


# --- model files, checkpoints and Ctrl-C ---------------------------------------------------

def test_save_writes_a_model_that_loads_and_predicts_the_same(capsys, tmp_path):
    import mlpx

    path = tmp_path / "moons.safetensors"
    code, lines, _ = run_cli(capsys, "train", *FAST, "--save", path)
    assert code == 0 and f"saved the model to {path}" in lines
    assert ACCURACY_LINE.match(lines[-1])  # the score stays the last line
    model = mlpx.load(path)
    assert model.layer_sizes == [2, 16, 8, 1]
    assert os.listdir(tmp_path) == [path.name]


@pytest.mark.parametrize("option", ["--save", "--checkpoint"])
def test_unwritable_paths_fail_before_training(capsys, tmp_path, option):
    code, lines, err = run_cli(capsys, "train", *FAST, option, tmp_path / "no" / "m.st")
    assert code == 2 and "does not exist" in err
    assert not any(line.startswith("trained") for line in lines)
    code, _, err = run_cli(capsys, "train", *FAST, option, tmp_path)
    assert code == 2 and "directory" in err


def test_checkpoint_then_resume_gives_the_uninterrupted_result(capsys, tmp_path):
    options = ["train", "--epochs", "12", "--quiet", "--print-every", "0",
               "--optimizer", "adam", "--lr", "0.01", "--batch-size", "32"]
    code, full, _ = run_cli(capsys, *options)
    assert code == 0
    checkpoint = tmp_path / "run.ckpt"
    code, _, _ = run_cli(capsys, *options[:2], "6", *options[3:], "--checkpoint", checkpoint,
                         "--checkpoint-every", "3")
    assert code == 0 and checkpoint.exists()
    code, resumed, _ = run_cli(capsys, *options, "--resume", checkpoint)
    assert code == 0
    assert resumed[-2:] == full[-2:]  # train and test scores
    assert resumed[-3].split(", ")[1] == full[-3].split(", ")[1]  # final loss


def test_resume_with_other_options_is_refused(capsys, tmp_path):
    checkpoint = tmp_path / "run.ckpt"
    run_cli(capsys, "train", *FAST, "--checkpoint", checkpoint, "--checkpoint-every", "1")
    code, _, err = run_cli(capsys, "train", *FAST, "--hidden", "4", "--resume", checkpoint)
    assert code == 2 and "build the model" in err
    code, _, err = run_cli(capsys, "train", *FAST, "--resume", tmp_path / "none.ckpt")
    assert code == 2 and "no such file" in err


def test_ctrl_c_exits_130_and_saves_nothing(capsys, tmp_path, monkeypatch):
    import signal

    import mlpx.cli
    from mlpx.callbacks import Callback

    class CtrlC(Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 3:
                os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(mlpx.cli, "progress_callback", lambda args: CtrlC())
    path = tmp_path / "model.safetensors"
    code, lines, err = run_cli(capsys, "train", *FAST[2:], "--epochs", "50", "--save", path)
    assert code == 130
    assert "interrupted after 4 epochs; nothing was saved" in err
    assert os.listdir(tmp_path) == []


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_in_a_real_process_exits_130(tmp_path):
    import signal
    import time

    path = tmp_path / "model.safetensors"
    process = subprocess.Popen(
        [sys.executable, "-m", "mlpx", "train", "--epochs", "1000000", "--quiet",
         "--print-every", "1", "--save", str(path)],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    line = process.stdout.readline()
    while line and not line.startswith("epoch"):  # training has started
        line = process.stdout.readline()
    time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "nothing was saved" in err
    assert not path.exists() and os.listdir(tmp_path) == []


@pytest.mark.parametrize("dataset, n_axes", [("moons", 3), ("blobs", 3)])
def test_plot_writes_one_figure_beside_the_loss_curves(capsys, tmp_path, dataset, n_axes):
    pytest.importorskip("matplotlib")
    path = tmp_path / f"{dataset}.png"
    code, lines, _ = run_cli(capsys, "train", *FAST, "--dataset", dataset, "--plot", path)
    assert code == 0 and f"wrote the figure to {path}" in lines
    assert ACCURACY_LINE.match(lines[-1])
    assert path.read_bytes().startswith(b"\x89PNG")
    assert os.listdir(tmp_path) == [path.name]


def test_plot_with_more_features_draws_a_confusion_matrix(capsys, tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    import mlpx.plot

    drawn = []
    original = mlpx.plot.confusion_matrix
    monkeypatch.setattr(mlpx.plot, "confusion_matrix",
                        lambda *a, **k: drawn.append(k.get("labels")) or original(*a, **k))
    X, y = blob_data()
    X = np.hstack([X, X[:, :1] * 0.5])
    data = tmp_path / "three.csv"
    np.savetxt(data, np.column_stack([X, np.array(["no", "yes", "maybe"])[y]]), delimiter=",",
               fmt="%s", header="a,b,c,label", comments="")
    code, _, err = run_cli(capsys, "train", *FAST, "--data", data, "--plot", tmp_path / "f.svg")
    assert code == 0, err
    assert drawn == [["maybe", "no", "yes"]]
    assert (tmp_path / "f.svg").read_text().lstrip().startswith("<?xml")


def test_bad_plot_paths_and_missing_matplotlib_fail_before_training(capsys, tmp_path,
                                                                    monkeypatch):
    code, lines, err = run_cli(capsys, "train", *FAST, "--plot", tmp_path / "f.jpg")
    assert code == 2 and ".png, .svg or .pdf" in err and not lines
    code, _, err = run_cli(capsys, "train", *FAST, "--plot", tmp_path / "no" / "f.png")
    assert code == 2 and "does not exist" in err
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    code, lines, err = run_cli(capsys, "train", *FAST, "--plot", tmp_path / "f.png")
    assert code == 2 and "pip install 'mlpx[plot]'" in err and not lines


# --- files of numbers (and labels): NumPy's C parser (cli._numeric_csv) -----------------

NUMERIC_CSVS = {  # name -> (text, the --target values to read it with)
    "header": ("x1,x2,label\n0.5,-1e-3,0\n1.25,3,1\n-0,7.5e2,2\n", [None, "x1", "1"]),
    "no-header": ("0.5,-1e-3,0\n1.25,3,1\n", [None, "0", "-2"]),
    "blank-lines-crlf-spaces": ("\r\n a , b ,y\r\n\r\n 1.5 , 2 ,1\r\n3,+.5,0\r\n\n",
                                [None, "b"]),
    "one-data-row": ("a,b,c\n1,2,3\n", [None, "a"]),
    "two-rows-no-header": ("1,2,3\n\n4,5,6\n", [None, "1"]),
    "many-digits": ("x,y\n0.1000000000000000055511151231257827,1\n1e308,2\n", [None, "x"]),
    "text-labels": ("x1,x2,y\n1,2,cat\n3,4,dog\n", [None, "y", "2"]),
    "text-labels-no-header": ("1,2,cat\n3,4,dog\n", [None, "-1"]),
    "labels-first": ("cat,1,2\ndog,3,4\n", ["0"]),
    "mixed-labels": ("x1,x2,y\n1,2,7\n3,4,dog\n", [None]),
    "numbers-as-names-over-labels": ("1,2,label\n3,4,a\n5,6,b\n", [None]),
    "name-over-numbers-in-target-only": ("1,2,label\n3,4,5\n5,6,7\n", [None, "label"]),
    "all-names-over-labels": ("a,,c\n1,2,x\n", [None]),
}
# What the cell-by-cell reader reads, or refuses with a message naming the cell
CELL_BY_CELL_CSVS = {
    "text-feature": "x1,x2,y\n1,a,0\n3,4,1\n",
    "missing-label": "x1,x2,y\n1,2,cat\n3,4,NA\n",
    "ragged-labels": "x1,x2,y\n1,2,cat\n3,4,dog,5\n",
    "infinite-label": "x1,x2,y\n1,2,cat\n3,4,inf\n",
    "missing": "x1,x2,y\n1,NA,0\n3,4,1\n",
    "nan": "x1,x2,y\n1,nan,0\n3,4,1\n",
    "inf": "x1,x2,y\n1,inf,0\n3,4,1\n",
    "quotes": 'x1,x2,y\n"1",2,0\n3,4,1\n',
    "ragged": "x1,x2,y\n1,2,0\n3,4\n",
    "extra-cell": "x1,x2,y\n1,2,0,5\n3,4,1\n",
    "blank-cells-row": "x1,x2,y\n1,2,0\n,,\n3,4,1\n",
    "header-only": "x1,x2,y\n",
    "one-column": "x\n1\n2\n",
    "arabic-digits": "x1,x2,y\n\u0661,2,0\n3,4,1\n",
    "one-row-with-a-label": "1,2,cat\n",  # a header without data rows, by that reader's rule
    "one-row-of-numbers": "\n1,2,3\n",
}


def _cell_by_cell(monkeypatch, path, target):
    """read_csv with the NumPy parser switched off, or the CliError message it raises."""
    import mlpx.cli as cli

    with monkeypatch.context() as patch:
        patch.setattr(cli, "_numeric_csv", lambda *args: None)
        try:
            return cli.read_csv(path, target)
        except cli.CliError as exc:
            return str(exc)


def _assert_read_as_cell_by_cell(monkeypatch, path, target) -> None:
    """read_csv gives what the cell-by-cell reader gives: X and y, or the same message."""
    import mlpx.cli as cli

    expected = _cell_by_cell(monkeypatch, path, target)
    try:
        result = cli.read_csv(path, target)
    except cli.CliError as exc:
        result = str(exc)
    if isinstance(expected, str):
        assert result == expected
    else:
        for got, want in zip(result, expected, strict=True):
            np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize(("name", "target"), [(name, target) for name, (_, targets) in
                                             NUMERIC_CSVS.items() for target in targets])
def test_numeric_csv_is_parsed_by_numpy_as_the_cell_reader_reads_it(monkeypatch, tmp_path,
                                                                    name, target):
    """A file of numbers, or of numbers and a label column (header or not, blank lines,
    CRLF, spaces) is read by NumPy's parser, bit for bit as the cell-by-cell reader reads
    it, header decided alike."""
    import mlpx.cli as cli

    path = tmp_path / "data.csv"
    path.write_text(NUMERIC_CSVS[name][0], newline="")
    assert cli._numeric_csv(cli._utf8_text(path), path, target) is not None
    X, y = cli.read_csv(path, target)
    X_cells, y_cells = _cell_by_cell(monkeypatch, path, target)
    assert X.dtype == X_cells.dtype == np.float64 and y.dtype.kind == y_cells.dtype.kind
    np.testing.assert_array_equal(X, X_cells)
    np.testing.assert_array_equal(y, y_cells)
    assert np.signbit(X).tolist() == np.signbit(X_cells).tolist()  # -0 kept


@pytest.mark.parametrize("name", list(CELL_BY_CELL_CSVS))
def test_other_csv_files_go_cell_by_cell(monkeypatch, tmp_path, name):
    """Text among the features, missing or non-finite values, quotes, ragged rows: the
    NumPy parser declines, and read_csv gives the cell-by-cell reader's result or message."""
    import mlpx.cli as cli

    path = tmp_path / "data.csv"
    path.write_text(CELL_BY_CELL_CSVS[name], encoding="utf-8", newline="")
    assert cli._numeric_csv(cli._utf8_text(path), path, None) is None
    _assert_read_as_cell_by_cell(monkeypatch, path, None)


def test_numeric_csv_unknown_target_gives_the_same_message(monkeypatch, tmp_path):
    import mlpx.cli as cli

    path = tmp_path / "data.csv"
    path.write_text(NUMERIC_CSVS["header"][0])
    with pytest.raises(cli.CliError) as raised:
        cli.read_csv(path, "lable")
    assert str(raised.value) == _cell_by_cell(monkeypatch, path, "lable")
    assert "did you mean 'label'?" in str(raised.value)


def test_numpy_parser_agrees_with_the_cell_reader_on_random_files(monkeypatch, tmp_path):
    """400 small random files of numbers, labels, names, missing markers, blank lines,
    spaces and CRLF: wherever NumPy's parser takes a file, X and y are the cell-by-cell
    reader's; where it declines, read_csv still gives that reader's result or message."""
    import mlpx.cli as cli

    rng = np.random.default_rng(7)
    pieces = ["1", "-0", "2.5e-3", " 7 ", "+.5", "cat", "dog", "x1", "NA", "", "nan", "inf",
              "1e400", "3"]
    weights = np.array([8, 2, 4, 2, 2, 3, 3, 1, 1, 1, 1, 1, 1, 8], dtype=float)
    taken = 0
    for index in range(400):
        n_rows, n_columns = rng.integers(1, 6), rng.integers(2, 5)
        label_column = rng.integers(n_columns) if rng.random() < 0.5 else None
        rows = []
        if rng.random() < 0.5:
            rows.append([f"c{k}" if rng.random() < 0.8 else "" for k in range(n_columns)])
        for _ in range(n_rows):
            row = [str(rng.choice(pieces, p=weights / weights.sum()))
                   for _ in range(n_columns)]
            if label_column is not None:
                row[label_column] = str(rng.choice(["cat", "dog", "5"]))
            rows.append(row)
        newline = "\r\n" if rng.random() < 0.3 else "\n"
        lines = [",".join(row) for row in rows]
        if rng.random() < 0.3:
            lines.insert(int(rng.integers(len(lines) + 1)), "")
        path = tmp_path / f"random{index}.csv"
        path.write_text(newline.join(lines) + newline, newline="")
        target = None if rng.random() < 0.7 else str(rng.integers(n_columns))
        fast = cli._numeric_csv(cli._utf8_text(path), path, target)
        expected = _cell_by_cell(monkeypatch, path, target)
        if fast is not None:
            taken += 1
            assert not isinstance(expected, str), (path.read_text(), expected)
            for got, want in zip(fast, expected, strict=True):
                np.testing.assert_array_equal(got, want, err_msg=path.read_text())
        _assert_read_as_cell_by_cell(monkeypatch, path, target)
    assert taken >= 40  # the parser took a fair share (48 of these 400)
