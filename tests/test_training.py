"""Training end to end: accuracy on the tutorial datasets, the fit loop and its callbacks.

The accuracy thresholds are the acceptance criteria of the training issue. Tests that use
the ``backend`` fixture run on every usable backend (and in each ``--backend`` session); the
others run on NumPy only. Data comes from ``mlpx.datasets`` with fixed seeds, so every test
is deterministic.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import assert_close

import mlpx
from mlpx import datasets, optim

TUTORIAL_LAYERS = [2, 16, 8, 1]
TUTORIAL_ACTIVATIONS = ["relu", "relu", "sigmoid"]
OPTIMIZER_NAMES = ["sgd", "adam", "adamw", "rmsprop", "adagrad"]


def tutorial_net(**kwargs) -> mlpx.MLP:
    """The tutorial-004 network: 2 inputs, ReLU layers of 16 and 8, one sigmoid output."""
    kwargs.setdefault("seed", 42)
    return mlpx.MLP(TUTORIAL_LAYERS, activations=TUTORIAL_ACTIVATIONS, **kwargs)


def split_and_scale(X, y, seed: int = 0, stratify: bool = False):
    """80/20 split, standardised with the statistics of the training split only."""
    X_train, X_test, y_train, y_test = datasets.train_test_split(
        X, y, test_size=0.2, seed=seed, stratify=stratify
    )
    scaler = datasets.StandardScaler().fit(X_train)
    return scaler.transform(X_train), scaler.transform(X_test), y_train, y_test


def moons_split(backend="numpy", dtype="float32", n_samples=500):
    X, y = datasets.make_moons(n_samples, noise=0.2, seed=0, backend=backend, dtype=dtype)
    return split_and_scale(X, y)


@pytest.fixture(scope="module")
def moons():
    """(X_train, X_test, y_train, y_test) of the moons on NumPy: 400 train, 100 test rows."""
    return moons_split()


def host_params(model) -> list[np.ndarray]:
    return [mlpx.to_numpy(p).copy() for p in model.params]


class Recorder(mlpx.Callback):
    """Records every hook call in order, and a NumPy copy of the params after each epoch."""

    def __init__(self) -> None:
        self.events: list[tuple] = []
        self.params: list[list[np.ndarray]] = []
        self.batches_per_epoch: list[int] = []
        self.weight_change: list[float] = []
        self._start = None

    def on_train_begin(self, logs=None):
        self.events.append(("train_begin",))
        self.train_begin_logs = dict(logs or {})

    def on_epoch_begin(self, epoch, logs=None):
        self.events.append(("epoch_begin", epoch))
        self.batches_per_epoch.append(0)
        self._start = host_params(self.model)

    def on_batch_begin(self, batch, logs=None):
        self.events.append(("batch_begin", batch))
        self.batches_per_epoch[-1] += 1

    def on_batch_end(self, batch, logs=None):
        self.events.append(("batch_end", batch))

    def on_epoch_end(self, epoch, logs=None):
        self.events.append(("epoch_end", epoch))
        self.params.append(host_params(self.model))
        self.weight_change.append(max(
            float(np.max(np.abs(new - old))) for new, old in zip(self.params[-1], self._start)
        ))

    def on_train_end(self, logs=None):
        self.events.append(("train_end",))


# --- accuracy on the tutorial datasets (acceptance criteria) -------------------------------


def test_moons_tutorial_network_reaches_95_percent(moons):
    X_train, X_test, y_train, y_test = moons
    model = tutorial_net()
    model.fit(X_train, y_train, epochs=100, batch_size=32, optimizer="adam", learning_rate=0.01)
    assert model.evaluate(X_test, y_test)["accuracy"] >= 0.95
    assert model.score(X_test, y_test) >= 0.95


def test_moons_on_every_backend(backend):
    """The same recipe on each backend, with the data created on that backend."""
    X_train, X_test, y_train, y_test = moons_split(backend=backend)
    model = tutorial_net(backend=backend)
    history = model.fit(X_train, y_train, epochs=100, batch_size=32, optimizer="adam",
                        learning_rate=0.01)
    assert model.evaluate(X_test, y_test)["accuracy"] >= 0.95
    assert history.history["loss"][-1] < history.history["loss"][0]
    predictions = model.predict(X_test)
    accuracy = float(np.mean(mlpx.to_numpy(predictions) == mlpx.to_numpy(y_test)))
    assert accuracy >= 0.95


def test_circles_reaches_95_percent():
    X, y = datasets.make_circles(500, noise=0.1, seed=0)
    X_train, X_test, y_train, y_test = split_and_scale(X, y)
    model = tutorial_net()
    model.fit(X_train, y_train, epochs=100, batch_size=32, optimizer="adam", learning_rate=0.01)
    assert model.evaluate(X_test, y_test)["accuracy"] >= 0.95


def test_xor_truth_table_is_solved():
    X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    y = np.array([0, 1, 1, 0])
    model = mlpx.MLP([2, 8, 1], activations=["tanh", "sigmoid"], seed=0)
    model.fit(X, y, epochs=500, batch_size=None, optimizer="adam", learning_rate=0.05)
    np.testing.assert_array_equal(mlpx.to_numpy(model.predict(X)), y)
    assert model.evaluate(X, y)["accuracy"] == 1.0


def test_noisy_xor_reaches_98_percent():
    X, y = datasets.make_xor(400, noise=0.2, seed=0)
    X_train, X_test, y_train, y_test = split_and_scale(X, y)
    model = mlpx.MLP([2, 8, 1], activations=["tanh", "sigmoid"], seed=0)
    model.fit(X_train, y_train, epochs=50, batch_size=32, optimizer="adam", learning_rate=0.01)
    assert model.evaluate(X_test, y_test)["accuracy"] >= 0.98


def test_digits_softmax_reaches_95_percent():
    pytest.importorskip("sklearn")
    X, y = datasets.load_digits()
    X_train, X_test, y_train, y_test = datasets.train_test_split(
        X / 16.0, y, test_size=0.2, seed=0, stratify=True
    )
    model = mlpx.MLP([64, 64, 10], activations=["relu", "softmax"], seed=0)
    model.fit(X_train, y_train, epochs=30, batch_size=32, optimizer="adam", learning_rate=0.005)
    assert model.loss.name == "categorical_crossentropy"
    assert model.evaluate(X_test, y_test)["accuracy"] >= 0.95
    assert sorted(np.unique(mlpx.to_numpy(model.predict(X_test)))) == list(range(10))


# --- the three regimes of tutorial 002 ----------------------------------------------------


@pytest.mark.parametrize(
    ("batch_size", "epochs", "expected_updates"),
    [(None, 20, 1), (1, 2, 400), (32, 5, math.ceil(400 / 32)), (400, 3, 1), (1000, 3, 1)],
    ids=["full-batch", "stochastic", "mini-batch", "batch-equals-n", "batch-above-n"],
)
def test_training_regimes_count_updates_and_reduce_loss(moons, batch_size, epochs,
                                                        expected_updates):
    X_train, _, y_train, _ = moons
    model = tutorial_net()
    initial_loss = model.evaluate(X_train, y_train)["loss"]
    recorder = Recorder()
    model.fit(X_train, y_train, epochs=epochs, batch_size=batch_size, optimizer="adam",
              learning_rate=0.01, callbacks=[recorder])
    assert recorder.batches_per_epoch == [expected_updates] * epochs
    assert model.evaluate(X_train, y_train)["loss"] < initial_loss


def test_last_partial_batch(backend):
    """10 rows in batches of 4: updates of 4, 4 and 2 rows, on every backend."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(10, 2))
    y = (X[:, 0] > 0).astype(np.int64)
    model = mlpx.MLP([2, 4, 1], activations=["relu", "sigmoid"], seed=0, backend=backend)
    recorder = Recorder()
    model.fit(X, y, epochs=2, batch_size=4, callbacks=[recorder])
    assert recorder.batches_per_epoch == [3, 3]


