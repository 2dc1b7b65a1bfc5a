"""mlpx.graph sessions, backpropagation over shared nodes, optimizers, errors, and an MLP
written in the graph API against ``mlpx.MLP`` (patterns 7 and 8 of the design)."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import assert_close

import mlpx
from mlpx import graph as g
from mlpx._backend import to_numpy
from mlpx.graph.nodes import Operation

MLP_TOL = 1e-10


def make_graph(backend, dtype="float64"):
    return g.Graph(backend=backend, dtype=dtype, device=backend.device)


def tutorial_problem(seed=0, n=8):
    """Two Gaussian blobs (tutorial 000): X (n, 2), one-hot c (n, 2), W0 (2, 2), b0 (2,)."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    X = rng.normal(size=(n, 2)) + 2.0 * np.stack([labels, labels], axis=1) - 1.0
    return X, np.eye(2)[labels], rng.normal(size=(2, 2)), rng.normal(size=(2,))


def tutorial_graph(graph, W0, b0):
    """The perceptron of tutorial 000: J = -sum(c * log(softmax(X W + b)))."""
    with graph:
        X, c = g.placeholder(name="X"), g.placeholder(name="c")
        W, b = g.Variable(W0, name="W"), g.Variable(b0, name="b")
        p = g.softmax(g.add(g.matmul(X, W), b), name="p")
        J = g.negative(g.reduce_sum(g.reduce_sum(g.multiply(c, g.log(p)), axis=1)), name="J")
    return X, c, W, b, p, J


def numpy_tutorial_loss_and_grads(X, C, W, b):
    z = X @ W + b
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    loss = -np.sum(C * np.log(p))
    dz = p * C.sum(axis=1, keepdims=True) - C
    return loss, X.T @ dz, dz.sum(axis=0)


# --- running --------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_tutorial_example_runs_on_every_backend(backend, dtype):
    X_data, C_data, W0, b0 = tutorial_problem()
    graph = make_graph(backend, dtype)
    X, c, W, b, p, J = tutorial_graph(graph, W0, b0)
    feed = {X: X_data, c: C_data}
    session = g.Session(graph)
    xp_dtype = getattr(backend.xp, dtype)
    rtol = 1e-5 if dtype == "float32" else 1e-12
    loss, dW, db = numpy_tutorial_loss_and_grads(X_data, C_data, W0, b0)
    assert_close(session.run(J, feed_dict=feed), loss, backend=backend, dtype=xp_dtype,
                 shape=(), rtol=rtol)
    probabilities, value = session.run([p, J], feed_dict=feed)
    assert_close(probabilities, probabilities_of(X_data, W0, b0),
                 backend=backend, dtype=xp_dtype, shape=(8, 2), rtol=rtol)
    assert_close(value, loss, backend=backend, dtype=xp_dtype, rtol=rtol)
    grads = g.compute_gradients(J, feed_dict=feed)
    assert list(grads) == [W, b]
    assert_close(grads[W], dW, backend=backend, dtype=xp_dtype, shape=(2, 2), rtol=rtol,
                 atol=rtol)
    assert_close(grads[b], db, backend=backend, dtype=xp_dtype, shape=(2,), rtol=rtol,
                 atol=rtol)


def probabilities_of(X, W, b):
    z = X @ W + b
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_run_accepts_a_node_a_list_or_a_tuple_and_evaluates_only_what_is_needed():
    with g.Graph() as graph:
        X = g.placeholder(name="X")
        a = g.Variable([1.0, 2.0], name="a")
        doubled = a * 2
        needs_x = X + a
        session = g.Session()
        # X is not fed: running nodes that do not depend on it works
        np.testing.assert_array_equal(session.run(doubled), [2.0, 4.0])
        assert isinstance(session.run([doubled]), list)
        first, second = session.run((doubled, a))
        np.testing.assert_array_equal(first, [2.0, 4.0])
        np.testing.assert_array_equal(second, [1.0, 2.0])
        np.testing.assert_array_equal(session.run(needs_x, feed_dict={X: [10.0, 20.0]}),
                                      [11.0, 22.0])
        assert session.run([]) == []
    assert g.Session(graph).graph is graph


