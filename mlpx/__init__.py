"""mlpx: multi-layer perceptrons written once against the array API standard.

The same forward pass, backpropagation and optimizers train on NumPy, CuPy, PyTorch and
array-api-strict arrays.
"""

# _numpy_fastpath: imported now, not at the first NumPy fit (mlpx.train imports it lazily,
# as it imports mlpx.train), so that a first fit's time is all training.
from mlpx import _numpy_fastpath, callbacks, datasets, optim  # noqa: F401
from mlpx._backend import Backend, backend_report, resolve_backend, to_numpy
from mlpx._errors import (
    BackendUnavailableError,
    MlpxFileError,
    MlpxTypeError,
    MlpxValueError,
    NonFiniteLossError,
)
from mlpx.activations import ACTIVATIONS
from mlpx.callbacks import (
    Callback,
    Checkpoint,
    EarlyStopping,
    History,
    ProgressBar,
    TerminateOnNaN,
)
from mlpx.gradcheck import gradcheck
from mlpx.io import load
from mlpx.losses import LOSSES
from mlpx.model import MLP, Intermediates
from mlpx.train import fit

__version__ = "0.1.0"

__all__ = [
    "ACTIVATIONS",
    "LOSSES",
    "MLP",
    "Backend",
    "BackendUnavailableError",
    "Callback",
    "Checkpoint",
    "EarlyStopping",
    "History",
    "Intermediates",
    "MlpxFileError",
    "MlpxTypeError",
    "MlpxValueError",
    "NonFiniteLossError",
    "ProgressBar",
    "TerminateOnNaN",
    "__version__",
    "backend_report",
    "callbacks",
    "datasets",
    "fit",
    "gradcheck",
    "load",
    "optim",
    "resolve_backend",
    "to_numpy",
]