# --- seeds and reproducibility ------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_same_seed_same_initial_weights_on_every_backend(backend, dtype):
    reference = host_params(tutorial_net(seed=3, dtype=dtype))
    params = host_params(tutorial_net(seed=3, dtype=dtype, backend=backend))
    assert len(params) == len(reference) == 6
    for got, want in zip(params, reference):
        assert got.dtype == want.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(got, want)


def test_different_seeds_give_different_weights():
    first = host_params(tutorial_net(seed=1))
    second = host_params(tutorial_net(seed=2))
    weights = range(0, len(first), 2)  # biases start at zero whatever the seed
    assert all(not np.array_equal(first[i], second[i]) for i in weights)


def _logged(history) -> dict:
    """Every history list except the wall-clock times."""
    return {key: values for key, values in history.history.items() if key != "time"}


def test_two_fits_with_the_same_seed_are_bit_identical(moons):
    X_train, X_test, y_train, y_test = moons
    runs = []
    for _ in range(2):
        model = tutorial_net(seed=5)
        history = model.fit(X_train, y_train, epochs=10, batch_size=32, optimizer="adam",
                            shuffle=True, validation_data=(X_test, y_test))
        runs.append((host_params(model), _logged(history), history.epoch))
    (params_a, logs_a, epochs_a), (params_b, logs_b, epochs_b) = runs
    for a, b in zip(params_a, params_b):
        np.testing.assert_array_equal(a, b)
    assert logs_a == logs_b
    assert epochs_a == epochs_b


