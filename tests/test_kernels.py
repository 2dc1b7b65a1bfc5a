"""The optional compiled kernels (``mlpx._kernels``) give the NumPy kernels' bits.

Where ``setup.py`` could build the extension, ``mlpx._numpy_optim._CompiledAdamStep`` runs
Adam in one C pass (reference: ``_AdamStep``, nine NumPy calls, whose reference is
``Optimizer.update_`` in ``tests/test_fastpath.py``), ``_CompiledSGDStep`` SGD
(references: ``_SGDStep`` and ``_MomentumStep``) and ``_CompiledSquareAverageStep``
RMSprop and Adagrad (reference: ``_SquareAverageStep``), each with an optional L2 gradient on
given ranges of parameters (reference: the NumPy kernel on ``grad + l2 * param``),
the ``_COMPILED_ACTIVATIONS`` of ``mlpx._numpy_fastpath`` the hidden activations and their
gradients (references: the NumPy kernels of ``_NUMPY_ACTIVATIONS``, NumPy's ufuncs, and
for the C passes of gelu and softplus the generic formulas of ``mlpx.activations``),
``take_rows_`` the gather of a batch's rows of X (reference: ``X[rows]``), and
``shift_by_max_`` with ``softmax_minus_labels_`` the softmax cross-entropy gradient
(reference: ``_SoftmaxCrossEntropyGradient``, whose reference is the seven NumPy calls
of ``(softmax(z) - y) / n`` on one-hot columns y). NumPy-only tests: they
run in the numpy session. In CI (``CI`` set) the extension must have been built.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest

import mlpx
from mlpx import _compiled, _numpy_fastpath, _numpy_optim, optim
from mlpx._numpy_optim import (
    _AdamStep,
    _CompiledAdamStep,
    _CompiledSGDStep,
    _CompiledSquareAverageStep,
    _MomentumStep,
    _SGDStep,
    _SquareAverageStep,
)

kernels = _compiled.kernels
needs_kernels = pytest.mark.skipif(kernels is None, reason="mlpx._kernels is not built here")


def test_the_kernel_is_built_in_ci():
    """CI builds the package from source with a compiler: a silent fallback would hide it."""
    if os.environ.get("CI", "") in ("", "0", "false") or os.environ.get("MLPX_PURE_NUMPY"):
        pytest.skip("only CI requires the compiled kernel")
    assert kernels is not None, "setup.py did not build mlpx._kernels"


def _random_vectors(n: int, dtype, seed: int):
    """Parameters, moments and gradients over many orders of magnitude, with zeros."""
    rng = np.random.default_rng(seed)
    scale = rng.choice(np.array([0.0, 1e-30, 1e-6, 1.0, 1e3, 1e20]), size=n)
    grad = (rng.normal(size=n) * scale).astype(dtype)
    param = rng.normal(size=n).astype(dtype)
    return param, grad


OPTIMIZERS = [
    pytest.param(lambda: optim.Adam(), id="adam"),
    pytest.param(lambda: optim.Adam(beta1=0.5, beta2=0.9, epsilon=1e-3), id="adam-custom"),
    pytest.param(lambda: optim.AdamW(weight_decay=0.3), id="adamw"),
    pytest.param(lambda: optim.SGD(), id="sgd"),
    pytest.param(lambda: optim.SGD(momentum=0.9), id="momentum"),
    pytest.param(lambda: optim.SGD(momentum=0.7, nesterov=True), id="nesterov"),
    pytest.param(lambda: optim.RMSprop(), id="rmsprop"),
    pytest.param(lambda: optim.RMSprop(rho=0.5, epsilon=1e-3), id="rmsprop-custom"),
    pytest.param(lambda: optim.Adagrad(), id="adagrad"),
    pytest.param(lambda: optim.Adagrad(epsilon=1e-3), id="adagrad-custom"),
]


def _numpy_and_compiled(optimizer) -> tuple[type, type]:
    """The NumPy kernel (the reference) and the compiled step for ``optimizer``."""
    if isinstance(optimizer, optim.Adam):
        return _AdamStep, _CompiledAdamStep
    if isinstance(optimizer, (optim.RMSprop, optim.Adagrad)):
        return _SquareAverageStep, _CompiledSquareAverageStep
    return (_MomentumStep if optimizer.momentum else _SGDStep), _CompiledSGDStep


def _same_state(compiled, reference) -> None:
    for slot in compiled.optimizer.slots:
        np.testing.assert_array_equal(compiled.state[slot][0], reference.state[slot][0],
                                      err_msg=slot)
    assert compiled.state["step"] == reference.state["step"]


@needs_kernels
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 7, 8, 9, 1003, 70_001])
@pytest.mark.parametrize("make_optimizer", OPTIMIZERS)
def test_compiled_step_is_bitwise_the_numpy_kernel(make_optimizer, n, dtype):
    """Every length (vector bodies and remainders), both dtypes, many steps: same bits."""
    optimizer = make_optimizer()
    start, grad0 = _random_vectors(n, dtype, seed=n)
    steps = {}
    for kind in _numpy_and_compiled(optimizer):
        param, grad = start.copy(), np.zeros_like(start)
        state = optimizer.init([param])
        steps[kind] = (kind(optimizer, state, param, grad), param, grad)
    for step, lr in enumerate([0.1, 1e-3, 0.5, 3e-2, 1e-5, 1.0]):
        _, grad_t = _random_vectors(n, dtype, seed=1000 * n + step)
        for kernel, _, grad in steps.values():
            grad[...] = grad_t if step else grad0
            with np.errstate(over="ignore", invalid="ignore"):  # g^2 of 1e20 is inf
                kernel(lr)
        (reference, p_numpy, _), (compiled, p_c, _) = steps.values()
        np.testing.assert_array_equal(p_c, p_numpy, err_msg=f"param after step {step + 1}")
        _same_state(compiled, reference)
        assert compiled.state["step"] == step + 1
        assert p_c.dtype == dtype


@needs_kernels
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 7, 8, 9, 1003, 70_001])
@pytest.mark.parametrize("make_optimizer", OPTIMIZERS)
def test_compiled_step_with_l2_steps_on_grad_plus_l2_param(make_optimizer, n, dtype):
    """With ``l2``, the kernel steps as the NumPy kernel does on ``grad + l2 * param``
    (rounded in the parameters' dtype, as the generic backward), leaves grad as it was,
    and returns sum(param**2) before the step, to double precision."""
    optimizer = make_optimizer()
    start, _ = _random_vectors(n, dtype, seed=n)
    l2 = 0.037
    runs = {}
    for kind in _numpy_and_compiled(optimizer):
        param, grad = start.copy(), np.zeros_like(start)
        runs[kind] = (kind(optimizer, optimizer.init([param]), param, grad), param, grad)
    (reference, p_numpy, grad_numpy), (compiled, p_c, grad_c) = runs.values()
    for step, lr in enumerate([0.1, 1e-3, 0.5]):
        _, grad_t = _random_vectors(n, dtype, seed=1000 * n + step)
        expected_sum = float(np.sum(p_c.astype(np.float64) ** 2))
        grad_numpy[...] = grad_t + l2 * p_numpy
        grad_c[...] = grad_t
        with np.errstate(over="ignore", invalid="ignore"):
            reference(lr)
            compiled.begin(lr, l2)
            compiled.part(0, n, n)()
        np.testing.assert_array_equal(p_c, p_numpy, err_msg=f"param after step {step + 1}")
        np.testing.assert_array_equal(grad_c, grad_t)
        np.testing.assert_allclose(compiled.sum_of_squares, expected_sum, rtol=1e-12)
        _same_state(compiled, reference)


@needs_kernels
def test_a_part_penalises_only_its_weights():
    """``part(start, stop, penalised_stop)``: the biases after the weights take no L2 term."""
    optimizer = optim.Adam()
    start, grad0 = _random_vectors(40, np.float32, seed=3)
    runs = {}
    for penalised in (True, False):
        param, grad = start.copy(), grad0.copy()
        step = _CompiledAdamStep(optimizer, optimizer.init([param]), param, grad)
        step.begin(0.1, 0.5 if penalised else None)
        step.part(0, 40, 30)()
        runs[penalised] = (param, step.sum_of_squares)
    (with_l2, total), (without, no_total) = runs[True], runs[False]
    assert not np.array_equal(with_l2[:30], without[:30])
    np.testing.assert_array_equal(with_l2[30:], without[30:])
    np.testing.assert_allclose(total, np.sum(start[:30].astype(np.float64) ** 2), rtol=1e-12)
    assert no_total == 0.0


@needs_kernels
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_compiled_adam_penalises_only_the_given_ranges(dtype):
    """``penalise`` ranges (empty ones, one at the end included): the L2 term on those
    parameters only, the rest as without a penalty; the sum covers the ranges only."""
    optimizer = optim.Adam()
    n, l2 = 50, 0.25
    ranges = [(3, 10), (20, 20), (30, 50)]
    inside = np.zeros(n, dtype=bool)
    for start, stop in ranges:
        inside[start:stop] = True
    start_params, grad0 = _random_vectors(n, dtype, seed=11)
    reference_param, compiled_param = start_params.copy(), start_params.copy()
    reference = _AdamStep(optimizer, optimizer.init([reference_param]), reference_param,
                          np.where(inside, grad0 + l2 * start_params, grad0).astype(dtype))
    compiled = _CompiledAdamStep(optimizer, optimizer.init([compiled_param]), compiled_param,
                                 grad0.copy())
    compiled.penalise(ranges)
    with np.errstate(over="ignore", invalid="ignore"):
        reference(0.1)
        compiled(0.1, l2)
    np.testing.assert_array_equal(compiled_param, reference_param)
    np.testing.assert_allclose(compiled.sum_of_squares,
                               np.sum(start_params[inside].astype(np.float64) ** 2), rtol=1e-12)


@needs_kernels
@pytest.mark.parametrize("optimizer", ["adam", "adamw", "rmsprop", "adagrad"])
def test_fit_with_the_compiled_kernels_is_bitwise_the_pure_numpy_fit(monkeypatch, optimizer):
    """A whole float32 relu fit (shuffling, a short last batch, L2): the same weights."""
    X, y = mlpx.datasets.make_moons(200, noise=0.2, seed=1)
    weights, kernels_used = {}, []

    def recording_flat_step(*args):
        kernels_used.append(type(_numpy_optim.flat_step(*args)))
        return _numpy_optim.flat_step(*args)

    monkeypatch.setattr(_numpy_fastpath, "flat_step", recording_flat_step)
    relu_kernels_used = []

    def recording_hidden_activation(*args):
        relu_kernels_used.append(type(original_hidden_activation(*args)))
        return original_hidden_activation(*args)

    original_hidden_activation = _numpy_fastpath._hidden_activation
    monkeypatch.setattr(_numpy_fastpath, "_hidden_activation", recording_hidden_activation)
    for kind in ("compiled", "numpy"):
        if kind == "numpy":
            monkeypatch.setattr(_compiled, "kernels", None)
        model = mlpx.MLP([2, 16, 8, 2], activations=["relu", "relu", "softmax"],
                         dtype="float32", alpha=1e-3, seed=0)
        history = model.fit(X, y, epochs=5, batch_size=48, optimizer=optimizer,
                            learning_rate=0.01)
        weights[kind] = ([np.asarray(p).copy() for p in model.params], history.history)
    for compiled, pure in zip(weights["compiled"][0], weights["numpy"][0]):
        np.testing.assert_array_equal(compiled, pure)
    # the L2 penalty's share of the loss: summed in double precision in the compiled step,
    # by a float32 dot product in the NumPy one
    np.testing.assert_allclose(weights["compiled"][1]["loss"], weights["numpy"][1]["loss"],
                               rtol=1e-6)
    assert weights["compiled"][1]["accuracy"] == weights["numpy"][1]["accuracy"]
    numpy_step, compiled_step = _numpy_and_compiled(optim.get_optimizer(optimizer))
    assert kernels_used == [compiled_step, numpy_step]
    assert relu_kernels_used == [_numpy_fastpath._CompiledRelu] * 2 + [_numpy_fastpath._Relu] * 2


def test_pure_numpy_environment_variable_turns_the_kernel_off():
    code = "import mlpx._compiled as c; print(c.kernels is None)"
    # whether the module was built, not whether this process (perhaps run with the
    # variable set) loaded it
    built = str(importlib.util.find_spec("mlpx._kernels") is None)
    for value, expected in (("1", "True"), ("yes", "True"), ("0", built), ("false", built),
                            (" Off ", built), ("", built)):
        env = {**os.environ, "MLPX_PURE_NUMPY": value}
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                             text=True, check=True).stdout.strip()
        assert out == expected, value


# --- relu ---------------------------------------------------------------------------------

SPECIAL_VALUES = [0.0, -0.0, np.nan, -np.nan, np.inf, -np.inf, 1e-45, -1e-45, 1.0, -1.0, 3e38]


def _relu_inputs(shape, dtype, seed):
    rng = np.random.default_rng(seed)
    values = rng.normal(size=shape) * rng.choice([1e-40, 1.0, 1e30], size=shape)
    values.flat[:len(SPECIAL_VALUES)] = SPECIAL_VALUES[:values.size]
    with np.errstate(over="ignore"):
        return values.astype(dtype)


@needs_kernels
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1,), (7,), (13, 1), (32, 17), (256, 513), (3, 4, 5)])
def test_compiled_relu_is_bitwise_numpy_maximum(shape, dtype):
    """NaN kept, -0 made +0, subnormals, infinities: the bits of np.maximum(x, 0)."""
    x = _relu_inputs(shape, dtype, seed=len(shape))
    expected = np.maximum(x, np.asarray(0, dtype=dtype))
    kernels.relu_(x)
    assert x.dtype == dtype and x.shape == shape
    np.testing.assert_array_equal(x.view(f"u{x.itemsize}"), expected.view(f"u{x.itemsize}"))


@needs_kernels
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1,), (7,), (32, 17), (256, 513)])
def test_compiled_relu_gradient_is_bitwise_numpy(shape, dtype):
    """grad * (a > 0): the signs of zero products and NaN as NumPy's boolean multiply."""
    a = _relu_inputs(shape, dtype, seed=1)
    grad = _relu_inputs(shape, dtype, seed=2)[::-1].copy()
    with np.errstate(invalid="ignore"):
        expected = grad * (a > 0)
    kernels.relu_grad_(grad, a)
    np.testing.assert_array_equal(grad.view(f"u{grad.itemsize}"),
                                  expected.view(f"u{grad.itemsize}"))


@needs_kernels
class TestReluArgumentChecks:
    def test_a_wrong_dtype_is_refused(self):
        with pytest.raises(TypeError, match="relu_: x must be float32 or float64"):
            kernels.relu_(np.zeros(4, dtype=np.int64))

    def test_a_strided_array_is_refused(self):
        with pytest.raises(TypeError, match="relu_: x must be a C-contiguous"):
            kernels.relu_(np.zeros((4, 4), dtype=np.float32)[:, :2])

    def test_a_read_only_gradient_is_refused(self):
        grad = np.zeros(4, dtype=np.float32)
        grad.flags.writeable = False
        with pytest.raises(TypeError, match="relu_grad_: grad must be a C-contiguous, writable"):
            kernels.relu_grad_(grad, np.zeros(4, dtype=np.float32))

    def test_a_different_size_is_refused(self):
        with pytest.raises(ValueError, match="a must have grad's dtype and size"):
            kernels.relu_grad_(np.zeros(4, dtype=np.float32), np.zeros(5, dtype=np.float32))

    def test_shared_memory_is_refused(self):
        both = np.zeros(8, dtype=np.float32)
        with pytest.raises(ValueError, match="grad and a share memory"):
            kernels.relu_grad_(both[:4], both[2:6])

    def test_a_wrong_argument_count_is_refused(self):
        with pytest.raises(TypeError, match="2 arguments"):
            kernels.relu_grad_(np.zeros(4, dtype=np.float32))


# --- leaky_relu, tanh and sigmoid ----------------------------------------------------------

def _same_bits(actual, expected) -> None:
    """The same bits, -0 included; NaN where NaN (its sign and payload are not numbers:
    C compilers may swap the operands of a product of two NaNs)."""
    nan = np.isnan(expected)
    np.testing.assert_array_equal(np.isnan(actual), nan)
    np.testing.assert_array_equal(actual[~nan].view(f"u{actual.itemsize}"),
                                  expected[~nan].view(f"u{expected.itemsize}"))


@needs_kernels
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1,), (7,), (32, 17), (256, 513)])
def test_compiled_elementwise_kernels_are_bitwise_their_numpy_formulas(shape, dtype):
    """Special values (NaN, infinities, -0, subnormals, overflow) as NumPy rounds them."""
    x, other = _relu_inputs(shape, dtype, seed=3), _relu_inputs(shape, dtype, seed=4)[::-1]
    slope = np.asarray(0.01, dtype=dtype)
    one = np.asarray(1, dtype=dtype)
    with np.errstate(all="ignore"):
        expected = {
            "leaky_relu_": np.maximum(x, slope * x),
            "logistic_": np.reciprocal(np.add(x, one)),
            "tanh_grad_": other * (one - x * x),
            "sigmoid_grad_": other * ((one - x) * x),
            "leaky_relu_grad_": np.where(x > 0, other, other * slope),
            "elu_grad_": other * (np.minimum(x, 0 * one) + one),
            "elu_add_": np.maximum(x, 0 * one) + other,
        }
        for name, reference in expected.items():
            target = (other if name.endswith("grad_") else x).copy()
            args = ((target, x) if name.endswith("grad_") else
                    (target, other.copy()) if name == "elu_add_" else (target,))
            getattr(kernels, name)(*args, *((0.01,) if "leaky" in name else ()))
            _same_bits(target, reference)


