"""The static-buffer training step: it trains as the generic runner, and it can be recorded.

A CUDA graph (torch's ``torch.cuda.graph``, CuPy's stream capture) records a step's
kernels once, pointers and scalar arguments frozen, runs none of them while recording,
and replays them all at once. ``GraphEmulator`` does the same with torch on the CPU: it
records every torch call of one step under ``TorchFunctionMode`` (undoing what the
recording run wrote into arrays that existed before it), and a replay calls each
recorded function again on the recorded arguments, writing each result into the array
recorded for it. A step that took a Python scalar which changes, or read arrays that move
between steps, replays with the stale one, as on a GPU; the negative control below shows
that the emulation catches that.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from helpers import HOST_READS, NO_LAUNCH, NO_OP_TO

import mlpx
import mlpx.train
from mlpx._backend import to_numpy
from mlpx._errors import MlpxTypeError, MlpxValueError
from mlpx._static_step import StaticStepRunner
from mlpx.callbacks import Callback
from mlpx.optim import SGD, Adam, AdamW, StepDecay
from mlpx.precision import backend_supports

IN_PLACE_DUNDERS = {"__iadd__", "__isub__", "__imul__", "__itruediv__", "__ipow__",
                    "__setitem__"}


def _tensors(value) -> list:
    import torch

    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (tuple, list)):
        return [t for item in value for t in _tensors(item)]
    return []


def _storage(tensor) -> int:
    return tensor.untyped_storage().data_ptr()


class _Recording:
    """The torch calls of one run of a step, and how to undo and replay them."""

    def __init__(self) -> None:
        self.calls: list = []
        self.created: set[int] = set()  # storages the recorded run allocated
        self.existing: set[int] = set()  # storages of arrays made before it
        self.saved: list = []  # (array that existed before, its values then)

    def record(self, func, args, kwargs):
        import torch

        name = getattr(func, "__name__", "")
        assert "out" not in kwargs, f"{name} writes into out=; record it as a write"
        assert name not in HOST_READS, f"{name} reads a value back to the host while recording"
        self.existing.update(_storage(t) for t in _tensors([*args, *kwargs.values()])
                             if _storage(t) not in self.created)
        if name in IN_PLACE_DUNDERS or (name.endswith("_") and not name.startswith("_")):
            target = args[0]
            if _storage(target) not in self.created and not any(
                    target is seen for seen, _ in self.saved):
                self.saved.append((target, torch.clone(target)))
        result = func(*args, **kwargs)
        self.calls.append((func, args, kwargs, result))
        # A view of an existing array (W.mT) is no new memory.
        self.created.update(_storage(t) for t in _tensors(result)
                            if _storage(t) not in self.existing)
        return result

    def undo(self) -> None:
        """Put back what the recorded run wrote into arrays it did not allocate."""
        for target, before in reversed(self.saved):
            target.copy_(before)

    def replay(self) -> None:
        """Run every recorded call again, each result written into its recorded array."""
        for func, args, kwargs, recorded in self.calls:
            fresh = func(*args, **kwargs)
            for old, new in zip(_tensors(recorded), _tensors(fresh)):
                if _storage(old) != _storage(new):
                    old.copy_(new)


class GraphEmulator:
    """``capture(step) -> replay``, with CUDA stream capture's rules, for torch on the CPU.

    Attributes
    ----------
    recordings : list of _Recording
        One per recorded step.
    """

    def __init__(self) -> None:
        self.recordings: list[_Recording] = []
        self.replays = 0
        self.replaying = False  # what a GPU would run as one graph launch

    def __call__(self, step):
        from torch.overrides import TorchFunctionMode

        recording = _Recording()

        class Mode(TorchFunctionMode):
            def __torch_function__(self, func, types, args=(), kwargs=None):
                return recording.record(func, args, kwargs or {})

        with Mode():
            step()
        recording.undo()  # recording runs no work
        self.recordings.append(recording)

        def replay() -> None:
            self.replaying = True
            try:
                recording.replay()
            finally:
                self.replaying = False
            self.replays += 1

        return replay


def _runner_factory(capture):
    """A make_epoch_runner that builds StaticStepRunners with ``capture``."""
    runners = []

    def make(model, optimizer, X, Y, batch_size, callback_list, **kwargs):
        runners.append(StaticStepRunner(model, optimizer, X, Y, batch_size, callback_list,
                                        capture=capture, **kwargs))
        return runners[-1]

    return make, runners


def _moons(n_samples: int = 200):
    return mlpx.datasets.make_moons(n_samples, noise=0.2, seed=0)


def _generic_runner(model, optimizer, X, Y, batch_size, callback_list, **kwargs):
    """The generic EpochRunner, on NumPy too (where ``fit`` would pick its fast path)."""
    return mlpx.train.EpochRunner(model, optimizer, X, Y, batch_size, callback_list, **kwargs)


def _fit(backend, monkeypatch, capture="generic", *, epochs: int = 3, **fit_kwargs):
    """Weights (NumPy), epoch losses and runners of a 2-16-8-2 fit on moons.

    ``capture="generic"`` uses the generic EpochRunner; None a StaticStepRunner run
    eagerly; a callable a StaticStepRunner that records with it.
    """
    runners = []
    precision = fit_kwargs.pop("matmul_precision", "highest")
    if not backend_supports(precision, backend.xp):
        pytest.skip(f"{backend.name} cannot multiply in {precision}")
    with monkeypatch.context() as patch:
        if capture == "generic":
            patch.setattr(mlpx.train, "make_epoch_runner", _generic_runner)
        else:
            make, runners = _runner_factory(capture)
            patch.setattr(mlpx.train, "make_epoch_runner", make)
        X, y = _moons()
        model = mlpx.MLP([2, 16, 8, 2], ["relu", "relu", "softmax"], backend=backend,
                         alpha=fit_kwargs.pop("alpha", 0.0), seed=0,
                         matmul_precision=precision)
        fit_kwargs = {"batch_size": 48, "optimizer": "adam", **fit_kwargs}
        history = model.fit(X, y, epochs=epochs, **fit_kwargs)
    weights = [to_numpy(p) for p in model.params]
    return weights, history.history["loss"], model, runners


CASES = {
    "adam": {},
    "adam-step-decay": {"learning_rate": StepDecay(0.01, step_size=1, gamma=0.5)},
    "adamw": {"optimizer": AdamW(0.01, weight_decay=0.1)},
    "adam-beta2-rounds-to-1": {"optimizer": Adam(0.01, beta2=1 - 1e-8)},
    "sgd-nesterov": {"optimizer": SGD(0.05, momentum=0.9, nesterov=True)},
    "sample-weights": {"sample_weight": np.linspace(0.5, 2.0, 200)},
    "l2": {"alpha": 1e-2},
    "stored-order": {"shuffle": False},
    "bfloat16-products": {"matmul_precision": "bfloat16"},
}


@pytest.mark.parametrize("case", CASES)
def test_eager_static_steps_train_as_the_generic_runner_bit_for_bit(backend, monkeypatch,
                                                                   case):
    """Same losses and weights exactly, on every backend: the scalar table rounds each
    step's Python floats to float32 as the generic step's array operations do (even
    a beta2 that rounds to 1 in float32, whose bias correction the host computes)."""
    reference, reference_losses, _, _ = _fit(backend, monkeypatch, **CASES[case])
    weights, losses, model, runners = _fit(backend, monkeypatch, capture=None, **CASES[case])
    assert len(runners) == 1 and all(step.replay is None for step in runners[0].steps.values())
    assert losses == reference_losses
    for got, want in zip(weights, reference):
        np.testing.assert_array_equal(got, want)
    assert model.optimizer_state_["step"] == 3 * 5  # 4 x 48 + 1 x 8 rows per epoch
    assert isinstance(model.optimizer_state_["step"], int)


def _torch_only(backend):
    if backend.name != "torch":
        pytest.skip("emulates a CUDA graph with torch; the torch session runs it")


@pytest.mark.parametrize("case", CASES)
def test_replayed_steps_equal_eager_steps_bit_for_bit(backend, monkeypatch, case):
    """Recorded once per batch size and replayed: the eager run's numbers exactly."""
    _torch_only(backend)
    eager, eager_losses, _, _ = _fit(backend, monkeypatch, capture=None, **CASES[case])
    emulator = GraphEmulator()
    replayed, losses, _, runners = _fit(backend, monkeypatch, capture=emulator,
                                        **CASES[case])
    # 48 and the last 8 rows, each recorded at its second step and replayed after.
    assert len(emulator.recordings) == 2
    assert {n: step.calls for n, step in runners[0].steps.items()} == {48: 12, 8: 3}
    assert losses == eager_losses
    for got, want in zip(replayed, eager):
        np.testing.assert_array_equal(got, want)