def test_shuffle_changes_the_batches(moons):
    X_train, _, y_train, _ = moons
    fitted = {}
    for shuffle in (True, False):
        model = tutorial_net(seed=5)
        model.fit(X_train, y_train, epochs=3, batch_size=32, shuffle=shuffle)
        fitted[shuffle] = host_params(model)
    assert not np.array_equal(fitted[True][0], fitted[False][0])


def test_fit_agrees_with_numpy_to_1e_10_in_float64(backend):
    """The same fit (seed, shuffling, mini-batches, Adam) on each backend and on NumPy."""
    X, y = datasets.make_moons(200, noise=0.2, seed=1, dtype="float64")
    results = {}
    for name in ("numpy", backend):
        model = tutorial_net(seed=7, backend=name, dtype="float64")
        history = model.fit(X, y, epochs=20, batch_size=16, optimizer="adam",
                            learning_rate=0.01, shuffle=True)
        key = name if isinstance(name, str) else "backend"
        results[key] = (host_params(model), _logged(history))
    (params_np, logs_np), (params, logs) = results["numpy"], results["backend"]
    for got, want in zip(params, params_np):
        assert got.dtype == np.float64
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-10)
    np.testing.assert_allclose(logs["loss"], logs_np["loss"], rtol=1e-10)
    np.testing.assert_allclose(logs["accuracy"], logs_np["accuracy"], rtol=1e-10)
    assert logs["lr"] == logs_np["lr"]


# --- optimizers and schedules -------------------------------------------------------------


@pytest.mark.parametrize(
    "optimizer",
    [*OPTIMIZER_NAMES, "sgd-nesterov-object"],
)
def test_every_optimizer_lowers_the_loss(moons, optimizer):
    if optimizer == "sgd-nesterov-object":
        optimizer = optim.SGD(learning_rate=0.1, momentum=0.9, nesterov=True)
    X_train, _, y_train, _ = moons
    model = tutorial_net()
    initial_loss = model.evaluate(X_train, y_train)["loss"]
    history = model.fit(X_train, y_train, epochs=20, batch_size=32, optimizer=optimizer)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert model.evaluate(X_train, y_train)["loss"] < 0.9 * initial_loss


def test_nesterov_sgd_object_fits_moons(moons):
    X_train, X_test, y_train, y_test = moons
    model = tutorial_net()
    model.fit(X_train, y_train, epochs=20, batch_size=32,
              optimizer=optim.SGD(learning_rate=0.1, momentum=0.9, nesterov=True))
    assert model.evaluate(X_test, y_test)["accuracy"] >= 0.95


