"""Model and checkpoint files: safetensors with JSON metadata, written atomically.

A file is the safetensors layout (an 8-byte little-endian header length, a JSON header, the
raw tensor bytes). The weights are the tensors ``W1, b1, W2, b2, ...``; everything else a
model needs (architecture, activations, loss, dtype, classes_, the mlpx version and the
format version) is text in the header's ``__metadata__``. Nothing is ever unpickled.

Reading checks the file layer by layer before it builds anything: the length prefix against
the file size, the header as JSON, the metadata against a known format version, the
architecture, and every tensor's name, dtype, shape and byte range against that
architecture. Each failure is a :class:`mlpx.MlpxFileError` (a ``ValueError``) naming the
file and what is wrong.

Writing goes to a temporary file in the target's directory, which is flushed, fsynced and
renamed over the target: a crash mid-save leaves the previous file whole, and no temporary
file behind.
"""

from __future__ import annotations

import json
import math
import os
import stat
import struct
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from mlpx._backend import BACKEND_NAMES, dtype_name, to_numpy
from mlpx._errors import BackendUnavailableError, MlpxFileError, MlpxTypeError, MlpxValueError
from mlpx.precision import MATMUL_PRECISIONS, backend_supports, check_matmul_precision

FORMAT_NAME = "mlpx"
#: Files of a higher version were written by a newer mlpx and are refused.
FORMAT_VERSION = 1
#: A header longer than this is refused before it is read (a model's header is a few KiB).
MAX_HEADER_BYTES = 16 * 2**20
SAFETENSORS_DTYPES = {"F32": np.dtype("<f4"), "F64": np.dtype("<f8")}
_DTYPE_CODES = {"float32": "F32", "float64": "F64"}
_FILE_SIGNATURES = {
    b"\x80": "a Python pickle",
    b"PK\x03\x04": "a zip archive (torch.save or .npz)",
    b"\x93NUMPY": "a NumPy .npy file",
    b"\x89HDF": "an HDF5 (Keras .h5) file",
}


# --- writing ---------------------------------------------------------------------------

def _check_target_path(path) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise MlpxTypeError(f"path={path!r} must be a str or os.PathLike file path")
    path = Path(path)
    if path.is_dir():
        raise MlpxFileError(f"path={str(path)!r} is a directory; give a file name such as "
                            f"{str(path / 'model.safetensors')!r}")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"cannot save to {str(path)!r}: the directory "
                                f"{str(path.parent)!r} does not exist; create it first")
    return path


