"""A forward and backward pass worked by hand, checked to the digit (tutorials 002 and 004).

Every number below was computed once by hand (a calculator for exp and log) and is written
here as a literal: the test does not recompute the expected values with NumPy. The
notation follows tutorial 002, with one row per sample:

    z1 = X W1 + b1      a1 = f1(z1)
    z2 = a1 W2 + b2     a2 = f2(z2)
    delta2 = dL/dz2     dW2 = a1^T delta2    db2 = sum over samples of delta2
    delta1 = (delta2 W2^T) * f1'(z1)
                        dW1 = X^T delta1     db1 = sum over samples of delta1

and one full-batch gradient-descent step with learning rate 0.5 is ``W <- W - 0.5 dW``.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import assert_close

import mlpx

RTOL = 1e-12
LEARNING_RATE = 0.5


def check(actual, desired, backend, shape):
    assert_close(actual, np.array(desired), backend=backend, dtype=backend.xp.float64,
                 shape=shape, rtol=RTOL, atol=1e-15)


# --- case 1: 2 inputs -> 2 sigmoid -> 1 sigmoid, binary cross-entropy, two samples -------
#
#   X = [[ 1.0, 2.0],      y = [1, 0]
#        [-1.0, 0.5]]
#   W1 = [[0.1, 0.3],      b1 = [0.1, -0.2]
#         [0.2, 0.4]]
#   W2 = [[ 0.5],          b2 = [0.1]
#         [-0.6]]
SIGMOID_X = [[1.0, 2.0], [-1.0, 0.5]]
SIGMOID_Y = [1, 0]
SIGMOID_PARAMS = [
    [[0.1, 0.3], [0.2, 0.4]],
    [0.1, -0.2],
    [[0.5], [-0.6]],
    [0.1],
]

# Forward.
# z1, sample 1: 1*0.1 + 2*0.2 + 0.1 = 0.6;   1*0.3 + 2*0.4 - 0.2 = 0.9
#     sample 2: -1*0.1 + 0.5*0.2 + 0.1 = 0.1; -1*0.3 + 0.5*0.4 - 0.2 = -0.3
SIGMOID_Z1 = [[0.6, 0.9], [0.1, -0.3]]
# a1 = 1 / (1 + e^-z1): sigmoid(0.6), sigmoid(0.9); sigmoid(0.1), sigmoid(-0.3)
SIGMOID_A1 = [[0.6456563062257955, 0.710949502625004],
              [0.52497918747894, 0.425557483188341]]
# z2 = 0.5 a1[:, 0] - 0.6 a1[:, 1] + 0.1
#    sample 1: 0.32282815311289775 - 0.4265697015750024 + 0.1 = -0.0037415484621046518
#    sample 2: 0.26248959373947000 - 0.2553344899130046 + 0.1 =  0.10715510382646538
SIGMOID_Z2 = [[-0.0037415484621046518], [0.10715510382646538]]
# a2 = sigmoid(z2)
SIGMOID_A2 = [[0.49906461397569374], [0.5267631724780736]]
# loss = -(1/2) [log a2_1 + log(1 - a2_2)]
#      = (0.6950197046880887 + 0.7481593233594749) / 2
SIGMOID_LOSS = 0.7215895140237818

# Backward. Sigmoid output + cross-entropy: delta2 = (a2 - y) / n, n = 2.
#   sample 1: (0.49906461397569374 - 1) / 2 = -0.2504676930121531
#   sample 2: (0.5267631724780736 - 0) / 2 =  0.2633815862390368
SIGMOID_DELTA2 = [[-0.2504676930121531], [0.2633815862390368]]
# dW2 = a1^T delta2:
#   row 1: 0.6456563062257955 * -0.2504676930121531 + 0.52497918747894 * 0.2633815862390368
#        = -0.16171604549912327 + 0.1382698511406839 = -0.023446194358439365
#   row 2: 0.710949502625004 * -0.2504676930121531 + 0.425557483188341 * 0.2633815862390368
#        = -0.17806988177062244 + 0.1120840049580375 = -0.06598587681258496
SIGMOID_DW2 = [[-0.023446194358439365], [-0.06598587681258496]]
# db2 = -0.2504676930121531 + 0.2633815862390368
SIGMOID_DB2 = [0.012913893226883676]
# delta2 W2^T (W2^T = [0.5, -0.6]):
#   sample 1: [-0.12523384650607655, 0.15028061580729188]
#   sample 2: [ 0.1316907931195184, -0.15802895174342207]
# sigmoid'(z1) = a1 (1 - a1):
#   sample 1: [0.2287842404566573, 0.20550030734226343]
#   sample 2: [0.24937604019289197, 0.24445831169074586]
# delta1 = (delta2 W2^T) * a1 (1 - a1)
SIGMOID_DELTA1 = [[-0.028651530452358333, 0.030882712735983094],
                  [0.03284052851800684, -0.03863149074145531]]
# dW1 = X^T delta1:
#   row 1 (x1 = [1, -1]):  [-0.028651530452358333 - 0.03284052851800684,
#                            0.030882712735983094 + 0.03863149074145531]
#   row 2 (x2 = [2, 0.5]): [2 * -0.028651530452358333 + 0.5 * 0.03284052851800684,
#                           2 * 0.030882712735983094 + 0.5 * -0.03863149074145531]
SIGMOID_DW1 = [[-0.06149205897036517, 0.0695142034774384],
               [-0.040882796645713246, 0.042449680101238535]]
# db1 = delta1 summed over the samples
SIGMOID_DB1 = [0.004188998065648509, -0.007748778005472219]

# One gradient-descent step, W - 0.5 dW:
#   W1: [[0.1 + 0.030746029485182586, 0.3 - 0.0347571017387192],
#        [0.2 + 0.020441398322856623, 0.4 - 0.021224840050619267]]
#   b1: [0.1 - 0.0020944990328242547, -0.2 + 0.0038743890027361093]
#   W2: [[0.5 + 0.011723097179219683], [-0.6 + 0.03299293840629248]]
#   b2: [0.1 - 0.006456946613441838]
SIGMOID_STEP = [
    [[0.13074602948518257, 0.2652428982612808],
     [0.2204413983228566, 0.3787751599493807]],
    [0.09790550096717575, -0.1961256109972639],
    [[0.5117230971792197], [-0.5670070615937075]],
    [0.09354305338655816],
]


# --- case 2: 2 inputs -> 2 relu -> 2 identity, mean squared error, two samples -----------
#
#   X = [[1.0,  2.0],      Y = [[0.5, -1.0],
#        [3.0, -1.0]]           [1.0,  2.0]]
#   W1 = [[0.2, -0.4],     b1 = [0.1, 0.2]
#         [0.1,  0.3]]
#   W2 = [[0.5, -1.0],     b2 = [0.1, -0.2]
#         [1.5, 0.25]]
RELU_X = [[1.0, 2.0], [3.0, -1.0]]
RELU_Y = [[0.5, -1.0], [1.0, 2.0]]
RELU_PARAMS = [
    [[0.2, -0.4], [0.1, 0.3]],
    [0.1, 0.2],
    [[0.5, -1.0], [1.5, 0.25]],
    [0.1, -0.2],
]

# Forward.
# z1, sample 1: 1*0.2 + 2*0.1 + 0.1 = 0.5;   1*-0.4 + 2*0.3 + 0.2 = 0.4
#     sample 2: 3*0.2 - 1*0.1 + 0.1 = 0.6;   3*-0.4 - 1*0.3 + 0.2 = -1.3
RELU_Z1 = [[0.5, 0.4], [0.6, -1.3]]
# a1 = max(z1, 0): the second unit is off for sample 2
RELU_A1 = [[0.5, 0.4], [0.6, 0.0]]
# z2 = a1 W2 + b2
#   sample 1: [0.5*0.5 + 0.4*1.5 + 0.1, 0.5*-1 + 0.4*0.25 - 0.2] = [0.95, -0.6]
#   sample 2: [0.6*0.5 + 0*1.5 + 0.1,   0.6*-1 + 0*0.25 - 0.2]   = [0.4, -0.8]
RELU_Z2 = [[0.95, -0.6], [0.4, -0.8]]
RELU_A2 = RELU_Z2  # identity output
# loss = mean((a2 - Y)^2) over the 4 elements
#      = (0.45^2 + 0.4^2 + (-0.6)^2 + (-2.8)^2) / 4 = (0.2025 + 0.16 + 0.36 + 7.84) / 4
RELU_LOSS = 2.140625

# Backward. mse: dL/da2 = 2 (a2 - Y) / (n * k) = (a2 - Y) / 2; identity: delta2 = dL/da2
#   sample 1: [0.45, 0.4] / 2 = [0.225, 0.2]; sample 2: [-0.6, -2.8] / 2 = [-0.3, -1.4]
RELU_DELTA2 = [[0.225, 0.2], [-0.3, -1.4]]
# dW2 = a1^T delta2
#   row 1: [0.5*0.225 + 0.6*-0.3, 0.5*0.2 + 0.6*-1.4] = [-0.0675, -0.74]
#   row 2: [0.4*0.225 + 0*-0.3,   0.4*0.2 + 0*-1.4]   = [0.09, 0.08]
RELU_DW2 = [[-0.0675, -0.74], [0.09, 0.08]]
# db2 = [0.225 - 0.3, 0.2 - 1.4]
RELU_DB2 = [-0.075, -1.2]
# delta2 W2^T (W2^T = [[0.5, 1.5], [-1.0, 0.25]]):
#   sample 1: [0.225*0.5 + 0.2*-1.0, 0.225*1.5 + 0.2*0.25] = [-0.0875, 0.3875]
#   sample 2: [-0.3*0.5 - 1.4*-1.0, -0.3*1.5 - 1.4*0.25]   = [1.25, -0.8]
# relu'(z1) = [[1, 1], [1, 0]]
RELU_DELTA1 = [[-0.0875, 0.3875], [1.25, 0.0]]
# dW1 = X^T delta1
#   row 1: [1*-0.0875 + 3*1.25, 1*0.3875 + 3*0] = [3.6625, 0.3875]
#   row 2: [2*-0.0875 - 1*1.25, 2*0.3875 - 1*0] = [-1.425, 0.775]
RELU_DW1 = [[3.6625, 0.3875], [-1.425, 0.775]]
# db1 = [-0.0875 + 1.25, 0.3875 + 0]
RELU_DB1 = [1.1625, 0.3875]

# One gradient-descent step, W - 0.5 dW:
#   W1: [[0.2 - 1.83125, -0.4 - 0.19375], [0.1 + 0.7125, 0.3 - 0.3875]]
#   b1: [0.1 - 0.58125, 0.2 - 0.19375]
#   W2: [[0.5 + 0.03375, -1.0 + 0.37], [1.5 - 0.045, 0.25 - 0.04]]
#   b2: [0.1 + 0.0375, -0.2 + 0.6]
RELU_STEP = [
    [[-1.63125, -0.59375], [0.8125, -0.0875]],
    [-0.48125, 0.00625],
    [[0.53375, -0.63], [1.455, 0.21]],
    [0.1375, 0.4],
]

CASES = {
    "sigmoid-sigmoid-bce": dict(
        layer_sizes=[2, 2, 1], activations=["sigmoid", "sigmoid"],
        loss="binary_crossentropy", X=SIGMOID_X, y=SIGMOID_Y, params=SIGMOID_PARAMS,
        z=[SIGMOID_Z1, SIGMOID_Z2], a=[SIGMOID_A1, SIGMOID_A2], loss_value=SIGMOID_LOSS,
        grads=[SIGMOID_DW1, SIGMOID_DB1, SIGMOID_DW2, SIGMOID_DB2], step=SIGMOID_STEP,
    ),
    "relu-identity-mse": dict(
        layer_sizes=[2, 2, 2], activations=["relu", "identity"], loss="mse",
        X=RELU_X, y=RELU_Y, params=RELU_PARAMS,
        z=[RELU_Z1, RELU_Z2], a=[RELU_A1, RELU_A2], loss_value=RELU_LOSS,
        grads=[RELU_DW1, RELU_DB1, RELU_DW2, RELU_DB2], step=RELU_STEP,
    ),
}


def build(backend, case):
    model = mlpx.MLP(case["layer_sizes"], activations=case["activations"], loss=case["loss"],
                     backend=backend, dtype="float64", seed=0)
    model.params = [np.array(p, dtype=np.float64) for p in case["params"]]
    return model


@pytest.mark.parametrize("name", list(CASES))
def test_forward_by_hand(backend, name):
    case = CASES[name]
    model = build(backend, case)
    inter = model.forward(np.array(case["X"]), return_intermediates=True)
    check(inter.inputs, case["X"], backend, shape=(2, 2))
    sizes = case["layer_sizes"][1:]
    for layer in range(2):
        check(inter.pre_activations[layer], case["z"][layer], backend, shape=(2, sizes[layer]))
        check(inter.activations[layer], case["a"][layer], backend, shape=(2, sizes[layer]))


@pytest.mark.parametrize("name", list(CASES))
def test_backward_by_hand(backend, name):
    case = CASES[name]
    model = build(backend, case)
    loss, grads = model.loss_and_grads(np.array(case["X"]), np.array(case["y"]))
    assert isinstance(loss, float)
    assert loss == pytest.approx(case["loss_value"], rel=RTOL, abs=0)
    assert len(grads) == 4
    for grad, expected, param in zip(grads, case["grads"], case["params"], strict=True):
        check(grad, expected, backend, shape=np.shape(param))


def test_deltas_by_hand(backend):
    """The layer caches give the tutorial's delta2 and delta1 (dL/dz per layer).

    ``Dense.backward_from_pre_activation`` is fed delta2 by hand and must hand back
    delta2 W2^T; the hidden layer's activation turns that into delta1.
    """
    for case, delta2, delta1 in [
        (CASES["sigmoid-sigmoid-bce"], SIGMOID_DELTA2, SIGMOID_DELTA1),
        (CASES["relu-identity-mse"], RELU_DELTA2, RELU_DELTA1),
    ]:
        model = build(backend, case)
        xp = backend.xp
        model.forward(np.array(case["X"]))
        hidden, output = model.layers
        delta2_array = xp.asarray(np.array(delta2), dtype=xp.float64, device=backend.device)
        grad_a1 = output.backward_from_pre_activation(delta2_array)
        z1, a1 = hidden.cache[1], hidden.cache[2]
        delta1_array = hidden.activation.backward(z1, a1, grad_a1, xp=xp)
        check(delta1_array, delta1, backend, shape=(2, 2))
        check(output.grad_W, case["grads"][2], backend, shape=np.shape(case["params"][2]))
        check(output.grad_b, case["grads"][3], backend, shape=np.shape(case["params"][3]))


@pytest.mark.parametrize("name", list(CASES))
def test_one_sgd_step_by_hand(backend, name):
    case = CASES[name]
    model = build(backend, case)
    history = model.fit(np.array(case["X"]), np.array(case["y"]), epochs=1, batch_size=None,
                        optimizer="sgd", learning_rate=LEARNING_RATE, shuffle=False)
    # The epoch's loss is the loss before the step, at the hand-set weights.
    assert history.history["loss"][0] == pytest.approx(case["loss_value"], rel=RTOL)
    for param, expected, start in zip(model.params, case["step"], case["params"],
                                      strict=True):
        check(param, expected, backend, shape=np.shape(start))
