"""Tutorial 004 with mlpx: an MLP [2, 16, 8, 1] on moons, then the learning-rate table.

The tutorial builds moons from scratch, splits 80/20, standardises with the training
statistics, trains ``MLP(layer_sizes=[2, 16, 8, 1], activations=['relu', 'relu', 'sigmoid'],
learning_rate=0.1, seed=42)`` with full-batch gradient descent for 2000 epochs, and reports
about 96 % test accuracy; then it compares learning rates (80 % at 0.001, 83 % at 0.01,
96 % at 0.1 to 1.0) and suggests circles as an exercise. This script does all three,
prints the learning-rate comparison as a table beside the tutorial's numbers, and saves
the figures (with matplotlib: ``pip install 'mlpx[plot]'``): ``moons_boundary.png``,
``moons_history.png`` (loss and accuracy, training vs test), ``network.png``,
``lr_comparison.png`` (loss and test accuracy per learning rate) and
``circles_boundary.png``.

    python examples/tutorial004_moons.py [--backend numpy|torch|array_api_strict|cupy]
                                         [--out DIR]

Pictures go to ``examples/output/`` (ignored by git); with ``MLPX_EXAMPLE_QUICK=1`` (the
nox ``examples`` session, which also compares only two learning rates) to a new temporary
folder unless ``--out`` is given.
"""

from __future__ import annotations

import argparse

from _output import QUICK, add_out_argument, have_matplotlib, output_folder, save

import mlpx
from mlpx.datasets import StandardScaler, make_circles, make_moons, train_test_split

EPOCHS = 2000
# The tutorial's test accuracy per learning rate, printed beside mlpx's.
TUTORIAL_ACCURACY = {0.001: 0.80, 0.01: 0.83, 0.1: 0.96, 0.5: 0.96, 1.0: 0.96}


def prepare(X, y, seed: int = 42):
    """80/20 split, standardised with the training split's mean and std."""
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, seed=seed)
    scaler = StandardScaler().fit(X_train)
    return scaler.transform(X_train), scaler.transform(X_test), y_train, y_test


def train_tutorial_network(data, learning_rate: float, backend: str, print_every=None):
    """The tutorial's network, trained by full-batch gradient descent; ``(model, history)``.

    The test split is passed as validation data, so the history also records the test loss
    and accuracy after every epoch (they do not influence the training).
    """
    X_train, X_test, y_train, y_test = data
    model = mlpx.MLP([2, 16, 8, 1], activations=["relu", "relu", "sigmoid"], seed=42,
                     backend=backend)
    callbacks = [mlpx.ProgressBar(print_every=print_every)] if print_every else []
    history = model.fit(X_train, y_train, epochs=EPOCHS, batch_size=None, optimizer="sgd",
                        learning_rate=learning_rate, shuffle=False,
                        validation_data=(X_test, y_test), callbacks=callbacks)
    return model, history


def learning_rate_table(runs: dict, data) -> None:
    """One aligned Markdown-style row per learning rate: final loss, test accuracy, tutorial's."""
    X_test, y_test = data[1], data[3]
    header = ("learning rate", "final loss", "test accuracy", "tutorial")
    widths = [len(text) for text in header]
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("-" * (width + 1) + ":" for width in widths) + "|")
    for rate, (model, history) in runs.items():
        accuracy = model.evaluate(X_test, y_test)["accuracy"]
        tutorial = f"{TUTORIAL_ACCURACY[rate]:.2%}" if rate in TUTORIAL_ACCURACY else "-"
        cells = (str(rate), f"{history['loss'][-1]:.4f}", f"{accuracy:.2%}", tutorial)
        print("| " + " | ".join(f"{cell:>{width}}" for cell, width in zip(cells, widths))
              + " |")
    print(f"(final loss: training loss after {EPOCHS} epochs of full-batch gradient descent; "
          "tutorial: its reported test accuracy)")