def atomic_write_bytes(path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that the file is either the old one or all of the new.

    The bytes go to a temporary file beside ``path``, which is flushed, fsynced and renamed
    over ``path`` (an atomic step on POSIX and Windows); the directory is fsynced after the
    rename where the platform allows. On any error the temporary file is removed and
    ``path`` is untouched.
    """
    path = _check_target_path(path)
    # not a with-block: the name must outlive the handle to be renamed or removed
    handle = tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.",  # noqa: SIM115
                                         suffix=".tmp", delete=False)
    try:
        with handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(handle.name, _file_mode(path))  # temporary files are made 0600
        os.replace(handle.name, path)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)


def _file_mode(path: Path) -> int:
    """The replaced file's permissions, or what ``open()`` would give a new file."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # Windows cannot open directories; the rename is durable there anyway
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_safetensors(path, tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> None:
    """Serialise host arrays and text metadata to ``path`` atomically (safetensors layout)."""
    from safetensors.numpy import save

    contiguous = {name: np.ascontiguousarray(array) for name, array in tensors.items()}
    atomic_write_bytes(path, save(contiguous, metadata=metadata))


def model_tensors(model) -> dict[str, np.ndarray]:
    """``{"W1": ..., "b1": ..., ...}``: the model's parameters as host arrays."""
    tensors = {}
    for index, layer in enumerate(model.layers, start=1):
        tensors[f"W{index}"] = to_numpy(layer.W)
        tensors[f"b{index}"] = to_numpy(layer.b)
    return tensors


def model_metadata(model) -> dict[str, str]:
    """The text metadata that rebuilds ``model``'s architecture (values are JSON)."""
    from mlpx import __version__

    classes = model.classes_
    config = {
        "layer_sizes": model.layer_sizes,
        "activations": model.activations,
        "loss": model.loss.name,
        "dtype": dtype_name(model.dtype),
        "alpha": model.alpha,
        "alpha_per_sample": model.alpha_per_sample,
        "matmul_precision": model.matmul_precision,
        "init": model.init,
        "seed": model.seed,
        "classes": None if classes is None else {"dtype": classes.dtype.str,
                                                 "values": classes.tolist()},
        "has_seen_labels": model._has_seen_labels,
        "backend": model.backend.name,
    }
    return {
        "format": FORMAT_NAME,
        "format_version": str(FORMAT_VERSION),
        "mlpx_version": __version__,
        "model": json.dumps(config),
    }


def save_model(model, path) -> None:
    """Save ``model``'s architecture and weights to ``path`` (see the module docstring).

    Parameters
    ----------
    model : MLP
    path : str or os.PathLike
        The file to write; by convention it ends in ``.safetensors``. Its directory must
        exist. An existing file is replaced atomically.
    """
    write_safetensors(path, model_tensors(model), model_metadata(model))


# --- reading ---------------------------------------------------------------------------

def _read_bytes(path) -> tuple[Path, bytes]:
    if not isinstance(path, (str, os.PathLike)):
        raise MlpxTypeError(f"path={path!r} must be a str or os.PathLike file path")
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such file: {str(path)!r}")
    if path.is_dir():
        raise MlpxFileError(f"{str(path)!r} is a directory, not an mlpx model file")
    return path, path.read_bytes()


def _fail(path: Path, problem: str) -> MlpxFileError:
    return MlpxFileError(f"{str(path)!r} is not a valid mlpx file: {problem}")


def _split_header(data: bytes, path: Path) -> tuple[dict, memoryview]:
    """The parsed JSON header and the tensor bytes after it."""
    if not data:
        raise _fail(path, "the file is empty")
    header_length = struct.unpack("<Q", data[:8])[0] if len(data) >= 8 else None
    plausible = header_length is not None and 0 < header_length <= len(data) - 8 and (
        data[8:9] == b"{")
    if not plausible:
        for signature, kind in _FILE_SIGNATURES.items():
            if data.startswith(signature):
                raise _fail(path, f"it looks like {kind}; mlpx reads only safetensors files "
                                  "written by MLP.save (it never unpickles)")
    if header_length is None:
        raise _fail(path, f"it has {len(data)} bytes, fewer than the 8-byte header length "
                          "(a truncated file)")
    if header_length > len(data) - 8:
        raise _fail(path, f"its header length field says {header_length} bytes but only "
                          f"{len(data) - 8} follow (a truncated or corrupt file)")
    if header_length > MAX_HEADER_BYTES:
        raise _fail(path, f"its header is {header_length} bytes, more than the "
                          f"{MAX_HEADER_BYTES} an mlpx file can have")
    try:
        header = json.loads(bytes(data[8:8 + header_length]).decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise _fail(path, f"its header is not JSON ({exc})") from None
    if not isinstance(header, dict):
        raise _fail(path, f"its header is a JSON {type(header).__name__}, not an object")
    return header, memoryview(data)[8 + header_length:]


def _check_metadata(header: dict, path: Path) -> dict[str, str]:
    metadata = header.get("__metadata__")
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT_NAME:
        raise _fail(path, "its metadata does not say format 'mlpx' (a safetensors file "
                          "from another program?)")
    if not all(isinstance(value, str) for value in metadata.values()):
        raise _fail(path, "its metadata values must all be strings")
    try:
        version = int(metadata.get("format_version", ""))
    except ValueError:
        raise _fail(path, f"format_version {metadata.get('format_version')!r} is not an "
                          "integer") from None
    if version > FORMAT_VERSION:
        raise MlpxFileError(
            f"{str(path)!r} has mlpx file format version {version}, newer than the "
            f"{FORMAT_VERSION} this mlpx reads (it was written by mlpx "
            f"{metadata.get('mlpx_version', '?')}); upgrade mlpx to load it"
        )
    if version < 1:
        raise _fail(path, f"format_version {version} is not a version mlpx wrote")
    return metadata


def json_field(metadata: dict[str, str], key: str, path: Path, *, kind: type = dict):
    """``metadata[key]`` parsed as JSON and checked to be a ``kind``."""
    try:
        value = json.loads(metadata[key])
    except KeyError:
        raise _fail(path, f"its metadata has no {key!r} entry") from None
    except (ValueError, RecursionError) as exc:
        raise _fail(path, f"its metadata {key!r} is not JSON ({exc})") from None
    if not isinstance(value, kind):
        raise _fail(path, f"its metadata {key!r} is a {type(value).__name__}, expected a "
                          f"{kind.__name__}")
    return value


def _check_tensor_entries(header: dict, expected: dict[str, tuple[str, tuple]],
                          n_bytes: int, path: Path) -> None:
    """Every expected tensor is there, no other, with its dtype, shape and byte range."""
    names = {name for name in header if name != "__metadata__"}
    missing = [name for name in expected if name not in names]
    extra = sorted(names - set(expected))
    if missing:
        raise _fail(path, f"tensors {missing} are missing for the stated architecture")
    if extra:
        raise _fail(path, f"it has tensors {extra} that the stated architecture does not use")
    spans = []
    for name, (code, shape) in expected.items():
        entry = header[name]
        if not isinstance(entry, dict):
            raise _fail(path, f"tensor {name!r} has no description")
        if entry.get("dtype") != code:
            raise _fail(path, f"tensor {name!r} has dtype {entry.get('dtype')!r}; the "
                              f"metadata's dtype needs {code!r}")
        if entry.get("shape") != list(shape):
            raise _fail(path, f"tensor {name!r} has shape {entry.get('shape')!r}; the "
                              f"architecture needs {list(shape)}")
        offsets = entry.get("data_offsets")
        size = math.prod(shape) * SAFETENSORS_DTYPES[code].itemsize
        if (not isinstance(offsets, list) or len(offsets) != 2
                or not all(type(o) is int for o in offsets)
                or not 0 <= offsets[0] <= offsets[1] <= n_bytes
                or offsets[1] - offsets[0] != size):
            raise _fail(path, f"tensor {name!r} has byte range {offsets!r}, which does not "
                              f"hold {size} bytes inside the {n_bytes} bytes of data")
        spans.append(tuple(offsets))
    spans.sort()
    if any(end > start for (_, end), (start, _) in zip(spans, spans[1:])):
        raise _fail(path, "tensors overlap in the data")


def read_tensors(path, expected_of) -> tuple[dict[str, np.ndarray], dict[str, str], Path]:
    """Read and check an mlpx safetensors file.

    Parameters
    ----------
    path : str or os.PathLike
    expected_of : callable
        ``expected_of(metadata, path) -> {name: (dtype code, shape)}``: the tensors the
        metadata's architecture needs (it raises MlpxFileError for bad metadata).

    Returns
    -------
    tensors : dict of str -> numpy array (finite, native byte order)
    metadata : dict of str -> str
    path : Path
    """
    path, data = _read_bytes(path)
    header, tensor_bytes = _split_header(data, path)
    metadata = _check_metadata(header, path)
    expected = expected_of(metadata, path)
    _check_tensor_entries(header, expected, len(tensor_bytes), path)
    tensors = {}
    for name, array in _deserialize(data, path).items():
        if not np.all(np.isfinite(array)):
            raise _fail(path, f"tensor {name!r} holds NaN or infinite values")
        tensors[name] = array.astype(array.dtype.newbyteorder("="), copy=False)
    return tensors, metadata, path


def _deserialize(data: bytes, path: Path) -> dict[str, np.ndarray]:
    """The safetensors library's reading of the (already checked) bytes, errors wrapped."""
    from safetensors.numpy import load as load_safetensors

    try:
        return load_safetensors(data)
    except Exception as exc:  # SafetensorError and whatever its parser raises
        raise _fail(path, f"the safetensors reader refused it ({exc})") from None


def model_config(metadata: dict[str, str], path: Path) -> dict[str, Any]:
    """The architecture in the metadata, checked (MlpxFileError names what is wrong)."""
    config = json_field(metadata, "model", path)
    sizes = config.get("layer_sizes")
    if (not isinstance(sizes, list) or len(sizes) < 2
            or not all(type(s) is int and 1 <= s <= 2**31 for s in sizes)):
        raise _fail(path, f"layer_sizes {sizes!r} is not a list of at least two ints >= 1")
    if config.get("dtype") not in _DTYPE_CODES:
        raise _fail(path, f"dtype {config.get('dtype')!r} is not float32 or float64")
    if config.get("backend", "numpy") not in BACKEND_NAMES:
        raise _fail(path, f"backend {config.get('backend')!r} is not one of {BACKEND_NAMES}")
    n_params = sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:]))
    if n_params * 8 > 2**40:
        raise _fail(path, f"layer_sizes {sizes} would need {n_params} parameters")
    return config


