"""The generic training step with every input in a fixed device buffer, ready to record.

A CUDA graph records a step's kernel launches once, with their pointers and scalar
arguments frozen, and replays them all with one launch. A small network on a GPU is bound
by launches (44 per step of the 2-16-8-2 moons net, ``tests/test_generic_step.py``), so
replaying the whole step is how issue 3 asks mlpx to beat PyTorch there by 3x. Recording
only works for a step that, replayed as it was recorded, does the next step's work:

- **No Python scalar may change between steps.** Before each epoch the runner computes
  on the host, with Python floats, every step's ``Optimizer.step_scalars`` (the learning
  rate; Adam's bias-corrected step size and epsilon) into one device table, a row per
  step. The step reads its row through a device index that it then increments, and
  hands it to ``Optimizer.update_with_scalars_``. The table rounds each float to the
  model's dtype as an array operation rounds a Python float, so the step gives the
  generic runner's numbers bit for bit, for two operations a step.
- **No input may move.** Each batch's row indices are copied into one index buffer per
  batch size before the step, and the step gathers X, Y and the sample weights through it;
  the parameters and the optimizer's arrays are updated in place.
- **Outputs are overwritten by the next replay**, so the runner copies each step's logits
  (and row weights) out before the next one.
- **Nothing is read back to the host** inside the step (``tests/test_generic_step.py``).

``StaticStepRunner`` runs epochs that way. Given ``capture`` (a function that records a
step without running its work and returns a function that replays it), it runs the first
step of each batch size eagerly (lazy library set-up must not be recorded), records the
second and replays it from then on; restoring or replacing the parameters or the
optimizer's arrays drops what was recorded. Without ``capture`` every step runs eagerly
through the same buffers. ``tests/test_static_step.py`` replays a recorded torch step
(an emulation of a graph built from torch's ``TorchFunctionMode``) and gets the eager
numbers bit for bit. The CUDA recorders themselves (``torch.cuda.graph``, CuPy's stream
capture with a private memory pool) are not written yet: they need a GPU to be tested on.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from mlpx._backend import from_host, take_rows
from mlpx._errors import MlpxValueError
from mlpx.train import EpochRunner

#: Records a step (a function of no arguments) without running its work; returns its replay.
Capture = Callable[[Callable[[], None]], Callable[[], None]]


class _BufferedStep:
    """The step for one batch size: its row-index buffer and, once recorded, its replay.

    Parameters
    ----------
    runner : StaticStepRunner
    n_rows : int
        The batch size this step trains on.
    """

    def __init__(self, runner: StaticStepRunner, n_rows: int) -> None:
        backend = runner.model.backend
        self.runner = runner
        self.rows = backend.xp.zeros((n_rows,), dtype=backend.xp.int64, device=backend.device)
        self.result: tuple = ()
        self.replay: Callable[[], None] | None = None
        self.calls = 0

    def body(self) -> None:
        """Gather the rows in ``self.rows``, read the step's scalars, then forward,
        backward and update."""
        runner = self.runner
        backend = runner.model.backend
        X_batch = take_rows(runner.X, self.rows, backend=backend)
        Y_batch = take_rows(runner.Y, self.rows, backend=backend)
        w_batch = (None if runner.weights is None
                   else take_rows(runner.weights, self.rows, backend=backend))
        self.result = runner.train_step(X_batch, Y_batch, w_batch, runner.next_scalars())

    def __call__(self) -> None:
        """One step: eager the first time, recorded the second, replayed after that."""
        if self.replay is None and self.runner.capture is not None and self.calls > 0:
            self.replay = self.runner.capture(self.body)
        if self.replay is None:
            self.body()
        else:
            self.replay()
        self.calls += 1


class StaticStepRunner(EpochRunner):
    """The generic runner, with each step reading only fixed device buffers.

    Parameters
    ----------
    model, optimizer, X, Y, batch_size, callback_list, weights, weight_scale, initial_state
        As for :class:`mlpx.train.EpochRunner`.
    capture : callable, optional
        ``capture(step) -> replay``: records ``step`` without running its work. None runs
        every step eagerly.

    Raises
    ------
    MlpxValueError
        When a callback asks for batch events (a recorded step cannot stop for them).
    """

    def __init__(self, model, optimizer, X, Y, batch_size: int, callback_list, *,
                 weights=None, weight_scale: float = 1.0, initial_state=None,
                 capture: Capture | None = None) -> None:
        if callback_list.wants_batch_begin or callback_list.wants_batch_end:
            raise MlpxValueError(
                "a recorded training step cannot call on_batch_begin/on_batch_end; use "
                "epoch-level callbacks with it"
            )
        super().__init__(model, optimizer, X, Y, batch_size, callback_list, weights=weights,
                         weight_scale=weight_scale, initial_state=initial_state)
        xp, device = self.xp, model.backend.device
        self.capture = capture
        self.scalar_names = tuple(optimizer.step_scalars(1, 1.0))
        # Row i: the scalars of the epoch's step i; the index is the next row, on the device.
        self.scalar_table = xp.zeros((len(self.bounds), len(self.scalar_names)),
                                     dtype=model.dtype, device=device)
        self.scalar_row = xp.zeros((1,), dtype=xp.int64, device=device)
        self.stored_order = xp.arange(X.shape[0], dtype=xp.int64, device=device)
        self.steps: dict[int, _BufferedStep] = {}

    def next_scalars(self) -> dict:
        """This step's row of the scalar table, as 0-d views; moves the index on."""
        row = take_rows(self.scalar_table, self.scalar_row, backend=self.model.backend)[0, ...]
        self.scalar_row += 1
        return {name: row[column, ...] for column, name in enumerate(self.scalar_names)}

    def apply_update(self, grad_flat, scalars: dict) -> None:
        """One optimizer step with this step's scalars (the host counts the step)."""
        params = [self.flat]
        self.optimizer.update_with_scalars_(params, [grad_flat], self.state, scalars,
                                            xp=self.xp)
        self.adopt_updated(params[0])

    def _fill_scalar_table(self, lr: float) -> None:
        """The scalars of this epoch's steps, from the host's step count and ``lr``."""
        first = self.state["step"] + 1
        table = [[scalars[name] for name in self.scalar_names]
                 for scalars in (self.optimizer.step_scalars(first + i, lr)
                                 for i in range(len(self.bounds)))]
        self.scalar_table[...] = from_host(np.asarray(table, dtype=np.float64),
                                           backend=self.model.backend, dtype=self.model.dtype)
        self.scalar_row[...] = 0

    def _set_flat(self, flat) -> None:
        if flat is not self.flat:
            self.steps = {}  # recorded steps point at the old vector
        super()._set_flat(flat)

    def restore(self, snapshot: tuple) -> None:
        """Put ``snapshot`` back and forget the recorded steps (new optimizer arrays)."""
        super().restore(snapshot)
        self.steps = {}

    def run_epoch(self, order, lr: float) -> dict[str, float] | None:
        """Every batch once, in ``order`` (a host permutation, or None for the stored order).

        Returns
        -------
        dict or None
            As :meth:`mlpx.train.EpochRunner.run_epoch`.
        """
        xp, backend = self.xp, self.model.backend
        rows = None if order is None else from_host(order, backend=backend, dtype=xp.int64)
        self._fill_scalar_table(lr)
        logits, batch_row_weights, penalty_sum = [], [], 0.0
        for begin, end in self.bounds:
            step = self.steps.get(end - begin)
            if step is None:
                step = self.steps[end - begin] = _BufferedStep(self, end - begin)
            step.rows[...] = (self.stored_order if rows is None else rows)[begin:end]
            step()
            self.state["step"] += 1
            z_out, _, row_weights, penalty = step.result
            logits.append(xp.asarray(z_out, copy=True))
            if row_weights is not None:
                batch_row_weights.append(xp.asarray(row_weights, copy=True))
            penalty_sum = penalty_sum + penalty * (end - begin)
            if self.interrupt.requested:
                return None
        return self._epoch_logs(rows, logits, batch_row_weights, penalty_sum)
