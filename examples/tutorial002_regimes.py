"""Tutorial 002 with mlpx: three training regimes, MSE vs cross-entropy, softmax on digits.

The tutorial derives backpropagation for a 3-layer network (inputs, one sigmoid hidden
layer, a sigmoid output) with the squared error ``J = 1/(2N) sum (a2 - Y)^2``, then
compares three ways of training it: gradient descent on all samples per update,
stochastic gradient descent (one sample per update) and mini-batch gradient descent; it
ends with softmax, cross-entropy and, as the next step, handwritten digits. The captured
text gives no data set, so this script uses moons. It runs:

(a) the sigmoid network with squared error trained full-batch (``batch_size=None``),
    stochastic (``batch_size=1``) and mini-batch (``batch_size=32``) from the same initial
    weights, with the loss after a few epochs, the test accuracy and the time taken;
(b) the same network with squared error (``loss="mse"``) and with cross-entropy
    (``loss="binary_crossentropy"``), test accuracy per epoch;
(c) a softmax output with categorical cross-entropy on the 8x8 digits (needs
    scikit-learn, which bundles them), test accuracy (about 96 %).

mlpx's ``mse`` is ``mean((a2 - Y)^2)``, twice the tutorial's J for one output; the factor
only rescales the learning rate. With ``loss="mse"`` the model is a regressor (its metric
is the mean absolute error), so the accuracies of (a) and (b) come from thresholding the
output at 0.5 (``threshold_accuracy`` below).

With matplotlib (``pip install 'mlpx[plot]'``) it saves ``regimes.png`` (the three
regimes' training loss per epoch and per gradient update), ``mse_vs_ce.png`` (test accuracy
per epoch with each loss) and ``digits_confusion.png`` (the digits test set).

    python examples/tutorial002_regimes.py [--backend numpy|torch|array_api_strict|cupy]
                                           [--out DIR]

Pictures go to ``examples/output/`` (ignored by git); with ``MLPX_EXAMPLE_QUICK=1`` (the
nox ``examples`` session, which also trains for fewer epochs) to a new temporary folder
unless ``--out`` is given.
"""

from __future__ import annotations

import argparse

from _output import QUICK, add_out_argument, have_matplotlib, output_folder, save

import mlpx
from mlpx.datasets import StandardScaler, load_digits, make_moons, train_test_split

REGIME_EPOCHS = 10 if QUICK else 50
LOSS_EPOCHS = 100 if QUICK else 200
DIGITS_EPOCHS = 10 if QUICK else 30
HIDDEN = 8
LEARNING_RATE = 1.0


def prepare(X, y, seed: int = 42, stratify: bool = False):
    """80/20 split, standardised with the training split's mean and std."""
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, seed=seed,
                                                        stratify=stratify)
    scaler = StandardScaler().fit(X_train)
    return scaler.transform(X_train), scaler.transform(X_test), y_train, y_test


def sigmoid_network(loss: str, backend: str) -> mlpx.MLP:
    """The tutorial's 3-layer network: 2 inputs, a sigmoid hidden layer, 1 sigmoid output."""
    return mlpx.MLP([2, HIDDEN, 1], activations=["sigmoid", "sigmoid"], loss=loss, seed=42,
                    backend=backend)


def threshold_accuracy(model: mlpx.MLP, X, y) -> float:
    """Fraction of samples whose output is on the right side of 0.5 (works for mse too)."""
    xp = model.xp
    predicted_one = model.forward(X)[:, 0] >= 0.5
    return float(xp.mean(xp.astype(predicted_one == (y == 1), model.dtype)))


class TestAccuracy(mlpx.Callback):
    """Adds ``test_accuracy`` to every epoch's logs, so the History records it."""

    def __init__(self, X, y) -> None:
        self.X, self.y = X, y

    def on_epoch_end(self, epoch, logs=None):
        logs["test_accuracy"] = threshold_accuracy(self.model, self.X, self.y)


class TrainingSetLoss(mlpx.Callback):
    """Adds ``train_set_loss``, the loss on the whole training set after each epoch.

    The History's ``loss`` is the mean of the epoch's batch losses, each taken before its
    update; for a fair comparison of the regimes, this one is measured after the epoch.
    """

    def __init__(self, X, y) -> None:
        self.X, self.y = X, y

    def on_epoch_end(self, epoch, logs=None):
        logs["train_set_loss"] = self.model.evaluate(self.X, self.y)["loss"]


def checkpoints(epochs: int, marks=(1, 2, 5, 10, 20, 25, 50, 100, 150, 200)) -> list[int]:
    """The 1-based epochs to show in a table: the marks up to ``epochs``, and the last."""
    shown = [mark for mark in marks if mark <= epochs]
    return shown if shown[-1] == epochs else [*shown, epochs]