def _continued_fit(backend, monkeypatch, capture="generic") -> list:
    """Weights after fit(2 epochs) then fit(1 epoch, reset_optimizer=False)."""
    X, y = _moons()
    with monkeypatch.context() as patch:
        patch.setattr(mlpx.train, "make_epoch_runner", _generic_runner if capture == "generic"
                      else _runner_factory(capture)[0])
        model = mlpx.MLP([2, 16, 8, 2], ["relu", "relu", "softmax"], backend=backend,
                         seed=0)
        model.fit(X, y, epochs=2, batch_size=48)
        model.fit(X, y, epochs=1, batch_size=48, reset_optimizer=False)
    assert model.optimizer_state_["step"] == 15
    return [to_numpy(p) for p in model.params]


def test_a_replayed_step_launches_two_operations_besides_the_graph(backend, monkeypatch):
    """Per replayed step, outside the graph: the batch's row indices copied in and its
    logits copied out. (A GPU adds the graph launch itself: 3 launches a step, against
    the generic step's 46 on this network.)"""
    _torch_only(backend)
    from torch.overrides import TorchFunctionMode

    X, y = mlpx.datasets.make_moons(256, noise=0.2, seed=0)
    calls, replays = {}, {}
    for batch_size in (128, 32):
        emulator = GraphEmulator()

        class Count(TorchFunctionMode):
            """Counts the torch calls made outside the emulator's replays."""

            def __init__(self, emulator: GraphEmulator):
                super().__init__()
                self.emulator = emulator
                self.calls = Counter()

            def __torch_function__(self, func, types, args=(), kwargs=None):
                if not self.emulator.replaying:
                    self.calls[getattr(func, "__name__", str(func))] += 1
                return func(*args, **(kwargs or {}))

        monkeypatch.setattr(mlpx.train, "make_epoch_runner", _runner_factory(emulator)[0])
        model = mlpx.MLP([2, 16, 8, 2], ["relu", "relu", "softmax"], backend=backend, seed=0)
        with Count(emulator) as counter:
            model.fit(X, y, epochs=2, batch_size=batch_size)
        calls[batch_size], replays[batch_size] = counter.calls, emulator.replays
    extra_replays = replays[32] - replays[128]
    # 4 steps, 16 steps: the first eager, the second recorded, then replayed like the rest
    assert (replays[128], extra_replays) == (3, 12)
    per_step = {name: (calls[32][name] - calls[128][name]) / extra_replays
                for name in calls[32]}
    launches = {name: n for name, n in per_step.items() if n and name not in NO_LAUNCH}
    assert sum(launches.values()) <= 2, launches
    assert not set(launches) & HOST_READS


