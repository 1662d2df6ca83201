"""alpha-CROWN: CROWN with optimized ReLU lower slopes (Xu et al., ICLR 2021).

Every slope ``α ∈ [leak, 1]`` of the lower relaxation of an unstable (leaky)
ReLU gives a sound bound, so the bound can be optimized over α: one α per
output neuron and hidden neuron, projected Adam steps, intermediate bounds
kept from CROWN. The best value seen for each output is kept, starting from
CROWN's own, so the result is never looser than ``crown``.
"""

import numpy as np

from tf1norm._tf import run_eagerly, tf
from tf1norm.bounds import relaxations
from tf1norm.bounds.crown import backward, pre_activation_bounds
from tf1norm.bounds.network import Activation, Dense


def _relaxations(network, pre_bounds):
    """``{layer: (unstable mask, sl, il, su, iu)}``, fixed while α is optimized."""
    return {k: (((l < 0) & (u > 0)),) + relaxations.for_layer(network.layers[k], l, u)
            for k, (l, u) in pre_bounds.items()}


def _slopes(network, relaxed, outputs):
    """Initial α (CROWN's adaptive choice) and its box, per optimizable layer."""
    start, limits = {}, {}
    for k, (_, sl, _, _, _) in relaxed.items():
        layer = network.layers[k]
        if layer.kind in ("relu", "leaky_relu"):
            start[k] = np.tile(sl, (outputs, 1))
            limits[k] = layer.alpha if layer.kind == "leaky_relu" else 0.0
    return start, limits


def _bound(network, relaxed, alphas, lower, upper, side):
    """Lower (side=+1) or negated upper (side=-1) bound as a TF function of α."""
    a = tf.constant(side * np.eye(network.output_size))
    c = tf.zeros([network.output_size], tf.float64)
    for k in range(len(network.layers) - 1, -1, -1):
        layer = network.layers[k]
        if isinstance(layer, Dense):
            c = c + tf.linalg.matvec(a, layer.bias)
            a = tf.matmul(a, layer.kernel.T)
            continue
        unstable, sl, il, su, iu = relaxed[k]
        lower_slope = sl
        if k in alphas:  # only unstable neurons have a free lower slope
            lower_slope = tf.where(unstable, alphas[k], tf.constant(sl))
        positive, negative = tf.maximum(a, 0.0), tf.minimum(a, 0.0)
        c = c + tf.linalg.matvec(positive, il) + tf.linalg.matvec(negative, iu)
        a = positive * lower_slope + negative * su
    return tf.linalg.matvec(tf.maximum(a, 0.0), lower) + tf.linalg.matvec(
        tf.minimum(a, 0.0), upper) + c


def _optimize(network, relaxed, lower, upper, side, steps, learning_rate):
    start, limits = _slopes(network, relaxed, network.output_size)
    alphas = {k: tf.Variable(v) for k, v in start.items()}
    moments = {k: [np.zeros_like(v), np.zeros_like(v)] for k, v in start.items()}
    best = None
    for step in range(1, steps + 1):
        with tf.GradientTape() as tape:
            value = _bound(network, relaxed, alphas, lower, upper, side)
            objective = tf.reduce_sum(value)
        best = value.numpy() if best is None else np.maximum(best, value.numpy())
        for k, grad in zip(alphas, tape.gradient(objective, list(alphas.values()))):
            m, v = moments[k]
            m[:] = 0.9 * m + 0.1 * grad.numpy()
            v[:] = 0.999 * v + 0.001 * grad.numpy() ** 2
            ascent = learning_rate * (m / (1 - 0.9 ** step)) / (
                np.sqrt(v / (1 - 0.999 ** step)) + 1e-12)
            alphas[k].assign(np.clip(alphas[k].numpy() + ascent, limits[k], 1.0))
    final = _bound(network, relaxed, alphas, lower, upper, side).numpy()
    return side * np.maximum(best, final)


def alpha_crown(network, lower, upper, steps=30, learning_rate=0.1):
    """alpha-CROWN bounds of every output; each is at least as tight as CROWN's."""
    pre_bounds = pre_activation_bounds(network, lower, upper)
    low, high = backward(network, len(network.layers) - 1, pre_bounds, lower, upper)
    if not any(isinstance(layer, Activation) and layer.kind in ("relu", "leaky_relu")
               for layer in network.layers):
        return low, high
    relaxed = _relaxations(network, pre_bounds)

    def optimize_both():
        return (_optimize(network, relaxed, lower, upper, 1.0, steps, learning_rate),
                _optimize(network, relaxed, lower, upper, -1.0, steps, learning_rate))

    optimized_low, optimized_high = run_eagerly(optimize_both)
    return np.maximum(low, optimized_low), np.minimum(high, optimized_high)
