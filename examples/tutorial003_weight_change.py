"""Tutorial 003 with mlpx: a 3-3-2-1 ReLU network trained until its weights stop changing.

The tutorial builds a binary classifier with three inputs, a hidden layer of 3 ReLU units
(a 3x3 weight matrix), a second hidden layer of 2 ReLU units (3x2), one sigmoid output
and the logistic loss, and updates the weights by gradient descent "till the difference
between previous Wi and next Wi is negligible". mlpx's ``fit(..., tol=...)`` is that rule:
it stops when no weight or bias moved by more than ``tol`` in an epoch (full-batch, so one
update per epoch), records the largest move per epoch in
``history.history["max_weight_change"]`` and sets ``history.stop_reason = "tol"``.

The captured tutorial lost its code cells, data included, so this script draws a small
3-feature data set from a seeded generator instead: two overlapping Gaussian clouds
(``mlpx.datasets.make_blobs`` with centers (-1, -1, -1) and (1, 1, 1), standard deviation
1.5, seed 3), split 75/25 and standardised. The tutorial then fits scikit-learn's
MLPClassifier; when scikit-learn is installed this script fits it on the same data for
comparison (its ``tol`` watches the loss, not the weights). The figure
``weight_change.png`` (with matplotlib: ``pip install 'mlpx[plot]'``) shows the loss and
the largest weight change per epoch against the ``tol`` line.

    python examples/tutorial003_weight_change.py [--backend numpy|torch|array_api_strict|cupy]
                                                 [--out DIR]

Pictures go to ``examples/output/`` (ignored by git); with ``MLPX_EXAMPLE_QUICK=1`` (the
nox ``examples`` session, which also uses a looser ``tol``) to a new temporary folder unless
``--out`` is given.
"""

from __future__ import annotations

import argparse
import warnings

from _output import QUICK, add_out_argument, have_matplotlib, output_folder, save

import mlpx
from mlpx.datasets import StandardScaler, make_blobs, train_test_split

# The stopping rule: no parameter moves by more than TOL in one gradient-descent step.
# With learning rate 0.1 that means every gradient component is below TOL / 0.1.
TOL = 1e-3 if QUICK else 1e-4
MAX_EPOCHS = 20000
LEARNING_RATE = 0.1


def make_data(backend: str):
    """Two overlapping 3-D Gaussian clouds, 75/25 split, standardised on the training split."""
    X, y = make_blobs(n_samples=1000, centers=[[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]],
                      cluster_std=1.5, seed=3, backend=backend)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, seed=3)
    scaler = StandardScaler().fit(X_train)
    return scaler.transform(X_train), scaler.transform(X_test), y_train, y_test


def train_until_weights_stop(data, backend: str):
    """The tutorial's network, full-batch gradient descent with the weight-change rule."""
    X_train, _, y_train, _ = data
    model = mlpx.MLP([3, 3, 2, 1], activations=["relu", "relu", "sigmoid"],
                     loss="binary_crossentropy", seed=42, backend=backend)
    history = model.fit(X_train, y_train, epochs=MAX_EPOCHS, batch_size=None, optimizer="sgd",
                        learning_rate=LEARNING_RATE, shuffle=False, tol=TOL)
    return model, history


def print_progress(history) -> None:
    """Loss, accuracy and the largest weight change at a few epochs and the last one."""
    n_epochs = len(history.epoch)
    shown = [epoch for epoch in (1, 10, 100, 500, 1000, 2000, 5000, 10000) if epoch < n_epochs]
    print(f"{'epoch':>7}{'loss':>10}{'accuracy':>10}{'max |dW|':>12}")
    for epoch in [*shown, n_epochs]:
        i = epoch - 1
        print(f"{epoch:>7}{history['loss'][i]:>10.4f}{history['accuracy'][i]:>10.2%}"
              f"{history['max_weight_change'][i]:>12.2e}")


def print_weights(model) -> None:
    """Each layer's W (fan_in x fan_out) and b, as the tutorial lays them out."""
    for layer, name in enumerate(("hidden 1 (3x3)", "hidden 2 (3x2)", "output (2x1)")):
        W, b = (mlpx.to_numpy(p) for p in model.params[2 * layer:2 * layer + 2])
        rows = "; ".join(" ".join(f"{value:+.3f}" for value in row) for row in W)
        print(f"  {name:<15} W = [{rows}]  b = [{' '.join(f'{v:+.3f}' for v in b)}]")


