"""mlpx.graph operations against references: central differences and PyTorch autograd.

Pattern 8 of the design: every op's gradient (its vector-Jacobian product, broadcasting
included) is checked by central differences in float64 on every backend of the ``backend``
fixture, and against PyTorch autograd where torch is installed. Each case is written once,
over an "ops" namespace that is either :mod:`mlpx.graph` or :class:`TorchOps` below, so the
torch side never runs mlpx code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
from helpers import assert_close

from mlpx import graph as g
from mlpx._backend import to_numpy

EPS = 1e-6
GRADCHECK_TOL = 1e-6
TORCH_RTOL = 1e-10


# --- the cases ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Case:
    """An expression of its inputs, the inputs' shapes and how to draw them.

    ``build(ops, *inputs)`` returns the output node (graph) or tensor (torch). ``kinds``:
    "normal", "positive" (for log, divisors), "nonzero" (divisors of either sign),
    "kinkfree" (|x| >= 0.1, for relu), "probs" (rows summing to 1, for labels).
    """

    build: Callable
    shapes: tuple
    kinds: tuple = ()


def draw(shape, kind, rng):
    if kind == "positive":
        return rng.uniform(0.5, 2.0, size=shape)
    if kind == "nonzero":
        return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.5, 2.0, size=shape)
    if kind == "kinkfree":
        return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.1, 1.0, size=shape)
    if kind == "probs":
        p = rng.uniform(0.1, 1.0, size=shape)
        return p / p.sum(axis=-1, keepdims=True)
    return rng.normal(size=shape)


BROADCAST_SHAPES = {
    "same": ((3, 4), (3, 4)),
    "row": ((3, 4), (4,)),
    "row-keepdims": ((3, 4), (1, 4)),
    "column": ((3, 4), (3, 1)),
    "row-left": ((4,), (3, 4)),
    "scalar-right": ((3, 4), ()),
    "scalar-left": ((), (3, 4)),
    "3d-row": ((2, 3, 4), (4,)),
    "3d-column": ((2, 3, 4), (3, 1)),
    "1d": ((5,), (5,)),
}
BINARY = {"add": "normal", "subtract": "normal", "multiply": "normal", "divide": "nonzero"}
ELEMENTWISE = {"square": "normal", "exp": "normal", "log": "positive", "sigmoid": "normal",
               "relu": "kinkfree", "tanh": "normal", "negative": "normal",
               "softmax": "normal"}
VALUE_SHAPES = {"1d": (5,), "2d": (3, 4), "3d": (2, 3, 4)}
REDUCE_AXES = {"1d": (0, -1, None), "2d": (0, 1, -1, None), "3d": (0, 1, 2, -1, -2, None)}


def _binary(name):
    return lambda o, a, b: getattr(o, name)(a, b)


def _unary(name):
    return lambda o, a: getattr(o, name)(a)


def _reduce(name, axis):
    return lambda o, a: getattr(o, name)(a, axis=axis)


CASES: dict[str, Case] = {}
for _op, _kind in BINARY.items():
    for _bname, _shapes in BROADCAST_SHAPES.items():
        CASES[f"{_op}-{_bname}"] = Case(_binary(_op), _shapes, ("normal", _kind))
for _op, _kind in ELEMENTWISE.items():
    for _vname, _shape in VALUE_SHAPES.items():
        CASES[f"{_op}-{_vname}"] = Case(_unary(_op), (_shape,), (_kind,))
for _op in ("reduce_sum", "reduce_mean"):
    for _vname, _shape in VALUE_SHAPES.items():
        for _axis in REDUCE_AXES[_vname]:
            CASES[f"{_op}-{_vname}-axis{_axis}"] = Case(_reduce(_op, _axis), (_shape,))
CASES.update({
    "matmul": Case(_binary("matmul"), ((3, 4), (4, 2))),
    "matmul-vector-column": Case(_binary("matmul"), ((3, 4), (4, 1))),
    "operator-matmul-add": Case(lambda o, x, w, b: x @ w + b, ((3, 4), (4, 2), (2,))),
    "operator-add-number": Case(lambda o, a: a + 2.5, ((3, 4),)),
    "operator-radd-number": Case(lambda o, a: 2.5 + a, ((3, 4),)),
    "operator-sub-number": Case(lambda o, a: a - 1.5, ((3, 4),)),
    "operator-rsub-number": Case(lambda o, a: 1.5 - a, ((3, 4),)),
    "operator-mul-number": Case(lambda o, a: a * 3.0, ((3, 4),)),
    "operator-rmul-number": Case(lambda o, a: 3.0 * a, ((3, 4),)),
    "operator-div-number": Case(lambda o, a: a / 4.0, ((3, 4),)),
    "operator-rdiv-number": Case(lambda o, a: 4.0 / a, ((3, 4),), ("nonzero",)),
    "operator-neg": Case(lambda o, a: -a, ((3, 4),)),
    "operator-mul-array": Case(lambda o, a: a * o.const(np.arange(1.0, 5.0)), ((3, 4),)),
    "operator-rmul-array": Case(lambda o, a: o.const(np.arange(1.0, 5.0)) * a, ((3, 4),)),
    "operator-div-nodes": Case(lambda o, a, b: a / b, ((3, 4), (3, 4)), ("normal", "nonzero")),
    "operator-rsub-array": Case(lambda o, a: o.const(np.ones((3, 1))) - a, ((3, 4),)),
    "operator-chain": Case(lambda o, a, b: -(a * b - a / 2.0) @ o.const(np.ones((4, 2))),
                           ((3, 4), (4,))),
    "softmax-xent-2d": Case(lambda o, c, z: o.softmax_cross_entropy_with_logits(c, z),
                            ((3, 4), (3, 4)), ("probs", "normal")),
    "softmax-xent-1d": Case(lambda o, c, z: o.softmax_cross_entropy_with_logits(c, z),
                            ((4,), (4,)), ("probs", "normal")),
    "softmax-xent-3d": Case(lambda o, c, z: o.softmax_cross_entropy_with_logits(c, z),
                            ((2, 3, 4), (2, 3, 4)), ("probs", "normal")),
    "softmax-xent-unnormalised-labels": Case(
        lambda o, c, z: o.softmax_cross_entropy_with_logits(c, z), ((3, 4), (3, 4)),
        ("positive", "normal")),
    "softmax-xent-mean": Case(
        lambda o, c, z: o.reduce_mean(o.softmax_cross_entropy_with_logits(c, z)),
        ((5, 3), (5, 3)), ("probs", "normal")),
    "tutorial-loss": Case(  # -sum(c * log(softmax(X W + b))), tutorial 000
        lambda o, x, w, b: o.negative(o.reduce_sum(o.reduce_sum(
            o.multiply(o.const(np.eye(3)[[0, 1, 2, 1]]), o.log(o.softmax(o.add(o.matmul(x, w),
                                                                             b)))),
            axis=1))),
        ((4, 2), (2, 3), (3,))),
    "mlp-layer": Case(lambda o, x, w, b: o.tanh(o.sigmoid(x @ w + b) * 2.0 - 1.0),
                      ((4, 3), (3, 2), (2,))),
})
OP_CASES = sorted(CASES)


def case_inputs(name: str):
    """The host float64 inputs of a case, seeded by its name."""
    case = CASES[name]
    rng = np.random.default_rng(sum(map(ord, name)))
    kinds = case.kinds or ("normal",) * len(case.shapes)
    return [draw(shape, kind, rng) for shape, kind in zip(case.shapes, kinds)]


class _GraphOps:
    """mlpx.graph with ``const`` (a host array as an operand, converted by the graph)."""

    def __getattr__(self, name):
        return getattr(g, name)

    @staticmethod
    def const(array):
        return array


GRAPH_OPS = _GraphOps()


class TorchOps:
    """The same operations written with torch, the oracle (no mlpx code)."""

    def __init__(self, torch):
        self.torch = torch

    def const(self, array):
        return self.torch.as_tensor(array, dtype=self.torch.float64)

    def add(self, a, b):
        return a + b

    def subtract(self, a, b):
        return a - b

    def multiply(self, a, b):
        return a * b

    def divide(self, a, b):
        return a / b

    def matmul(self, a, b):
        return a @ b

    def negative(self, a):
        return -a

    def square(self, a):
        return a * a

    def exp(self, a):
        return self.torch.exp(a)

    def log(self, a):
        return self.torch.log(a)

    def sigmoid(self, a):
        return self.torch.sigmoid(a)

    def relu(self, a):
        return self.torch.relu(a)

    def tanh(self, a):
        return self.torch.tanh(a)

    def softmax(self, a):
        return self.torch.softmax(a, dim=-1)

    def reduce_sum(self, a, axis=None):
        return self.torch.sum(a) if axis is None else self.torch.sum(a, dim=axis)

    def reduce_mean(self, a, axis=None):
        return self.torch.mean(a) if axis is None else self.torch.mean(a, dim=axis)

    def softmax_cross_entropy_with_logits(self, labels, logits):
        return -self.torch.sum(labels * self.torch.log_softmax(logits, dim=-1), dim=-1)


# --- helpers ------------------------------------------------------------------------------

def make_graph(backend, dtype="float64"):
    return g.Graph(backend=backend, dtype=dtype, device=backend.device)


def build_case(name: str, graph, inputs):
    """Variables for the inputs, the case's output and a scalar loss sum(output * R).

    R is a fixed random weight of the output's shape, so that every element of the output
    gets a different upstream gradient (a plain sum would hide transposed gradients).
    """
    with graph:
        variables = [g.Variable(x, name=f"x{i}") for i, x in enumerate(inputs)]
        output = CASES[name].build(GRAPH_OPS, *variables)
        shape = tuple(g.Session().run(output).shape)
        weight = np.random.default_rng(7).uniform(0.5, 1.5, size=shape)
        loss = g.reduce_sum(output * weight, name="loss")
    return variables, output, loss, weight


def numeric_gradients(session, loss, variables, eps=EPS):
    """Central differences of a scalar ``loss``, each Variable perturbed on the host."""
    grads = []
    for variable in variables:
        host = to_numpy(variable.value).astype(np.float64)  # a copy
        grad = np.zeros_like(host)
        for index in np.ndindex(host.shape):
            original = host[index]
            host[index] = original + eps
            variable.assign(host)
            plus = float(session.run(loss))
            host[index] = original - eps
            variable.assign(host)
            minus = float(session.run(loss))
            host[index] = original
            grad[index] = (plus - minus) / (2 * eps)
        variable.assign(host)
        grads.append(grad)
    return grads


def relative_error(actual, desired) -> float:
    actual, desired = np.asarray(actual, dtype=np.float64), np.asarray(desired, np.float64)
    scale = np.linalg.norm(actual) + np.linalg.norm(desired)
    return 0.0 if scale == 0 else float(np.linalg.norm(actual - desired) / scale)


def torch_reference(name: str, inputs):
    """(output, gradients of sum(output * R)) computed by torch autograd in float64."""
    torch = pytest.importorskip("torch")
    ops = TorchOps(torch)
    leaves = [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in inputs]
    output = CASES[name].build(ops, *leaves)
    weight = np.random.default_rng(7).uniform(0.5, 1.5, size=tuple(output.shape))
    (output * torch.as_tensor(weight)).sum().backward()
    return output.detach().numpy(), [leaf.grad.numpy() for leaf in leaves]


# --- tests ------------------------------------------------------------------------------

def test_the_cases_cover_every_operation():
    used = {name.split("-")[0] for name in CASES}
    ops = {"add", "subtract", "negative", "multiply", "divide", "matmul", "square", "exp",
           "log", "sigmoid", "relu", "tanh", "softmax", "reduce_sum", "reduce_mean"}
    assert ops <= used
    assert any(name.startswith("softmax-xent") for name in CASES)


@pytest.mark.parametrize("name", OP_CASES)
def test_gradient_matches_central_differences(backend, name):
    inputs = case_inputs(name)
    variables, _, loss, _ = build_case(name, make_graph(backend), inputs)
    grads = g.compute_gradients(loss)
    numeric = numeric_gradients(g.Session(loss.graph), loss, variables)
    assert list(grads) == variables
    for variable, expected in zip(variables, numeric):
        assert_close(grads[variable], expected, backend=backend, dtype=backend.xp.float64,
                     shape=variable.value.shape, rtol=1e-5, atol=1e-7)
        error = relative_error(to_numpy(grads[variable]), expected)
        assert error < GRADCHECK_TOL, f"{variable.name}: relative error {error:.2e}"


@pytest.mark.parametrize("name", OP_CASES)
def test_value_and_gradient_match_torch_autograd(backend, name):
    inputs = case_inputs(name)
    expected_output, expected_grads = torch_reference(name, inputs)
    variables, output, loss, _ = build_case(name, make_graph(backend), inputs)
    assert_close(g.Session(output.graph).run(output), expected_output, backend=backend,
                 dtype=backend.xp.float64, shape=expected_output.shape, rtol=1e-12, atol=1e-14)
    grads = g.compute_gradients(loss)
    for variable, expected in zip(variables, expected_grads):
        assert_close(grads[variable], expected, backend=backend, dtype=backend.xp.float64,
                     shape=expected.shape, rtol=TORCH_RTOL, atol=1e-13)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", ["add-row", "divide-scalar-left", "softmax-3d",
                                  "reduce_mean-2d-axis0", "reduce_sum-3d-axisNone",
                                  "softmax-xent-2d", "operator-matmul-add",
                                  "operator-rdiv-number", "tutorial-loss", "log-1d"])
def test_values_and_gradients_stay_on_the_backend_in_the_graph_dtype(backend, dtype, name):
    """float32 and float64 graphs give arrays of their backend, device and dtype, with the
    values of a NumPy float64 graph (itself checked against torch and central differences)."""
    inputs = case_inputs(name)
    ref_variables, ref_output, ref_loss, _ = build_case(name, g.Graph(), inputs)
    expected_output = g.Session(ref_output.graph).run(ref_output)
    expected_grads = g.compute_gradients(ref_loss)
    variables, output, loss, _ = build_case(name, make_graph(backend, dtype), inputs)
    xp_dtype = getattr(backend.xp, dtype)
    rtol = 1e-5 if dtype == "float32" else 1e-12
    assert_close(g.Session(output.graph).run(output), expected_output, backend=backend,
                 dtype=xp_dtype, shape=np.shape(expected_output), rtol=rtol, atol=rtol)
    grads = g.compute_gradients(loss)
    for variable, ref_variable in zip(variables, ref_variables):
        assert variable.value.dtype == xp_dtype
        assert_close(grads[variable], expected_grads[ref_variable], backend=backend,
                     dtype=xp_dtype, shape=ref_variable.value.shape, rtol=rtol, atol=rtol)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_softmax_cross_entropy_is_finite_for_extreme_logits(backend, dtype):
    xp = backend.xp
    logits = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, 1e4], [1e4, 1e4, -1e4],
                       [-1e4, -1e4, -1e4]])
    labels = np.eye(3)[[1, 2, 0, 2]]  # the first row's true class has logit -1e4
    with make_graph(backend, dtype) as graph:
        c = g.placeholder(name="c")
        z = g.Variable(logits, name="z")
        per_row = g.softmax_cross_entropy_with_logits(c, z)
        loss = g.reduce_mean(per_row)
        rows, mean = g.Session().run([per_row, loss], feed_dict={c: labels})
        grads = g.compute_gradients(loss, feed_dict={c: labels})
    assert graph.backend is backend or graph.backend.name == backend.name
    expected_rows = np.array([2e4, 0.0, np.log(2.0), np.log(3.0)])
    expected_grad = np.array([[1.0, -1.0, 0.0], [0.0, 0.0, 0.0], [-0.5, 0.5, 0.0],
                              [1 / 3, 1 / 3, -2 / 3]]) / 4
    xp_dtype = getattr(xp, dtype)
    # float32 spacing at 1e4 is 1e-3: log(2) = (1e4 + log 2) - 1e4 keeps about 3 digits
    atol = 2e-3 if dtype == "float32" else 1e-10
    assert bool(xp.all(xp.isfinite(rows))) and bool(xp.all(xp.isfinite(grads[z])))
    assert_close(rows, expected_rows, backend=backend, dtype=xp_dtype, shape=(4,), rtol=1e-6,
                 atol=atol)
    assert_close(mean, expected_rows.mean(), backend=backend, dtype=xp_dtype, rtol=1e-6)
    assert_close(grads[z], expected_grad, backend=backend, dtype=xp_dtype, shape=(4, 3),
                 rtol=1e-6, atol=1e-7)


def test_extreme_logits_match_torch():
    torch = pytest.importorskip("torch")
    logits = np.array([[1e4, -1e4, 3.0], [-1e4, 5e3, 1e4]])
    labels = np.array([[0.2, 0.5, 0.3], [1.0, 0.0, 0.0]])
    z = torch.tensor(logits, requires_grad=True)
    loss = -(torch.as_tensor(labels) * torch.log_softmax(z, dim=-1)).sum(dim=-1).mean()
    loss.backward()
    with g.Graph() as graph:
        variable = g.Variable(logits)
        ours = g.reduce_mean(g.softmax_cross_entropy_with_logits(labels, variable))
        value = g.Session(graph).run(ours)
        grads = g.compute_gradients(ours)
    assert float(value) == pytest.approx(loss.item(), rel=1e-12)
    np.testing.assert_allclose(grads[variable], z.grad.numpy(), rtol=1e-12, atol=1e-15)


def test_broadcast_bias_gradient_is_summed_over_the_batch(backend):
    rng = np.random.default_rng(3)
    X_data, W0, b0 = rng.normal(size=(6, 3)), rng.normal(size=(3, 2)), rng.normal(size=(2,))
    with make_graph(backend) as graph:
        X = g.placeholder(name="X")
        W, b = g.Variable(W0, name="W"), g.Variable(b0, name="b")
        loss = g.reduce_sum(g.square(X @ W + b))
        grads = g.compute_gradients(loss, feed_dict={X: X_data})
    residual = X_data @ W0 + b0
    assert graph.variables == [W, b]
    assert_close(grads[b], 2 * residual.sum(axis=0), backend=backend, shape=(2,), rtol=1e-12)
    assert_close(grads[W], 2 * X_data.T @ residual, backend=backend, shape=(3, 2), rtol=1e-12)


def test_python_operators_build_the_named_operations():
    with g.Graph():
        a, b = g.placeholder(name="a"), g.placeholder(name="b")
        expected = {a + b: "Add", a + 1: "Add", 1 + a: "Add", a - b: "Subtract",
                    2 - a: "Subtract", a * b: "Multiply", 3 * a: "Multiply",
                    a / b: "Divide", 1 / a: "Divide", a @ b: "MatMul", -a: "Negative",
                    np.ones(3) * a: "Multiply", np.ones(3) + a: "Add",
                    np.float64(2.0) - a: "Subtract"}
        for node, kind in expected.items():
            assert type(node).__name__ == kind
            assert isinstance(node, g.Operation)
        reflected = 2 - a
        assert isinstance(reflected.inputs[0], g.Constant) and reflected.inputs[1] is a
        assert isinstance((a / 4).inputs[1], g.Constant)
