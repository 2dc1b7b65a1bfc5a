"""The NumPy fast path of the training loop: the generic math on buffers allocated once.

``mlpx.train.EpochRunner`` is the reference: plain array-API code in which every operation
returns a new array. On NumPy, small networks are bound by the ~1 us cost of each call and
large ones by the GEMMs and by passes over memory, so this runner does the same steps with:

- one flat parameter vector and one flat gradient vector (as the generic runner); layer
  l's slice, read as shape (fan_in + 1, fan_out), is the block ``[W; b]``;
- every layer input kept with a trailing column of ones, so ``z = [x, 1] @ [W; b]`` is one
  GEMM, and ``grad [W; b] = [x, 1].T @ grad_z`` gives grad_W and grad_b in one GEMM;
- activations and gradients in buffers allocated once per fit and written with ``out=``
  (the last, shorter batch uses leading rows of the same buffers);
- relu, leaky_relu, elu, tanh and sigmoid hidden layers computed in place on those buffers
  (with ``mlpx._kernels``, relu and leaky_relu one C pass each way, elu, tanh and sigmoid
  one C pass for the backward, after NumPy's own ``expm1``, ``tanh`` or ``exp`` for the
  forward, elu's and sigmoid's finished by one more); gelu and
  softplus, whose derivatives need z, with z in a buffer of its own and the forward's
  ``tanh`` or ``exp`` kept for the backward (with ``mlpx._kernels``, one C pass before and
  after NumPy's ``tanh``, or ``exp`` and ``log1p``, and one for the backward);
- the output layer computed transposed, ``z.T`` of shape (n_outputs, n_rows), because NumPy
  reduces over a short last axis (softmax over 2 or 10 classes) several times slower than
  over the first; the GEMMs take the transposes as free views;
- the output gradient of softmax + cross-entropy, sigmoid + binary cross-entropy and
  identity + squared error fused into a few in-place passes (softmax's into two C passes
  around ``np.exp``, sigmoid's into one after it, where ``mlpx._kernels`` was built);
  one-hot targets kept as their labels (n_samples integers, not a (n_classes, n_samples)
  matrix), the softmax gradient subtracting 1 at each label;
- rows of X gathered by index into a bounded input buffer beside its column of ones, a
  chunk of whole batches at a time: for small data one gather per epoch, for large batches
  one per batch (gathered just before its GEMMs read it, so it is still in the cache),
  never a copy of X (the compiled ``take_rows_``, or ``np.take(..., out=)``);
- the optimizer's in-place step (``Optimizer.update_``) on the flat vectors; with a
  compiled step (SGD, Adam, AdamW, RMSprop, Adagrad:
  ``mlpx._numpy_optim._CompiledStep``), the L2 penalty's
  gradient ``l2 * W`` added inside the step's pass, and on large networks each layer's
  update right after its backward;
- each batch's output logits written straight into an epoch buffer, from which the epoch's
  loss and metric are computed once at its end; for one-hot targets, from the per-sample
  max, sum of exponentials and argmax that the softmax gradient's passes leave, and one
  logit per sample;
- fit's validation data forwarded on plans of the same kind, a bounded pass at a time
  (:class:`_Validation`).

Other activations and losses fall back to the generic functions of
:mod:`mlpx.activations` and :mod:`mlpx.losses` inside the same loop. ``tests/test_fastpath.py``
checks that this runner and the generic one give the same numbers.
"""

from __future__ import annotations

import numpy as np

from mlpx import _compiled
from mlpx._numpy_optim import flat_step
from mlpx.activations import _GELU_C, _GELU_CUBIC, LEAKY_RELU_SLOPE, Activation
from mlpx.losses import weighted_value
from mlpx.train import EpochRunner, epoch_logs

# --- hidden-layer activations ------------------------------------------------------------
# Each works on a _DenseStep's buffers: ``forward`` turns z into a, ``backward`` turns the
# layer's dL/da into dL/dz in place. A hidden layer's output lives in ``out_aug`` (n_rows,
# units + 1) beside its column of ones, and its gradient in ``grad_full`` of the same shape
# with a last column of zeros. Elementwise passes over those whole, contiguous buffers are
# several times faster than over the strided (n_rows, units) views for narrow layers, so
# the kernels below but the generic one run over whole buffers; where a pass changes the
# ones (tanh(1) != 1), ``layer.ones.fill(1)`` puts them back. Constants are 0-d arrays of
# the layer's dtype: a Python scalar operand costs a NumPy call about half a microsecond
# more, a lot next to a pass over 32 x 16 numbers. But np.maximum and np.minimum take a
# slower loop for a 0-d operand (3 times slower on a 256 x 513 batch), so they compare
# with ``layer.zeros``, a read-only array of zeros of the buffer's shape. gelu and softplus
# keep z apart (``layer.z_aug``, beside a column of zeros) and pass over whole buffers too.


def _scalar(value: float, dtype):
    """``value`` as a 0-d array of ``dtype`` (a cheaper ufunc operand than a Python float)."""
    return np.asarray(value, dtype=dtype)


class _Identity:
    in_place = True  # a is z: the GEMM writes straight into a
    #: How many (n_rows, units + 1) buffers of the layer's dtype the kernel needs.
    BUFFERS = 0

    def __init__(self, dtype=np.float64) -> None:
        self.zero, self.one = _scalar(0, dtype), _scalar(1, dtype)

    def scratch(self, n_rows: int, units: int, dtype):
        """None, one buffer, or ``BUFFERS`` of them stacked along a first axis."""
        if self.BUFFERS == 0:
            return None
        shape = (n_rows, units + 1) if self.BUFFERS == 1 else (self.BUFFERS, n_rows, units + 1)
        return np.empty(shape, dtype=dtype)

    def forward(self, layer) -> None:
        pass

    def backward(self, layer) -> None:
        pass


class _Relu(_Identity):
    def scratch(self, n_rows, units, dtype):
        return np.empty((n_rows, units + 1), dtype=bool)

    def forward(self, layer):
        np.maximum(layer.out_aug, layer.zeros, out=layer.out_aug)  # max(1, 0) keeps the ones

    def backward(self, layer):
        mask = layer.scratch
        np.greater(layer.out_aug, self.zero, out=mask)  # a > 0 exactly where z > 0
        np.multiply(layer.grad_full, mask, out=layer.grad_full)


class _Compiled:
    """Binds the ``mlpx._kernels`` functions named in ``KERNELS`` as attributes of the same
    names (a mixin of the compiled activation kernels, before their NumPy class)."""

    KERNELS: tuple[str, ...] = ()

    def __init__(self, dtype=np.float64) -> None:
        super().__init__(dtype)
        for name in self.KERNELS:
            setattr(self, name, getattr(_compiled.kernels, name))


class _CompiledRelu(_Compiled, _Identity):
    """``_Relu``'s two operations, each one C pass (``mlpx._kernels``; the same bits)."""

    KERNELS = ("relu_", "relu_grad_")

    def forward(self, layer):
        self.relu_(layer.out_aug)

    def backward(self, layer):
        self.relu_grad_(layer.grad_full, layer.out_aug)  # 1 > 0 keeps the zero column