@needs_kernels
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1,), (7,), (32, 17), (256, 513)])
def test_compiled_gelu_and_softplus_kernels_are_bitwise_the_generic_formulas(shape, dtype):
    """Each C pass against the generic activation's own expression (mlpx.activations,
    Python float constants and all) on special values, t and e as the forward makes them."""
    from mlpx import activations

    z, grad = _relu_inputs(shape, dtype, seed=7), _relu_inputs(shape, dtype, seed=8)[::-1]
    with np.errstate(all="ignore"):
        inner = activations._GELU_C * (z + activations._GELU_CUBIC * z * z * z)
        t = np.tanh(inner)
        e = np.exp(-np.abs(z))
        log_term = np.log1p(e)
        expected = {
            "gelu_inner_": ((), inner),
            "gelu_": ((t,), activations.gelu(z, xp=np)),
            "gelu_grad_": ((t,), grad * activations.gelu_derivative(z, None, xp=np)),
            "negative_abs_": ((), -np.abs(z)),
            "softplus_add_": ((), activations.softplus(z, xp=np)),
            "softplus_grad_": ((e,), grad * activations.sigmoid(z, xp=np)),
        }
        for name, (extra, reference) in expected.items():
            target = {"gelu_grad_": grad, "softplus_grad_": grad,
                      "softplus_add_": log_term}.get(name, np.empty_like(z)).copy()
            getattr(kernels, name)(target, z, *extra)
            assert target.dtype == dtype
            _same_bits(target, reference)


