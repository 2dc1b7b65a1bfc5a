"""Tutorial 004's hand calculation with mlpx: one forward pass, backpropagation and one step.

The tutorial works a tiny network through by hand before coding it: every pre-activation
``z``, activation ``a``, the binary cross-entropy loss, the error terms ``delta`` and the
gradients, then one gradient-descent update. The captured text lost its numbers, so this
script picks its own: a [2, 2, 1] network (sigmoid hidden layer, sigmoid output, binary
cross-entropy) in float64 with hand-set weights and two samples. Samples are rows, so the
formulas read ``z = a_prev @ W + b`` (the tutorial's column layout transposed).

Every quantity is computed here from its printed formula with the model's own array
namespace (``model.xp``, so the arithmetic runs on the chosen backend) and checked against
what mlpx computes: ``model.forward(X, return_intermediates=True)`` for z and a,
``model.loss_and_grads(X, y)`` for the loss and gradients, one epoch of full-batch
``fit`` for the update, and ``mlpx.gradcheck`` for the gradients against central
differences. Arrays are converted with ``mlpx.to_numpy`` only to be printed. Nothing
here trains for long, so ``MLPX_EXAMPLE_QUICK=1`` changes nothing.

    python examples/tutorial004_hand_calculation.py [--backend numpy|torch|array_api_strict|cupy]
"""

from __future__ import annotations

import argparse

import numpy as np

import mlpx

LEARNING_RATE = 0.5
TOLERANCE = 1e-12  # float64 hand arithmetic against the library's

# Hand-set parameters [W1, b1, W2, b2]: W of shape (fan_in, fan_out), b of shape (fan_out,).
W1 = [[0.15, -0.25],
      [0.20, 0.30]]
B1 = [0.35, -0.10]
W2 = [[0.40],
      [-0.45]]
B2 = [0.60]
X_SAMPLES = [[0.5, 1.0],
             [1.0, -0.5]]
Y_LABELS = [1, 0]


def show(name: str, formula: str, value) -> None:
    """Print ``name = formula`` and the value (converted to NumPy for printing only)."""
    text = np.array2string(mlpx.to_numpy(value), precision=6, suppress_small=True,
                           floatmode="fixed")
    print(f"{name:<7} = {formula}")
    for line in text.splitlines():
        print(f"{'':<10}{line}")


def check(name: str, mine, library, *, xp) -> None:
    """Assert the hand value equals the library's (compared in ``xp``); print the difference."""
    difference = float(xp.max(xp.abs(mine - library)))
    assert difference < TOLERANCE, f"{name}: hand {mine} vs mlpx {library}"
    print(f"{'':<10}matches mlpx ({name}), max |difference| = {difference:.1e}")


def build_model(backend: str) -> mlpx.MLP:
    """The [2, 2, 1] sigmoid network with the hand-set float64 weights."""
    model = mlpx.MLP([2, 2, 1], activations=["sigmoid", "sigmoid"],
                     loss="binary_crossentropy", dtype="float64", backend=backend)
    model.params = [np.array(W1), np.array(B1), np.array(W2), np.array(B2)]
    return model


def forward_by_hand(model, X, cache):
    """z1, a1, z2, a2 from their formulas; each checked against ``cache`` (the library's)."""
    xp = model.xp
    W1_, b1, W2_, b2 = model.params
    z1 = X @ W1_ + b1
    show("z1", "X @ W1 + b1", z1)
    check("pre_activations[0]", z1, cache.pre_activations[0], xp=xp)
    a1 = 1.0 / (1.0 + xp.exp(-z1))
    show("a1", "sigmoid(z1) = 1 / (1 + exp(-z1))", a1)
    check("activations[0]", a1, cache.activations[0], xp=xp)
    z2 = a1 @ W2_ + b2
    show("z2", "a1 @ W2 + b2", z2)
    check("pre_activations[1]", z2, cache.pre_activations[1], xp=xp)
    a2 = 1.0 / (1.0 + xp.exp(-z2))
    show("a2", "sigmoid(z2), the network output", a2)
    check("activations[1]", a2, cache.activations[1], xp=xp)
    return a1, a2


