"""Backpropagation against references: central differences, PyTorch autograd, stability.

Pattern 8 of the design: gradcheck in float64 (scikit-learn ``test_mlp.py::test_gradient``)
and comparison with PyTorch autograd (micrograd ``test/test_engine.py``), for every
activation and every loss, on every backend of the ``backend`` fixture.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import assert_close

import mlpx

ELEMENTWISE = ["identity", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "softplus", "gelu"]
OUTPUT_ACTIVATIONS = [*ELEMENTWISE, "softmax"]
ALPHAS = [0.0, 0.1]
N_SAMPLES = 8
N_FEATURES = 3
GRADCHECK_TOL = 1e-6
TORCH_RTOL = 1e-10

# name -> (output activation, loss, n_outputs, target kind)
HEADS = {
    "identity-mse-2": ("identity", "mse", 2, "real"),
    **{f"{act}-mse": (act, "mse", 3, "unit") for act in OUTPUT_ACTIVATIONS if act != "identity"},
    "sigmoid-bce-1": ("sigmoid", "binary_crossentropy", 1, "binary"),
    "sigmoid-bce-3": ("sigmoid", "binary_crossentropy", 3, "multilabel"),
    "softmax-ce-int": ("softmax", "categorical_crossentropy", 4, "int"),
    "softmax-ce-onehot": ("softmax", "categorical_crossentropy", 4, "onehot"),
}
CLASSIFICATION_HEADS = ["sigmoid-bce-1", "sigmoid-bce-3", "softmax-ce-int", "softmax-ce-onehot"]


def make_data(kind: str, n_outputs: int, seed: int = 0):
    """X (8, 3) standard normal and targets of ``kind`` from a seeded numpy generator."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(N_SAMPLES, N_FEATURES))
    if kind == "real":
        y = rng.normal(size=(N_SAMPLES, n_outputs))
    elif kind == "unit":
        y = rng.uniform(0.05, 0.95, size=(N_SAMPLES, n_outputs))
    elif kind == "binary":
        y = np.tile([0, 1], N_SAMPLES // 2)
    elif kind == "multilabel":
        y = rng.integers(0, 2, size=(N_SAMPLES, n_outputs))
    elif kind == "int":
        y = np.arange(N_SAMPLES) % n_outputs
    elif kind == "onehot":
        y = np.eye(n_outputs)[(np.arange(N_SAMPLES) * 3) % n_outputs]
    else:  # pragma: no cover
        raise AssertionError(kind)
    return X, y


def make_model(backend, hidden, head: str, *, alpha=0.0, dtype="float64", seed=1):
    """A [3, 5, 4, k] network with mlpx's seeded initial weights and random biases.

    The initial biases are zero, so a sample whose hidden ReLUs are all off would put the
    next layer's z exactly on a kink (z = b = 0); random biases keep z off the kinks.
    """
    output, loss, n_outputs, _ = HEADS[head]
    model = mlpx.MLP([N_FEATURES, 5, 4, n_outputs], activations=[*hidden, output], loss=loss,
                     backend=backend, dtype=dtype, seed=seed, alpha=alpha)
    rng = np.random.default_rng(seed)
    model.params = [
        mlpx.to_numpy(p) if i % 2 == 0 else rng.uniform(-0.5, 0.5, size=tuple(p.shape))
        for i, p in enumerate(model.params)
    ]
    return model


def head_data(head: str):
    _, _, n_outputs, kind = HEADS[head]
    return make_data(kind, n_outputs)


# --- central differences ------------------------------------------------------------------

def assert_gradcheck(model, X, y):
    errors = mlpx.gradcheck(model, X, y)
    assert len(errors) == len(model.params)
    assert all(math.isfinite(e) for e in errors), errors
    assert max(errors) < GRADCHECK_TOL, errors


@pytest.mark.parametrize("alpha", ALPHAS)
@pytest.mark.parametrize("activation", ELEMENTWISE)
def test_gradcheck_hidden_activation(backend, activation, alpha):
    model = make_model(backend, (activation, activation), "identity-mse-2", alpha=alpha)
    assert_gradcheck(model, *head_data("identity-mse-2"))


@pytest.mark.parametrize("alpha", ALPHAS)
@pytest.mark.parametrize("activation", OUTPUT_ACTIVATIONS)
def test_gradcheck_output_activation_with_mse(backend, activation, alpha):
    head = "identity-mse-2" if activation == "identity" else f"{activation}-mse"
    model = make_model(backend, ("tanh", "gelu"), head, alpha=alpha)
    assert_gradcheck(model, *head_data(head))


@pytest.mark.parametrize("alpha", ALPHAS)
@pytest.mark.parametrize("head", CLASSIFICATION_HEADS)
@pytest.mark.parametrize("activation", ELEMENTWISE)
def test_gradcheck_crossentropy(backend, activation, head, alpha):
    model = make_model(backend, (activation, activation), head, alpha=alpha)
    assert_gradcheck(model, *head_data(head))


def test_gradcheck_leaves_model_unchanged(backend):
    model = make_model(backend, ("tanh", "relu"), "sigmoid-bce-1", dtype="float32")
    before = [mlpx.to_numpy(p).copy() for p in model.params]
    assert_gradcheck(model, *head_data("sigmoid-bce-1"))
    for param, old in zip(model.params, before, strict=True):
        assert_close(param, old, backend=backend, dtype=model.dtype, rtol=0)


# --- PyTorch autograd ---------------------------------------------------------------------

def _torch_activation(name: str, z):
    torch = pytest.importorskip("torch")
    functional = torch.nn.functional
    return {
        "identity": lambda t: t,
        "sigmoid": torch.sigmoid,
        "tanh": torch.tanh,
        "relu": functional.relu,
        "leaky_relu": lambda t: functional.leaky_relu(t, negative_slope=0.01),
        "elu": lambda t: functional.elu(t, alpha=1.0),
        "softplus": functional.softplus,
        "gelu": lambda t: functional.gelu(t, approximate="tanh"),
        "softmax": lambda t: torch.softmax(t, dim=1),
    }[name](z)


def torch_loss_and_grads(model, X, y, head: str, alpha: float):
    """The same network in float64 torch on the CPU, its loss and autograd gradients."""
    torch = pytest.importorskip("torch")
    functional = torch.nn.functional
    output_act, loss_name, _, kind = HEADS[head]
    params = [torch.tensor(mlpx.to_numpy(p), dtype=torch.float64, requires_grad=True)
              for p in model.params]
    a = torch.tensor(X, dtype=torch.float64)
    z = None
    for i, name in enumerate(model.activations):
        z = a @ params[2 * i] + params[2 * i + 1]
        a = _torch_activation(name, z)
    n = X.shape[0]
    if loss_name == "mse":
        loss = functional.mse_loss(a, torch.tensor(y, dtype=torch.float64))
    elif loss_name == "binary_crossentropy":
        target = torch.tensor(np.asarray(y, dtype=np.float64).reshape(n, -1))
        loss = functional.binary_cross_entropy_with_logits(z, target, reduction="sum") / n
    elif kind == "int":
        loss = functional.cross_entropy(z, torch.tensor(y, dtype=torch.int64))
    else:
        loss = functional.cross_entropy(z, torch.tensor(y, dtype=torch.float64))
    if alpha:
        loss = loss + 0.5 * alpha * sum((W * W).sum() for W in params[0::2])
    loss.backward()
    return loss.item(), [p.grad.numpy() for p in params]


@pytest.mark.parametrize("alpha", ALPHAS)
@pytest.mark.parametrize("head", list(HEADS))
@pytest.mark.parametrize("hidden", ELEMENTWISE)
def test_grads_equal_torch_autograd(backend, hidden, head, alpha):
    pytest.importorskip("torch")
    X, y = head_data(head)
    model = make_model(backend, (hidden, hidden), head, alpha=alpha)
    loss, grads = model.loss_and_grads(X, y)
    ref_loss, ref_grads = torch_loss_and_grads(model, X, y, head, alpha)
    assert isinstance(loss, float)
    np.testing.assert_allclose(loss, ref_loss, rtol=TORCH_RTOL)
    assert len(grads) == len(ref_grads)
    for grad, ref in zip(grads, ref_grads, strict=True):
        assert_close(grad, ref, backend=backend, dtype=model.dtype, shape=ref.shape,
                     rtol=TORCH_RTOL)


# --- numerical stability at huge logits ---------------------------------------------------

@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_binary_crossentropy_stable_for_huge_logits(backend, dtype):
    # One sigmoid unit, z = 1e4 * x1: logits +1e4 and -1e4.
    model = mlpx.MLP([2, 1], activations=["sigmoid"], backend=backend, dtype=dtype)
    model.params = [np.array([[1e4], [0.0]]), np.array([0.0])]
    X = np.array([[1.0, 0.5], [-1.0, 0.5]])
    inter = model.forward(X, return_intermediates=True)
    assert_close(inter.pre_activations[0], [[1e4], [-1e4]], backend=backend, rtol=1e-7)
    assert_close(inter.output, [[1.0], [0.0]], backend=backend, rtol=0, atol=1e-30)

    # Confidently wrong: -log sigmoid(-1e4) = 1e4 per sample, so the mean is 1e4.
    loss, grads = model.loss_and_grads(X, np.array([0, 1]))
    assert math.isfinite(loss)
    assert loss == pytest.approx(1e4, rel=1e-7)
    # dL/dz = (a - y) / n = [+0.5, -0.5]; dW = X^T dz; db = sum dz.
    assert_close(grads[0], [[1.0], [0.0]], backend=backend, shape=(2, 1), rtol=1e-7)
    assert_close(grads[1], [0.0], backend=backend, shape=(1,), atol=1e-7)

    # Confidently right: the loss is log1p(exp(-1e4)) = 0 and the gradient vanishes.
    loss, grads = model.loss_and_grads(X, np.array([1, 0]))
    assert loss == pytest.approx(0.0, abs=1e-12)
    for grad in grads:
        assert bool(model.xp.all(model.xp.isfinite(grad)))
        assert_close(grad, np.zeros(tuple(grad.shape)), backend=backend, atol=1e-12)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_categorical_crossentropy_stable_for_huge_logits(backend, dtype):
    # Three softmax units with logits z = [1e4, 0, -1e4] for x = [1, 0].
    model = mlpx.MLP([2, 3], activations=["softmax"], backend=backend, dtype=dtype)
    model.params = [np.array([[1e4, 0.0, -1e4], [0.0, 0.0, 0.0]]), np.zeros(3)]
    X = np.array([[1.0, 0.0], [1.0, 0.0]])
    output = model.forward(X)
    assert_close(output, [[1.0, 0.0, 0.0]] * 2, backend=backend, rtol=0, atol=1e-30)

    # logsumexp(z) = 1e4, so the loss of class j is 1e4 - z_j: 1e4 for class 1, 2e4 for 2.
    loss, grads = model.loss_and_grads(X, np.array([1, 2]))
    assert math.isfinite(loss)
    assert loss == pytest.approx((1e4 + 2e4) / 2, rel=1e-7)
    # dL/dz = (softmax(z) - onehot) / n = [[0.5, -0.5, 0], [0.5, 0, -0.5]].
    assert_close(grads[0], [[1.0, -0.5, -0.5], [0.0, 0.0, 0.0]], backend=backend,
                 shape=(2, 3), rtol=1e-7)
    assert_close(grads[1], [1.0, -0.5, -0.5], backend=backend, shape=(3,), rtol=1e-7)

    # Confidently right, as one-hot rows: loss 0.
    loss, grads = model.loss_and_grads(X, np.array([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]]))
    assert loss == pytest.approx(0.0, abs=1e-12)
    for grad in grads:
        assert_close(grad, np.zeros(tuple(grad.shape)), backend=backend, atol=1e-12)


