"""Pictures of training and of the network, drawn with matplotlib (the optional extra ``plot``).

Every function returns the matplotlib ``Figure`` and accepts ``ax=`` to draw into an axes
of your own; none calls ``plt.show()``. matplotlib is imported only when a function runs, so
``import mlpx`` works without it; without it the functions raise ``ImportError`` saying
how to install it (``pip install 'mlpx[plot]'``).

Colours are the Okabe-Ito palette (distinguishable with the common colour-vision
deficiencies) and classes also differ by marker, so the pictures read in greyscale too.
Plotting is one of the places whose job is to bring data to the host: arrays of any backend
are copied with :func:`mlpx.to_numpy`.

Functions
---------
history              loss and metric curves, train vs validation
learning_rates       one loss (or metric) curve per run, several runs in one axes
decision_boundary    any 2-D classifier's probabilities, its P = 0.5 contour and the points
network              the layer sizes as a diagram of circles and connections
weights              a histogram per weight matrix
activations          a histogram per hidden layer's activations on some inputs
confusion_matrix     counts (or fractions) of true vs predicted labels
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from mlpx._backend import backend_of, dtype_name, is_host_array, to_numpy
from mlpx._errors import MlpxTypeError, MlpxValueError
from mlpx.model import MLP, _check_layer_sizes

__all__ = [
    "activations",
    "confusion_matrix",
    "decision_boundary",
    "history",
    "learning_rates",
    "network",
    "weights",
]

MISSING_MATPLOTLIB = "mlpx.plot needs matplotlib: pip install 'mlpx[plot]'"

# Okabe & Ito (2008), ordered so that neighbours contrast: blue, vermillion, bluish green,
# orange, reddish purple, sky blue, yellow, black.
OKABE_ITO = ("#0072B2", "#D55E00", "#009E73", "#E69F00", "#CC79A7", "#56B4E9", "#F0E442",
             "#000000")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
LINESTYLES = ("-", "--", "-.", ":")
# History keys that are not a metric of the model.
_NOT_METRICS = ("loss", "lr", "time", "max_weight_change")  # logs that are not metrics


# --- shared helpers ----------------------------------------------------------------------

def _pyplot():
    """``matplotlib.pyplot``, imported on first use; ImportError with the fix when missing."""
    try:
        import matplotlib  # noqa: F401
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(MISSING_MATPLOTLIB) from exc
    return plt


def _is_axes(obj) -> bool:
    from matplotlib.axes import Axes

    return isinstance(obj, Axes)


def _check_axes(ax, *, name: str = "ax"):
    if not _is_axes(ax):
        raise MlpxTypeError(
            f"{name}={ax!r} must be a matplotlib Axes (e.g. from plt.subplots()) or None"
        )
    return ax


def _new_axes(ncols: int, *, width: float, height: float) -> list:
    """A new figure (constrained layout) with ``ncols`` axes in a row; returns the axes."""
    plt = _pyplot()
    _, axes = plt.subplots(1, ncols, figsize=(width * ncols, height), layout="constrained",
                           squeeze=False)
    return list(axes[0])


def _colour(i: int) -> str:
    return OKABE_ITO[i % len(OKABE_ITO)]


def _lighten(colour, amount: float) -> np.ndarray:
    """RGB of ``colour`` mixed with white: amount 0 is the colour, 1 is white."""
    from matplotlib.colors import to_rgb

    return 1.0 - (1.0 - np.asarray(to_rgb(colour))) * (1.0 - amount)


def _spans_decades(values, decades: float = 2.0) -> bool:
    """True when the finite values are all > 0 and max / min exceeds 10**decades."""
    array = np.asarray(values, dtype=float)
    array = array[np.isfinite(array)]
    if array.size == 0 or np.any(array <= 0):
        return False
    return float(array.max() / array.min()) > 10.0**decades


def _to_host(array, *, name: str) -> np.ndarray:
    """A NumPy copy of an array of any backend (plotting is where data comes to the host)."""
    try:
        return np.asarray(to_numpy(array))
    except Exception as exc:  # a library mlpx cannot read: say which argument
        raise MlpxTypeError(
            f"{name} must be an array (NumPy, torch, CuPy, array-api-strict) or a list; "
            f"got {type(array).__name__}"
        ) from exc


def _mlpx_model(model) -> MLP | None:
    """The mlpx MLP behind ``model`` (itself, or a fitted mlpx.sklearn estimator's), or None."""
    if isinstance(model, MLP):
        return model
    inner = getattr(model, "model_", None)
    return inner if isinstance(inner, MLP) else None


def _require_mlp(model, *, function: str) -> MLP:
    mlp = _mlpx_model(model)
    if mlp is None:
        raise MlpxTypeError(
            f"{function} needs an mlpx.MLP or a fitted mlpx.sklearn estimator; got "
            f"{type(model).__name__}"
        )
    return mlp


def _format_key(key) -> str:
    """``"lr = 0.1"`` for a number, the text itself otherwise."""
    if isinstance(key, (int, float, np.integer, np.floating)) and not isinstance(key, bool):
        return f"lr = {float(key):g}"
    return str(key)


# --- history -----------------------------------------------------------------------------

def _history_dict(history, *, name: str = "history") -> tuple[dict, np.ndarray]:
    """``(series, epochs)`` from a History or its ``.history`` dict; epochs 1-based.

    Raises
    ------
    MlpxTypeError
        Neither a History nor a mapping of lists.
    MlpxValueError
        Empty, no "loss", or series of different lengths.
    """
    if isinstance(history, Mapping):
        series, recorded = dict(history), None
    elif isinstance(getattr(history, "history", None), Mapping):
        series, recorded = dict(history.history), getattr(history, "epoch", None)
    else:
        raise MlpxTypeError(
            f"{name} must be an mlpx History (what fit returns) or its .history dict; got "
            f"{type(history).__name__}"
        )
    if not series or not any(len(values) for values in series.values()):
        raise MlpxValueError(
            f"{name} is empty (no epoch was recorded); plot the History that fit returned "
            "after at least one epoch"
        )
    if "loss" not in series:
        raise MlpxValueError(
            f"{name} has no 'loss' series (it has {sorted(series)}); pass the History that "
            "fit returned"
        )
    n_epochs = len(series["loss"])
    for key, values in series.items():
        if len(values) != n_epochs:
            raise MlpxValueError(
                f"{name}[{key!r}] has {len(values)} values but 'loss' has {n_epochs}; every "
                "series needs one value per epoch"
            )
    if recorded is not None and len(recorded) == n_epochs:
        epochs = np.asarray(recorded, dtype=int) + 1
    else:
        epochs = np.arange(1, n_epochs + 1)
    return series, epochs


def _metric_names(series: dict, metrics) -> list[str]:
    """The metrics to draw: the given names, or every recorded one (accuracy, mae, ...)."""
    available = [k for k in series if k not in _NOT_METRICS and not k.startswith("val_")]
    if metrics is None:
        return available
    names = [metrics] if isinstance(metrics, str) else list(metrics)
    for metric in names:
        if not isinstance(metric, str) or metric not in series:
            raise MlpxValueError(
                f"metrics has {metric!r}, which the history did not record; it has "
                f"{available or 'no metrics'}"
            )
    return names


def _plot_series(ax, epochs, series: dict, key: str, colours: tuple[str, str]) -> None:
    """Draw ``key`` (solid) and ``val_key`` (dashed) against the epochs."""
    marker = "o" if len(epochs) <= 20 else None
    ax.plot(epochs, np.asarray(series[key], dtype=float), color=colours[0], linestyle="-",
            marker=marker, markersize=4, label=f"train {key}")
    val_key = f"val_{key}"
    if val_key in series:
        ax.plot(epochs, np.asarray(series[val_key], dtype=float), color=colours[1],
                linestyle="--", marker=marker, markersize=4, label=f"validation {key}")


def _integer_epochs(ax, epochs) -> None:
    """Epoch ticks on whole numbers only: every epoch when there are few."""
    from matplotlib.ticker import MaxNLocator

    epochs = np.unique(np.asarray(epochs, dtype=int))
    if epochs.size <= 12:
        ax.set_xticks(epochs)
        ax.set_xlim(epochs[0] - 0.5, epochs[-1] + 0.5)
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, steps=[1, 2, 5, 10]))


