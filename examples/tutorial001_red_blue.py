"""Tutorials 000/001 with mlpx: the perceptron and the one-hidden-layer MLP on red/blue points.

"Deep Learning From Scratch" builds a computational graph library, trains a perceptron on
red and blue points that a line separates, then shows red/blue points that no line
separates and solves them with a multi-layer perceptron: a hidden layer of 2 sigmoid units
and a softmax output trained on the cross-entropy by gradient descent (learning rate 0.03,
1000 steps). This script reproduces the three results with ``mlpx.MLP`` (the graph library
itself, ``mlpx.graph``, is a separate piece):

1. a perceptron (one sigmoid unit, ``layer_sizes=[2, 1]``) on
   ``make_red_blue(separable=True)``: about 100 % accuracy;
2. the same perceptron on ``make_red_blue()``, red around (0, 0) and (1, 1), blue around
   (0, 1) and (1, 0): a line gets only about half of them right;
3. the tutorial's MLP ``[2, 2, 2]`` (sigmoid hidden layer, softmax output, categorical
   cross-entropy): about 100 %.

Training is plain full-batch gradient descent, as in the tutorial. The tutorial's loss is
the *sum* over the points, mlpx's the *mean*, so its learning rates are multiplied by the
number of points here (0.01 -> 1.0 for the perceptron, 0.03 -> 3.0 for the MLP). Instead
of the decision-boundary plots, the script prints each boundary as a text map. Without
``MLPX_EXAMPLE_QUICK=1`` it also trains the MLP from six random starts with 2 and with 4
hidden units: 2 units sometimes end in a local minimum, 4 are more reliable.

    python examples/tutorial001_red_blue.py [--backend numpy|torch|array_api_strict|cupy]
"""

from __future__ import annotations

import argparse
import os

import numpy as np

import mlpx
from mlpx.datasets import make_red_blue

QUICK = os.environ.get("MLPX_EXAMPLE_QUICK") == "1"
N_POINTS = 100


def train(layer_sizes, output: str, X, y, *, learning_rate: float, epochs: int, backend: str,
          seed: int = 0) -> mlpx.MLP:
    """Full-batch gradient descent on a sigmoid network with the given output activation."""
    activations = ["sigmoid"] * (len(layer_sizes) - 2) + [output]
    model = mlpx.MLP(layer_sizes, activations=activations, seed=seed, backend=backend)
    model.fit(X, y, epochs=epochs, batch_size=None, optimizer="sgd",
              learning_rate=learning_rate, shuffle=False)
    return model


def print_weights(model) -> None:
    """Every layer's W (fan_in x fan_out) and b, converted to NumPy for printing."""
    for layer in range(len(model.layers)):
        W, b = (mlpx.to_numpy(p) for p in model.params[2 * layer:2 * layer + 2])
        rows = "; ".join(" ".join(f"{value:+.3f}" for value in row) for row in W)
        print(f"  W{layer + 1} = [{rows}]   b{layer + 1} = [{' '.join(f'{v:+.3f}' for v in b)}]")


def print_perceptron_line(model) -> None:
    """The perceptron's decision boundary w1 x1 + w2 x2 + b = 0 as a line x2 = m x1 + c."""
    W, b = (mlpx.to_numpy(p) for p in model.params)
    w1, w2, bias = float(W[0, 0]), float(W[1, 0]), float(b[0])
    print(f"  boundary: {w1:+.3f} x1 {w2:+.3f} x2 {bias:+.3f} = 0, i.e. "
          f"x2 = {-w1 / w2:+.3f} x1 {-bias / w2:+.3f}")


