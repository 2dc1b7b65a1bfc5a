"""scikit-learn estimators: ``MLPClassifier`` and ``MLPRegressor`` on top of :class:`mlpx.MLP`.

Swap ``from sklearn.neural_network import MLPClassifier`` for
``from mlpx.sklearn import MLPClassifier``: the parameter names, defaults, fitted attributes
and training rules are scikit-learn's, and the same estimator trains on CuPy (or PyTorch)
arrays without leaving their device. What scikit-learn defines, this module follows:

- the loss: log-loss with one logistic output unit for two classes, softmax for more,
  logistic units for multi-label targets; half squared error or the Poisson deviance for
  regression; the L2 term ``0.5 * alpha * sum ||W||^2`` divided by the batch's size (its
  total sample weight with ``sample_weight``);
- the stochastic solvers' epochs: ``loss_curve_``, ``tol`` and ``n_iter_no_change`` on the
  training loss or, with ``early_stopping``, on the validation score (accuracy or R^2) with
  the best weights restored; 'invscaling' ``lr / (t + 1) ** power_t`` over samples seen;
  'adaptive' dividing the rate by 5 when the rule fires, stopping below 1e-6; a
  ``ConvergenceWarning`` when ``max_iter`` ends the fit;
- 'lbfgs': full-batch L-BFGS to the gradient tolerance ``tol`` (mlpx's own, on the array API).

The backprop, optimizers and fit loop are the core's (:mod:`mlpx.train`); this module
translates parameters, labels and stopping rules. Differences, by design: weights start from
Glorot-uniform (biases zero) rather than scikit-learn's uniform biases; SGD's momentum is
PyTorch's form (equal to scikit-learn's at a constant rate); Adam scales epsilon with its
bias correction; the default ``dtype`` is float32; for several regression outputs
``loss_`` is the objective whose gradient training follows (the half squared error summed
over the outputs), which scikit-learn reports divided by ``n_outputs``.
"""

from __future__ import annotations

import math
import numbers
import warnings

import array_api_compat
import numpy as np

try:
    from sklearn import get_config
except ImportError as error:  # an optional extra
    raise ImportError(
        "mlpx.sklearn needs scikit-learn >= 1.6; install it with pip install 'mlpx[sklearn]'"
    ) from error
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import type_of_target, unique_labels
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from mlpx._backend import backend_of, resolve_backend, to_numpy
from mlpx._errors import MlpxValueError
from mlpx.callbacks import Callback
from mlpx.model import MLP
from mlpx.optim import SGD, Adam, Schedule
from mlpx.precision import MATMUL_PRECISIONS
from mlpx.sample_weights import check_sample_weight, weights_from_dict
from mlpx.train import fit as core_fit
from mlpx.train import fit_lbfgs

__all__ = ["MLPClassifier", "MLPRegressor"]

_HIDDEN_ACTIVATIONS = {"identity": "identity", "logistic": "sigmoid", "tanh": "tanh",
                       "relu": "relu"}
_OUT_ACTIVATION_NAMES = {"sigmoid": "logistic", "softmax": "softmax", "identity": "identity",
                         "exp": "exp"}
_MIN_ADAPTIVE_LEARNING_RATE = 1e-6


# --- parameter checks (each names the parameter and the fix) ----------------------------

