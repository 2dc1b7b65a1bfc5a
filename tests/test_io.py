"""Model files (mlpx.io): round trips on every backend, atomic saves, and a loader that
refuses every broken or foreign file with an MlpxFileError before it builds anything."""

from __future__ import annotations

import json
import os
import pickle
import struct
import tracemalloc
import zipfile

import numpy as np
import pytest

import mlpx
from mlpx import MlpxFileError
from mlpx.io import FORMAT_VERSION, MAX_HEADER_BYTES
from tests.helpers import assert_close

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


def _trained(backend=None, **kwargs):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    config = {"layer_sizes": [3, 5, 1], "activations": ["tanh", "sigmoid"], "seed": 3}
    config.update(kwargs)
    model = mlpx.MLP(backend=backend if backend else "numpy", **config)
    model.fit(X, y, epochs=3, batch_size=8)
    return model, X, y


def _split(data: bytes) -> tuple[dict, bytes]:
    (length,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8:8 + length]), data[8 + length:]


def _join(header: dict, body: bytes) -> bytes:
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + body


@pytest.fixture
def saved(tmp_path):
    model, X, _ = _trained()
    path = tmp_path / "model.safetensors"
    model.save(path)
    return model, X, path


# --- round trips -------------------------------------------------------------------------

def test_round_trip_on_every_backend_and_back_to_numpy(backend, tmp_path):
    model, X, y = _trained(backend)
    path = tmp_path / "m.safetensors"
    model.save(path)
    same = mlpx.load(path)  # default: the backend it was saved from, on its default device
    assert same.backend.name == backend.name
    assert_close(same.predict_proba(X), model.predict_proba(X), backend=same.backend, rtol=0)
    same = mlpx.load(path, device=backend.device)
    assert same.backend == backend
    assert_close(same.predict_proba(X), model.predict_proba(X), backend=backend, rtol=0)
    on_cpu = mlpx.load(path, backend="numpy")
    assert isinstance(on_cpu.predict_proba(X), np.ndarray)
    assert_close(on_cpu.predict_proba(X), model.predict_proba(X), rtol=1e-6, atol=1e-7)
    on_cpu.save(tmp_path / "cpu.safetensors")
    back = mlpx.load(tmp_path / "cpu.safetensors", backend=backend)
    assert_close(back.predict_proba(X), model.predict_proba(X), backend=backend, rtol=0)
    assert back.evaluate(X, y) == model.evaluate(X, y)


@pytest.mark.parametrize("labels", [
    np.array(["cat", "dog", "emu"]), np.array([2, 0, 1]), np.array([0.5, 1.5, 2.5]),
])
def test_classes_and_architecture_survive(tmp_path, labels):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(30, 4))
    y = labels[rng.integers(0, 3, 30)]
    model = mlpx.MLP([4, 6, 5, 3], activations=["relu", "elu", "softmax"], dtype="float64",
                     alpha=1e-3, alpha_per_sample=True, seed=7, init="he_normal")
    model.fit(X, y, epochs=2)
    model.save(tmp_path / "m.safetensors")
    loaded = mlpx.load(tmp_path / "m.safetensors")
    assert loaded.layer_sizes == [4, 6, 5, 3]
    assert loaded.activations == ["relu", "elu", "softmax"]
    assert loaded.loss.name == "categorical_crossentropy"
    assert (loaded.alpha, loaded.alpha_per_sample, loaded.seed) == (1e-3, True, 7)
    assert loaded.dtype == np.float64
    np.testing.assert_array_equal(loaded.classes_, model.classes_)
    assert loaded.classes_.dtype == model.classes_.dtype
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    # a loaded model keeps training with its classes
    loaded.fit(X, y, epochs=1)


def test_regressor_and_bool_labels(tmp_path):
    X = np.random.default_rng(2).normal(size=(20, 2))
    regressor = mlpx.MLP([2, 4, 2], seed=0)
    regressor.fit(X, X * 2, epochs=2)
    regressor.save(tmp_path / "r.safetensors")
    loaded = mlpx.load(tmp_path / "r.safetensors")
    assert loaded.classes_ is None
    np.testing.assert_array_equal(loaded.predict(X), regressor.predict(X))
    binary = mlpx.MLP([2, 3, 1], activations=["relu", "sigmoid"], seed=0)
    binary.fit(X, X[:, 0] > 0, epochs=2)
    binary.save(tmp_path / "b.safetensors")
    assert mlpx.load(tmp_path / "b.safetensors").predict(X).dtype == np.bool_


def test_metadata_names_the_version_and_architecture(saved):
    _, _, path = saved
    header, _ = _split(path.read_bytes())
    metadata = header["__metadata__"]
    assert metadata["format"] == "mlpx"
    assert metadata["mlpx_version"] == mlpx.__version__
    assert int(metadata["format_version"]) == FORMAT_VERSION
    config = json.loads(metadata["model"])
    assert config["layer_sizes"] == [3, 5, 1]
    assert config["activations"] == ["tanh", "sigmoid"]
    assert config["loss"] == "binary_crossentropy"
    assert config["dtype"] == "float32"
    assert config["classes"] == {"dtype": np.array([0]).dtype.str, "values": [0, 1]}
    assert sorted(name for name in header if name != "__metadata__") == ["W1", "W2", "b1",
                                                                         "b2"]