class _Tanh(_Identity):
    BUFFERS = 1

    def forward(self, layer):
        np.tanh(layer.out_aug, out=layer.out_aug)
        layer.ones.fill(1)  # tanh(1) != 1

    def backward(self, layer):
        derivative = layer.scratch
        np.multiply(layer.out_aug, layer.out_aug, out=derivative)
        np.subtract(self.one, derivative, out=derivative)  # 1 - a^2 (0 beside the ones)
        np.multiply(layer.grad_full, derivative, out=layer.grad_full)


class _CompiledTanh(_Compiled, _Tanh):
    """``_Tanh``'s backward as one C pass (``tanh_grad_``; the same bits)."""

    KERNELS, BUFFERS = ("tanh_grad_",), 0

    def backward(self, layer):
        self.tanh_grad_(layer.grad_full, layer.out_aug)


def _sigmoid_(z, out, one) -> None:
    """out = 1 / (1 + exp(-z)); exp overflows to inf for z < -88 and gives exactly 0."""
    np.negative(z, out=out)
    np.exp(out, out=out)
    np.add(out, one, out=out)
    np.reciprocal(out, out=out)


class _Sigmoid(_Tanh):
    def forward(self, layer):
        _sigmoid_(layer.out_aug, layer.out_aug, self.one)
        layer.ones.fill(1)

    def backward(self, layer):
        derivative = layer.scratch
        np.subtract(self.one, layer.out_aug, out=derivative)
        np.multiply(derivative, layer.out_aug, out=derivative)  # a (1 - a) (0 beside the ones)
        np.multiply(layer.grad_full, derivative, out=layer.grad_full)


class _CompiledSigmoid(_Compiled, _Sigmoid):
    """``_Sigmoid`` with ``1 / (e + 1)`` after NumPy's exp and the backward as one C pass
    each (``logistic_``, ``sigmoid_grad_``; the same bits)."""

    KERNELS, BUFFERS = ("logistic_", "sigmoid_grad_"), 0

    def forward(self, layer):
        np.negative(layer.out_aug, out=layer.out_aug)
        np.exp(layer.out_aug, out=layer.out_aug)
        self.logistic_(layer.out_aug)
        layer.ones.fill(1)

    def backward(self, layer):
        self.sigmoid_grad_(layer.grad_full, layer.out_aug)


class _LeakyRelu(_Identity):
    """max(z, slope z); its backward multiplies by 1 where a > 0 (exactly where z > 0), by
    slope elsewhere (NaN included), as the generic ``where(z > 0, grad_a, slope grad_a)``.

    The factor is ``(a > 0) (1 - slope) + slope``: exactly 1 or slope for slope 0.01 in
    float32 and float64. A select (``where=``, ``np.where``, ``np.copyto``) on a random mask
    measured 40-60 times slower than these four plain passes on a 256 x 513 batch, and
    ``np.maximum`` with a 0-d operand 3 times slower than with an array.
    """

    BUFFERS = 1

    def __init__(self, dtype=np.float64) -> None:
        super().__init__(dtype)
        self.slope = _scalar(LEAKY_RELU_SLOPE, dtype)
        self.one_minus_slope = self.one - self.slope

    def forward(self, layer):
        scaled = layer.scratch
        np.multiply(layer.out_aug, self.slope, out=scaled)
        np.maximum(layer.out_aug, scaled, out=layer.out_aug)  # max(1, slope) keeps the ones

    def backward(self, layer):
        factor = layer.scratch
        np.greater(layer.out_aug, self.zero, out=factor)  # 1.0 or 0.0
        np.multiply(factor, self.one_minus_slope, out=factor)
        np.add(factor, self.slope, out=factor)  # 1 or slope (1 beside the zero column)
        np.multiply(layer.grad_full, factor, out=layer.grad_full)


class _CompiledLeakyRelu(_Compiled, _LeakyRelu):
    """``_LeakyRelu`` as one C pass each way (``leaky_relu_``, ``leaky_relu_grad_``, which
    reads ``a > 0``, true exactly where ``z > 0``; the same bits)."""

    KERNELS, BUFFERS = ("leaky_relu_", "leaky_relu_grad_"), 0

    def __init__(self, dtype=np.float64) -> None:
        super().__init__(dtype)
        self.slope = float(self.slope)  # rounded to dtype: the kernels round it back exactly

    def forward(self, layer):
        self.leaky_relu_(layer.out_aug, self.slope)

    def backward(self, layer):
        self.leaky_relu_grad_(layer.grad_full, layer.out_aug, self.slope)


class _Elu(_Identity):
    """max(z, 0) + expm1(min(z, 0)); its backward multiplies by min(a, 0) + 1.

    The generic ``where(z > 0, z, expm1(min(z, 0)))`` and ``where(z > 0, grad_a,
    grad_a (a + 1))`` without a select (see ``_LeakyRelu``): for z > 0 the sum adds +0 to z
    and the factor is 0 + 1; elsewhere it adds expm1(z) to +0 and the factor is a + 1.
    """

    BUFFERS = 1

    @staticmethod
    def _negative_part(layer):
        """expm1(min(z, 0)) in the scratch buffer: 0 where z > 0, beside the ones too."""
        negative_part = layer.scratch
        np.minimum(layer.out_aug, layer.zeros, out=negative_part)
        np.expm1(negative_part, out=negative_part)
        return negative_part

    def forward(self, layer):
        negative_part = self._negative_part(layer)
        np.maximum(layer.out_aug, layer.zeros, out=layer.out_aug)
        np.add(layer.out_aug, negative_part, out=layer.out_aug)

    def backward(self, layer):
        factor = layer.scratch
        np.minimum(layer.out_aug, layer.zeros, out=factor)
        np.add(factor, self.one, out=factor)  # 1 where a > 0 (and beside the zero column)
        np.multiply(layer.grad_full, factor, out=layer.grad_full)


class _CompiledElu(_Compiled, _Elu):
    """``_Elu`` with its last pass forward and its backward one C pass each (``elu_add_``
    after NumPy's expm1, ``elu_grad_``; the same bits)."""

    KERNELS = ("elu_add_", "elu_grad_")

    def forward(self, layer):
        self.elu_add_(layer.out_aug, self._negative_part(layer))

    def backward(self, layer):
        self.elu_grad_(layer.grad_full, layer.out_aug)


