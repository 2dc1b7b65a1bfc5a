"""Reproducibility: the same seed gives the same weights bit for bit on NumPy, in this
process and in fresh ones (whatever their hash seed), and the same initial weights and
shuffling on every backend."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

import mlpx
from tests.helpers import assert_close

REPO_ROOT = Path(__file__).resolve().parents[1]

TRAIN = """
import hashlib, sys
import numpy as np
import mlpx
from mlpx.datasets import make_moons

X, y = make_moons(n_samples=400, noise=0.2, seed=5)
model = mlpx.MLP([2, 32, 16, 1], activations=["relu", "tanh", "sigmoid"], seed=11,
                 alpha=1e-4)
model.fit(X, y, epochs=15, batch_size=24, optimizer="adam", learning_rate=0.01,
          validation_data=(X[:50], y[:50]))
digest = hashlib.sha256()
for param in model.params:
    digest.update(np.ascontiguousarray(mlpx.to_numpy(param)).tobytes())
digest.update(np.ascontiguousarray(model.predict_proba(X)).tobytes())
print(digest.hexdigest())
"""


def _digest_here() -> str:
    namespace: dict = {}
    output: list[str] = []
    namespace["print"] = output.append
    exec(TRAIN, namespace)  # noqa: S102 - our own fixed script
    return output[0]


def _digest_in_a_new_process(hash_seed: str) -> str:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed,
           "PYTHONPATH": str(REPO_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    result = subprocess.run([sys.executable, "-c", TRAIN], env=env, cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=120, check=True)
    return result.stdout.strip()


def test_same_seed_same_weights_bit_for_bit_across_processes():
    here = _digest_here()
    assert _digest_in_a_new_process("0") == here
    assert _digest_in_a_new_process("12345") == here


def test_another_seed_gives_other_weights():
    changed = TRAIN.replace("seed=11", "seed=12")
    namespace: dict = {}
    output: list[str] = []
    namespace["print"] = output.append
    exec(changed, namespace)  # noqa: S102
    assert output[0] != _digest_here()


def test_a_fit_on_any_backend_starts_and_shuffles_as_numpy_does(backend):
    from mlpx.datasets import make_moons

    X, y = make_moons(n_samples=120, noise=0.2, seed=1)
    models = [mlpx.MLP([2, 8, 1], activations=["tanh", "sigmoid"], seed=4, dtype="float64",
                       backend=name) for name in ("numpy", backend)]
    for reference, other in zip(models[0].params, models[1].params):
        assert_close(other, reference, backend=backend, rtol=0)
    orders = [model.shuffle_rng.permutation(120) for model in models]
    np.testing.assert_array_equal(*orders)
    for model in models:
        model.fit(X, y, epochs=5, batch_size=16, learning_rate=0.05)
    for reference, other in zip(models[0].params, models[1].params):
        assert_close(other, reference, backend=backend, rtol=1e-10, atol=1e-12)