def test_the_recorded_step_is_the_generic_step_and_two_operations(backend, monkeypatch):
    """What a GPU graph would hold for the moons Adam step: the generic step's 46 launches
    (tests/test_generic_step.py) and two for the step's scalars: their table row read
    through the device index, and the index moved on."""
    _torch_only(backend)
    X, y = mlpx.datasets.make_moons(256, noise=0.2, seed=0)
    emulator = GraphEmulator()
    monkeypatch.setattr(mlpx.train, "make_epoch_runner", _runner_factory(emulator)[0])
    model = mlpx.MLP([2, 16, 8, 2], ["relu", "relu", "softmax"], backend=backend, seed=0)
    model.fit(X, y, epochs=1, batch_size=32)
    recorded = Counter(
        NO_OP_TO if getattr(func, "__name__", "") == "to" and result is args[0]
        else getattr(func, "__name__", str(func))
        for func, args, _, result in emulator.recordings[0].calls)
    launches = {name: n for name, n in recorded.items() if name not in NO_LAUNCH}
    assert sum(launches.values()) <= 46 + 2, sorted(launches.items())
    assert launches["index_select"] == 3 and launches["add_"] == 4  # X, Y, row; 3 in Adam


def test_a_continued_fit_carries_the_step_count(backend, monkeypatch):
    """reset_optimizer=False continues Adam's count in the scalar table as on the host."""
    generic = _continued_fit(backend, monkeypatch)
    eager = _continued_fit(backend, monkeypatch, capture=None)
    for got, want in zip(eager, generic):
        np.testing.assert_array_equal(got, want)
    if backend.name == "torch":
        replayed = _continued_fit(backend, monkeypatch, capture=GraphEmulator())
        for got, want in zip(replayed, eager):
            np.testing.assert_array_equal(got, want)