def expected_model_tensors(config: dict[str, Any]) -> dict[str, tuple[str, tuple]]:
    """``{"W1": (code, (fan_in, fan_out)), "b1": (code, (fan_out,)), ...}``."""
    code, sizes = _DTYPE_CODES[config["dtype"]], config["layer_sizes"]
    expected = {}
    for index, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
        expected[f"W{index}"] = (code, (fan_in, fan_out))
        expected[f"b{index}"] = (code, (fan_out,))
    return expected


def _classes(config: dict[str, Any], path: Path):
    stored = config.get("classes")
    if stored is None:
        return None
    try:
        dtype = np.dtype(stored["dtype"])
        if dtype.kind not in "biufU":
            raise TypeError(f"dtype {dtype} is not a label dtype")
        return np.asarray(stored["values"], dtype=dtype).reshape(-1)
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        raise _fail(path, f"its classes {stored!r} cannot be read ({exc})") from None


def build_model(config: dict[str, Any], tensors: dict[str, np.ndarray], path: Path, *,
                backend=None, device=None, matmul_precision=None):
    """An MLP with the stored architecture, weights and classes on ``backend``.

    ``matmul_precision`` None keeps the saved one (see :func:`load`).
    """
    from mlpx._backend import resolve_backend
    from mlpx.model import MLP

    if backend is None:
        saved = config.get("backend", "numpy")
        try:
            backend = resolve_backend(saved, device)
        except (BackendUnavailableError, ValueError) as exc:
            raise BackendUnavailableError(
                f"{str(path)!r} was saved from the {saved!r} backend, which is not usable "
                f"here ({exc}); pass backend='numpy' (or another) to mlpx.load"
            ) from None
    else:
        backend = resolve_backend(backend, device)
    given = matmul_precision is not None
    if given:
        matmul_precision = check_matmul_precision(matmul_precision)
    else:
        matmul_precision = config.get("matmul_precision", "highest")
    if matmul_precision in MATMUL_PRECISIONS and not backend_supports(matmul_precision,
                                                                      backend.xp):
        source = "asked for" if given else f"saved in {str(path)!r}"
        raise MlpxValueError(
            f"matmul_precision={matmul_precision!r} ({source}) needs a backend with a "
            f"{matmul_precision} dtype, which the {backend.name} backend does not have; pass "
            "matmul_precision='highest' to mlpx.load (or load it with backend='torch')"
        )
    if given and matmul_precision != "highest" and config.get("dtype") != "float32":
        raise MlpxValueError(
            f"matmul_precision={matmul_precision!r} keeps float32 weights and "
            f"{str(path)!r} holds {config.get('dtype')} ones; leave matmul_precision out"
        )
    try:
        model = MLP(config["layer_sizes"], activations=config.get("activations"),
                    loss=config.get("loss"), backend=backend, dtype=config["dtype"],
                    seed=config.get("seed"), alpha=config.get("alpha", 0.0),
                    init=config.get("init"),
                    alpha_per_sample=config.get("alpha_per_sample", False),
                    matmul_precision=matmul_precision)
    except BackendUnavailableError:
        raise
    except (ValueError, TypeError) as exc:
        raise _fail(path, f"its architecture cannot be built: {exc}") from None
    classes = _classes(config, path)
    expected_classes = model.classes_
    if (classes is None) != (expected_classes is None) or (
            classes is not None and model.task == "multiclass"
            and classes.size != model.n_outputs) or (
            classes is not None and model.task == "binary" and classes.size != 2
            and model.n_outputs == 1):
        raise _fail(path, f"its classes {None if classes is None else classes.tolist()} do "
                          f"not fit a {model.task} model with {model.n_outputs} outputs")
    model.set_params([tensors[name] for name in expected_model_tensors(config)])
    model.classes_ = classes
    model._has_seen_labels = bool(config.get("has_seen_labels", classes is not None))
    return model