def _layer(activation, z, grad_a):
    """A hidden layer's buffers with ``z`` beside its ones (or beside zeros, in a buffer of
    its own for the activations that keep it) and ``grad_a`` beside zeros."""
    n_rows, units = z.shape
    out_aug = np.ones((n_rows, units + 1), dtype=z.dtype)
    out_aug[:, :-1] = z
    z_aug = None if activation.in_place else np.zeros_like(out_aug)
    if z_aug is not None:
        z_aug[:, :-1] = z
    grad_full = np.zeros_like(out_aug)
    grad_full[:, :-1] = grad_a
    block = np.zeros((2, units), dtype=z.dtype)
    return _numpy_fastpath._DenseStep(block, block, None, out_aug, z_aug, grad_full, None,
                                      activation, activation.scratch(n_rows, units, z.dtype))


@needs_kernels
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 1), (7, 3), (32, 16), (256, 512)])
@pytest.mark.parametrize("name", sorted(_numpy_fastpath._COMPILED_ACTIVATIONS))
def test_compiled_hidden_activations_are_bitwise_the_numpy_ones(name, shape, dtype):
    """Forward and backward on a layer's buffers: the same bits, the ones and the zero
    column kept (z down to -1e30, where exp(-z) overflows, and NaN)."""
    z, grad_a = _relu_inputs(shape, dtype, seed=5), _relu_inputs(shape, dtype, seed=6)
    compiled = _layer(_numpy_fastpath._COMPILED_ACTIVATIONS[name](dtype), z, grad_a)
    reference = _layer(_numpy_fastpath._NUMPY_ACTIVATIONS[name](dtype), z, grad_a)
    with np.errstate(all="ignore"):
        for layer in (compiled, reference):
            layer.activation.forward(layer)
            layer.activation.backward(layer)
    _same_bits(compiled.out_aug, reference.out_aug)
    _same_bits(compiled.grad_full, reference.grad_full)
    assert np.all(compiled.ones == 1)
    assert np.all(compiled.grad_full[:, -1] == 0)


@needs_kernels
@pytest.mark.parametrize("hidden", [("tanh", "sigmoid"), ("leaky_relu", "tanh"),
                                    ("sigmoid", "leaky_relu"), ("gelu", "softplus"),
                                    ("softplus", "elu"), ("elu", "gelu")])
def test_fits_with_compiled_activations_are_bitwise_the_pure_numpy_fit(monkeypatch, hidden):
    """Whole float32 fits (shuffling, a short last batch): the same weights and history."""
    X, y = mlpx.datasets.make_moons(200, noise=0.2, seed=1)
    results = []
    for compiled in (True, False):
        if not compiled:
            monkeypatch.setattr(_compiled, "kernels", None)
        model = mlpx.MLP([2, 16, 8, 2], activations=[*hidden, "softmax"], dtype="float32",
                         seed=0)
        history = model.fit(X, y, epochs=4, batch_size=48, learning_rate=0.01)
        results.append(([np.asarray(p).copy() for p in model.params], history.history))
    for with_kernels, pure in zip(results[0][0], results[1][0]):
        _same_bits(with_kernels, pure)
    for key in ("loss", "accuracy"):
        assert results[0][1][key] == results[1][1][key]


@needs_kernels
@pytest.mark.parametrize("name", ["leaky_relu_", "logistic_"])
def test_the_maps_check_their_arguments(name):
    extra = (0.01,) if name == "leaky_relu_" else ()
    with pytest.raises(TypeError, match=f"{name}: x must be float32 or float64"):
        getattr(kernels, name)(np.zeros(4, dtype=np.int64), *extra)
    with pytest.raises(TypeError, match=f"{name}: x must be a C-contiguous"):
        getattr(kernels, name)(np.zeros((4, 4), dtype=np.float32)[:, :2], *extra)
    with pytest.raises(TypeError, match=f"{name} takes {1 + len(extra)} argument"):
        getattr(kernels, name)(np.zeros(4, dtype=np.float32), 0.5, *extra)
    if extra:
        with pytest.raises(TypeError):
            getattr(kernels, name)(np.zeros(4, dtype=np.float32), "steep")


@needs_kernels
@pytest.mark.parametrize("name, names", [("gelu_inner_", ("t", "z")),
                                         ("gelu_", ("a", "z", "t")),
                                         ("gelu_grad_", ("grad", "z", "t")),
                                         ("negative_abs_", ("e", "z")),
                                         ("softplus_add_", ("a", "z")),
                                         ("softplus_grad_", ("grad", "z", "e")),
                                         ("elu_add_", ("x", "negative_part"))])
