"""Running a graph: the forward pass in topological order, and backpropagation.

``Session.run`` evaluates exactly the nodes a fetch depends on, each after its inputs (a
post-order walk of the graph). :func:`compute_gradients` runs that forward pass, then walks
the same nodes backwards from the loss, as tutorial 000 does: each operation turns the
gradient with respect to its output into gradients with respect to its inputs (the chain
rule), and a node that feeds several consumers sums the gradients of all its paths.
"""

from __future__ import annotations

from mlpx.graph.nodes import (
    Constant,
    Graph,
    GraphError,
    Node,
    Operation,
    Placeholder,
    TrainingStep,
    Variable,
    get_default_graph,
)


def topological_order(targets: list[Node]) -> list[Node]:
    """Every node the ``targets`` depend on (themselves included), inputs first.

    Raises
    ------
    GraphError
        When the nodes form a cycle (only possible if ``inputs`` lists were edited).
    """
    order: list[Node] = []
    state: dict[Node, str] = {}
    for target in targets:
        if target in state:
            continue
        state[target] = "open"
        stack = [(target, iter(target.inputs))]
        while stack:
            node, inputs = stack[-1]
            child = next(inputs, None)
            if child is None:
                stack.pop()
                state[node] = "done"
                order.append(node)
            elif state.get(child) == "open":
                raise GraphError(f"the graph has a cycle through {child.name!r}; a node cannot "
                                 "depend on itself")
            elif child not in state:
                state[child] = "open"
                stack.append((child, iter(child.inputs)))
    return order


class Session:
    """Runs the nodes of one graph (tutorial 000's ``Session``).

    Parameters
    ----------
    graph : Graph, optional
        Default: the default graph when the session is made.
    """

    def __init__(self, graph: Graph | None = None) -> None:
        self.graph = graph if graph is not None else get_default_graph()

    def run(self, fetches, feed_dict: dict | None = None):
        """Compute ``fetches`` (a node or a list of nodes) given the placeholders' values.

        Running an optimizer's ``minimize`` node takes one training step (and returns None).

        Parameters
        ----------
        fetches : Node or list of Node
        feed_dict : dict of Placeholder -> array-like, optional
            A value for every placeholder the fetches depend on.

        Returns
        -------
        array, or a list of arrays for a list of fetches, on the graph's backend.
        """
        nodes = _as_node_list(fetches)
        steps = [node for node in nodes if isinstance(node, TrainingStep)]
        if len(steps) > 1:
            raise GraphError(
                f"fetches hold {len(steps)} training steps ({', '.join(s.name for s in steps)})"
                "; run one step per Session.run, so each one sees the Variables' new values"
            )
        values = forward(nodes, feed_dict, graph=self.graph)
        # Values as they were before any step; a Variable's own array is copied, since
        # optimizers update it in place.
        results = [
            None if isinstance(node, TrainingStep)
            else self.graph.xp.asarray(values[node], copy=True) if isinstance(node, Variable)
            else values[node]
            for node in nodes
        ]
        for node in nodes:
            if isinstance(node, TrainingStep):
                node.step(values)
        return results if isinstance(fetches, (list, tuple)) else results[0]


def _as_node_list(fetches) -> list[Node]:
    nodes = list(fetches) if isinstance(fetches, (list, tuple)) else [fetches]
    for node in nodes:
        if not isinstance(node, Node):
            raise GraphError(f"fetches must be graph nodes, got {node!r}")
    return nodes


def _check_feed(feed_dict, graph: Graph) -> dict:
    if feed_dict is None:
        return {}
    if not isinstance(feed_dict, dict):
        raise GraphError(f"feed_dict must be a dict {{placeholder: value}}, got "
                         f"{type(feed_dict).__name__}")
    fed = {}
    for key, value in feed_dict.items():
        if not isinstance(key, Placeholder):
            raise GraphError(f"feed_dict key {key!r} is not a placeholder; feed values to the "
                             "placeholders of the graph")
        if key.graph is not graph:
            raise GraphError(f"placeholder {key.name!r} belongs to another graph than this "
                             "session's")
        fed[key] = graph.as_array(value, name=f"feed_dict[{key.name!r}]")
    return fed