def compare_regimes(moons, backend: str) -> dict:
    """(a) full-batch, stochastic and mini-batch gradient descent from the same weights.

    Returns ``{name: (history, updates_per_epoch, initial_loss)}`` for the figure.
    """
    X_train, X_test, y_train, y_test = moons
    n_train = X_train.shape[0]
    regimes = [("full-batch GD", None), ("stochastic GD", 1), ("mini-batch GD", 32)]
    print(f"(a) THREE TRAINING REGIMES: [2, {HIDDEN}, 1] sigmoid, loss='mse', "
          f"SGD lr={LEARNING_RATE}, {REGIME_EPOCHS} epochs")
    histories, accuracies = {}, {}
    initial_loss = sigmoid_network("mse", backend).evaluate(X_train, y_train)["loss"]
    for name, batch_size in regimes:
        model = sigmoid_network("mse", backend)
        histories[name] = model.fit(X_train, y_train, epochs=REGIME_EPOCHS,
                                    batch_size=batch_size, optimizer="sgd",
                                    learning_rate=LEARNING_RATE, shuffle=True,
                                    callbacks=[TrainingSetLoss(X_train, y_train)])
        accuracies[name] = threshold_accuracy(model, X_test, y_test)

    print("loss (mse) on the whole training set after each epoch")
    print(f"{'epoch':>6}" + "".join(f"{name:>16}" for name, _ in regimes))
    print(f"{0:>6}" + f"{initial_loss:>16.4f}" * len(regimes))
    for epoch in checkpoints(REGIME_EPOCHS):
        losses = "".join(f"{histories[name]['train_set_loss'][epoch - 1]:>16.4f}"
                         for name, _ in regimes)
        print(f"{epoch:>6}{losses}")

    print(f"{'regime':<15}{'batch_size':>11}{'updates/epoch':>15}{'test acc':>10}"
          f"{'ms/epoch':>10}{'wall s':>8}")
    for name, batch_size in regimes:
        history = histories[name]
        updates = -(-n_train // (batch_size or n_train))
        ms_per_epoch = 1000 * sum(history["time"]) / len(history["time"])
        print(f"{name:<15}{batch_size!s:>11}{updates:>15}{accuracies[name]:>10.2%}"
              f"{ms_per_epoch:>10.2f}{history.wall_time:>8.2f}")
    print("Per epoch, stochastic GD makes the most updates and lowers the loss the most;\n"
          "full-batch GD makes one smooth update per epoch, the cheapest epoch of the three.")
    return {name: (histories[name], -(-n_train // (batch_size or n_train)), initial_loss)
            for name, batch_size in regimes}


def compare_losses(moons, backend: str) -> dict:
    """(b) squared error vs cross-entropy on the same network, mini-batches of 32."""
    X_train, X_test, y_train, y_test = moons
    losses = ["mse", "binary_crossentropy"]
    print(f"(b) MSE vs CROSS-ENTROPY: [2, {HIDDEN}, 1] sigmoid, mini-batch 32, "
          f"SGD lr={LEARNING_RATE}, {LOSS_EPOCHS} epochs, same initial weights")
    histories = {}
    for loss in losses:
        model = sigmoid_network(loss, backend)
        histories[loss] = model.fit(X_train, y_train, epochs=LOSS_EPOCHS, batch_size=32,
                                    optimizer="sgd", learning_rate=LEARNING_RATE,
                                    callbacks=[TestAccuracy(X_test, y_test)])
    print("test accuracy after each epoch")
    print(f"{'epoch':>6}" + "".join(f"{loss:>22}" for loss in losses))
    for epoch in checkpoints(LOSS_EPOCHS):
        row = "".join(f"{histories[loss]['test_accuracy'][epoch - 1]:>22.2%}" for loss in losses)
        print(f"{epoch:>6}{row}")
    reached = []
    for loss in losses:
        accuracy = histories[loss]["test_accuracy"]
        first = next((epoch + 1 for epoch, value in enumerate(accuracy) if value >= 0.95), None)
        reached.append(f"{first}" if first else f"not within {LOSS_EPOCHS}")
    print(f"{'>=95%':>6}" + "".join(f"{text:>22}" for text in reached) + "  (first epoch)")
    print("With a sigmoid output, squared error multiplies the output error by a2 (1 - a2),\n"
          "which is small where the output saturates; cross-entropy's dJ/dz2 is (a2 - y) / N.")
    return histories


def softmax_digits(backend: str):
    """(c) softmax output and categorical cross-entropy on the 8x8 handwritten digits."""
    print(f"(c) SOFTMAX ON DIGITS: [64, 32, 10] sigmoid hidden, softmax output, "
          f"categorical cross-entropy, mini-batch 32, SGD lr=0.5, {DIGITS_EPOCHS} epochs")
    try:
        X, y = load_digits(backend=backend)
    except ImportError as exc:
        print(f"skipped: {exc}")
        return None
    X_train, X_test, y_train, y_test = prepare(X, y, stratify=True)
    model = mlpx.MLP([64, 32, 10], activations=["sigmoid", "softmax"], seed=42,
                     backend=backend)
    history = model.fit(X_train, y_train, epochs=DIGITS_EPOCHS, batch_size=32,
                        optimizer="sgd", learning_rate=0.5, validation_data=(X_test, y_test))
    print(f"{'epoch':>6}{'loss':>10}{'train acc':>11}{'test acc':>10}")
    for epoch in checkpoints(DIGITS_EPOCHS, marks=(1, 2, 5, 10, 20, 30)):
        print(f"{epoch:>6}{history['loss'][epoch - 1]:>10.4f}"
              f"{history['accuracy'][epoch - 1]:>11.2%}{history['val_accuracy'][epoch - 1]:>10.2%}")
    accuracy = model.evaluate(X_test, y_test)["accuracy"]
    print(f"digits: {X_train.shape[0]} training and {X_test.shape[0]} test images, "
          f"test accuracy: {accuracy:.2%} (expected >= 95 %), {history.wall_time:.2f} s")
    return y_test, model.predict(X_test), accuracy


def save_regimes_figure(folder, regimes: dict) -> None:
    """regimes.png: training loss against epochs and against gradient updates."""
    import matplotlib.pyplot as plt

    from mlpx import plot

    _, (epoch_ax, step_ax) = plt.subplots(1, 2, figsize=(11.0, 4.3), layout="constrained")
    for i, (name, (history, updates, initial_loss)) in enumerate(regimes.items()):
        losses = [initial_loss, *history["train_set_loss"]]
        epochs = list(range(len(losses)))
        style = {"color": plot.OKABE_ITO[i], "linestyle": plot.LINESTYLES[i], "linewidth": 1.8,
                 "label": f"{name} ({updates} update{'s' if updates > 1 else ''}/epoch)"}
        epoch_ax.plot(epochs, losses, **style)
        step_ax.plot([epoch * updates for epoch in epochs[1:]], losses[1:], **style)
    epoch_ax.set_xlabel("epoch (passes over the 400 training samples)")
    epoch_ax.set_title("Per epoch: stochastic GD learns fastest")
    step_ax.set_xscale("log")
    step_ax.set_xlabel("gradient updates (log scale)")
    step_ax.set_title("Per update: mini-batch GD \u2248 full-batch GD")
    for ax in (epoch_ax, step_ax):
        ax.set_ylabel("training loss (mse)")
        ax.grid(True, alpha=0.3)
    epoch_ax.legend()
    epoch_ax.figure.suptitle(f"Three regimes of gradient descent: MLP 2-{HIDDEN}-1 sigmoid on "
                             f"moons, squared error, lr {LEARNING_RATE}, same start")
    save(epoch_ax.figure, folder / "regimes.png")


def save_loss_figure(folder, histories: dict) -> None:
    """mse_vs_ce.png: test accuracy per epoch with squared error and with cross-entropy."""
    from mlpx import plot

    names = {"mse": "squared error (mse)", "binary_crossentropy": "cross-entropy"}
    figure = plot.learning_rates({names[loss]: history for loss, history in histories.items()},
                                 metric="test_accuracy")
    ax = figure.axes[0]
    ax.axhline(0.95, color="0.4", linestyle=":", linewidth=1.2, label="95 %")
    ax.set_ylabel("test accuracy")
    ax.set_title(f"Squared error vs cross-entropy: MLP 2-{HIDDEN}-1 sigmoid on moons,\n"
                 f"mini-batch 32, lr {LEARNING_RATE}, same start")
    ax.legend(loc="lower right")
    save(figure, folder / "mse_vs_ce.png")


def save_confusion_figure(folder, digits) -> None:
    """digits_confusion.png: the softmax network's confusion matrix on the test images."""
    from mlpx import plot

    y_test, y_pred, _ = digits
    figure = plot.confusion_matrix(y_test, y_pred)
    ax = figure.axes[0]
    ax.set_title(f"{ax.get_title()}\nMLP 64-32-10 softmax, {y_test.shape[0]} test digits")
    save(figure, folder / "digits_confusion.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="numpy")
    add_out_argument(parser)
    args = parser.parse_args()
    backend = args.backend

    moons = prepare(*make_moons(n_samples=500, noise=0.2, seed=42, backend=backend))
    print(f"moons: {moons[0].shape[0]} training and {moons[1].shape[0]} test samples, "
          f"backend {backend}")
    print("=" * 72)
    regimes = compare_regimes(moons, backend)
    print("=" * 72)
    losses = compare_losses(moons, backend)
    print("=" * 72)
    digits = softmax_digits(backend)

    if have_matplotlib():
        print("=" * 72)
        folder = output_folder(args.out, "tutorial002_regimes")
        save_regimes_figure(folder, regimes)
        save_loss_figure(folder, losses)
        if digits is not None:
            save_confusion_figure(folder, digits)


if __name__ == "__main__":
    main()