class _Gelu(_Identity):
    """gelu with z kept apart from a (the derivative needs z), and t = tanh(C (z + K z^3))
    kept from the forward for the backward: the generic ``gelu`` and ``gelu_derivative``
    operation for operation (the same bits), without their recomputed tanh.

    The passes run over whole (n_rows, units + 1) buffers; z's last column is 0, so t is
    0 there and the derivative 0.5, which keeps the gradient's zero column.
    """

    in_place = False
    BUFFERS = 3  # t and two work buffers

    def __init__(self, dtype=np.float64) -> None:
        super().__init__(dtype)
        self.half, self.gelu_c = _scalar(0.5, dtype), _scalar(_GELU_C, dtype)
        self.cubic = _scalar(_GELU_CUBIC, dtype)
        self.three_cubic = _scalar(3.0 * _GELU_CUBIC, dtype)  # as gelu_derivative's 3.0 * K

    def forward(self, layer):
        z, (t, half_z, _) = layer.z_aug, layer.scratch
        np.multiply(z, self.cubic, out=t)
        np.multiply(t, z, out=t)
        np.multiply(t, z, out=t)
        np.add(z, t, out=t)
        np.multiply(t, self.gelu_c, out=t)
        np.tanh(t, out=t)
        np.multiply(z, self.half, out=half_z)
        np.add(t, self.one, out=layer.out_aug)
        np.multiply(half_z, layer.out_aug, out=layer.out_aug)  # (0.5 z) (1 + t)
        layer.ones.fill(1)

    def backward(self, layer):
        z, (t, slope_term, work) = layer.z_aug, layer.scratch
        np.multiply(t, t, out=slope_term)
        np.subtract(self.one, slope_term, out=slope_term)
        np.multiply(z, self.half, out=work)
        np.multiply(work, slope_term, out=slope_term)  # (0.5 z) (1 - t^2)
        np.multiply(z, self.three_cubic, out=work)
        np.multiply(work, z, out=work)
        np.add(work, self.one, out=work)
        np.multiply(work, self.gelu_c, out=work)  # d inner / dz = C (1 + 3K z^2)
        np.multiply(slope_term, work, out=slope_term)
        np.add(t, self.one, out=work)
        np.multiply(work, self.half, out=work)
        np.add(work, slope_term, out=work)  # 0.5 (1 + t) + (0.5 z) (1 - t^2) C (1 + 3K z^2)
        np.multiply(layer.grad_full, work, out=layer.grad_full)


class _CompiledGelu(_Compiled, _Gelu):
    """``_Gelu`` with one C pass before and after NumPy's tanh, and one for the backward
    (``gelu_inner_``, ``gelu_``, ``gelu_grad_``; the same bits)."""

    KERNELS, BUFFERS = ("gelu_inner_", "gelu_", "gelu_grad_"), 1  # t

    def forward(self, layer):
        t = layer.scratch
        self.gelu_inner_(t, layer.z_aug)
        np.tanh(t, out=t)
        self.gelu_(layer.out_aug, layer.z_aug, t)
        layer.ones.fill(1)

    def backward(self, layer):
        self.gelu_grad_(layer.grad_full, layer.z_aug, layer.scratch)


class _Softplus(_Identity):
    """softplus, max(z, 0) + log1p(e) with e = exp(-|z|) kept for the backward, whose
    derivative is the generic stable sigmoid ``where(z >= 0, 1 / (1 + e), e / (1 + e))``
    without its select: ``max(z >= 0, e) / (1 + e)`` (e <= 1 where z >= 0; the same bits).

    z's last column is 0: the derivative is 0.5 there, which keeps the zero column.
    """

    in_place = False
    BUFFERS = 2  # e and a work buffer

    def forward(self, layer):
        z, (e, positive_part) = layer.z_aug, layer.scratch
        np.abs(z, out=e)
        np.negative(e, out=e)
        np.exp(e, out=e)
        np.log1p(e, out=layer.out_aug)
        np.maximum(z, layer.zeros, out=positive_part)
        np.add(layer.out_aug, positive_part, out=layer.out_aug)
        layer.ones.fill(1)

    def backward(self, layer):
        z, (e, sigmoid) = layer.z_aug, layer.scratch
        np.greater_equal(z, self.zero, out=sigmoid)  # 1.0 or 0.0
        np.maximum(sigmoid, e, out=sigmoid)  # 1 where z >= 0, else e (NaN kept)
        np.add(e, self.one, out=e)  # e is not read again before the next forward
        np.divide(sigmoid, e, out=sigmoid)
        np.multiply(layer.grad_full, sigmoid, out=layer.grad_full)


class _CompiledSoftplus(_Compiled, _Softplus):
    """``_Softplus`` with a C pass around NumPy's exp and log1p, and one for the backward
    (``negative_abs_``, ``softplus_add_``, ``softplus_grad_``; the same bits)."""

    KERNELS, BUFFERS = ("negative_abs_", "softplus_add_", "softplus_grad_"), 1  # e

    def forward(self, layer):
        e = layer.scratch
        self.negative_abs_(e, layer.z_aug)
        np.exp(e, out=e)
        np.log1p(e, out=layer.out_aug)
        self.softplus_add_(layer.out_aug, layer.z_aug)
        layer.ones.fill(1)

    def backward(self, layer):
        self.softplus_grad_(layer.grad_full, layer.z_aug, layer.scratch)


class _GenericActivation(_Identity):
    """Any other activation through its generic functions (z kept apart from a)."""

    in_place = False

    def __init__(self, activation: Activation, xp, dtype) -> None:
        super().__init__(dtype)
        self.activation = activation
        self.xp = xp

    def forward(self, layer):
        np.copyto(layer.a, self.activation.forward(layer.z, xp=self.xp))

    def backward(self, layer):
        derivative = self.activation.derivative(layer.z, layer.a, xp=self.xp)
        np.multiply(layer.grad_a, derivative, out=layer.grad_a)


_NUMPY_ACTIVATIONS = {"identity": _Identity, "relu": _Relu, "tanh": _Tanh,
                      "sigmoid": _Sigmoid, "leaky_relu": _LeakyRelu, "elu": _Elu,
                      "gelu": _Gelu, "softplus": _Softplus}
#: The same activations with compiled kernels (where ``mlpx._kernels`` was built).
_COMPILED_ACTIVATIONS = {"relu": _CompiledRelu, "tanh": _CompiledTanh,
                         "sigmoid": _CompiledSigmoid, "leaky_relu": _CompiledLeakyRelu,
                         "elu": _CompiledElu, "gelu": _CompiledGelu,
                         "softplus": _CompiledSoftplus}


def _hidden_activation(activation: Activation, xp, dtype):
    kernel = _NUMPY_ACTIVATIONS.get(activation.name)
    if _compiled.kernels is not None:
        kernel = _COMPILED_ACTIVATIONS.get(activation.name, kernel)
    return kernel(dtype) if kernel is not None else _GenericActivation(activation, xp, dtype)


# --- the output layer: the loss gradient with respect to the logits ----------------------
# Everything here is transposed: z_T, y_T and grad_T have shape (n_outputs, n_rows). The
# softmax cross-entropy gradients take the batch's labels and per-sample vectors for y_T.


