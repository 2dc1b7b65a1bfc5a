"""Train with checkpoints, stop mid-run, resume exactly, then save and reload the model.

A long fit on the bundled digits writes a checkpoint every few epochs. The first run is
stopped after epoch 11 (as a crash or Ctrl-C would stop it; press Ctrl-C yourself to see
``history.interrupted``); a second model, built with another seed, resumes from the
checkpoint and trains to the end. Its weights are compared bit for bit with those of one
uninterrupted run. Finally the model is saved as a safetensors file, loaded back (on the
CPU, and on PyTorch when it is installed) and checked to predict the same.

    python examples/checkpoint_resume.py
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

import mlpx
from mlpx.callbacks import Callback, Checkpoint
from mlpx.datasets import StandardScaler, load_digits, train_test_split

QUICK = os.environ.get("MLPX_EXAMPLE_QUICK") == "1"
EPOCHS = 12 if QUICK else 40
STOP_AFTER = 7 if QUICK else 23


class StopAfter(Callback):
    """Ends training after a given epoch, standing in for a crash."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            self.model.stop_training = True


def new_model(seed: int) -> mlpx.MLP:
    return mlpx.MLP([64, 64, 10], activations=["relu", "softmax"], seed=seed)


def train(model, data, **kwargs):
    X_train, X_test, y_train, y_test = data
    return model.fit(X_train, y_train, epochs=EPOCHS, batch_size=32, optimizer="adam",
                     learning_rate=mlpx.optim.ReduceLROnPlateau(3e-3, monitor="val_loss",
                                                                patience=2),
                     validation_data=(X_test, y_test), **kwargs)


def main() -> None:
    X, y = load_digits()
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, seed=0)
    scaler = StandardScaler().fit(X_train)
    data = (scaler.transform(X_train), scaler.transform(X_test), y_train, y_test)

    with tempfile.TemporaryDirectory() as directory:
        checkpoint_path = Path(directory) / "digits.ckpt"
        model_path = Path(directory) / "digits.safetensors"

        uninterrupted = new_model(seed=0)
        train(uninterrupted, data)

        first = new_model(seed=0)
        history = train(first, data, callbacks=[Checkpoint(checkpoint_path, every=4),
                                                StopAfter(STOP_AFTER)])
        print(f"first run stopped after epoch {history.epoch[-1]} "
              f"(interrupted by Ctrl-C: {history.interrupted}); checkpoint: "
              f"{checkpoint_path.stat().st_size} bytes")

        resumed = new_model(seed=999)  # the checkpoint's generator state replaces the seed
        history = train(resumed, data, resume_from=checkpoint_path)
        same = all(np.array_equal(mlpx.to_numpy(a), mlpx.to_numpy(b))
                   for a, b in zip(resumed.params, uninterrupted.params))
        print(f"resumed run ended at epoch {history.epoch[-1]}; weights bit-identical to "
              f"the uninterrupted run: {same}")
        print(f"test accuracy: {resumed.evaluate(data[1], y_test)['accuracy']:.3f}")
        if not same:
            raise SystemExit("resuming did not reproduce the uninterrupted run")

        resumed.save(model_path)
        loaded = mlpx.load(model_path)
        same = np.array_equal(loaded.predict(data[1]), resumed.predict(data[1]))
        print(f"saved {model_path.name} ({model_path.stat().st_size} bytes) and loaded it: "
              f"same predictions: {same}")
        try:
            on_torch = mlpx.load(model_path, backend="torch")
        except mlpx.BackendUnavailableError:
            print("torch is not installed; skipped loading onto PyTorch")
        else:
            agree = np.mean(mlpx.to_numpy(on_torch.predict(data[1])) ==
                            mlpx.to_numpy(resumed.predict(data[1])))
            print(f"loaded onto torch ({on_torch.backend.device}): predictions agree on "
                  f"{agree:.1%} of the test set")


if __name__ == "__main__":
    main()
