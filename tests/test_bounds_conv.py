"""Conv2D as a Linear layer (never a dense matrix), residual Add layers, and their sources."""

import tracemalloc

import numpy as np
import pytest

from tf1norm import bounds
from tf1norm._src.compat import run_eagerly, tf, v1
from tf1norm.bounds.conv import Conv2D
from tf1norm.bounds import network as network_module
from tf1norm.bounds.network import Activation, Add, Dense, Diagonal, Permute

from conftest import in_eager

CONFIGS = [
    ((7, 6, 2), (3, 3, 2, 4), 1, "SAME", 1),
    ((7, 6, 2), (3, 2, 2, 3), 2, "SAME", 1),
    ((8, 8, 3), (3, 3, 3, 2), (2, 1), "VALID", 1),
    ((9, 9, 1), (3, 3, 1, 2), 1, "SAME", 2),
    ((5, 6, 2), (2, 3, 2, 2), (1, 2), ((1, 0), (2, 1)), 1),
]


def _tf_conv(x, kernel, strides, padding, dilations):
    if not isinstance(padding, str):
        padding = [[0, 0], list(padding[0]), list(padding[1]), [0, 0]]
    strides = [strides] * 2 if np.isscalar(strides) else list(strides)
    return run_eagerly(
        lambda: tf.nn.conv2d(x, kernel, strides, padding, dilations=dilations).numpy()
    )


@pytest.mark.parametrize("engine", ["tf", "numpy"])
@pytest.mark.parametrize("shape,kernel_shape,strides,padding,dilations", CONFIGS)
def test_conv2d_matches_tf_and_its_dense_expansion(
    rng, shape, kernel_shape, strides, padding, dilations, engine
):
    kernel, bias = rng.normal(size=kernel_shape), rng.normal(size=kernel_shape[3])
    layer = Conv2D(kernel, shape, bias, strides, padding, dilations)
    if dilations > 1 and engine == "tf":
        assert layer.engine == "numpy"  # TF's CPU kernels: no dilated transposed conv
    layer.engine = layer.engine if dilations > 1 else engine
    x = rng.normal(size=(5,) + shape)
    reference = _tf_conv(x, kernel, strides, padding, dilations)
    assert reference.shape[1:] == layer.output_shape
    flat = x.reshape(5, -1)
    np.testing.assert_allclose(
        layer(flat), reference.reshape(5, -1) + layer.bias_vector, atol=1e-12
    )
    matrix = layer.as_matrix()
    assert matrix.shape == (layer.in_size, layer.out_size)
    np.testing.assert_allclose(flat @ matrix + layer.bias_vector, layer(flat), atol=1e-12)
    a = rng.normal(size=(4, layer.out_size))
    np.testing.assert_allclose(layer.backward(a), a @ matrix.T, atol=1e-12)
    np.testing.assert_allclose(
        layer.forward_abs(np.abs(flat)), np.abs(flat) @ np.abs(matrix), atol=1e-12
    )
    np.testing.assert_allclose(layer.backward(a[0]), a[0] @ matrix.T, atol=1e-12)  # a vector


def test_strided_dilated_conv2d_uses_the_numpy_engine(rng):
    kernel = rng.normal(size=(2, 2, 1, 2))
    layer = Conv2D(kernel, (9, 9, 1), strides=2, dilations=2)
    assert layer.engine == "numpy"
    x = rng.normal(size=(3, 81))
    dense = layer.as_matrix()
    reference = Conv2D(kernel, (9, 9, 1), dilations=2)(x).reshape(3, 7, 7, 2)[:, ::2, ::2, :]
    np.testing.assert_allclose(layer(x), reference.reshape(3, -1), atol=1e-12)
    np.testing.assert_allclose(x @ dense, layer(x), atol=1e-12)


@pytest.mark.parametrize(
    "layer", [Diagonal([2.0, -1.0, 0.5], [1.0, 0.0, -1.0]), Permute([2, 0, 1])]
)
def test_diagonal_and_permute_agree_with_their_matrices(rng, layer):
    x, a = rng.normal(size=(4, 3)), rng.normal(size=(2, 3))
    matrix = layer.as_matrix()
    np.testing.assert_allclose(layer(x), x @ matrix + layer.bias_vector)
    np.testing.assert_allclose(layer.backward(a), a @ matrix.T)
    np.testing.assert_allclose(layer.forward_abs(np.abs(x)), np.abs(x) @ np.abs(matrix))