@pytest.mark.parametrize("head", ["sigmoid-bce-1", "softmax-ce-int"])
def test_crossentropy_gradients_finite_through_hidden_layer(backend, head):
    """Saturated logits of +-1e4 behind a hidden layer still give finite, exact gradients."""
    output, loss_name, n_outputs, kind = HEADS[head]
    model = mlpx.MLP([2, 2, n_outputs], activations=["relu", output], loss=loss_name,
                     backend=backend, dtype="float64")
    W2 = np.zeros((2, n_outputs))
    W2[0, 0] = 1e4  # z_0 = 1e4 * relu(x0)
    if n_outputs > 1:
        W2[1, 1] = 1e4
    model.params = [np.eye(2), np.zeros(2), W2, np.zeros(n_outputs)]
    X = np.array([[1.0, 0.0], [0.0, 1.0]])
    y = np.array([0, 0]) if kind == "binary" else np.array([1, 0])
    loss, grads = model.loss_and_grads(X, y)
    assert math.isfinite(loss)
    for grad in grads:
        assert bool(model.xp.all(model.xp.isfinite(grad)))
    if kind == "binary":
        # z = [1e4, 0]: sample 0 is wrong by 1e4, sample 1 costs log 2. dL/dz = (a - y) / 2
        # = [0.5, 0.25]; a1 = X, so dW2 = [[0.5], [0.25]] and db2 = [0.75].
        assert loss == pytest.approx((1e4 + math.log(2.0)) / 2, rel=1e-12)
        assert_close(grads[2], [[0.5], [0.25]], backend=backend, rtol=1e-12)
        assert_close(grads[3], [0.75], backend=backend, rtol=1e-12)
    else:
        # z = [1e4, 0, 0, 0] against class 1 and [0, 1e4, 0, 0] against class 0: each
        # sample costs logsumexp(z) - z_label = 1e4. dL/dz = (onehot(argmax) - onehot(y))/2.
        assert loss == pytest.approx(1e4, rel=1e-12)
        assert_close(grads[2], [[0.5, -0.5, 0, 0], [-0.5, 0.5, 0, 0]], backend=backend,
                     rtol=1e-12, atol=1e-300)