def _python_scalars(monkeypatch):
    """The step's scalars as Python floats from the host's count and learning rate."""
    run_epoch = StaticStepRunner.run_epoch

    def keep_lr(runner, order, lr):
        runner.host_lr, runner.host_step = lr, runner.state["step"]
        return run_epoch(runner, order, lr)

    def python_scalars(runner):
        runner.host_step += 1
        return runner.optimizer.step_scalars(runner.host_step, runner.host_lr)

    monkeypatch.setattr(StaticStepRunner, "run_epoch", keep_lr)
    monkeypatch.setattr(StaticStepRunner, "next_scalars", python_scalars)


def _host_row_index(monkeypatch):
    """The table's row picked with a Python int (the host's count of the epoch's steps)."""
    fill = StaticStepRunner._fill_scalar_table

    def fill_and_count(runner, lr):
        fill(runner, lr)
        runner.host_row = 0

    def host_row(runner):
        row = runner.scalar_table[runner.host_row, ...]
        runner.host_row += 1
        return {name: row[column, ...] for column, name in enumerate(runner.scalar_names)}

    monkeypatch.setattr(StaticStepRunner, "_fill_scalar_table", fill_and_count)
    monkeypatch.setattr(StaticStepRunner, "next_scalars", host_row)


@pytest.mark.parametrize("keep_on_host", [_python_scalars, _host_row_index],
                         ids=["python-scalars", "host-row-index"])
def test_a_step_taking_a_host_scalar_replays_stale(backend, monkeypatch, keep_on_host):
    """Negative controls: with the step's scalars passed as Python numbers, or their row
    picked with a Python int, the recording freezes them (the bias corrections and the
    decayed rate stop changing) and the replayed fit differs from the same code run
    eagerly."""
    _torch_only(backend)
    keep_on_host(monkeypatch)
    case = CASES["adam-step-decay"]
    eager, _, _, _ = _fit(backend, monkeypatch, capture=None, **case)
    stale, _, _, _ = _fit(backend, monkeypatch, capture=GraphEmulator(), **case)
    assert any(not np.array_equal(got, want) for got, want in zip(stale, eager))


def test_recording_refuses_a_host_read(backend):
    """As CUDA stream capture does: a value read back to the host would wait for work
    that recording does not run."""
    _torch_only(backend)
    import torch

    weights = torch.ones(4)

    def step():
        weights.mul_(float(weights.sum()))

    with pytest.raises(AssertionError, match="__float__ reads a value back to the host"):
        GraphEmulator()(step)


def test_recording_runs_no_work(backend):
    """The emulator's own rule: after recording, the arrays are as they were."""
    _torch_only(backend)
    import torch

    weights = torch.ones(4)
    scale = torch.full((), 2.0)

    def step():
        weights.mul_(scale)
        weights.add_(torch.exp(weights))

    replay = GraphEmulator()(step)
    assert torch.equal(weights, torch.ones(4))
    replay()
    replay()
    expected = torch.ones(4)
    for _ in range(2):
        expected = expected * 2.0
        expected = expected + torch.exp(expected)
    assert torch.equal(weights, expected)