def test_run_computes_each_node_once_after_its_inputs():
    order = []

    class Recorded(Operation):
        kind = "recorded"

        def compute(self, *values, xp):
            order.append(self.name)
            return sum(values[1:], values[0])

        def gradient(self, grad, *values, output, xp):
            return (grad,) * len(values)

    with g.Graph():
        x = g.Variable(1.0, name="x")
        top = Recorded(x, name="top")
        left, right = Recorded(top, name="left"), Recorded(top, name="right")
        bottom = Recorded(right, left, name="bottom")
        last = Recorded(bottom, top, name="last")
        session = g.Session()
        assert float(session.run(last)) == 3.0  # top = left = right = 1, bottom = 2
    assert order.count("top") == 1 and len(order) == 5
    assert order.index("top") < order.index("left") < order.index("bottom")
    assert order.index("right") < order.index("bottom") < order.index("last")
    order.clear()
    session.run([left, last, left])
    assert sorted(order) == ["bottom", "last", "left", "right", "top"]


def test_gradients_sum_over_every_path_of_a_diamond(backend):
    """h = exp(v) feeds two consumers: J = sum(h * h + 3 h) so dJ/dv = (2 h + 3) h."""
    v0 = np.array([[0.1, -0.4, 0.7], [0.3, 0.2, -1.0]])
    with make_graph(backend):
        v = g.Variable(v0, name="v")
        h = g.exp(v, name="h")
        J = g.reduce_sum(g.add(g.multiply(h, h), g.multiply(3.0, h)), name="J")
        grads = g.compute_gradients(J)
        loss = g.Session().run(J)
    h0 = np.exp(v0)
    assert_close(loss, np.sum(h0 * h0 + 3 * h0), backend=backend, rtol=1e-13)
    assert_close(grads[v], (2 * h0 + 3) * h0, backend=backend, shape=(2, 3), rtol=1e-13)
    assert len(h.consumers) == 3  # multiply(h, h) counts h twice, plus multiply(3, h)


def test_gradients_of_a_variable_used_twice(backend):
    """J = sum(W * W) + sum(W @ A): W feeds three inputs; dJ/dW = 2 W + 1 A^T."""
    W0 = np.array([[1.0, -2.0], [0.5, 3.0]])
    A = np.array([[2.0, 1.0, 0.0], [-1.0, 1.0, 4.0]])
    with make_graph(backend):
        W = g.Variable(W0, name="W")
        J = g.reduce_sum(W * W) + g.reduce_sum(W @ A)
        grads = g.compute_gradients(J)
    expected = 2 * W0 + np.ones((2, 3)) @ A.T
    assert_close(grads[W], expected, backend=backend, shape=(2, 2), rtol=1e-14)


def test_compute_gradients_var_list_and_unused_variables(backend):
    with make_graph(backend):
        a, b = g.Variable([1.0, 2.0], name="a"), g.Variable([[3.0]], name="b")
        unused = g.Variable([5.0, 6.0, 7.0], name="unused")
        J = g.reduce_sum(a * a)
        grads = g.compute_gradients(J, var_list=[unused, a])
        assert list(grads) == [unused, a]
        assert_close(grads[unused], np.zeros(3), backend=backend, shape=(3,))
        assert_close(grads[a], [2.0, 4.0], backend=backend, shape=(2,))
        assert list(g.compute_gradients(J)) == [a]
        assert b not in g.compute_gradients(J)


def test_scalar_loss_may_have_shape_one_one():
    with g.Graph():
        w = g.Variable([[2.0]], name="w")
        grads = g.compute_gradients(w * w)
    np.testing.assert_allclose(grads[w], [[4.0]])


def test_values_returned_by_run_do_not_change_after_a_step(backend):
    """Optimizers update Variables in place; what run returned before stays as it was."""
    with make_graph(backend):
        W = g.Variable([[1.0, 2.0]], name="W")
        J = g.reduce_sum(W * W)
        step = g.GradientDescentOptimizer(0.25).minimize(J)
        session = g.Session()
        before = session.run(W)
        also_before, none = session.run([W, step])
        assert none is None
        after = session.run(W)
    assert_close(before, [[1.0, 2.0]], backend=backend, shape=(1, 2))
    assert_close(also_before, [[1.0, 2.0]], backend=backend, shape=(1, 2))
    assert_close(after, [[0.5, 1.0]], backend=backend, shape=(1, 2))


def test_variables_and_constants_copy_their_initial_values():
    W0, k = np.ones((2, 2)), np.ones(2)
    with g.Graph():
        W, K = g.Variable(W0, name="W"), g.constant(k, name="k")
        J = g.reduce_sum(W * K)
        g.Session().run(g.GradientDescentOptimizer(0.5).minimize(J))
        W0[0, 0] = 10.0
        k[0] = 10.0
        value = g.Session().run(J)
    np.testing.assert_array_equal(W0, [[10.0, 1.0], [1.0, 1.0]])
    np.testing.assert_allclose(W.value, 0.5 * np.ones((2, 2)))
    assert float(value) == 2.0