def test_the_elementwise_kernels_check_every_array(name, names):
    """Arguments counted, each array's dtype, size and layout checked, and the written one
    sharing no memory with those read."""
    kernel = getattr(kernels, name)
    n_arrays = len(names)
    arrays = [np.zeros(4, dtype=np.float32) for _ in names]
    with pytest.raises(TypeError, match=f"{name} takes {n_arrays} arguments"):
        kernel(*arrays[:-1])
    with pytest.raises(TypeError, match=f"{name}: {names[0]} must be float32 or float64"):
        kernel(np.zeros(4, dtype=np.int64), *arrays[1:])
    read_only = np.zeros(4, dtype=np.float32)
    read_only.flags.writeable = False
    with pytest.raises(TypeError, match=f"{name}: {names[0]} must be a C-contiguous, writable"):
        kernel(read_only, *arrays[1:])
    for k in range(1, n_arrays):
        wrong = list(arrays)
        wrong[k] = np.zeros(4, dtype=np.float64)
        with pytest.raises(ValueError, match=f"{name}: {names[k]} must have {names[0]}'s "
                                             "dtype and size"):
            kernel(*wrong)
        wrong[k] = np.zeros(5, dtype=np.float32)
        with pytest.raises(ValueError, match="dtype and size"):
            kernel(*wrong)
        wrong[k] = np.zeros((4, 4), dtype=np.float32)[:, :1]
        with pytest.raises(TypeError, match=f"{name}: {names[k]} must be a C-contiguous"):
            kernel(*wrong)
        both = np.zeros(8, dtype=np.float32)
        shared = list(arrays)
        shared[0], shared[k] = both[:4], both[2:6]
        with pytest.raises(ValueError, match=f"{name}: {names[0]} and {names[k]} share memory"):
            kernel(*shared)
    if n_arrays == 3:
        kernel(arrays[0], arrays[1], arrays[1])  # two inputs may be one array
    kernel(*[np.zeros(0, dtype=np.float32) for _ in names])  # no-op


@needs_kernels
@pytest.mark.parametrize("name", ["tanh_grad_", "sigmoid_grad_", "leaky_relu_grad_",
                                  "elu_grad_"])
def test_the_gradients_check_their_arguments(name):
    extra = (0.01,) if name == "leaky_relu_grad_" else ()
    kernel = getattr(kernels, name)
    with pytest.raises(ValueError, match=f"{name}: a must have grad's dtype and size"):
        kernel(np.zeros(4, dtype=np.float32), np.zeros(4, dtype=np.float64), *extra)
    both = np.zeros(8, dtype=np.float32)
    with pytest.raises(ValueError, match=f"{name}: grad and a share memory"):
        kernel(both[:4], both[2:6], *extra)
    with pytest.raises(TypeError, match=f"{name} takes {2 + len(extra)} arguments"):
        kernel(np.zeros(4, dtype=np.float32))
    kernel(np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.float32), *extra)  # no-op


@needs_kernels
class TestArgumentChecks:
    """The private kernel refuses what would make it write out of bounds or alias."""

    n = 16

    def args(self, **replace):
        arrays = {name: np.zeros(self.n, dtype=np.float32)
                  for name in ("param", "grad", "m", "v")}
        arrays.update(replace)
        return [*arrays.values(), 0.9, 0.1, 0.999, 1e-3, 1e-3, 1e-8, None]

    def test_valid_arguments_run(self):
        kernels.adam_step(*self.args())

    def test_empty_vectors_are_a_no_op(self):
        empty = {name: np.zeros(0, dtype=np.float32) for name in ("param", "grad", "m", "v")}
        kernels.adam_step(*self.args(**empty))
        kernels.relu_(empty["param"])
        kernels.relu_grad_(empty["grad"], empty["param"])

    @pytest.mark.parametrize("name", ["param", "grad", "m", "v"])
    def test_a_wrong_dtype_is_refused(self, name):
        with pytest.raises((TypeError, ValueError), match="adam_step"):
            kernels.adam_step(*self.args(**{name: np.zeros(self.n, dtype=np.int32)}))

    def test_a_float16_param_is_refused(self):
        with pytest.raises(TypeError, match="float32 or float64"):
            kernels.adam_step(*self.args(**{name: np.zeros(self.n, dtype=np.float16)
                                            for name in ("param", "grad", "m", "v")}))

    def test_mixed_dtypes_are_refused(self):
        with pytest.raises(ValueError, match="m must have param's dtype"):
            kernels.adam_step(*self.args(m=np.zeros(self.n)))

    def test_a_shorter_vector_is_refused(self):
        with pytest.raises(ValueError, match="v must have param's dtype and length"):
            kernels.adam_step(*self.args(v=np.zeros(self.n - 1, dtype=np.float32)))

    def test_a_strided_vector_is_refused(self):
        strided = np.zeros(2 * self.n, dtype=np.float32)[::2]
        with pytest.raises(TypeError, match="grad must be a C-contiguous"):
            kernels.adam_step(*self.args(grad=strided))

    def test_a_read_only_param_is_refused(self):
        read_only = np.zeros(self.n, dtype=np.float32)
        read_only.flags.writeable = False
        with pytest.raises(TypeError, match="param must be a C-contiguous, writable"):
            kernels.adam_step(*self.args(param=read_only))

    def test_shared_memory_is_refused(self):
        both = np.zeros(self.n + 1, dtype=np.float32)
        with pytest.raises(ValueError, match="m and v share memory"):
            kernels.adam_step(*self.args(m=both[:-1], v=both[1:]))

    def test_a_wrong_argument_count_is_refused(self):
        for arguments in (self.args()[:-1], [*self.args(), None, None, None]):
            with pytest.raises(TypeError, match="11 to 13 arguments"):
                kernels.adam_step(*arguments)

    def test_a_non_number_l2_is_refused(self):
        with pytest.raises(TypeError):
            kernels.adam_step(*self.args(), "strong")

    @pytest.mark.parametrize("bounds", [
        pytest.param(np.array([0, 4, 8], dtype=np.intp), id="odd-length"),
        pytest.param(np.array([4, 2], dtype=np.intp), id="decreasing"),
        pytest.param(np.array([-1, 2], dtype=np.intp), id="negative"),
        pytest.param(np.array([0, 17], dtype=np.intp), id="past-the-end"),
        pytest.param(np.array([0.0, 4.0]), id="floats"),
        pytest.param(np.array([[0, 4]], dtype=np.intp), id="2-d"),
        pytest.param([0, 4], id="a-list"),
    ])
    def test_bad_penalised_ranges_are_refused(self, bounds):
        with pytest.raises((TypeError, ValueError), match="adam_step: penalised"):
            kernels.adam_step(*self.args(), 0.1, bounds)

    def test_a_non_number_scalar_is_refused(self):
        arguments = self.args()
        arguments[6] = "fast"
        with pytest.raises(TypeError):
            kernels.adam_step(*arguments)


