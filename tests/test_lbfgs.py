"""mlpx.lbfgs: convergence on known problems, parity with scipy's L-BFGS-B, stopping rules,
non-finite regions, and argument checks, on every backend."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import assert_close

from mlpx._backend import to_numpy
from mlpx._errors import MlpxTypeError, MlpxValueError
from mlpx.lbfgs import STATUSES, LbfgsResult, default_ftol, minimize_lbfgs


def to_backend(host, backend, dtype="float64"):
    xp = backend.xp
    return xp.asarray(host, dtype=getattr(xp, dtype), device=backend.device)


# --- problems, written with array-API operations ------------------------------------------

def quadratic_problem(backend, dtype="float64"):
    """0.5 x^T A x - b^T x with A SPD; minimum A^-1 b."""
    rng = np.random.default_rng(1)
    m = rng.normal(size=(5, 5))
    a_host = m @ m.T + 5.0 * np.eye(5)
    b_host = rng.normal(size=5)
    a, b = to_backend(a_host, backend, dtype), to_backend(b_host, backend, dtype)
    xp = backend.xp

    def fun_and_grad(x):
        ax = a @ x
        return 0.5 * xp.sum(x * ax) - xp.sum(b * x), ax - b

    return fun_and_grad, np.linalg.solve(a_host, b_host)


def rosenbrock(xp):
    """sum(100 (x[i+1] - x[i]^2)^2 + (1 - x[i])^2); minimum at ones."""

    def fun_and_grad(x):
        head, tail = x[:-1], x[1:]
        t = tail - head**2
        zero = xp.zeros(1, dtype=x.dtype, device=x.device)
        grad = xp.concat([-400.0 * head * t - 2.0 * (1.0 - head), zero])
        grad = grad + xp.concat([zero, 200.0 * t])
        return xp.sum(100.0 * t**2 + (1.0 - head) ** 2), grad

    return fun_and_grad


LAMBDA = 1e-3


def logistic_data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 20))
    w = rng.normal(size=20)
    y = (X @ w + rng.normal(size=200) > 0).astype(np.float64)
    return X, y


def logistic_loss(xp, X, y):
    """Mean logistic loss with L2 penalty LAMBDA / 2 ||w||^2, and its gradient."""

    def fun_and_grad(w):
        z = X @ w
        zero = xp.zeros(z.shape, dtype=z.dtype, device=z.device)
        loss = xp.mean(xp.logaddexp(zero, z) - y * z) + 0.5 * LAMBDA * xp.sum(w * w)
        p = 1.0 / (1.0 + xp.exp(-z))
        return loss, (X.T @ (p - y)) / X.shape[0] + LAMBDA * w

    return fun_and_grad


@pytest.fixture(scope="module")
def scipy_logistic_loss():
    scipy_optimize = pytest.importorskip("scipy.optimize")
    import array_api_compat.numpy as xnp

    X, y = logistic_data()
    fun_and_grad = logistic_loss(xnp, X, y)

    def host_fun_and_grad(w):
        loss, grad = fun_and_grad(w)
        return float(loss), np.asarray(grad)

    result = scipy_optimize.minimize(host_fun_and_grad, np.zeros(20), jac=True,
                                     method="L-BFGS-B")
    assert result.success
    return result.fun


# --- convergence ---------------------------------------------------------------------------

def test_quadratic_exact_in_few_iterations(backend):
    fun_and_grad, minimum = quadratic_problem(backend)
    result = minimize_lbfgs(fun_and_grad, to_backend(np.zeros(5), backend), gtol=1e-8,
                            ftol=0.0)
    assert result.status == "gtol" and result.converged
    assert result.n_iter <= 12
    assert_close(result.x, minimum, backend=backend, rtol=0, atol=1e-8, shape=(5,))


@pytest.mark.parametrize("n", [2, 10])
def test_rosenbrock_converges_to_ones(backend, n):
    x0 = np.full(2, -1.2) if n == 2 else np.linspace(-1.5, 1.5, n)
    result = minimize_lbfgs(rosenbrock(backend.xp), to_backend(x0, backend), gtol=1e-8,
                            ftol=0.0)
    assert result.converged, result.message
    assert result.n_iter < 150
    assert_close(result.x, np.ones(n), backend=backend, rtol=0, atol=1e-7)
    assert result.fun < 1e-14


def test_logistic_regression_matches_scipy_float64(backend, scipy_logistic_loss):
    X, y = logistic_data()
    fun_and_grad = logistic_loss(backend.xp, to_backend(X, backend), to_backend(y, backend))
    result = minimize_lbfgs(fun_and_grad, to_backend(np.zeros(20), backend))
    assert result.converged, result.message
    assert result.fun == pytest.approx(scipy_logistic_loss, rel=1e-6)


def test_logistic_regression_float32_near_scipy(backend, scipy_logistic_loss):
    X, y = logistic_data()
    fun_and_grad = logistic_loss(backend.xp, to_backend(X, backend, "float32"),
                                 to_backend(y, backend, "float32"))
    result = minimize_lbfgs(fun_and_grad, to_backend(np.zeros(20), backend, "float32"))
    assert result.status in ("gtol", "ftol", "line_search"), result.message
    assert result.fun == pytest.approx(scipy_logistic_loss, rel=1e-4)
    assert_close(result.grad, fun_and_grad(result.x)[1], backend=backend,
                 dtype=backend.xp.float32, rtol=0, atol=0)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_result_keeps_namespace_dtype_device_and_x0_unchanged(backend, dtype):
    fun_and_grad, minimum = quadratic_problem(backend, dtype)
    host_x0 = np.linspace(-1.0, 1.0, 5)
    x0 = to_backend(host_x0, backend, dtype)
    result = minimize_lbfgs(fun_and_grad, x0)
    xp_dtype = getattr(backend.xp, dtype)
    assert isinstance(result, LbfgsResult) and isinstance(result.fun, float)
    assert_close(result.x, minimum, backend=backend, dtype=xp_dtype, shape=(5,), rtol=1e-3,
                 atol=1e-4)
    assert_close(result.grad, np.zeros(5), backend=backend, dtype=xp_dtype, shape=(5,),
                 atol=1e-4)
    assert_close(x0, host_x0, backend=backend, dtype=xp_dtype, rtol=0)


def test_x0_already_optimal_returns_a_copy(backend):
    fun_and_grad, minimum = quadratic_problem(backend)
    x0 = to_backend(minimum, backend)
    result = minimize_lbfgs(fun_and_grad, x0, gtol=1e-6)
    assert (result.status, result.n_iter, result.n_fun) == ("gtol", 0, 1)
    assert result.x is not x0
    assert_close(result.x, minimum, backend=backend)


# --- stopping rules ------------------------------------------------------------------------

def test_gtol_status(backend):
    fun_and_grad, _ = quadratic_problem(backend)
    result = minimize_lbfgs(fun_and_grad, to_backend(np.zeros(5), backend), gtol=1e-3,
                            ftol=0.0)
    assert result.status == "gtol" and result.converged
    assert float(backend.xp.max(backend.xp.abs(result.grad))) <= 1e-3
    assert "gtol" in result.message


def test_ftol_status(backend):
    result = minimize_lbfgs(rosenbrock(backend.xp), to_backend(np.full(2, -1.2), backend),
                            gtol=0.0, ftol=1e-3)
    assert result.status == "ftol" and result.converged


def test_max_iter_respected(backend):
    result = minimize_lbfgs(rosenbrock(backend.xp), to_backend(np.full(2, -1.2), backend),
                            max_iter=5)
    assert (result.n_iter, result.status, result.converged) == (5, "max_iter", False)


@pytest.mark.parametrize("max_fun", [1, 2, 7])
def test_max_fun_respected(backend, max_fun):
    fun = rosenbrock(backend.xp)
    calls = []

    def counted(x):
        calls.append(1)
        return fun(x)

    result = minimize_lbfgs(counted, to_backend(np.full(2, -1.2), backend), max_fun=max_fun)
    assert result.n_fun == len(calls) <= max_fun
    assert (result.status, result.converged) == ("max_fun", False)
    assert result.fun <= float(fun(to_backend(np.full(2, -1.2), backend))[0])


def test_callback_stops(backend):
    seen = []

    def callback(x, fun):
        seen.append(fun)
        return len(seen) == 3

    result = minimize_lbfgs(rosenbrock(backend.xp), to_backend(np.full(2, -1.2), backend),
                            callback=callback)
    assert (result.status, result.converged, result.n_iter) == ("callback", False, 3)
    assert seen[-1] == result.fun and seen == sorted(seen, reverse=True)


def test_wrong_gradient_stops_with_line_search(backend):
    fun = rosenbrock(backend.xp)
    x0 = to_backend(np.full(2, -1.2), backend)
    result = minimize_lbfgs(lambda x: (fun(x)[0], -fun(x)[1]), x0)
    assert (result.status, result.converged, result.n_iter) == ("line_search", False, 0)
    assert result.n_fun <= 1 + 2 * 20
    assert_close(result.x, to_numpy(x0), backend=backend, rtol=0)


def test_non_finite_region_shrinks_the_step(backend):
    """Loss infinite outside the ball of radius 0.1; the minimum lies just inside it.

    The first trial step has length 1, ten times the radius: the search must shrink it.
    """
    xp = backend.xp
    center = to_backend([0.09, 0.0], backend)
    scale = to_backend([1.0, 10.0], backend)
    outside = []

    def fun_and_grad(x):
        grad = scale * (x - center)
        if float(xp.sum(x * x)) > 0.01:
            outside.append(1)
            return math.inf, grad * math.nan
        return 0.5 * xp.sum(grad * (x - center)), grad

    result = minimize_lbfgs(fun_and_grad, to_backend([0.0, 0.05], backend), gtol=1e-9)
    assert len(outside) >= 2, "the problem should probe the non-finite region"
    assert result.status == "gtol", result.message
    assert math.isfinite(result.fun)
    assert_close(result.x, [0.09, 0.0], backend=backend, atol=1e-9)


# --- arguments -----------------------------------------------------------------------------

def test_default_ftol(xp):
    assert default_ftol(xp.float64, xp=xp) == 2.220446049250313e-09
    assert default_ftol(xp.float32, xp=xp) == pytest.approx(4 * 1.1920929e-07)
    assert set(STATUSES) == {"gtol", "ftol", "max_iter", "max_fun", "line_search", "callback"}


@pytest.mark.parametrize(("kwargs", "error", "parameter"), [
    ({"max_iter": 0}, MlpxValueError, "max_iter"),
    ({"max_iter": 1.5}, MlpxTypeError, "max_iter"),
    ({"max_iter": True}, MlpxTypeError, "max_iter"),
    ({"max_fun": 0}, MlpxValueError, "max_fun"),
    ({"history_size": 0}, MlpxValueError, "history_size"),
    ({"history_size": "10"}, MlpxTypeError, "history_size"),
    ({"gtol": -1.0}, MlpxValueError, "gtol"),
    ({"gtol": math.nan}, MlpxValueError, "gtol"),
    ({"ftol": math.inf}, MlpxValueError, "ftol"),
    ({"ftol": -1e-9}, MlpxValueError, "ftol"),
    ({"ftol": "small"}, MlpxTypeError, "ftol"),
    ({"callback": 3}, MlpxTypeError, "callback"),
])
def test_bad_arguments(kwargs, error, parameter):
    import array_api_compat.numpy as xnp

    fun_and_grad = rosenbrock(xnp)
    with pytest.raises(error, match=parameter):
        minimize_lbfgs(fun_and_grad, xnp.zeros(2, dtype=xnp.float64), **kwargs)


def test_bad_fun_and_grad():
    with pytest.raises(MlpxTypeError, match="fun_and_grad"):
        minimize_lbfgs(None, np.zeros(2))
    with pytest.raises(MlpxValueError, match="fun_and_grad"):
        minimize_lbfgs(lambda x: (0.0, np.zeros(3)), np.zeros(2))
    with pytest.raises(MlpxValueError, match="non-finite"):
        minimize_lbfgs(lambda x: (math.nan, x), np.ones(2))


def test_bad_x0(backend):
    xp = backend.xp
    fun_and_grad = rosenbrock(xp)
    with pytest.raises(MlpxValueError, match="x0"):
        minimize_lbfgs(fun_and_grad, to_backend(np.zeros((2, 2)), backend))
    with pytest.raises(MlpxValueError, match="x0"):
        minimize_lbfgs(fun_and_grad, to_backend(np.zeros(0), backend))
    with pytest.raises(MlpxTypeError, match="x0"):
        minimize_lbfgs(fun_and_grad, xp.asarray([1, 2], dtype=xp.int64, device=backend.device))
    with pytest.raises(MlpxTypeError, match="x0"):
        minimize_lbfgs(fun_and_grad, [1.0, 2.0])