def load(path, backend=None, device=None, matmul_precision=None):
    """Load a model written by :meth:`mlpx.MLP.save`.

    Parameters
    ----------
    path : str or os.PathLike
    backend : str or array-API namespace, optional
        Where to put the weights: "numpy", "torch", "cupy", "array_api_strict". Default:
        the backend the model was saved from (a model saved from the GPU loads on the CPU
        with ``backend="numpy"``, and back with ``backend="cupy"``).
    device : optional
        The backend device; default: the backend's default device.
    matmul_precision : {"highest", "bfloat16"}, optional
        Default: the precision the model was saved with. A model trained with bfloat16
        products loads on a backend without bfloat16 (NumPy) with ``"highest"``.

    Returns
    -------
    MLP

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    MlpxFileError
        When the file is not a whole, valid mlpx file: empty, truncated, a pickle or another
        format, a header that is not JSON or is larger than the file, missing or extra
        tensors, wrong shapes or dtypes, non-finite weights, a newer format version.
    BackendUnavailableError
        When the backend (default: the saved one) cannot be used here.
    """
    config, tensors, _, path = _read_model_or_checkpoint(path, need_checkpoint=False)
    return build_model(config, tensors, path, backend=backend, device=device,
                       matmul_precision=matmul_precision)


# --- checkpoints -----------------------------------------------------------------------