# --- forward intermediates and gradient arrays --------------------------------------------

def _np_activation(name: str, z: np.ndarray) -> np.ndarray:
    if name == "identity":
        return z
    if name == "sigmoid":
        return 1.0 / (1.0 + np.exp(-z))
    if name == "tanh":
        return np.tanh(z)
    if name == "relu":
        return np.maximum(z, 0.0)
    if name == "leaky_relu":
        return np.where(z > 0, z, 0.01 * z)
    if name == "elu":
        return np.where(z > 0, z, np.expm1(z))
    if name == "softplus":
        return np.log1p(np.exp(z))
    if name == "gelu":
        return 0.5 * z * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (z + 0.044715 * z**3)))
    if name == "softmax":
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    raise AssertionError(name)


def _tolerance(dtype: str) -> dict:
    return {"rtol": 1e-12, "atol": 1e-14} if dtype == "float64" else {"rtol": 2e-6,
                                                                      "atol": 1e-6}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("activation", OUTPUT_ACTIVATIONS)
def test_forward_intermediates(backend, activation, dtype):
    if activation == "softmax":
        activations = ["tanh", "relu", "softmax"]
    else:
        activations = [activation, activation, "identity" if activation == "sigmoid"
                       else "sigmoid"]
    model = mlpx.MLP([3, 5, 4, 3], activations=activations, backend=backend,
                     dtype=dtype, seed=3)
    expected_dtype = getattr(backend.xp, dtype)
    X, _ = make_data("real", 3)
    X = 2.0 * X  # reach the saturating parts of sigmoid/tanh too
    inter = model.forward(X, return_intermediates=True)
    assert isinstance(inter, mlpx.Intermediates)
    assert len(inter.pre_activations) == len(inter.activations) == 3
    tol = _tolerance(dtype)
    assert_close(inter.inputs, X.astype(dtype), backend=backend, dtype=expected_dtype,
                 shape=(N_SAMPLES, 3), rtol=0)
    params = [mlpx.to_numpy(p).astype(np.float64) for p in model.params]
    previous = mlpx.to_numpy(inter.inputs).astype(np.float64)
    for layer, (z, a, name, size) in enumerate(
        zip(inter.pre_activations, inter.activations, activations, [5, 4, 3], strict=True)
    ):
        z_host = mlpx.to_numpy(z).astype(np.float64)
        # z_l = a_{l-1} @ W_l + b_l
        assert_close(z, previous @ params[2 * layer] + params[2 * layer + 1], backend=backend,
                     dtype=expected_dtype, shape=(N_SAMPLES, size), **tol)
        # a_l = f_l(z_l)
        assert_close(a, _np_activation(name, z_host), backend=backend, dtype=expected_dtype,
                     shape=(N_SAMPLES, size), **tol)
        previous = mlpx.to_numpy(a).astype(np.float64)
    assert_close(inter.output, mlpx.to_numpy(model.forward(X)), backend=backend, rtol=0)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("head", ["identity-mse-2", "sigmoid-bce-3", "softmax-ce-int"])