@needs_kernels
class TestSGDArgumentChecks:
    """sgd_step shares adam_step's checks; its velocity may be None (plain SGD)."""

    n = 16

    def args(self, **replace):
        arrays = {name: np.zeros(self.n, dtype=np.float32)
                  for name in ("param", "grad", "velocity")}
        arrays.update(replace)
        return [*arrays.values(), 0.1, 0.9, True]

    def test_valid_arguments_run_with_and_without_velocity(self):
        assert kernels.sgd_step(*self.args()) is None
        assert kernels.sgd_step(*self.args(velocity=None)) is None
        assert kernels.sgd_step(*self.args(), 0.5) == 0.0

    def test_a_velocity_of_another_dtype_is_refused(self):
        with pytest.raises(ValueError, match="sgd_step: velocity must have param's dtype"):
            kernels.sgd_step(*self.args(velocity=np.zeros(self.n)))

    def test_a_velocity_sharing_the_parameters_is_refused(self):
        param = np.zeros(self.n, dtype=np.float32)
        with pytest.raises(ValueError, match="share memory"):
            kernels.sgd_step(*self.args(param=param, velocity=param))

    def test_a_none_parameter_vector_is_refused(self):
        with pytest.raises(TypeError, match="sgd_step: param"):
            kernels.sgd_step(*self.args(param=None))

    def test_a_wrong_argument_count_is_refused(self):
        for arguments in (self.args()[:-1], [*self.args(), None, None, None]):
            with pytest.raises(TypeError, match="6 to 8 arguments"):
                kernels.sgd_step(*arguments)

    def test_bad_penalised_ranges_are_refused(self):
        with pytest.raises(ValueError, match="sgd_step: penalised"):
            kernels.sgd_step(*self.args(), 0.1, np.array([8, 4], dtype=np.intp))


@needs_kernels
class TestRMSpropArgumentChecks:
    """rmsprop_step (RMSprop and Adagrad) shares adam_step's checks."""

    n = 16

    def args(self, **replace):
        arrays = {name: np.zeros(self.n, dtype=np.float32)
                  for name in ("param", "grad", "square_avg")}
        arrays.update(replace)
        return [*arrays.values(), 0.1, 0.9, 0.1, 1e-8]

    def test_valid_arguments_run(self):
        assert kernels.rmsprop_step(*self.args()) is None
        assert kernels.rmsprop_step(*self.args(), 0.5) == 0.0

    def test_a_square_avg_of_another_dtype_is_refused(self):
        with pytest.raises(ValueError, match="rmsprop_step: square_avg must have param's dtype"):
            kernels.rmsprop_step(*self.args(square_avg=np.zeros(self.n)))

    def test_a_missing_square_avg_is_refused(self):
        with pytest.raises(TypeError, match="rmsprop_step: square_avg"):
            kernels.rmsprop_step(*self.args(square_avg=None))

    def test_a_square_avg_sharing_the_gradient_is_refused(self):
        grad = np.zeros(self.n, dtype=np.float32)
        with pytest.raises(ValueError, match="grad and square_avg share memory"):
            kernels.rmsprop_step(*self.args(grad=grad, square_avg=grad))

    def test_a_wrong_argument_count_is_refused(self):
        for arguments in (self.args()[:-1], [*self.args(), None, None, None]):
            with pytest.raises(TypeError, match="7 to 9 arguments"):
                kernels.rmsprop_step(*arguments)

    def test_a_non_number_constant_is_refused(self):
        arguments = self.args()
        arguments[5] = "fast"
        with pytest.raises(TypeError):
            kernels.rmsprop_step(*arguments)

    def test_bad_penalised_ranges_are_refused(self):
        with pytest.raises(ValueError, match="rmsprop_step: penalised"):
            kernels.rmsprop_step(*self.args(), 0.1, np.array([0, 17], dtype=np.intp))


# --- gathering rows of X ---------------------------------------------------------------


def _input_buffer(n_rows: int, n_features: int, dtype):
    """A buffer like the fast path's: rows of n_features + 1, the last column all ones."""
    buffer = np.full((n_rows, n_features + 1), np.nan, dtype=dtype)
    buffer[:, -1] = 1
    return buffer


@needs_kernels
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_features", [1, 2, 64, 785])
def test_take_rows_is_x_indexed_by_rows_beside_the_ones(n_features, dtype):
    rng = np.random.default_rng(n_features)
    X = rng.normal(size=(300, n_features)).astype(dtype)
    X[0, 0], X[1, 0] = -0.0, np.nan  # copied bit for bit
    rows = np.concatenate([rng.permutation(300)[:200], [0, 0, 1, 299]])  # repeats allowed
    buffer = _input_buffer(len(rows), n_features, dtype)
    kernels.take_rows_(X, rows, buffer[:, :-1])
    np.testing.assert_array_equal(buffer[:, :-1].view(np.uint8), X[rows].view(np.uint8))
    assert np.all(buffer[:, -1] == 1)


@needs_kernels
def test_take_rows_of_no_rows_is_a_no_op():
    buffer = _input_buffer(0, 3, np.float32)
    kernels.take_rows_(np.zeros((5, 3), dtype=np.float32), np.zeros(0, dtype=np.intp),
                       buffer[:, :-1])


@needs_kernels
class TestTakeRowsArgumentChecks:
    """Anything that would read or write out of bounds is refused, before any copy."""

    def args(self, **replace):
        arguments = {"source": np.arange(12, dtype=np.float32).reshape(4, 3),
                     "rows": np.array([3, 0], dtype=np.intp),
                     "out": _input_buffer(2, 3, np.float32)[:, :-1]}
        arguments.update(replace)
        return arguments

    def refused(self, error, match, **replace):
        arguments = self.args(**replace)
        before = arguments["out"].copy()
        with pytest.raises(error, match=match):
            kernels.take_rows_(*arguments.values())
        np.testing.assert_array_equal(arguments["out"], before)

    @pytest.mark.parametrize("bad_row", [-1, 4, 2**40])
    def test_a_row_out_of_range_is_refused(self, bad_row):
        self.refused(IndexError, rf"rows\[1\] = {bad_row} is out of range for 4 rows",
                     rows=np.array([0, bad_row], dtype=np.intp))

    def test_rows_of_another_integer_type_are_refused(self):
        self.refused(TypeError, "rows must be a 1-D intp array",
                     rows=np.array([3, 0], dtype=np.int32))

    def test_a_different_dtype_is_refused(self):
        self.refused(ValueError, "out must have source's dtype and shape",
                     out=_input_buffer(2, 3, np.float64)[:, :-1])

    def test_a_wrong_width_is_refused(self):
        self.refused(ValueError, "out must have source's dtype and shape",
                     out=_input_buffer(2, 4, np.float32)[:, :-1])

    def test_a_wrong_number_of_rows_is_refused(self):
        self.refused(ValueError, "out must have source's dtype and shape",
                     out=_input_buffer(3, 3, np.float32)[:, :-1])

    def test_strided_rows_of_out_are_refused(self):
        self.refused(ValueError, "out's rows must be contiguous",
                     out=np.zeros((2, 6), dtype=np.float32)[:, ::2])

    def test_a_strided_source_is_refused(self):
        with pytest.raises(ValueError, match="source's rows must be contiguous"):
            kernels.take_rows_(np.zeros((4, 6), dtype=np.float32)[:, ::2],
                               *list(self.args().values())[1:])

    def test_a_source_with_a_row_stride_is_read_row_by_row(self):
        wide = np.arange(24, dtype=np.float32).reshape(4, 6)
        out = _input_buffer(2, 3, np.float32)
        kernels.take_rows_(wide[:, 2:5], self.args()["rows"], out[:, :-1])
        np.testing.assert_array_equal(out[:, :-1], wide[[3, 0], 2:5])

    def test_an_integer_source_is_refused(self):
        with pytest.raises(TypeError, match="source must be a 2-D float32 or float64"):
            kernels.take_rows_(np.zeros((4, 3), dtype=np.int32),
                               *list(self.args().values())[1:])

    def test_a_read_only_out_is_refused(self):
        out = _input_buffer(2, 3, np.float32)
        out.flags.writeable = False
        with pytest.raises(TypeError, match="out must be a writable 2-D float32"):
            kernels.take_rows_(*list(self.args().values())[:2], out[:, :-1])

    def test_out_overlapping_source_is_refused(self):
        base = np.zeros((8, 3), dtype=np.float32)
        self.refused(ValueError, "out and source share memory", source=base[:4],
                     out=base[3:5])  # out's first row is source's last

    def test_out_just_after_source_is_allowed(self):
        base = np.arange(24, dtype=np.float32).reshape(8, 3)
        kernels.take_rows_(base[:4], np.array([3, 0], dtype=np.intp), base[4:6])
        np.testing.assert_array_equal(base[4:6], base[[3, 0]])

    def test_a_wrong_argument_count_is_refused(self):
        with pytest.raises(TypeError, match="3 arguments"):
            kernels.take_rows_(*list(self.args().values())[:2])