def test_the_safetensors_library_reads_our_files(saved):
    from safetensors.numpy import load_file

    model, _, path = saved
    tensors = load_file(str(path))
    np.testing.assert_array_equal(tensors["W1"], mlpx.to_numpy(model.layers[0].W))


# --- atomic saves ------------------------------------------------------------------------

def test_a_crash_mid_save_keeps_the_previous_file(saved, monkeypatch):
    model, _, path = saved
    before = path.read_bytes()
    model.layers[0].W[...] = 0.0

    def crash(fd):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(OSError, match="disk full"):
        model.save(path)
    assert path.read_bytes() == before
    assert os.listdir(path.parent) == [path.name]


def test_an_interrupt_during_the_rename_leaves_no_temporary_file(saved, monkeypatch):
    model, _, path = saved
    before = path.read_bytes()

    def interrupted(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        model.save(path)
    assert path.read_bytes() == before
    assert os.listdir(path.parent) == [path.name]


def test_save_replaces_and_leaves_one_file(saved):
    model, X, path = saved
    model.fit(X, np.zeros(len(X)), epochs=1)
    model.save(path)
    assert os.listdir(path.parent) == [path.name]
    np.testing.assert_array_equal(mlpx.load(path).predict_proba(X), model.predict_proba(X))


def test_bad_save_paths(tmp_path, saved):
    model = saved[0]
    with pytest.raises(FileNotFoundError, match="does not exist"):
        model.save(tmp_path / "missing" / "m.safetensors")
    with pytest.raises(MlpxFileError, match="is a directory"):
        model.save(tmp_path)
    with pytest.raises(TypeError, match="path="):
        model.save(3)


# --- refusals ----------------------------------------------------------------------------

def _refused(path, match):
    with pytest.raises(MlpxFileError, match=match) as info:
        mlpx.load(path)
    assert str(path) in str(info.value)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        mlpx.load(tmp_path / "nope.safetensors")
    with pytest.raises(MlpxFileError, match="directory"):
        mlpx.load(tmp_path)


def test_pickle_and_other_formats_are_refused_without_running_them(tmp_path, saved):
    model = saved[0]

    class Boom:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    bad = tmp_path / "evil.safetensors"
    bad.write_bytes(pickle.dumps(Boom()))
    _refused(bad, "pickle")
    assert not (tmp_path / "pwned").exists()
    pickled_model = tmp_path / "model.pkl"
    pickled_model.write_bytes(pickle.dumps(model, protocol=2))
    _refused(pickled_model, "pickle")
    archive = tmp_path / "torch.pt"
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("data.pkl", b"x")
    _refused(archive, "zip")
    npy = tmp_path / "w.npy"
    np.save(npy, np.zeros(3))
    _refused(npy, "npy")


def test_empty_and_truncated_files(tmp_path, saved):
    data = saved[2].read_bytes()
    path = tmp_path / "x.safetensors"
    path.write_bytes(b"")
    _refused(path, "empty")
    for size in (1, 7, 8, 20, len(data) // 2, len(data) - 1):
        path.write_bytes(data[:size])
        _refused(path, "truncated|not JSON|byte range|refused")


def test_a_huge_header_length_is_refused_without_allocating_it(tmp_path):
    path = tmp_path / "huge.safetensors"
    for length in (2**62, MAX_HEADER_BYTES + 1):
        path.write_bytes(struct.pack("<Q", length) + b"{}")
        tracemalloc.start()
        try:
            _refused(path, "header length")
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < 2**20
    big = tmp_path / "big.safetensors"
    big.write_bytes(struct.pack("<Q", MAX_HEADER_BYTES + 1) + b" " * (MAX_HEADER_BYTES + 1))
    _refused(big, "more than")


def test_headers_that_are_not_json_objects(tmp_path):
    path = tmp_path / "h.safetensors"
    for text in (b"not json", b"\xff\xfe", b"[1, 2]", b"{" * 100_000):
        path.write_bytes(struct.pack("<Q", len(text)) + text)
        _refused(path, "not JSON|not an object")


def test_foreign_safetensors_file(tmp_path):
    from safetensors.numpy import save_file

    path = tmp_path / "other.safetensors"
    save_file({"weight": np.zeros((2, 2), np.float32)}, str(path))
    _refused(path, "format 'mlpx'")


def _rewrite(path, edit_header=None, body=None):
    header, old_body = _split(path.read_bytes())
    if edit_header:
        edit_header(header)
    path.write_bytes(_join(header, old_body if body is None else body))


def _edit_config(header, **changes):
    config = json.loads(header["__metadata__"]["model"])
    config.update(changes)
    header["__metadata__"]["model"] = json.dumps(config)


@pytest.mark.parametrize("edit, match", [
    (lambda h: h.pop("b2"), r"\['b2'\] are missing"),
    (lambda h: h.update(extra=dict(h["b2"])), r"\['extra'\].*does not use"),
    (lambda h: h["W1"].update(shape=[5, 3]), "shape"),
    (lambda h: h["W1"].update(dtype="F64"), "dtype"),
    (lambda h: h["b1"].update(data_offsets=[0, 10**9]), "byte range"),
    (lambda h: h["b1"].update(data_offsets=h["W1"]["data_offsets"][:1] * 2), "byte range"),
    (lambda h: h["__metadata__"].update(format_version="99"), "newer.*upgrade mlpx"),
    (lambda h: h["__metadata__"].update(format_version="one"), "not an integer"),
    (lambda h: h["__metadata__"].update(model="{"), "not JSON"),
    (lambda h: h["__metadata__"].pop("model"), "no 'model'"),
    (lambda h: _edit_config(h, layer_sizes=[3, 5, 2]), "missing|shape"),
    (lambda h: _edit_config(h, layer_sizes=[3, 0, 1]), "layer_sizes"),
    (lambda h: _edit_config(h, layer_sizes=[3, 10**9, 10**9, 1]), "parameters|layer_sizes"),
    (lambda h: _edit_config(h, dtype="float16"), "dtype"),
    (lambda h: _edit_config(h, dtype="float64"), "dtype"),
    (lambda h: _edit_config(h, activations=["tanh", "nope"]), "architecture"),
    (lambda h: _edit_config(h, activations=["tanh"]), "architecture"),
    (lambda h: _edit_config(h, loss="hinge"), "architecture"),
    (lambda h: _edit_config(h, classes={"dtype": "|O", "values": [0, 1]}), "classes"),
    (lambda h: _edit_config(h, classes={"dtype": "<i8", "values": [0, 1, 2]}), "classes"),
    (lambda h: _edit_config(h, classes=None), "classes"),
])
def test_inconsistent_files_are_refused(saved, edit, match):
    _rewrite(saved[2], edit)
    _refused(saved[2], match)


def test_nan_weights_are_refused(saved):
    header, body = _split(saved[2].read_bytes())
    begin = header["W1"]["data_offsets"][0]
    nan = np.array([np.nan], dtype="<f4").tobytes()
    saved[2].write_bytes(_join(header, body[:begin] + nan + body[begin + 4:]))
    _refused(saved[2], "NaN")


def test_unusable_backend_says_how_to_load_on_the_cpu(saved):
    header, body = _split(saved[2].read_bytes())
    _edit_config(header, backend="cupy")
    saved[2].write_bytes(_join(header, body))
    try:
        import cupy  # noqa: F401

        pytest.skip("cupy is importable here")
    except ImportError:
        pass
    with pytest.raises(mlpx.BackendUnavailableError, match="backend='numpy'"):
        mlpx.load(saved[2])
    assert mlpx.load(saved[2], backend="numpy").layer_sizes == [3, 5, 1]


# --- fuzzing -----------------------------------------------------------------------------

_VALID = None


def _valid_file() -> bytes:
    global _VALID
    if _VALID is None:
        import tempfile

        model = _trained()[0]
        with tempfile.TemporaryDirectory() as directory:
            path = os.path.join(directory, "m.safetensors")
            model.save(path)
            with open(path, "rb") as handle:
                _VALID = handle.read()
    return _VALID


@st.composite
def _mutated(draw):
    data = bytearray(_valid_file())
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "set", "truncate", "insert", "delete", "length"]))
        position = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "flip" and data:
            data[position] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set" and data:
            data[position] = draw(st.integers(0, 255))
        elif kind == "truncate":
            del data[position:]
        elif kind == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            del data[position:position + draw(st.integers(1, 16))]
        elif kind == "length":
            data[:8] = struct.pack("<Q", draw(st.integers(0, 2**64 - 1)))
    return bytes(data)


@pytest.mark.slow
@settings(max_examples=1000, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=_mutated())
def test_fuzzed_files_load_or_raise_mlpx_file_error(tmp_path_factory, data):
    path = tmp_path_factory.getbasetemp() / "fuzz.safetensors"
    path.write_bytes(data)
    try:
        model = mlpx.load(path)
    except MlpxFileError:
        return
    for param in model.params:
        assert np.all(np.isfinite(param))
    assert model.predict_proba(np.zeros((2, model.n_features_in_))).shape[0] == 2


def test_saved_files_get_normal_permissions(tmp_path, saved):
    model = saved[0]
    fresh = tmp_path / "fresh.safetensors"
    umask = os.umask(0o022)
    try:
        model.save(fresh)
    finally:
        os.umask(umask)
    assert fresh.stat().st_mode & 0o777 == 0o644
    fresh.chmod(0o640)
    model.save(fresh)  # replacing keeps the file's permissions
    assert fresh.stat().st_mode & 0o777 == 0o640
