"""Weight initialisers, drawn on the host from a seeded ``numpy.random.Generator``.

Drawing on the host (in float64, then cast) and moving the result to the device gives the
same starting weights for the same seed on every backend. Biases start at zero.

- Glorot (Xavier): keeps the variance of activations and gradients equal across a layer;
  suits sigmoid, tanh, softmax and identity.
- He (Kaiming): doubles the variance to make up for ReLU zeroing half its inputs; suits
  the ReLU family (relu, leaky_relu, elu, gelu).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from mlpx._errors import MlpxValueError


def glorot_uniform(fan_in: int, fan_out: int, rng: np.random.Generator) -> np.ndarray:
    """U(-limit, limit) with limit = sqrt(6 / (fan_in + fan_out)); shape (fan_in, fan_out)."""
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=(fan_in, fan_out))


def glorot_normal(fan_in: int, fan_out: int, rng: np.random.Generator) -> np.ndarray:
    """N(0, std^2) with std = sqrt(2 / (fan_in + fan_out)); shape (fan_in, fan_out)."""
    std = math.sqrt(2.0 / (fan_in + fan_out))
    return rng.normal(0.0, std, size=(fan_in, fan_out))


def he_uniform(fan_in: int, fan_out: int, rng: np.random.Generator) -> np.ndarray:
    """U(-limit, limit) with limit = sqrt(6 / fan_in); shape (fan_in, fan_out)."""
    limit = math.sqrt(6.0 / fan_in)
    return rng.uniform(-limit, limit, size=(fan_in, fan_out))


def he_normal(fan_in: int, fan_out: int, rng: np.random.Generator) -> np.ndarray:
    """N(0, std^2) with std = sqrt(2 / fan_in); shape (fan_in, fan_out)."""
    std = math.sqrt(2.0 / fan_in)
    return rng.normal(0.0, std, size=(fan_in, fan_out))


INITIALIZERS: dict[str, Callable[[int, int, np.random.Generator], np.ndarray]] = {
    "glorot_uniform": glorot_uniform,
    "glorot_normal": glorot_normal,
    "he_uniform": he_uniform,
    "he_normal": he_normal,
}
_ALIASES = {
    "xavier_uniform": "glorot_uniform",
    "xavier_normal": "glorot_normal",
    "kaiming_uniform": "he_uniform",
    "kaiming_normal": "he_normal",
    "glorot": "glorot_uniform",
    "xavier": "glorot_uniform",
    "he": "he_normal",
    "kaiming": "he_normal",
}

_RELU_FAMILY = ("relu", "leaky_relu", "elu", "gelu")


def default_initializer(activation: str) -> str:
    """He (normal) for the ReLU family, Glorot (uniform) for everything else."""
    return "he_normal" if activation in _RELU_FAMILY else "glorot_uniform"


def resolve_initializers(init, activations: list[str]) -> list[str]:
    """One initialiser name per layer from ``init`` (None, a name, or a list of names).

    Raises
    ------
    MlpxValueError
        For an unknown name or a list of the wrong length.
    """
    n_layers = len(activations)
    if init is None:
        return [default_initializer(name) for name in activations]
    names = [init] * n_layers if isinstance(init, str) else list(init)
    if len(names) != n_layers:
        raise MlpxValueError(
            f"init has {len(names)} entries but the network has {n_layers} weight layers; "
            "give one name, or one per layer"
        )
    resolved = []
    for name in names:
        key = _ALIASES.get(str(name).lower(), str(name).lower())
        if key not in INITIALIZERS:
            raise MlpxValueError(
                f"init={name!r} is not a known initialiser; use one of {', '.join(INITIALIZERS)}"
            )
        resolved.append(key)
    return resolved


def initial_params(
    layer_sizes: list[int], initializers: list[str], rng: np.random.Generator
) -> list[np.ndarray]:
    """Host float64 arrays ``[W1, b1, W2, b2, ...]``; W of shape (fan_in, fan_out), b zeros."""
    params = []
    for fan_in, fan_out, name in zip(layer_sizes[:-1], layer_sizes[1:], initializers):
        params.append(INITIALIZERS[name](fan_in, fan_out, rng))
        params.append(np.zeros(fan_out))
    return params
