"""mlpx's own exception types.

Each subclasses the built-in exception a scikit-learn or NumPy user would catch, so
``except ValueError`` keeps working.
"""

from __future__ import annotations


class MlpxValueError(ValueError):
    """A parameter has a value mlpx cannot use; the message names it and the fix."""


class MlpxTypeError(TypeError):
    """A parameter has a type mlpx cannot use; the message names it and the fix."""


class MlpxFileError(MlpxValueError):
    """A model or checkpoint file is not a whole, valid mlpx file; the message says why."""


class BackendUnavailableError(ImportError):
    """The requested backend cannot be used here (library missing or no device)."""


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite; the model keeps its last finite weights."""