SCHEDULES = {
    "step": (lambda: optim.StepDecay(0.1, step_size=3, gamma=0.5),
             lambda e: 0.1 * 0.5 ** (e // 3)),
    "exponential": (lambda: optim.ExponentialDecay(0.1, gamma=0.9),
                    lambda e: 0.1 * 0.9**e),
    "invscaling": (lambda: optim.InverseScaling(0.1, power_t=0.5),
                   lambda e: 0.1 / math.sqrt(e + 1)),
    "cosine": (lambda: optim.CosineDecay(0.1, total_epochs=5, min_learning_rate=0.01),
               lambda e: 0.01 + 0.09 * 0.5 * (1 + math.cos(math.pi * min(e, 5) / 5))),
}


@pytest.mark.parametrize("name", list(SCHEDULES))
def test_schedule_sets_the_learning_rate_of_every_epoch(moons, name):
    make_schedule, formula = SCHEDULES[name]
    X_train, _, y_train, _ = moons
    epochs = 8
    history = tutorial_net().fit(X_train, y_train, epochs=epochs, batch_size=100,
                                 optimizer="sgd", learning_rate=make_schedule())
    expected = [formula(epoch) for epoch in range(epochs)]
    assert history.history["lr"] == pytest.approx(expected, rel=1e-12)
    assert len(set(history.history["lr"])) > 1


def test_schedule_drives_the_sgd_step(moons):
    """Plain SGD moves the weights by lr * grad: halving lr halves the first step."""
    X_train, _, y_train, _ = moons
    steps = []
    for schedule in (optim.ExponentialDecay(0.1, gamma=0.5), optim.StepDecay(0.05)):
        model = tutorial_net(dtype="float64")
        start = host_params(model)
        model.fit(X_train, y_train, epochs=1, batch_size=None, optimizer="sgd",
                  learning_rate=schedule)
        steps.append([new - old for new, old in zip(host_params(model), start)])
    for full, half in zip(*steps):
        np.testing.assert_allclose(half, 0.5 * full, rtol=1e-9, atol=1e-15)


def test_reduce_lr_on_plateau_follows_val_loss(moons):
    """lr is multiplied by factor after more than ``patience`` epochs without improvement."""
    X_train, X_test, y_train, y_test = moons
    lr, factor, patience, min_delta = 0.1, 0.5, 1, 0.02
    schedule = optim.ReduceLROnPlateau(lr, monitor="val_loss", factor=factor,
                                       patience=patience, min_delta=min_delta)
    history = tutorial_net().fit(X_train, y_train, epochs=15, batch_size=100, optimizer="sgd",
                                 learning_rate=schedule, validation_data=(X_test, y_test))
    expected, current, best, wait = [], lr, math.inf, 0
    for val_loss in history.history["val_loss"]:
        expected.append(current)
        if val_loss < best - min_delta:
            best, wait = val_loss, 0
        else:
            wait += 1
            if wait > patience:
                current, wait = current * factor, 0
    assert history.history["lr"] == pytest.approx(expected, rel=1e-12)
    assert min(history.history["lr"]) < lr  # the plateau was reached at least once


# --- History ------------------------------------------------------------------------------


def test_history_records_every_epoch(moons):
    X_train, X_test, y_train, y_test = moons
    model = tutorial_net()
    epochs = 6
    history = model.fit(X_train, y_train, epochs=epochs, batch_size=64,
                        validation_data=(X_test, y_test))
    assert isinstance(history, mlpx.History)
    assert model.history_ is history
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy", "lr",
                                     "time"}
    for key, values in history.history.items():
        assert len(values) == epochs, key
        assert all(isinstance(v, float) and math.isfinite(v) for v in values), key
    assert history.epoch == list(range(epochs))
    assert history.wall_time > 0
    assert all(t >= 0 for t in history.history["time"])
    assert sum(history.history["time"]) <= history.wall_time
    assert all(0.0 <= a <= 1.0 for a in history.history["accuracy"])
    assert history["loss"] is history.history["loss"]
    assert history.stop_reason is None
    # The last epoch's validation numbers are those of the final weights.
    final = model.evaluate(X_test, y_test)
    assert history.history["val_loss"][-1] == pytest.approx(final["loss"], rel=1e-6)
    assert history.history["val_accuracy"][-1] == pytest.approx(final["accuracy"])


def test_history_without_validation_has_no_val_keys(moons):
    X_train, _, y_train, _ = moons
    history = tutorial_net().fit(X_train, y_train, epochs=2)
    assert set(history.history) == {"loss", "accuracy", "lr", "time"}


def test_regression_history_logs_mae():
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, size=(200, 2))
    y = np.sin(2 * X[:, 0]) + X[:, 1] ** 2
    model = mlpx.MLP([2, 16, 1], activations=["tanh", "identity"], seed=0)
    epochs = 30
    history = model.fit(X[:150], y[:150], epochs=epochs, batch_size=16, learning_rate=0.01,
                        validation_data=(X[150:], y[150:]))
    assert set(history.history) == {"loss", "mae", "val_loss", "val_mae", "lr", "time"}
    assert all(len(values) == epochs for values in history.history.values())
    assert history.history["mae"][-1] < history.history["mae"][0]
    final = model.evaluate(X[150:], y[150:])
    assert history.history["val_mae"][-1] == pytest.approx(final["mae"], rel=1e-6)
    assert history.history["val_mae"][-1] == pytest.approx(
        float(np.mean(np.abs(mlpx.to_numpy(model.predict(X[150:])) - y[150:]))), rel=1e-5
    )


