"""Assertions shared by the tests."""

from __future__ import annotations

import numpy as np

from mlpx._backend import Backend, to_numpy

# torch calls (as TorchFunctionMode names them) that copy a value to the host: on a GPU
# each waits for every launch before it, and CUDA stream capture fails on one.
HOST_READS = {"item", "__bool__", "__float__", "__int__", "__index__", "tolist", "numpy",
              "__array__", "cpu"}
#: How a recorder may count a ``.to`` that returns its own tensor (no copy, no launch).
NO_OP_TO = "to (no-op)"
# torch calls that launch nothing: attribute reads, views and no-op casts.
NO_LAUNCH = {"__get__", "reshape", "swapaxes", "__getitem__", "view", "permute", "expand",
             "dim", "size", "__len__", "t", NO_OP_TO}


def assert_close(actual, desired, *, backend: Backend | None = None, rtol=1e-7, atol=0.0,
                 dtype=None, shape=None):
    """Compare an array with a reference, also checking namespace, dtype, device and shape.

    Parameters
    ----------
    actual : array of the backend under test
    desired : array-like
        The reference values (any library; compared on the host).
    backend : Backend, optional
        When given, ``actual`` must be an array of this backend and on its device.
    """
    if backend is not None:
        from array_api_compat import array_namespace, device

        assert array_namespace(actual) is backend.xp, (
            f"array of {type(actual).__module__}, expected {backend.name}"
        )
        assert device(actual) == backend.device
    if dtype is not None:
        assert actual.dtype == dtype, f"dtype {actual.dtype}, expected {dtype}"
    if shape is not None:
        assert tuple(actual.shape) == tuple(shape), f"shape {actual.shape}, expected {shape}"
    np.testing.assert_allclose(to_numpy(actual), to_numpy(desired), rtol=rtol, atol=atol)
