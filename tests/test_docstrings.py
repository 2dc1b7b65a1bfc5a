"""Every public function, class and method of mlpx's public modules has a docstring."""

from __future__ import annotations

import importlib
import inspect

import pytest

MODULES = ["mlpx", "mlpx.model", "mlpx.train", "mlpx.callbacks", "mlpx.optim",
           "mlpx.datasets", "mlpx.io", "mlpx.activations", "mlpx.losses", "mlpx.layers",
           "mlpx.init", "mlpx.gradcheck", "mlpx.sklearn", "mlpx.lbfgs", "mlpx.cli",
           "mlpx.plot", "mlpx.graph", "mlpx.graph.nodes", "mlpx.graph.ops",
           "mlpx.graph.session", "mlpx.graph.optimizers", "mlpx.graph.dot"]


def _public(module):
    for name, obj in vars(module).items():
        if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
            continue
        if inspect.isfunction(obj) or inspect.isclass(obj):
            yield name, obj
            if inspect.isclass(obj):
                for attr, member in vars(obj).items():
                    if not attr.startswith("_") and inspect.isfunction(member):
                        yield f"{name}.{attr}", getattr(obj, attr)


@pytest.mark.parametrize("module_name", MODULES)
def test_public_names_have_docstrings(module_name):
    module = importlib.import_module(module_name)
    missing = [name for name, obj in _public(module) if not inspect.getdoc(obj)]
    assert not missing, f"{module_name}: no docstring for {missing}"