def _check_int(value, name: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise MlpxValueError(f"{name}={value!r} must be an int >= {low}")
    return int(value)


def _check_real(value, name: str, *, low: float, high: float = math.inf,
                low_open: bool = False, high_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or math.isnan(value):
        raise MlpxValueError(f"{name}={value!r} must be a real number")
    value = float(value)
    below = value <= low if low_open else value < low
    above = value >= high if high_open else value > high
    if below or above:
        left, right = "(" if low_open else "[", ")" if high_open else "]"
        raise MlpxValueError(f"{name}={value!r} must be in {left}{low}, {high}{right}")
    return value


def _check_choice(value, name: str, choices) -> str:
    if not isinstance(value, str) or value not in choices:
        raise MlpxValueError(f"{name}={value!r} must be one of {', '.join(map(repr, choices))}")
    return value


def _check_bool(value, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise MlpxValueError(f"{name}={value!r} must be True or False")
    return bool(value)


def _hidden_sizes(hidden_layer_sizes) -> list[int]:
    sizes = ([hidden_layer_sizes] if isinstance(hidden_layer_sizes, numbers.Integral)
             else hidden_layer_sizes)
    try:
        sizes = list(sizes)
    except TypeError:
        raise MlpxValueError(
            f"hidden_layer_sizes={hidden_layer_sizes!r} must be an int or a list of ints, e.g. "
            "(100,) or (64, 32)"
        ) from None
    for size in sizes:
        if isinstance(size, bool) or not isinstance(size, numbers.Integral) or size < 1:
            raise MlpxValueError(
                f"hidden_layer_sizes={hidden_layer_sizes!r} has {size!r}; every size must be "
                "an int >= 1"
            )
    return [int(size) for size in sizes]


# --- arrays -----------------------------------------------------------------------------

_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _validated(estimator, *args, **kwargs):
    """scikit-learn's ``validate_data``, with numbers beyond float64 as a clear error."""
    try:
        return validate_data(estimator, *args, **kwargs)
    except OverflowError:
        raise MlpxValueError(
            "X or y holds numbers too large for float64 (such as Python ints beyond 1e308); "
            "scale the data down"
        ) from None


def _is_device_array(obj) -> bool:
    """An array-API array that is not NumPy's (CuPy, torch, array-api-strict)."""
    return array_api_compat.is_array_api_obj(obj) and not isinstance(obj, np.ndarray)


def _host(obj):
    """A host (NumPy) copy of labels, weights or scores; None stays None."""
    return None if obj is None else to_numpy(obj)


def _same_place(a, b) -> bool:
    """Both arrays of one library on one device (host data counts as NumPy)."""
    backend_a, backend_b = backend_of(a), backend_of(b)
    return backend_a.name == backend_b.name and str(backend_a.device) == str(backend_b.device)


def _follow_X(other, X):
    """y or sample_weight of another library or device than X, brought to the host (the
    model then moves it to X's device): "everything follows X", as scikit-learn does."""
    if other is None or not _is_device_array(other) or _same_place(other, X):
        return other
    return to_numpy(other)


def _take_rows(array, rows: np.ndarray):
    """Rows of a host or device array, by host indices."""
    if array is None:
        return None
    if _is_device_array(array):
        xp = array_api_compat.array_namespace(array)
        index = xp.asarray(rows, device=array_api_compat.device(array))
        return xp.take(array, index, axis=0)
    return np.asarray(array)[rows]


# --- the learning rate and the stopping rules ---------------------------------------------

class _LearningRate(Schedule):
    """scikit-learn's stochastic learning rate: 'constant', 'invscaling' or 'adaptive'.

    The rate is state, not a function of the epoch: 'invscaling' sets
    ``learning_rate_init / (t + 1) ** power_t`` from the samples seen ``t`` at the end of
    each epoch, and the stopping rule divides an 'adaptive' rate by 5.
    """

    def __init__(self, learning_rate_init: float, kind: str, power_t: float,
                 samples_per_epoch: int, samples_seen: int, current: float | None) -> None:
        super().__init__(learning_rate_init)
        self.kind, self.power_t = kind, power_t
        self.samples_per_epoch, self.samples_seen = samples_per_epoch, samples_seen
        self.current = learning_rate_init if current is None else current

    def __call__(self, epoch: int) -> float:
        return self.current

    def observe(self, epoch, logs):
        self.samples_seen += self.samples_per_epoch
        if self.kind == "invscaling":
            self.current = self.initial_learning_rate / (self.samples_seen + 1) ** self.power_t


class _SklearnEpochRules(Callback):
    """After each epoch: the fitted attributes, and scikit-learn's stopping rules."""

    def __init__(self, estimator, schedule: _LearningRate, validation):
        self.estimator, self.schedule, self.validation = estimator, schedule, validation
        self.stopped_by_rule = False

    def on_epoch_end(self, epoch, logs=None):
        est = self.estimator
        est.n_iter_ += 1
        est.t_ += self.schedule.samples_per_epoch
        est.loss_ = logs["loss"]
        est.loss_curve_.append(logs["loss"])
        if est.verbose:
            print(f"Iteration {est.n_iter_}, loss = {est.loss_:.8f}")
        self._count_no_improvement(est)
        est._learning_rate = self.schedule.current
        if est._no_improvement_count > est.n_iter_no_change:
            if self._stop_or_slow_down(est):
                self.stopped_by_rule = True
                self.model.stop_training = True
                self.model.stop_reason = "no_improvement"
                return
            est._no_improvement_count = 0

    def _count_no_improvement(self, est) -> None:
        if self.validation is None:
            last = est.loss_curve_[-1]
            improved = not last > est.best_loss_ - est.tol
            est.best_loss_ = min(est.best_loss_, last)
        else:
            X_val, y_val, weight_val = self.validation
            score = est._score_checked(X_val, y_val, weight_val)
            est.validation_scores_.append(score)
            if est.verbose:
                print(f"Validation score: {score:f}")
            improved = not score < est.best_validation_score_ + est.tol
            if score > est.best_validation_score_:
                est.best_validation_score_ = score
                est._best_params = est.model_.copy_params()
        est._no_improvement_count = 0 if improved else est._no_improvement_count + 1

    def _stop_or_slow_down(self, est) -> bool:
        """True to stop; an 'adaptive' rate above 1e-6 is divided by 5 instead."""
        adaptive = est.solver == "sgd" and est.learning_rate == "adaptive"
        if adaptive and self.schedule.current > _MIN_ADAPTIVE_LEARNING_RATE:
            self.schedule.current /= 5.0
            est._learning_rate = self.schedule.current
            if est.verbose:
                print(f"Setting learning rate to {self.schedule.current:f}")
            return False
        if est.verbose:
            subject = "Validation score" if self.validation is not None else "Training loss"
            print(f"{subject} did not improve more than tol={est.tol:f} for "
                  f"{est.n_iter_no_change} consecutive epochs. Stopping.")
        return True


# --- the shared estimator ---------------------------------------------------------------

def _is_stochastic(estimator) -> bool:
    """partial_fit exists for 'sgd' and 'adam' only, as in scikit-learn."""
    if estimator.solver not in ("sgd", "adam"):
        raise AttributeError(
            f"partial_fit is only available for stochastic optimizers. {estimator.solver} is "
            "not stochastic."
        )
    return True


class _BaseMLP(BaseEstimator):
    """What MLPClassifier and MLPRegressor share; see their docstrings."""

    _loss_name = "log_loss"

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 dtype="float32", backend=None, device=None, matmul_precision="highest"):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.dtype = dtype
        self.backend = backend
        self.device = device
        self.matmul_precision = matmul_precision

    # --- parameters --------------------------------------------------------------------

    def _check_params(self) -> None:
        """Every hyper-parameter, before any work (the estimator is left as it was)."""
        _hidden_sizes(self.hidden_layer_sizes)
        _check_choice(self.activation, "activation", tuple(_HIDDEN_ACTIVATIONS))
        _check_choice(self.solver, "solver", ("lbfgs", "sgd", "adam"))
        _check_real(self.alpha, "alpha", low=0.0)
        if not (isinstance(self.batch_size, str) and self.batch_size == "auto"):
            _check_int(self.batch_size, "batch_size ('auto' or an int)", 1)
        _check_choice(self.learning_rate, "learning_rate",
                      ("constant", "invscaling", "adaptive"))
        _check_real(self.learning_rate_init, "learning_rate_init", low=0.0, low_open=True)
        _check_real(self.power_t, "power_t", low=0.0)
        _check_int(self.max_iter, "max_iter", 1)
        _check_bool(self.shuffle, "shuffle")
        _check_real(self.tol, "tol", low=0.0)
        _check_bool(self.warm_start, "warm_start")
        _check_real(self.momentum, "momentum", low=0.0, high=1.0)
        _check_bool(self.nesterovs_momentum, "nesterovs_momentum")
        _check_bool(self.early_stopping, "early_stopping")
        _check_real(self.validation_fraction, "validation_fraction", low=0.0, high=1.0,
                    high_open=True)
        _check_real(self.beta_1, "beta_1", low=0.0, high=1.0, high_open=True)
        _check_real(self.beta_2, "beta_2", low=0.0, high=1.0, high_open=True)
        _check_real(self.epsilon, "epsilon", low=0.0, low_open=True)
        if not (isinstance(self.n_iter_no_change, float) and self.n_iter_no_change == math.inf):
            _check_int(self.n_iter_no_change, "n_iter_no_change (an int or np.inf)", 1)
        _check_int(self.max_fun, "max_fun", 1)
        _check_choice(self.dtype, "dtype", ("float32", "float64"))
        _check_choice(self.matmul_precision, "matmul_precision", MATMUL_PRECISIONS)
        if not isinstance(self.verbose, (bool, numbers.Integral)):
            raise MlpxValueError(f"verbose={self.verbose!r} must be a bool or an int")

    def _resolve_backend(self, X):
        """backend/device: the parameters, else the input array's own."""
        if self.backend is None and self.device is None:
            return backend_of(X)
        if self.backend is None:
            return resolve_backend(backend_of(X).name, self.device)
        return resolve_backend(self.backend, self.device)

    # --- input ------------------------------------------------------------------------

    def _validate_X(self, X, *, reset: bool):
        """X checked the scikit-learn way (host data) or as a device array."""
        if not _is_device_array(X):
            if not reset and self._takes_as_is(X):
                return X
            return _validated(self, X, reset=reset, dtype=(np.float64, np.float32))
        if X.ndim != 2:
            raise MlpxValueError(
                f"Expected 2D array, got an array of shape {tuple(X.shape)}; reshape it to "
                "(n_samples, n_features)"
            )
        if X.shape[0] < 1:
            raise MlpxValueError(f"Found array with 0 sample(s) (shape={tuple(X.shape)})")
        if reset:
            self.n_features_in_ = int(X.shape[1])
            if hasattr(self, "feature_names_in_"):
                del self.feature_names_in_
        elif X.shape[1] != self.n_features_in_:
            raise MlpxValueError(
                f"X has {X.shape[1]} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input."
            )
        return X

    def _takes_as_is(self, X) -> bool:
        """True for X that ``validate_data(reset=False)`` would return unchanged and silent.

        A plain 2-D float32 or float64 NumPy array with samples and the fitted number of
        features, for an estimator fitted without feature names (else a warning is due).
        Its values (NaN, infinities) are checked by the model. Skipping scikit-learn's
        checks (about 60 us) makes predicting one row about 4x faster.
        """
        return (type(X) is np.ndarray and X.ndim == 2 and X.dtype in _FLOAT_DTYPES
                and X.shape[0] > 0 and X.shape[1] == self.n_features_in_
                and not hasattr(self, "feature_names_in_"))

    def _validate_Xy(self, X, y, *, reset: bool):
        """X and y checked together, scikit-learn's way for host data."""
        if y is None:
            raise MlpxValueError(
                f"requires y to be passed, but the target y is None; {type(self).__name__} is "
                "supervised"
            )
        y = _follow_X(y, X)
        if not _is_device_array(X) and not _is_device_array(y):
            X, y = _validated(self, X, y, reset=reset, dtype=(np.float64, np.float32),
                              multi_output=True, y_numeric=isinstance(self, MLPRegressor))
        else:
            X = self._validate_X(X, reset=reset)
            y = y if _is_device_array(y) else np.asarray(y)
            if y.shape[0] != X.shape[0]:
                raise MlpxValueError(
                    f"Found input variables with inconsistent numbers of samples: "
                    f"[{X.shape[0]}, {y.shape[0]}]"
                )
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True) if isinstance(y, np.ndarray) else y[:, 0]
        return X, y

    def _batch_size(self, n_samples: int) -> int:
        if self.batch_size == "auto":
            return min(200, n_samples)
        if self.batch_size > n_samples:
            warnings.warn(
                "Got `batch_size` less than 1 or larger than sample size. It is going to be "
                "clipped", stacklevel=3,
            )
        return int(np.clip(self.batch_size, 1, n_samples))

    # --- the model --------------------------------------------------------------------

    @property
    def _fitted(self) -> bool:
        return hasattr(self, "model_")

    def _new_model(self, n_features: int, n_outputs: int, out_activation: str, backend,
                   seed) -> MLP:
        sizes = [n_features, *_hidden_sizes(self.hidden_layer_sizes), n_outputs]
        hidden = _HIDDEN_ACTIVATIONS[self.activation]
        return MLP(sizes, activations=[hidden] * (len(sizes) - 2) + [out_activation],
                   loss=self._core_loss(), backend=backend, dtype=self.dtype, seed=seed,
                   alpha=float(self.alpha), alpha_per_sample=True, init="glorot_uniform",
                   matmul_precision=self.matmul_precision)

    def _initialize(self, model: MLP) -> None:
        """The fitted attributes of a first fit (scikit-learn's ``_initialize``)."""
        self.model_ = model
        self.n_iter_ = 0
        self.t_ = 0
        self.n_outputs_ = model.n_outputs
        self.n_layers_ = len(model.layer_sizes)
        self.out_activation_ = _OUT_ACTIVATION_NAMES[model.activations[-1]]
        self._learning_rate = None
        for name in ("loss_curve_", "best_loss_", "validation_scores_",
                     "best_validation_score_", "loss_"):
            if name in self.__dict__:
                delattr(self, name)
        if self.solver != "lbfgs":
            self.loss_curve_ = []
            self._no_improvement_count = 0
            if self.early_stopping:
                self.validation_scores_ = []
                self.best_validation_score_ = -np.inf
                self.best_loss_ = None
            else:
                self.best_loss_ = np.inf
                self.validation_scores_ = None
                self.best_validation_score_ = None

    def _seed(self):
        """An int seed for the model and the validation split, from random_state."""
        random_state = check_random_state(self.random_state)
        if isinstance(self.random_state, numbers.Integral):
            return int(self.random_state), random_state
        return int(random_state.randint(np.iinfo(np.int32).max)), random_state

    # --- fitting ----------------------------------------------------------------------

    def fit(self, X, y, sample_weight=None):
        """Fit the model to X and y.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            NumPy, pandas, lists, or CuPy / PyTorch / array-api-strict arrays (trained on
            their device).
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), optional

        Returns
        -------
        self
        """
        return self._fit(X, y, sample_weight, incremental=False)

    def _fit(self, X, y, sample_weight, *, incremental: bool, classes=None):
        self._check_params()
        if incremental and self.early_stopping:
            raise MlpxValueError("partial_fit does not support early_stopping=True")
        saved = self._saved_state()
        try:
            return self._fit_checked(X, y, sample_weight, incremental=incremental,
                                     classes=classes)
        except Exception:
            self._restore_state(saved)  # a failed fit leaves the estimator as it was
            raise

    def _saved_state(self) -> tuple:
        """The estimator's attributes (lists copied) and the model's parameters."""
        attributes = {key: list(value) if isinstance(value, list) else value
                      for key, value in self.__dict__.items()}
        params = self.model_.copy_params() if self._fitted else None
        return attributes, params

    def _restore_state(self, saved: tuple) -> None:
        attributes, params = saved
        self.__dict__.clear()
        self.__dict__.update(attributes)
        if params is not None:
            self.model_.params = params

    def _fit_checked(self, X, y, sample_weight, *, incremental: bool, classes=None):
        first_fit = not self._fitted or not (self.warm_start or incremental)
        X, y = self._validate_Xy(X, y, reset=first_fit)
        backend = self._resolve_backend(X) if first_fit else self.model_.backend
        # the seed starts a new model; random_state splits off the validation data. Making
        # a RandomState costs each partial_fit call about 0.1 ms, so only when needed.
        seed, random_state = (self._seed() if first_fit or self.early_stopping
                              else (None, None))
        targets = self._prepare_targets(y, first_fit=first_fit, classes=classes)
        check_sample_weight(_follow_X(sample_weight, X), n_samples=X.shape[0])
        if first_fit:
            model = self._new_model(X.shape[1], targets.n_outputs, targets.out_activation,
                                    backend, seed)
            self._prepare_model(model, targets)
            self._initialize(model)
        else:
            model = self.model_
        if self.solver == "lbfgs":
            self._fit_lbfgs(X, y, sample_weight)
        else:
            self._fit_stochastic(X, y, sample_weight, random_state, incremental=incremental)
        return self

    def _prepare_model(self, model: MLP, targets: _Targets) -> None:
        """Hook: the classifier sets the model's classes."""

    def _core_fit_kwargs(self) -> dict:
        return {}

    def _fit_lbfgs(self, X, y, sample_weight) -> None:
        result = fit_lbfgs(self.model_, X, y, sample_weight=sample_weight,
                           max_iter=self.max_iter, max_fun=self.max_fun, gtol=self.tol,
                           verbose=bool(self.verbose), **self._core_fit_kwargs())
        self.n_iter_ = result.n_iter
        self.loss_ = float(result.fun)
        if not result.converged:
            warnings.warn(
                f"lbfgs failed to converge after {result.n_iter} iteration(s) "
                f"({result.message}). Increase the number of iterations (max_iter) or "
                "max_fun, or scale the data (e.g. with sklearn.preprocessing.StandardScaler).",
                ConvergenceWarning, stacklevel=4,
            )

    def _fit_stochastic(self, X, y, sample_weight, random_state, *, incremental: bool):
        model = self.model_
        keep_state = incremental and getattr(self, "_optimizer", None) is not None
        if not keep_state:
            self._optimizer = self._make_optimizer()
            self._learning_rate = None
        validation = None
        if self.early_stopping:
            X, y, sample_weight, validation = self._split_validation(
                X, y, sample_weight, random_state)
        n_samples = X.shape[0]
        schedule = _LearningRate(
            float(self.learning_rate_init),
            self.learning_rate if self.solver == "sgd" else "constant", float(self.power_t),
            n_samples, self.t_, self._learning_rate,
        )
        rules = _SklearnEpochRules(self, schedule, validation)
        self.n_iter_ = 0
        epochs = 1 if incremental else int(self.max_iter)
        core_fit(model, X, y, epochs=epochs, batch_size=self._batch_size(n_samples),
                 optimizer=self._optimizer, learning_rate=schedule, shuffle=self.shuffle,
                 callbacks=[rules], sample_weight=sample_weight,
                 reset_optimizer=not (keep_state and model.optimizer_state_ is not None),
                 **self._core_fit_kwargs())
        if self.early_stopping and getattr(self, "_best_params", None) is not None:
            model.params = self._best_params
            self._best_params = None
        if not incremental and not rules.stopped_by_rule and self.n_iter_ == self.max_iter:
            warnings.warn(
                f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached and the "
                "optimization hasn't converged yet.", ConvergenceWarning, stacklevel=4,
            )

    def _make_optimizer(self):
        if self.solver == "adam":
            return Adam(float(self.learning_rate_init), beta1=float(self.beta_1),
                        beta2=float(self.beta_2), epsilon=float(self.epsilon))
        momentum = float(self.momentum)
        return SGD(float(self.learning_rate_init), momentum=momentum,
                   nesterov=bool(self.nesterovs_momentum) and momentum > 0)

    def _split_validation(self, X, y, sample_weight, random_state):
        """Hold out validation_fraction of the rows (stratified for single-label classes)."""
        n_samples = X.shape[0]
        stratify = self._stratify_labels(y)
        train_rows, val_rows = train_test_split(
            np.arange(n_samples), random_state=random_state,
            test_size=self.validation_fraction, stratify=stratify,
        )
        if val_rows.shape[0] < 2:
            raise MlpxValueError(
                "The validation set is too small. Increase 'validation_fraction' or the size "
                "of your dataset."
            )
        weights = check_sample_weight(_follow_X(sample_weight, X), n_samples=n_samples)
        if weights is not None and not np.any(weights[val_rows] > 0):
            raise MlpxValueError(
                "sample_weight is zero for every sample of the validation part that "
                "early_stopping holds out, so its score is undefined; give those samples a "
                "weight > 0, or change validation_fraction or random_state"
            )
        validation = (
            self.model_.check_X(_take_rows(X, val_rows), name="X (validation part)"),
            _take_rows(y, val_rows),
            None if weights is None else weights[val_rows],
        )
        return (_take_rows(X, train_rows), _take_rows(y, train_rows),
                None if weights is None else weights[train_rows], validation)

    def _stratify_labels(self, y):
        return None

    # --- fitted attributes that are the model's state -------------------------------------

    @property
    def coefs_(self) -> list:
        """The weight matrices, ``coefs_[i]`` of shape (layer i units, layer i+1 units).

        They are the model's own arrays: assigning ``coefs_[i] = W`` (or ``coefs_ = [...]``)
        changes what predict returns, as in scikit-learn.
        """
        if not self._fitted:
            raise AttributeError(f"{type(self).__name__} has no coefs_ before fit")
        return _LiveParams(self.model_, 0)

    @coefs_.setter
    def coefs_(self, new_coefs) -> None:
        _LiveParams(self.model_, 0).assign_all(new_coefs)

    @property
    def intercepts_(self) -> list:
        """The bias vectors, ``intercepts_[i]`` of shape (layer i+1 units,); live as coefs_."""
        if not self._fitted:
            raise AttributeError(f"{type(self).__name__} has no intercepts_ before fit")
        return _LiveParams(self.model_, 1)

    @intercepts_.setter
    def intercepts_(self, new_intercepts) -> None:
        _LiveParams(self.model_, 1).assign_all(new_intercepts)

    # --- prediction -------------------------------------------------------------------

    def _output(self, X, method: str):
        """The output layer's activations for X, shape (n_samples, n_outputs)."""
        check_is_fitted(self, "model_")
        if get_config()["array_api_dispatch"]:
            self._check_same_namespace(X, method)
        X = self._validate_X(X, reset=False)
        return self.model_._predict_output(X)

    def _check_same_namespace(self, X, method: str) -> None:
        """Under array_api_dispatch, X must be of the fitted model's library and device."""
        fitted, given = self.model_.backend, backend_of(X)
        if fitted.name != given.name or str(fitted.device) != str(given.device):
            raise MlpxValueError(
                f"Inputs passed to {type(self).__name__}.{method}() must use the same "
                f"namespace and the same device as those passed to fit(): fitted on "
                f"{fitted.name} ({fitted.device}), given {given.name} ({given.device}). "
                "Move X there first"
            )

    def _score_checked(self, X, y, sample_weight) -> float:
        """The score (accuracy or R^2) on already checked X, as scikit-learn's ``_score``
        (early stopping's held-out part, every epoch)."""
        output = self.model_._predict_batch(X)
        return self._checked_score_output(output, y, sample_weight)

    def _checked_score_output(self, output, y, sample_weight) -> float:
        return self._score_output(output, y, sample_weight)

    def score(self, X, y, sample_weight=None) -> float:
        """Accuracy (classifier) or R^2 (regressor) on (X, y), computed on the host."""
        return self._score_output(self._output(X, "score"), y, sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.array_api_support = True
        return tags


def _subset_accuracy(y_true: np.ndarray, y_pred: np.ndarray, sample_weight=None) -> float:
    """scikit-learn's ``accuracy_score`` of labels of one kind and shape: the (weighted)
    share of samples whose label, or every label of a multi-label row, is right."""
    matches = y_true == y_pred
    if matches.ndim == 2:
        matches = np.all(matches, axis=1)
    return float(np.average(matches, weights=sample_weight))


def _r2(y_true: np.ndarray, y_pred: np.ndarray, sample_weight=None) -> float:
    """scikit-learn's ``r2_score`` (outputs averaged uniformly, scores kept finite) of
    targets ``y_true`` (n,) or (n, k) and predictions (n, k), in their widest float dtype.

    Per output, ``1 - sum(w (y - p)^2) / sum(w (y - mean_w(y))^2)``; an output whose
    targets are constant scores 1 where it is predicted exactly, else 0.
    """
    floats = [array.dtype for array in (y_true, y_pred, sample_weight)
              if array is not None and array.dtype.kind == "f"]
    dtype = np.result_type(*floats) if floats else np.dtype(np.float64)
    y_true = np.asarray(y_true, dtype=dtype).reshape(y_true.shape[0], -1)
    y_pred = np.asarray(y_pred, dtype=dtype).reshape(y_true.shape)
    weights = None if sample_weight is None else np.asarray(sample_weight, dtype=dtype)
    weight = 1.0 if weights is None else weights[:, np.newaxis]
    numerator = np.sum(weight * (y_true - y_pred) ** 2, axis=0)
    mean = np.average(y_true, axis=0, weights=weights)
    denominator = np.sum(weight * (y_true - mean) ** 2, axis=0)
    scores = np.ones(y_true.shape[1], dtype=dtype)
    valid = (numerator != 0) & (denominator != 0)
    scores[valid] = 1 - numerator[valid] / denominator[valid]
    scores[(numerator != 0) & (denominator == 0)] = 0.0
    return float(np.mean(scores))


class _LiveParams(list):
    """``coefs_`` or ``intercepts_``: a list of the model's arrays that writes back to it."""

    def __init__(self, model: MLP, offset: int) -> None:
        super().__init__(model.params[offset::2])
        self._model, self._offset = model, offset

    def __setitem__(self, index, value) -> None:
        positions = list(range(len(self)))[index]
        values = list(value) if isinstance(index, slice) else [value]
        if isinstance(index, slice) and len(values) != len(positions):
            raise MlpxValueError("assign as many arrays as the slice selects")
        params = list(self._model.params)
        shapes = self._model.param_shapes()
        attribute = "coefs_" if self._offset == 0 else "intercepts_"
        for position, array in zip([positions] if isinstance(positions, int) else positions,
                                   values):
            slot = 2 * position + self._offset
            if tuple(np.shape(array)) != shapes[slot]:
                raise MlpxValueError(
                    f"{attribute}[{position}] must have shape {shapes[slot]}, got "
                    f"{tuple(np.shape(array))}"
                )
            params[slot] = array
        try:
            self._model.set_params(params)  # validated (finite) before anything changes
        except MlpxValueError as error:
            raise MlpxValueError(f"{attribute}: {error}") from None
        super().__setitem__(slice(None), self._model.params[self._offset::2])

    def assign_all(self, arrays) -> None:
        arrays = list(arrays)
        if len(arrays) != len(self):
            raise MlpxValueError(
                f"expected {len(self)} arrays (one per layer), got {len(arrays)}"
            )
        self[:] = arrays


# --- the classifier ----------------------------------------------------------------------

class _Targets:
    """What the targets need: the output layer's size and activation, and the classes."""

    def __init__(self, n_outputs: int, out_activation: str, classes=None,
                 multilabel: bool = False) -> None:
        self.n_outputs, self.out_activation = n_outputs, out_activation
        self.classes, self.multilabel = classes, multilabel


def _check_labels_known(y_host, classes, target_type: str) -> None:
    if target_type == "multilabel-indicator":
        return
    # Numeric labels (type_of_target has checked them) need only np.unique; unique_labels
    # checks the labels' type again, which costs each partial_fit call about 0.1 ms.
    labels = np.unique(y_host) if y_host.dtype.kind in "biuf" else unique_labels(y_host)
    unseen = np.setdiff1d(labels, classes, assume_unique=True)
    if unseen.size:
        raise MlpxValueError(
            f"`y` has classes not in `self.classes_`: {unseen.tolist()}; the classes are "
            f"{classes.tolist()} (from the first fit, or partial_fit's classes=)"
        )


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """Multi-layer perceptron classifier, scikit-learn's API on any array-API backend.

    Parameters are scikit-learn's ``MLPClassifier``'s (same names and defaults), plus:

    dtype : {"float32", "float64"}, default="float32"
    backend : str, optional
        "numpy", "cupy", "torch" or "array_api_strict"; default: the input array's library.
    device : optional
        Default: the input array's device.
    matmul_precision : {"highest", "bfloat16"}, default="highest"
        "bfloat16": mixed-precision matrix products with float32 weights (torch backend,
        float32 only); see :class:`mlpx.MLP`.
    class_weight : dict, "balanced" or None
        Weights per class label, multiplied into ``sample_weight``; "balanced" uses
        ``n_samples / (n_classes * count(class))``.

    Attributes
    ----------
    classes_, coefs_, intercepts_, n_iter_, n_layers_, n_outputs_, n_features_in_,
    feature_names_in_, out_activation_, loss_, loss_curve_, best_loss_, validation_scores_,
    best_validation_score_, t_ : as in scikit-learn. ``coefs_`` and ``intercepts_`` are the
    model's live state; the arrays are on the model's device.
    model_ : mlpx.MLP
        The trained network.
    """

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 dtype="float32", backend=None, device=None, matmul_precision="highest",
                 class_weight=None):
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes, activation=activation, solver=solver,
            alpha=alpha, batch_size=batch_size, learning_rate=learning_rate,
            learning_rate_init=learning_rate_init, power_t=power_t, max_iter=max_iter,
            shuffle=shuffle, random_state=random_state, tol=tol, verbose=verbose,
            warm_start=warm_start, momentum=momentum, nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping, validation_fraction=validation_fraction,
            beta_1=beta_1, beta_2=beta_2, epsilon=epsilon, n_iter_no_change=n_iter_no_change,
            max_fun=max_fun, dtype=dtype, backend=backend, device=device,
            matmul_precision=matmul_precision,
        )
        self.class_weight = class_weight

    def _core_loss(self) -> str | None:
        return None  # from the output activation: binary or categorical cross-entropy

    def _core_fit_kwargs(self) -> dict:
        return {"class_weight": self.class_weight}

    def _check_params(self) -> None:
        super()._check_params()
        if not (self.class_weight is None or isinstance(self.class_weight, dict)
                or (isinstance(self.class_weight, str) and self.class_weight == "balanced")):
            raise MlpxValueError(
                f"class_weight={self.class_weight!r} must be None, 'balanced' or a dict "
                "{label: weight}"
            )

    def _prepare_targets(self, y, *, first_fit: bool, classes) -> _Targets:
        """Learn (first fit) or check the classes; the output layer they need."""
        y_host = _host(y)
        if not first_fit and self._known_number_labels(y_host):
            labels, multilabel = self.classes_, False
        else:
            labels, multilabel = self._checked_labels(y_host, first_fit=first_fit,
                                                      classes=classes)
        if isinstance(self.class_weight, dict):
            weights_from_dict(self.class_weight, labels)  # unknown labels fail before fit
        n_classes = labels.shape[0]
        if multilabel:
            return _Targets(n_classes, "sigmoid", labels, multilabel=True)
        return _Targets(1 if n_classes == 2 else n_classes,
                        "sigmoid" if n_classes == 2 else "softmax", labels)

    def _checked_labels(self, y_host, *, first_fit: bool, classes) -> tuple:
        """type_of_target's checks, then the classes learned or y's checked against them:
        (labels, multilabel)."""
        target_type = type_of_target(y_host, input_name="y")
        if target_type not in ("binary", "multiclass", "multilabel-indicator"):
            raise MlpxValueError(
                f"Unknown label type: {target_type!r}. MLPClassifier needs class labels "
                "(binary, multiclass or a multilabel indicator matrix); use MLPRegressor for "
                "continuous targets"
            )
        if first_fit:
            labels = unique_labels(y_host) if classes is None else unique_labels(_host(classes))
            if classes is not None:
                _check_labels_known(y_host, labels, target_type)
            if target_type == "multilabel-indicator":
                labels = np.arange(y_host.shape[1])
            elif labels.shape[0] < 2:
                raise MlpxValueError(
                    f"y has only one class ({labels.tolist()[0]!r}); a classifier needs "
                    "samples of at least 2 classes"
                )
            multilabel = target_type == "multilabel-indicator"
        else:
            multilabel = self._multilabel
            if (target_type == "multilabel-indicator") != multilabel:
                raise MlpxValueError(
                    "y changed between a multilabel indicator matrix and class labels since "
                    "the first fit; refit with warm_start=False"
                )
            labels = self.classes_
            _check_labels_known(y_host, labels, target_type)
        return labels, multilabel

    def _known_number_labels(self, y_host) -> bool:
        """Whether y is a vector of numbers, each one of classes_ (not multi-label).

        Such labels are what type_of_target calls binary or multiclass, since the first
        fit's classes were; partial_fit's later calls skip its 0.1-0.2 ms for them. Any
        other y takes the full checks and their messages.
        """
        if self._multilabel or y_host.ndim != 1 or y_host.dtype.kind not in "biuf":
            return False
        classes = self.classes_
        if classes.dtype.kind not in "biuf":
            return False
        return np.setdiff1d(np.unique(y_host), classes, assume_unique=True).size == 0

    def _prepare_model(self, model: MLP, targets: _Targets) -> None:
        self.classes_ = targets.classes
        self._multilabel = targets.multilabel
        if not targets.multilabel:
            model.classes_ = targets.classes
        model._has_seen_labels = True

    def _stratify_labels(self, y):
        return None if self._multilabel else _host(y)

    @available_if(_is_stochastic)
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """One epoch over (X, y), continuing the optimizer state (stochastic solvers).

        Parameters
        ----------
        X, y, sample_weight : as in :meth:`fit`
        classes : array-like, optional
            Every class label; required on the first call, as in scikit-learn.

        Returns
        -------
        self
        """
        first_call = not hasattr(self, "classes_")
        if first_call and classes is None:
            raise MlpxValueError("classes must be passed on the first call to partial_fit.")
        if not first_call and classes is not None and not np.array_equal(
                unique_labels(_host(classes)), self.classes_):
            raise MlpxValueError(
                f"`classes={list(classes)!r}` is not the same as on the first call to "
                f"partial_fit: {self.classes_.tolist()}"
            )
        return self._fit(X, y, sample_weight, incremental=True,
                         classes=classes if first_call else None)

    def predict_proba(self, X):
        """Class probabilities, shape (n_samples, n_classes), on the model's device."""
        output = self._output(X, "predict_proba")
        if self.n_outputs_ == 1 and not self._multilabel:
            xp = self.model_.xp
            return xp.concat([1.0 - output, output], axis=1)
        return output

    def predict_log_proba(self, X):
        """Log of predict_proba, shape (n_samples, n_classes)."""
        check_is_fitted(self, "model_")
        if get_config()["array_api_dispatch"]:
            self._check_same_namespace(X, "predict_log_proba")
        proba = self.predict_proba(X)
        return self.model_.xp.log(proba)

    def predict(self, X):
        """Class labels (values of classes_), shape (n_samples,) or (n_samples, n_classes)."""
        output = self._output(X, "predict")
        return self.model_.predict_from_output(output)

    def _score_output(self, output, y, sample_weight) -> float:
        predicted = _host(self.model_.predict_from_output(output))
        return float(accuracy_score(_host(y), predicted, sample_weight=_host(sample_weight)))

    def _checked_score_output(self, output, y, sample_weight) -> float:
        """accuracy_score on labels that fit has checked: without its input checks, which
        cost 0.3 ms an epoch of early stopping (three quarters of the score's time)."""
        predicted = _host(self.model_.predict_from_output(output))
        return _subset_accuracy(_host(y), predicted, _host(sample_weight))

    # The mixin comes first in the bases (scikit-learn's rule), so name mlpx's score here:
    # computed on the host, it works for CuPy arrays and is exact under array_api_dispatch.
    score = _BaseMLP.score

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class MLPRegressor(RegressorMixin, _BaseMLP):
    """Multi-layer perceptron regressor, scikit-learn's API on any array-API backend.

    Parameters are scikit-learn's ``MLPRegressor``'s (same names and defaults, including
    ``loss`` = "squared_error" or "poisson"), plus ``dtype``, ``backend``, ``device`` and
    ``matmul_precision`` as in :class:`MLPClassifier`.

    Attributes
    ----------
    coefs_, intercepts_, n_iter_, n_layers_, n_outputs_, n_features_in_, feature_names_in_,
    out_activation_, loss_, loss_curve_, best_loss_, validation_scores_,
    best_validation_score_, t_ : as in scikit-learn; ``model_`` is the trained mlpx.MLP.
    """

    def __init__(self, loss="squared_error", hidden_layer_sizes=(100,), activation="relu", *,
                 solver="adam", alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 dtype="float32", backend=None, device=None, matmul_precision="highest"):
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes, activation=activation, solver=solver,
            alpha=alpha, batch_size=batch_size, learning_rate=learning_rate,
            learning_rate_init=learning_rate_init, power_t=power_t, max_iter=max_iter,
            shuffle=shuffle, random_state=random_state, tol=tol, verbose=verbose,
            warm_start=warm_start, momentum=momentum, nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping, validation_fraction=validation_fraction,
            beta_1=beta_1, beta_2=beta_2, epsilon=epsilon, n_iter_no_change=n_iter_no_change,
            max_fun=max_fun, dtype=dtype, backend=backend, device=device,
            matmul_precision=matmul_precision,
        )
        self.loss = loss

    def _check_params(self) -> None:
        super()._check_params()
        _check_choice(self.loss, "loss", ("squared_error", "poisson"))

    def _core_loss(self) -> str:
        return "poisson" if self.loss == "poisson" else "half_squared_error"

    def _prepare_targets(self, y, *, first_fit: bool, classes) -> _Targets:
        """The output layer the targets need (their values are checked by the model)."""
        n_outputs = 1 if y.ndim == 1 else int(y.shape[1])
        if not first_fit and n_outputs != self.n_outputs_:
            raise MlpxValueError(
                f"y has {n_outputs} target columns but the model was fitted with "
                f"{self.n_outputs_}; refit with warm_start=False"
            )
        if self.loss == "poisson" and _host(y).dtype.kind in "biuf" and np.any(_host(y) < 0):
            raise MlpxValueError(
                "Some value(s) of y are out of the valid range of the loss 'poisson' "
                "(y >= 0 is needed)."
            )
        return _Targets(n_outputs, "exp" if self.loss == "poisson" else "identity")

    score = _BaseMLP.score  # see MLPClassifier.score

    @available_if(_is_stochastic)
    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over (X, y), continuing the optimizer state (stochastic solvers)."""
        return self._fit(X, y, sample_weight, incremental=True)

    def predict(self, X):
        """Predicted values, shape (n_samples,) for one output, else (n_samples, n_outputs)."""
        output = self._output(X, "predict")
        return output[:, 0] if self.n_outputs_ == 1 else output

    def _score_output(self, output, y, sample_weight) -> float:
        predicted = _host(output)
        y_host = _host(y)
        if y_host.ndim == 1:
            predicted = predicted[:, 0]
        return float(r2_score(y_host, predicted, sample_weight=_host(sample_weight)))

    def _checked_score_output(self, output, y, sample_weight) -> float:
        """r2_score on targets that fit has checked, without its input checks (0.15 ms an
        epoch of early stopping)."""
        return _r2(_host(y), _host(output), _host(sample_weight))