# --- early stopping -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def overfitting_task():
    """60 noisy training moons, 300 validation moons: a wide network overfits in ~15 epochs."""
    X_train, y_train = datasets.make_moons(60, noise=0.35, seed=1)
    X_val, y_val = datasets.make_moons(300, noise=0.35, seed=2)
    return X_train, y_train, X_val, y_val


def _fit_with_early_stopping(task, monitor):
    X_train, y_train, X_val, y_val = task
    model = mlpx.MLP([2, 64, 64, 1], activations=["relu", "relu", "sigmoid"], seed=0)
    stopper = mlpx.EarlyStopping(monitor=monitor, patience=3, restore_best_weights=True)
    recorder = Recorder()
    history = model.fit(X_train, y_train, epochs=500, batch_size=10, optimizer="adam",
                        learning_rate=0.01, validation_data=(X_val, y_val),
                        callbacks=[stopper, recorder])
    return model, stopper, recorder, history


@pytest.mark.parametrize(("monitor", "pick_best"), [("val_loss", np.argmin),
                                                    ("val_accuracy", np.argmax)])
def test_early_stopping_restores_the_best_weights(overfitting_task, monitor, pick_best):
    model, stopper, recorder, history = _fit_with_early_stopping(overfitting_task, monitor)
    n_run = len(history.epoch)
    assert n_run < 500
    assert history.stop_reason == "early_stopping"
    values = history.history[monitor]
    best = int(pick_best(values))  # the first best epoch: later ties are no improvement
    assert stopper.best_epoch == best
    assert stopper.best == values[best]
    assert n_run == best + 3 + 1  # patience epochs without improvement after the best
    assert best < n_run - 1  # the best epoch is not the last one, so restoring matters
    for got, want in zip(host_params(model), recorder.params[best]):
        np.testing.assert_array_equal(got, want)
    assert not np.array_equal(host_params(model)[0], recorder.params[-1][0])
    final = model.evaluate(*overfitting_task[2:])
    key = "loss" if monitor == "val_loss" else "accuracy"
    assert final[key] == pytest.approx(values[best], rel=1e-6)


def test_early_stopping_without_restore_keeps_the_last_weights(overfitting_task):
    X_train, y_train, X_val, y_val = overfitting_task
    model = mlpx.MLP([2, 64, 64, 1], activations=["relu", "relu", "sigmoid"], seed=0)
    recorder = Recorder()
    history = model.fit(X_train, y_train, epochs=500, batch_size=10, learning_rate=0.01,
                        validation_data=(X_val, y_val),
                        callbacks=[mlpx.EarlyStopping(patience=3, restore_best_weights=False),
                                   recorder])
    assert len(history.epoch) < 500
    for got, want in zip(host_params(model), recorder.params[-1]):
        np.testing.assert_array_equal(got, want)


# --- tol: stop when the weights stop moving -----------------------------------------------


def _fit_until_tol(moons, batch_size):
    X_train, _, y_train, _ = moons
    recorder = Recorder()
    # A decaying learning rate makes the steps shrink, so tol is reached within ~20 epochs.
    history = tutorial_net().fit(X_train, y_train, epochs=200, batch_size=batch_size,
                                 optimizer="sgd", learning_rate=optim.ExponentialDecay(0.5, 0.7),
                                 tol=1e-4, callbacks=[recorder])
    return history, recorder


@pytest.mark.parametrize("batch_size", [None, 32], ids=["full-batch", "mini-batch"])
def test_tol_stops_when_the_largest_change_falls_below_it(moons, batch_size):
    history, recorder = _fit_until_tol(moons, batch_size)
    n_run = len(history.epoch)
    assert 1 < n_run < 200
    assert history.stop_reason == "tol"
    assert recorder.weight_change[-1] < 1e-4
    assert all(change >= 1e-4 for change in recorder.weight_change[:-1])


