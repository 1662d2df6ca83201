"""Networks from Keras models and TF1 graphs; the `tf1norm bounds` command line."""

import numpy as np
import pytest

from tf1norm import bounds
from tf1norm.cli import app as cli
from tf1norm._src.compat import tf, v1

from conftest import in_eager


def _keras_model(module, rng):
    K = module
    model = K.Sequential(
        [
            K.layers.Input((6, 6, 2)),
            K.layers.Conv2D(3, 3, activation="relu"),
            K.layers.BatchNormalization(),
            K.layers.Flatten(),
            K.layers.Dense(5),
            K.layers.LeakyReLU(),
            K.layers.Dense(2),
        ]
    )
    norm = model.layers[1]
    norm.set_weights([w + rng.uniform(0.1, 0.5, w.shape) for w in norm.get_weights()])
    return model


@pytest.mark.parametrize("module_name", ["keras", "tf_keras"])
def test_keras_sequential_models_become_equivalent_networks(rng, module_name):
    module = __import__(module_name)

    def check():
        model = _keras_model(module, rng)
        net = bounds.from_keras(model)
        x = rng.random((50, 6, 6, 2)).astype(np.float32)
        np.testing.assert_allclose(
            net(x.reshape(50, -1)), model.predict(x, verbose=0), rtol=1e-4, atol=1e-5
        )
        low, high = bounds.output_bounds(net, np.zeros(72), np.ones(72), "crown")
        y = net(rng.random((2000, 72)))
        assert np.all(y >= low - 1e-9) and np.all(y <= high + 1e-9)

    in_eager(check)


def test_unsupported_keras_layer_is_named():
    import keras

    def check():
        model = keras.Sequential(
            [keras.layers.Input((4,)), keras.layers.Dense(3), keras.layers.GaussianNoise(0.1)]
        )
        with pytest.raises(ValueError, match="of type GaussianNoise is not supported"):
            bounds.from_keras(model)

    in_eager(check)


def _graph_net():
    x = v1.placeholder(tf.float32, [None, 3], name="X")
    layers = v1.layers
    h = layers.dense(x, 6, tf.nn.relu, name="hidden")
    return x, layers.dense(h, 2, name="out")


def test_graph_tracing_matches_the_numpy_description(sess, rng):
    x, y = _graph_net()
    sess.run(v1.global_variables_initializer())
    traced = bounds.from_graph(y, x, bounds.graph_value_reader(session=sess))
    kernels = sess.run(
        [v1.global_variables("hidden/kernel")[0], v1.global_variables("out/kernel")[0]]
    )
    biases = sess.run([v1.global_variables("hidden/bias")[0], v1.global_variables("out/bias")[0]])
    described = bounds.Network.from_numpy(kernels, biases, ["relu", "linear"])
    for method in ("interval", "crown", "exact"):
        np.testing.assert_allclose(
            bounds.output_bounds(traced, -np.ones(3), np.ones(3), method),
            bounds.output_bounds(described, -np.ones(3), np.ones(3), method),
            rtol=1e-6,
        )


def test_graph_tracing_names_unsupported_ops(graph):
    x = v1.placeholder(tf.float32, [None, 3])
    with pytest.raises(ValueError, match="type Softplus is not supported"):
        bounds.from_graph(tf.nn.softplus(x), x, lambda t: None)


def test_cli_on_a_checkpoint_and_an_npz(tmp_path, capsys):
    with tf.Graph().as_default():
        x, y = _graph_net()
        with v1.Session() as sess:
            sess.run(v1.global_variables_initializer())
            path = v1.train.Saver().save(sess, str(tmp_path / "model"))
            reference = bounds.from_graph(y, x, bounds.graph_value_reader(session=sess))
    args = [
        "bounds",
        path,
        "--lower",
        "-1",
        "--upper",
        "1",
        "--input",
        "X:0",
        "--output",
        y.name,
        "--method",
        "exact",
    ]
    assert cli.main(args) == 0
    captured = capsys.readouterr()
    low, high = bounds.output_bounds(reference, -np.ones(3), np.ones(3), "exact")
    rows = _table_rows(captured.out)
    np.testing.assert_allclose([float(r[1]) for r in rows], low, rtol=1e-5)
    np.testing.assert_allclose([float(r[2]) for r in rows], high, rtol=1e-5)
    assert "method exact: the true range" in captured.out
    assert "exact: branch and bound on the input box" in captured.err
    assert all(row[-1] == "exact" for row in rows), rows
    npz = tmp_path / "net.npz"
    np.savez(
        npz, kernel_0=np.array([[1.0], [1.0]]), bias_0=np.zeros(1), activations=np.array(["linear"])
    )
    assert cli.main(["bounds", str(npz), "--lower", "0", "--upper", "1"]) == 0
    assert _table_rows(capsys.readouterr().out)[0][1:3] == ["0", "2"]


def _table_rows(out):
    """The rows under the ``output lower upper width`` header of a bounds table."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:1] == ["output"])
    return [line.split() for line in lines[start + 1 :] if line.strip()]


def test_cli_checkpoint_without_names_explains(tmp_path, capsys):
    with tf.Graph().as_default():
        _graph_net()
        with v1.Session() as sess:
            sess.run(v1.global_variables_initializer())
            path = v1.train.Saver().save(sess, str(tmp_path / "model"))
    assert cli.main(["bounds", path, "--lower", "0", "--upper", "1"]) == 2  # a usage error
    err = capsys.readouterr().err
    assert "needs --input and --output" in err and "tf1norm tensors" in err
    assert len(err.strip().splitlines()) == 1


def test_graph_tracing_of_a_conv_net_matches_the_graph(sess, rng):
    images = v1.placeholder(tf.float32, [None, 6, 6, 2])
    flat = tf.reshape(images, [-1, 72])
    net = v1.layers.conv2d(
        tf.reshape(flat, [-1, 6, 6, 2]),
        3,
        3,
        strides=2,
        padding="same",
        activation=tf.nn.relu,
        name="conv",
    )
    logits = v1.layers.dense(tf.reshape(net, [-1, 27]), 2, name="out")
    sess.run(v1.global_variables_initializer())
    traced = bounds.from_graph(logits, images, bounds.graph_value_reader(session=sess))
    x = rng.random((20, 6, 6, 2)).astype(np.float32)
    np.testing.assert_allclose(
        traced(x.reshape(20, -1)), sess.run(logits, {images: x}), rtol=1e-4, atol=1e-5
    )
