"""Graphs and their nodes: placeholders, Variables, constants and the Operation base class.

A :class:`Graph` owns a backend (NumPy, CuPy, PyTorch, array-api-strict) and a dtype; every
value that flows through it is an array of that backend. Nodes are created inside a graph
(``with Graph(...):``, or the default graph) and remember their inputs and consumers, which
is all :mod:`mlpx.graph.session` needs to run the graph forwards and backwards.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from mlpx._backend import (
    as_backend_array,
    dtype_name,
    from_host,
    is_host_array,
    resolve_backend,
    resolve_dtype,
)
from mlpx._errors import MlpxTypeError, MlpxValueError


class GraphError(MlpxValueError):
    """A graph cannot be built, run or differentiated; the message names the node."""


_GRAPH_STACK: list[Graph] = []
_DEFAULT_GRAPH: Graph | None = None


class Graph:
    """A computational graph on one backend and dtype (tutorial 000's ``Graph``).

    Parameters
    ----------
    backend : str or array-API namespace
        "numpy", "cupy", "torch" or "array_api_strict".
    dtype : {"float64", "float32"}
        The dtype of every Variable, constant and fed value.
    device : optional
        The backend's device.

    Use it as a context manager (``with Graph(...) as graph:``) to make it the default
    graph that new nodes join; ``graph.as_default()`` does the same and, without ``with``,
    keeps it the default (as in the tutorial).

    Attributes
    ----------
    nodes : list of Node
        Every node, in the order it was created.
    """

    def __init__(self, backend: Any = "numpy", dtype: str = "float64", device: Any = None):
        self.backend = resolve_backend(backend, device)
        self.dtype = resolve_dtype(dtype, xp=self.backend.xp)
        self.nodes: list[Node] = []
        self._counters: dict[str, itertools.count] = {}
        self._pushed_at: int | None = None  # stack depth of an as_default() not yet entered

    @property
    def xp(self):
        return self.backend.xp

    @property
    def placeholders(self) -> list[Placeholder]:
        return [node for node in self.nodes if isinstance(node, Placeholder)]

    @property
    def variables(self) -> list[Variable]:
        return [node for node in self.nodes if isinstance(node, Variable)]

    @property
    def operations(self) -> list[Operation]:
        return [node for node in self.nodes if isinstance(node, Operation)]

    def _unique_name(self, kind: str, name: str | None) -> str:
        if name is not None:
            if not isinstance(name, str) or not name:
                raise MlpxTypeError(f"name={name!r} must be a non-empty str")
            return name
        counter = self._counters.setdefault(kind, itertools.count(1))
        return f"{kind}_{next(counter)}"

    def as_default(self) -> Graph:
        """Make this the default graph (until the ``with`` block it opens ends)."""
        _GRAPH_STACK.append(self)
        self._pushed_at = len(_GRAPH_STACK)
        return self

    def __enter__(self) -> Graph:
        # `with graph.as_default():` enters a graph that as_default just pushed; every other
        # `with` (nested ones of the same graph included) pushes once and pops once.
        if not (self._pushed_at == len(_GRAPH_STACK) and _GRAPH_STACK[-1] is self):
            _GRAPH_STACK.append(self)
        self._pushed_at = None
        return self

    def __exit__(self, *exc_info) -> None:
        if _GRAPH_STACK and _GRAPH_STACK[-1] is self:
            _GRAPH_STACK.pop()

    def to_dot(self) -> str:
        """The graph as Graphviz DOT text (see :func:`mlpx.graph.draw`)."""
        from mlpx.graph.dot import graph_to_dot

        return graph_to_dot(self)

    def as_array(self, value, *, name: str):
        """``value`` (NumPy, a list, a number or a backend array) on the backend, in dtype."""
        if is_host_array(value) or isinstance(value, np.generic):  # NumPy scalars too
            host = np.asarray(value)
            if host.dtype.kind not in "biuf":
                raise MlpxTypeError(f"{name} must be numeric, got dtype {host.dtype}")
            return from_host(host, backend=self.backend, dtype=self.dtype)
        return as_backend_array(value, backend=self.backend, name=name, dtype=self.dtype)

    def __repr__(self) -> str:
        return (f"Graph(backend={self.backend.name!r}, dtype={dtype_name(self.dtype)!r}, "
                f"nodes={len(self.nodes)})")


def get_default_graph() -> Graph:
    """The graph new nodes join: the innermost ``with Graph()``, else a NumPy float64 one."""
    global _DEFAULT_GRAPH
    if _GRAPH_STACK:
        return _GRAPH_STACK[-1]
    if _DEFAULT_GRAPH is None:
        _DEFAULT_GRAPH = Graph()
    return _DEFAULT_GRAPH


class Node:
    """A vertex of the graph: its inputs, its consumers and its place in one graph.

    Python's operators build operations: ``X @ W + b``, ``-a``, ``a * 2``, ``a / b``.
    """

    kind = "node"

    def __init__(self, inputs=(), name: str | None = None, graph: Graph | None = None):
        self.graph = graph if graph is not None else _graph_of(inputs)
        self.inputs: list[Node] = [as_node(node, graph=self.graph) for node in inputs]
        for node in self.inputs:
            if node.graph is not self.graph:
                raise GraphError(
                    f"{node.name!r} belongs to another graph than the {self.kind} being "
                    f"built; build all nodes inside one `with Graph():` block"
                )
        self.name = self.graph._unique_name(self.kind, name)
        self.consumers: list[Node] = []
        for node in self.inputs:
            node.consumers.append(self)
        self.graph.nodes.append(self)

    def __repr__(self) -> str:
        inputs = ", ".join(node.name for node in self.inputs)
        return f"<{type(self).__name__} {self.name!r}({inputs})>"

    # Python operators build the same operations as the functions in mlpx.graph.ops.
    def __add__(self, other):
        from mlpx.graph.ops import add

        return add(self, other)

    def __radd__(self, other):
        from mlpx.graph.ops import add

        return add(other, self)

    def __sub__(self, other):
        from mlpx.graph.ops import subtract

        return subtract(self, other)

    def __rsub__(self, other):
        from mlpx.graph.ops import subtract

        return subtract(other, self)

    def __mul__(self, other):
        from mlpx.graph.ops import multiply

        return multiply(self, other)

    def __rmul__(self, other):
        from mlpx.graph.ops import multiply

        return multiply(other, self)

    def __truediv__(self, other):
        from mlpx.graph.ops import divide

        return divide(self, other)

    def __rtruediv__(self, other):
        from mlpx.graph.ops import divide

        return divide(other, self)

    def __matmul__(self, other):
        from mlpx.graph.ops import matmul

        return matmul(self, other)

    def __rmatmul__(self, other):
        from mlpx.graph.ops import matmul

        return matmul(other, self)

    def __neg__(self):
        from mlpx.graph.ops import negative

        return negative(self)

    __hash__ = object.__hash__  # nodes are dict keys (feed_dict, gradients)
    # NumPy defers to the operators above, so `numpy_array * node` is one operation (not
    # an object array of one node per element).
    __array_ufunc__ = None


def _graph_of(inputs) -> Graph:
    for node in inputs:
        if isinstance(node, Node):
            return node.graph
    return get_default_graph()


class Placeholder(Node):
    """A value given to every ``Session.run`` in its ``feed_dict`` (the data X, labels c)."""

    kind = "placeholder"

    def __init__(self, name: str | None = None, graph: Graph | None = None):
        super().__init__((), name, graph if graph is not None else get_default_graph())


class Variable(Node):
    """A value that lives in the graph and that optimizers change (weights W, biases b).

    Parameters
    ----------
    initial_value : array-like
        Moved to the graph's backend in its dtype (NumPy data is copied).
    name : str, optional
    """

    kind = "variable"

    def __init__(self, initial_value, name: str | None = None, graph: Graph | None = None):
        super().__init__((), name, graph if graph is not None else get_default_graph())
        self.value = self.graph.as_array(initial_value, name=f"Variable {self.name!r}")
        self.value = self.graph.xp.asarray(self.value, copy=True)

    def assign(self, new_value) -> None:
        """Replace the value (same shape), e.g. with weights from ``mlpx.MLP``."""
        value = self.graph.as_array(new_value, name=f"Variable {self.name!r}")
        value = self.graph.xp.asarray(value, copy=True)  # optimizers write in place
        if tuple(value.shape) != tuple(self.value.shape):
            raise GraphError(f"Variable {self.name!r} has shape {tuple(self.value.shape)}; "
                             f"cannot assign a value of shape {tuple(value.shape)}")
        self.value = value


class Constant(Node):
    """A fixed value (Python numbers in ``2 * x`` become constants)."""

    kind = "constant"

    def __init__(self, value, name: str | None = None, graph: Graph | None = None):
        super().__init__((), name, graph if graph is not None else get_default_graph())
        self.value = self.graph.as_array(value, name=f"constant {self.name!r}")
        self.value = self.graph.xp.asarray(self.value, copy=True)  # not the caller's array


def as_node(value, *, graph: Graph) -> Node:
    """A node as it is; a number or array as a :class:`Constant` of ``graph``."""
    return value if isinstance(value, Node) else Constant(value, graph=graph)


class Operation(Node):
    """A node computed from its inputs; subclasses define ``compute`` and ``gradient``.

    ``compute(*input_values, xp)`` returns the output; ``gradient(grad, *input_values,
    output=..., xp=...)`` returns, for each input, the gradient of the loss with respect to
    it given ``grad``, the gradient with respect to the output (a vector-Jacobian product);
    None for an input that needs none.
    """

    kind = "op"

    def __init__(self, *inputs, name: str | None = None):
        graph = _graph_of(inputs)
        super().__init__(inputs, name, graph)

    def compute(self, *values, xp):
        """The output from the inputs' values (arrays of the graph's backend)."""
        raise NotImplementedError

    def gradient(self, grad, *values, output, xp) -> tuple:
        """One gradient per input, each of that input's shape, from ``grad`` (the
        gradient of the loss with respect to ``output``); None where none is needed."""
        raise NotImplementedError


class TrainingStep(Node):
    """A node that, when run, changes Variables (an optimizer's ``minimize``)."""

    kind = "step"

    def step(self, values: dict) -> None:
        """Take one step, given the values of a forward pass that included the loss."""
        raise NotImplementedError


def placeholder(name: str | None = None) -> Placeholder:
    """A :class:`Placeholder` in the default graph."""
    return Placeholder(name=name)


def constant(value, name: str | None = None) -> Constant:
    """A :class:`Constant` in the default graph."""
    return Constant(value, name=name)