def forward(nodes: list[Node], feed_dict, *, graph: Graph) -> dict:
    """The value of every node that ``nodes`` depend on, computed in topological order."""
    for node in nodes:
        if node.graph is not graph:
            raise GraphError(f"{node.name!r} belongs to another graph than this session's; "
                             "make the Session inside the graph's `with` block")
    fed = _check_feed(feed_dict, graph)
    xp = graph.xp
    values: dict[Node, object] = {}
    for node in topological_order(nodes):
        if isinstance(node, Placeholder):
            if node not in fed:
                raise GraphError(f"placeholder {node.name!r} has no value; pass "
                                 f"feed_dict={{{node.name}: ...}} to run")
            values[node] = fed[node]
        elif isinstance(node, (Variable, Constant)):
            values[node] = node.value
        elif isinstance(node, Operation):
            values[node] = _compute(node, [values[i] for i in node.inputs], xp=xp)
        else:  # a TrainingStep: its value is its loss's
            values[node] = values[node.inputs[0]]
    return values


def _compute(node: Operation, inputs: list, *, xp):
    try:
        return node.compute(*inputs, xp=xp)
    except GraphError:
        raise
    except (ValueError, TypeError, RuntimeError, IndexError) as exc:
        shapes = ", ".join(f"{i.name!r} {tuple(v.shape)}" for i, v in zip(node.inputs, inputs))
        raise GraphError(f"{node.kind} {node.name!r} cannot combine its inputs ({shapes}): "
                         f"{exc}") from None


def gradients(loss: Node, values: dict, *, xp) -> dict:
    """d loss / d node for every node ``loss`` depends on, from a forward pass's values.

    The nodes are visited from the loss backwards (reverse topological order), so each
    node's gradient is complete (summed over all its consumers) before it is passed on.
    """
    loss_value = values[loss]
    if loss_value.ndim != 0 and _size(loss_value) != 1:
        raise GraphError(
            f"the loss {loss.name!r} has shape {tuple(loss_value.shape)}; gradients need a "
            "scalar loss: reduce it with reduce_sum or reduce_mean"
        )
    grads = {loss: xp.ones_like(loss_value)}
    for node in reversed(topological_order([loss])):
        if node not in grads or not isinstance(node, Operation):
            continue
        input_values = [values[i] for i in node.inputs]
        input_grads = node.gradient(grads[node], *input_values, output=values[node], xp=xp)
        for child, grad in zip(node.inputs, input_grads):
            if grad is None or isinstance(child, Constant):
                continue
            grads[child] = grad if child not in grads else grads[child] + grad
    return grads


def _size(array) -> int:
    size = 1
    for n in array.shape:
        size *= n
    return size


def compute_gradients(loss: Node, feed_dict: dict | None = None, var_list=None) -> dict:
    """The gradient of a scalar ``loss`` with respect to Variables, by backpropagation.

    Parameters
    ----------
    loss : Node
        A node with a scalar value (reduce a per-sample loss with reduce_sum/reduce_mean).
    feed_dict : dict of Placeholder -> array-like, optional
    var_list : list of Variable, optional
        Default: every Variable the loss depends on.

    Returns
    -------
    dict of Variable -> array
        Each gradient has its Variable's shape (zeros for a listed Variable the loss does
        not depend on).
    """
    graph = loss.graph
    values = forward([loss], feed_dict, graph=graph)
    grads = gradients(loss, values, xp=graph.xp)
    if var_list is None:
        var_list = [node for node in topological_order([loss]) if isinstance(node, Variable)]
    result = {}
    for variable in var_list:
        if not isinstance(variable, Variable) or variable.graph is not graph:
            raise GraphError(f"var_list entry {variable!r} is not a Variable of the loss's "
                             "graph")
        grad = grads.get(variable)
        result[variable] = graph.xp.zeros_like(variable.value) if grad is None else grad
    return result