def test_loss_and_grads_arrays(backend, head, dtype):
    model = make_model(backend, ("relu", "tanh"), head, alpha=0.01, dtype=dtype)
    X, y = head_data(head)
    loss, grads = model.loss_and_grads(X, y)
    assert isinstance(loss, float) and math.isfinite(loss)
    expected_dtype = getattr(backend.xp, dtype)
    assert len(grads) == len(model.params) == 6
    for grad, param in zip(grads, model.params, strict=True):
        assert grad is not param
        assert_close(grad, mlpx.to_numpy(grad), backend=backend, dtype=expected_dtype,
                     shape=tuple(param.shape), rtol=0)
        assert bool(backend.xp.all(backend.xp.isfinite(grad)))
    # float32 gradients agree with the float64 ones of the same weights.
    if dtype == "float32":
        double = make_model(backend, ("relu", "tanh"), head, alpha=0.01, dtype="float64")
        double.params = [mlpx.to_numpy(p).astype(np.float64) for p in model.params]
        loss64, grads64 = double.loss_and_grads(X, y)
        assert loss == pytest.approx(loss64, rel=1e-5)
        for grad, grad64 in zip(grads, grads64, strict=True):
            scale = float(np.max(np.abs(mlpx.to_numpy(grad64))))
            assert_close(grad, mlpx.to_numpy(grad64), rtol=1e-4, atol=1e-5 * scale)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "elu"])
