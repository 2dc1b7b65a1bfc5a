"""Test, lint, example and benchmark sessions; each installs what it needs.

    nox -s tests-numpy              # the core suite on NumPy (also the backend-independent tests)
    nox -s tests-array_api_strict   # every xp-parametrised test on array-api-strict (two devices)
    nox -s tests-torch              # ... on PyTorch tensors (torch==2.13.0, CPU build here)
    nox -s tests-cupy               # ... on CuPy (needs an NVIDIA GPU)
    nox -s lint examples
    nox -s bench bench-kernels bench-partial-fit bench-early-stopping bench-predict  # benchmarks
"""

from __future__ import annotations

import nox

nox.options.sessions = ["tests-numpy", "tests-array_api_strict", "lint", "examples"]
nox.options.reuse_existing_virtualenvs = True

TORCH = "torch==2.13.0"


def _install(session: nox.Session, *extras: str) -> None:
    session.install("-e", f".[{','.join(('test', *extras))}]" if extras else ".[test]")


@nox.session(name="tests-numpy")
def tests_numpy(session: nox.Session) -> None:
    """All tests on NumPy, including the CLI, datasets and examples' building blocks."""
    _install(session)
    session.run("pytest", "--backend", "numpy", *session.posargs)


@nox.session(name="tests-array_api_strict")
def tests_array_api_strict(session: nox.Session) -> None:
    """The xp-parametrised tests on array-api-strict: proof that nothing NumPy-only slipped in.

    Then once more on its emulated second device (``--device device1``), where arrays do
    not turn into NumPy arrays or mix with the default device's, as on a GPU.
    """
    _install(session)
    session.run("pytest", "--backend", "array_api_strict", *session.posargs)
    session.run("pytest", "--backend", "array_api_strict", "--device", "device1",
                *session.posargs)


@nox.session(name="tests-torch")
def tests_torch(session: nox.Session) -> None:
    """The xp-parametrised tests on PyTorch tensors, plus the autograd oracle tests."""
    _install(session)
    session.install(TORCH)
    # Two OpenMP threads on a busy two-core machine stall tiny torch kernels for seconds.
    session.run("pytest", "--backend", "torch", *session.posargs, env={"OMP_NUM_THREADS": "1"})


@nox.session(name="tests-cupy")
def tests_cupy(session: nox.Session) -> None:
    """The xp-parametrised tests on CuPy; needs an NVIDIA GPU and CUDA 12/13."""
    _install(session)
    session.install("cupy-cuda13x")
    session.run("pytest", "--backend", "cupy", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff over the package, tests, examples and benchmarks."""
    session.install("ruff")
    session.run("ruff", "check", "mlpx", "tests", "examples", "benchmarks", "noxfile.py")


@nox.session
def examples(session: nox.Session) -> None:
    """Run every example script end to end (quick settings through MLPX_EXAMPLE_QUICK=1);
    matplotlib (the plot extra) makes the graph examples' decision-boundary pictures."""
    _install(session, "plot")
    import pathlib

    for script in sorted(pathlib.Path("examples").glob("*.py")):
        session.run("python", str(script), env={"MLPX_EXAMPLE_QUICK": "1", "MPLBACKEND": "Agg"})


@nox.session
def bench(session: nox.Session) -> None:
    """A complete fit as a multiple of its GEMM floor: mlpx vs scikit-learn and PyTorch (CPU).

    ``nox -s bench`` runs the quick settings (< 3 minutes); ``nox -s bench -- --repeats 7``
    the full one; any arguments replace ``--quick`` (see benchmarks/README.md).
    """
    _install(session)
    session.install(TORCH)
    args = session.posargs or ["--quick"]
    session.run("python", "benchmarks/bench_train.py", *args)


@nox.session(name="bench-kernels")
def bench_kernels(session: nox.Session) -> None:
    """The compiled kernels (optimizer steps, hidden activations) against the NumPy ones
    inside whole fits.

    ``nox -s bench-kernels`` runs 7 paired rounds (about 5 minutes); arguments replace
    them (``-- --quick``; see benchmarks/README.md).
    """
    _install(session)
    session.run("python", "benchmarks/bench_kernels.py", *session.posargs)


@nox.session(name="bench-partial-fit")
def bench_partial_fit(session: nox.Session) -> None:
    """Streaming training: partial_fit per call, mlpx.sklearn against scikit-learn.

    ``nox -s bench-partial-fit`` streams digits in chunks of 64 and 512 rows, 5 rounds
    (under a minute); arguments replace them (see benchmarks/README.md).
    """
    _install(session)
    session.run("python", "benchmarks/bench_partial_fit.py", *session.posargs)


@nox.session(name="bench-early-stopping")
def bench_early_stopping(session: nox.Session) -> None:
    """Early stopping's cost in the drop-in estimators, mlpx.sklearn against scikit-learn.

    ``nox -s bench-early-stopping`` fits the classifier on digits and the regressor on
    diabetes, 50 epochs with and without early_stopping, 5 rounds (about a minute);
    arguments replace them (see benchmarks/README.md).
    """
    _install(session)
    session.run("python", "benchmarks/bench_early_stopping.py", *session.posargs)


@nox.session(name="bench-predict")
def bench_predict(session: nox.Session) -> None:
    """Prediction speed: predict_proba per call, mlpx against scikit-learn and PyTorch (CPU).

    ``nox -s bench-predict`` times 1, 64 and all test rows per call on the three configs,
    7 rounds (under a minute); arguments replace them (``-- --quick``; see
    benchmarks/README.md).
    """
    _install(session, "sklearn")
    session.install(TORCH)
    session.run("python", "benchmarks/bench_predict.py", *session.posargs)
