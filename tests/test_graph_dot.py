"""Pictures of mlpx.graph graphs: the DOT text, and rendering with Graphviz's ``dot``.

Graphviz is not needed: rendering runs a fake ``dot`` script put first on PATH, and the
missing-program error is checked with ``shutil.which`` patched to find nothing.
"""

from __future__ import annotations

import os
import re
import shutil
import stat

import numpy as np
import pytest

from mlpx import graph as g

NODE_LINE = re.compile(r'^  (n\d+) \[label="((?:[^"\\]|\\.)*)"(?:, (.*))?\];$')
EDGE_LINE = re.compile(r"^  (n\d+) -> (n\d+);$")

posix_only = pytest.mark.skipif(os.name != "posix", reason="the fake dot is a shell script")


def tutorial_graph():
    with g.Graph() as graph:
        X, c = g.placeholder(name="X"), g.placeholder(name="c")
        W, b = g.Variable(np.zeros((2, 3)), name="W"), g.Variable(np.zeros(3), name="b")
        logits = g.add(g.matmul(X, W), b, name="logits")
        J = g.negative(g.reduce_sum(g.reduce_sum(g.multiply(c, g.log(g.softmax(logits))),
                                                 axis=1)), name="J")
        scaled = 2 * J
        step = g.GradientDescentOptimizer(0.1).minimize(J)
    return graph, dict(X=X, c=c, W=W, b=b, logits=logits, J=J, scaled=scaled, step=step)


def parse(dot: str):
    nodes, edges = {}, []
    lines = dot.splitlines()
    assert lines[0] == "digraph mlpx {" and lines[-1] == "}"
    for line in lines[1:-1]:
        if node := NODE_LINE.match(line):
            assert node.group(1) not in nodes, f"node {node.group(1)} listed twice"
            nodes[node.group(1)] = (node.group(2), node.group(3) or "")
        elif edge := EDGE_LINE.match(line):
            edges.append((edge.group(1), edge.group(2)))
        else:
            assert line.strip().endswith(";"), line
    return nodes, edges


def test_to_dot_has_a_line_per_node_and_an_edge_per_input():
    graph, named = tutorial_graph()
    nodes, edges = parse(graph.to_dot())
    assert len(nodes) == len(graph.nodes)
    ids = {node: f"n{i}" for i, node in enumerate(graph.nodes)}
    expected_edges = [(ids[child], ids[node]) for node in graph.nodes for child in node.inputs]
    assert sorted(edges) == sorted(expected_edges)
    assert len(edges) == sum(len(node.inputs) for node in graph.nodes)
    for a, b in [("b", "logits"), ("J", "step"), ("J", "scaled")]:
        assert (ids[named[a]], ids[named[b]]) in edges
    assert (ids[named["logits"]], ids[named["J"]]) not in edges  # softmax, log, ... between
    matmul = named["logits"].inputs[0]
    assert (ids[named["X"]], ids[matmul]) in edges and (ids[named["W"]], ids[matmul]) in edges
    assert (ids[matmul], ids[named["X"]]) not in edges  # input -> consumer, not back


def test_to_dot_labels_and_shapes_name_each_node():
    graph, named = tutorial_graph()
    nodes, _ = parse(graph.to_dot())
    by_node = {node: nodes[f"n{i}"] for i, node in enumerate(graph.nodes)}
    assert by_node[named["X"]][0] == "X" and "box" in by_node[named["X"]][1]
    assert by_node[named["W"]][0] == "W\\n(2, 3)"
    assert by_node[named["b"]][0] == "b\\n(3,)"
    assert by_node[named["logits"]][0] == "logits\\n(add)"
    assert "ellipse" in by_node[named["logits"]][1]
    assert by_node[named["J"]][0] == "J\\n(negative)"
    assert by_node[named["logits"].inputs[0]][0] == "matmul"
    assert by_node[named["scaled"].inputs[0]][0] == "2"  # the constant's value
    assert by_node[named["step"]][0] == "minimize"
    assert "doubleoctagon" in by_node[named["step"]][1]
    kinds = sorted(label for label, _ in nodes.values())
    assert kinds.count("reduce_sum") == 2 and "softmax" in kinds and "log" in kinds


