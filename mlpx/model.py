"""The MLP: a stack of Dense layers and a loss.

``MLP`` owns the parameters and knows how to run the network forward, backpropagate one
batch (``loss_and_grads``), predict and evaluate. The fit loop (epochs, batches,
optimizers, callbacks) lives in :mod:`mlpx.train`; ``MLP.fit`` only forwards to it.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

from mlpx import _numpy_predict as numpy_predict
from mlpx._backend import (
    DTYPE_NAMES,
    as_backend_array,
    dtype_name,
    from_host,
    host_array,
    is_host_array,
    resolve_backend,
    resolve_dtype,
    to_numpy,
)
from mlpx._errors import MlpxTypeError, MlpxValueError
from mlpx._targets import default_classes, encode_targets
from mlpx.activations import get_activation
from mlpx.init import initial_params, resolve_initializers
from mlpx.layers import Dense
from mlpx.losses import get_loss, weighted_value
from mlpx.precision import check_matmul_precision, matmul_function

# Per model dtype: the largest finite value, and bytes per number.
_DTYPE_MAX = {name: float(np.finfo(name).max) for name in DTYPE_NAMES}
_DTYPE_ITEMSIZE = {name: np.dtype(name).itemsize for name in DTYPE_NAMES}


class Intermediates(NamedTuple):
    """Every layer's values from one forward pass (tutorial 004's cache).

    Attributes
    ----------
    inputs : array of shape (n_samples, n_features)
    pre_activations : list of arrays
        ``z_l = a_{l-1} @ W_l + b_l`` for each layer l, shape (n_samples, layer_sizes[l]).
    activations : list of arrays
        ``a_l = f_l(z_l)`` for each layer; the last one is the network output.
    """

    inputs: Any
    pre_activations: list
    activations: list

    @property
    def output(self):
        return self.activations[-1]


def _check_layer_sizes(layer_sizes) -> list[int]:
    try:
        sizes = list(layer_sizes)
    except TypeError:
        raise MlpxTypeError(
            f"layer_sizes={layer_sizes!r} must be a list of ints such as [2, 16, 8, 1]"
        ) from None
    if len(sizes) < 2:
        raise MlpxValueError(
            f"layer_sizes={sizes!r} needs at least two sizes (inputs and outputs), e.g. [2, 1]"
        )
    for size in sizes:
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
            raise MlpxValueError(
                f"layer_sizes={sizes!r} has {size!r}; every size must be an int >= 1"
            )
    return [int(size) for size in sizes]


def _check_activations(activations, n_layers: int) -> list:
    if activations is None:
        return [get_activation("relu")] * (n_layers - 1) + [get_activation("identity")]
    if isinstance(activations, str):
        raise MlpxTypeError(
            f"activations={activations!r} must be a list with one name per weight layer "
            f"({n_layers}), e.g. {['relu'] * (n_layers - 1) + ['sigmoid']}"
        )
    names = list(activations)
    if len(names) != n_layers:
        raise MlpxValueError(
            f"activations has {len(names)} entries but layer_sizes gives {n_layers} weight "
            f"layers; give one activation per layer ({n_layers})"
        )
    resolved = [get_activation(name, parameter=f"activations[{i}]") for i, name in
                enumerate(names)]
    for i, act in enumerate(resolved[:-1]):
        if act.output_only:
            raise MlpxValueError(
                f"activations[{i}]={act.name!r} is only allowed on the output layer; use "
                "relu, tanh or another element-wise activation in hidden layers"
            )
    return resolved


def _check_alpha(alpha) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.floating, np.integer)):
        raise MlpxTypeError(f"alpha={alpha!r} must be a number >= 0 (the L2 penalty)")
    if not math.isfinite(alpha) or alpha < 0:
        raise MlpxValueError(f"alpha={alpha!r} must be a finite number >= 0 (the L2 penalty)")
    return float(alpha)


def _check_seed(seed):
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise MlpxValueError(f"seed={seed!r} must be None or an int >= 0")
    return int(seed)


def _map_state_arrays(state: dict | None, convert) -> dict | None:
    """An optimizer state with ``convert`` applied to each of its arrays."""
    if state is None:
        return None
    return {key: [convert(a) for a in value] if isinstance(value, list) else value
            for key, value in state.items()}


class MLP:
    """A multi-layer perceptron trained by backpropagation on any array-API backend.

    Parameters
    ----------
    layer_sizes : list of int
        Units per layer, inputs first: ``[2, 16, 8, 1]`` is 2 inputs, hidden layers of 16
        and 8 units, and 1 output.
    activations : list of str, optional
        One per weight layer (``len(layer_sizes) - 1``): identity, sigmoid, tanh, relu,
        leaky_relu, elu, softplus, gelu, exp, or softmax (output only). Default: relu in
        the hidden layers and identity at the output (regression).
    loss : {"mse", "half_squared_error", "binary_crossentropy", "categorical_crossentropy", \
"poisson"}, optional
        Default: inferred from the output activation (sigmoid -> binary cross-entropy,
        softmax -> categorical cross-entropy, exp -> poisson, otherwise mse).
    backend : str or array-API namespace
        "numpy", "cupy", "torch" or "array_api_strict" (or the namespace itself).
    dtype : {"float32", "float64"}
    seed : int, optional
        Seeds the initial weights and the shuffling; the same seed gives the same initial
        weights on every backend.
    alpha : float
        L2 penalty on the weights (not the biases): the loss gains
        ``alpha / 2 * sum(W**2)``.
    alpha_per_sample : bool
        Divide the penalty by the batch's size (its total sample weight when fit has
        ``sample_weight``): ``alpha / (2 n) * sum(W**2)``, scikit-learn's MLP convention.
    init : str or list of str, optional
        glorot_uniform, glorot_normal, he_uniform or he_normal, for all layers or one per
        layer. Default: He for the ReLU family, Glorot otherwise.
    device : optional
        The backend device (e.g. "cuda:1" for torch). Default: the backend's own choice.
    matmul_precision : {"highest", "bfloat16"}
        "highest" multiplies in ``dtype``. "bfloat16" is mixed precision (torch backend,
        float32 models): every matrix product, forward and backward, takes bfloat16 inputs
        and returns float32, while weights, activations, loss and optimizer stay float32;
        several times faster where the hardware multiplies bfloat16 (AVX512-BF16 or AMX
        CPUs, GPU tensor cores). See :mod:`mlpx.precision`.

    Attributes
    ----------
    params : list of arrays
        ``[W1, b1, W2, b2, ...]``, W of shape (fan_in, fan_out), b of shape (fan_out,).
        During ``fit`` they are views of the weights being trained, updated in place; keep a
        snapshot with :meth:`copy_params`.
    classes_ : numpy array or None
        The class labels the outputs stand for (None for regression).
    n_features_in_ : int
    history_ : History or None
        What the last ``fit`` returned.
    """

    def __init__(
        self,
        layer_sizes,
        activations=None,
        loss: str | None = None,
        backend: Any = "numpy",
        dtype: str = "float32",
        seed: int | None = None,
        alpha: float = 0.0,
        init=None,
        device: Any = None,
        alpha_per_sample: bool = False,
        matmul_precision: str = "highest",
    ) -> None:
        sizes = _check_layer_sizes(layer_sizes)
        acts = _check_activations(activations, len(sizes) - 1)
        if acts[-1].name == "softmax" and sizes[-1] < 2:
            raise MlpxValueError(
                "a softmax output needs at least 2 units (one per class); for two classes use "
                "1 sigmoid unit or 2 softmax units"
            )
        self.loss = get_loss(loss, output_activation=acts[-1].name)
        self.alpha = _check_alpha(alpha)
        if not isinstance(alpha_per_sample, (bool, np.bool_)):
            raise MlpxTypeError(f"alpha_per_sample={alpha_per_sample!r} must be True or False")
        self.alpha_per_sample = bool(alpha_per_sample)
        self.seed = _check_seed(seed)
        initializers = resolve_initializers(init, [act.name for act in acts])
        precision = check_matmul_precision(matmul_precision)
        self.backend = resolve_backend(backend, device)
        self.dtype = resolve_dtype(dtype, xp=self.backend.xp)
        layer_matmul = self._layer_matmul(precision)
        self._matmul_precision = precision
        self.layer_sizes = sizes
        self.activations = [act.name for act in acts]
        self.init = initializers

        init_seed, shuffle_seed = np.random.SeedSequence(self.seed).spawn(2)
        host_params = initial_params(sizes, initializers, np.random.default_rng(init_seed))
        self.shuffle_rng = np.random.default_rng(shuffle_seed)
        device_params = [from_host(p, backend=self.backend, dtype=self.dtype)
                         for p in host_params]
        xp = self.backend.xp
        self.layers = [
            Dense(device_params[2 * i], device_params[2 * i + 1], act, xp=xp,
                  matmul=layer_matmul)
            for i, act in enumerate(acts)
        ]
        self.classes_ = default_classes(self.task, self.n_outputs)
        self.n_features_in_ = sizes[0]
        self.history_ = None
        self.optimizer_ = None
        self.optimizer_state_ = None
        self.stop_training = False
        self.stop_reason = None
        self._has_seen_labels = False

    # --- description ------------------------------------------------------------------

    def _layer_matmul(self, precision):
        """The layers' product at ``precision``, checked against the backend and dtype."""
        return matmul_function(precision, xp=self.backend.xp, dtype=self.dtype,
                               backend_name=self.backend.name,
                               dtype_label=dtype_name(self.dtype))

    @property
    def matmul_precision(self) -> str:
        """"highest" or "bfloat16": the layers' matrix products (see the class docstring).

        It can be set, e.g. to train with bfloat16 products and evaluate with float32 ones;
        a value the backend or dtype cannot run is refused and nothing changes.
        """
        return self._matmul_precision

    @matmul_precision.setter
    def matmul_precision(self, precision) -> None:
        matmul = self._layer_matmul(precision)
        for layer in self.layers:
            layer.matmul = matmul
        self._matmul_precision = precision

    @property
    def xp(self):
        """The array-API namespace of the model's backend."""
        return self.backend.xp

    @property
    def n_outputs(self) -> int:
        return self.layer_sizes[-1]

    @property
    def task(self) -> str:
        """"binary", "multiclass" or "regression", from the loss."""
        return self.loss.task

    @property
    def is_classifier(self) -> bool:
        return self.task != "regression"

    def __repr__(self) -> str:
        precision = ("" if self.matmul_precision == "highest"
                     else f", matmul_precision={self.matmul_precision!r}")
        return (
            f"MLP({self.layer_sizes}, activations={self.activations}, loss={self.loss.name!r}, "
            f"backend={self.backend.name!r}, dtype={dtype_name(self.dtype)!r}{precision}, "
            f"seed={self.seed})"
        )

    # --- pickling ---------------------------------------------------------------------

    def __getstate__(self) -> dict:
        """Everything as host (NumPy) data: modules and device arrays do not pickle."""
        state = dict(self.__dict__)
        state.pop("_fit_context", None)  # a running fit's internals (while a callback pickles)
        state["layers"] = [(to_numpy(layer.W), to_numpy(layer.b)) for layer in self.layers]
        state["dtype"] = dtype_name(self.dtype)
        state["optimizer_state_"] = _map_state_arrays(self.optimizer_state_, to_numpy)
        return state

    def __setstate__(self, state: dict) -> None:
        host_layers = state.pop("layers")
        precision = state.pop("_matmul_precision", "highest")  # pickles from before the option
        self.__dict__.update(state)
        self.dtype = resolve_dtype(state["dtype"], xp=self.backend.xp)
        layer_matmul = self._layer_matmul(precision)
        self._matmul_precision = precision
        on_device = lambda host: from_host(host, backend=self.backend, dtype=self.dtype)  # noqa: E731
        self.layers = [
            Dense(on_device(W), on_device(b), get_activation(name), xp=self.xp,
                  matmul=layer_matmul)
            for (W, b), name in zip(host_layers, self.activations)
        ]
        self.optimizer_state_ = _map_state_arrays(self.optimizer_state_, on_device)

    # --- parameters -------------------------------------------------------------------

    @property
    def params(self) -> list:
        """``[W1, b1, W2, b2, ...]`` on the model's backend; W (fan_in, fan_out), b (fan_out,)."""
        params = []
        for layer in self.layers:
            params.extend((layer.W, layer.b))
        return params

    @params.setter
    def params(self, new_params) -> None:
        self.set_params(new_params)

    def param_shapes(self) -> list[tuple[int, ...]]:
        """The shapes of :attr:`params`: ``[(fan_in, fan_out), (fan_out,), ...]``."""
        shapes = []
        for fan_in, fan_out in zip(self.layer_sizes[:-1], self.layer_sizes[1:]):
            shapes.extend(((fan_in, fan_out), (fan_out,)))
        return shapes

    def set_params(self, new_params) -> None:
        """Replace all parameters at once; validated before anything changes.

        Parameters
        ----------
        new_params : list of arrays
            ``[W1, b1, ...]`` with the shapes of :attr:`params`; NumPy arrays are moved to the
            model's backend and cast to its dtype.

        Raises
        ------
        MlpxValueError
            Wrong count, wrong shape, or NaN/inf values.
        """
        shapes = self.param_shapes()
        try:
            new_params = list(new_params)
        except TypeError:
            raise MlpxTypeError("params must be a list of arrays [W1, b1, W2, b2, ...]") from None
        if len(new_params) != len(shapes):
            raise MlpxValueError(
                f"params has {len(new_params)} arrays but this network needs {len(shapes)} "
                "([W1, b1, W2, b2, ...], one W and one b per layer)"
            )
        converted = []
        for i, (param, shape) in enumerate(zip(new_params, shapes)):
            label = f"params[{i}] ({'W' if i % 2 == 0 else 'b'}{i // 2 + 1})"
            array = as_backend_array(param, backend=self.backend, name=label, dtype=self.dtype)
            if tuple(array.shape) != shape:
                raise MlpxValueError(
                    f"{label} has shape {tuple(array.shape)}; this network needs {shape}"
                )
            if not bool(self.xp.all(self.xp.isfinite(array))):
                raise MlpxValueError(f"{label} contains NaN or infinite values")
            converted.append(array)
        self._assign_params(converted)

    def _assign_params(self, params: list) -> None:
        """Put already validated arrays into the layers (no checks: the training hot path)."""
        for i, layer in enumerate(self.layers):
            layer.W, layer.b = params[2 * i], params[2 * i + 1]

    def flat_params(self):
        """A new 1-D array holding every parameter in the order of :attr:`params`.

        Each layer's ``W`` (row-major) is followed by its ``b``, so one layer's slice, read as
        shape ``(fan_in + 1, fan_out)``, is the block ``[W; b]`` with the bias as last row.
        """
        xp = self.xp
        return xp.concat([xp.reshape(p, (-1,)) for p in self.params])

    def param_slices(self) -> list[tuple[int, int, tuple[int, ...]]]:
        """``(start, stop, shape)`` of each parameter inside :meth:`flat_params`."""
        slices, start = [], 0
        for shape in self.param_shapes():
            stop = start + math.prod(shape)
            slices.append((start, stop, shape))
            start = stop
        return slices

    def _bind_flat(self, flat) -> list:
        """Make the layers' W and b views of ``flat`` (no copy); returns the views."""
        xp = self.xp
        views = [xp.reshape(flat[start:stop], shape) for start, stop, shape in
                 self.param_slices()]
        self._assign_params(views)
        return views

    def copy_params(self) -> list:
        """Independent copies of the parameters (for restoring best or last finite weights)."""
        return [self.xp.asarray(p, copy=True) for p in self.params]

    # --- input checks -----------------------------------------------------------------

    def check_X(self, X, *, name: str = "X"):
        """Validate features and return them on the model's backend in its dtype.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Raises
        ------
        MlpxValueError, MlpxTypeError
            Wrong ndim, empty, wrong number of features, non-numeric, NaN/inf, or an array of
            another library.
        """
        return self._checked_values(self._features_unread(X, name=name), name=name)

    def _checked_values(self, features, *, name: str):
        """The value half of :meth:`check_X`, for ``features`` from :meth:`_features_unread`:
        NaN, infinities and values beyond the dtype refused; returned on the backend in the
        model's dtype."""
        if isinstance(features, np.ndarray):
            if features.dtype.kind == "f" and features.size:
                # min and max propagate NaN: two reductions, no temporary array of X's size
                # (the ufuncs' own reduce: np.min's dispatch costs a microsecond a call)
                low = float(np.minimum.reduce(features, axis=None))
                high = float(np.maximum.reduce(features, axis=None))
                if not (math.isfinite(low) and math.isfinite(high)):
                    raise MlpxValueError(
                        f"{name} contains NaN or infinite values; drop or impute them first"
                    )
                self._check_fits_dtype(max(-low, high), name=name)
            return from_host(features, backend=self.backend, dtype=self.dtype)
        xp = self.xp
        # One pass and one read back to the host when all is well (on a GPU each read waits
        # for the device): the cast is finite only if X is finite and within the dtype's
        # range; which of the two failed is worked out only then.
        array = xp.astype(features, self.dtype, copy=False)
        if not bool(xp.all(xp.isfinite(array))):
            # integers and bools are finite (and array-API isfinite takes only numbers)
            if xp.isdtype(features.dtype, "real floating") and not bool(
                    xp.all(xp.isfinite(features))):
                raise MlpxValueError(
                    f"{name} contains NaN or infinite values; drop or impute them first"
                )
            self._check_fits_dtype(float(xp.max(xp.abs(features))), name=name)
        return array

    def _features_unread(self, X, *, name: str):
        """X's type, dtype and shape checked without reading its values.

        Returns
        -------
        numpy array or array of the model's backend, of shape (n_samples, n_features)
            Host input as a real-valued NumPy array (a view of NumPy arrays and memmaps
            of a numeric dtype: nothing is copied or converted), backend arrays as they are.
        """
        if is_host_array(X):
            host = host_array(X, name=name)
            if host.dtype.kind in "mMcV":
                raise MlpxTypeError(
                    f"{name} must hold real numbers, got dtype {host.dtype}; convert it to "
                    "floats first (for complex values, split real and imaginary parts)"
                )
            if host.dtype.kind not in "biuf":
                try:
                    host = host.astype(np.float64)
                except (TypeError, ValueError, OverflowError):
                    raise MlpxTypeError(
                        f"{name} must be numeric, got dtype {host.dtype}; encode text or "
                        "categorical columns as numbers first"
                    ) from None
            self._check_X_shape(host.shape, name=name)
            return host
        array = as_backend_array(X, backend=self.backend, name=name)
        if not self.xp.isdtype(array.dtype, ("real floating", "integral", "bool")):
            raise MlpxTypeError(f"{name} must be numeric, got dtype {array.dtype}")
        self._check_X_shape(tuple(array.shape), name=name)
        return array

    def _check_fits_dtype(self, largest: float, *, name: str) -> None:
        """Refuse values that the model's dtype would turn into infinities."""
        limit = _DTYPE_MAX[dtype_name(self.dtype)]
        if largest > limit:
            raise MlpxValueError(
                f"{name} has values up to {largest:.3g}, beyond the range of "
                f"{dtype_name(self.dtype)} ({limit:.3g}); scale X down or use dtype='float64'"
            )

    def _check_X_shape(self, shape: tuple, *, name: str) -> None:
        if len(shape) != 2:
            hint = " (for one feature use X.reshape(-1, 1))" if len(shape) == 1 else ""
            raise MlpxValueError(
                f"{name} must be 2-D of shape (n_samples, n_features), got shape {shape}{hint}"
            )
        if shape[0] == 0:
            raise MlpxValueError(f"{name} is empty (0 samples); pass at least one sample")
        if shape[1] != self.n_features_in_:
            raise MlpxValueError(
                f"{name} has {shape[1]} features but the model expects {self.n_features_in_} "
                f"(layer_sizes[0]); build the model with layer_sizes[0]={shape[1]}"
            )

    def check_Xy(self, X, y, *, learn_classes: bool = False, classes=None, names=("X", "y")):
        """Validate X and y together; return ``(X, Y, classes)`` on the backend.

        Y is the float target matrix of shape (n_samples, n_outputs). Labels are mapped
        through ``classes`` (default: ``classes_``); with ``learn_classes`` they are learned
        from y instead, as a first fit does. The model itself is not changed.
        """
        X_checked = self.check_X(X, name=names[0])
        if learn_classes:
            classes = None
        elif classes is None:
            classes = self.classes_
        Y, classes = self._targets(y, n_samples=X_checked.shape[0], classes=classes,
                                   name=names[1])
        return X_checked, Y, classes

    # --- forward and backward ---------------------------------------------------------

    def _forward(self, X):
        """The network output for already checked X, shape (n_samples, n_outputs)."""
        a = X
        for layer in self.layers:
            a = layer.forward(a)
        return a

    def forward(self, X, return_intermediates: bool = False):
        """Run the network forward.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        return_intermediates : bool
            Also return every layer's pre-activation and activation.

        Returns
        -------
        output : array of shape (n_samples, n_outputs)
            When ``return_intermediates`` is false.
        Intermediates
            When it is true: ``inputs``, ``pre_activations`` (z per layer) and
            ``activations`` (a per layer; the last is the output).
        """
        X = self.check_X(X)
        output = self._forward(X)
        if not return_intermediates:
            return output
        return Intermediates(
            inputs=X,
            pre_activations=[layer.cache[1] for layer in self.layers],
            activations=[layer.cache[2] for layer in self.layers],
        )

    def _l2_coefficient(self, batch_weight):
        """The L2 coefficient for a batch: alpha, or alpha / batch_weight (alpha_per_sample).

        ``batch_weight`` is the batch's size or total sample weight (a number or 0-d array).
        """
        return self.alpha / batch_weight if self.alpha_per_sample else self.alpha

    def _penalty(self, l2=None):
        """l2 / 2 * sum of squared weights (biases are not penalised); 0-d array.

        ``l2`` is the coefficient from :meth:`_l2_coefficient` (default: alpha itself).
        """
        xp = self.xp
        total = xp.zeros((), dtype=self.dtype, device=self.backend.device)
        if self.alpha == 0.0:
            return total
        for layer in self.layers:
            total = total + xp.sum(layer.W * layer.W)
        return 0.5 * (self.alpha if l2 is None else l2) * total

    def _loss_value(self, Y, output, row_weights=None, l2=None):
        """Data loss + penalty for the last forward pass; 0-d array.

        ``row_weights`` (n_samples,) are sample weights divided by their mean (None: all 1);
        ``l2`` is the L2 coefficient (default: the one for a batch of Y's rows).
        """
        if l2 is None:
            l2 = self._l2_coefficient(Y.shape[0])
        z_out = self.layers[-1].cache[1]
        data_loss = weighted_value(self.loss, Y, z_out, output, row_weights, xp=self.xp)
        return data_loss + self._penalty(l2)

    def _output_gradient(self, Y, output, row_weights=None, unit_rows: bool = False):
        """dL/dz of the output layer, shape (n_samples, n_outputs), rows scaled by weight.

        ``unit_rows``: every row of Y sums to exactly 1 (one-hot labels), which lets the
        loss use its shortcut for such targets (the same numbers).
        """
        xp = self.xp
        out_layer = self.layers[-1]
        _, z_out, _ = out_layer.cache
        grad_logits = self.loss.grad_logits
        if unit_rows and self.loss.grad_logits_unit_rows is not None:
            grad_logits = self.loss.grad_logits_unit_rows
        if grad_logits is not None:
            grad_z = grad_logits(Y, z_out, output, xp=xp)
        else:
            grad_z = out_layer.activation.backward(
                z_out, output, self.loss.grad_output(Y, z_out, output, xp=xp), xp=xp)
        if row_weights is not None:
            grad_z = grad_z * xp.reshape(row_weights, (-1, 1))
        return grad_z

    def _backward(self, Y, output, row_weights=None, l2=None, unit_rows: bool = False) -> list:
        """Backpropagate the loss through every layer; returns grads in the order of params.

        ``row_weights`` and ``l2`` as in :meth:`_loss_value`; ``unit_rows`` as in
        :meth:`_output_gradient`.
        """
        grad = self.layers[-1].backward_from_pre_activation(
            self._output_gradient(Y, output, row_weights, unit_rows),
            need_grad_x=len(self.layers) > 1,
        )
        for depth in range(len(self.layers) - 2, -1, -1):
            grad = self.layers[depth].backward(grad, need_grad_x=depth > 0)
        if l2 is None:
            l2 = self._l2_coefficient(Y.shape[0])
        grads = []
        for layer in self.layers:
            grad_W = layer.grad_W + l2 * layer.W if self.alpha else layer.grad_W
            grads.extend((grad_W, layer.grad_b))
        return grads

    def _loss_and_grads(self, X, Y, row_weights=None, l2=None):
        """One forward and backward pass on checked arrays.

        Returns
        -------
        loss : 0-d array
        grads : list of arrays in the order of params
        output : array of shape (n_samples, n_outputs)
        """
        output = self._forward(X)
        loss = self._loss_value(Y, output, row_weights, l2)
        return loss, self._backward(Y, output, row_weights, l2), output

    def loss_and_grads(self, X, y) -> tuple[float, list]:
        """The loss on (X, y) and its gradient with respect to every parameter.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of labels or targets

        Returns
        -------
        loss : float
        grads : list of arrays
            ``[dL/dW1, dL/db1, ...]``, the shapes of :attr:`params`, on the backend.
        """
        X, Y, _ = self.check_Xy(X, y)
        loss, grads, _ = self._loss_and_grads(X, Y)
        return float(loss), grads

    # --- prediction and evaluation ----------------------------------------------------

    # predict, predict_proba, evaluate and score run the network on at most this many bytes
    # of activations at a time when batch_size=None (see _batch_rows).
    _predict_batch_bytes = 64 * 2**20

    def _batch_rows(self, batch_size) -> int:
        """Rows per batch for prediction: ``batch_size`` checked, or the default for None.

        The default is the number of rows whose forward pass holds about
        ``_predict_batch_bytes`` (64 MiB) of device memory: the input batch in the model's
        dtype plus a pre-activation and an activation for every layer,
        ``itemsize * (n_features + 2 * sum(layer_sizes[1:]))`` bytes per row (at least 1).

        Raises
        ------
        MlpxTypeError, MlpxValueError
            ``batch_size`` is not an int (bools included) or is below 1.
        """
        if batch_size is None:
            itemsize = _DTYPE_ITEMSIZE[dtype_name(self.dtype)]
            row_bytes = itemsize * (self.layer_sizes[0] + 2 * sum(self.layer_sizes[1:]))
            return max(1, self._predict_batch_bytes // row_bytes)
        if isinstance(batch_size, (bool, np.bool_)) or not isinstance(
                batch_size, (int, np.integer)):
            raise MlpxTypeError(
                f"batch_size={batch_size!r} must be None or an int >= 1 (rows per batch), "
                "e.g. batch_size=4096"
            )
        if batch_size < 1:
            raise MlpxValueError(
                f"batch_size={batch_size!r} must be None or an int >= 1 (rows per batch), "
                "e.g. batch_size=4096"
            )
        return int(batch_size)

    def _checked_batches(self, X, rows: int, *, name: str = "X", checked: bool = False):
        """Yield ``(begin, end, X_batch)`` for consecutive batches of ``rows`` rows.

        Parameters
        ----------
        X : array of shape (n_samples, n_features)
            From :meth:`_features_unread`, or already checked (``checked=True``).
        rows : int

        Yields
        ------
        begin, end : int
        X_batch : array of shape (end - begin, n_features)
            On the model's backend in its dtype; its values checked by
            :meth:`_checked_values` (NaN/inf raise MlpxValueError naming ``name``) unless
            ``checked``.
        """
        n_samples = X.shape[0]
        for begin in range(0, n_samples, rows):
            end = min(begin + rows, n_samples)
            batch = X[begin:end, ...]
            if isinstance(batch, np.ndarray) and not batch.flags.writeable:
                batch = np.array(batch)  # one batch of a read-only memmap; torch warns on those
            yield begin, end, batch if checked else self._checked_values(batch, name=name)

    def _forward_batch(self, X):
        """``(z_out, output)`` for checked X, leaving the layers' caches as they are.

        Only one layer's activations are alive at a time, and nothing of them is kept.

        Parameters
        ----------
        X : array of shape (n_samples, n_features)

        Returns
        -------
        z_out, output : arrays of shape (n_samples, n_outputs)
            The output layer's pre-activation and activation.
        """
        xp = self.xp
        a = X
        for layer in self.layers[:-1]:
            a = layer.activation.forward(layer.pre_activation(a), xp=xp)
        out_layer = self.layers[-1]
        z_out = out_layer.pre_activation(a)
        return z_out, out_layer.activation.forward(z_out, xp=xp)

    def _predict_batch(self, X):
        """The network output for checked X, shape (n_samples, n_outputs): on NumPy written
        in place (:mod:`mlpx._numpy_predict`, the same numbers), else ``_forward_batch``'s."""
        if numpy_predict.supports(self):
            return numpy_predict.predict_output(self, X)
        return self._forward_batch(X)[1]

    def _logits_and_output(self, X):
        """``(z_out, output)`` for checked X, as :meth:`_forward_batch`; on NumPy written in
        place (:mod:`mlpx._numpy_predict`, the same numbers)."""
        if numpy_predict.supports(self):
            return numpy_predict.logits_and_output(self, X)
        return self._forward_batch(X)

    def _predict_output(self, X, batch_size=None):
        """The network output for X computed batch by batch, shape (n_samples, n_outputs).

        ``batch_size`` as in :meth:`predict`. Only one batch's activations are on the device
        at a time; the result is assembled from the batches' outputs.
        """
        rows = self._batch_rows(batch_size)
        X = self._features_unread(X, name="X")
        outputs = [self._predict_batch(X_batch)
                   for _, _, X_batch in self._checked_batches(X, rows)]
        return outputs[0] if len(outputs) == 1 else self.xp.concat(outputs, axis=0)

    def predict_proba(self, X, batch_size=None):
        """Class probabilities, the output layer's activations.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            NumPy arrays (``numpy.memmap`` included), lists, or arrays of the model's backend.
        batch_size : int, optional
            Rows run through the network at a time; only one batch's activations are on the
            device at once, so X may be of any length. Default: as many rows as fit in about
            64 MiB of activations (see :meth:`_batch_rows`). The result does not depend on
            it (up to float rounding).

        Returns
        -------
        array of shape (n_samples, n_outputs)
            For one sigmoid unit, the probability of ``classes_[1]``; for softmax, one column
            per class of ``classes_``.
        """
        if not self.is_classifier:
            raise MlpxTypeError(
                "predict_proba is for classifiers (sigmoid or softmax output with a "
                "cross-entropy loss); use predict for this regression model"
            )
        return self._predict_output(X, batch_size)

    def _class_indices(self, output):
        """Predicted class index per sample (n_samples,), or a 0/1 matrix for multi-label."""
        xp = self.xp
        if self.task == "multiclass":
            return xp.argmax(output, axis=1)
        indices = xp.astype(output >= 0.5, xp.int64)
        return indices[:, 0] if self.n_outputs == 1 else indices

    def predict(self, X, batch_size=None):
        """Labels for classifiers (in the values of ``classes_``), values for regression.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        batch_size : int, optional
            Rows per batch, as in :meth:`predict_proba`.

        Returns
        -------
        array of shape (n_samples,) or (n_samples, n_outputs)
            On the model's backend, except string labels, which come back as NumPy.
        """
        return self.predict_from_output(self._predict_output(X, batch_size))

    def predict_from_output(self, output):
        """:meth:`predict`'s labels or values from the network output (n_samples, n_outputs)."""
        if not self.is_classifier:
            return output[:, 0] if self.n_outputs == 1 else output
        indices = self._class_indices(output)
        if indices.ndim == 2:
            return indices
        classes = self.classes_
        if classes.dtype.kind not in "biuf":
            return classes[to_numpy(indices)]
        if classes.dtype.kind == "b":
            return self.xp.astype(indices, self.xp.bool)
        if np.array_equal(classes, np.arange(classes.size)):
            return indices
        return self.xp.take(from_host(classes, backend=self.backend), indices, axis=0)

    def _metric_sums(self, Y, output) -> dict:
        """Per-batch sums (0-d arrays) that average into the epoch's metrics."""
        xp = self.xp
        if self.task == "regression":
            return {"mae": xp.sum(xp.abs(output - Y)) / Y.shape[1]}
        if self.task == "multiclass":
            correct = xp.argmax(output, axis=1) == xp.argmax(Y, axis=1)
            return {"accuracy": xp.sum(xp.astype(correct, self.dtype))}
        correct = (output >= 0.5) == (Y >= 0.5)
        return {"accuracy": xp.sum(xp.astype(correct, self.dtype)) / Y.shape[1]}

    def _targets(self, y, *, n_samples: int, classes, name: str = "y"):
        """y checked against the model and encoded (what :meth:`check_Xy` does for y).

        Parameters
        ----------
        classes : numpy array or None
            The labels' classes; None learns them from y.

        Returns
        -------
        Y : array of shape (n_samples, n_outputs)
            Float targets on the model's backend, labels mapped through ``classes``.
        classes : numpy array or None
        """
        Y, classes = encode_targets(
            y, task=self.task, n_outputs=self.n_outputs, classes=classes,
            n_samples=n_samples, backend=self.backend, dtype=self.dtype, name=name,
        )
        if self.loss.name == "poisson" and not bool(self.xp.all(Y >= 0)):
            raise MlpxValueError(
                f"{name} has negative values, but the poisson loss models counts (y >= 0); "
                "use the squared error for targets that can be negative"
            )
        return Y, classes

    def _evaluation_sums(self, batches, Y, *, squared_error: bool = False,
                         scale: float = 1.0) -> dict:
        """Sums over all batches (Python floats) that :meth:`_metrics_from_sums` averages.

        Parameters
        ----------
        batches : iterable of (begin, end, X_batch)
            From :meth:`_checked_batches`.
        Y : array of shape (n_samples, n_outputs)
        squared_error : bool
            Also sum ``((Y - output) / scale)**2`` (R^2's residual sum) as
            ``"squared_error"``.
        scale : float
            Divides the residuals before they are squared, so huge targets do not overflow.

        Returns
        -------
        dict
            ``"loss"``: the unpenalised data loss times the rows, summed over batches; each
            metric's sum from :meth:`_metric_sums`; and ``"squared_error"`` when asked.
        """
        xp = self.xp
        sums: dict[str, float] = {"loss": 0.0}
        for begin, end, X_batch in batches:
            Y_batch = Y[begin:end, ...]
            z_out, output = self._logits_and_output(X_batch)
            loss = weighted_value(self.loss, Y_batch, z_out, output, None, xp=xp)
            sums["loss"] += float(loss) * (end - begin)
            batch_sums = self._metric_sums(Y_batch, output)
            if squared_error:
                batch_sums["squared_error"] = xp.sum(((Y_batch - output) / scale) ** 2)
            for key, total in batch_sums.items():
                sums[key] = sums.get(key, 0.0) + float(total)
        return sums

    def _metrics_from_sums(self, sums: dict, n_samples: int) -> dict[str, float]:
        """``{"loss": ..., metric: ...}``: the sums' means, the L2 penalty added once."""
        metrics = {key: total / n_samples for key, total in sums.items()
                   if key != "squared_error"}
        metrics["loss"] += float(self._penalty(self._l2_coefficient(n_samples)))
        return metrics

    def _evaluate_checked(self, X, Y, batch_size=None) -> dict[str, float]:
        """:meth:`evaluate` on already checked arrays (validation data during fit).

        Parameters
        ----------
        X : array of shape (n_samples, n_features)
        Y : array of shape (n_samples, n_outputs)
        batch_size : int, optional
            As in :meth:`evaluate`.
        """
        rows = self._batch_rows(batch_size)
        sums = self._evaluation_sums(self._checked_batches(X, rows, checked=True), Y)
        return self._metrics_from_sums(sums, X.shape[0])

    def evaluate(self, X, y, batch_size=None) -> dict[str, float]:
        """Loss and metrics on (X, y), computed batch by batch.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            NumPy arrays (``numpy.memmap`` included), lists, or arrays of the model's backend.
        y : array-like of labels or targets, shape (n_samples,) or (n_samples, n_outputs)
        batch_size : int, optional
            Rows per batch, as in :meth:`predict_proba`. The loss and metrics are sums over
            the batches divided by n_samples, so they do not depend on it (up to rounding).

        Returns
        -------
        dict
            ``{"loss": ..., "accuracy": ...}`` for classifiers, ``{"loss": ..., "mae": ...}``
            for regression; Python floats. The loss includes the L2 penalty.
        """
        rows = self._batch_rows(batch_size)
        X = self._features_unread(X, name="X")
        Y, _ = self._targets(y, n_samples=X.shape[0], classes=self.classes_)
        sums = self._evaluation_sums(self._checked_batches(X, rows), Y)
        return self._metrics_from_sums(sums, X.shape[0])

    def score(self, X, y, batch_size=None) -> float:
        """Accuracy for classifiers, R^2 for regression (as in scikit-learn).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of labels or targets, shape (n_samples,) or (n_samples, n_outputs)
        batch_size : int, optional
            Rows per batch, as in :meth:`predict_proba`.

        Returns
        -------
        float
            R^2 is ``1 - sum((y - output)**2) / sum((y - mean(y))**2)``, the residual summed
            over batches and the total over the targets (which are held whole, like the
            output of :meth:`predict`).
        """
        rows = self._batch_rows(batch_size)
        X = self._features_unread(X, name="X")
        Y, _ = self._targets(y, n_samples=X.shape[0], classes=self.classes_)
        if self.is_classifier:
            sums = self._evaluation_sums(self._checked_batches(X, rows), Y)
            return sums["accuracy"] / X.shape[0]
        xp = self.xp
        # R^2 is a ratio: both sums are taken of values divided by max|y|, which keeps the
        # squares of huge (or tiny) targets inside the dtype's range.
        scale = float(xp.max(xp.abs(Y))) or 1.0
        sums = self._evaluation_sums(self._checked_batches(X, rows), Y, squared_error=True,
                                     scale=scale)
        total = xp.sum(((Y - xp.mean(Y, axis=0)) / scale) ** 2)
        return 1.0 - sums["squared_error"] / max(float(total), np.finfo(np.float64).tiny)

    # --- training ---------------------------------------------------------------------

    def fit(self, X, y, epochs: int = 200, batch_size: int | None = 32, optimizer="adam",
            learning_rate=None, shuffle: bool = True, validation_data=None, callbacks=None,
            verbose: bool | int = 0, tol: float | None = None, sample_weight=None,
            class_weight=None, reset_optimizer: bool = True, resume_from=None):
        """Train with backpropagation; see :func:`mlpx.train.fit` for every parameter.

        Returns
        -------
        History
        """
        from mlpx.train import fit

        return fit(self, X, y, epochs=epochs, batch_size=batch_size, optimizer=optimizer,
                   learning_rate=learning_rate, shuffle=shuffle,
                   validation_data=validation_data, callbacks=callbacks, verbose=verbose,
                   tol=tol, sample_weight=sample_weight, class_weight=class_weight,
                   reset_optimizer=reset_optimizer, resume_from=resume_from)

    def save(self, path) -> None:
        """Write the architecture, weights and ``classes_`` to a safetensors file.

        The file is replaced atomically (a crash mid-save keeps the previous one); load it
        with :func:`mlpx.load`, on any backend.

        Parameters
        ----------
        path : str or os.PathLike
            Conventionally ``*.safetensors``; its directory must exist.
        """
        from mlpx.io import save_model

        save_model(self, path)

    def _clone(self, **overrides) -> MLP:
        """A new model with the same architecture (and overrides), parameters copied over."""
        config = dict(
            layer_sizes=self.layer_sizes, activations=self.activations, loss=self.loss.name,
            backend=self.backend, dtype=dtype_name(self.dtype), seed=self.seed,
            alpha=self.alpha, init=self.init, alpha_per_sample=self.alpha_per_sample,
            matmul_precision=self.matmul_precision,
        )
        config.update(overrides)
        clone = MLP(**config)
        clone.params = [self.xp.astype(p, clone.dtype) for p in self.params]
        clone.classes_ = self.classes_
        clone._has_seen_labels = self._has_seen_labels
        return clone