def save_boundary(model, X_test, y_test, data: str, learning_rate: float, path) -> None:
    """The model's decision boundary over its test points, titled with the test accuracy."""
    from mlpx import plot

    accuracy = model.evaluate(X_test, y_test)["accuracy"]
    save(plot.decision_boundary(
        model, X_test, y_test,
        title=f"MLP 2-16-8-1 on {data}: test accuracy {accuracy:.0%}\n"
              f"({X_test.shape[0]} test points, lr {learning_rate}, {EPOCHS} epochs)"),
        path)


def save_figures(folder, moons, tutorial, runs: dict, circles, circles_model) -> None:
    """moons_boundary, moons_history, network, lr_comparison and circles_boundary PNGs."""
    import matplotlib.pyplot as plt

    from mlpx import plot

    X_train, X_test, y_train, y_test = moons
    model, history = tutorial
    save_boundary(model, X_test, y_test, "moons", 0.1, folder / "moons_boundary.png")

    figure = plot.history(history)
    figure.suptitle("MLP 2-16-8-1 on moons, full-batch gradient descent, lr 0.1 "
                    "(validation = test split)")
    save(figure, folder / "moons_history.png")

    # All 16 units drawn; dpi 80 keeps the many antialiased lines under 120 KB.
    save(plot.network(model, max_units=16), folder / "network.png", dpi=80)

    _, (loss_ax, accuracy_ax) = plt.subplots(1, 2, figsize=(11.0, 4.2), layout="constrained")
    histories = {rate: run_history for rate, (_, run_history) in runs.items()}
    plot.learning_rates(histories, ax=loss_ax)
    loss_ax.set_title("Training loss")
    loss_ax.set_yscale("log")
    loss_ax.set_ylabel("loss (log scale)")
    plot.learning_rates(histories, metric="val_accuracy", ax=accuracy_ax)
    accuracy_ax.set_title("Test accuracy")
    accuracy_ax.set_ylabel("test accuracy")
    accuracy_ax.get_legend().remove()  # the same runs as the loss panel's legend
    for ax in (loss_ax, accuracy_ax):  # a log epoch axis shows the fast runs' first epochs
        ax.set_xscale("log")
        ax.set_xlabel("epoch (log scale)")
    figure = loss_ax.figure
    figure.suptitle("MLP 2-16-8-1 on moons: full-batch gradient descent at five learning "
                    "rates" if len(runs) == 5 else "MLP 2-16-8-1 on moons: learning rates")
    save(figure, folder / "lr_comparison.png")

    save_boundary(circles_model, circles[1], circles[3], "circles", 0.5,
                  folder / "circles_boundary.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="numpy")
    add_out_argument(parser)
    args = parser.parse_args()
    backend = args.backend

    moons = prepare(*make_moons(n_samples=500, noise=0.2, seed=42, backend=backend))
    X_train, X_test, y_train, y_test = moons
    print(f"Training samples: {X_train.shape[0]}, test samples: {X_test.shape[0]}, "
          f"features: {X_train.shape[1]}")

    model, history = train_tutorial_network(moons, 0.1, backend, print_every=200)
    print("=" * 60)
    print(f"Training accuracy: {model.evaluate(X_train, y_train)['accuracy']:.2%}")
    print(f"Test accuracy:     {model.evaluate(X_test, y_test)['accuracy']:.2%} "
          "(tutorial: 96 %)")
    print("=" * 60)

    print("LEARNING RATE COMPARISON")
    rates = (0.01, 0.1) if QUICK else (0.001, 0.01, 0.1, 0.5, 1.0)
    runs = {rate: train_tutorial_network(moons, rate, backend) for rate in rates}
    learning_rate_table(runs, moons)
    print("=" * 60)

    print("EXERCISE: circles")
    circles = prepare(*make_circles(n_samples=500, noise=0.1, seed=42, backend=backend))
    circles_model, _ = train_tutorial_network(circles, 0.5, backend)
    print(f"circles test accuracy: "
          f"{circles_model.evaluate(circles[1], circles[3])['accuracy']:.2%}")

    if have_matplotlib():
        print("=" * 60)
        save_figures(output_folder(args.out, "tutorial004_moons"), moons, (model, history),
                     runs, circles, circles_model)


if __name__ == "__main__":
    main()