def test_relu_family_forward_and_backward_bit_for_bit(backend, activation, dtype):
    """relu as max(z, 0) and grad_a * sign(a), leaky_relu as max(z, 0.01 z) and a select:
    the numbers of the textbook forms, ``where(z > 0, z, slope z)`` and
    ``grad_a * where(z > 0, 1, f'(z))``, bit for bit (a zero's sign aside).

    z includes exact zeros (where relu'(0) = 0, as in PyTorch) and both signs of grad_a.
    """
    from mlpx._backend import from_host, resolve_dtype, to_numpy

    act = mlpx.activations.get_activation(activation)
    rng = np.random.default_rng(3)
    z_host = rng.standard_normal((N_SAMPLES, 5)).astype(dtype)
    z_host[::3, 1] = 0.0
    grad_host = rng.standard_normal((N_SAMPLES, 5)).astype(dtype)
    z, grad_a = (from_host(array, backend=backend, dtype=resolve_dtype(dtype, xp=backend.xp))
                 for array in (z_host, grad_host))
    a = act.forward(z, xp=backend.xp)
    grad_z = act.backward(z, a, grad_a, xp=backend.xp)

    slope = np.asarray(0.01, dtype=dtype)
    if activation == "elu":
        negative, negative_derivative = to_numpy(a), to_numpy(a) + np.asarray(1.0, dtype=dtype)
    else:
        negative = slope * z_host if activation == "leaky_relu" else np.zeros_like(z_host)
        negative_derivative = slope if activation == "leaky_relu" else np.asarray(0, dtype)
    expected_a = np.where(z_host > 0, z_host, negative)
    expected_grad = grad_host * np.where(z_host > 0, np.asarray(1, dtype), negative_derivative)
    for actual, expected in ((a, expected_a), (grad_z, expected_grad)):
        actual = to_numpy(actual)
        assert actual.dtype == expected.dtype
        np.testing.assert_array_equal(actual, expected)  # -0.0 == 0.0


@pytest.mark.parametrize("activation", ["relu", "leaky_relu"])
def test_relu_keeps_nan(backend, activation):
    """A NaN pre-activation stays NaN (it is not hidden as a 0), as in NumPy's maximum,
    torch.relu and the NumPy fast path's compiled relu."""
    from mlpx._backend import from_host, to_numpy

    z = from_host(np.array([[np.nan, 1.0, -1.0]]), backend=backend)
    a = to_numpy(mlpx.activations.get_activation(activation).forward(z, xp=backend.xp))
    assert np.isnan(a[0, 0]) and a[0, 1] == 1.0