def save_checkpoint(path, model, *, epoch: int, optimizer, optimizer_state: dict, schedule,
                    history: dict, history_epochs: list, n_samples: int) -> None:
    """Save everything a fit needs to continue exactly after ``epoch`` (atomically).

    The weights are the model's tensors; the optimizer's slot arrays (one flat vector each)
    are tensors ``optimizer.<slot>``; the epoch, step count, schedule state, the shuffling
    generator's state, the history so far and the number of training samples are JSON in
    the metadata's ``checkpoint`` entry.
    """
    tensors = model_tensors(model)
    for slot in optimizer.slots:
        tensors[f"optimizer.{slot}"] = to_numpy(optimizer_state[slot][0])
    metadata = model_metadata(model)
    metadata["checkpoint"] = json.dumps({
        "epoch": int(epoch),
        "optimizer": {"name": type(optimizer).__name__, "slots": list(optimizer.slots),
                      "step": int(optimizer_state["step"])},
        "schedule": {"name": type(schedule).__name__, "state": schedule.get_state()},
        "rng": model.shuffle_rng.bit_generator.state,
        "history": history,
        "history_epochs": list(history_epochs),
        "n_samples": int(n_samples),
    })
    write_safetensors(path, tensors, metadata)


def _check_checkpoint_entry(checkpoint: dict, path: Path) -> None:
    shapes = {"epoch": int, "optimizer": dict, "schedule": dict, "rng": dict,
              "history": dict, "history_epochs": list, "n_samples": int}
    for key, kind in shapes.items():
        if not isinstance(checkpoint.get(key), kind) or isinstance(checkpoint.get(key), bool):
            raise _fail(path, f"its checkpoint entry {key!r} is missing or not a "
                              f"{kind.__name__}")
    optimizer = checkpoint["optimizer"]
    if (not isinstance(optimizer.get("name"), str) or type(optimizer.get("step")) is not int
            or not isinstance(optimizer.get("slots"), list)
            or not all(isinstance(slot, str) for slot in optimizer["slots"])):
        raise _fail(path, f"its checkpoint's optimizer entry {optimizer!r} is not valid")
    if checkpoint["epoch"] < 0 or optimizer["step"] < 0 or checkpoint["n_samples"] < 1:
        raise _fail(path, "its checkpoint's epoch, step or n_samples is out of range")
    schedule = checkpoint["schedule"]
    if not isinstance(schedule.get("name"), str) or not isinstance(schedule.get("state"), dict):
        raise _fail(path, f"its checkpoint's schedule entry {schedule!r} is not valid")


def read_checkpoint(path) -> tuple[dict, dict[str, np.ndarray], dict, Path]:
    """Read and check a file written by :func:`save_checkpoint`.

    Returns
    -------
    config : dict
        The model's architecture (as :func:`model_config`).
    tensors : dict of str -> numpy array
        ``W1, b1, ...`` and ``optimizer.<slot>`` flat vectors.
    checkpoint : dict
        ``epoch``, ``optimizer`` (name, slots, step), ``schedule`` (name, state), ``rng``,
        ``history``, ``history_epochs``, ``n_samples``.
    path : Path
    """
    return _read_model_or_checkpoint(path, need_checkpoint=True)


def _read_model_or_checkpoint(path, *, need_checkpoint: bool):
    """A model file or checkpoint: (config, tensors, checkpoint entry or None, path)."""
    holder = {"checkpoint": None}

    def expected_of(metadata, file_path):
        config = model_config(metadata, file_path)
        holder["config"] = config
        expected = expected_model_tensors(config)
        if "checkpoint" not in metadata:
            if need_checkpoint:
                raise MlpxFileError(f"{str(file_path)!r} is an mlpx model file, not a "
                                    "checkpoint; resume from a file that "
                                    "mlpx.callbacks.Checkpoint wrote")
            return expected
        checkpoint = json_field(metadata, "checkpoint", file_path)
        _check_checkpoint_entry(checkpoint, file_path)
        holder["checkpoint"] = checkpoint
        n_params = sum(math.prod(shape) for _, shape in expected.values())
        for slot in checkpoint["optimizer"]["slots"]:
            expected[f"optimizer.{slot}"] = (_DTYPE_CODES[config["dtype"]], (n_params,))
        return expected

    tensors, _, path = read_tensors(path, expected_of)
    return holder["config"], tensors, holder["checkpoint"], path