def _mark_best(ax, epochs, values, *, lower_is_better: bool, colour: str) -> None:
    """A dot at the best validation value (a scatter, not a line)."""
    array = np.asarray(values, dtype=float)
    if not np.any(np.isfinite(array)):
        return
    best = int(np.nanargmin(array) if lower_is_better else np.nanargmax(array))
    ax.scatter([epochs[best]], [array[best]], s=60, facecolors="none", edgecolors=colour,
               linewidths=1.5, zorder=3, label=f"best validation (epoch {epochs[best]})")


def _draw_loss(ax, series: dict, epochs) -> None:
    _plot_series(ax, epochs, series, "loss", (OKABE_ITO[0], OKABE_ITO[1]))
    _integer_epochs(ax, epochs)
    if "val_loss" in series:
        _mark_best(ax, epochs, series["val_loss"], lower_is_better=True, colour=OKABE_ITO[1])
    values = list(series["loss"]) + list(series.get("val_loss", []))
    if _spans_decades(values):
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (log scale)" if ax.get_yscale() == "log" else "loss")
    ax.set_title("Loss")
    ax.grid(True, alpha=0.3)
    ax.legend()


def _draw_metrics(ax, series: dict, epochs, names: list[str]) -> None:
    for i, metric in enumerate(names):
        _plot_series(ax, epochs, series, metric, (_colour(2 * i), _colour(2 * i + 1)))
    _integer_epochs(ax, epochs)
    ax.set_xlabel("epoch")
    ax.set_ylabel(names[0] if len(names) == 1 else "metric")
    ax.set_title(", ".join(name.capitalize() if i == 0 else name
                           for i, name in enumerate(names)))
    ax.grid(True, alpha=0.3)
    ax.legend()


def history(history, metrics=None, ax=None):
    """Loss and metric curves of a fit, training vs validation.

    Parameters
    ----------
    history : History or dict of str -> list of float
        What ``fit`` returned, or its ``.history`` dict (``loss``, ``val_loss``,
        ``accuracy`` or ``mae``, ...), one value per epoch.
    metrics : str or list of str, optional
        The metrics for the second axes (each with its ``val_`` version when recorded).
        Default: every recorded metric except loss, lr and time. ``[]`` draws the loss only.
    ax : matplotlib Axes or sequence of two Axes, optional
        None: a new figure, loss on the left and the metrics on the right (one axes when
        there is no metric). One Axes: only the loss (and validation loss) is drawn there.
        Two Axes: the loss in the first, the metrics in the second.

    Returns
    -------
    matplotlib.figure.Figure

    Notes
    -----
    Epochs are numbered from 1. The loss axis is logarithmic when the losses span more than
    two decades. An open circle marks the epoch with the lowest validation loss.
    """
    _pyplot()
    series, epochs = _history_dict(history)
    names = _metric_names(series, metrics)
    if ax is None:
        axes = _new_axes(2 if names else 1, width=5.0, height=3.8)
    elif _is_axes(ax):
        axes = [ax]
    else:
        axes = list(np.ravel(np.asarray(ax, dtype=object))) if isinstance(
            ax, (Sequence, np.ndarray)) else None
        if not axes or len(axes) > 2:
            raise MlpxTypeError(
                f"ax={ax!r} must be None, one matplotlib Axes (loss only) or a sequence of "
                "two Axes (loss, metrics)"
            )
        for i, one in enumerate(axes):
            _check_axes(one, name=f"ax[{i}]")
    _draw_loss(axes[0], series, epochs)
    if len(axes) == 2 and names:
        _draw_metrics(axes[1], series, epochs, names)
    return axes[0].figure


