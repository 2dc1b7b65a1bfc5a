"""Checkpoints and resuming (bit-exact on NumPy), and Ctrl-C during fit."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest

import mlpx
from mlpx import MlpxFileError, MlpxValueError
from mlpx.callbacks import Callback, Checkpoint
from mlpx.io import read_checkpoint
from mlpx.optim import SGD, Adam, ReduceLROnPlateau, RMSprop, StepDecay
from tests.helpers import assert_close


def _data(n_samples=120, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_samples, 3))
    y = (X[:, 0] * X[:, 1] + 0.3 * X[:, 2] > 0).astype(int)
    return X, y


class StopAfter(Callback):
    """Stops training at the end of epoch ``epoch`` (as a crash after a save would)."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            self.model.stop_training = True


class SigintAt(Callback):
    """Sends this process SIGINT (Ctrl-C) after batch ``batch`` of epoch ``epoch``."""

    def __init__(self, epoch, batch):
        self.epoch, self.batch, self.current = epoch, batch, None
        self.params_at_signal = None

    def on_epoch_begin(self, epoch, logs=None):
        self.current = epoch

    def on_batch_end(self, batch, logs=None):
        if (self.current, batch) == (self.epoch, self.batch):
            self.params_at_signal = [mlpx.to_numpy(p).copy() for p in self.model.params]
            os.kill(os.getpid(), signal.SIGINT)


def _model(seed=1, backend="numpy", **kwargs):
    return mlpx.MLP([3, 16, 8, 1], activations=["relu", "tanh", "sigmoid"], seed=seed,
                    backend=backend, **kwargs)


def _host(model):
    return [mlpx.to_numpy(p).copy() for p in model.params]


def _assert_same_history(resumed, full):
    assert resumed.epoch == full.epoch
    for key in full.history:
        if key != "time":
            assert resumed.history[key] == full.history[key], key


FITS = {
    "adam+plateau": dict(optimizer=Adam(), batch_size=16,
                         learning_rate=ReduceLROnPlateau(0.02, patience=0, min_delta=0.05,
                                                         factor=0.5)),
    "momentum+step": dict(optimizer=SGD(momentum=0.9, nesterov=True), batch_size=10,
                          learning_rate=StepDecay(0.05, step_size=3, gamma=0.5)),
    "rmsprop+weights+val": dict(optimizer=RMSprop(), batch_size=32, learning_rate=0.005,
                                sample_weight=np.linspace(0.0, 2.0, 120)),
    "full-batch+tol": dict(optimizer="sgd", batch_size=None, learning_rate=0.1, tol=1e-12),
}


@pytest.mark.parametrize("name", FITS)
def test_a_resumed_fit_ends_bit_for_bit_where_the_uninterrupted_one_does(tmp_path, name):
    X, y = _data()
    path = tmp_path / "run.ckpt"

    def kwargs():  # fresh schedule and optimizer objects for each fit
        import copy

        return copy.deepcopy(FITS[name])

    validation = (X[:30], y[:30]) if "val" in name else None
    full = _model(alpha=1e-3)
    full_history = full.fit(X, y, epochs=10, validation_data=validation, **kwargs())

    first = _model(alpha=1e-3)
    first.fit(X, y, epochs=10, validation_data=validation,
              callbacks=[Checkpoint(path, every=2), StopAfter(5)], **kwargs())
    assert read_checkpoint(path)[2]["epoch"] == 5

    resumed = _model(seed=12345, alpha=1e-3)  # another seed: the checkpoint's RNG state wins
    history = resumed.fit(X, y, epochs=10, validation_data=validation, resume_from=path,
                          **kwargs())
    for got, want in zip(_host(resumed), _host(full)):
        np.testing.assert_array_equal(got, want)
    _assert_same_history(history, full_history)
    if name == "adam+plateau":
        assert len(set(full_history["lr"])) > 2  # the plateau schedule's state mattered


def test_ctrl_c_then_resume_matches_the_uninterrupted_run(tmp_path):
    X, y = _data()
    path = tmp_path / "run.ckpt"
    full = _model()
    full_history = full.fit(X, y, epochs=8, batch_size=16)

    interrupted = _model()
    signal_at = SigintAt(epoch=4, batch=2)
    history = interrupted.fit(X, y, epochs=8, batch_size=16,
                              callbacks=[Checkpoint(path), signal_at])
    assert history.interrupted and history.stop_reason == "interrupted"
    assert history.epoch == [0, 1, 2, 3]  # epoch 4 stopped after its third step
    for got, want in zip(_host(interrupted), signal_at.params_at_signal):
        np.testing.assert_array_equal(got, want)  # the weights of that step, kept
    assert read_checkpoint(path)[2]["epoch"] == 3
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler

    resumed = _model(seed=7)
    resumed_history = resumed.fit(X, y, epochs=8, batch_size=16, resume_from=path)
    for got, want in zip(_host(resumed), _host(full)):
        np.testing.assert_array_equal(got, want)
    _assert_same_history(resumed_history, full_history)
    assert not resumed_history.interrupted