def print_map(model, X, y, low: float, high: float, width: int = 44, height: int = 18) -> None:
    """The decision regions as text: '.' predicted red, '+' predicted blue; R, B the points.

    The grid is built on the host with NumPy (mlpx moves NumPy input to the model's device);
    the data and predictions are converted with ``mlpx.to_numpy`` before NumPy touches them.
    """
    xs = np.linspace(low, high, width)
    ys = np.linspace(high, low, height)
    grid = np.array([[x, y_] for y_ in ys for x in xs])
    regions = mlpx.to_numpy(model.predict(grid)).reshape(height, width)
    cells = [["+" if label == 1 else "." for label in row] for row in regions]
    step_x, step_y = (high - low) / (width - 1), (high - low) / (height - 1)
    for (x, y_), label in zip(mlpx.to_numpy(X), mlpx.to_numpy(y)):
        col, row = round((x - low) / step_x), round((high - y_) / step_y)
        if 0 <= col < width and 0 <= row < height:
            cells[row][col] = "B" if label == 1 else "R"
    print(f"  x2 from {high:+.1f} (top) to {low:+.1f}, x1 from {low:+.1f} (left) to {high:+.1f}")
    for row in cells:
        print("  |" + "".join(row) + "|")


def accuracy(model, X, y) -> float:
    return model.evaluate(X, y)["accuracy"]


def perceptron_separable(backend: str) -> None:
    """1. The perceptron on red/blue points that a line separates."""
    X, y = make_red_blue(N_POINTS, seed=0, separable=True, backend=backend)
    model = train([2, 1], "sigmoid", X, y, learning_rate=1.0, epochs=100, backend=backend)
    print(f"1. PERCEPTRON [2, 1] sigmoid on separable red/blue ({N_POINTS} points), "
          "lr 1.0, 100 epochs")
    print(f"  accuracy: {accuracy(model, X, y):.0%}")
    print_weights(model)
    print_perceptron_line(model)


def perceptron_not_separable(X, y, backend: str) -> None:
    """2. The same perceptron on red/blue points that no line separates."""
    model = train([2, 1], "sigmoid", X, y, learning_rate=1.0, epochs=1000, backend=backend)
    print(f"2. PERCEPTRON [2, 1] sigmoid on non-separable red/blue ({N_POINTS} points), "
          "lr 1.0, 1000 epochs")
    print(f"  accuracy: {accuracy(model, X, y):.0%} (no line separates the classes)")
    print_weights(model)
    print_map(model, X, y, -0.6, 1.6)


def mlp_not_separable(X, y, backend: str) -> None:
    """3. The tutorial's MLP: 2 sigmoid hidden units, softmax output, cross-entropy."""
    model = train([2, 2, 2], "softmax", X, y, learning_rate=3.0, epochs=1000, backend=backend)
    print("3. MLP [2, 2, 2] sigmoid hidden, softmax output, categorical cross-entropy, "
          "lr 3.0, 1000 epochs")
    print(f"  accuracy: {accuracy(model, X, y):.0%}")
    print_weights(model)
    print_map(model, X, y, -0.6, 1.6)


def restarts(X, y, backend: str, seeds=range(6)) -> None:
    """Accuracy of the MLP from several random initial weights, 2 vs 4 hidden units."""
    print("MLP from different initial weights (seed), accuracy after 1000 epochs")
    print(f"{'hidden units':>13}" + "".join(f"{f'seed {seed}':>9}" for seed in seeds))
    for hidden in (2, 4):
        results = [accuracy(train([2, hidden, 2], "softmax", X, y, learning_rate=3.0,
                                  epochs=1000, backend=backend, seed=seed), X, y)
                   for seed in seeds]
        print(f"{hidden:>13}" + "".join(f"{value:>9.0%}" for value in results))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="numpy")
    backend = parser.parse_args().backend

    perceptron_separable(backend)
    print("=" * 60)
    X, y = make_red_blue(N_POINTS, seed=0, backend=backend)
    perceptron_not_separable(X, y, backend)
    print("=" * 60)
    mlp_not_separable(X, y, backend)
    if not QUICK:
        print("=" * 60)
        restarts(X, y, backend)


if __name__ == "__main__":
    main()