def test_restoring_drops_the_recorded_steps(backend, monkeypatch):
    """A rollback puts new arrays behind the parameters: steps are recorded again."""
    _torch_only(backend)
    runs = {}
    for name, capture in (("eager", None), ("replayed", GraphEmulator())):
        X, y = _moons()
        model = mlpx.MLP([2, 16, 8, 2], ["relu", "relu", "softmax"], backend=backend, seed=0)
        make, runners = _runner_factory(capture)
        monkeypatch.setattr(mlpx.train, "make_epoch_runner", make)
        model.fit(X, y, epochs=1, batch_size=50, shuffle=False)
        runner = runners[0]
        start = runner.snapshot()
        runner.run_epoch(None, 0.01)
        runner.restore(start)
        assert runner.steps == {}
        logs = runner.run_epoch(None, 0.01)
        runs[name] = (to_numpy(runner.flat), logs["loss"], runner.state["step"])
    np.testing.assert_array_equal(runs["replayed"][0], runs["eager"][0])
    assert runs["replayed"][1:] == runs["eager"][1:] == (runs["eager"][1], 8)


def test_batch_callbacks_are_refused(backend, monkeypatch):
    class EveryBatch(Callback):
        def on_batch_end(self, batch, logs):
            pass

    make, _ = _runner_factory(None)
    monkeypatch.setattr(mlpx.train, "make_epoch_runner", make)
    X, y = _moons()
    model = mlpx.MLP([2, 4, 2], ["relu", "softmax"], backend=backend, seed=0)
    before = [to_numpy(p) for p in model.params]
    with pytest.raises(MlpxValueError, match="on_batch_begin/on_batch_end"):
        model.fit(X, y, epochs=1, callbacks=[EveryBatch()])
    for got, want in zip(model.params, before):
        np.testing.assert_array_equal(to_numpy(got), want)


OPTIMIZERS = [Adam(), AdamW(weight_decay=0.1), SGD(momentum=0.9, nesterov=True),
              mlpx.optim.RMSprop(), mlpx.optim.Adagrad()]


@pytest.mark.parametrize("optimizer", OPTIMIZERS, ids=lambda opt: type(opt).__name__)
def test_update_with_scalars_equals_update_bit_for_bit(xp, backend, optimizer):
    """``update_with_scalars_`` given ``step_scalars`` as 0-d arrays of float32: the
    numbers of ``update_``, which takes them as Python floats; the step count is the
    caller's to keep."""
    rng = np.random.default_rng(0)
    params = [xp.asarray(rng.standard_normal(7).astype(np.float32), device=backend.device)]
    host_params = [xp.asarray(params[0], copy=True)]
    state, host_state = optimizer.init(params), optimizer.init(host_params)
    for step in range(1, 6):
        grads = [xp.asarray(rng.standard_normal(7).astype(np.float32), device=backend.device)]
        optimizer.update_(host_params, grads, host_state, learning_rate=0.01, xp=xp)
        scalars = {name: xp.asarray(value, dtype=xp.float32, device=backend.device)
                   for name, value in optimizer.step_scalars(step, 0.01).items()}
        optimizer.update_with_scalars_(params, grads, state, scalars, xp=xp)
        np.testing.assert_array_equal(to_numpy(params[0]), to_numpy(host_params[0]))
    assert (state["step"], host_state["step"]) == (0, 5)
    for slot in optimizer.slots:
        np.testing.assert_array_equal(to_numpy(state[slot][0]), to_numpy(host_state[slot][0]))