def save_figure(folder, history) -> None:
    """weight_change.png: the loss, and max |dW| per epoch on a log scale with the tol line."""
    import matplotlib.pyplot as plt

    from mlpx import plot

    _, (loss_ax, change_ax) = plt.subplots(1, 2, figsize=(10.0, 4.0), layout="constrained")
    plot.history(history, ax=loss_ax)  # one Axes: the loss only
    loss_ax.set_title("Training loss (logistic)")
    epochs = [epoch + 1 for epoch in history.epoch]
    change_ax.plot(epochs, history["max_weight_change"], color=plot.OKABE_ITO[0],
                   linewidth=1.8, label="largest |change| of a weight or bias")
    change_ax.axhline(TOL, color=plot.OKABE_ITO[1], linestyle="--", linewidth=1.5,
                      label=f"tol = {TOL:g}")
    if history.stop_reason == "tol":
        change_ax.axvline(epochs[-1], color="0.4", linestyle=":", linewidth=1.2,
                          label=f"stopped at epoch {epochs[-1]}")
    change_ax.set_yscale("log")
    change_ax.set_xlabel("epoch")
    change_ax.set_ylabel("max |W(t) - W(t-1)| (log scale)")
    change_ax.set_title("Weight change per epoch")
    change_ax.grid(True, which="both", alpha=0.3)
    change_ax.legend(loc="upper right", framealpha=0.95)
    figure = loss_ax.figure
    figure.suptitle(f"MLP 3-3-2-1 (relu, relu, sigmoid), full-batch gradient descent at lr "
                    f"{LEARNING_RATE} until no weight moves by more than tol")
    save(figure, folder / "weight_change.png")


def sklearn_comparison(data) -> None:
    """scikit-learn's MLPClassifier with the same layers, full-batch SGD, on the same data."""
    try:
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.neural_network import MLPClassifier
    except ImportError:
        print("scikit-learn is not installed; skipping the MLPClassifier comparison "
              "(pip install scikit-learn)")
        return
    X_train, X_test, y_train, y_test = (mlpx.to_numpy(part) for part in data)
    classifier = MLPClassifier(hidden_layer_sizes=(3, 2), activation="relu", solver="sgd",
                               batch_size=X_train.shape[0], learning_rate_init=LEARNING_RATE,
                               momentum=0.0, alpha=0.0, max_iter=MAX_EPOCHS, tol=1e-4,
                               random_state=42)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        classifier.fit(X_train, y_train)
    print(f"scikit-learn MLPClassifier((3, 2), relu, sgd, full batch, lr {LEARNING_RATE}): "
          f"stopped after {classifier.n_iter_} epochs (loss improved by < 1e-4 for 10 epochs)")
    print(f"  train accuracy {classifier.score(X_train, y_train):.2%}, "
          f"test accuracy {classifier.score(X_test, y_test):.2%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="numpy")
    add_out_argument(parser)
    args = parser.parse_args()
    backend = args.backend

    data = make_data(backend)
    X_train, X_test, y_train, y_test = data
    print(f"Data: {X_train.shape[0]} training and {X_test.shape[0]} test samples, "
          f"{X_train.shape[1]} features (seeded Gaussian clouds; the tutorial's data is lost)")
    print(f"Network [3, 3, 2, 1] relu/relu/sigmoid, logistic loss, full-batch gradient "
          f"descent, lr {LEARNING_RATE}, stop when max |dW| < {TOL:g}")
    print("=" * 60)
    model, history = train_until_weights_stop(data, backend)
    print_progress(history)
    print("=" * 60)
    if history.stop_reason == "tol":
        print(f"The weights stopped changing after {len(history.epoch)} epochs "
              f"(stop_reason {history.stop_reason!r}, {history.wall_time:.2f} s).")
    else:
        print(f"The weights still moved by more than {TOL:g} after {MAX_EPOCHS} epochs "
              f"(stop_reason {history.stop_reason!r}).")
    print(f"Training accuracy: {model.evaluate(X_train, y_train)['accuracy']:.2%}")
    print(f"Test accuracy:     {model.evaluate(X_test, y_test)['accuracy']:.2%}")
    print("Learned weights:")
    print_weights(model)
    print("=" * 60)
    sklearn_comparison(data)
    if have_matplotlib():
        print("=" * 60)
        save_figure(output_folder(args.out, "tutorial003_weight_change"), history)


if __name__ == "__main__":
    main()