def test_to_dot_escapes_quotes_and_backslashes_in_names():
    with g.Graph() as graph:
        g.placeholder(name='say "hi"')
        g.Variable([1.0], name="C:\\temp\\")
    nodes, _ = parse(graph.to_dot())
    assert nodes["n0"][0] == 'say \\"hi\\"'
    assert nodes["n1"][0] == "C:\\\\temp\\\\\\n(1,)"


def test_to_dot_of_an_empty_graph():
    assert parse(g.Graph().to_dot()) == ({}, [])


def test_draw_without_graphviz_says_how_to_get_it(tmp_path, monkeypatch):
    graph, _ = tutorial_graph()
    monkeypatch.setattr(shutil, "which", lambda *args, **kwargs: None)
    target = tmp_path / "graph.png"
    with pytest.raises(g.GraphvizNotFoundError, match=r"Graphviz program 'dot'.*not installed"
                                                      r".*apt install graphviz.*to_dot\(\)"):
        g.draw(graph, target)
    assert not target.exists()
    assert issubclass(g.GraphvizNotFoundError, RuntimeError)


@pytest.fixture
def fake_dot(tmp_path, monkeypatch):
    """A `dot` first on PATH that logs its arguments and stdin, and prints FAKE-<format>.

    FAKE_DOT_FAIL=1 makes it fail with a message on stderr.
    """
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "dot-stdin.txt"
    script = bin_dir / "dot"
    script.write_text(
        "#!/bin/sh\n"
        f'cat > "{log}"\n'
        'if [ "$FAKE_DOT_FAIL" = 1 ]; then echo "syntax error in line 1" >&2; exit 1; fi\n'
        'printf "FAKE%s" "$1"\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.delenv("FAKE_DOT_FAIL", raising=False)
    return log


@posix_only
@pytest.mark.parametrize(("name", "fmt"), [("graph.png", "png"), ("graph.svg", "svg"),
                                           ("GRAPH.SVG", "svg"), ("graph.pdf", "pdf")])
def test_draw_renders_with_dot_and_writes_the_file(tmp_path, fake_dot, name, fmt):
    graph, _ = tutorial_graph()
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    target = out_dir / name
    result = g.draw(graph, str(target))
    assert result == target
    assert target.read_bytes() == f"FAKE-T{fmt}".encode()
    assert fake_dot.read_text() == graph.to_dot()
    assert os.listdir(out_dir) == [name]  # no temporary file left beside it


@posix_only
def test_draw_replaces_a_file_atomically_and_keeps_it_when_dot_fails(tmp_path, fake_dot,
                                                                       monkeypatch):
    graph, _ = tutorial_graph()
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    target = out_dir / "graph.svg"
    target.write_bytes(b"old picture")
    monkeypatch.setenv("FAKE_DOT_FAIL", "1")
    with pytest.raises(RuntimeError, match="dot failed: syntax error in line 1"):
        g.draw(graph, target)
    assert target.read_bytes() == b"old picture"
    assert os.listdir(out_dir) == ["graph.svg"]

    monkeypatch.delenv("FAKE_DOT_FAIL")
    replaced = []
    real_replace = os.replace

    def spy_replace(src, dst):
        replaced.append((os.path.dirname(src), os.path.basename(src), dst))
        assert target.read_bytes() == b"old picture"  # the new bytes went elsewhere first
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy_replace)
    g.draw(graph, target)
    assert target.read_bytes() == b"FAKE-Tsvg"
    [(directory, temporary, destination)] = replaced
    assert directory == str(out_dir) and temporary != "graph.svg"
    assert str(destination) == str(target)
    assert os.listdir(out_dir) == ["graph.svg"]


@posix_only
@pytest.mark.parametrize("name", ["graph.jpg", "graph", "graph.png.txt", "graph.dot"])
def test_draw_refuses_unknown_formats_before_running_dot(tmp_path, fake_dot, name):
    graph, _ = tutorial_graph()
    with pytest.raises(ValueError, match=r"\.png, \.svg or \.pdf"):
        g.draw(graph, tmp_path / name)
    assert not (tmp_path / name).exists()
    assert not fake_dot.exists()  # dot never ran


def test_draw_checks_its_arguments(tmp_path):
    graph, _ = tutorial_graph()
    with pytest.raises(ValueError, match="draw needs a Graph, got Placeholder"):
        g.draw(graph.nodes[0], tmp_path / "graph.png")
    with pytest.raises(ValueError, match="must be a file path"):
        g.draw(graph, 42)