def test_resume_on_every_backend(backend, tmp_path):
    X, y = _data(60)
    path = tmp_path / "run.ckpt"
    full = _model(backend=backend)
    full.fit(X, y, epochs=5, batch_size=16, learning_rate=0.01)
    first = _model(backend=backend)
    first.fit(X, y, epochs=5, batch_size=16, learning_rate=0.01,
              callbacks=[Checkpoint(path), StopAfter(2)])
    resumed = _model(seed=3, backend=backend)
    resumed.fit(X, y, epochs=5, batch_size=16, learning_rate=0.01, resume_from=path)
    for got, want in zip(resumed.params, full.params):
        assert_close(got, want, backend=backend, rtol=1e-6, atol=1e-7)


def test_ctrl_c_on_every_backend_keeps_the_step_weights(backend):
    X, y = _data(60)
    model = _model(backend=backend)
    signal_at = SigintAt(epoch=1, batch=1)
    history = model.fit(X, y, epochs=4, batch_size=16, callbacks=[signal_at])
    assert history.interrupted and history.epoch == [0]
    for got, want in zip(model.params, signal_at.params_at_signal):
        assert_close(got, want, backend=backend, rtol=0)


def test_a_second_ctrl_c_interrupts_at_once_and_keeps_the_epoch_start(tmp_path):
    X, y = _data()

    class TwoSignals(Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch
            if epoch == 2:
                self.start = _host(self.model)

        def on_batch_end(self, batch, logs=None):
            if self.epoch == 2 and batch == 1:
                os.kill(os.getpid(), signal.SIGINT)
                os.kill(os.getpid(), signal.SIGINT)

    model = _model()
    callback = TwoSignals()
    with pytest.raises(KeyboardInterrupt):
        model.fit(X, y, epochs=5, batch_size=16, callbacks=[callback])
    for got, want in zip(_host(model), callback.start):
        np.testing.assert_array_equal(got, want)
    assert model.history_.interrupted
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_checkpoint_every_n_and_one_file(tmp_path):
    X, y = _data()
    path = tmp_path / "run.ckpt"
    checkpoint = Checkpoint(path, every=3)
    _model().fit(X, y, epochs=7, batch_size=32, callbacks=[checkpoint])
    assert checkpoint.last_saved_epoch == 5
    assert os.listdir(tmp_path) == ["run.ckpt"]
    config, tensors, saved, _ = read_checkpoint(path)
    assert saved["epoch"] == 5 and saved["history_epochs"] == list(range(6))
    assert saved["optimizer"]["name"] == "Adam" and saved["optimizer"]["step"] == 6 * 4
    assert sorted(tensors) == ["W1", "W2", "W3", "b1", "b2", "b3", "optimizer.m",
                               "optimizer.v"]
    assert len(saved["history"]["loss"]) == 6
    # a checkpoint is also a model file
    assert mlpx.load(path).layer_sizes == [3, 16, 8, 1]


def test_save_best_keeps_the_best_epoch(tmp_path):
    X, y = _data()
    path = tmp_path / "best.ckpt"
    checkpoint = Checkpoint(path, save_best=True, monitor="val_loss")
    model = _model()
    history = model.fit(X[:90], y[:90], epochs=30, batch_size=16, learning_rate=0.05,
                        validation_data=(X[90:], y[90:]), callbacks=[checkpoint])
    best_epoch = int(np.argmin(history["val_loss"]))
    assert checkpoint.last_saved_epoch == best_epoch
    assert checkpoint.best == min(history["val_loss"])
    assert read_checkpoint(path)[2]["epoch"] == best_epoch


def test_resume_past_the_last_epoch_trains_nothing(tmp_path):
    X, y = _data()
    path = tmp_path / "run.ckpt"
    trained = _model()
    trained.fit(X, y, epochs=4, callbacks=[Checkpoint(path)])
    again = _model(seed=9)
    history = again.fit(X, y, epochs=4, resume_from=path)
    assert history.epoch == [0, 1, 2, 3]
    for got, want in zip(_host(again), _host(trained)):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("make, error, match", [
    (lambda p: Checkpoint(p, every=0), MlpxValueError, "every"),
    (lambda p: Checkpoint(p, every=True), MlpxValueError, "every"),
    (lambda p: Checkpoint(p, save_best="yes"), TypeError, "save_best"),
    (lambda p: Checkpoint(p.parent / "missing" / "x.ckpt"), FileNotFoundError, "does not exist"),
    (lambda p: Checkpoint(p.parent), MlpxValueError, "directory"),
    (lambda p: Checkpoint(3), TypeError, "path"),
])
def test_bad_checkpoint_arguments(tmp_path, make, error, match):
    with pytest.raises(error, match=match):
        make(tmp_path / "x.ckpt")


def test_save_best_on_a_key_that_is_not_logged_fails_before_training(tmp_path):
    X, y = _data()
    model = _model()
    before = _host(model)
    with pytest.raises(MlpxValueError, match="val_loss"):
        model.fit(X, y, epochs=2, callbacks=[Checkpoint(tmp_path / "c", save_best=True)])
    for got, want in zip(_host(model), before):
        np.testing.assert_array_equal(got, want)


@pytest.fixture
def checkpoint_file(tmp_path):
    X, y = _data()
    path = tmp_path / "run.ckpt"
    _model().fit(X, y, epochs=2, batch_size=32, callbacks=[Checkpoint(path)])
    return path


@pytest.mark.parametrize("change, error, match", [
    (dict(layer_sizes=[3, 16, 4, 1]), MlpxValueError, "build the model"),
    (dict(dtype="float64"), MlpxValueError, "build the model"),
    (dict(optimizer="sgd"), MlpxValueError, "Adam optimizer"),
    (dict(learning_rate=StepDecay(0.01)), MlpxValueError, "learning_rate"),
    (dict(n_samples=100), MlpxValueError, "120 samples"),
    (dict(labels="text"), MlpxValueError, "classes"),
])
def test_resume_refuses_a_checkpoint_of_another_fit(checkpoint_file, change, error, match):
    X, y = _data(change.get("n_samples", 120))
    if change.get("labels") == "text":
        y = np.array(["no", "yes"])[y]
    sizes = change.get("layer_sizes", [3, 16, 8, 1])
    model = mlpx.MLP(sizes, activations=["relu", "tanh", "sigmoid"], seed=1,
                     dtype=change.get("dtype", "float32"))
    before = _host(model)
    state = model.shuffle_rng.bit_generator.state
    with pytest.raises(error, match=match):
        model.fit(X, y, epochs=4, batch_size=32, optimizer=change.get("optimizer", "adam"),
                  learning_rate=change.get("learning_rate"), resume_from=checkpoint_file)
    for got, want in zip(_host(model), before):
        np.testing.assert_array_equal(got, want)
    assert model.shuffle_rng.bit_generator.state == state
    assert model.history_ is None


def test_resume_from_a_plain_model_file_or_nothing(tmp_path):
    X, y = _data()
    model = _model()
    model.save(tmp_path / "model.safetensors")
    with pytest.raises(MlpxFileError, match="not a checkpoint"):
        model.fit(X, y, epochs=2, resume_from=tmp_path / "model.safetensors")
    with pytest.raises(FileNotFoundError):
        model.fit(X, y, epochs=2, resume_from=tmp_path / "none.ckpt")


def test_a_corrupt_checkpoint_state_is_refused(checkpoint_file):
    import json
    import struct

    data = checkpoint_file.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + length])
    saved = json.loads(header["__metadata__"]["checkpoint"])
    saved["rng"] = {"bit_generator": "PCG64", "state": "nonsense"}
    header["__metadata__"]["checkpoint"] = json.dumps(saved)
    text = json.dumps(header).encode()
    checkpoint_file.write_bytes(struct.pack("<Q", len(text)) + text + data[8 + length:])
    X, y = _data()
    with pytest.raises(MlpxFileError, match="random generator"):
        _model().fit(X, y, epochs=3, resume_from=checkpoint_file)


