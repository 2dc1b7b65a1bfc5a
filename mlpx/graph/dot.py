"""Pictures of graphs: Graphviz DOT text, rendered by the ``dot`` program when present."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from mlpx._errors import MlpxValueError
from mlpx.graph.nodes import Constant, Graph, Operation, Placeholder, TrainingStep, Variable

# Colour-blind-safe fills (Okabe-Ito), one per kind of node.
_STYLES = {
    Placeholder: 'shape=box, style="rounded,filled", fillcolor="#56B4E9"',
    Variable: 'shape=box, style=filled, fillcolor="#E69F00"',
    Constant: 'shape=plaintext',
    Operation: 'shape=ellipse, style=filled, fillcolor="#F0F0F0"',
    TrainingStep: 'shape=doubleoctagon, style=filled, fillcolor="#009E73"',
}
FORMATS = ("png", "svg", "pdf")


class GraphvizError(RuntimeError):
    """Graphviz's ``dot`` could not render a graph; the message has its error output."""


class GraphvizNotFoundError(GraphvizError):
    """The Graphviz program ``dot`` is not installed, so a graph cannot be rendered."""


def _quote(text: str) -> str:
    """A DOT string; ``\\n`` in ``text`` stays DOT's line break."""
    return '"' + str(text).replace('"', '\\"') + '"'


def _label(node) -> str:
    name = node.name.replace("\\", "\\\\")  # a backslash in a name is not a DOT escape
    if isinstance(node, Variable):
        return f"{name}\\n{tuple(node.value.shape)}"
    if isinstance(node, Constant):
        value = node.value
        return f"{float(value):g}" if value.ndim == 0 else f"{name} {tuple(value.shape)}"
    if isinstance(node, (Operation, TrainingStep)) and node.name.startswith(node.kind + "_"):
        return node.kind
    if isinstance(node, (Operation, TrainingStep)):
        return f"{name}\\n({node.kind})"
    return name


def _style(node) -> str:
    for kind, style in _STYLES.items():
        if isinstance(node, kind):
            return style
    return ""


def graph_to_dot(graph: Graph) -> str:
    """DOT text: one box per placeholder and Variable, one ellipse per operation, and an
    arrow from every input to the node that consumes it (data flows top to bottom)."""
    ids = {node: f"n{index}" for index, node in enumerate(graph.nodes)}
    lines = ["digraph mlpx {", "  rankdir=TB;", '  node [fontname="Helvetica"];']
    for node in graph.nodes:
        lines.append(f"  {ids[node]} [label={_quote(_label(node))}, {_style(node)}];")
    for node in graph.nodes:
        for child in node.inputs:
            lines.append(f"  {ids[child]} -> {ids[node]};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def draw(graph: Graph, path) -> Path:
    """Render ``graph`` to a PNG, SVG or PDF file with Graphviz's ``dot`` program.

    Parameters
    ----------
    graph : Graph
    path : str or os.PathLike
        The file to write; its suffix picks the format (.png, .svg or .pdf).

    Returns
    -------
    Path

    Raises
    ------
    GraphvizNotFoundError
        When ``dot`` is not installed (the message says how to install it, and that
        ``graph.to_dot()`` gives the text to render elsewhere).
    """
    if not isinstance(graph, Graph):
        raise MlpxValueError(f"draw needs a Graph, got {type(graph).__name__}")
    if not isinstance(path, (str, os.PathLike)):
        raise MlpxValueError(f"path={path!r} must be a file path ending in .png, .svg or .pdf")
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise MlpxValueError(f"path={str(path)!r}: give a .png, .svg or .pdf file name")
    program = shutil.which("dot")
    if program is None:
        raise GraphvizNotFoundError(
            "drawing a graph needs the Graphviz program 'dot', which is not installed "
            "(apt install graphviz, brew install graphviz or conda install graphviz); "
            "graph.to_dot() returns the DOT text to render elsewhere"
        )
    rendered = subprocess.run([program, f"-T{fmt}"], input=graph.to_dot().encode(),
                              capture_output=True, check=False, timeout=120)
    if rendered.returncode != 0:
        raise GraphvizError(f"dot failed: {rendered.stderr.decode(errors='replace')}")
    from mlpx.io import atomic_write_bytes

    atomic_write_bytes(path, rendered.stdout)
    return path