def test_tol_logs_max_weight_change(moons):
    history, recorder = _fit_until_tol(moons, None)
    changes = history.history["max_weight_change"]
    assert len(changes) == len(history.epoch)
    assert changes[-1] < 1e-4
    np.testing.assert_allclose(changes, recorder.weight_change, rtol=1e-6)


def test_tol_none_runs_every_epoch(moons):
    X_train, _, y_train, _ = moons
    history = tutorial_net().fit(X_train, y_train, epochs=3, optimizer="sgd",
                                 learning_rate=1e-6)
    assert len(history.epoch) == 3
    assert history.stop_reason is None
    assert "max_weight_change" not in history.history


# --- callbacks ----------------------------------------------------------------------------


def test_callback_hooks_run_in_order(moons):
    X_train, _, y_train, _ = moons
    recorder = Recorder()
    model = tutorial_net()
    epochs, batch_size = 3, 150  # 400 rows: batches of 150, 150 and 100
    model.fit(X_train, y_train, epochs=epochs, batch_size=batch_size, callbacks=[recorder])
    expected = [("train_begin",)]
    for epoch in range(epochs):
        expected.append(("epoch_begin", epoch))
        for batch in range(3):
            expected += [("batch_begin", batch), ("batch_end", batch)]
        expected.append(("epoch_end", epoch))
    expected.append(("train_end",))
    assert recorder.events == expected
    assert recorder.model is model
    assert recorder.train_begin_logs["epochs"] == epochs


