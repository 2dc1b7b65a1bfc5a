"""Backends: turn a name, namespace or array into ``(xp, device)`` once.

Everything below the public entry points receives ``xp`` (an array-API namespace) and
``device`` explicitly. This is also the only module, with ``io``, that turns device arrays
into NumPy arrays (:func:`to_numpy`), and the one that moves host arrays to a device
(:func:`from_host`).
"""

from __future__ import annotations

import importlib
import platform
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import array_api_compat
import numpy as np

from mlpx._errors import BackendUnavailableError, MlpxTypeError, MlpxValueError

BACKEND_NAMES = ("numpy", "cupy", "torch", "array_api_strict")
DTYPE_NAMES = ("float32", "float64")

# What to install for each backend, named in the error when it is missing.
_INSTALL_HINT = {
    "numpy": "pip install numpy",
    "cupy": "pip install 'mlpx[gpu]' (CuPy for CUDA) on a machine with an NVIDIA GPU",
    "torch": "pip install 'mlpx[torch]'",
    "array_api_strict": "pip install array-api-strict",
}


@dataclass(frozen=True)
class Backend:
    """A resolved backend: the array-API namespace, its name and the device arrays live on.

    Attributes
    ----------
    name : str
        One of ``BACKEND_NAMES``.
    xp : module
        The array-API compatible namespace (``array_api_compat.numpy`` for NumPy).
    device : object
        The device every array of this backend is created on.
    """

    name: str
    xp: ModuleType
    device: Any

    def __repr__(self) -> str:
        return f"Backend(name={self.name!r}, device={self.device!r})"

    def __reduce__(self):
        # Pickled by name and device (modules and some device objects do not pickle);
        # unpickling resolves the backend again on the machine that loads it.
        if self.name == "torch":
            device = str(self.device)
        elif self.name == "cupy":
            device = int(self.device.id)
        elif self.name == "array_api_strict":
            device = self.device  # its Device objects pickle (and emulate a second device)
        else:
            device = None
        return resolve_backend, (self.name, device)


