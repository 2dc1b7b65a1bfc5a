"""The training benchmark's own logic (``benchmarks/bench_train.py``), without timing it.

The benchmark's numbers are only as good as its floor and its bookkeeping: the floor must
run exactly the matrix products the issue defines, the configs must be the issue's, and
the paired ratio must be what the README says. Its GPU mode has never run (no GPU was lent
yet), so what it shares with the CPU mode is checked here, on NumPy, to spend no device
minutes on a bookkeeping bug. NumPy-only: these run in the numpy session.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import math
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_train.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_train", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_train"] = module  # dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules["bench_train"]


def _recording_numpy(products: list):
    """NumPy as the floor uses it, recording the (m, k, n) of every matmul."""

    def matmul(a, b, out):
        products.append((a.shape[0], a.shape[1], b.shape[1]))
        return np.matmul(a, b, out=out)

    return SimpleNamespace(matmul=matmul, asarray=np.asarray, empty=np.empty,
                           float32=np.float32)


@pytest.mark.parametrize("name", ["moons", "digits", "mnist"])
@pytest.mark.parametrize("batch", [1, 7, 32])
def test_the_floor_runs_exactly_the_products_the_flops_count(bench, name, batch):
    """Forward X @ W and dW = X^T dZ for every layer, dX = dZ W^T for all but the first."""
    config = bench.make_configs(quick=True, backend="numpy")[name]
    products = []
    X_first = np.ones((batch, config.n_features), dtype=np.float32)
    floor = bench.GemmFloor(_recording_numpy(products), config.layer_sizes, X_first,
                            np.random.default_rng(0))
    floor.step()
    n_layers = len(config.layer_sizes) - 1
    assert len(products) == 3 * n_layers - 1
    assert sum(2 * m * k * n for m, k, n in products) == config.step_flops(batch)
    sizes = config.layer_sizes
    forward = [(batch, fan_in, fan_out) for fan_in, fan_out in zip(sizes[:-1], sizes[1:])]
    assert products[:n_layers] == forward


def test_the_configs_are_the_issues(bench):
    configs = bench.make_configs(quick=False, backend="numpy", many_classes=False)
    assert {name: (c.net, c.batch_size, c.n_train, c.epochs) for name, c in configs.items()} == {
        "moons": ("2-16-8-2", 32, 1000, 200),
        "digits": ("64-128-64-10", 64, 1797, 50),
        "mnist": ("784-512-256-10", 256, 20_000, 3),
    }
    classes = bench.make_configs(quick=False, backend="numpy")["classes"]
    assert (classes.net, classes.batch_size, classes.n_train) == ("256-512-1000", 128, 20_000)
    assert bench.parse_args([]).configs == ["moons", "digits", "mnist"]
    assert bench.parse_args(["--configs", "classes"]).configs == ["classes"]
    large = bench.make_configs(quick=False, backend="cupy")["large"]
    assert (large.net, large.batch_size) == ("4096-4096-4096-10", 4096)


def test_an_epoch_ends_with_the_partial_batch(bench):
    mnist = bench.make_configs(quick=False, backend="numpy")["mnist"]
    assert mnist.epoch_batches() == [256] * 78 + [32]
    assert mnist.steps == 237
    assert "237 steps: 78 x 256 + 1 x 32 per epoch" in mnist.describe()
    assert mnist.gemm_flops() == 3 * (78 * mnist.step_flops(256) + mnist.step_flops(32))


def test_scaling_runs_change_one_thing_each(bench):
    half, full, wide = bench.make_scaling_configs(quick=False)
    assert dataclasses.replace(half, name="", n_train=full.n_train) == \
        dataclasses.replace(full, name="")
    assert dataclasses.replace(wide, name="", hidden=full.hidden) == \
        dataclasses.replace(full, name="")
    assert full.gemm_flops() == pytest.approx(2 * half.gemm_flops(), rel=0.01)


def test_the_paired_ratio_is_the_median_of_per_round_ratios(bench):
    floor = bench.Runs(times=[1.0, 2.0, 1.0])
    contender = bench.Runs(times=[1.5, 2.2, 1.2])  # ratios 1.5, 1.1, 1.2
    assert bench.paired_ratio(contender, floor) == pytest.approx(1.2)
    assert math.isnan(bench.paired_ratio(bench.Runs(times=[1.0, 2.0]), floor))
    assert math.isnan(bench.paired_ratio(contender, None))


def test_the_gpu_mode_leaves_out_scikit_learn(bench):
    usable, skipped = bench.available_contenders(["floor", "mlpx", "sklearn"], "cupy")
    assert usable == ["floor", "mlpx"]
    assert skipped == ["sklearn: CPU only here (scikit-learn has no GPU mode)"]


def test_unknown_names_are_refused_with_the_choices(bench):
    with pytest.raises(argparse.ArgumentTypeError, match="choose from floor,mlpx"):
        bench._names("floor,mlpxx", ("floor", "mlpx"), "--contenders")


@pytest.mark.parametrize("where", ["missing-folder", "a-folder"])
def test_a_json_path_that_cannot_be_written_is_refused_before_the_run(bench, tmp_path,
                                                                     capsys, where):
    path = tmp_path / "missing" / "timings.json" if where == "missing-folder" else tmp_path
    with pytest.raises(SystemExit):
        bench.parse_args(["--quick", "--json", str(path)])
    assert "not a file in a writable folder" in capsys.readouterr().err
    assert bench.parse_args(["--quick", "--json", str(tmp_path / "t.json")]).json.name == "t.json"


def test_the_large_data_is_a_learnable_float32_problem(bench):
    X_train, y_train, X_test, y_test = bench.large_data(512, n_features=32, n_test=128)
    assert X_train.shape == (512, 32) and X_test.shape == (128, 32)
    assert X_train.dtype == np.float32 and y_train.dtype == np.int64
    assert set(np.unique(y_train)) <= set(range(10)) and len(np.unique(y_train)) > 5
    again = bench.large_data(512, n_features=32, n_test=128)
    np.testing.assert_array_equal(again[0], X_train)


def test_the_floor_and_mlpx_workers_run_in_process(bench):
    """The worker functions the subprocesses call, on a tiny moons fit."""
    config = dataclasses.replace(bench.make_configs(quick=True, backend="numpy")["moons"],
                                 n_train=200, epochs=2)
    X_train, y_train, X_test, y_test = bench.moons_data(200)
    data = {"X_train": X_train, "y_train": y_train, "X_test": X_test, "y_test": y_test}
    task = {"config": dataclasses.asdict(config), "backend": "numpy", "score": True}
    floor = bench.run_floor(task, data)
    assert floor["seconds"] > 0 and floor["epochs_run"] == 2
    mlpx_result = bench.run_mlpx(task, data)
    assert mlpx_result["epochs_run"] == 2
    assert 0.5 < mlpx_result["accuracy"] <= 1.0
    assert mlpx_result["note"].startswith("compiled kernels")


def _load_script(name: str):
    """benchmarks/``name``.py as a module (the caller restores sys.path, which it extends)."""
    spec = importlib.util.spec_from_file_location(name, SCRIPT.parent / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run_moons_worker(bench, contender: str, activation: str = "relu") -> tuple[dict, dict]:
    """A contender's worker in this process on 200 moons samples for 2 epochs: its task and
    its result."""
    configs = bench.make_configs(quick=True, backend="numpy", hidden_activation=activation)
    config = dataclasses.replace(configs["moons"], n_train=200, epochs=2)
    X_train, y_train, X_test, y_test = bench.moons_data(200)
    data = {"X_train": X_train, "y_train": y_train, "X_test": X_test, "y_test": y_test}
    task = {"config": dataclasses.asdict(config), "backend": "numpy", "score": True,
            "contender": contender, "threads": 0}
    return task, bench.WORKERS[contender](task, data)


@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "leaky_relu", "elu", "gelu",
                                        "softplus"])
def test_every_contender_can_train_the_hidden_activation_asked_for(bench, monkeypatch,
                                                                     activation):
    """--activation reaches mlpx's, scikit-learn's (where it has it) and torch's networks,
    and the report."""
    import mlpx

    built = []
    original_init = mlpx.MLP.__init__

    def recording_init(self, sizes, activations=None, **kwargs):
        built.append(list(activations))
        original_init(self, sizes, activations, **kwargs)

    monkeypatch.setattr(mlpx.MLP, "__init__", recording_init)
    _, result = _run_moons_worker(bench, "mlpx", activation)
    assert built == [[activation, activation, "softmax"]] and result["epochs_run"] == 2
    in_sklearn = activation in bench.SKLEARN_ACTIVATIONS
    if in_sklearn and importlib.util.find_spec("sklearn") is not None:
        _, result = _run_moons_worker(bench, "sklearn", activation)
        assert result["epochs_run"] == 2
    if importlib.util.find_spec("torch") is not None:
        import torch

        network = bench._torch_network(torch, [2, 16, 8, 2], activation)
        kinds = [type(layer).__name__ for layer in network]
        assert kinds == ["Linear", bench.TORCH_ACTIVATIONS[activation][0]] * 2 + ["Linear"]
        z = torch.linspace(-6, 6, 101, dtype=torch.float64)  # torch's is mlpx's function
        expected = mlpx.activations.get_activation(activation).forward(z.numpy(), xp=np)
        np.testing.assert_allclose(network[1](z).numpy(), expected, rtol=1e-12, atol=1e-15)
        _, result = _run_moons_worker(bench, "torch-fused", activation)
        assert result["epochs_run"] == 2
    args = bench.parse_args(["--activation", activation, "--configs", "moons"])
    assert ("sklearn" in args.contenders) == in_sklearn
    assert "torch-fused" in args.contenders and "mlpx" in args.contenders
    config = bench.make_configs(False, "numpy", args.activation)["moons"]
    assert config.describe().startswith(f"2-16-8-2 {activation}, batch 32")
    with pytest.raises(SystemExit):
        bench.parse_args(["--activation", "swish"])
    if not in_sklearn:
        with pytest.raises(SystemExit):
            bench.parse_args(["--activation", activation, "--contenders", "mlpx,mlpx-sklearn"])


def _steps_of_mlpx(bench, name: str, start: np.ndarray, grads: list) -> np.ndarray:
    import mlpx

    setting = bench.OPTIMIZERS[name]
    optimizer = getattr(mlpx.optim, setting.mlpx[0])(**setting.mlpx[1])
    params = [start.copy()]
    state = optimizer.init(params)
    for grad in grads:
        optimizer.update_(params, [grad], state, learning_rate=setting.learning_rate, xp=np)
    return params[0]


@pytest.mark.parametrize("name", ["adam", "sgd", "rmsprop", "adagrad"])
def test_every_library_is_given_the_same_optimizer(bench, name):
    """--optimizer: torch's optimizer (and scikit-learn's solver, where it has one) takes
    mlpx's steps from the same gradients, to float64 rounding (but scikit-learn's Adam)."""
    rng = np.random.default_rng(1)
    start = rng.normal(size=50)
    grads = [rng.normal(size=50) * scale for scale in (1.0, 0.1, 3.0, 1e-3, 0.5)]
    expected = _steps_of_mlpx(bench, name, start, grads)
    setting = bench.OPTIMIZERS[name]
    if importlib.util.find_spec("torch") is not None:
        import torch

        param = torch.nn.Parameter(torch.from_numpy(start.copy()))
        for variant in ("torch-eager", "torch-fused"):
            with torch.no_grad():
                param.copy_(torch.from_numpy(start))
            optimizer, fell_back = bench._torch_optimizer(torch, [param], variant, "cpu", name)
            assert type(optimizer).__name__ == setting.torch[0]
            assert fell_back == (variant == "torch-fused" and name == "rmsprop")
            for grad in grads:
                param.grad = torch.from_numpy(grad.copy())
                optimizer.step()
            np.testing.assert_allclose(param.detach().numpy(), expected, rtol=1e-10,
                                       atol=1e-13, err_msg=variant)
    if setting.sklearn is not None and importlib.util.find_spec("sklearn") is not None:
        from sklearn.neural_network import _stochastic_optimizers as sk

        solver, options = setting.sklearn
        params = [start.copy()]
        if solver == "sgd":
            sk_optimizer = sk.SGDOptimizer(params, setting.learning_rate, options["learning_rate"],
                                           options["momentum"], options["nesterovs_momentum"])
        else:
            sk_optimizer = sk.AdamOptimizer(params, setting.learning_rate, options["beta_1"],
                                            options["beta_2"], options["epsilon"])
        for grad in grads:
            sk_optimizer.update_params(params, [grad])
        # scikit-learn's Adam adds eps to sqrt(v) before the bias correction, torch's and
        # mlpx's after it: a relative difference of eps / sqrt(v)
        rtol = 1e-5 if solver == "adam" else 1e-10
        np.testing.assert_allclose(params[0], expected, rtol=rtol, atol=1e-13)


@pytest.mark.parametrize("name", ["sgd", "rmsprop", "adagrad"])
def test_every_contender_trains_with_the_optimizer_asked_for(bench, monkeypatch, name):
    """--optimizer reaches mlpx's fit, scikit-learn's solver (where it has one), torch, the
    report and the choice of contenders."""
    import mlpx

    used = []
    original_fit = mlpx.MLP.fit

    def recording_fit(self, X, y, **kwargs):
        used.append((type(kwargs["optimizer"]).__name__, kwargs["learning_rate"]))
        return original_fit(self, X, y, **kwargs)

    monkeypatch.setattr(mlpx.MLP, "fit", recording_fit)
    setting = bench.OPTIMIZERS[name]
    configs = bench.make_configs(quick=True, backend="numpy", optimizer=name)
    config = dataclasses.replace(configs["moons"], n_train=200, epochs=2)
    X_train, y_train, X_test, y_test = bench.moons_data(200)
    data = {"X_train": X_train, "y_train": y_train, "X_test": X_test, "y_test": y_test}
    task = {"config": dataclasses.asdict(config), "backend": "numpy", "score": True,
            "threads": 0}
    result = bench.run_mlpx({**task, "contender": "mlpx"}, data)
    assert used == [(setting.mlpx[0], setting.learning_rate)] and result["epochs_run"] == 2
    in_sklearn = setting.sklearn is not None
    if in_sklearn and importlib.util.find_spec("sklearn") is not None:
        result = bench.run_sklearn({**task, "contender": "sklearn"}, data)
        assert result["epochs_run"] == 2
    if importlib.util.find_spec("torch") is not None:
        result = bench.run_torch({**task, "contender": "torch-fused"}, data)
        assert result["note"].startswith(setting.torch[0] + " ")
        assert result["fell_back"] == (name == "rmsprop")
    args = bench.parse_args(["--optimizer", name, "--configs", "moons"])
    assert ("sklearn" in args.contenders) == in_sklearn
    assert "torch-fused" in args.contenders and "mlpx" in args.contenders
    described = bench.make_configs(False, "numpy", "relu", args.optimizer)["moons"].describe()
    assert described.startswith(f"2-16-8-2, {name} lr {setting.learning_rate:g}, batch 32")
    if not in_sklearn:
        with pytest.raises(SystemExit):
            bench.parse_args(["--optimizer", name, "--contenders", "mlpx,sklearn"])
    with pytest.raises(SystemExit):
        bench.parse_args(["--optimizer", "adadelta"])


def test_the_drop_in_estimator_runs_the_sklearn_call_with_mlpx(bench):
    """mlpx-sklearn: scikit-learn's exact call on mlpx.sklearn.MLPClassifier (one unit for
    two classes, as scikit-learn), reported as needing scikit-learn and mlpx."""
    pytest.importorskip("sklearn")
    task, result = _run_moons_worker(bench, "mlpx-sklearn")
    assert result["seconds"] > 0 and result["epochs_run"] == 2
    assert result["note"].startswith("1 output unit(s), float32 weights, alpha 0")
    assert bench.own_modules(task) == {"sklearn", "mlpx"}
    usable, skipped = bench.available_contenders(["mlpx-sklearn"], "cupy")
    assert usable == [] and skipped[0].startswith("mlpx-sklearn: CPU only")


@pytest.mark.parametrize("contender", ["mlpx-l2", "sklearn-l2"])
def test_the_l2_workers_train_with_scikit_learns_default_penalty(bench, contender):
    """mlpx-l2 and sklearn-l2 fit with alpha=1e-4 (per sample) and say so in their note."""
    pytest.importorskip(bench.LIBRARY[contender])
    task, result = _run_moons_worker(bench, contender)
    assert result["seconds"] > 0 and result["epochs_run"] == 2
    assert 0.0 <= result["accuracy"] <= 1.0  # two epochs at lr 1e-3: a smoke test
    assert "alpha 0.0001" in result["note"]
    assert contender in bench.OPTIONAL_CONTENDERS


def test_mlpx_glorot_starts_from_glorot_uniform(bench, monkeypatch):
    """mlpx-glorot builds its model with init="glorot_uniform" and says so; mlpx does not."""
    import mlpx

    inits = []
    original = mlpx.MLP.__init__

    def recording_init(self, *args, **kwargs):
        inits.append(kwargs.get("init"))
        original(self, *args, **kwargs)

    monkeypatch.setattr(mlpx.MLP, "__init__", recording_init)
    _, glorot = _run_moons_worker(bench, "mlpx-glorot")
    _, default = _run_moons_worker(bench, "mlpx")
    assert inits == ["glorot_uniform", None]
    assert glorot["note"].endswith("; init glorot_uniform")
    assert "init" not in default["note"]
    assert "mlpx-glorot" in bench.OPTIONAL_CONTENDERS


@pytest.mark.parametrize("contender", ["mlpx-torch", "mlpx-bf16", "torch-fused", "torch-bf16"])
def test_the_torch_workers_run_in_process(bench, contender, backend):
    """mlpx on its torch backend (float32 and bfloat16 products) and torch (autocast).

    Takes the ``backend`` fixture only to run in the torch session, where torch is installed.
    """
    if backend.name != "torch":
        pytest.skip("runs in the torch session")
    task, result = _run_moons_worker(bench, contender)
    assert result["seconds"] > 0 and result["epochs_run"] == 2
    assert 0.5 < result["accuracy"] <= 1.0
    if contender.startswith("mlpx"):
        precision = bench.MLPX_ON_TORCH[contender]
        assert result["note"].startswith(f"torch backend, {precision} products")
    assert bench.own_modules(task) >= {"torch"}


def test_the_kernel_benchmark_pairs_bitwise_equal_fits(capsys, monkeypatch):
    """bench_kernels.py: one quick round of each table; each pair trains the same weights."""
    from mlpx import _compiled

    if _compiled.kernels is None:
        pytest.skip("mlpx._kernels is not built here")
    monkeypatch.setattr(sys, "path", list(sys.path))  # the script adds its folder
    for name in ("bench_train", "bench_kernels"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    spec = importlib.util.spec_from_file_location("bench_kernels",
                                                  SCRIPT.parent / "bench_kernels.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "bench_kernels", module)
    spec.loader.exec_module(module)
    monkeypatch.setitem(sys.modules, "bench_train", module.bench_train)
    status = module.main(["--quick", "--configs", "moons", "--rounds", "1",
                          "--optimizers", "nesterov,adagrad", "--activations",
                          "sigmoid,gelu"])
    table = capsys.readouterr().out
    assert status == 0
    assert table.count("| moons | nesterov |") == 2 and "| NO |" not in table
    assert table.count("| moons | adagrad |") == 2
    for activation in ("sigmoid", "gelu"):
        assert f"| moons | adam | 0 | {activation} |" in table
    for bad in (["--rounds", "0"], ["--configs", "large"], ["--optimizers", "adadelta"],
                ["--activations", "identity"], ["--tables", "losses"]):
        with pytest.raises(SystemExit):
            module.main(bad)
        assert "error:" in capsys.readouterr().err


def test_the_checkout_benchmark_compares_two_trees(capsys, monkeypatch):
    """bench_checkouts.py: this tree against itself, one round of one fit in two workers."""
    monkeypatch.setattr(sys, "path", list(sys.path))  # the script adds its folder
    module = _load_script("bench_checkouts")
    root = str(SCRIPT.parents[1])
    status = module.main([root, root, "--configs", "moons", "--activations", "elu",
                          "--optimizers", "adam,rmsprop", "--rounds", "1", "--fits", "1"])
    table = capsys.readouterr().out
    assert status == 0
    assert "| moons | elu | adam |" in table and "| moons | elu | rmsprop |" in table
    for bad in ([root], [root, "/nonexistent"], [root, root, "--activations", "identity"],
                [root, root, "--optimizers", "adadelta"],
                [root, root, "--configs", "large"], [root, root, "--rounds", "0"],
                [root, root, "--validation", "1.5"], [root, root, "--validation", "-0.1"]):
        with pytest.raises(SystemExit):
            module.main(bad)
        assert "error:" in capsys.readouterr().err


def test_the_checkout_benchmark_can_fit_with_validation_data(monkeypatch):
    """--validation F: the worker's fits hold out the last fraction F of the rows and
    evaluate it every epoch."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    module = _load_script("bench_checkouts")
    import mlpx

    seen = []
    original = mlpx.MLP.fit

    def recording_fit(self, X, y, **kwargs):
        seen.append((X.shape[0], kwargs["validation_data"]))
        return original(self, X, y, **dict(kwargs, epochs=1))

    monkeypatch.setattr(mlpx.MLP, "fit", recording_fit)
    times = module.worker(str(SCRIPT.parents[1]), ["moons"], ["relu"], ["adam"], 1, 0.1)
    assert list(times) == ["moons/relu/adam"]
    (n_fit, (X_val, y_val)), = seen
    assert (n_fit, X_val.shape[0], y_val.shape[0]) == (900, 100, 100)


