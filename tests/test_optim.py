"""Optimizers against torch.optim, the functional update contract, and the schedules."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import assert_close

import mlpx
from mlpx import optim
from mlpx._errors import MlpxValueError

N_STEPS = 5
# Per-step learning rates: a schedule may change it between steps, as fit does per epoch.
LEARNING_RATES = [0.1, 0.05, 0.05, 0.02, 0.01]
SHAPES = [(3, 4), (4,), (4, 2), (2,)]


def host_params_and_grads(seed: int = 0):
    rng = np.random.default_rng(seed)
    params = [rng.normal(size=shape) for shape in SHAPES]
    grads = [[rng.normal(size=shape) for shape in SHAPES] for _ in range(N_STEPS)]
    # One gradient element that is exactly zero and one that is tiny: eps and sqrt paths.
    grads[0][1][0] = 0.0
    grads[2][3][1] = 1e-9
    return params, grads


def to_backend(host_arrays, backend, dtype="float64"):
    xp = backend.xp
    return [xp.asarray(a, dtype=getattr(xp, dtype), device=backend.device) for a in host_arrays]


# name -> (mlpx optimizer factory, torch optimizer factory)
def _cases():
    def torch_opt(name, **kwargs):
        def make(tensors):
            import torch

            return getattr(torch.optim, name)(tensors, lr=LEARNING_RATES[0], **kwargs)
        return make

    return {
        "sgd": (lambda: optim.SGD(), torch_opt("SGD")),
        "sgd-momentum": (lambda: optim.SGD(momentum=0.9), torch_opt("SGD", momentum=0.9)),
        "sgd-nesterov": (lambda: optim.SGD(momentum=0.9, nesterov=True),
                         torch_opt("SGD", momentum=0.9, nesterov=True)),
        "adam": (lambda: optim.Adam(), torch_opt("Adam")),
        "adam-custom": (lambda: optim.Adam(beta1=0.8, beta2=0.99, epsilon=1e-6),
                        torch_opt("Adam", betas=(0.8, 0.99), eps=1e-6)),
        "adamw": (lambda: optim.AdamW(weight_decay=0.01),
                  torch_opt("AdamW", weight_decay=0.01)),
        "adamw-strong-decay": (lambda: optim.AdamW(beta1=0.85, weight_decay=0.5),
                               torch_opt("AdamW", betas=(0.85, 0.999), weight_decay=0.5)),
        "rmsprop": (lambda: optim.RMSprop(), torch_opt("RMSprop", alpha=0.9, eps=1e-8)),
        "rmsprop-custom": (lambda: optim.RMSprop(rho=0.99, epsilon=1e-6),
                           torch_opt("RMSprop", alpha=0.99, eps=1e-6)),
        "adagrad": (lambda: optim.Adagrad(),
                    torch_opt("Adagrad", initial_accumulator_value=0.0, eps=1e-10)),
        "adagrad-custom": (lambda: optim.Adagrad(epsilon=1e-3),
                           torch_opt("Adagrad", initial_accumulator_value=0.0, eps=1e-3)),
    }


CASES = _cases()


def torch_trajectory(make_torch_optimizer, host_params, host_grads):
    """Parameters after each of the steps, from torch.optim in float64 on the CPU."""
    torch = pytest.importorskip("torch")
    tensors = [torch.tensor(p, dtype=torch.float64, requires_grad=True) for p in host_params]
    optimizer = make_torch_optimizer(tensors)
    trajectory = []
    for step, lr in enumerate(LEARNING_RATES):
        for group in optimizer.param_groups:
            group["lr"] = lr
        for tensor, grad in zip(tensors, host_grads[step], strict=True):
            tensor.grad = torch.tensor(grad, dtype=torch.float64)
        optimizer.step()
        trajectory.append([t.detach().numpy().copy() for t in tensors])
    return trajectory


@pytest.mark.parametrize("case", list(CASES))
def test_update_equals_torch_optim(backend, case):
    pytest.importorskip("torch")
    make_mlpx, make_torch = CASES[case]
    host_params, host_grads = host_params_and_grads()
    expected = torch_trajectory(make_torch, host_params, host_grads)

    optimizer = make_mlpx()
    params = to_backend(host_params, backend)
    state = optimizer.init(params)
    for step, lr in enumerate(LEARNING_RATES):
        grads = to_backend(host_grads[step], backend)
        params, state = optimizer.update(params, grads, state, learning_rate=lr,
                                         xp=backend.xp)
        assert state["step"] == step + 1
        for param, ref in zip(params, expected[step], strict=True):
            assert_close(param, ref, backend=backend, dtype=backend.xp.float64,
                         shape=ref.shape, rtol=1e-10)


def test_sgd_update_by_hand(backend):
    """One plain step and two momentum steps written out: p - lr * g and v = 0.9 v + g."""
    xp = backend.xp
    params = to_backend([np.array([1.0, -2.0])], backend)
    grads = to_backend([np.array([0.5, 4.0])], backend)
    plain = optim.SGD()
    new, _ = plain.update(params, grads, plain.init(params), learning_rate=0.1, xp=xp)
    assert_close(new[0], [0.95, -2.4], backend=backend, rtol=1e-15)

    momentum = optim.SGD(momentum=0.9)
    state = momentum.init(params)
    new, state = momentum.update(params, grads, state, learning_rate=0.1, xp=xp)
    assert_close(new[0], [0.95, -2.4], backend=backend, rtol=1e-15)  # v = g
    new, state = momentum.update(new, grads, state, learning_rate=0.1, xp=xp)
    # v = 0.9 * [0.5, 4] + [0.5, 4] = [0.95, 7.6]; p = [0.95, -2.4] - 0.1 v
    assert_close(new[0], [0.855, -3.16], backend=backend, rtol=1e-14)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", list(CASES))
def test_update_is_functional(backend, case, dtype):
    """update returns new arrays of the backend and never writes into its inputs."""
    xp = backend.xp
    make_mlpx, _ = CASES[case]
    host_params, host_grads = host_params_and_grads(seed=1)
    params = to_backend(host_params, backend, dtype)
    optimizer = make_mlpx()
    state = optimizer.init(params)
    for step in range(3):
        grads = to_backend(host_grads[step], backend, dtype)
        before = {
            "params": [mlpx.to_numpy(p).copy() for p in params],
            "grads": [mlpx.to_numpy(g).copy() for g in grads],
            "state": {key: [mlpx.to_numpy(a).copy() for a in value]
                      for key, value in state.items() if isinstance(value, list)},
        }
        old_state = state
        new_params, state = optimizer.update(params, grads, old_state, learning_rate=0.05,
                                             xp=xp)
        assert state is not old_state
        assert old_state["step"] == step and state["step"] == step + 1
        for old, copy in zip(params, before["params"], strict=True):
            assert_close(old, copy, backend=backend, rtol=0)
        for old, copy in zip(grads, before["grads"], strict=True):
            assert_close(old, copy, backend=backend, rtol=0)
        for key, copies in before["state"].items():
            for old, copy in zip(old_state[key], copies, strict=True):
                assert_close(old, copy, backend=backend, rtol=0)
        assert len(new_params) == len(params)
        for new, old, shape in zip(new_params, params, SHAPES, strict=True):
            assert new is not old
            assert_close(new, mlpx.to_numpy(new), backend=backend,
                         dtype=getattr(xp, dtype), shape=shape, rtol=0)
            assert not np.array_equal(mlpx.to_numpy(new), mlpx.to_numpy(old))
        for value in state.values():
            if isinstance(value, list):
                for array, shape in zip(value, SHAPES, strict=True):
                    assert_close(array, mlpx.to_numpy(array), backend=backend,
                                 dtype=getattr(xp, dtype), shape=shape, rtol=0)
        params = new_params


def test_get_optimizer_by_name():
    for name, cls in [("sgd", optim.SGD), ("adam", optim.Adam), ("adamw", optim.AdamW),
                      ("rmsprop", optim.RMSprop), ("adagrad", optim.Adagrad),
                      ("ADAM", optim.Adam)]:
        optimizer = optim.get_optimizer(name, learning_rate=0.2)
        assert type(optimizer) is cls
        assert optimizer.learning_rate == 0.2
    instance = optim.Adam(learning_rate=0.3)
    assert optim.get_optimizer(instance) is instance
    assert optim.get_optimizer("sgd").learning_rate == 0.01
    assert optim.get_optimizer("adam").learning_rate == 1e-3


# --- schedules ---------------------------------------------------------------------------

def test_constant_schedule():
    schedule = optim.Constant(0.1)
    assert [schedule(epoch) for epoch in (0, 1, 50, 1000)] == [0.1] * 4
    assert optim.as_schedule(0.25)(7) == 0.25
    assert optim.as_schedule(schedule) is schedule


def test_step_decay():
    schedule = optim.StepDecay(0.1, step_size=3, gamma=0.5)
    # lr * gamma ** (epoch // step_size)
    expected = {0: 0.1, 2: 0.1, 3: 0.05, 5: 0.05, 6: 0.025, 9: 0.0125, 10: 0.0125}
    for epoch, lr in expected.items():
        assert schedule(epoch) == pytest.approx(lr, rel=1e-15), epoch


def test_exponential_decay():
    schedule = optim.ExponentialDecay(0.1, gamma=0.9)
    expected = {0: 0.1, 1: 0.09, 2: 0.081, 3: 0.0729, 10: 0.1 * 0.9**10}
    for epoch, lr in expected.items():
        assert schedule(epoch) == pytest.approx(lr, rel=1e-14), epoch


def test_inverse_scaling():
    schedule = optim.InverseScaling(0.1, power_t=0.5)
    # lr / (epoch + 1) ** power_t
    expected = {0: 0.1, 3: 0.05, 8: 0.1 / 3, 99: 0.01}
    for epoch, lr in expected.items():
        assert schedule(epoch) == pytest.approx(lr, rel=1e-14), epoch
    assert optim.InverseScaling(1.0, power_t=1.0)(4) == pytest.approx(0.2, rel=1e-15)


def test_cosine_decay():
    schedule = optim.CosineDecay(0.1, total_epochs=10, min_learning_rate=0.01)
    # min + (lr - min) * (1 + cos(pi * epoch / total)) / 2
    expected = {
        0: 0.1,
        5: 0.055,
        2: 0.01 + 0.09 * (1.0 + math.cos(math.pi * 0.2)) / 2.0,
        9: 0.01 + 0.09 * (1.0 + math.cos(math.pi * 0.9)) / 2.0,
        10: 0.01,
        11: 0.01,
        100: 0.01,
    }
    for epoch, lr in expected.items():
        assert schedule(epoch) == pytest.approx(lr, rel=1e-14), epoch
    values = [schedule(epoch) for epoch in range(11)]
    assert all(a > b for a, b in zip(values, values[1:])), values
    assert optim.CosineDecay(0.1, total_epochs=4)(4) == 0.0


def test_reduce_lr_on_plateau_after_patience_stale_epochs():
    schedule = optim.ReduceLROnPlateau(1.0, monitor="loss", factor=0.5, patience=2,
                                       min_learning_rate=0.2, min_delta=0.0)
    losses = [1.0, 0.9, 0.95, 0.9, 0.91, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8]
    seen = []
    for epoch, loss in enumerate(losses):
        seen.append(schedule(epoch))
        schedule.observe(epoch, {"loss": loss})
    seen.append(schedule(len(losses)))
    # Best 0.9 at epoch 1; epochs 2, 3, 4 are stale (0.9 is no improvement on 0.9): the
    # third stale epoch exceeds patience=2, so epoch 5 trains at 0.5. 0.8 at epoch 5
    # improves; epochs 6, 7, 8 stale -> 0.25 from epoch 9; 9, 10, 11 stale -> 0.125, but
    # min_learning_rate clamps it to 0.2 from epoch 12 on, and it stays there.
    expected = [1.0] * 5 + [0.5] * 4 + [0.25] * 3 + [0.2] * 4
    assert seen == pytest.approx(expected, rel=1e-15)


def test_reduce_lr_on_plateau_min_delta_and_max_mode():
    schedule = optim.ReduceLROnPlateau(0.1, monitor="val_accuracy", factor=0.1, patience=0,
                                       min_delta=0.01)
    assert schedule.mode == "max"
    schedule.observe(0, {"val_accuracy": 0.5})  # first value always improves on -inf
    assert schedule(1) == pytest.approx(0.1)
    schedule.observe(1, {"val_accuracy": 0.505})  # +0.005 < min_delta: stale, patience 0
    assert schedule(2) == pytest.approx(0.01)
    schedule.observe(2, {"val_accuracy": 0.6})
    assert schedule(3) == pytest.approx(0.01)


def test_reduce_lr_on_plateau_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    values = np.concatenate([np.linspace(1.0, 0.5, 6), 0.5 + 0.01 * rng.random(30)])
    schedule = optim.ReduceLROnPlateau(0.1, factor=0.3, patience=3, min_learning_rate=1e-3,
                                       min_delta=1e-3)
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    reference = torch.optim.lr_scheduler.ReduceLROnPlateau(
        opt, mode="min", factor=0.3, patience=3, threshold=1e-3, threshold_mode="abs",
        cooldown=0, min_lr=1e-3)
    for epoch, value in enumerate(values):
        assert schedule(epoch) == pytest.approx(opt.param_groups[0]["lr"], rel=1e-12), epoch
        schedule.observe(epoch, {"loss": float(value)})
        reference.step(float(value))
    assert schedule(len(values)) == pytest.approx(opt.param_groups[0]["lr"], rel=1e-12)
    assert schedule(len(values)) < 0.1


def test_schedule_drives_fit_learning_rate():
    model = mlpx.MLP([2, 1], activations=["identity"], dtype="float64", seed=0)
    X = np.array([[1.0, 0.0], [0.0, 1.0]])
    history = model.fit(X, np.array([1.0, -1.0]), epochs=4, batch_size=None, optimizer="sgd",
                        learning_rate=optim.StepDecay(0.2, step_size=2, gamma=0.5),
                        shuffle=False)
    assert history.history["lr"] == pytest.approx([0.2, 0.2, 0.1, 0.1])


# --- bad arguments ----------------------------------------------------------------------

@pytest.mark.parametrize("value", [0, 0.0, -1, -1e-3, math.nan, math.inf])
@pytest.mark.parametrize("factory", [
    optim.SGD, optim.Adam, optim.AdamW, optim.RMSprop, optim.Adagrad,
    optim.Constant, optim.StepDecay, optim.ExponentialDecay, optim.InverseScaling,
    optim.CosineDecay, optim.ReduceLROnPlateau,
], ids=lambda f: f.__name__)
def test_bad_learning_rate(factory, value):
    with pytest.raises(ValueError, match="learning_rate") as info:
        factory(learning_rate=value)
    assert isinstance(info.value, MlpxValueError)


@pytest.mark.parametrize("value", [0, -1, math.nan])
def test_bad_learning_rate_in_fit(value):
    model = mlpx.MLP([2, 1], activations=["identity"], seed=0)
    before = [mlpx.to_numpy(p).copy() for p in model.params]
    with pytest.raises(ValueError, match="learning_rate"):
        model.fit(np.ones((4, 2)), np.ones(4), epochs=1, learning_rate=value)
    for param, old in zip(model.params, before, strict=True):
        np.testing.assert_array_equal(mlpx.to_numpy(param), old)


@pytest.mark.parametrize("factory, kwargs, parameter", [
    (optim.ReduceLROnPlateau, {"factor": 1.5}, "factor"),
    (optim.ReduceLROnPlateau, {"factor": 1.0}, "factor"),
    (optim.ReduceLROnPlateau, {"factor": 0.0}, "factor"),
    (optim.ReduceLROnPlateau, {"patience": -1}, "patience"),
    (optim.ReduceLROnPlateau, {"mode": "sideways"}, "mode"),
    (optim.StepDecay, {"step_size": 0}, "step_size"),
    (optim.StepDecay, {"gamma": 0.0}, "gamma"),
    (optim.ExponentialDecay, {"gamma": -0.5}, "gamma"),
    (optim.InverseScaling, {"power_t": 0.0}, "power_t"),
    (optim.CosineDecay, {"total_epochs": 0}, "total_epochs"),
    (optim.CosineDecay, {"learning_rate": 0.1, "min_learning_rate": 0.2}, "min_learning_rate"),
    (optim.CosineDecay, {"min_learning_rate": -0.1}, "min_learning_rate"),
    (optim.SGD, {"momentum": 1.0}, "momentum"),
    (optim.SGD, {"momentum": -0.1}, "momentum"),
    (optim.SGD, {"nesterov": True}, "nesterov"),
    (optim.Adam, {"beta1": 1.0}, "beta1"),
    (optim.Adam, {"beta2": 1.5}, "beta2"),
    (optim.Adam, {"epsilon": 0.0}, "epsilon"),
    (optim.AdamW, {"weight_decay": -0.01}, "weight_decay"),
    (optim.RMSprop, {"rho": 1.0}, "rho"),
    (optim.RMSprop, {"epsilon": -1e-8}, "epsilon"),
    (optim.Adagrad, {"epsilon": math.nan}, "epsilon"),
])
def test_bad_hyperparameters(factory, kwargs, parameter):
    with pytest.raises(ValueError, match=parameter) as info:
        factory(**kwargs)
    assert isinstance(info.value, MlpxValueError)


@pytest.mark.parametrize("name", ["adamx", "", "SGDD"])
def test_unknown_optimizer_name(name):
    with pytest.raises(ValueError, match="optimizer") as info:
        optim.get_optimizer(name)
    assert isinstance(info.value, MlpxValueError)
    assert repr(name) in str(info.value)
    for known in optim.OPTIMIZERS:
        assert known in str(info.value)


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("bad", ["missing grad", "extra grad", "wrong shape"])
def test_mismatched_grads_are_refused_before_any_change(backend, case, bad):
    """update_ and update name the mismatch and leave params and state as they were."""
    xp = backend.xp
    host_params, host_grads = host_params_and_grads()
    params = to_backend(host_params, backend)
    grads = to_backend(host_grads[0], backend)
    if bad == "missing grad":
        grads = grads[:-1]
    elif bad == "extra grad":
        grads = [*grads, grads[-1]]
    else:
        grads[0] = grads[0][:1, ...]
    optimizer = CASES[case][0]()
    state = optimizer.init(params)
    before = [mlpx.to_numpy(p).copy() for p in params]
    with pytest.raises(mlpx.MlpxValueError, match="grads"):
        optimizer.update_(params, grads, state, learning_rate=0.1, xp=xp)
    with pytest.raises(mlpx.MlpxValueError, match="grads"):
        optimizer.update(params, grads, state, learning_rate=0.1, xp=xp)
    assert state["step"] == 0
    for param, copy in zip(params, before, strict=True):
        assert_close(param, copy, backend=backend, rtol=0)