def backward_by_hand(model, X, Y, a1, a2, loss: float, grads: list) -> list:
    """The loss, the deltas and every gradient from their formulas, checked; returns dW/db."""
    xp = model.xp
    n = X.shape[0]
    W2_ = model.params[2]
    hand_loss = -xp.mean(Y * xp.log(a2) + (1.0 - Y) * xp.log(1.0 - a2))
    show("L", "-mean(y log a2 + (1 - y) log(1 - a2))", hand_loss)
    check("loss_and_grads loss", hand_loss, loss, xp=xp)
    delta2 = (a2 - Y) / n
    show("delta2", f"dL/dz2 = (a2 - y) / n, n = {n}", delta2)
    dW2 = a1.T @ delta2
    show("dW2", "a1.T @ delta2", dW2)
    check("grads[2]", dW2, grads[2], xp=xp)
    db2 = xp.sum(delta2, axis=0)
    show("db2", "sum(delta2, axis=0)", db2)
    check("grads[3]", db2, grads[3], xp=xp)
    delta1 = (delta2 @ W2_.T) * a1 * (1.0 - a1)
    show("delta1", "dL/dz1 = (delta2 @ W2.T) * a1 * (1 - a1)", delta1)
    dW1 = X.T @ delta1
    show("dW1", "X.T @ delta1", dW1)
    check("grads[0]", dW1, grads[0], xp=xp)
    db1 = xp.sum(delta1, axis=0)
    show("db1", "sum(delta1, axis=0)", db1)
    check("grads[1]", db1, grads[1], xp=xp)
    return [dW1, db1, dW2, db2]


def gradient_step(model, X, y, hand_grads: list) -> None:
    """W - lr * dW by hand, against one epoch of full-batch gradient descent in mlpx."""
    xp = model.xp
    names = ["W1", "b1", "W2", "b2"]
    stepped = [p - LEARNING_RATE * g for p, g in zip(model.params, hand_grads)]
    loss_before = model.evaluate(X, y)["loss"]
    model.fit(X, y, epochs=1, batch_size=None, optimizer="sgd", learning_rate=LEARNING_RATE,
              shuffle=False)
    for name, mine, library in zip(names, stepped, model.params):
        show(f"{name}'", f"{name} - lr * d{name}, lr = {LEARNING_RATE}", mine)
        check(f"{name} after fit(epochs=1)", mine, library, xp=xp)
    loss_after = model.evaluate(X, y)["loss"]
    print(f"loss before the step {loss_before:.6f}, after {loss_after:.6f} "
          f"(down by {loss_before - loss_after:.6f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="numpy")
    backend = parser.parse_args().backend

    model = build_model(backend)
    print(model)
    for name, value in zip(["W1", "b1", "W2", "b2"], model.params):
        show(name, "hand-set", value)
    cache = model.forward(X_SAMPLES, return_intermediates=True)
    X = cache.inputs
    xp = model.xp
    Y = xp.reshape(xp.asarray(Y_LABELS, dtype=model.dtype, device=model.backend.device), (-1, 1))
    show("X", "two samples, one per row", X)
    show("y", "their labels, as a column", Y)

    print("=" * 60)
    print("FORWARD PASS")
    a1, a2 = forward_by_hand(model, X, cache)

    print("=" * 60)
    print("BACKPROPAGATION")
    loss, grads = model.loss_and_grads(X_SAMPLES, Y_LABELS)
    hand_grads = backward_by_hand(model, X, Y, a1, a2, loss, grads)

    print("=" * 60)
    print("GRADIENT CHECK (central differences, eps = 1e-6)")
    errors = mlpx.gradcheck(model, X_SAMPLES, Y_LABELS)
    for name, error in zip(["dW1", "db1", "dW2", "db2"], errors):
        print(f"{name:<4} max relative error {error:.2e}")
    assert max(errors) < 1e-6, f"gradcheck errors {errors}"
    print("all below 1e-6: backpropagation agrees with the numerical gradient")

    print("=" * 60)
    print("ONE GRADIENT-DESCENT STEP")
    gradient_step(model, X_SAMPLES, Y_LABELS, hand_grads)


if __name__ == "__main__":
    main()
