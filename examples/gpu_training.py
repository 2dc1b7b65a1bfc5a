"""Train on the GPU with CuPy when there is one, and say what to install when there is not.

The same ``mlpx.MLP`` code trains on NumPy (CPU) and CuPy (CUDA GPU): only ``backend=``
changes. This script trains a [784, 512, 256, 10] network on MNIST-sized synthetic data
(no download) on the GPU when CuPy can use one, then the same fit on the CPU, and prints
both times and accuracies. Without a usable GPU it says why and what to install, and
trains on the CPU only.

    python examples/gpu_training.py [--epochs N] [--samples N]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from _output import mnist_sized_blobs

import mlpx

QUICK = os.environ.get("MLPX_EXAMPLE_QUICK") == "1"
INSTALL_HINT = (
    "To train on an NVIDIA GPU, install CuPy for your CUDA version: "
    "pip install 'mlpx[gpu]' (CUDA 12) or pip install cupy-cuda13x (CUDA 13), with an "
    "NVIDIA driver; `mlpx info` lists the backends and devices it can use."
)


def gpu_backend():
    """The CuPy backend, or None with the reason printed."""
    try:
        return mlpx.resolve_backend("cupy")
    except mlpx.BackendUnavailableError as exc:
        print(f"No GPU training here: {exc}")
        print(INSTALL_HINT)
        return None


def train(backend, data, epochs: int) -> tuple[float, float]:
    """Fit the network on ``backend``; returns (seconds, test accuracy)."""
    X_train, X_test, y_train, y_test = data
    model = mlpx.MLP([X_train.shape[1], 512, 256, 10], activations=["relu", "relu", "softmax"],
                     backend=backend, seed=0)
    started = time.perf_counter()
    model.fit(X_train, y_train, epochs=epochs, batch_size=256, optimizer="adam",
              learning_rate=1e-3)
    model.predict(X_test[:1])  # waits for the device to finish
    seconds = time.perf_counter() - started
    return seconds, model.score(X_test, y_test)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=1 if QUICK else 3)
    parser.add_argument("--samples", type=int, default=2000 if QUICK else 20000)
    args = parser.parse_args()

    data = mnist_sized_blobs(args.samples, cluster_std=25.0)
    X_train = data[0]
    print(f"{X_train.shape[0]} training samples of 784 features, 10 classes, "
          f"{args.epochs} epoch(s) of Adam at batch 256")

    gpu = gpu_backend()
    if gpu is not None:
        train(gpu, data, 1)  # compiles CuPy's kernels once
        seconds, accuracy = train(gpu, data, args.epochs)
        print(f"GPU  ({gpu.device}): {seconds:6.2f} s, test accuracy {accuracy:.3f}")
    seconds, accuracy = train("numpy", data, args.epochs)
    print(f"CPU  (NumPy):  {seconds:6.2f} s, test accuracy {accuracy:.3f}")
    if not np.isfinite(accuracy) or accuracy < 0.8:
        raise SystemExit(f"test accuracy {accuracy:.3f} is lower than expected")


if __name__ == "__main__":
    main()
