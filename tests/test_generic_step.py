"""The generic training step, the one CuPy and torch on CUDA run, is fit for a GPU.

On a GPU each array operation is a kernel launch (several microseconds), and reading a
value back to the host waits for every launch before it. Small networks there are bound
by launches, and one host round trip per step would stall the device every step. These
tests count, with torch's ``TorchFunctionMode`` on the CPU, what the generic loop asks of
torch: the same Python code runs on CUDA tensors, and CuPy's path differs only in the
namespace. They run in the torch session.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from helpers import HOST_READS, NO_LAUNCH, NO_OP_TO

import mlpx

EPOCHS = 2


def _torch_calls(model, X, y, **fit_kwargs) -> Counter:
    """How often each torch function or tensor method ran during ``model.fit``."""
    return _torch_calls_of(lambda: model.fit(X, y, epochs=EPOCHS, **fit_kwargs))


def _torch_calls_of(work) -> Counter:
    """How often each torch function or tensor method ran during ``work()``."""
    from torch.overrides import TorchFunctionMode

    class Recorder(TorchFunctionMode):
        def __init__(self):
            super().__init__()
            self.calls = Counter()

        def __torch_function__(self, func, types, args=(), kwargs=None):
            result = func(*args, **(kwargs or {}))
            name = getattr(func, "__name__", str(func))
            # array_api_compat's type promotion calls .to(its own dtype): no copy, no launch
            self.calls[NO_OP_TO if name == "to" and result is args[0] else name] += 1
            return result

    with Recorder() as recorder:
        work()
    return recorder.calls


def _calls_per_step(backend, *, alpha: float = 0.0, **fit_kwargs) -> dict[str, float]:
    """Calls per extra training step of a 2-16-8-2 net: 8 steps per epoch less 2."""
    if backend.name != "torch":
        pytest.skip("counts torch calls; the torch session runs it")
    X, y = mlpx.datasets.make_moons(256, noise=0.2, seed=0)
    calls = {}
    for batch_size in (128, 32):
        model = mlpx.MLP([2, 16, 8, 2], ["relu", "relu", "softmax"], backend=backend,
                         alpha=alpha, seed=0)
        calls[batch_size] = _torch_calls(model, X, y, batch_size=batch_size, **fit_kwargs)
    extra_steps = EPOCHS * (256 // 32 - 256 // 128)
    return {name: (calls[32][name] - calls[128][name]) / extra_steps for name in calls[32]}


@pytest.mark.parametrize("fit_kwargs", [
    pytest.param({"optimizer": "adam"}, id="adam"),
    pytest.param({"optimizer": "sgd", "learning_rate": 0.1}, id="sgd"),
    pytest.param({"optimizer": "adam", "sample_weight": np.linspace(0.5, 2, 256)},
                 id="sample-weights"),
    pytest.param({"optimizer": "adamw", "shuffle": False}, id="adamw-stored-order"),
    pytest.param({"optimizer": "adam", "alpha": 1e-3}, id="l2"),
])
def test_no_host_read_per_step(backend, fit_kwargs):
    """Losses stay on the device until the epoch ends: more steps, no more host reads."""
    per_step = _calls_per_step(backend, **fit_kwargs)
    assert {name: n for name, n in per_step.items() if name in HOST_READS and n} == {}


def test_a_small_network_step_launches_at_most_44_operations(backend):
    """The 2-16-8-2 relu/softmax Adam step: a budget of kernel launches on a GPU.

    44 today: 8 matmuls, 3 bias adds and 3 bias-gradient sums, relu and its derivative
    (1 + 3 per layer: its 0-d zero is made once per dtype and device), softmax and its
    cross-entropy gradient (7: one-hot targets skip the product with their row sums), 2
    batch gathers, the gradient concat and Adam's 12 in-place operations. An operation
    added to every step costs a small network on a GPU a few percent; raise the budget
    only on purpose.
    """
    per_step = _calls_per_step(backend, optimizer="adam")
    launches = sum(n for name, n in per_step.items() if name not in NO_LAUNCH)
    assert launches <= 44, sorted((n, name) for name, n in per_step.items()
                                  if n and name not in NO_LAUNCH)


def test_batches_are_gathered_without_index_wrapping(backend):
    """torch gathers the permuted rows with index_select alone (no where/lt/add per batch)."""
    per_step = _calls_per_step(backend, optimizer="sgd")
    assert per_step.get("index_select") == 2  # X and Y
    assert per_step.get("lt", 0) == 0


def test_one_hot_targets_take_the_short_gradient_with_the_same_numbers(backend):
    """``(a - y) / n`` for rows summing to exactly 1 is ``(a * sum(y) - y) / n`` bit for bit;
    the runner takes the shortcut only where every row does."""
    from mlpx.callbacks import CallbackList
    from mlpx.optim import Adam
    from mlpx.train import EpochRunner

    rng = np.random.default_rng(4)
    model = mlpx.MLP([3, 5, 4], ["tanh", "softmax"], backend=backend, seed=0)
    X, Y, _ = model.check_Xy(rng.normal(size=(24, 3)), np.arange(24) % 4)
    output = model._forward(X)
    general = model._backward(Y, output)
    shortcut = model._backward(Y, output, unit_rows=True)
    for a, b in zip(general, shortcut, strict=True):
        np.testing.assert_array_equal(mlpx.to_numpy(a), mlpx.to_numpy(b))

    def runner(targets):
        return EpochRunner(model, Adam(), X, targets, 8, CallbackList([], model))

    assert runner(Y).unit_target_rows
    assert not runner(0.5 * Y).unit_target_rows  # soft targets: rows sum to 0.5
    regression = mlpx.MLP([3, 2], backend=backend)
    assert not EpochRunner(regression, Adam(), X, Y[:, :2], 8,
                           CallbackList([], regression)).unit_target_rows


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_prediction_reads_the_device_once_per_batch_and_copies_no_input(backend, dtype):
    """predict_proba on device X of the model's dtype: one read back to the host per batch
    (the finiteness check; on a GPU each read waits for the device), and no cast of X."""
    if backend.name != "torch":
        pytest.skip("counts torch calls; the torch session runs it")
    model = mlpx.MLP([3, 8, 4], ["relu", "softmax"], backend=backend, dtype=dtype, seed=0)
    X = backend.xp.asarray(np.random.default_rng(0).normal(size=(40, 3)), dtype=model.dtype,
                           device=backend.device)
    calls = _torch_calls_of(lambda: model.predict_proba(X, batch_size=16))
    assert sum(n for name, n in calls.items() if name in HOST_READS) == 3  # 3 batches
    assert calls.get("to", 0) == 0 and calls.get("clone", 0) == 0