def test_the_early_stopping_benchmark_fits_both_estimators_both_ways(capsys, monkeypatch):
    """bench_early_stopping.py: one round of two epochs, a row per estimator; bad options
    refused before anything runs."""
    pytest.importorskip("sklearn")
    monkeypatch.setattr(sys, "path", list(sys.path))
    module = _load_script("bench_early_stopping")
    fits = []
    original = module.fit_seconds

    def recording(library, name, X, y, early_stopping, max_iter):
        fits.append((library, name, early_stopping, max_iter))
        return original(library, name, X, y, early_stopping, max_iter)

    monkeypatch.setattr(module, "fit_seconds", recording)
    assert module.main(["--rounds", "1", "--max-iter", "2"]) == 0
    table = capsys.readouterr().out
    assert "| MLPClassifier, digits |" in table and "| MLPRegressor, diabetes |" in table
    assert sorted(fits) == sorted((library, name, stop, epochs)
                                  for library in ("mlpx", "sklearn")
                                  for name in ("MLPClassifier", "MLPRegressor")
                                  for stop in (False, True) for epochs in (1, 2))
    for bad in (["--rounds", "0"], ["--max-iter", "0"], ["--max-iter", "x"]):
        with pytest.raises(SystemExit):
            module.main(bad)
        assert "error:" in capsys.readouterr().err