def test_largest_singular_value_is_exact_when_small_and_an_upper_bound_when_large(rng, monkeypatch):
    conv = Conv2D(rng.normal(size=(3, 3, 2, 3)), (6, 6, 2), strides=2, padding="SAME")
    exact = np.linalg.svd(conv.as_matrix(), compute_uv=False)[0]
    np.testing.assert_allclose(conv.largest_singular_value(), exact, rtol=1e-9)
    # without a matrix: sqrt(‖W‖₁·‖W‖∞) from the kernel, never below the dense matrix's own
    valid = Conv2D(rng.normal(size=(3, 3, 2, 3)), (6, 6, 2), padding="VALID")
    dense = {layer: np.abs(layer.as_matrix()) for layer in (conv, valid)}
    monkeypatch.setattr(network_module, "DENSE_SVD_LIMIT", 0)
    monkeypatch.setattr(Conv2D, "as_matrix", None)
    for layer, magnitude in dense.items():
        holder = np.sqrt(magnitude.sum(axis=1).max() * magnitude.sum(axis=0).max())
        assert holder <= layer.largest_singular_value() + 1e-9
    assert exact <= conv.largest_singular_value()
    # stride 1, VALID: an interior pixel meets every tap, so the kernel sums are attained
    np.testing.assert_allclose(
        valid.largest_singular_value(),
        np.sqrt(dense[valid].sum(axis=1).max() * dense[valid].sum(axis=0).max()),
        rtol=1e-12,
    )
    np.testing.assert_allclose(Diagonal([0.5, -3.0, 2.0]).largest_singular_value(), 3.0)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(kernel=np.ones((3, 3, 2)), input_shape=(5, 5, 2)), "HWIO"),
        (dict(kernel=np.ones((3, 3, 1, 2)), input_shape=(5, 5, 2)), "HWIO"),
        (dict(kernel=np.ones((3, 3, 2, 2)), input_shape=(5, 5, 2), padding="FULL"), "'FULL'"),
        (dict(kernel=np.ones((3, 3, 2, 2)), input_shape=(5, 5, 2), strides=0), "strides"),
        (dict(kernel=np.ones((7, 7, 2, 2)), input_shape=(5, 5, 2)), "empty"),
        (dict(kernel=np.ones((3, 3, 2, 2)), input_shape=(5, 5, 2), bias=np.ones(3)), "bias"),
    ],
)
def test_conv2d_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Conv2D(**kwargs)


def _conv_net(rng):
    conv = Conv2D(
        rng.normal(size=(3, 3, 2, 3)) * 0.5,
        (5, 5, 2),
        rng.normal(size=3) * 0.1,
        strides=2,
        padding="SAME",
    )
    return bounds.Network(
        [
            conv,
            Activation("relu"),
            Dense(rng.normal(size=(27, 4))),
            Activation("relu"),
            Dense(rng.normal(size=(4, 2))),
        ]
    )


def _residual_conv_net(rng):
    first = Conv2D(
        rng.normal(size=(3, 3, 2, 2)) * 0.5, (4, 4, 2), rng.normal(size=2) * 0.1, padding="SAME"
    )
    second = Conv2D(rng.normal(size=(3, 3, 2, 2)) * 0.5, (4, 4, 2), padding="SAME")
    return bounds.Network(
        [
            first,
            Activation("relu"),
            second,
            Add(-1),
            Activation("relu"),
            Dense(rng.normal(size=(32, 3))),
            Activation("relu"),
            Dense(rng.normal(size=(3, 2))),
        ]
    )


def _residual_dense_net(rng):
    return bounds.Network(
        [
            Dense(rng.normal(size=(3, 6))),
            Activation("relu"),
            Dense(rng.normal(size=(6, 6))),
            Add(1),
            Activation("relu"),
            Dense(rng.normal(size=(6, 2))),
        ]
    )