def test_assign_replaces_the_value_and_checks_the_shape(backend):
    with make_graph(backend, "float32"):
        W = g.Variable(np.zeros((2, 3)), name="W")
        W.assign(np.ones((2, 3), dtype=np.int64))
        assert_close(W.value, np.ones((2, 3)), backend=backend, dtype=backend.xp.float32)
        with pytest.raises(g.GraphError, match=r"Variable 'W' has shape \(2, 3\).*\(3, 2\)"):
            W.assign(np.ones((3, 2)))


# --- graphs as context managers --------------------------------------------------------

def test_graph_context_makes_the_default_graph_and_nests():
    outer, inner = g.Graph(), g.Graph()
    default = g.get_default_graph()
    with outer as entered:
        assert entered is outer and g.get_default_graph() is outer
        with inner:
            assert g.placeholder().graph is inner
        assert g.placeholder().graph is outer
        with outer:  # re-entering the current graph
            pass
        assert g.get_default_graph() is outer
    assert g.get_default_graph() is default
    with inner.as_default():
        assert g.get_default_graph() is inner
    assert g.get_default_graph() is default


def test_nodes_are_named_and_listed_by_kind():
    with g.Graph() as graph:
        X = g.placeholder()
        W = g.Variable(np.ones((2, 2)))
        Y = g.matmul(X, W)
        Z = g.add(Y, 1.0, name="logits")
    assert (X.name, W.name, Y.name, Z.name) == ("placeholder_1", "variable_1", "matmul_1",
                                                "logits")
    assert graph.placeholders == [X] and graph.variables == [W]
    assert graph.operations == [Y, Z]
    assert len(graph.nodes) == 5  # the constant 1.0 too
    assert Y.consumers == [Z] and Z.inputs[0] is Y
    assert "numpy" in repr(graph) and "matmul_1" in repr(Z)


# --- errors -------------------------------------------------------------------------------

def test_graph_error_is_a_value_error():
    assert issubclass(g.GraphError, ValueError)


def test_missing_placeholder_is_named():
    with g.Graph():
        X, y = g.placeholder(name="X"), g.placeholder(name="labels")
        J = g.reduce_sum(X * y)
        with pytest.raises(g.GraphError, match=r"placeholder 'labels' has no value.*feed_dict"):
            g.Session().run(J, feed_dict={X: [1.0]})
        with pytest.raises(g.GraphError, match="placeholder 'X' has no value"):
            g.compute_gradients(J)


def test_matmul_shape_mismatch_names_both_inputs(backend):
    with make_graph(backend):
        X = g.placeholder(name="X")
        W = g.Variable(np.ones((3, 4)), name="W")
        out = g.matmul(X, W, name="hidden")
        session = g.Session()
        with pytest.raises(g.GraphError, match=r"matmul 'hidden': 'X' has shape \(5, 2\) and "
                                               r"'W' has shape \(3, 4\)"):
            session.run(out, feed_dict={X: np.ones((5, 2))})
        with pytest.raises(g.GraphError, match=r"'X' has shape \(3,\)"):
            session.run(out, feed_dict={X: np.ones(3)})


def test_broadcasting_failure_names_the_operation(backend):
    with make_graph(backend):
        a, b = g.placeholder(name="a"), g.placeholder(name="b")
        out = g.add(a, b, name="total")
        with pytest.raises(g.GraphError, match=r"add 'total' cannot combine its inputs "
                                               r"\('a' \(2, 3\), 'b' \(4,\)\)"):
            g.Session().run(out, feed_dict={a: np.ones((2, 3)), b: np.ones(4)})


def test_gradient_of_a_non_scalar_loss_is_refused():
    with g.Graph():
        W = g.Variable(np.ones((2, 3)), name="W")
        per_row = g.reduce_sum(W, axis=1, name="per_row")
        with pytest.raises(g.GraphError, match=r"loss 'per_row' has shape \(2,\).*scalar"):
            g.compute_gradients(per_row)
        step = g.GradientDescentOptimizer(0.1).minimize(per_row)
        with pytest.raises(g.GraphError, match="loss 'per_row'"):
            g.Session().run(step)
    np.testing.assert_array_equal(W.value, np.ones((2, 3)))