def test_checkpoint_outside_fit_says_how_to_use_it(tmp_path):
    checkpoint = Checkpoint(tmp_path / "c")
    checkpoint.set_model(_model())
    with pytest.raises(MlpxValueError, match="callbacks"):
        checkpoint.on_epoch_end(0, {"loss": 1.0})


def test_a_callback_can_pickle_and_save_the_model_during_fit(tmp_path):
    import pickle

    class Snapshot(Callback):
        def on_epoch_end(self, epoch, logs=None):
            self.blob = pickle.dumps(self.model)
            self.model.save(tmp_path / f"epoch{epoch}.safetensors")

    X, y = _data()
    model = _model()
    snapshot = Snapshot()
    model.fit(X, y, epochs=2, callbacks=[snapshot])
    for got, want in zip(_host(pickle.loads(snapshot.blob)), _host(model)):
        np.testing.assert_array_equal(got, want)
    for got, want in zip(_host(mlpx.load(tmp_path / "epoch1.safetensors")), _host(model)):
        np.testing.assert_array_equal(got, want)


def test_resume_from_that_is_not_a_path_names_the_argument():
    X, y = _data()
    with pytest.raises(TypeError, match="resume_from=3.5"):
        _model().fit(X, y, epochs=2, resume_from=3.5)