def _import_library(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise BackendUnavailableError(
            f"backend={name!r} needs the {name} package, which is not installed; "
            f"install it with: {_INSTALL_HINT[name]}"
        ) from exc


def _default_device(name: str, library: ModuleType) -> Any:
    if name == "numpy":
        return "cpu"
    if name == "torch":
        if library.cuda.is_available():  # "cuda:N", as arrays report it, not bare "cuda"
            return library.device("cuda", library.cuda.current_device())
        return library.device("cpu")
    if name == "cupy":
        try:
            n_gpus = library.cuda.runtime.getDeviceCount()
        except Exception as exc:  # CUDA driver missing or broken
            raise BackendUnavailableError(
                f"backend='cupy' needs a CUDA GPU, but CuPy could not reach one ({exc}); "
                "use backend='numpy' here, or install 'mlpx[gpu]' on a machine with a GPU"
            ) from exc
        if n_gpus < 1:
            raise BackendUnavailableError(
                "backend='cupy' needs a CUDA GPU and none was found; use backend='numpy', or "
                "install 'mlpx[gpu]' on a machine with an NVIDIA GPU"
            )
        return library.cuda.Device()
    return library.asarray(0.0).device  # array_api_strict


def _torch_device(torch: ModuleType, device: Any) -> Any:
    """A ``torch.device`` that exists here; CUDA devices get their index ("cuda:0")."""
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise MlpxValueError(
            f"device={device!r} is not a torch device; use 'cpu', 'cuda' or 'cuda:N'"
        ) from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise BackendUnavailableError(
                f"device={str(device)!r} needs CUDA, which this torch build or machine does not "
                "have; use device='cpu', or install a CUDA build of torch ('mlpx[torch]')"
            )
        if device.index is None:
            device = torch.device("cuda", torch.cuda.current_device())
        elif device.index >= torch.cuda.device_count():
            raise MlpxValueError(
                f"device={str(device)!r} does not exist; this machine has "
                f"{torch.cuda.device_count()} CUDA device(s)"
            )
    return device


def _cupy_device(cupy: ModuleType, device: Any) -> Any:
    """``N``, ``"cuda:N"`` or a ``cupy.cuda.Device`` as a ``cupy.cuda.Device``."""
    if isinstance(device, cupy.cuda.Device):
        return device
    text = str(device)
    index = text.split(":", 1)[1] if text.startswith("cuda") and ":" in text else text
    if text == "cuda":
        index = "0"
    try:
        return cupy.cuda.Device(int(index))
    except ValueError:
        raise MlpxValueError(
            f"device={device!r} is not a CUDA device for backend='cupy'; use 'cuda:0', 'cuda:1'"
        ) from None


def _name_of_namespace(namespace: Any) -> str | None:
    checks = {
        "numpy": array_api_compat.is_numpy_namespace,
        "cupy": array_api_compat.is_cupy_namespace,
        "torch": array_api_compat.is_torch_namespace,
        "array_api_strict": array_api_compat.is_array_api_strict_namespace,
    }
    for name, is_it in checks.items():
        if is_it(namespace):
            return name
    return None


def resolve_backend(backend: Any = "numpy", device: Any = None) -> Backend:
    """Resolve ``backend=`` (a name, an array-API namespace or a Backend) once.

    Parameters
    ----------
    backend : str, module or Backend
        ``"numpy"``, ``"cupy"``, ``"torch"``, ``"array_api_strict"``, or one of those
        namespaces (``numpy``, ``torch``, ``array_api_compat.numpy``, ...).
    device : object, optional
        The device to use (e.g. ``"cuda:1"`` for torch). Default: the GPU for cupy, the GPU
        for torch when CUDA is available and the CPU otherwise.

    Returns
    -------
    Backend
    """
    if isinstance(backend, Backend):
        return backend if device is None else Backend(backend.name, backend.xp, device)
    if isinstance(backend, str):
        name = backend.lower().replace("-", "_")
        if name not in BACKEND_NAMES:
            raise MlpxValueError(
                f"backend={backend!r} is not known; use one of {', '.join(BACKEND_NAMES)} "
                "or pass an array-API namespace"
            )
    elif isinstance(backend, ModuleType):
        name = _name_of_namespace(backend)
        if name is None:
            raise MlpxValueError(
                f"backend={backend.__name__!r} is not a namespace mlpx supports; use one of "
                f"{', '.join(BACKEND_NAMES)}"
            )
    else:
        raise MlpxTypeError(
            f"backend must be a name or an array-API namespace, got {type(backend).__name__}; "
            f"use one of {', '.join(BACKEND_NAMES)}"
        )
    library = _import_library(name)
    if device is None:
        device = _default_device(name, library)
    elif name == "torch":
        device = _torch_device(library, device)
    elif name == "cupy":
        device = _cupy_device(library, device)
    elif str(device).lower() in ("cpu", "cpu_device"):
        device = _default_device(name, library)
    elif name == "numpy" or not isinstance(device, type(_default_device(name, library))):
        raise MlpxValueError(
            f"device={device!r} is not available for backend={name!r}, which runs on the CPU "
            "only; leave device=None or use 'cpu'"
        )
    xp = library if name == "array_api_strict" else array_api_compat.array_namespace(
        library.asarray([0.0])
    )
    return Backend(name=name, xp=xp, device=device)


def resolve_dtype(dtype: Any, *, xp: ModuleType) -> Any:
    """Map ``"float32"``/``"float64"`` (or the dtype object) to ``xp``'s floating dtype."""
    name = dtype if isinstance(dtype, str) else dtype_name(dtype)
    if name not in DTYPE_NAMES:
        raise MlpxValueError(
            f"dtype={dtype!r} is not supported; use 'float32' (default) or 'float64'"
        )
    return getattr(xp, name)


# (type of the dtype, dtype) -> its plain name. NumPy computes ``dtype.name`` in Python
# (about 0.7 us), and checks and predictions ask for it on every call. The type comes
# first so that dtypes of two libraries are never compared (array_api_strict's hash as
# NumPy's and warn when compared with them).
_DTYPE_NAME_CACHE: dict[tuple, str] = {}


def dtype_name(dtype: Any) -> str:
    """The plain name ("float32"/"float64") of a dtype from any backend (or a numpy type)."""
    key = (type(dtype), dtype)
    try:
        return _DTYPE_NAME_CACHE[key]
    except KeyError:
        name = _DTYPE_NAME_CACHE[key] = _plain_dtype_name(dtype)
        return name
    except TypeError:  # unhashable
        return _plain_dtype_name(dtype)


def _plain_dtype_name(dtype: Any) -> str:
    if isinstance(dtype, type) and issubclass(dtype, np.generic):
        return np.dtype(dtype).name
    name = getattr(dtype, "name", None)
    if isinstance(name, str):
        return name
    return str(dtype).rsplit(".", 1)[-1]


def from_host(host_array: Any, *, backend: Backend, dtype: Any = None) -> Any:
    """Move a NumPy (host) array to ``backend``'s device, cast to ``dtype`` when given."""
    host_array = np.asarray(host_array)
    return backend.xp.asarray(host_array, dtype=dtype, device=backend.device)


def take_rows(array: Any, rows: Any, *, backend: Backend) -> Any:
    """``array[rows]`` along the first axis, for ``rows`` known to be in range and >= 0.

    array_api_compat's torch ``take`` first wraps negative indices (a compare, an add and
    a select: three more kernel launches per call on a GPU); the training loop's rows are a
    permutation, so on torch they go straight to ``index_select``.
    """
    if backend.name == "torch":
        import torch  # reached only with torch arrays

        return torch.index_select(array, 0, rows)
    return backend.xp.take(array, rows, axis=0)


def host_array(obj: Any, *, name: str) -> np.ndarray:
    """``np.asarray(obj)`` for host data, with an error naming ``name`` for ragged input."""
    if hasattr(obj, "toarray") and hasattr(obj, "nnz"):  # scipy.sparse (np.asarray: object)
        raise MlpxTypeError(
            f"{name} is a sparse matrix ({type(obj).__name__}), and mlpx trains on dense "
            f"arrays; pass {name}.toarray() (n_samples x n_features numbers in memory)"
        )
    try:
        host = np.asarray(obj)
    except (ValueError, TypeError) as exc:
        raise MlpxValueError(
            f"{name} could not be read as an array ({exc}); pass a rectangular array, every "
            "row with the same number of values"
        ) from None
    if host.dtype.kind == "c":
        raise MlpxTypeError(f"{name} must be numeric and real, got complex values ({host.dtype})")
    return host


def is_host_array(obj: Any) -> bool:
    """True for NumPy arrays, Python sequences and scalars (anything that lives on the host)."""
    if isinstance(obj, (np.ndarray, np.generic)):
        return True
    return not array_api_compat.is_array_api_obj(obj)


def library_name(array: Any) -> str:
    """A short name of the library an array belongs to, for error messages."""
    module = type(array).__module__.split(".")[0]
    return {"array_api_strict": "array_api_strict"}.get(module, module)


_CONVERSION_HINT = {
    "torch": "x.detach().cpu().numpy()",
    "cupy": "cupy.asnumpy(x)",
    "array_api_strict": "numpy.from_dlpack(x)",
    "jax": "numpy.asarray(x)",
}


def as_backend_array(obj: Any, *, backend: Backend, name: str, dtype: Any = None) -> Any:
    """Return ``obj`` as an array of ``backend``, moving host data once.

    NumPy arrays, lists and pandas objects are moved to the device. Arrays of the model's
    own library are used as they are (cast to ``dtype`` when given). Arrays of another
    library raise a TypeError that says how to convert.

    Parameters
    ----------
    obj : array-like
    backend : Backend
    name : str
        The parameter's name, for error messages (``"X"``, ``"y"``).
    dtype : dtype, optional
        Cast to this dtype of ``backend.xp``.
    """
    xp = backend.xp
    if is_host_array(obj):
        host = host_array(obj, name=name)
        if dtype is not None:
            host = _host_to_float(host, name=name)
        return xp.asarray(host, dtype=dtype, device=backend.device)
    other = _name_of_namespace(array_api_compat.array_namespace(obj))
    if other != backend.name:
        library = library_name(obj)
        hint = _CONVERSION_HINT.get(library, "numpy.asarray(x)")
        raise MlpxTypeError(
            f"{name} is a {library} array but the model's backend is {backend.name!r}; "
            f"convert it to NumPy first ({hint}) or build the model with backend={library!r}"
        )
    if array_api_compat.device(obj) != backend.device:
        obj = array_api_compat.to_device(obj, backend.device)
    if dtype is not None:
        if not xp.isdtype(obj.dtype, ("real floating", "integral", "bool")):
            raise MlpxTypeError(f"{name} must be numeric, got dtype {obj.dtype}")
        if obj.dtype != dtype:
            obj = xp.astype(obj, dtype)
    return obj


def _host_to_float(host: np.ndarray, *, name: str) -> np.ndarray:
    if host.dtype.kind in "biuf":
        return host
    try:
        return host.astype(np.float64)
    except (TypeError, ValueError, OverflowError) as exc:
        raise MlpxTypeError(
            f"{name} must be numeric, got values of dtype {host.dtype} that are not numbers; "
            "encode text columns as numbers first"
        ) from exc


def to_numpy(array: Any) -> np.ndarray:
    """Copy an array of any backend to a NumPy array on the host (for tests, IO and labels)."""
    if isinstance(array, np.ndarray):
        return array
    if not array_api_compat.is_array_api_obj(array):
        return np.asarray(array)
    if array_api_compat.is_torch_array(array):
        return array.detach().cpu().numpy()
    if array_api_compat.is_cupy_array(array):
        return array.get()
    if _name_of_namespace(array_api_compat.array_namespace(array)) == "array_api_strict":
        return np.from_dlpack(array)
    return np.asarray(array)


def backend_of(array: Any) -> Backend:
    """The Backend (namespace and device) an array lives on."""
    if is_host_array(array):
        return resolve_backend("numpy")
    namespace = array_api_compat.array_namespace(array)
    name = _name_of_namespace(namespace)
    if name is None:
        raise MlpxTypeError(f"arrays of {library_name(array)} are not supported by mlpx")
    return Backend(name=name, xp=namespace, device=array_api_compat.device(array))


def backend_report() -> list[dict[str, str]]:
    """Which backends and devices are usable here, for ``mlpx info``.

    Returns
    -------
    list of dict
        One dict per backend with keys ``backend``, ``usable`` ("yes"/"no"), ``devices``
        and ``note`` (the version and whether ``matmul_precision="bfloat16"`` runs there,
        or what to install).
    """
    from mlpx.precision import backend_supports

    report = []
    for name in BACKEND_NAMES:
        try:
            backend = resolve_backend(name)
        except BackendUnavailableError as exc:
            report.append({"backend": name, "usable": "no", "devices": "-", "note": str(exc)})
            continue
        library = importlib.import_module(name)
        devices = _list_devices(name, library, backend.device)
        note = getattr(library, "__version__", "")
        if backend_supports("bfloat16", backend.xp):
            note += "; bfloat16 products"
        report.append({"backend": name, "usable": "yes", "devices": devices, "note": note})
    return report


def _list_devices(name: str, library: ModuleType, default: Any) -> str:
    if name == "torch":
        cuda = [f"cuda:{i}" for i in range(library.cuda.device_count())]
        return ", ".join(["cpu", *cuda])
    if name == "cupy":
        count = library.cuda.runtime.getDeviceCount()
        return ", ".join(f"cuda:{i}" for i in range(count))
    return str(default)


# glibc malloc hands freed heap back to the OS as soon as more than its trim threshold is
# free at the top, and that threshold starts at 128 KiB; it rises (to twice a block's size)
# only when a block above the mmap threshold (128 KiB at first) is freed, for blocks of up
# to 32 MiB (mallopt(3), "M_MMAP_THRESHOLD"). A torch CPU training step makes temporaries
# of a few MiB (Adam's, over a flat parameter buffer): in a fresh process each step then
# gives them back and page-faults them in again. On a 784-512-256-10 network that doubled
# a fit's time (1.05 s instead of 0.51 s; 374 000 page faults instead of 12 000). Freeing
# one 32 MiB block raises both thresholds, as any earlier large array would have; the
# block is never touched, so this costs microseconds.
_ALLOCATOR_PRIMING_BYTES = 32 * 2**20 - 4096
_allocator_primed = False


def prime_host_allocator(backend: Backend) -> None:
    """Raise glibc malloc's trim threshold once, before torch trains on the CPU (see above).

    A no-op for other backends and devices, off glibc, and after the first call.
    """
    global _allocator_primed
    if (_allocator_primed or backend.name != "torch" or str(backend.device) != "cpu"
            or platform.libc_ver()[0] != "glibc"):
        return
    import torch

    block = torch.empty(_ALLOCATOR_PRIMING_BYTES, dtype=torch.uint8, device="cpu")
    del block
    _allocator_primed = True