class _OutputGradient:
    """Writes dL/dz of the mean batch loss into ``grad_T``, by the generic formulas."""

    def __init__(self, grad_T, model) -> None:
        self.grad_T = grad_T
        self.inv_rows = _scalar(1.0 / grad_T.shape[1], grad_T.dtype)
        self.one = _scalar(1, grad_T.dtype)
        self.model = model

    def __call__(self, z_T, y_T) -> None:
        model, xp = self.model, self.model.xp
        activation, loss = model.layers[-1].activation, model.loss
        z, y = z_T.T, y_T.T
        a = activation.forward(z, xp=xp)
        if loss.grad_logits is not None:
            grad = loss.grad_logits(y, z, a, xp=xp)
        else:
            grad = activation.backward(z, a, loss.grad_output(y, z, a, xp=xp), xp=xp)
        np.copyto(self.grad_T.T, grad)


class _SoftmaxCrossEntropyGradient(_OutputGradient):
    """(softmax(z) - y) / n for one-hot rows y, given by their labels; softmax shifted by
    each sample's max.

    Called with the batch's ``targets`` ``(labels, sample_max, sample_sum, winner)`` (see
    :meth:`NumpyEpochRunner._batch_targets`) in place of ``y_T``. Subtracting the one-hot 1
    at each label (and 0 elsewhere, which changes nothing) gives the bits of
    ``softmax - y_T`` without a (n_classes, n_samples) target matrix. Each sample's max and
    sum of exponentials are left in ``sample_max`` and ``sample_sum``, from which the
    epoch's loss comes; ``winner`` (the argmax) is left to the epoch's end.
    """

    def __init__(self, grad_T, model) -> None:
        super().__init__(grad_T, model)
        self.columns = np.arange(grad_T.shape[1])

    def __call__(self, z_T, targets) -> None:
        labels, sample_max, sample_sum, _ = targets
        grad_T = self.grad_T
        np.maximum.reduce(z_T, axis=0, out=sample_max)
        np.subtract(z_T, sample_max, out=grad_T)
        np.exp(grad_T, out=grad_T)
        np.add.reduce(grad_T, axis=0, out=sample_sum)
        np.divide(grad_T, sample_sum, out=grad_T)
        grad_T[labels, self.columns] -= self.one
        np.multiply(grad_T, self.inv_rows, out=grad_T)


class _CompiledSoftmaxCrossEntropyGradient(_OutputGradient):
    """``_SoftmaxCrossEntropyGradient`` as two C passes around NumPy's exp (the same bits);
    the first pass also leaves each sample's argmax in ``winner``.

    ``np.exp`` stays NumPy's: its SIMD results differ from the C library's in the last bit.
    """

    #: The kernel fills the targets' ``winner``.
    finds_winners = True

    def __init__(self, grad_T, model) -> None:
        super().__init__(grad_T, model)
        self.shift_by_max_ = _compiled.kernels.shift_by_max_
        self.softmax_minus_labels_ = _compiled.kernels.softmax_minus_labels_
        self.scale = float(self.inv_rows)

    def __call__(self, z_T, targets) -> None:
        labels, sample_max, sample_sum, winner = targets
        grad_T = self.grad_T
        self.shift_by_max_(z_T, grad_T, sample_max, winner)  # z - max over the classes
        np.exp(grad_T, out=grad_T)
        self.softmax_minus_labels_(grad_T, labels, self.scale, sample_sum)  # (e/sum e - y)/n


class _SigmoidCrossEntropyGradient(_OutputGradient):
    """(sigmoid(z) - y) / n."""

    def __call__(self, z_T, y_T) -> None:
        grad_T = self.grad_T
        _sigmoid_(z_T, grad_T, self.one)
        np.subtract(grad_T, y_T, out=grad_T)
        np.multiply(grad_T, self.inv_rows, out=grad_T)


class _CompiledSigmoidCrossEntropyGradient(_OutputGradient):
    """``_SigmoidCrossEntropyGradient`` as NumPy's negative and exp, then one C pass for
    ``(1 / (e + 1) - y) / n`` (``logistic_minus_targets_``; the same bits)."""

    def __init__(self, grad_T, model) -> None:
        super().__init__(grad_T, model)
        self.logistic_minus_targets_ = _compiled.kernels.logistic_minus_targets_
        self.scale = float(self.inv_rows)

    def __call__(self, z_T, y_T) -> None:
        grad_T = self.grad_T
        np.negative(z_T, out=grad_T)
        np.exp(grad_T, out=grad_T)  # overflows to inf for z < -88: a probability of 0
        self.logistic_minus_targets_(grad_T, y_T, self.scale)


class _SquaredErrorGradient(_OutputGradient):
    """2 (z - y) / (n k) for an identity output."""

    def __init__(self, grad_T, model) -> None:
        super().__init__(grad_T, model)
        n_outputs, n_rows = grad_T.shape
        self.scale = _scalar(2.0 / (n_rows * n_outputs), grad_T.dtype)

    def __call__(self, z_T, y_T) -> None:
        grad_T = self.grad_T
        np.subtract(z_T, y_T, out=grad_T)
        np.multiply(grad_T, self.scale, out=grad_T)


def _one_hot_labels(Y):
    """The class index of each row of Y if every row is one-hot, else None.

    Y holds finite values in [0, 1] (the targets are checked so). Each row's largest entry
    must be 1 and Y must have one nonzero per row, so no row has two (label-smoothed or
    probability rows are not one-hot). Two passes over Y and no temporary of its size.
    """
    if Y.ndim != 2 or Y.shape[0] == 0:
        return None
    labels = np.argmax(Y, axis=1)
    if np.count_nonzero(Y) != Y.shape[0]:
        return None
    if not np.all(Y[np.arange(Y.shape[0]), labels] == 1):
        return None
    return labels


_LABEL_GRADIENTS = (_SoftmaxCrossEntropyGradient, _CompiledSoftmaxCrossEntropyGradient)


def _output_gradient_class(model, one_hot: bool):
    """The output gradient kernel; the softmax ones take labels (one-hot targets only)."""
    output_activation, loss = model.layers[-1].activation.name, model.loss.name
    if output_activation == "softmax" and loss == "categorical_crossentropy" and one_hot:
        # probability rows (not one-hot) need the generic formula
        if hasattr(_compiled.kernels, "softmax_minus_labels_"):
            return _CompiledSoftmaxCrossEntropyGradient
        return _SoftmaxCrossEntropyGradient
    if output_activation == "sigmoid" and loss == "binary_crossentropy":
        if hasattr(_compiled.kernels, "logistic_minus_targets_"):
            return _CompiledSigmoidCrossEntropyGradient
        return _SigmoidCrossEntropyGradient
    if output_activation == "identity" and loss == "mse":
        return _SquaredErrorGradient
    return _OutputGradient


# --- the epoch's loss and metric --------------------------------------------------------


def _argmax_over_classes(z_T):
    """np.argmax(z_T, axis=0) (first index on ties), as k vectorised passes over samples."""
    n_classes = z_T.shape[0]
    if n_classes > 32:
        return np.argmax(z_T, axis=0)
    best = z_T[0].copy()
    winner = np.zeros(z_T.shape[1], dtype=np.intp)
    for j in range(1, n_classes):
        beats = z_T[j] > best
        winner[beats] = j
        np.maximum(best, z_T[j], out=best)
    return winner