@pytest.mark.parametrize("scalars, match", [
    ({"step_size": 0.1}, r"must be a dict of \['step_size', 'epsilon'\]"),
    ({"step_size": 0.1, "epsilon": 1e-8, "lr": 0.1}, "must be a dict of"),
    ({"step_size": float("nan"), "epsilon": 1e-8}, r"scalars\['step_size'\]=nan must be"),
    # (?s): an array's repr spans lines where it names a device
    ({"step_size": "float64", "epsilon": 1e-8}, r"(?s)scalars\['step_size'\]=.* 0-d array of"),
    ({"step_size": "vector", "epsilon": 1e-8}, r"(?s)scalars\['step_size'\]=.* 0-d array of"),
], ids=["missing", "extra", "nan", "other-dtype", "vector"])
def test_update_with_scalars_refuses_bad_scalars_before_any_work(xp, backend, scalars, match):
    optimizer = Adam()
    params = [xp.ones((3,), dtype=xp.float32, device=backend.device)]
    state = optimizer.init(params)
    arrays = {"float64": xp.asarray(0.1, dtype=xp.float64, device=backend.device),
              "vector": xp.full((3,), 0.1, dtype=xp.float32, device=backend.device)}
    scalars = {name: arrays.get(value, value) if isinstance(value, str) else value
               for name, value in scalars.items()}
    with pytest.raises(MlpxValueError, match=match):
        optimizer.update_with_scalars_(params, [params[0]], state, scalars, xp=xp)
    np.testing.assert_array_equal(to_numpy(params[0]), np.ones(3, np.float32))
    np.testing.assert_array_equal(to_numpy(state["m"][0]), np.zeros(3, np.float32))


@pytest.mark.parametrize("learning_rate, error", [
    ("vector", MlpxTypeError), (float("nan"), MlpxValueError), (-0.1, MlpxValueError),
    ("0.1", MlpxTypeError),
], ids=["vector", "nan", "negative", "text"])
def test_update_refuses_a_bad_learning_rate_before_any_work(xp, backend, learning_rate,
                                                            error):
    """Only a number > 0; nothing changes else."""
    optimizer = Adam()
    params = [xp.ones((3,), dtype=xp.float32, device=backend.device)]
    grads = [xp.ones((3,), dtype=xp.float32, device=backend.device)]
    state = optimizer.init(params)
    if learning_rate == "vector":
        learning_rate = xp.full((3,), 0.1, dtype=xp.float32, device=backend.device)
    with pytest.raises(error, match="learning_rate="):
        optimizer.update_(params, grads, state, learning_rate=learning_rate, xp=xp)
    assert state["step"] == 0
    np.testing.assert_array_equal(to_numpy(params[0]), np.ones(3, np.float32))
    np.testing.assert_array_equal(to_numpy(state["m"][0]), np.zeros(3, np.float32))


@pytest.mark.parametrize("step, learning_rate, error, match", [
    (0, 0.1, MlpxValueError, "step=0 must be an int >= 1"),
    (-3, 0.1, MlpxValueError, "step=-3 must be"),
    (1.5, 0.1, MlpxValueError, "step=1.5 must be"),
    (True, 0.1, MlpxValueError, "step=True must be"),
    (1, float("nan"), MlpxValueError, "learning_rate="),
    (1, "0.1", MlpxTypeError, "learning_rate="),
], ids=["zero", "negative", "float", "bool", "nan-rate", "text-rate"])
def test_step_scalars_refuses_a_bad_step_or_rate(step, learning_rate, error, match):
    """Step 0 would divide by Adam's 1 - beta1**0 = 0; say so instead."""
    for optimizer in (Adam(), AdamW(), SGD()):
        with pytest.raises(error, match=match):
            optimizer.step_scalars(step, learning_rate)


def test_update_refuses_a_step_count_that_is_not_an_int(xp, backend):
    optimizer = Adam()
    params = [xp.ones((3,), dtype=xp.float32, device=backend.device)]
    state = optimizer.init(params)
    state["step"] = 1.5
    with pytest.raises(MlpxValueError, match=r"state\['step'\]=1.5 must be an int"):
        optimizer.update_(params, [params[0]], state, learning_rate=0.1, xp=xp)
    np.testing.assert_array_equal(to_numpy(params[0]), np.ones(3, np.float32))