def _densified(network):
    """The same network with every Linear layer replaced by its dense matrix."""
    layers = [
        Dense(layer.as_matrix(), layer.bias_vector) if hasattr(layer, "as_matrix") else layer
        for layer in network.layers
    ]
    return bounds.Network(layers)


def assert_sound(network, lower, upper, methods, rng, samples=3000):
    points = lower + (upper - lower) * rng.random((samples, lower.size))
    corners = lower + (upper - lower) * rng.integers(0, 2, (500, lower.size))
    outputs = network(np.concatenate([points, corners]))
    results = {}
    for method in methods:
        low, high = bounds.output_bounds(network, lower, upper, method)
        assert np.all(outputs >= low - 1e-7) and np.all(outputs <= high + 1e-7), method
        results[method] = (low, high)
    return outputs, results


NETS = {
    "conv": _conv_net,
    "residual conv": _residual_conv_net,
    "residual dense": _residual_dense_net,
}


@pytest.mark.parametrize("name", list(NETS))
def test_every_method_is_sound_on_conv_and_residual_nets(rng, name):
    network = NETS[name](rng)
    lower = rng.uniform(-1, 0, network.input_size)
    upper = lower + rng.uniform(0.1, 1.0, network.input_size)
    methods = ["interval", "crown", "alpha-crown"]
    if name != "residual conv":  # a MILP: only on the small nets
        methods.append("exact")
    outputs, results = assert_sound(network, lower, upper, methods, rng)
    if "exact" in results:  # the true range: attained up to sampling
        low, high = results["exact"]
        assert np.all(outputs.min(axis=0) - low < 0.3 * (high - low) + 1e-9)
    for method in ("interval", "crown"):  # a conv layer gives what its dense matrix gives
        np.testing.assert_allclose(
            results[method],
            bounds.output_bounds(_densified(network), lower, upper, method),
            rtol=1e-9,
            atol=1e-9,
        )


def test_interval_and_sample_bound_a_spec_on_a_residual_conv_net(rng):
    network = _residual_conv_net(rng)
    lower, upper = -np.ones(32), np.ones(32)
    spec = np.array([[1.0, -1.0], [0.5, 2.0], [-1.0, 0.0]])
    low, high = bounds.output_bounds(network, lower, upper, "interval", spec=spec)
    y_low, y_high = bounds.output_bounds(network, lower, upper, "interval")
    np.testing.assert_allclose(low, np.minimum(spec * y_low, spec * y_high).sum(axis=1))
    np.testing.assert_allclose(high, np.maximum(spec * y_low, spec * y_high).sum(axis=1))
    inner_low, inner_high = bounds.output_bounds(
        network, lower, upper, "sample", spec=spec, samples=500
    )
    values = network(rng.uniform(-1, 1, (500, 32))) @ spec.T
    assert np.all(low <= inner_low) and np.all(inner_high <= high)
    assert np.all(values >= low) and np.all(values <= high)


def test_lipschitz_bound_of_a_conv_net_equals_its_dense_twin(rng):
    network = _conv_net(rng)
    np.testing.assert_allclose(
        bounds.lipschitz_bound(network), bounds.lipschitz_bound(_densified(network)), rtol=1e-6
    )
    with pytest.raises(ValueError, match="residual Add"):
        bounds.lipschitz_bound(_residual_dense_net(rng))


@pytest.fixture(scope="module")
def cifar_like_cnn():
    rng = np.random.default_rng(1)
    first = Conv2D(rng.normal(size=(3, 3, 3, 4)) * 0.2, (32, 32, 3), strides=2, padding="SAME")
    second = Conv2D(rng.normal(size=(3, 3, 4, 4)) * 0.2, (16, 16, 4), strides=2, padding="SAME")
    return bounds.Network(
        [
            first,
            Activation("relu"),
            second,
            Activation("relu"),
            Dense(rng.normal(size=(256, 10)) * 0.1),
        ]
    )