def _softmax_cross_entropy_logs(z_T, targets, columns, penalty_sum: float,
                                row_weights=None) -> dict[str, float]:
    """Loss and accuracy of an epoch of one-hot targets, from logits z_T (k, n_samples).

    The same numbers as ``mlpx.train.epoch_logs`` up to rounding: loss =
    mean(max(z) + log(sum(exp(z - max))) - z[label]), each term times its row weight when
    there are sample weights. ``targets`` ``(labels, sample_max, sample_sum, winner)`` are
    the epoch's, filled in by the batches' gradients (``winner`` None: the argmax is found
    here); ``columns`` is ``arange(n_samples)``. Only the argmax, where the kernel left
    it, passes over all logits.
    """
    labels, sample_max, sample_sum, winner = targets
    n_samples = z_T.shape[1]
    losses = np.log(sample_sum)
    np.add(losses, sample_max, out=losses)
    np.subtract(losses, z_T[labels, columns], out=losses)
    if row_weights is not None:
        np.multiply(losses, row_weights, out=losses)
    if winner is None:
        winner = _argmax_over_classes(z_T)
    correct = int(np.count_nonzero(winner == labels))
    return {"loss": (float(np.sum(losses)) + penalty_sum) / n_samples,
            "accuracy": correct / n_samples}


# --- the layers, for one batch size ----------------------------------------------------


class _DenseStep:
    """Forward and backward of one hidden Dense layer on fixed buffers.

    Parameters
    ----------
    block : array of shape (fan_in + 1, fan_out)
        ``[W; b]``, a view of the flat parameters.
    grad_block : array of shape (fan_in + 1, fan_out)
        ``[grad_W; grad_b]``, a view of the flat gradient.
    x_aug : array of shape (n_rows, fan_in + 1) or None
        The layer input with a last column of ones (None: set per batch, first layer).
    out_aug : array of shape (n_rows, fan_out + 1) or None
        The layer output ``a`` with its column of ones (the next layer's ``x_aug``).
    z_aug : array of shape (n_rows, fan_out + 1) or None
        The pre-activation z in its first fan_out columns and a last column of zeros that
        the GEMM never writes (the kernels that keep z apart from ``a`` pass over the whole
        buffer); None: ``out_aug`` itself, for the in-place activations.
    grad_full : array of shape (n_rows, fan_out + 1) or None
        dL/da in its first fan_out columns (written by the layer above), zeros in the last;
        turned into dL/dz in place.
    grad_x : array of shape (n_rows, fan_in) or None
        Receives dL/dx, the gradient of the layer below; None for the first layer.
    activation : one of the activation kernels above
    scratch : array of shape (n_rows, fan_out + 1) or (k, n_rows, fan_out + 1), or None
        The activation's own buffers.
    zeros : array of shape (n_rows, fan_out + 1), optional
        Zeros the activation compares with, never written (shared by the layers; by default
        an array of its own).
    """

    def __init__(self, block, grad_block, x_aug, out_aug, z_aug, grad_full, grad_x,
                 activation, scratch, zeros=None) -> None:
        self.block, self.grad_block = block, grad_block
        self.W_T = block[:-1].T
        self.set_input(x_aug)
        self.out_aug = out_aug
        self.a = None if out_aug is None else out_aug[:, :-1]
        self.ones = None if out_aug is None else out_aug[:, -1]
        self.z_aug = out_aug if z_aug is None else z_aug
        self.z = None if self.z_aug is None else self.z_aug[:, :-1]
        self.grad_full = grad_full
        self.grad_a = None if grad_full is None else grad_full[:, :-1]
        self.grad_x = grad_x
        self.activation, self.scratch = activation, scratch
        if zeros is None and out_aug is not None:
            zeros = np.zeros_like(out_aug)
        self.zeros = zeros

    def set_input(self, x_aug) -> None:
        self.x_aug = x_aug
        self.x_aug_T = None if x_aug is None else x_aug.T

    def forward(self) -> None:
        """z = [x, 1] @ [W; b]; a = f(z)."""
        np.matmul(self.x_aug, self.block, out=self.z)
        self.activation.forward(self)

    def backward(self) -> None:
        """grad_z = grad_a * f'(z); grad [W; b] = [x, 1].T @ grad_z; grad_x = grad_z @ W.T."""
        self.activation.backward(self)
        np.matmul(self.x_aug_T, self.grad_a, out=self.grad_block)
        if self.grad_x is not None:
            np.matmul(self.grad_a, self.W_T, out=self.grad_x)


class _OutputStep(_DenseStep):
    """The output layer, transposed: z_T = [W; b].T @ [x, 1].T, shape (n_outputs, n_rows).

    ``grad_T`` holds dL/dz transposed (the loss gives it directly).
    """

    def __init__(self, block, grad_block, x_aug, grad_T, grad_x) -> None:
        super().__init__(block, grad_block, x_aug, None, None, None, grad_x, None, None)
        self.block_T = block.T
        self.grad_T = grad_T

    def forward_into(self, z_T) -> None:
        np.matmul(self.block_T, self.x_aug_T, out=z_T)

    def backward(self) -> None:
        grad_z = self.grad_T.T
        np.matmul(self.x_aug_T, grad_z, out=self.grad_block)
        if self.grad_x is not None:
            np.matmul(grad_z, self.W_T, out=self.grad_x)


class _BatchPlan:
    """The layer steps for batches of ``n_rows`` rows, on the runner's buffers.

    The plan for the last, shorter batch uses leading rows of the same buffers.
    """

    def __init__(self, model, blocks, grad_blocks, buffers, n_rows: int,
                 output_gradient_class) -> None:
        rows = slice(0, n_rows)
        outputs = [out_aug[rows] for out_aug in buffers["outputs"]]
        grads = [grad_full[rows] for grad_full in buffers["grads"]]
        self.hidden = []
        for i, activation in enumerate(buffers["activations"]):
            z_aug = None if buffers["z"][i] is None else buffers["z"][i][rows]
            scratch = buffers["scratch"][i]
            zeros = buffers["zeros"][:outputs[i].size].reshape(outputs[i].shape)
            self.hidden.append(_DenseStep(
                blocks[i], grad_blocks[i], None if i == 0 else outputs[i - 1], outputs[i],
                z_aug, grads[i], None if i == 0 else grads[i - 1][:, :-1], activation,
                None if scratch is None else scratch[..., rows, :], zeros,
            ))
        depth = len(self.hidden)
        grad_T = buffers["grad_T"][:, rows]
        self.output = _OutputStep(
            blocks[depth], grad_blocks[depth], None if depth == 0 else outputs[depth - 1],
            grad_T, None if depth == 0 else grads[depth - 1][:, :-1],
        )
        self.first = self.hidden[0] if self.hidden else self.output
        self.output_gradient = output_gradient_class(grad_T, model)

    def forward(self, x_aug, z_T) -> None:
        """The logits of a batch ``x_aug`` (n_rows, n_features + 1) into ``z_T``."""
        self.first.set_input(x_aug)
        for layer in self.hidden:
            layer.forward()
        self.output.forward_into(z_T)

    def step(self, x_aug, z_T, targets, row_weights=None, layer_updates=None) -> None:
        """Forward and backward for one batch; leaves the gradient in the flat buffer.

        Parameters
        ----------
        x_aug : array of shape (n_rows, n_features + 1)
            The batch's inputs with a last column of ones.
        z_T : array of shape (n_outputs, n_rows)
            Columns of the epoch's logits buffer; receives the logits.
        targets : array of shape (n_outputs, n_rows), or a tuple of label vectors
            The batch's targets (columns of the epoch's); for the softmax gradients,
            ``(labels, sample_max, sample_sum, winner)`` (``_batch_targets``).
        row_weights : array of shape (n_rows,), optional
            Sample weights over their batch mean; scale each sample's output gradient.
        layer_updates : list of callables, optional
            One per layer, first layer first: the optimizer's update of that layer's
            ``[W; b]``, called as soon as the layer's backward is done (its grad_x, which
            needs the old W, included).
        """
        self.forward(x_aug, z_T)
        self.output_gradient(z_T, targets)
        if row_weights is not None:
            np.multiply(self.output.grad_T, row_weights, out=self.output.grad_T)
        self.output.backward()
        if layer_updates is not None:
            layer_updates[-1]()
        for index in range(len(self.hidden) - 1, -1, -1):
            self.hidden[index].backward()
            if layer_updates is not None:
                layer_updates[index]()