@needs_kernels
@pytest.mark.parametrize("layout", ["fortran", "strided", "float64-input"])
def test_fits_gathering_from_any_x_layout_are_bitwise_the_pure_numpy_fit(monkeypatch, layout):
    """X that is not the model's dtype in C order is converted once, then gathered from."""
    rng = np.random.default_rng(3)
    wide = rng.normal(size=(120, 10))
    X = {"fortran": np.asfortranarray(wide[:, :5], dtype=np.float32),
         "strided": wide.astype(np.float32)[:, ::2],
         "float64-input": wide[:, :5]}[layout]
    y = (wide[:, 0] + wide[:, 1] > 0).astype(int)
    fitted = {}
    for kind in ("compiled", "numpy"):
        if kind == "numpy":
            monkeypatch.setattr(_compiled, "kernels", None)
        model = mlpx.MLP([X.shape[1], 8, 2], activations=["relu", "softmax"],
                         dtype="float32", seed=0)
        model.fit(X, y, epochs=3, batch_size=16, optimizer="adam", learning_rate=0.01)
        fitted[kind] = [np.asarray(p).copy() for p in model.params]
    for compiled, pure in zip(fitted["compiled"], fitted["numpy"]):
        np.testing.assert_array_equal(compiled, pure)


# --- the softmax cross-entropy gradient ---------------------------------------------------


def _softmax_gradients(z_T, targets, gradient_class):
    """grad_T from ``gradient_class``, in a column slice of a wider buffer (as in a fit).

    ``targets``: y_T of shape (n_outputs, n_rows), or for the softmax ones
    ``(labels, sample_max, sample_sum, winner)`` (:func:`_label_targets`).
    """
    n_classes, n_rows = z_T.shape
    wide = np.full((n_classes, n_rows + 5), np.nan, dtype=z_T.dtype)
    grad_T = wide[:, 2:2 + n_rows]
    gradient_class(grad_T, model=None)(z_T, targets)
    assert np.isnan(wide[:, :2]).all() and np.isnan(wide[:, 2 + n_rows:]).all()
    return grad_T


def _label_targets(labels, dtype, winner: bool = True):
    """A batch's label targets with per-sample vectors for the gradient to fill in."""
    n_rows = labels.shape[0]
    return (labels, np.full(n_rows, np.nan, dtype=dtype), np.full(n_rows, np.nan, dtype=dtype),
            np.full(n_rows, -1, dtype=np.intp) if winner else None)


def _bits(array):
    return array.view(f"u{array.itemsize}")


def _assert_same_bits(z_T, targets, compiled_class, reference_class,
                      reference_targets=None) -> None:
    """The compiled output gradient writes the NumPy one's bits (NaN payloads included)."""
    with np.errstate(all="ignore"):
        compiled = _softmax_gradients(z_T, targets, compiled_class)
        reference = _softmax_gradients(
            z_T, targets if reference_targets is None else reference_targets, reference_class)
    np.testing.assert_array_equal(_bits(compiled), _bits(reference))


SOFTMAX_SHAPES = [(1, 5), (2, 1), (2, 32), (3, 255), (10, 256), (10, 257), (7, 600), (300, 9)]


def _hard_logits(n_classes, n_rows, dtype):
    """Logits over many scales in a column slice, with ties, -0, NaN and +-inf columns."""
    rng = np.random.default_rng(n_classes * 1000 + n_rows)
    scale = rng.choice(np.array([1e-3, 1.0, 30.0, 1e4]), size=(1, n_rows + 3))
    wide_z = (rng.normal(size=(n_classes, n_rows + 3)) * scale).astype(dtype)
    z_T = wide_z[:, 1:1 + n_rows]  # a column slice, as the epoch buffer's batch is
    z_T[:, 0] = 0.0  # a tie, with -0 in the second row
    if n_classes > 1:
        z_T[1, 0] = -0.0
    if n_rows > 3:
        z_T[0, 1] = np.nan  # NaN wins the max; the column's gradient is NaN
        z_T[:, 2] = np.inf if n_classes == 1 else [np.inf, -np.inf] + [0.0] * (n_classes - 2)
        z_T[:, 3] = -np.inf
    labels = rng.integers(0, n_classes, size=n_rows)
    return z_T, labels


@needs_kernels
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_classes, n_rows", SOFTMAX_SHAPES)
def test_compiled_softmax_gradient_is_bitwise_the_numpy_one(n_classes, n_rows, dtype):
    """... and leaves the same per-sample max and sum of exponentials, and the argmax."""
    z_T, labels = _hard_logits(n_classes, n_rows, dtype)
    compiled = _label_targets(labels, dtype)
    reference = _label_targets(labels, dtype, winner=False)
    _assert_same_bits(z_T, compiled, _numpy_fastpath._CompiledSoftmaxCrossEntropyGradient,
                      _numpy_fastpath._SoftmaxCrossEntropyGradient, reference)
    # the same values (NaN where NumPy's is; a max of 0 may differ in its sign, which the
    # shifted logits and so the gradient and the loss do not see)
    np.testing.assert_array_equal(compiled[1], reference[1])
    np.testing.assert_array_equal(_bits(compiled[2]), _bits(reference[2]))
    np.testing.assert_array_equal(compiled[3], np.argmax(z_T, axis=0))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_classes, n_rows", SOFTMAX_SHAPES)
def test_softmax_gradient_from_labels_is_bitwise_the_one_hot_formula(n_classes, n_rows, dtype):
    """Subtracting the one-hot 1 at each label is ``(softmax - y) / n`` on one-hot y_T."""
    z_T, labels = _hard_logits(n_classes, n_rows, dtype)
    y_T = np.zeros((n_classes, n_rows), dtype=dtype)
    y_T[labels, np.arange(n_rows)] = 1
    with np.errstate(all="ignore"):
        shifted = z_T - np.maximum.reduce(z_T, axis=0)
        exponentials = np.exp(shifted)
        expected = (exponentials / np.add.reduce(exponentials, axis=0) - y_T) * dtype(
            1.0 / n_rows)
        targets = _label_targets(labels, dtype, winner=False)
        from_labels = _softmax_gradients(z_T, targets,
                                         _numpy_fastpath._SoftmaxCrossEntropyGradient)
    np.testing.assert_array_equal(_bits(from_labels), _bits(expected))
    np.testing.assert_array_equal(_bits(targets[1]), _bits(np.maximum.reduce(z_T, axis=0)))
    np.testing.assert_array_equal(_bits(targets[2]), _bits(np.add.reduce(exponentials, axis=0)))


@needs_kernels
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_outputs, n_rows", [(1, 1), (1, 32), (1, 257), (3, 31), (12, 200)])
def test_compiled_sigmoid_gradient_is_bitwise_the_numpy_one(n_outputs, n_rows, dtype):
    """(sigmoid(z) - y) / n: overflowing exp (z < -88), +-inf, NaN and 0/1 targets."""
    rng = np.random.default_rng(n_outputs * 1000 + n_rows)
    scale = rng.choice(np.array([1e-3, 1.0, 30.0, 1e3]), size=(1, n_rows + 3))
    z_T = (rng.normal(size=(n_outputs, n_rows + 3)) * scale).astype(dtype)[:, 1:1 + n_rows]
    z_T[:, 0] = -0.0
    if n_rows > 3:
        z_T[0, 1:4] = [np.nan, np.inf, -np.inf]
    y_T = np.zeros((n_outputs, n_rows + 4), dtype=dtype)[:, 2:2 + n_rows]
    y_T[...] = rng.integers(0, 2, size=(n_outputs, n_rows))
    _assert_same_bits(z_T, y_T, _numpy_fastpath._CompiledSigmoidCrossEntropyGradient,
                      _numpy_fastpath._SigmoidCrossEntropyGradient)