def test_a_3x32x32_cnn_never_builds_a_dense_conv_matrix(cifar_like_cnn, rng, monkeypatch):
    def refuse(self):
        raise AssertionError("as_matrix called")

    monkeypatch.setattr(Conv2D, "as_matrix", refuse)
    lower = rng.uniform(0, 0.9, 3072)
    upper = lower + 0.02
    convs = [layer for layer in cifar_like_cnn.layers if isinstance(layer, Conv2D)]
    for layer in convs:  # NumPy's allocations are the ones tracemalloc sees
        monkeypatch.setattr(layer, "engine", "numpy")
    tracemalloc.start()
    interval_low, interval_high = bounds.output_bounds(cifar_like_cnn, lower, upper, "interval")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 3072 * 1024 * 8 / 4  # a quarter of the first conv's dense matrix
    for layer in convs:
        layer.engine = "tf"
    low, high = bounds.output_bounds(cifar_like_cnn, lower, upper, "crown")
    y = cifar_like_cnn(lower + (upper - lower) * rng.random((200, 3072)))
    assert np.all(y >= low - 1e-9) and np.all(y <= high + 1e-9)
    assert np.all(high - low <= interval_high - interval_low + 1e-9)


def _keras_conv_bn(module, rng):
    K = module
    model = K.Sequential(
        [
            K.layers.Input((6, 6, 2)),
            K.layers.Conv2D(3, 3, padding="same"),
            K.layers.BatchNormalization(),
            K.layers.ReLU(),
            K.layers.Conv2D(2, 3, strides=2),
            K.layers.Flatten(),
            K.layers.Dense(2),
        ]
    )
    norm = model.layers[1]
    norm.set_weights([w + rng.uniform(0.1, 0.5, w.shape) for w in norm.get_weights()])
    return model


def test_keras_conv_and_folded_batch_norm_stay_convolutions(rng):
    import tf_keras

    def check():
        model = _keras_conv_bn(tf_keras, rng)
        net = bounds.from_keras(model)
        assert [type(layer).__name__ for layer in net.layers] == [
            "Conv2D",
            "Activation",
            "Conv2D",
            "Dense",
        ]
        x = rng.random((20, 6, 6, 2)).astype(np.float32)
        np.testing.assert_allclose(
            net(x.reshape(20, -1)), model.predict(x, verbose=0), rtol=1e-4, atol=1e-5
        )

    in_eager(check)


def test_graph_residual_blocks_are_traced(sess, rng):
    x = v1.placeholder(tf.float32, [None, 4, 4, 2])
    init = tf.constant_initializer
    conv1 = v1.layers.conv2d(x, 2, 3, padding="same", activation=tf.nn.relu, name="c1")
    conv2 = v1.layers.conv2d(conv1, 2, 3, padding="same", use_bias=False, name="c2")
    normed = v1.layers.batch_normalization(
        conv2,
        training=False,
        name="bn",
        gamma_initializer=init(1.5),
        moving_variance_initializer=init(0.5),
    )
    offset = tf.constant(rng.normal(size=(4, 4, 1)), tf.float32)  # broadcast over channels
    block = tf.nn.relu(normed + x + offset)  # identity shortcut
    flat = tf.reshape(block, [-1, 32])
    left = v1.layers.dense(flat, 5, tf.nn.relu, name="left")
    right = v1.layers.dense(flat, 5, name="right")
    y = v1.layers.dense(left + right, 2, name="out")  # two branches from one tensor
    sess.run(v1.global_variables_initializer())
    net = bounds.from_graph(y, x, bounds.graph_value_reader(session=sess))
    kinds = [type(layer).__name__ for layer in net.layers]
    assert kinds.count("Conv2D") == 2 and kinds.count("Add") == 3  # 1 shortcut, jump + sum
    assert all(
        layer.in_size * layer.out_size < 2000 for layer in net.layers if isinstance(layer, Dense)
    )
    points = rng.uniform(-1, 1, (30, 4, 4, 2)).astype(np.float32)
    np.testing.assert_allclose(
        net(points.reshape(30, -1)), sess.run(y, {x: points}), rtol=1e-4, atol=1e-5
    )
    assert_sound(net, -np.ones(32), np.ones(32), ["interval", "crown"], rng)
