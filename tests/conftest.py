"""One ``xp`` fixture over every usable backend.

``pytest --backend NAME`` (what each nox session passes) restricts the fixture to one
backend; tests that do not use the fixture then run only in the numpy session, so the
sessions do not repeat each other. Without ``--backend`` every usable backend runs.
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
        return resolve_backend(name)
    except BackendUnavailableError as exc:
        pytest.skip(f"{name} not usable here: {exc}")


@pytest.fixture
def xp(backend):
    """The array-API namespace of the backend under test."""
    return backend.xp