@needs_kernels
def test_the_minus_targets_kernel_checks_its_arguments():
    def call(e, y):
        kernels.logistic_minus_targets_(e, y, 0.5)

    e, y = np.zeros((2, 4), dtype=np.float32), np.zeros((2, 4), dtype=np.float32)
    call(e, y)
    with pytest.raises(ValueError, match="y must have e's dtype and shape"):
        call(e, np.zeros((2, 5), dtype=np.float32))
    with pytest.raises(ValueError, match="e and y share memory"):
        call(e, e)
    with pytest.raises(TypeError, match="minus_targets_ takes 3 arguments"):
        kernels.logistic_minus_targets_(e, y)


@needs_kernels
class TestSoftmaxArgumentChecks:
    def matrix(self, shape=(3, 4), dtype=np.float32):
        return np.zeros(shape, dtype=dtype)

    def labels(self, values=(0, 1, 2, 0)):
        return np.array(values, dtype=np.intp)

    def test_a_different_shape_is_refused(self):
        with pytest.raises(ValueError, match="shift_by_max_: out must have z's dtype and shape"):
            kernels.shift_by_max_(self.matrix(), self.matrix((3, 5)))
        with pytest.raises(ValueError, match=r"labels must have one entry per column \(4\), "
                                             "not 3"):
            kernels.softmax_minus_labels_(self.matrix(), self.labels([0, 1, 2]), 0.25)

    def test_a_different_dtype_is_refused(self):
        with pytest.raises(ValueError, match="out must have z's dtype and shape"):
            kernels.shift_by_max_(self.matrix(), self.matrix(dtype=np.float64))

    def test_an_integer_matrix_is_refused(self):
        with pytest.raises(TypeError, match="z must be a 2-D float32 or float64 array"):
            kernels.shift_by_max_(self.matrix(dtype=np.int32), self.matrix())

    def test_a_vector_is_refused(self):
        with pytest.raises(TypeError, match="e must be a writable 2-D float32 or float64"):
            kernels.softmax_minus_labels_(np.zeros(4, dtype=np.float32), self.labels(), 1.0)

    def test_strided_columns_are_refused(self):
        with pytest.raises(ValueError, match="out's rows must be contiguous"):
            kernels.shift_by_max_(self.matrix(), self.matrix((3, 8))[:, ::2])

    def test_a_read_only_output_is_refused(self):
        read_only = self.matrix()
        read_only.flags.writeable = False
        with pytest.raises(TypeError, match="out must be a writable"):
            kernels.shift_by_max_(self.matrix(), read_only)

    def test_shared_memory_is_refused(self):
        both = self.matrix((3, 8))
        with pytest.raises(ValueError, match="z and out share memory"):
            kernels.shift_by_max_(both[:, :4], both[:, 3:7])

    def test_adjacent_matrices_are_allowed(self):
        both = np.arange(24, dtype=np.float32).reshape(6, 4)
        kernels.shift_by_max_(both[:3], both[3:])
        np.testing.assert_array_equal(both[3:], both[:3] - both[:3].max(axis=0))

    def test_a_wrong_argument_count_is_refused(self):
        with pytest.raises(TypeError, match=r"softmax_minus_labels_ takes 3 or 4 arguments "
                                            r"\(2 given\)"):
            kernels.softmax_minus_labels_(self.matrix(), self.labels())
        with pytest.raises(TypeError, match=r"shift_by_max_ takes 2 or 4 arguments "
                                            r"\(3 given\)"):
            kernels.shift_by_max_(self.matrix(), self.matrix(), self.vector())

    def vector(self, n=4, dtype=np.float32):
        return np.zeros(n, dtype=dtype)

    def test_none_for_the_per_sample_outputs_is_allowed(self):
        kernels.shift_by_max_(self.matrix(), self.matrix(), None, None)
        kernels.softmax_minus_labels_(np.ones((3, 4), dtype=np.float32), self.labels(), 1.0,
                                      None)

    @pytest.mark.parametrize("name, bad, message", [
        ("sample_max", np.zeros(5, dtype=np.float32),
         r"sample_max must be a vector of the matrix's dtype, shape \(4,\)"),
        ("sample_max", np.zeros(4, dtype=np.float64), "sample_max must be a vector"),
        ("sample_max", np.zeros((1, 4), dtype=np.float32), "sample_max must be a vector"),
        ("winner", np.zeros(4, dtype=np.int32), r"winner must be a vector of intp"),
        ("winner", np.zeros(3, dtype=np.intp), r"winner must be a vector of intp, shape"),
    ])
    def test_bad_per_sample_outputs_are_refused(self, name, bad, message):
        outputs = {"sample_max": self.vector(), "winner": np.zeros(4, dtype=np.intp)}
        outputs[name] = bad
        out = np.full((3, 4), 7.0, dtype=np.float32)
        with pytest.raises(ValueError, match=message):
            kernels.shift_by_max_(self.matrix(), out, outputs["sample_max"], outputs["winner"])
        np.testing.assert_array_equal(out, 7.0)  # refused before any write

    def test_read_only_or_strided_per_sample_outputs_are_refused(self):
        read_only = self.vector()
        read_only.flags.writeable = False
        with pytest.raises(TypeError, match="sample_max must be None or a writable"):
            kernels.shift_by_max_(self.matrix(), self.matrix(), read_only, None)
        with pytest.raises(TypeError, match="totals must be None or a writable C-contiguous"):
            kernels.softmax_minus_labels_(self.matrix(), self.labels(), 1.0,
                                          self.vector(8)[::2])

    def test_per_sample_outputs_sharing_memory_are_refused(self):
        z = np.zeros((3, 8), dtype=np.float32)
        with pytest.raises(ValueError, match="sample_max shares memory with another argument"):
            kernels.shift_by_max_(z[:, :4], self.matrix(), z[0, 4:], None)
        out = self.matrix()
        with pytest.raises(ValueError, match="sample_max shares memory"):
            kernels.shift_by_max_(self.matrix(), out, out[1], None)
        winner = np.zeros(4, dtype=np.intp)
        with pytest.raises(ValueError, match="winner shares memory"):
            kernels.shift_by_max_(self.matrix(), self.matrix(), winner.view(np.float32)[:4],
                                  winner)
        labels = np.zeros(8, dtype=np.intp)
        with pytest.raises(ValueError, match="totals shares memory"):
            kernels.softmax_minus_labels_(self.matrix((3, 2)), labels[:2], 1.0,
                                          labels[:2].view(np.float32)[:2])

    def test_a_non_number_scale_is_refused(self):
        with pytest.raises(TypeError):
            kernels.softmax_minus_labels_(self.matrix(), self.labels(), "1/n")

    def test_empty_matrices_are_a_no_op(self):
        kernels.shift_by_max_(self.matrix((0, 4)), self.matrix((0, 4)))
        kernels.softmax_minus_labels_(self.matrix((3, 0)), self.labels([]), 1.0)

    @pytest.mark.parametrize("bad, error, message", [
        ([0, 3, 1, 2], IndexError, r"labels\[1\] = 3 is out of range for 3 classes"),
        ([0, 1, -1, 2], IndexError, r"labels\[2\] = -1 is out of range for 3 classes"),
    ])
    def test_labels_out_of_range_are_refused_before_any_write(self, bad, error, message):
        e = np.ones((3, 4), dtype=np.float32)
        with pytest.raises(error, match=message):
            kernels.softmax_minus_labels_(e, self.labels(bad), 1.0)
        np.testing.assert_array_equal(e, 1.0)

    @pytest.mark.parametrize("labels", [
        pytest.param(np.zeros(4, dtype=np.int32), id="int32"),
        pytest.param(np.zeros(4, dtype=np.float64), id="float"),
        pytest.param(np.zeros((1, 4), dtype=np.intp), id="2-D"),
        pytest.param([0, 0, 0, 0], id="list"),
    ])
    def test_labels_that_are_not_an_intp_vector_are_refused(self, labels):
        with pytest.raises(TypeError, match="labels must be a (1-D|C-contiguous) intp array"):
            kernels.softmax_minus_labels_(self.matrix(), labels, 1.0)

    def test_strided_labels_are_refused(self):
        with pytest.raises(TypeError, match="labels must be a C-contiguous intp array"):
            kernels.softmax_minus_labels_(self.matrix(), self.labels([0] * 8)[::2], 1.0)


