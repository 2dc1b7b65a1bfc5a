"""Optimizers for graphs: ``minimize(loss)`` makes a node that, run in a Session, takes a
step. The update rules are mlpx's own (:mod:`mlpx.optim`), not a copy: gradient descent is
``SGD``, momentum ``SGD(momentum=...)``, Adam ``Adam``.
"""

from __future__ import annotations

from mlpx.graph.nodes import GraphError, Node, TrainingStep, Variable
from mlpx.graph.session import gradients, topological_order
from mlpx.optim import SGD, Adam, Optimizer, check_learning_rate


class Minimize(TrainingStep):
    """One optimizer step on ``var_list`` towards a smaller ``loss`` each time it is run.

    Attributes
    ----------
    loss : Node
    variables : list of Variable
    optimizer : mlpx.optim.Optimizer
    state : dict or None
        The optimizer's state (momentum, Adam's moments), made at the first step.
    """

    kind = "minimize"

    def __init__(self, loss: Node, optimizer: Optimizer, learning_rate: float, var_list=None,
                 name: str | None = None) -> None:
        if not isinstance(loss, Node):
            raise GraphError(f"minimize needs a loss node, got {loss!r}")
        super().__init__((loss,), name, loss.graph)
        if var_list is None:
            var_list = [n for n in topological_order([loss]) if isinstance(n, Variable)]
        var_list = list(var_list)
        for variable in var_list:
            if not isinstance(variable, Variable) or variable.graph is not loss.graph:
                raise GraphError(f"var_list entry {variable!r} is not a Variable of the loss's "
                                 "graph")
        if not var_list:
            raise GraphError(f"the loss {loss.name!r} depends on no Variable; there is "
                             "nothing to train")
        self.loss = loss
        self.variables = var_list
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.state = None

    def step(self, values: dict) -> None:
        xp = self.graph.xp
        grads = gradients(self.loss, values, xp=xp)
        params = [variable.value for variable in self.variables]
        grad_list = [grads[v] if v in grads else xp.zeros_like(v.value) for v in self.variables]
        if self.state is None:
            self.state = self.optimizer.init(params)
        self.optimizer.update_(params, grad_list, self.state, learning_rate=self.learning_rate,
                               xp=xp)
        for variable, param in zip(self.variables, params):  # rebound where not writable
            variable.value = param


class GradientDescentOptimizer:
    """W <- W - learning_rate * dJ/dW for every Variable (tutorial 000).

    Parameters
    ----------
    learning_rate : float
    """

    def __init__(self, learning_rate: float) -> None:
        self.learning_rate = check_learning_rate(learning_rate)

    def _core(self) -> Optimizer:
        return SGD(self.learning_rate)

    def minimize(self, loss: Node, var_list=None, name: str | None = None) -> Minimize:
        """The node that takes one step when a Session runs it.

        Parameters
        ----------
        loss : Node
            A scalar loss.
        var_list : list of Variable, optional
            Default: every Variable the loss depends on.
        """
        return Minimize(loss, self._core(), self.learning_rate, var_list, name=name)


class MomentumOptimizer(GradientDescentOptimizer):
    """Gradient descent with momentum (``mlpx.optim.SGD(momentum=...)``)."""

    def __init__(self, learning_rate: float, momentum: float = 0.9,
                 use_nesterov: bool = False) -> None:
        super().__init__(learning_rate)
        self.momentum, self.use_nesterov = momentum, use_nesterov
        self._core()  # checks momentum now

    def _core(self) -> Optimizer:
        return SGD(self.learning_rate, momentum=self.momentum, nesterov=self.use_nesterov)


class AdamOptimizer(GradientDescentOptimizer):
    """Adam (``mlpx.optim.Adam``)."""

    def __init__(self, learning_rate: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999,
                 epsilon: float = 1e-8) -> None:
        super().__init__(learning_rate)
        self.beta1, self.beta2, self.epsilon = beta1, beta2, epsilon
        self._core()

    def _core(self) -> Optimizer:
        return Adam(self.learning_rate, beta1=self.beta1, beta2=self.beta2,
                    epsilon=self.epsilon)