def learning_rates(results, metric: str = "loss", ax=None):
    """One curve per training run, e.g. the same model at several learning rates.

    Parameters
    ----------
    results : dict of float or str -> History (or its ``.history`` dict)
        ``{0.1: history_a, 0.01: history_b}``; number keys are labelled ``"lr = 0.1"``, other
        keys as they are.
    metric : str
        The series to compare: ``"loss"``, ``"val_loss"``, ``"accuracy"``, ...
    ax : matplotlib Axes, optional
        Where to draw; default a new figure.

    Returns
    -------
    matplotlib.figure.Figure

    Notes
    -----
    Runs differ by colour (Okabe-Ito) and line style. The y axis is logarithmic when the
    values span more than two decades (a diverging or a very fast run).
    """
    _pyplot()
    if not isinstance(results, Mapping):
        raise MlpxTypeError(
            f"results must be a dict {{learning_rate: History}}; got {type(results).__name__}"
        )
    if not results:
        raise MlpxValueError("results is empty; give at least one {learning_rate: History}")
    if not isinstance(metric, str):
        raise MlpxTypeError(f"metric={metric!r} must be a history key such as 'loss'")
    runs = []
    for key, run in results.items():
        series, epochs = _history_dict(run, name=f"results[{key!r}]")
        if metric not in series:
            raise MlpxValueError(
                f"results[{key!r}] has no {metric!r} series (it has {sorted(series)}); "
                "choose another metric="
            )
        runs.append((key, epochs, np.asarray(series[metric], dtype=float)))
    ax = _check_axes(ax) if ax is not None else _new_axes(1, width=6.4, height=4.2)[0]
    for i, (key, epochs, values) in enumerate(runs):
        ax.plot(epochs, values, color=_colour(i), linestyle=LINESTYLES[(i // 2) % 4],
                linewidth=1.8, label=_format_key(key))
    _integer_epochs(ax, np.concatenate([epochs for _, epochs, _ in runs]))
    if _spans_decades(np.concatenate([values for _, _, values in runs])):
        ax.set_yscale("log")
    scale = " (log scale)" if ax.get_yscale() == "log" else ""
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"{metric}{scale}")
    by = "learning rate" if all(isinstance(key, (int, float, np.number)) and
                                not isinstance(key, bool) for key in results) else "run"
    ax.set_title(f"{metric[:1].upper()}{metric[1:]} by {by}")
    ax.grid(True, alpha=0.3)
    ax.legend()
    return ax.figure


# --- decision boundary -------------------------------------------------------------------

def _check_points(X, y) -> tuple[np.ndarray, np.ndarray]:
    """X as float (n, 2) and y as (n,) on the host; one-hot y becomes class indices."""
    X = _to_host(X, name="X")
    if X.ndim != 2 or X.shape[1] != 2:
        raise MlpxValueError(
            f"X has shape {X.shape}; decision_boundary needs X of shape (n_samples, 2): "
            "exactly 2 features (project or select two columns first)"
        )
    if X.shape[0] == 0:
        raise MlpxValueError("X has no rows; decision_boundary needs at least one point")
    if X.dtype.kind not in "biuf" or not np.all(np.isfinite(X)):
        raise MlpxValueError("X must hold finite numbers (no NaN, inf or text)")
    y = _to_host(y, name="y")
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim not in (1, 2) or y.shape[0] != X.shape[0]:
        raise MlpxValueError(
            f"y has shape {y.shape}; it needs one label per row of X ({X.shape[0]},)"
        )
    return X.astype(float, copy=False), y


def _probability_function(model):
    """``(f, mlp)``: f maps a NumPy (n, 2) grid to host probabilities."""
    mlp = _mlpx_model(model)
    if mlp is not None:
        if not mlp.is_classifier:
            raise MlpxValueError(
                f"decision_boundary needs a classifier; {mlp!r} is a regression model "
                "(give it a sigmoid or softmax output)"
            )
        if mlp.task == "binary" and mlp.n_outputs > 1:
            raise MlpxValueError(
                "decision_boundary draws single-label classifiers; this model is multi-label "
                f"({mlp.n_outputs} sigmoid outputs): pass a callable returning one column"
            )
    if getattr(model, "is_classifier", True) is False:
        raise MlpxValueError("decision_boundary needs a classifier; model is not one")
    predict_proba = getattr(model, "predict_proba", None)
    if callable(predict_proba):
        return predict_proba, mlp
    if callable(model):
        return model, mlp
    raise MlpxTypeError(
        f"model must be a classifier with predict_proba (an mlpx.MLP, an mlpx.sklearn "
        f"estimator) or a callable mapping an (n, 2) array to probabilities; got "
        f"{type(model).__name__}"
    )


def _grid(X: np.ndarray, resolution: int) -> tuple[np.ndarray, np.ndarray]:
    """``(xx, yy)``, each (resolution, resolution), covering X with a 10 % margin."""
    low, high = X.min(axis=0), X.max(axis=0)
    span = np.where(high - low > 0, high - low, 1.0)
    low, high = low - 0.1 * span, high + 0.1 * span
    return np.meshgrid(np.linspace(low[0], high[0], resolution),
                       np.linspace(low[1], high[1], resolution))


def _grid_probabilities(function, grid: np.ndarray, *, batch_rows: int | None) -> np.ndarray:
    """Host probabilities (n_grid, n_columns) of ``function`` on the grid points."""
    rows = grid.shape[0] if batch_rows is None else batch_rows
    parts = []
    for begin in range(0, grid.shape[0], rows):
        part = _to_host(function(grid[begin:begin + rows]), name="the model's probabilities")
        parts.append(part.reshape(part.shape[0], -1) if part.ndim else part.reshape(-1, 1))
    proba = np.concatenate(parts, axis=0).astype(float)
    if proba.shape[0] != grid.shape[0]:
        raise MlpxValueError(
            f"the model returned {proba.shape[0]} rows of probabilities for {grid.shape[0]} "
            "points; it must return one row per input row"
        )
    if not np.all(np.isfinite(proba)) or proba.min() < -1e-6 or proba.max() > 1 + 1e-6:
        raise MlpxValueError(
            "the model must return probabilities in [0, 1] (predict_proba, not predict)"
        )
    if proba.shape[1] > 1 and not np.allclose(proba.sum(axis=1), 1.0, atol=1e-3):
        raise MlpxValueError(
            "the model's probabilities do not sum to 1 per row (a multi-label model?); "
            "decision_boundary draws single-label classifiers"
        )
    return proba


def _class_labels(model, n_classes: int) -> np.ndarray:
    """``model.classes_`` on the host, or 0..n_classes-1 when the model has none."""
    classes = getattr(model, "classes_", None)
    if classes is None:
        classes = np.arange(n_classes)
    classes = np.asarray(to_numpy(classes))
    if classes.shape[0] != n_classes:
        raise MlpxValueError(
            f"the model has {classes.shape[0]} classes_ but returns {n_classes} probability "
            "columns"
        )
    return classes


def _point_indices(y: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Index into ``classes`` of every label in y (or the argmax of one-hot rows)."""
    if y.ndim == 2:
        if y.shape[1] != classes.shape[0]:
            raise MlpxValueError(
                f"y has {y.shape[1]} columns but the model has {classes.shape[0]} classes"
            )
        return np.argmax(y, axis=1)
    lookup = {value: i for i, value in enumerate(classes.tolist())}
    unknown = sorted({value for value in y.tolist() if value not in lookup}, key=str)
    if unknown:
        raise MlpxValueError(
            f"y has labels {unknown[:5]} that are not among the model's classes "
            f"{classes.tolist()}"
        )
    return np.asarray([lookup[value] for value in y.tolist()], dtype=int)


def _palette(colors, n_classes: int) -> list:
    """One colour per class: ``colors`` checked, or the Okabe-Ito colours."""
    if colors is None:
        return [_colour(c) for c in range(n_classes)]
    from matplotlib.colors import is_color_like

    colors = list(colors) if isinstance(colors, (list, tuple)) else None
    if colors is None or len(colors) < n_classes or not all(map(is_color_like, colors)):
        raise MlpxValueError(
            f"colors must be a list of at least {n_classes} matplotlib colours, one per class "
            "(e.g. ['#D55E00', '#0072B2'])"
        )
    return colors


def _binary_colormap(palette: list):
    """Light class-0 colour -> white -> light class-1 colour."""
    from matplotlib.colors import LinearSegmentedColormap

    return LinearSegmentedColormap.from_list(
        "mlpx_two_classes",
        [_lighten(palette[0], 0.62), (1.0, 1.0, 1.0), _lighten(palette[1], 0.62)],
    )


def _shade_binary(ax, xx, yy, p1: np.ndarray, classes, palette: list, *, proba: bool) -> list:
    """Shading of P(class 1) (or two flat regions), the 0.5 contour; legend handles."""
    from matplotlib.lines import Line2D

    fig = ax.figure
    if proba:
        mesh = ax.pcolormesh(xx, yy, p1, cmap=_binary_colormap(palette), vmin=0.0, vmax=1.0,
                             shading="auto", rasterized=True)
        bar = fig.colorbar(mesh, ax=ax, fraction=0.05, pad=0.02)
        bar.set_label(f"P(y = {classes[1]})")
        bar.set_ticks([0.0, 0.25, 0.5, 0.75, 1.0])
    else:
        from matplotlib.colors import ListedColormap

        flat = ListedColormap([_lighten(palette[0], 0.75), _lighten(palette[1], 0.75)])
        ax.pcolormesh(xx, yy, (p1 >= 0.5).astype(float), cmap=flat, vmin=0, vmax=1,
                      shading="auto", rasterized=True)
    if p1.min() < 0.5 < p1.max():
        ax.contour(xx, yy, p1, levels=[0.5], colors="black", linewidths=2.0)
        return [Line2D([], [], color="black", linewidth=2.0, label="P = 0.5")]
    return [Line2D([], [], linestyle="none", label="P = 0.5 not reached here")]


def _shade_multiclass(ax, xx, yy, proba: np.ndarray, palette: list, *,
                      by_confidence: bool) -> list:
    """Regions of the argmax class in light colours and the boundaries between classes."""
    from matplotlib.lines import Line2D

    n_classes = proba.shape[1]
    shape = xx.shape
    winner = np.argmax(proba, axis=1)
    colours = np.stack([_lighten(palette[c], 0.0) for c in range(n_classes)])
    if by_confidence:  # stronger colour where the winning probability is higher
        confidence = (proba.max(axis=1) - 1.0 / n_classes) / (1.0 - 1.0 / n_classes)
        strength = 0.05 + 0.35 * np.clip(confidence, 0.0, 1.0)
    else:
        strength = np.full(winner.shape, 0.32)
    rgb = 1.0 - (1.0 - colours[winner]) * strength[:, None]
    ax.imshow(rgb.reshape(shape + (3,)), origin="lower", interpolation="nearest",
              extent=(xx[0, 0], xx[0, -1], yy[0, 0], yy[-1, 0]), aspect="auto")
    drawn = False
    for c in range(n_classes):  # class c's border: where it stops beating the best other
        others = np.delete(proba, c, axis=1).max(axis=1)
        margin = (proba[:, c] - others).reshape(shape)
        if margin.min() < 0.0 < margin.max():
            ax.contour(xx, yy, margin, levels=[0.0], colors="black", linewidths=1.5)
            drawn = True
    return [Line2D([], [], color="black", linewidth=1.5, label="class boundary")] if drawn \
        else []


def _scatter_points(ax, X: np.ndarray, indices: np.ndarray, classes: np.ndarray,
                    palette: list) -> list:
    handles = []
    for c, label in enumerate(classes.tolist()):
        rows = indices == c
        handles.append(ax.scatter(
            X[rows, 0], X[rows, 1], s=28, marker=MARKERS[c % len(MARKERS)], color=palette[c],
            edgecolors="black", linewidths=0.5, label=f"class {label}", zorder=3,
        ))
    return handles


def decision_boundary(model, X, y, ax=None, resolution: int = 200, proba=None, title=None,
                      colors=None):
    """The decision regions of a 2-D classifier, with its training (or test) points.

    Parameters
    ----------
    model : mlpx.MLP, mlpx.sklearn estimator, object with ``predict_proba``, or callable
        The callable maps a NumPy array of shape (n, 2) to probabilities of shape (n,),
        (n, 1) (P of the second class) or (n, n_classes).
    X : array of shape (n_samples, 2)
        Any mlpx backend; copied to the host.
    y : array of shape (n_samples,) or one-hot (n_samples, n_classes)
        The labels (values of ``model.classes_`` when the model has them).
    ax : matplotlib Axes, optional
        Where to draw; default a new figure.
    resolution : int
        Grid points per axis (``resolution**2`` predictions, made in batches).
    proba : bool, optional
        Shade by probability (True) or by predicted class (False). Default: probability for
        two classes (P(class 1) from blue through white to vermillion, with a colour bar),
        predicted class for more (light Okabe-Ito colours); with True and more classes, the
        colour strengthens with the winning probability.
    title : str, optional
        Default: "Decision boundary" and the network's layer sizes for an mlpx model.
    colors : list of matplotlib colours, optional
        One per class, in the order of ``classes_`` (default: the colour-blind-safe
        Okabe-Ito colours), e.g. ``["#D55E00", "#0072B2"]`` for red and blue points.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    MlpxValueError
        X without exactly 2 columns, y of the wrong length or with unknown labels, a
        regression or multi-label model, outputs that are not probabilities.
    MlpxTypeError
        A model without ``predict_proba`` that is not callable.

    Notes
    -----
    Two classes: a solid black line, "P = 0.5" in the legend, is the decision boundary.
    More classes: black lines separate the regions. Points have one colour and one marker
    per class.
    """
    _pyplot()
    X, y = _check_points(X, y)
    if isinstance(resolution, bool) or not isinstance(resolution, (int, np.integer)) or \
            resolution < 2:
        raise MlpxValueError(f"resolution={resolution!r} must be an int >= 2 (grid points)")
    if proba not in (None, True, False):
        raise MlpxTypeError(f"proba={proba!r} must be None, True or False")
    function, mlp = _probability_function(model)
    xx, yy = _grid(X, int(resolution))
    grid_dtype = dtype_name(mlp.dtype) if mlp is not None else "float64"
    grid = np.column_stack([xx.ravel(), yy.ravel()]).astype(grid_dtype)
    is_plain_callable = function is model
    probabilities = _grid_probabilities(function, grid,
                                        batch_rows=65536 if is_plain_callable else None)
    if probabilities.shape[1] == 1:
        n_classes, p1 = 2, probabilities[:, 0]
    else:
        n_classes, p1 = probabilities.shape[1], probabilities[:, -1]
    classes = _class_labels(model, n_classes)
    indices = _point_indices(y, classes)
    palette = _palette(colors, n_classes)

    ax = _check_axes(ax) if ax is not None else _new_axes(1, width=6.4, height=5.2)[0]
    if n_classes == 2:
        lines = _shade_binary(ax, xx, yy, p1.reshape(xx.shape), classes, palette,
                              proba=proba is not False)
    else:
        lines = _shade_multiclass(ax, xx, yy, probabilities, palette,
                                  by_confidence=bool(proba))
    points = _scatter_points(ax, X, indices, classes, palette)
    ax.set_xlim(xx[0, 0], xx[0, -1])
    ax.set_ylim(yy[0, 0], yy[-1, 0])
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    if title is None:
        title = "Decision boundary" + (
            f" of MLP {'-'.join(map(str, mlp.layer_sizes))}" if mlp is not None else "")
    ax.set_title(title)
    ax.legend(handles=points + lines, loc="upper center", bbox_to_anchor=(0.5, -0.12),
              ncol=min(len(points) + len(lines), 5), frameon=False)
    return ax.figure


# --- the network -------------------------------------------------------------------------

def _layers_and_names(layer_sizes_or_model) -> tuple[list[int], list[str | None]]:
    """Layer sizes and the activation of each weight layer (None when unknown)."""
    mlp = _mlpx_model(layer_sizes_or_model)
    if mlp is not None:
        return list(mlp.layer_sizes), list(mlp.activations)
    if hasattr(layer_sizes_or_model, "predict") or hasattr(layer_sizes_or_model, "fit"):
        raise MlpxTypeError(
            "network needs an mlpx.MLP, a fitted mlpx.sklearn estimator or a list of layer "
            f"sizes; got {type(layer_sizes_or_model).__name__} (fit it first?)"
        )
    sizes = _check_layer_sizes(layer_sizes_or_model)
    return sizes, [None] * (len(sizes) - 1)


def _column_label(i: int, size: int, sizes: list[int], names: list) -> str:
    if i == 0:
        return f"{size} input" + ("s" if size != 1 else "")
    name = names[i - 1]
    if name is None:
        return f"{size} output" + ("s" if size != 1 else "") if i == len(sizes) - 1 \
            else f"{size} units"
    return f"{size} {name}"


def _unit_positions(size: int, max_units: int) -> tuple[np.ndarray, float | None]:
    """y of each drawn circle (top to bottom) and y of the ellipsis (None if all drawn)."""
    if size <= max_units:
        return (size - 1) / 2.0 - np.arange(size), None
    top = max_units // 2
    slots = (max_units + 1 - 1) / 2.0 - np.arange(max_units + 1)  # one slot for "⋮"
    return np.concatenate([slots[:top], slots[top + 1:]]), float(slots[top])


def _column_fontsize(ax, x_limits, y_limits, column_width: float, longest: int) -> float:
    """Points for column labels of ``longest`` characters to fit a column of the diagram.

    The diagram has equal aspect, so a data unit spans the smaller of the axes' width and
    height ratios; labels shrink (down to 5 pt) in a small axes instead of overlapping.
    """
    box = ax.get_window_extent()  # pixels, before any layout engine adjusts it
    points = 72.0 / ax.figure.dpi
    per_unit = min(box.width * points / (x_limits[1] - x_limits[0]),
                   box.height * points / (y_limits[1] - y_limits[0]))
    return float(np.clip(column_width * per_unit / (0.68 * max(longest, 1)), 5.0, 10.0))


def network(layer_sizes_or_model, ax=None, max_units: int = 12):
    """The network as a diagram: a column of circles per layer, lines between layers.

    Parameters
    ----------
    layer_sizes_or_model : list of int, mlpx.MLP or fitted mlpx.sklearn estimator
        Inputs first, e.g. ``[2, 16, 8, 1]``. With a model, each column is labelled with its
        activation ("16 relu", "1 sigmoid").
    ax : matplotlib Axes, optional
        Where to draw; default a new figure sized to the network.
    max_units : int
        A layer with more units draws ``max_units`` circles and a vertical ellipsis; its
        label gives the true count.

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _pyplot()
    from matplotlib.collections import LineCollection
    from matplotlib.patches import Circle

    sizes, names = _layers_and_names(layer_sizes_or_model)
    if isinstance(max_units, bool) or not isinstance(max_units, (int, np.integer)) or \
            max_units < 1:
        raise MlpxValueError(f"max_units={max_units!r} must be an int >= 1")
    tallest = max(max_units + 1 if size > max_units else size for size in sizes)
    dx, radius = 2.6, 0.3
    if ax is None:  # 0.36 inch per data unit, so circles keep their size in any network
        width, height = (len(sizes) + 0.4) * dx, tallest + 2.5
        _, ax = plt.subplots(figsize=(max(4.0, 0.36 * width + 0.4), 0.36 * height + 0.5),
                             layout="constrained")
    else:
        _check_axes(ax)
    box = ax.get_window_extent()  # widen the columns to fill a wide axes
    dx = max(dx, box.width / box.height * (tallest + 2.5) / (len(sizes) + 0.4))
    bottom = -tallest / 2.0
    x_limits, y_limits = (-0.7 * dx, (len(sizes) - 0.3) * dx), (bottom - 1.3, -bottom + 1.2)
    columns = [_unit_positions(size, int(max_units)) for size in sizes]
    segments = []
    for i in range(len(sizes) - 1):
        for y0 in columns[i][0]:
            for y1 in columns[i + 1][0]:
                segments.append([(i * dx + radius, y0), ((i + 1) * dx - radius, y1)])
    ax.add_collection(LineCollection(segments, colors="0.45", linewidths=0.6, alpha=0.35,
                                     zorder=1))
    roles = [OKABE_ITO[5]] + [OKABE_ITO[2]] * (len(sizes) - 2) + [OKABE_ITO[3]]
    labels = [_column_label(i, size, sizes, names) for i, size in enumerate(sizes)]
    fontsize = _column_fontsize(ax, x_limits, y_limits, dx, max(map(len, labels)))
    for i, (ys, ellipsis) in enumerate(columns):
        for y in ys:
            ax.add_patch(Circle((i * dx, y), radius, facecolor=roles[i], edgecolor="black",
                                linewidth=0.8, zorder=2))
        if ellipsis is not None:
            ax.text(i * dx, ellipsis, "\u22ee", ha="center", va="center",
                    fontsize=1.6 * fontsize, zorder=2)
        header = "input" if i == 0 else "output" if i == len(sizes) - 1 else f"hidden {i}"
        ax.text(i * dx, -bottom + 0.35, header, ha="center", va="bottom", fontsize=fontsize,
                color="0.25")
        ax.text(i * dx, bottom - 0.35, labels[i], ha="center", va="top", fontsize=fontsize,
                fontweight="bold")
    ax.set_xlim(*x_limits)
    ax.set_ylim(*y_limits)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(f"MLP {'-'.join(map(str, sizes))}")
    return ax.figure


# --- weight and activation histograms ----------------------------------------------------

def _bin_count(bins: int, n_values: int) -> int:
    """``bins``, capped at 2 sqrt(n) (at least 5) so that small matrices are not all gaps."""
    return max(1, min(bins, max(5, int(2 * math.sqrt(n_values)))))


def _histograms(ax_or_none, arrays: list[np.ndarray], labels: list[str], titles: list[str],
                *, bins: int, xlabel: str, extras=None) -> list:
    """One histogram per array: an axes each (new figure) or step curves in one given axes.

    ``extras[i]`` is an optional ``(array, label)`` outlined over histogram i (the biases).
    Returns the axes drawn into.
    """
    if ax_or_none is None:
        axes = _new_axes(len(arrays), width=3.4, height=3.0)
        for i, (ax, values) in enumerate(zip(axes, arrays)):
            extra = extras[i] if extras else None
            pooled = values if extra is None else np.concatenate([values, extra[0]])
            edges = np.histogram_bin_edges(pooled, bins=_bin_count(bins, values.size))
            ax.hist(values, bins=edges, color=_colour(0), alpha=0.85, label=labels[i])
            if extra is not None:
                ax.hist(extra[0], bins=edges, histtype="step", color=_colour(1),
                        linewidth=1.8, label=extra[1])
                ax.margins(y=0.35)  # headroom for the legend above the bars
                ax.legend(fontsize=8, loc="upper right", ncol=2, framealpha=0.9)
            ax.set_title(titles[i], fontsize=10)
            ax.set_xlabel(xlabel)
            ax.set_ylabel("count")
            ax.grid(True, alpha=0.3)
        return axes
    ax = _check_axes(ax_or_none)
    for i, values in enumerate(arrays):
        ax.hist(values, bins=_bin_count(bins, values.size), histtype="step", density=True,
                linewidth=1.6, linestyle=LINESTYLES[(i // 2) % 4], color=_colour(i),
                label=titles[i])
    ax.set_xlabel(xlabel)
    ax.set_ylabel("density")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return [ax]


def _check_bins(bins) -> int:
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 1:
        raise MlpxValueError(f"bins={bins!r} must be an int >= 1")
    return int(bins)


def weights(model, ax=None, bins: int = 40):
    """A histogram of each weight matrix W1, W2, ... (and its biases as an outline).

    Parameters
    ----------
    model : mlpx.MLP or fitted mlpx.sklearn estimator
    ax : matplotlib Axes, optional
        None: a new figure with one axes per layer in a row, each titled
        "W1 (2×16, relu)", with the layer's biases outlined in vermillion on the same bins.
        Given: one step histogram (density) per weight matrix in that axes, with a legend;
        biases are left out.
    bins : int
        At most this many bins; fewer (2 sqrt(n), at least 5) for a matrix of n < bins**2 / 4
        values, so that small matrices do not show as isolated bars.

    Returns
    -------
    matplotlib.figure.Figure
    """
    _pyplot()
    mlp = _require_mlp(model, function="weights")
    bins = _check_bins(bins)
    params = mlp.params
    Ws = [_to_host(W, name="W").ravel() for W in params[0::2]]
    bs = [_to_host(b, name="b").ravel() for b in params[1::2]]
    shapes = list(zip(mlp.layer_sizes[:-1], mlp.layer_sizes[1:]))
    titles = [f"W{i + 1} ({a}\u00d7{b}, {name})" for i, ((a, b), name) in
              enumerate(zip(shapes, mlp.activations))]
    extras = [(b, f"b{i + 1}") for i, b in enumerate(bs)]
    labels = [f"W{i + 1}" for i in range(len(Ws))]
    drawn = _histograms(ax, Ws, labels, titles, bins=bins, xlabel="weight value",
                        extras=extras if ax is None else None)
    if ax is None:
        drawn[0].figure.suptitle("Weights per layer (bars) and biases (outline)")
    else:
        ax.set_title("Weights per layer")
    return drawn[0].figure


def activations(model, X, ax=None, bins: int = 40):
    """Histograms of each hidden layer's activations on X.

    Parameters
    ----------
    model : mlpx.MLP or fitted mlpx.sklearn estimator
        With at least one hidden layer.
    X : array of shape (n_samples, n_features)
        NumPy or the model's backend (other backends are copied through the host).
    ax : matplotlib Axes, optional
        None: a new figure, one axes per hidden layer, titled "layer 1: relu (16 units)";
        the share of activations that are exactly 0 (inactive ReLUs) is written in the
        corner, and counts are on a log scale when that share is over 20 %. Given: one
        step histogram (density) per hidden layer in that axes, with a legend.
    bins : int
        At most this many bins (fewer for few values, as in :func:`weights`).

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    MlpxValueError
        A model without hidden layers, or X the model cannot take.
    """
    _pyplot()
    mlp = _require_mlp(model, function="activations")
    bins = _check_bins(bins)
    if len(mlp.layer_sizes) < 3:
        raise MlpxValueError(
            f"the model {mlp.layer_sizes} has no hidden layer; activations plots hidden "
            "layers only"
        )
    if not is_host_array(X) and backend_of(X).name != mlp.backend.name:
        X = _to_host(X, name="X")
    cache = mlp.forward(X, return_intermediates=True)
    hidden = [_to_host(a, name="activations").ravel() for a in cache.activations[:-1]]
    titles = [f"layer {i + 1}: {name} ({size} units)" for i, (name, size) in
              enumerate(zip(mlp.activations, mlp.layer_sizes[1:-1]))]
    labels = [f"layer {i + 1}" for i in range(len(hidden))]
    drawn = _histograms(ax, hidden, labels, titles, bins=bins, xlabel="activation")
    if ax is None:
        for axes, values in zip(drawn, hidden):
            zeros = float(np.mean(values == 0.0))
            if zeros > 0.2:  # a ReLU spike at 0 would flatten the rest: log counts
                axes.set_yscale("log")
                axes.set_ylabel("count (log scale)")
            if zeros > 0.0:
                axes.text(0.97, 0.95, f"{zeros:.0%} exactly 0", transform=axes.transAxes,
                          ha="right", va="top", fontsize=9,
                          bbox={"facecolor": "white", "edgecolor": "0.7", "alpha": 0.9})
        n_samples = cache.activations[0].shape[0]
        drawn[0].figure.suptitle(f"Hidden activations on {n_samples} samples")
    else:
        if any(float(np.mean(values == 0.0)) > 0.2 for values in hidden):
            ax.set_yscale("log")
            ax.set_ylabel("density (log scale)")
        ax.set_title("Hidden activations")
    return drawn[0].figure


# --- confusion matrix --------------------------------------------------------------------

def _labels_1d(y, *, name: str) -> np.ndarray:
    array = _to_host(y, name=name)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise MlpxValueError(f"{name} has shape {array.shape}; it needs shape (n_samples,)")
    return array


def _confusion_counts(y_true: np.ndarray, y_pred: np.ndarray, labels) -> tuple:
    """``(counts, tick_labels)``; counts[i, j] = samples of class i predicted as j."""
    if labels is None:
        classes = np.unique(np.concatenate([y_true, y_pred]))
        names = classes
    else:
        names = np.asarray(to_numpy(labels)).ravel()
        if names.size == 0:
            raise MlpxValueError("labels is empty; give the classes in display order")
        classes = names
        present = set(np.concatenate([y_true, y_pred]).tolist())
        if not present & set(names.tolist()) and present <= set(range(names.size)):
            classes = np.arange(names.size)  # labels are names for the codes 0..k-1
    lookup = {value: i for i, value in enumerate(classes.tolist())}
    counts = np.zeros((len(classes), len(classes)), dtype=np.int64)
    for true, pred in zip(y_true.tolist(), y_pred.tolist()):
        if true in lookup and pred in lookup:
            counts[lookup[true], lookup[pred]] += 1
    if counts.sum() == 0:
        raise MlpxValueError(
            f"no sample has both its true and predicted label in labels={names.tolist()}"
        )
    return counts, [str(n) for n in names.tolist()]


def _normalized(counts: np.ndarray, normalize) -> tuple[np.ndarray, str]:
    if normalize in (False, None):
        return counts.astype(float), "count"
    axis = {True: 1, "true": 1, "pred": 0, "all": None}.get(normalize, "bad")
    if axis == "bad":
        raise MlpxValueError(
            f"normalize={normalize!r} must be False, True/'true' (rows), 'pred' (columns) or "
            "'all'"
        )
    totals = counts.sum() if axis is None else counts.sum(axis=axis, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        values = np.where(totals > 0, counts / np.maximum(totals, 1), 0.0)
    return values, {1: "fraction of true class", 0: "fraction of predicted class",
                    None: "fraction of all"}[axis]


def confusion_matrix(y_true, y_pred, labels=None, ax=None, normalize=False):
    """The confusion matrix as an image with the numbers in the cells.

    Parameters
    ----------
    y_true, y_pred : arrays of shape (n_samples,)
        Labels of any mlpx backend (copied to the host).
    labels : sequence, optional
        The classes in display order (the tick labels). Samples whose labels are not listed
        are left out. When y holds the codes 0..k-1 and ``labels`` none of them, ``labels``
        are taken as the names of those codes. Default: every label seen, sorted.
    ax : matplotlib Axes, optional
        Where to draw; default a new figure sized to the number of classes.
    normalize : {False, True, "true", "pred", "all"}
        Counts (False), or fractions of each true class (True or "true", rows sum to 1),
        of each predicted class ("pred") or of all samples ("all").

    Returns
    -------
    matplotlib.figure.Figure

    Notes
    -----
    Rows are the true labels, columns the predicted ones (scikit-learn's convention);
    colormap cividis; each cell's text is black or white, whichever contrasts more.
    """
    plt = _pyplot()
    y_true = _labels_1d(y_true, name="y_true")
    y_pred = _labels_1d(y_pred, name="y_pred")
    if y_true.shape[0] != y_pred.shape[0]:
        raise MlpxValueError(
            f"y_true has {y_true.shape[0]} labels but y_pred has {y_pred.shape[0]}; they must "
            "pair up"
        )
    if y_true.shape[0] == 0:
        raise MlpxValueError("y_true is empty; a confusion matrix needs at least one sample")
    counts, names = _confusion_counts(y_true, y_pred, labels)
    values, what = _normalized(counts, normalize)
    k = len(names)
    if ax is None:
        side = max(4.2, 0.55 * k + 2.4)
        _, ax = plt.subplots(figsize=(side + 1.0, side), layout="constrained")
    else:
        _check_axes(ax)
    image = ax.imshow(values, cmap="cividis", vmin=0.0,
                      vmax=max(values.max(), 1e-12), interpolation="nearest")
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04).set_label(what)
    if k <= 30:
        fontsize = 10 if k <= 10 else 8 if k <= 20 else 6
        for i in range(k):
            for j in range(k):
                text = f"{counts[i, j]:d}" if what == "count" else f"{values[i, j]:.2f}"
                red, green, blue, _ = image.cmap(image.norm(values[i, j]))
                luminance = 0.2126 * red + 0.7152 * green + 0.0722 * blue
                ax.text(j, i, text, ha="center", va="center", fontsize=fontsize,
                        color="black" if luminance > 0.45 else "white")
    ax.set_xticks(range(k), names, rotation=45 if max(map(len, names)) > 3 else 0,
                  ha="right" if max(map(len, names)) > 3 else "center")
    ax.set_yticks(range(k), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    accuracy = np.trace(counts) / counts.sum()
    ax.set_title(f"Confusion matrix (accuracy {accuracy:.1%})")
    return ax.figure

