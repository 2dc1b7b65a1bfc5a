"""mlpx.graph: the computational graph of "Deep Learning From Scratch" (tutorials 000/001).

Placeholders, Variables and operations make a graph; a Session runs it; gradients come
from walking the graph backwards from the loss; optimizers take steps. Every value is an
array of the graph's backend (NumPy, CuPy, PyTorch or array-api-strict)::

    from mlpx import graph as g
    with g.Graph(backend="numpy", dtype="float64"):
        X, c = g.placeholder(name="X"), g.placeholder(name="c")
        W, b = g.Variable(W0, name="W"), g.Variable(b0, name="b")
        p = g.softmax(X @ W + b)
        J = g.negative(g.reduce_sum(g.reduce_sum(g.multiply(c, g.log(p)), axis=1)))
        session = g.Session()
        session.run(J, feed_dict={X: X_data, c: c_data})
        g.compute_gradients(J, feed_dict={X: X_data, c: c_data})   # {W: dJ/dW, b: dJ/db}
        step = g.GradientDescentOptimizer(learning_rate=0.01).minimize(J)
        session.run(step, feed_dict={X: X_data, c: c_data})
"""

from mlpx.graph.dot import GraphvizError, GraphvizNotFoundError, draw
from mlpx.graph.nodes import (
    Constant,
    Graph,
    GraphError,
    Node,
    Operation,
    Placeholder,
    TrainingStep,
    Variable,
    constant,
    get_default_graph,
    placeholder,
)
from mlpx.graph.ops import (
    add,
    divide,
    exp,
    log,
    matmul,
    multiply,
    negative,
    reduce_mean,
    reduce_sum,
    relu,
    sigmoid,
    softmax,
    softmax_cross_entropy_with_logits,
    square,
    subtract,
    tanh,
)
from mlpx.graph.optimizers import (
    AdamOptimizer,
    GradientDescentOptimizer,
    Minimize,
    MomentumOptimizer,
)
from mlpx.graph.session import Session, compute_gradients

__all__ = [
    "AdamOptimizer", "Constant", "Graph", "GraphError", "GradientDescentOptimizer",
    "GraphvizError", "GraphvizNotFoundError", "Minimize", "MomentumOptimizer", "Node", "Operation",
    "Placeholder", "Session", "TrainingStep", "Variable", "add", "compute_gradients",
    "constant", "divide", "draw", "exp", "get_default_graph", "log", "matmul", "multiply",
    "negative", "placeholder", "reduce_mean", "reduce_sum", "relu", "sigmoid", "softmax",
    "softmax_cross_entropy_with_logits", "square", "subtract", "tanh",
]