def test_the_partial_fit_benchmark_streams_both_estimators(capsys, monkeypatch):
    """bench_partial_fit.py: one round of one pass, a row per chunk size; bad options
    refused before anything runs."""
    pytest.importorskip("sklearn")
    monkeypatch.setattr(sys, "path", list(sys.path))  # the script adds the checkout
    module = _load_script("bench_partial_fit")
    assert module.main(["--chunks", "600,1797", "--epochs", "1", "--rounds", "1"]) == 0
    table = capsys.readouterr().out
    assert "| 600 | 3 |" in table and "| 1797 | 1 |" in table
    for bad in (["--chunks", "0"], ["--chunks", "a,b"], ["--rounds", "0"]):
        with pytest.raises(SystemExit):
            module.main(bad)
        assert "error:" in capsys.readouterr().err


def test_the_predict_benchmark_times_one_function_three_ways(capsys, monkeypatch):
    """bench_predict.py: one quick round on moons (1 row, all 1000 test rows), the three
    contenders checked to compute mlpx's function first; bad options refused before anything
    runs, and a contender with other weights refused before any timing."""
    pytest.importorskip("sklearn")
    pytest.importorskip("torch")
    monkeypatch.setattr(sys, "path", list(sys.path))  # the script adds the checkout
    module = _load_script("bench_predict")
    assert module.main(["--quick", "--configs", "moons", "--rows", "1,all", "--rounds",
                        "1"]) == 0
    table = capsys.readouterr().out
    assert "| moons | 1 |" in table and "| moons | 1000 |" in table
    (row_one,) = [line for line in table.splitlines() if line.startswith("| moons | 1 |")]
    (row_all,) = [line for line in table.splitlines() if line.startswith("| moons | 1000 |")]
    assert row_one.endswith("| n/a |") and row_all.endswith("x |")  # the floor: all rows only
    assert "n/a" not in row_one[:-len("| n/a |")]
    for bad in (["--rows", "0"], ["--rows", "a"], ["--rows", "1001", "--configs", "moons"],
                ["--configs", "iris"], ["--contenders", "sklearn,torch"], ["--rounds", "0"],
                ["--threads", "-1"]):
        with pytest.raises(SystemExit):
            module.main(bad)
        assert "error:" in capsys.readouterr().err
    config = module.bench_train.make_configs(True, "numpy")["moons"]
    X_train, y_train, X_test, _ = module.bench_train.moons_data(200)
    predictors, coefs = module.build_predictors(config, ["sklearn", "torch"], X_train, y_train)
    assert [W.shape for W in coefs] == [(2, 16), (16, 8), (8, 2)]
    module.check_same_function(predictors, X_test, "moons")
    other_biases = [np.full(W.shape[1], 0.1, dtype=np.float32) for W in coefs]
    predictors["torch"] = module.torch_predictor(
        module.torch_network(config.layer_sizes, coefs, other_biases))
    with pytest.raises(RuntimeError, match="torch's predict_proba is not mlpx's"):
        module.check_same_function(predictors, X_test, "moons")


def test_the_predict_benchmarks_ratio_is_paired_per_round(monkeypatch):
    """bench_predict.py: each ratio is the median of the rounds' own ratios."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    module = _load_script("bench_predict")
    times = {"mlpx": [1.0, 2.0, 1.0], "torch": [1.5, 2.2, 1.2]}  # ratios 1.5, 1.1, 1.2
    assert module.paired_ratio(times, "torch", "mlpx") == pytest.approx(1.2)
    assert math.isnan(module.paired_ratio(times, "sklearn", "mlpx"))