# --- layer-by-layer updates ------------------------------------------------------------

LAYER_UPDATE_CASES = [
    pytest.param({}, id="adam"),
    pytest.param({"optimizer": "adamw"}, id="adamw"),
    pytest.param({"sizes": [2, 3]}, id="no-hidden-layer"),
    pytest.param({"sizes": [2, 9, 7, 5, 3]}, id="three-hidden-layers"),
    pytest.param({"sample_weight": True}, id="sample-weights"),
    pytest.param({"tol": 1e-9}, id="tol"),
    pytest.param({"dtype": "float64"}, id="float64"),
    pytest.param({"batch_size": None}, id="full-batch"),
    pytest.param({"alpha": 1e-3}, id="l2"),
    pytest.param({"alpha": 0.05, "alpha_per_sample": True, "sample_weight": True},
                 id="l2-per-sample-weighted"),
    pytest.param({"alpha": 0.05, "alpha_per_sample": True, "optimizer": "adamw",
                  "dtype": "float64"}, id="l2-per-sample-adamw-float64"),
    pytest.param({"optimizer": "sgd"}, id="sgd"),
    pytest.param({"optimizer": optim.SGD(momentum=0.9, nesterov=True), "alpha": 1e-3},
                 id="nesterov-l2"),
    pytest.param({"optimizer": optim.SGD(momentum=0.5), "dtype": "float64",
                  "sample_weight": True}, id="momentum-float64-weighted"),
    pytest.param({"optimizer": "rmsprop", "alpha": 1e-3}, id="rmsprop-l2"),
    pytest.param({"optimizer": optim.Adagrad(), "dtype": "float64", "sample_weight": True},
                 id="adagrad-float64-weighted"),
]


def _fit_recording_runner(monkeypatch, *, layer_updates_from: int, sizes=(2, 16, 8, 3),
                          optimizer="adam", sample_weight=False, tol=None, dtype="float32",
                          batch_size=40, alpha=0.0, alpha_per_sample=False):
    monkeypatch.setattr(_numpy_fastpath.NumpyEpochRunner, "LAYER_UPDATES_FROM",
                        layer_updates_from)
    runners = []
    original_init = _numpy_fastpath.NumpyEpochRunner.__init__

    def recording_init(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        runners.append(self)

    monkeypatch.setattr(_numpy_fastpath.NumpyEpochRunner, "__init__", recording_init)
    X, y = mlpx.datasets.make_blobs(150, centers=3, n_features=2, seed=4)
    weights = np.random.default_rng(0).uniform(0.5, 2, size=150) if sample_weight else None
    model = mlpx.MLP(list(sizes), activations=["tanh"] * (len(sizes) - 2) + ["softmax"],
                     dtype=dtype, alpha=alpha, alpha_per_sample=alpha_per_sample, seed=2)
    history = model.fit(X, y, epochs=4, batch_size=batch_size, optimizer=optimizer,
                        learning_rate=0.02, sample_weight=weights, tol=tol)
    assert len(runners) == 1
    return model, history, runners[0]


@needs_kernels
@pytest.mark.parametrize("case", LAYER_UPDATE_CASES)
def test_layer_by_layer_updates_are_bitwise_the_whole_vector_step(monkeypatch, case):
    """Updating each layer after its backward changes no bit of weights or moments.

    The logs are the same bits too, but for the L2 penalty's share of the loss: the layer
    updates sum W**2 in the kernel in double precision, the whole-vector step with a
    float32 or float64 dot product.
    """
    by_layer, by_layer_history, runner = _fit_recording_runner(monkeypatch,
                                                               layer_updates_from=0, **case)
    assert runner.layer_updates is not None
    whole, whole_history, runner = _fit_recording_runner(monkeypatch,
                                                         layer_updates_from=10**9, **case)
    assert runner.layer_updates is None
    for a, b in zip(by_layer.params, whole.params):
        np.testing.assert_array_equal(a, b)
    assert by_layer.optimizer_state_.keys() == whole.optimizer_state_.keys()
    for slot, arrays in whole.optimizer_state_.items():
        if isinstance(arrays, list):
            np.testing.assert_array_equal(by_layer.optimizer_state_[slot][0], arrays[0])
    assert by_layer.optimizer_state_["step"] == whole.optimizer_state_["step"]
    for key, values in whole_history.history.items():
        if key == "loss" and case.get("alpha"):
            np.testing.assert_allclose(by_layer_history.history[key], values, rtol=1e-6)
        elif key != "time":
            assert by_layer_history.history[key] == values, key


@needs_kernels
@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd", "momentum", "rmsprop",
                                       "adagrad"])
@pytest.mark.parametrize("compiled", [True, False])
def test_the_l2_gradient_goes_into_the_compiled_step(monkeypatch, optimizer, compiled):
    """alpha with a compiled optimizer step: no separate penalty passes, on small networks
    too; the NumPy kernels keep them."""
    if not compiled:
        monkeypatch.setattr(_compiled, "kernels", None)
    if optimizer == "momentum":
        optimizer = optim.SGD(momentum=0.9, nesterov=True)
    model, history, runner = _fit_recording_runner(monkeypatch, layer_updates_from=10**9,
                                                   alpha=1e-3, optimizer=optimizer)
    assert runner.layer_updates is None and runner.fused_l2 is compiled
    assert np.isfinite(history.history["loss"]).all()


@needs_kernels
def test_large_networks_update_layer_by_layer_by_default():
    X = np.random.default_rng(0).normal(size=(64, 300)).astype(np.float32)
    y = np.arange(64) % 4
    model = mlpx.MLP([300, 256, 4], activations=["relu", "softmax"], dtype="float32", seed=0)
    n_params = sum(p.size for p in model.params)
    assert n_params >= _numpy_fastpath.NumpyEpochRunner.LAYER_UPDATES_FROM
    runner = _numpy_fastpath.NumpyEpochRunner(model, optim.Adam(), X, np.eye(4)[y].astype(
        np.float32), 32, mlpx.callbacks.CallbackList([], model))
    assert runner.layer_updates is not None and len(runner.layer_updates) == 2


@needs_kernels
@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # overflow and NaN are the point
def test_diverging_layer_by_layer_fit_restores_the_epoch_start(monkeypatch):
    """NaN weights from the layer updates: NonFiniteLossError, the failing epoch's start kept."""
    monkeypatch.setattr(_numpy_fastpath.NumpyEpochRunner, "LAYER_UPDATES_FROM", 0)
    rng = np.random.default_rng(5)
    X = (rng.normal(size=(60, 3)) * 1e3).astype(np.float32)  # not standardised
    y = np.arange(60) % 3
    model = mlpx.MLP([3, 8, 3], ["relu", "softmax"], dtype="float32", seed=0)
    starts = []

    class EpochStarts(mlpx.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            starts.append([np.array(p, copy=True) for p in self.model.params])

    schedule = optim.StepDecay(1e-6, step_size=2, gamma=1e40)  # 1e34 from the third epoch
    with pytest.raises(mlpx.NonFiniteLossError, match="training stopped in epoch 2"):
        model.fit(X, y, epochs=20, batch_size=10, optimizer="adam", learning_rate=schedule,
                  callbacks=[EpochStarts()])
    assert len(starts) == 3 and not np.array_equal(starts[-1][0], starts[0][0])
    for param, start in zip(model.params, starts[-1]):
        assert np.all(np.isfinite(start))
        assert param.tobytes() == start.tobytes()