def test_nodes_of_two_graphs_do_not_mix():
    first, second = g.Graph(), g.Graph()
    with first:
        X1 = g.placeholder(name="X1")
        J1 = g.reduce_sum(X1 * 2.0, name="J1")
    with second:
        X2 = g.placeholder(name="X2")
        W2 = g.Variable([1.0], name="W2")
        with pytest.raises(g.GraphError, match="'X1' belongs to another graph"):
            g.add(X2, X1)
        with pytest.raises(g.GraphError, match="'W2' belongs to another graph"):
            g.multiply(X1, W2)
        with pytest.raises(g.GraphError, match="'J1' belongs to another graph than this "
                                               "session's"):
            g.Session().run(J1, feed_dict={X1: [1.0]})
    with pytest.raises(g.GraphError, match="placeholder 'X2' belongs to another graph"):
        g.Session(first).run(J1, feed_dict={X1: [1.0], X2: [2.0]})
    with pytest.raises(g.GraphError, match="var_list entry"):
        g.compute_gradients(J1, feed_dict={X1: [1.0]}, var_list=[W2])
    with pytest.raises(g.GraphError, match="var_list entry"):
        g.GradientDescentOptimizer(0.1).minimize(g.reduce_sum(W2), var_list=[X1])


def test_a_cycle_is_reported_not_looped_on():
    with g.Graph():
        X = g.placeholder(name="X")
        a = g.add(X, 1.0, name="a")
        b = g.multiply(a, 2.0, name="b")
        a.inputs.append(b)
        with pytest.raises(g.GraphError, match="cycle through '(a|b)'"):
            g.Session().run(b, feed_dict={X: [1.0]})
        with pytest.raises(g.GraphError, match="cycle"):
            g.compute_gradients(g.reduce_sum(b), feed_dict={X: [1.0]})
        self_loop = g.negative(X, name="self_loop")
        self_loop.inputs.append(self_loop)
        with pytest.raises(g.GraphError, match="cycle through 'self_loop'"):
            g.Session().run(self_loop, feed_dict={X: [1.0]})


def test_bad_feed_dicts_and_fetches_are_refused():
    torch = pytest.importorskip("torch")
    with g.Graph():
        X = g.placeholder(name="X")
        W = g.Variable([1.0], name="W")
        J = g.reduce_sum(X * W)
        session = g.Session()
        with pytest.raises(g.GraphError, match="feed_dict must be a dict"):
            session.run(J, feed_dict=[(X, [1.0])])
        with pytest.raises(g.GraphError, match="feed_dict key 'X' is not a placeholder"):
            session.run(J, feed_dict={"X": [1.0]})
        with pytest.raises(g.GraphError, match="is not a placeholder"):
            session.run(J, feed_dict={X: [1.0], W: [2.0]})
        with pytest.raises(TypeError, match=r"feed_dict\['X'\] must be numeric"):
            session.run(J, feed_dict={X: np.array(["a", "b"])})
        with pytest.raises(TypeError, match=r"feed_dict\['X'\] is a torch array"):
            session.run(J, feed_dict={X: torch.ones(1)})
        with pytest.raises(g.GraphError, match="fetches must be graph nodes"):
            session.run("J")
        with pytest.raises(g.GraphError, match="fetches must be graph nodes"):
            session.run([J, np.ones(2)], feed_dict={X: [1.0]})


def test_reduce_axis_is_checked():
    with g.Graph():
        X = g.placeholder(name="X")
        session = g.Session()
        for axis in (2, -3):
            node = g.reduce_sum(X, axis=axis, name=f"r{axis}")
            with pytest.raises(g.GraphError, match=rf"reduce_sum 'r{axis}': axis {axis} is out "
                                                   r"of range for 'X' of shape \(2, 3\)"):
                session.run(node, feed_dict={X: np.ones((2, 3))})
        mean = g.reduce_mean(X, axis=1, name="m")
        with pytest.raises(g.GraphError, match=r"reduce_mean 'm': axis 1 is out of range"):
            session.run(mean, feed_dict={X: np.ones(3)})
        for axis in (1.0, True, (0, 1)):
            with pytest.raises(TypeError, match="axis must be None or an int"):
                g.reduce_sum(X, axis=axis)


def test_labels_and_logits_must_have_one_shape(backend):
    with make_graph(backend):
        c, z = g.placeholder(name="c"), g.Variable(np.zeros((4, 3)), name="z")
        loss = g.softmax_cross_entropy_with_logits(c, z, name="xent")
        with pytest.raises(g.GraphError, match=r"softmax_cross_entropy 'xent': labels 'c' have "
                                               r"shape \(4,\) but logits 'z' have \(4, 3\)"):
            g.Session().run(loss, feed_dict={c: np.arange(4)})


