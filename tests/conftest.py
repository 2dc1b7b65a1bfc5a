"""One ``xp`` fixture over every usable backend.

``pytest --backend NAME`` (what each nox session passes) restricts the fixture to one
backend; tests that do not use the fixture then run only in the numpy session, so the
sessions do not repeat each other. Without ``--backend`` every usable backend runs.

``--device`` puts the backend's arrays on another device than its default: ``cuda:1`` for
torch, ``1`` for CuPy, or ``device1`` for array-api-strict, whose named devices emulate
one that is not the host's. There an array cannot become a NumPy array without being
moved first, and arrays of two devices do not mix, as on a GPU, so the
array_api_strict session runs its tests a second time on ``device1``: a CPU run that
catches a device dropped or a silent host conversion.
"""

from __future__ import annotations

import os

# scikit-learn's array API support (array_api_dispatch) needs SciPy's, which reads this
# variable when SciPy is first imported.
os.environ.setdefault("SCIPY_ARRAY_API", "1")

import pytest  # noqa: E402

from mlpx._backend import BACKEND_NAMES, Backend, resolve_backend  # noqa: E402
from mlpx._errors import BackendUnavailableError  # noqa: E402


def pytest_addoption(parser):
    parser.addoption(
        "--backend",
        action="append",
        choices=BACKEND_NAMES,
        help="run the xp-parametrised tests on this backend only (repeatable)",
    )
    parser.addoption(
        "--device",
        default=None,
        help="the device of the backend under test (cuda:1 for torch, 1 for cupy, device1 "
             "for array_api_strict); default: the backend's default device",
    )


def _device(name: str, device: str | None):
    """``--device`` as ``resolve_backend`` takes it for backend ``name``."""
    if device is None or name == "numpy":
        return None
    if name == "array_api_strict":
        import array_api_strict

        return array_api_strict.Device(device)
    return int(device) if name == "cupy" else device


def _selected(config) -> tuple[str, ...]:
    return tuple(config.getoption("--backend") or BACKEND_NAMES)


def pytest_generate_tests(metafunc):
    if "backend" in metafunc.fixturenames:
        metafunc.parametrize("backend", _selected(metafunc.config), indirect=True)


def pytest_collection_modifyitems(config, items):
    selected = config.getoption("--backend")
    if not selected or "numpy" in selected:
        return
    skip = pytest.mark.skip(reason="backend-independent test; runs in the numpy session")
    for item in items:
        if "backend" not in getattr(item, "fixturenames", ()):
            item.add_marker(skip)


@pytest.fixture
def backend(request) -> Backend:
    """The resolved backend under test; skips when it cannot be used here."""
    name = request.param
    try:
        return resolve_backend(name, _device(name, request.config.getoption("--device")))
    except BackendUnavailableError as exc:
        pytest.skip(f"{name} not usable here: {exc}")


@pytest.fixture
def xp(backend):
    """The array-API namespace of the backend under test."""
    return backend.xp
