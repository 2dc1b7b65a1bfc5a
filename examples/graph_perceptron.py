"""Tutorial 000 with mlpx.graph: a perceptron on red/blue points that a line separates.

"Deep Learning From Scratch" builds a computational graph (placeholders, Variables,
operations, a Session), then trains a perceptron on 50 red points around (-2, -2) and 50
blue points around (2, 2). This script writes the tutorial's program with ``mlpx.graph``,
line for line:

    X, c = placeholder(), placeholder()          # points, one-hot labels (blue first)
    W, b = Variable(randn(2, 2)), Variable(randn(2))
    p = softmax(X @ W + b)
    J = -reduce_sum(reduce_sum(c * log(p), axis=1))
    minimization_op = GradientDescentOptimizer(learning_rate=0.01).minimize(J)

and runs 100 steps of gradient descent in a Session, printing the loss every 10 steps. It
prints the accuracy (the script fails below 95 %), then saves the decision boundary (the
0.5 contour of P(blue), with matplotlib: ``pip install 'mlpx[plot]'``) and the graph
(rendered by Graphviz ``dot`` where installed, else its DOT text).

As in the tutorial, blue comes first: column 0 of the one-hot labels c and of the
probabilities p is blue (``make_red_blue`` labels red 0 and blue 1).

    python examples/graph_perceptron.py [--backend numpy|torch|array_api_strict|cupy]
                                        [--out DIR]

Pictures go to ``examples/output/`` (ignored by git); with ``MLPX_EXAMPLE_QUICK=1`` (the
nox ``examples`` session) to a new temporary folder unless ``--out`` is given.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from _output import DPI, add_out_argument, output_folder

import mlpx
from mlpx import graph as g
from mlpx.datasets import make_red_blue

BACKENDS = ("numpy", "torch", "array_api_strict", "cupy")
N_POINTS, SEED, STEPS, LEARNING_RATE = 100, 0, 100, 0.01


def one_hot_blue_first(y: np.ndarray) -> np.ndarray:
    """The tutorial's labels c, shape (n, 2): [1, 0] for a blue point, [0, 1] for a red one."""
    return np.stack([y == 1, y == 0], axis=1).astype(np.float64)


def save_graph_picture(graph: g.Graph, path: Path) -> Path:
    """``path`` rendered by Graphviz; without ``dot``, the DOT text next to it (.dot)."""
    try:
        return g.draw(graph, path)
    except g.GraphvizNotFoundError as exc:
        print(exc)
        dot_path = path.with_suffix(".dot")
        dot_path.write_text(graph.to_dot())
        return dot_path


class RedBlueProbabilities:
    """A graph's P(blue) as a classifier that :func:`mlpx.plot.decision_boundary` can draw."""

    classes_ = np.array(["red", "blue"])

    def __init__(self, prob_blue) -> None:
        self.prob_blue = prob_blue

    def predict_proba(self, points: np.ndarray) -> np.ndarray:
        return self.prob_blue(points)


def save_boundary_picture(prob_blue, X: np.ndarray, y: np.ndarray, path: Path,
                          title: str) -> Path | None:
    """P(blue) as shading, its 0.5 contour and the points, as a PNG; None without matplotlib.

    Parameters
    ----------
    prob_blue : callable
        Maps host points of shape (m, 2) to host probabilities of blue, shape (m,).
    X : ndarray of shape (n, 2)
    y : ndarray of shape (n,), 0 red and 1 blue
    """
    from mlpx import plot

    try:
        figure = plot.decision_boundary(RedBlueProbabilities(prob_blue), X,
                                        RedBlueProbabilities.classes_[y], title=title,
                                        colors=["#D55E00", "#0072B2"])  # vermillion, blue
    except ImportError as exc:
        print(exc)
        return None
    import matplotlib.pyplot as plt

    figure.savefig(path, dpi=DPI)
    plt.close(figure)
    return path


def save_pictures_and_check(graph: g.Graph, prob_blue, X: np.ndarray, y: np.ndarray, *,
                            name: str, title: str, accuracy: float, out: str | None) -> None:
    """Save ``<name>_graph`` and ``<name>_boundary``, print their paths, and exit with an
    error when ``accuracy`` is below the tutorial's 95 %."""
    folder = output_folder(out, f"graph_{name}")
    written = [save_graph_picture(graph, folder / f"{name}_graph.png"),
               save_boundary_picture(prob_blue, X, y, folder / f"{name}_boundary.png", title)]
    for path in written:
        if path is not None:
            print(f"wrote {path}")
    if accuracy < 0.95:
        sys.exit(f"accuracy {accuracy:.1%} is below 95 %")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="numpy", choices=BACKENDS)
    add_out_argument(parser)
    args = parser.parse_args()

    # Data and starting weights are drawn on the host (same numbers on every backend).
    X_data, y = (mlpx.to_numpy(a) for a in make_red_blue(N_POINTS, seed=SEED, separable=True,
                                                         dtype="float64"))
    c_data = one_hot_blue_first(y)
    rng = np.random.default_rng(SEED)

    with g.Graph(backend=args.backend, dtype="float64") as graph:
        X = g.placeholder(name="X")
        c = g.placeholder(name="c")
        W = g.Variable(rng.standard_normal((2, 2)), name="W")
        b = g.Variable(rng.standard_normal(2), name="b")
        p = g.softmax(g.add(g.matmul(X, W), b), name="p")
        J = g.negative(g.reduce_sum(g.reduce_sum(g.multiply(c, g.log(p)), axis=1)), name="J")
        minimization_op = g.GradientDescentOptimizer(learning_rate=LEARNING_RATE).minimize(J)
        session = g.Session()

    feed_dict = {X: X_data, c: c_data}
    print(f"Perceptron in mlpx.graph on {N_POINTS} separable red/blue points, backend "
          f"{args.backend}: gradient descent, learning rate {LEARNING_RATE}, {STEPS} steps")
    start = time.perf_counter()
    for step in range(STEPS):
        J_value = session.run(J, feed_dict)
        if step % 10 == 0:
            print(f"Step: {step:3d}  Loss: {float(J_value):.4f}")
        session.run(minimization_op, feed_dict)
    seconds = time.perf_counter() - start

    W_value, b_value = (mlpx.to_numpy(session.run(v)) for v in (W, b))
    p_value = mlpx.to_numpy(session.run(p, {X: X_data}))
    accuracy = float(np.mean((p_value[:, 0] > 0.5) == (y == 1)))
    print(f"Final loss {float(session.run(J, feed_dict)):.4f} after {STEPS} steps "
          f"({seconds:.2f} s)")
    print(f"W = {np.round(W_value, 3).tolist()}, b = {np.round(b_value, 3).tolist()}")
    # The boundary p_blue = p_red: (W[:, 0] - W[:, 1]) . x + (b[0] - b[1]) = 0.
    w, bias = W_value[:, 0] - W_value[:, 1], b_value[0] - b_value[1]
    print(f"Decision boundary: x2 = {-w[0] / w[1]:+.3f} x1 {-bias / w[1]:+.3f}")
    print(f"Accuracy: {accuracy:.1%}")

    save_pictures_and_check(
        graph, lambda grid: mlpx.to_numpy(session.run(p, {X: grid}))[:, 0], X_data, y,
        name="perceptron", accuracy=accuracy, out=args.out,
        title=f"Perceptron (mlpx.graph, {args.backend}): accuracy {accuracy:.0%}")


if __name__ == "__main__":
    main()
