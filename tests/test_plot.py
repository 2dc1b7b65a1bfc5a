"""mlpx.plot: every picture returns its Figure, draws into a given axes, and shows the data."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.contour import ContourSet  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Circle  # noqa: E402

import mlpx  # noqa: E402
from mlpx import plot  # noqa: E402
from mlpx._backend import from_host  # noqa: E402
from mlpx._errors import MlpxTypeError, MlpxValueError  # noqa: E402
from mlpx.datasets import make_blobs, make_moons  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def moons():
    X, y = make_moons(120, noise=0.2, seed=0)
    model = mlpx.MLP([2, 8, 4, 1], activations=["relu", "relu", "sigmoid"], seed=0)
    history = model.fit(X, y, epochs=15, batch_size=32, learning_rate=0.02,
                        validation_data=(X[:30], y[:30]))
    return model, X, y, history


@pytest.fixture(scope="module")
def blobs():
    X, y = make_blobs(90, centers=3, seed=1)
    model = mlpx.MLP([2, 6, 3], activations=["tanh", "softmax"], seed=0)
    model.fit(X, y, epochs=10, learning_rate=0.05)
    return model, X, y


def _contour_levels(ax) -> list[float]:
    return [float(level) for c in ax.collections if isinstance(c, ContourSet)
            for level in c.levels]


def _legend_texts(ax) -> list[str]:
    return [t.get_text() for t in ax.get_legend().get_texts()]


# --- import and missing matplotlib ---------------------------------------------------------

def test_import_mlpx_does_not_import_matplotlib():
    code = ("import sys, mlpx, mlpx.plot; "
            "print('matplotlib' in sys.modules, 'matplotlib.pyplot' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False", "False"]


def test_missing_matplotlib_says_how_to_install(monkeypatch, moons):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError) as error:
        plot.history(moons[3])
    assert str(error.value) == "mlpx.plot needs matplotlib: pip install 'mlpx[plot]'"
    with pytest.raises(ImportError, match="mlpx.plot needs matplotlib"):
        plot.network([2, 3, 1])


# --- history -----------------------------------------------------------------------------

def test_history_two_axes_train_and_validation(moons):
    history = moons[3]
    fig = plot.history(history)
    assert isinstance(fig, Figure)
    loss_ax, metric_ax = fig.axes
    assert len(loss_ax.lines) == 2 and len(metric_ax.lines) == 2  # train + validation
    assert list(loss_ax.lines[0].get_xdata()) == list(range(1, 16))  # 1-based epochs
    np.testing.assert_allclose(loss_ax.lines[0].get_ydata(), history.history["loss"])
    np.testing.assert_allclose(metric_ax.lines[1].get_ydata(), history.history["val_accuracy"])
    assert loss_ax.get_xlabel() == "epoch" and loss_ax.get_ylabel() == "loss"
    assert metric_ax.get_ylabel() == "accuracy" and metric_ax.get_title()
    assert "validation loss" in _legend_texts(loss_ax)


def test_history_accepts_dict_and_given_axes(moons):
    series = moons[3].history
    fig, ax = plt.subplots()
    assert plot.history(series, ax=ax) is fig
    assert len(ax.lines) == 2  # the loss and validation loss only
    fig2, axes = plt.subplots(1, 2)
    assert plot.history(series, ax=axes) is fig2
    assert [len(a.lines) for a in axes] == [2, 2]


def test_history_train_only_log_scale_and_metric_choice():
    losses = [10.0 * 0.5**e for e in range(12)]  # spans > 2 decades
    fig = plot.history({"loss": losses, "mae": list(range(12)), "lr": [0.1] * 12})
    loss_ax, metric_ax = fig.axes
    assert loss_ax.get_yscale() == "log" and len(loss_ax.lines) == 1
    assert metric_ax.get_ylabel() == "mae" and len(metric_ax.lines) == 1
    assert len(plot.history({"loss": [1.0, 0.5], "mae": [2.0, 1.0]}, metrics=[]).axes) == 1
    assert plot.history({"loss": [1.0, 0.9]}).axes[0].get_yscale() == "linear"


def test_history_bad_inputs(moons):
    with pytest.raises(MlpxValueError, match="empty"):
        plot.history(mlpx.History())
    with pytest.raises(MlpxValueError, match="empty"):
        plot.history({})
    with pytest.raises(MlpxTypeError, match="History"):
        plot.history([0.5, 0.4])
    with pytest.raises(MlpxValueError, match="'loss'"):
        plot.history({"accuracy": [0.5]})
    with pytest.raises(MlpxValueError, match="one value per epoch"):
        plot.history({"loss": [1.0, 0.5], "val_loss": [1.0]})
    with pytest.raises(MlpxValueError, match="did not record"):
        plot.history(moons[3], metrics="mae")
    with pytest.raises(MlpxTypeError, match="Axes"):
        plot.history(moons[3], ax="left")


# --- learning rates ----------------------------------------------------------------------

def test_learning_rates_one_curve_per_run():
    results = {lr: {"loss": list(np.linspace(1.0, 1.0 - lr, 8))} for lr in (0.5, 0.1, 0.01)}
    fig = plot.learning_rates(results)
    (ax,) = fig.axes
    assert len(ax.lines) == 3
    assert _legend_texts(ax) == ["lr = 0.5", "lr = 0.1", "lr = 0.01"]
    assert len({line.get_color() for line in ax.lines}) == 3
    assert ax.get_title() == "Loss by learning rate" and ax.get_xlabel() == "epoch"
    fig2, ax2 = plt.subplots()
    assert plot.learning_rates({"adam": results[0.1], "sgd": results[0.5]}, ax=ax2) is fig2
    assert _legend_texts(ax2) == ["adam", "sgd"]


def test_learning_rates_log_scale_and_errors(moons):
    fig = plot.learning_rates({1.0: {"loss": [1.0, 1e-4]}, 0.1: {"loss": [1.0, 0.5]}})
    assert fig.axes[0].get_yscale() == "log"
    with pytest.raises(MlpxValueError, match="empty"):
        plot.learning_rates({})
    with pytest.raises(MlpxValueError, match=r"results\[0.1\] has no 'accuracy'"):
        plot.learning_rates({0.1: {"loss": [1.0]}}, metric="accuracy")
    with pytest.raises(MlpxTypeError, match="dict"):
        plot.learning_rates([moons[3]])


# --- decision boundary -------------------------------------------------------------------

def test_decision_boundary_binary(moons):
    model, X, y, _ = moons
    fig = plot.decision_boundary(model, X, y, resolution=40)
    ax = fig.axes[0]
    assert _contour_levels(ax) == [0.5]
    assert "P = 0.5" in _legend_texts(ax)
    assert {"class 0", "class 1"} <= set(_legend_texts(ax))
    points = [c for c in ax.collections if not isinstance(c, ContourSet)
              and c.get_offsets().shape[1:] == (2,) and c.get_label().startswith("class")]
    assert sorted(len(c.get_offsets()) for c in points) == sorted(np.bincount(y).tolist())
    assert len(fig.axes) == 2 and fig.axes[1].get_ylabel() == "P(y = 1)"  # the colour bar
    assert ax.get_xlabel() and ax.get_ylabel() and ax.get_title()


def test_decision_boundary_multiclass_into_given_axes(blobs):
    model, X, y = blobs
    fig, ax = plt.subplots()
    assert plot.decision_boundary(model, X, y, ax=ax, resolution=30, title="blobs") is fig
    assert ax.get_title() == "blobs"
    assert set(_contour_levels(ax)) == {0.0}  # one border per class that has one
    texts = _legend_texts(ax)
    assert texts[:3] == ["class 0", "class 1", "class 2"] and "class boundary" in texts
    markers = {c.get_paths()[0].vertices.tobytes() for c in ax.collections
               if c.get_label().startswith("class")}
    assert len(markers) == 3  # a distinct marker per class
    plot.decision_boundary(model, X, y, resolution=20, proba=True)


def test_decision_boundary_callable_and_labels(moons):
    _, X, y, _ = moons

    def sigmoid_of_x1(points):
        assert isinstance(points, np.ndarray) and points.shape[1] == 2
        return 1.0 / (1.0 + np.exp(-4.0 * points[:, 0]))

    fig = plot.decision_boundary(sigmoid_of_x1, X, y, resolution=25, proba=False)
    assert _contour_levels(fig.axes[0]) == [0.5]
    assert len(fig.axes) == 1  # no colour bar for flat regions

    class Named:
        classes_ = np.array(["cat", "dog"])

        def predict_proba(self, points):
            p = sigmoid_of_x1(points)
            return np.stack([1.0 - p, p], axis=1)

    labels = np.array(["cat", "dog"])[y]
    fig = plot.decision_boundary(Named(), X, labels, resolution=25)
    assert {"class cat", "class dog"} <= set(_legend_texts(fig.axes[0]))


def test_decision_boundary_bad_inputs(moons):
    model, X, y, _ = moons
    X3 = np.concatenate([X, X[:, :1]], axis=1)
    with pytest.raises(MlpxValueError, match=r"X has shape \(120, 3\).*2 features"):
        plot.decision_boundary(model, X3, y)
    with pytest.raises(MlpxValueError, match="one label per row"):
        plot.decision_boundary(model, X, y[:10])
    regressor = mlpx.MLP([2, 3, 1], seed=0)
    with pytest.raises(MlpxValueError, match="needs a classifier"):
        plot.decision_boundary(regressor, X, y)
    with pytest.raises(MlpxTypeError, match="predict_proba"):
        plot.decision_boundary(object(), X, y)
    with pytest.raises(MlpxValueError, match=r"probabilities in \[0, 1\]"):
        plot.decision_boundary(lambda points: points[:, 0] * 10.0, X, y, resolution=5)
    with pytest.raises(MlpxValueError, match="not among the model's classes"):
        plot.decision_boundary(model, X, y + 5, resolution=5)
    with pytest.raises(MlpxValueError, match="resolution"):
        plot.decision_boundary(model, X, y, resolution=1)
    multilabel = mlpx.MLP([2, 3], activations=["sigmoid"], seed=0)
    with pytest.raises(MlpxValueError, match="multi-label"):
        plot.decision_boundary(multilabel, X, y)


@pytest.mark.filterwarnings("ignore:Stochastic Optimizer")
def test_decision_boundary_sklearn_estimator(moons):
    pytest.importorskip("sklearn")
    from mlpx.sklearn import MLPClassifier

    _, X, y, _ = moons
    clf = MLPClassifier(hidden_layer_sizes=(6,), max_iter=5, random_state=0).fit(X, y)
    fig = plot.decision_boundary(clf, X, y, resolution=20)
    assert _contour_levels(fig.axes[0]) in ([0.5], [])
    assert len(plot.network(clf).axes[0].patches) == 2 + 6 + 1


# --- backends ----------------------------------------------------------------------------

def test_every_picture_on_each_backend(backend):
    X_host, y_host = make_moons(60, noise=0.2, seed=3)
    model = mlpx.MLP([2, 6, 1], activations=["tanh", "sigmoid"], backend=backend, seed=0)
    X = from_host(X_host, backend=backend, dtype=model.dtype)
    y = from_host(y_host, backend=backend)
    history = model.fit(X, y, epochs=3, batch_size=None, learning_rate=0.1)
    assert isinstance(plot.decision_boundary(model, X, y, resolution=15), Figure)
    assert isinstance(plot.activations(model, X), Figure)
    assert isinstance(plot.weights(model), Figure)
    assert isinstance(plot.history(history), Figure)
    assert isinstance(plot.confusion_matrix(y, model.predict(X)), Figure)


def test_torch_model_with_numpy_and_torch_inputs():
    torch = pytest.importorskip("torch")
    X, y = make_moons(50, noise=0.2, seed=4)
    model = mlpx.MLP([2, 5, 1], activations=["relu", "sigmoid"], backend="torch", seed=0)
    model.fit(X, y, epochs=2)
    fig = plot.decision_boundary(model, torch.asarray(X), torch.asarray(y), resolution=12)
    assert isinstance(fig, Figure)
    assert isinstance(plot.activations(model, X), Figure)  # NumPy X into a torch model


# --- network -----------------------------------------------------------------------------

@pytest.mark.parametrize("sizes, max_units", [([2, 16, 8, 1], 12), ([784, 64, 10], 8),
                                              ([3, 1], 12)])
def test_network_draws_one_circle_per_unit_up_to_max_units(sizes, max_units):
    fig = plot.network(sizes, max_units=max_units)
    ax = fig.axes[0]
    circles = [p for p in ax.patches if isinstance(p, Circle)]
    assert len(circles) == sum(min(size, max_units) for size in sizes)
    texts = [t.get_text() for t in ax.texts]
    assert texts.count("\u22ee") == sum(size > max_units for size in sizes)
    assert f"{sizes[0]} inputs" in texts and ax.get_title() == "MLP " + "-".join(map(str, sizes))


def test_network_from_model_names_activations(moons):
    fig, ax = plt.subplots()
    assert plot.network(moons[0], ax=ax) is fig
    texts = [t.get_text() for t in ax.texts]
    assert {"2 inputs", "8 relu", "4 relu", "1 sigmoid"} <= set(texts)
    assert len(ax.collections[0].get_segments()) == 2 * 8 + 8 * 4 + 4 * 1


def test_network_bad_inputs():
    with pytest.raises(MlpxValueError, match="layer_sizes"):
        plot.network([2])
    with pytest.raises(MlpxValueError, match="max_units"):
        plot.network([2, 1], max_units=0)


# --- weights and activations -------------------------------------------------------------

def test_weights_one_axes_per_layer(moons):
    model = moons[0]
    fig = plot.weights(model)
    assert len(fig.axes) == 3
    assert [ax.get_title() for ax in fig.axes] == [
        "W1 (2\u00d78, relu)", "W2 (8\u00d74, relu)", "W3 (4\u00d71, sigmoid)"]
    first = fig.axes[0]
    assert sum(p.get_height() for p in first.patches[:-1]) == 2 * 8  # W1's bars count W1
    fig2, ax = plt.subplots()
    assert plot.weights(model, ax=ax, bins=10) is fig2
    assert len(ax.patches) == 3 and len(_legend_texts(ax)) == 3  # a step curve per W


def test_activations_one_axes_per_hidden_layer(moons):
    model, X, _, _ = moons
    fig = plot.activations(model, X)
    assert [ax.get_title() for ax in fig.axes] == ["layer 1: relu (8 units)",
                                                   "layer 2: relu (4 units)"]
    assert sum(p.get_height() for p in fig.axes[0].patches) == X.shape[0] * 8
    fig2, ax = plt.subplots()
    assert plot.activations(model, X, ax=ax) is fig2
    assert _legend_texts(ax) == ["layer 1: relu (8 units)", "layer 2: relu (4 units)"]


def test_weights_and_activations_bad_inputs(moons):
    model, X, _, _ = moons
    with pytest.raises(MlpxTypeError, match="mlpx.MLP"):
        plot.weights(lambda x: x)
    with pytest.raises(MlpxValueError, match="no hidden layer"):
        plot.activations(mlpx.MLP([2, 1], activations=["sigmoid"]), X)
    with pytest.raises(MlpxValueError, match="bins"):
        plot.weights(model, bins=0)
    with pytest.raises(ValueError, match="X"):
        plot.activations(model, X[:, :1])


# --- confusion matrix --------------------------------------------------------------------

def test_confusion_matrix_counts_in_cells():
    y_true = np.array([0, 0, 1, 1, 1, 2, 2, 2, 2])
    y_pred = np.array([0, 1, 1, 1, 0, 2, 2, 1, 2])
    fig = plot.confusion_matrix(y_true, y_pred, labels=["a", "b", "c"])
    ax = fig.axes[0]
    cells = np.array([int(t.get_text()) for t in ax.texts]).reshape(3, 3)
    expected = np.zeros((3, 3), dtype=int)
    np.add.at(expected, (y_true, y_pred), 1)
    np.testing.assert_array_equal(cells, expected)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c"]
    assert ax.get_xlabel() == "predicted" and ax.get_ylabel() == "true"
    colours = {t.get_text(): t.get_color() for t in ax.texts}
    assert colours["3"] == "black" and colours["0"] == "white"  # contrast on cividis


def test_confusion_matrix_normalized_labels_and_given_axes():
    y_true = np.array(["cat", "dog", "dog", "dog"])
    y_pred = np.array(["cat", "dog", "cat", "dog"])
    fig, ax = plt.subplots()
    assert plot.confusion_matrix(y_true, y_pred, ax=ax, normalize=True) is fig
    assert [t.get_text() for t in ax.texts] == ["1.00", "0.00", "0.33", "0.67"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["cat", "dog"]


def test_confusion_matrix_bad_inputs():
    with pytest.raises(MlpxValueError, match="y_pred has 2"):
        plot.confusion_matrix([0, 1, 1], [0, 1])
    with pytest.raises(MlpxValueError, match="normalize"):
        plot.confusion_matrix([0, 1], [0, 1], normalize="rows")
    with pytest.raises(MlpxValueError, match="empty"):
        plot.confusion_matrix([], [])


def test_decision_boundary_colors_one_per_class(moons):
    from matplotlib.colors import to_hex

    model, X, y = moons[0], moons[1], moons[2]
    fig = plot.decision_boundary(model, X, y, colors=["#D55E00", "#0072B2"])
    scatters = [c for c in fig.axes[0].collections if hasattr(c, "get_facecolor")
                and c.get_offsets().shape[0] > 0 and c.get_label().startswith("class")]
    assert [to_hex(c.get_facecolor()[0]) for c in scatters] == ["#d55e00", "#0072b2"]
    with pytest.raises(mlpx.MlpxValueError, match="colors"):
        plot.decision_boundary(model, X, y, colors=["#D55E00"])
    with pytest.raises(mlpx.MlpxValueError, match="colors"):
        plot.decision_boundary(model, X, y, colors=["#D55E00", "not a colour"])


def test_history_leaves_out_the_weight_change_that_tol_logs():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 3))
    y = (X[:, 0] > 0).astype(int)
    history = mlpx.MLP([3, 3, 1], activations=["relu", "sigmoid"], seed=0).fit(
        X, y, epochs=5, batch_size=None, optimizer="sgd", learning_rate=0.1, tol=1e-9)
    labels = [line.get_label() for line in plot.history(history).axes[1].get_lines()]
    assert labels == ["train accuracy"]