# --- the runner --------------------------------------------------------------------------


def _same_layout(saved: dict, state: dict) -> bool:
    """Whether ``saved`` (a snapshot's state) has ``state``'s keys and array shapes."""
    if saved.keys() != state.keys():
        return False
    for key, value in state.items():
        if isinstance(value, list) != isinstance(saved[key], list):
            return False
        if isinstance(value, list) and (
                len(value) != len(saved[key])
                or any(np.shape(a) != np.shape(b)
                       or getattr(a, "dtype", None) != getattr(b, "dtype", None)
                       for a, b in zip(value, saved[key]))):
            return False
    return True


class NumpyEpochRunner(EpochRunner):
    """:class:`mlpx.train.EpochRunner` for NumPy, on preallocated buffers (see the module).

    Parameters are those of ``EpochRunner``; ``input_buffer_bytes`` bounds the buffer into
    which rows of X are gathered (at least one batch).
    """

    #: About the size of a core's L2 cache: a batch of 256 MNIST rows (800 KB) is then
    #: gathered on its own, just before its GEMMs, which measured 4-6% faster per fit than
    #: 8 MiB chunks of 10 batches; small data still comes in one gather per epoch.
    INPUT_BUFFER_BYTES = 1 * 2**20
    #: Networks with at least this many parameters update layer by layer (see
    #: ``_layer_updates``): about 1 MiB of parameters, gradients and moments.
    LAYER_UPDATES_FROM = 1 << 16

    def __init__(self, model, optimizer, X, Y, batch_size: int, callback_list, *,
                 weights=None, weight_scale: float = 1.0, initial_state=None,
                 input_buffer_bytes: int | None = None) -> None:
        super().__init__(model, optimizer, X, Y, batch_size, callback_list, weights=weights,
                         weight_scale=weight_scale, initial_state=initial_state)
        n_samples, dtype = X.shape[0], model.dtype
        if weights is not None:
            self.W_epoch = np.empty_like(weights)  # the weights in the epoch's order
            self.R_epoch = np.empty_like(weights)  # ... divided by their batch's mean
        self.grad_flat = np.zeros_like(self.flat)
        self.Z_T_epoch = np.empty((model.n_outputs, n_samples), dtype=dtype)
        labels = _one_hot_labels(Y) if model.loss.name == "categorical_crossentropy" else None
        output_gradient_class = _output_gradient_class(model, one_hot=labels is not None)
        self.labels = labels if output_gradient_class in _LABEL_GRADIENTS else None
        if self.labels is not None:
            # labels, (n_samples,), instead of a (n_classes, n_samples) one-hot matrix and
            # its shuffled copy; the gradients fill in each sample's max, sum of
            # exponentials and (compiled) argmax, from which the epoch's logs come
            self.targets = self.labels
            self.targets_epoch = (
                np.empty_like(self.labels), np.empty(n_samples, dtype=dtype),
                np.empty(n_samples, dtype=dtype),
                np.empty_like(self.labels)
                if getattr(output_gradient_class, "finds_winners", False) else None,
            )
            self.columns = np.arange(n_samples)
        else:
            self.targets = np.ascontiguousarray(Y.T)  # (n_outputs, n_samples)
            self.targets_epoch = np.empty_like(self.targets)
        if model.alpha:
            self.weight_mask = np.zeros_like(self.flat)  # 1 on weights, 0 on biases
            for start, stop, _ in model.param_slices()[0::2]:
                self.weight_mask[start:stop] = 1
            self.l2_mask, self.l2_of_mask = np.empty_like(self.flat), None
            self.penalty_gradient = np.empty_like(self.flat)
        self._allocate_inputs(batch_size, input_buffer_bytes or self.INPUT_BUFFER_BYTES)
        buffers = self._allocate_layers(batch_size)
        self.output_gradient_class = output_gradient_class
        self._build_plans(buffers, output_gradient_class)
        self._validation = None
        self.optimizer_step = flat_step(optimizer, self.state, self.flat, self.grad_flat)
        self.fused_l2 = bool(model.alpha) and getattr(self.optimizer_step, "fuses_l2", False)
        if self.fused_l2:
            self.optimizer_step.penalise([(start, stop) for start, stop, _
                                          in model.param_slices()[0::2]])
        self.layer_updates = self._layer_updates()

    def _layer_updates(self) -> list | None:
        """Per-layer updates, where the optimizer kernel offers them and they pay.

        Updating each layer right after its backward, rather than all parameters after the
        whole backward, finds its gradient still in the cache; the results are the same
        bits. Small networks fit in the cache anyway and would only pay more calls. With an
        L2 penalty, each layer's update adds its gradient ``l2 * W`` and sums ``W**2`` for
        the logged penalty in the same pass (``_CompiledStep.part``).
        """
        part = getattr(self.optimizer_step, "part", None)
        if part is None or self.flat.shape[0] < self.LAYER_UPDATES_FROM:
            return None
        slices = self.model.param_slices()
        return [part(weights[0], bias[1], weights[1])
                for weights, bias in zip(slices[0::2], slices[1::2])]

    def _allocate_inputs(self, batch_size: int, max_bytes: int) -> None:
        """A buffer for a chunk of batches, with a column of ones, and its gather from X.

        Rows of X are copied by index straight beside the ones: by the compiled
        ``take_rows_`` where it was built, else by ``np.take`` into the strided view (2-3
        times slower than into a contiguous buffer, which is still cheaper than a copy of
        all of X with its own ones column, and holds no second X in memory).
        """
        n_samples, n_features = self.X.shape
        dtype = self.model.dtype
        row_bytes = (n_features + 1) * np.dtype(dtype).itemsize
        batches_per_chunk = max(1, max_bytes // (row_bytes * batch_size))
        self.chunk_rows = min(n_samples, batches_per_chunk * batch_size)
        self.inputs = np.empty((self.chunk_rows, n_features + 1), dtype=dtype)
        self.inputs[:, -1] = 1
        take_rows_ = getattr(_compiled.kernels, "take_rows_", None)
        X = self.X
        if take_rows_ is not None:
            X = np.ascontiguousarray(X)

            def gather(rows, out) -> None:
                take_rows_(X, rows, out[:, :-1])
        else:
            def gather(rows, out) -> None:
                # clip: the rows are a permutation, so the bounds check can go
                np.take(X, rows, axis=0, out=out[:, :-1], mode="clip")

        self.X = None  # ``gather`` holds what it reads
        self.n_samples = n_samples
        self.gather = gather

    def _allocate_layers(self, n_rows: int) -> dict:
        model, dtype = self.model, self.model.dtype
        hidden_units = model.layer_sizes[1:-1]
        activations = [_hidden_activation(layer.activation, model.xp, dtype)
                       for layer in model.layers[:-1]]
        outputs, grads = [], []
        for units in hidden_units:
            out_aug = np.empty((n_rows, units + 1), dtype=dtype)
            out_aug[:, -1] = 1
            outputs.append(out_aug)
            grads.append(np.zeros((n_rows, units + 1), dtype=dtype))
        return {
            "outputs": outputs,
            "grads": grads,
            "grad_T": np.empty((model.n_outputs, n_rows), dtype=dtype),
            "activations": activations,
            "z": [None if act.in_place else np.zeros((n_rows, units + 1), dtype=dtype)
                  for act, units in zip(activations, hidden_units)],
            "scratch": [act.scratch(n_rows, units, dtype)
                        for act, units in zip(activations, hidden_units)],
            # read-only zeros for every layer: a contiguous (n_rows, units + 1) view of its
            # leading elements
            "zeros": np.zeros(n_rows * (max(hidden_units, default=0) + 1), dtype=dtype),
        }

    def _build_plans(self, buffers: dict, output_gradient_class) -> None:
        """Block views of the flat vectors, one plan per batch size, and per-batch views."""
        slices = self.model.param_slices()
        self.blocks, self.grad_blocks = [], []
        for (start, _, (fan_in, fan_out)), (_, stop, _) in zip(slices[0::2], slices[1::2]):
            self.blocks.append(self.flat[start:stop].reshape(fan_in + 1, fan_out))
            self.grad_blocks.append(self.grad_flat[start:stop].reshape(fan_in + 1, fan_out))
        plans = {}
        for begin, end in self.bounds:
            if end - begin not in plans:
                plans[end - begin] = self._plan(buffers, end - begin, output_gradient_class)
        self.batches = []
        for begin, end in self.bounds:
            chunk_begin = begin - begin % self.chunk_rows
            chunk_end = min(chunk_begin + self.chunk_rows, self.n_samples)
            self.batches.append((
                (chunk_begin, chunk_end) if begin == chunk_begin else None,
                plans[end - begin],
                self.inputs[begin - chunk_begin:end - chunk_begin],
                self.Z_T_epoch[:, begin:end],
                self._batch_targets(begin, end),
                slice(begin, end),
            ))

    def _plan(self, buffers: dict, n_rows: int, output_gradient_class) -> _BatchPlan:
        return _BatchPlan(self.model, self.blocks, self.grad_blocks, buffers, n_rows,
                          output_gradient_class)

    def _batch_targets(self, begin: int, end: int):
        """The batch's columns of the epoch's targets, or of each of its label vectors."""
        if self.labels is None:
            return self.targets_epoch[:, begin:end]
        return tuple(None if vector is None else vector[begin:end]
                     for vector in self.targets_epoch)

    def _set_flat(self, flat) -> None:
        if not hasattr(self, "batches"):
            super()._set_flat(flat)
            return
        np.copyto(self.flat, flat)  # keep the buffer that the plans' views point into
        self.views = self.model._bind_flat(self.flat)

    def _restore_arrays(self, arrays: list, saved: list) -> None:
        for array, copy in zip(arrays, saved):  # in place: the kernels hold these arrays
            np.copyto(array, copy)

    def snapshot(self) -> tuple:
        """The generic snapshot, copied into the arrays of the last one where they fit.

        Only the latest snapshot is ever restored. New copies every epoch are new pages
        every epoch (6 MB with Adam on 784-512-256-10: 1,500 page faults, about 2 ms).
        """
        kept = getattr(self, "_kept_snapshot", None)
        if kept is None or not _same_layout(kept[1], self.state):
            self._kept_snapshot = super().snapshot()
            return self._kept_snapshot
        flat, state = kept
        np.copyto(flat, self.flat)
        for key, value in self.state.items():
            if isinstance(value, list):
                for copy, array in zip(state[key], value):
                    np.copyto(copy, array)
            else:
                state[key] = value
        return kept

    def apply_update(self, grad_flat, lr: float) -> None:
        if self.optimizer_step is not None:
            self.optimizer_step(lr)
            return
        params = [self.flat]
        self.optimizer.update_(params, [grad_flat], self.state, learning_rate=lr, xp=np)
        if params[0] is not self.flat:  # an optimizer that returns new arrays
            np.copyto(self.flat, params[0])

    def run_epoch(self, order, lr: float) -> dict[str, float] | None:
        """Every batch once, in ``order`` (a host permutation, or None for stored order).

        None when ``self.interrupt`` was requested (after the step that saw it).
        """
        model, callbacks, gather, inputs = self.model, self.callback_list, self.gather, self.inputs
        order = np.arange(self.n_samples) if order is None else np.asarray(order, dtype=np.intp)
        labels_epoch = self.targets_epoch if self.labels is None else self.targets_epoch[0]
        np.take(self.targets, order, axis=-1, out=labels_epoch)
        weighted = self.weights is not None
        if weighted:
            np.take(self.weights, order, out=self.W_epoch)
        penalty_sum = 0.0
        row_weights = None
        # A diverging fit overflows to inf and then NaN; the epoch's loss and weights are
        # checked once it ends (NonFiniteLossError, which says what to change), so NumPy's
        # warnings on the way would only repeat it, naming mlpx's internals.
        with np.errstate(over="ignore", under="ignore", invalid="ignore", divide="ignore"):
            for batch, (chunk, plan, x_aug, z_T, targets, rows) in enumerate(self.batches):
                if chunk is not None:
                    chunk_begin, chunk_end = chunk
                    gather(order[chunk_begin:chunk_end], inputs[:chunk_end - chunk_begin])
                if callbacks.wants_batch_begin:
                    callbacks.call("on_batch_begin", batch, {})
                    self.sync_from_model()
                n_rows = z_T.shape[1]
                batch_weight = n_rows
                if weighted:
                    total = float(np.sum(self.W_epoch[rows]))
                    row_weights = self.R_epoch[rows]
                    np.multiply(self.W_epoch[rows], n_rows / total, out=row_weights)
                    batch_weight = total * self.weight_scale
                l2 = model._l2_coefficient(batch_weight) if model.alpha else None
                penalty = 0.0
                if self.layer_updates is not None:
                    self.optimizer_step.begin(lr, l2)
                    plan.step(x_aug, z_T, targets, row_weights, self.layer_updates)
                elif self.fused_l2:  # the penalty's gradient is added inside the step
                    plan.step(x_aug, z_T, targets, row_weights)
                    self.optimizer_step(lr, l2)
                else:
                    plan.step(x_aug, z_T, targets, row_weights)
                    if l2 is not None:
                        penalty = self._add_penalty_gradient(l2)
                    self.apply_update(self.grad_flat, lr)
                if self.fused_l2:
                    penalty = 0.5 * l2 * self.optimizer_step.sum_of_squares
                penalty_sum += n_rows * penalty
                if callbacks.wants_batch_end:
                    self._call_batch_end(batch, z_T, targets, penalty, row_weights)
                if self.interrupt.requested:
                    return None
            R_epoch = self.R_epoch if weighted else None
            if self.labels is not None:
                return _softmax_cross_entropy_logs(self.Z_T_epoch, self.targets_epoch,
                                                   self.columns, penalty_sum, R_epoch)
            return epoch_logs(model, self.targets_epoch.T, self.Z_T_epoch.T, penalty_sum,
                              R_epoch)

    def evaluate(self, X, Y) -> dict[str, float]:
        """``model._evaluate_checked(X, Y)`` on buffers of the fast path (fit's validation
        data, the same X and Y every epoch; see :class:`_Validation`)."""
        self.sync_from_model()
        if self._validation is None or self._validation.X is not X:
            self._validation = _Validation(self, X, Y)
        return self._validation.logs()

    def _add_penalty_gradient(self, l2: float) -> float:
        """grad += l2 W (biases excluded); returns the penalty l2/2 sum W^2.

        ``l2 W`` is rounded as the generic backward's ``l2 * W``: W times ``l2`` in the
        parameters' dtype. The mask of ``l2`` on weights and 0 on biases is remade only
        when ``l2`` changes (per batch with sample weights, per batch size with
        ``alpha_per_sample``).
        """
        if l2 != self.l2_of_mask:
            np.multiply(self.weight_mask, _scalar(l2, self.flat.dtype), out=self.l2_mask)
            self.l2_of_mask = l2
        np.multiply(self.flat, self.l2_mask, out=self.penalty_gradient)
        np.add(self.grad_flat, self.penalty_gradient, out=self.grad_flat)
        return 0.5 * float(np.vdot(self.penalty_gradient, self.flat))

    def _call_batch_end(self, batch: int, z_T, targets, penalty: float, row_weights) -> None:
        """on_batch_end with the batch's loss (computed only because a callback asks)."""
        model, xp = self.model, self.model.xp
        z = z_T.T
        if self.labels is not None:  # labels: the one-hot rows the loss takes
            y = (targets[0][:, np.newaxis] == np.arange(z.shape[1])).astype(z.dtype)
        else:
            y = targets.T
        output = model.layers[-1].activation.forward(z, xp=xp)
        loss = float(weighted_value(model.loss, y, z, output, row_weights, xp=xp)) + penalty
        self.callback_list.call("on_batch_end", batch, {"loss": loss, "size": z.shape[0]})
        self.sync_from_model()


class _Validation:
    """The loss and metric of fixed data with the runner's current weights.

    What ``MLP._evaluate_checked`` computes for fit's ``validation_data`` every epoch, up
    to rounding (the layers multiply ``[x, 1] @ [W; b]``): the forward pass runs on plans of
    the runner's kind, on buffers of its own for up to ``ROWS`` samples at a time, each
    pass's logs come as the training epoch's do (per-sample statistics of the softmax
    gradient's passes for one-hot targets, else :func:`mlpx.train.epoch_logs`), and their
    means weighted by the passes' rows make the whole's, plus the L2 penalty once. The
    memory is bounded by ``ROWS``, as ``_evaluate_checked``'s by its batches. On the moons
    network this is about 20 us an epoch instead of 80.

    Parameters
    ----------
    runner : NumpyEpochRunner
    X : array of shape (n_samples, n_features), checked, in the model's dtype
    Y : array of shape (n_samples, n_outputs), encoded targets
    """

    #: Samples per forward pass at most (or the training batch size, if larger).
    ROWS = 2048

    def __init__(self, runner, X, Y) -> None:
        model, dtype = runner.model, runner.model.dtype
        n_samples, n_features = X.shape
        self.X, self.Y, self.model = X, Y, model
        rows = min(n_samples, max(self.ROWS, runner.batch_size))
        buffers = runner._allocate_layers(rows)
        self.inputs = np.empty((rows, n_features + 1), dtype=dtype)
        self.inputs[:, -1] = 1
        self.Z_T = np.empty((model.n_outputs, rows), dtype=dtype)
        self.columns = np.arange(rows)
        labels = _one_hot_labels(Y) if runner.labels is not None else None
        gradient_class = runner.output_gradient_class if labels is not None else _OutputGradient
        statistics = None
        if labels is not None:  # one pass's, filled in by the softmax gradient
            statistics = (np.empty(rows, dtype=dtype), np.empty(rows, dtype=dtype),
                          np.empty(rows, dtype=np.intp)
                          if getattr(gradient_class, "finds_winners", False) else None)
        self.labels = labels
        plans = {}
        self.passes = []
        for begin in range(0, n_samples, rows):
            end = min(begin + rows, n_samples)
            n_rows = end - begin
            if n_rows not in plans:
                plans[n_rows] = runner._plan(buffers, n_rows, gradient_class)
            targets = None if labels is None else (labels[begin:end], *(
                None if vector is None else vector[:n_rows] for vector in statistics))
            self.passes.append((begin, end, plans[n_rows], targets))

    def logs(self) -> dict[str, float]:
        """``{"loss": ..., "accuracy" or "mae": ...}`` of the data, penalty included."""
        model, X, n_samples = self.model, self.X, self.X.shape[0]
        sums: dict[str, float] = {}
        with np.errstate(over="ignore", under="ignore", invalid="ignore", divide="ignore"):
            for begin, end, plan, targets in self.passes:
                n_rows = end - begin
                x_aug = self.inputs[:n_rows]
                np.copyto(x_aug[:, :-1], X[begin:end])
                z_T = self.Z_T[:, :n_rows]
                plan.forward(x_aug, z_T)
                if targets is not None:
                    plan.output_gradient(z_T, targets)  # the per-sample statistics
                    logs = _softmax_cross_entropy_logs(z_T, targets, self.columns[:n_rows],
                                                       0.0)
                else:
                    logs = epoch_logs(model, self.Y[begin:end], z_T.T, 0.0)
                for key, mean in logs.items():
                    sums[key] = sums.get(key, 0.0) + mean * n_rows
        logs = {key: total / n_samples for key, total in sums.items()}
        if model.alpha:
            logs["loss"] += float(model._penalty(model._l2_coefficient(n_samples)))
        return logs