def test_callback_logs_hold_python_floats(moons):
    X_train, X_test, y_train, y_test = moons
    seen = {}

    class Logs(mlpx.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen[epoch] = dict(logs)

        def on_batch_end(self, batch, logs=None):
            seen.setdefault("batch_loss", []).append(float(logs["loss"]))

    tutorial_net().fit(X_train, y_train, epochs=2, batch_size=200,
                       validation_data=(X_test, y_test), callbacks=[Logs()])
    assert set(seen[0]) >= {"loss", "accuracy", "val_loss", "val_accuracy", "lr", "time"}
    assert all(isinstance(v, float) for v in seen[1].values())
    assert len(seen["batch_loss"]) == 4
    # The epoch loss is the sample-weighted mean of the batch losses.
    assert seen[0]["loss"] == pytest.approx(np.mean(seen["batch_loss"][:2]), rel=1e-6)


def test_callback_stops_training(moons):
    X_train, _, y_train, _ = moons

    class StopAfterThree(mlpx.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 2:
                self.model.stop_training = True

    recorder = Recorder()
    model = tutorial_net()
    history = model.fit(X_train, y_train, epochs=50, callbacks=[StopAfterThree(), recorder])
    assert history.epoch == [0, 1, 2]
    assert all(len(values) == 3 for values in history.history.values())
    assert recorder.events[-1] == ("train_end",)
    # The next fit starts again: stop_training is reset.
    assert len(model.fit(X_train, y_train, epochs=2).epoch) == 2


# --- verbose ------------------------------------------------------------------------------


def test_verbose_shows_a_progress_bar_on_stderr(moons, capsys):
    X_train, _, y_train, _ = moons
    tutorial_net().fit(X_train, y_train, epochs=5, verbose=True)
    out, err = capsys.readouterr()
    assert "5/5" in err  # the bar's final state


def test_verbose_1_is_a_bar_with_the_logs_beside_it(moons, capsys):
    X_train, X_test, y_train, y_test = moons
    tutorial_net().fit(X_train, y_train, epochs=5, verbose=1,
                       validation_data=(X_test, y_test))
    out, err = capsys.readouterr()
    assert out == ""
    assert "5/5" in err
    for key in ("loss=", "accuracy=", "val_loss=", "val_accuracy="):
        assert key in err


def test_verbose_2_prints_one_line_per_epoch_and_no_bar(moons, capsys):
    X_train, X_test, y_train, y_test = moons
    tutorial_net().fit(X_train, y_train, epochs=5, verbose=2,
                       validation_data=(X_test, y_test))
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert [line.split()[1] for line in lines] == [f"{e}/5" for e in range(1, 6)]
    assert all("val_accuracy" in line for line in lines)
    assert err == ""


@pytest.mark.parametrize("verbose", [3, -1, "yes", 1.0, None])
def test_bad_verbose_is_refused_before_training(moons, verbose):
    X_train, _, y_train, _ = moons
    model = tutorial_net()
    before = model.copy_params()
    with pytest.raises(mlpx.MlpxValueError, match="verbose"):
        model.fit(X_train, y_train, epochs=2, verbose=verbose)
    assert all((a == b).all() for a, b in zip(model.params, before))


def test_not_verbose_prints_nothing(moons, capsys):
    X_train, X_test, y_train, y_test = moons
    tutorial_net().fit(X_train, y_train, epochs=5, verbose=False,
                       validation_data=(X_test, y_test))
    out, err = capsys.readouterr()
    assert out == ""
    assert err == ""


# --- fitting again, L2 --------------------------------------------------------------------


def test_second_fit_continues_from_the_current_weights(moons):
    X_train, _, y_train, _ = moons
    model = tutorial_net()
    first = model.fit(X_train, y_train, epochs=5, batch_size=32)
    loss_after_first = model.evaluate(X_train, y_train)["loss"]
    weights_after_first = host_params(model)
    second = model.fit(X_train, y_train, epochs=5, batch_size=32)
    assert model.evaluate(X_train, y_train)["loss"] < loss_after_first
    assert second.history["loss"][0] < first.history["loss"][0]
    assert model.history_ is second
    # A fresh model with those weights would start where the second fit started.
    assert not np.array_equal(host_params(model)[0], weights_after_first[0])


def test_alpha_shrinks_the_weights(moons):
    X_train, _, y_train, _ = moons
    norms = {}
    for alpha in (0.0, 0.01):
        model = tutorial_net(alpha=alpha)
        model.fit(X_train, y_train, epochs=30, batch_size=32, learning_rate=0.01)
        norms[alpha] = sum(float(np.sum(w**2)) for w in host_params(model)[::2])
    assert norms[0.01] < 0.8 * norms[0.0]


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw", "rmsprop", "adagrad",
                                       "momentum"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_training_keeps_the_dtype_end_to_end(backend, optimizer, dtype, moons):
    """No Python or NumPy float64 scalar promotes the weights, on any backend or runner."""
    X_train, _, y_train, _ = moons
    model = tutorial_net(seed=2, dtype=dtype, backend=backend)
    model.alpha = 1e-3
    chosen = mlpx.optim.SGD(momentum=0.9) if optimizer == "momentum" else optimizer
    history = model.fit(X_train, y_train, epochs=3, batch_size=16, optimizer=chosen,
                        learning_rate=mlpx.optim.ExponentialDecay(0.01, gamma=0.9))
    assert all(np.isfinite(history["loss"]))
    xp = backend.xp
    for param, shape in zip(model.params, model.param_shapes(), strict=True):
        assert_close(param, mlpx.to_numpy(param), backend=backend, dtype=getattr(xp, dtype),
                     shape=shape, rtol=0)


def test_a_weight_made_infinite_with_a_finite_loss_stops_the_fit(backend):
    """The end-of-epoch check reads every parameter (as the runner's one flat vector), not
    only the loss: an inf bias set by a callback after the epoch's last step raises
    NonFiniteLossError and the epoch's start weights come back."""
    from mlpx._backend import to_numpy

    X, y = datasets.make_moons(64, noise=0.2, seed=0)
    model = mlpx.MLP([2, 8, 2], ["relu", "softmax"], backend=backend, seed=0)
    model.fit(X, y, epochs=1, batch_size=16)
    start = [to_numpy(p).copy() for p in model.params]

    class Poison(mlpx.Callback):
        def on_batch_end(self, batch, logs=None):
            if batch == 3:  # the epoch's last batch: its loss is already computed
                bias = self.model.layers[-1].b
                self.model.layers[-1].b = backend.xp.full(bias.shape, math.inf,
                                                          dtype=bias.dtype, device=bias.device)

    with pytest.raises(mlpx.NonFiniteLossError, match="weights became NaN or infinite"):
        model.fit(X, y, epochs=1, batch_size=16, callbacks=[Poison()])
    for before, after in zip(start, model.params):
        np.testing.assert_array_equal(before, to_numpy(after))