def test_minimize_needs_a_loss_with_variables():
    with g.Graph():
        X = g.placeholder(name="X")
        with pytest.raises(g.GraphError, match="depends on no Variable"):
            g.GradientDescentOptimizer(0.1).minimize(g.reduce_sum(X, name="J"))
        with pytest.raises(g.GraphError, match="needs a loss node"):
            g.AdamOptimizer().minimize(np.ones(2))
    with pytest.raises(ValueError, match="learning_rate"):
        g.GradientDescentOptimizer(-1.0)
    with pytest.raises(ValueError, match="momentum"):
        g.MomentumOptimizer(0.1, momentum=1.5)
    with pytest.raises(ValueError, match="beta1"):
        g.AdamOptimizer(beta1=2.0)


# --- optimizers ---------------------------------------------------------------------------

OPTIMIZERS = {
    "gd": (lambda: g.GradientDescentOptimizer(0.05), lambda: mlpx.optim.SGD(0.05)),
    "momentum": (lambda: g.MomentumOptimizer(0.05, momentum=0.8),
                 lambda: mlpx.optim.SGD(0.05, momentum=0.8)),
    "nesterov": (lambda: g.MomentumOptimizer(0.05, momentum=0.8, use_nesterov=True),
                 lambda: mlpx.optim.SGD(0.05, momentum=0.8, nesterov=True)),
    "adam": (lambda: g.AdamOptimizer(0.05, beta1=0.8, beta2=0.99, epsilon=1e-7),
             lambda: mlpx.optim.Adam(0.05, beta1=0.8, beta2=0.99, epsilon=1e-7)),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_optimizer_steps_equal_mlpx_optim_updates(backend, name):
    X_data, C_data, W0, b0 = tutorial_problem(seed=1)
    make_graph_optimizer, make_reference = OPTIMIZERS[name]
    X, c, W, b, _, J = tutorial_graph(make_graph(backend), W0, b0)
    feed = {X: X_data, c: C_data}
    step = make_graph_optimizer().minimize(J)
    session = g.Session(J.graph)

    xp = backend.xp
    reference = make_reference()
    params = [mlpx._backend.from_host(p, backend=backend) for p in (W0, b0)]
    state = reference.init(params)
    losses = []
    for _ in range(4):
        grads = [numpy_tutorial_loss_and_grads(X_data, C_data, *map(to_numpy, params))[i]
                 for i in (1, 2)]
        grads = [mlpx._backend.from_host(grad, backend=backend) for grad in grads]
        params, state = reference.update(params, grads, state, learning_rate=0.05, xp=xp)
        losses.append(float(session.run(J, feed_dict=feed)))
        assert session.run(step, feed_dict=feed) is None
        assert_close(W.value, params[0], backend=backend, dtype=xp.float64, shape=(2, 2),
                     rtol=1e-12)
        assert_close(b.value, params[1], backend=backend, dtype=xp.float64, shape=(2,),
                     rtol=1e-12)
    assert step.state["step"] == 4
    assert losses[-1] < losses[0]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_training_lowers_the_loss_and_keeps_the_dtype(backend, dtype, name):
    X_data, C_data, W0, b0 = tutorial_problem(seed=2, n=16)
    X, c, W, b, _, J = tutorial_graph(make_graph(backend, dtype), W0, b0)
    feed = {X: X_data, c: C_data}
    step = OPTIMIZERS[name][0]().minimize(J)
    session = g.Session(J.graph)
    first = float(session.run(J, feed_dict=feed))
    for _ in range(15):
        session.run(step, feed_dict=feed)
    last = float(session.run(J, feed_dict=feed))
    assert last < 0.8 * first
    for variable, shape in ((W, (2, 2)), (b, (2,))):
        assert_close(variable.value, variable.value, backend=backend,
                     dtype=getattr(backend.xp, dtype), shape=shape)


def test_minimize_var_list_trains_only_those_variables(backend):
    X_data, C_data, W0, b0 = tutorial_problem()
    X, c, W, b, _, J = tutorial_graph(make_graph(backend), W0, b0)
    step = g.AdamOptimizer(0.1).minimize(J, var_list=[b], name="train_b")
    assert step.name == "train_b" and step.variables == [b]
    g.Session(J.graph).run(step, feed_dict={X: X_data, c: C_data})
    assert_close(W.value, W0, backend=backend, rtol=0)
    assert not np.allclose(to_numpy(b.value), b0)


# --- an MLP in the graph API equals mlpx.MLP ------------------------------------------------

MLP_SPECS = {
    "sigmoid-softmax": ([2, 3, 2], ["sigmoid", "softmax"]),
    "relu-tanh-softmax": ([4, 6, 5, 3], ["relu", "tanh", "softmax"]),
}


@pytest.mark.parametrize("spec", sorted(MLP_SPECS))
def test_graph_mlp_matches_mlpx_mlp(backend, spec):
    layer_sizes, activations = MLP_SPECS[spec]
    model = mlpx.MLP(layer_sizes, activations=activations, dtype="float64", seed=0,
                     backend=backend, device=backend.device)
    rng = np.random.default_rng(5)
    # random biases keep relu units off their kinks and make the bias gradients telling
    model.params = [to_numpy(p) if i % 2 == 0 else rng.uniform(-0.5, 0.5, size=p.shape)
                    for i, p in enumerate(model.params)]
    n_classes = layer_sizes[-1]
    X_data = rng.normal(size=(7, layer_sizes[0]))
    y = np.arange(7) % n_classes
    expected_loss, expected_grads = model.loss_and_grads(X_data, y)

    with make_graph(backend) as graph:
        X, c = g.placeholder(name="X"), g.placeholder(name="c")
        params = [g.Variable(p, name=f"{'Wb'[i % 2]}{i // 2 + 1}")  # backend arrays as given
                  for i, p in enumerate(model.params)]
        a = X
        for layer, activation in enumerate(activations):
            W, b = params[2 * layer], params[2 * layer + 1]
            z = a @ W + b
            a = z if activation == "softmax" else getattr(g, activation)(z)
        J = g.reduce_mean(g.softmax_cross_entropy_with_logits(c, a), name="J")
        feed = {X: X_data, c: np.eye(n_classes)[y]}
        loss = g.Session().run(J, feed_dict=feed)
        grads = g.compute_gradients(J, feed_dict=feed)
    assert graph.variables == params
    assert_close(loss, expected_loss, backend=backend, dtype=backend.xp.float64, shape=(),
                 rtol=MLP_TOL)
    for variable, expected in zip(params, expected_grads):
        assert_close(grads[variable], expected, backend=backend, dtype=backend.xp.float64,
                     shape=expected.shape, rtol=MLP_TOL, atol=1e-13)


def test_graph_mlp_training_matches_mlpx_sgd_steps(backend):
    """Three graph gradient-descent steps equal three SGD updates on MLP.loss_and_grads."""
    model = mlpx.MLP([2, 3, 2], activations=["sigmoid", "softmax"], dtype="float64", seed=0,
                     backend=backend, device=backend.device)
    rng = np.random.default_rng(6)
    X_data, y = rng.normal(size=(6, 2)), np.array([0, 1, 1, 0, 1, 0])
    with make_graph(backend):
        X, c = g.placeholder(name="X"), g.placeholder(name="c")
        W1, b1, W2, b2 = (g.Variable(p) for p in model.params)
        J = g.reduce_mean(g.softmax_cross_entropy_with_logits(c, g.sigmoid(X @ W1 + b1) @ W2
                                                              + b2))
        step = g.GradientDescentOptimizer(0.5).minimize(J)
        session = g.Session()
    sgd = mlpx.optim.SGD(0.5)
    params, state = list(model.params), sgd.init(model.params)
    for _ in range(3):
        session.run(step, feed_dict={X: X_data, c: np.eye(2)[y]})
        _, grads = model.loss_and_grads(X_data, y)
        params, state = sgd.update(params, grads, state, learning_rate=0.5, xp=backend.xp)
        model.params = params
    for variable, expected in zip((W1, b1, W2, b2), params):
        assert_close(variable.value, expected, backend=backend, dtype=backend.xp.float64,
                     shape=expected.shape, rtol=MLP_TOL)


def test_two_training_steps_in_one_run_are_refused():
    from mlpx import graph as g

    with g.Graph():
        w = g.Variable(np.ones(2), name="w")
        loss = g.reduce_sum(g.square(w))
        first = g.GradientDescentOptimizer(0.1).minimize(loss, name="first")
        second = g.AdamOptimizer(0.1).minimize(loss, name="second")
        session = g.Session()
        with pytest.raises(g.GraphError, match="first, second"):
            session.run([first, second])
        np.testing.assert_array_equal(session.run(w), np.ones(2))
