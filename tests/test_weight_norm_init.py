"""weight_norm_data_init against openai/weightnorm's init, its direction rescale, and vgg_a (slow).

The reference statistics (``fixtures/weight_norm_reference.npz``) were written by
``python tools/wn_init_report.py --fixture tests/fixtures/weight_norm_reference.npz``:
openai/weightnorm's ``tensorflow/nn.py`` data init (ported there, ``reference_data_init``)
run on a 6-layer ReLU MLP and a 4-conv + dense net with seeded initializers and a
seeded batch that gives every layer >= 32 values per unit (so tf1norm does not pool).
"""

import pathlib
import sys
import warnings

import numpy as np
import pytest
import tf_slim as slim

import tf1norm
from tf1norm import keys, registry
from tf1norm._src.compat import tf, v1

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "tools"))

import wn_init_report  # noqa: E402
import wn_reference  # noqa: E402

FIXTURE = pathlib.Path(__file__).resolve().parent / "fixtures" / "weight_norm_reference.npz"
# float32 forward passes; the reference adds 1e-8 to σ², tf1norm takes σ in float64
RTOL, MEAN_ATOL = 1e-4, 1e-5


def _initialized(name, batch=None, before_session=None, **kwargs):
    """``(graph, session, feed, layers)`` of a reference net after ``weight_norm_data_init``.

    ``before_session(graph)`` builds extra ops (gradients need the graph unrun).
    """
    graph, x, layers = wn_reference.build_reference_net(name)
    extra = before_session(graph) if before_session else None
    shape = wn_reference.reference_nets()[name][1]
    shape = shape if batch is None else [batch] + shape[1:]
    feed = {x: wn_reference.reference_batch(shape)}
    session = v1.Session(graph=graph)
    with graph.as_default():
        session.run(v1.global_variables_initializer())
    tf1norm.weight_norm_data_init(session, feed, **kwargs)
    return (graph, session, feed, layers) + ((extra,) if before_session else ())


@pytest.mark.parametrize("name", ["mlp", "conv"])
def test_data_init_matches_the_openai_reference(name):
    reference = np.load(FIXTURE)
    graph, session, feed, layers = _initialized(name)
    with session:
        records = registry.get_records(keys.WEIGHT_NORM, graph)
        biases = [v1.global_variables(r.name.rsplit("/", 1)[0] + "/biases")[0] for r in records]
        values = session.run(([pre for _, pre in layers], [r.g for r in records], biases), feed)
    assert len(layers) == (6 if name == "mlp" else 5)
    for (layer, _), pre, g, b in zip(layers, *values):
        units = np.asarray(pre, np.float64).reshape(-1, pre.shape[-1])
        key = f"{name}:{layer}"
        np.testing.assert_allclose(units.mean(0), reference[f"{key}:mean"], atol=MEAN_ATOL)
        np.testing.assert_allclose(units.std(0), reference[f"{key}:std"], rtol=RTOL)
        np.testing.assert_allclose(g, reference[f"{key}:g"], rtol=RTOL, err_msg=key)
        np.testing.assert_allclose(b, reference[f"{key}:b"], rtol=RTOL, atol=MEAN_ATOL)


def test_data_init_rescales_the_direction_and_keeps_the_function():
    graph, session, feed, layers = _initialized("conv", rescale_direction=False)
    records = registry.get_records(keys.WEIGHT_NORM, graph)
    with session:
        before = session.run([r.w for r in records] + [pre for _, pre in layers], feed)
        tf1norm.weight_norm_data_init(session, feed)  # again: g, b already scaled, σ = 1
        after = session.run([r.w for r in records] + [pre for _, pre in layers], feed)
        v, g = session.run(([r.v for r in records], [r.g for r in records]))
    for old, new in zip(before, after):
        np.testing.assert_allclose(new, old, rtol=1e-4, atol=1e-5)
    for direction, gain in zip(v, g):
        units = direction.reshape(-1, direction.shape[-1])
        norms = np.sqrt(np.square(units.astype(np.float64)).sum(0))
        np.testing.assert_allclose(norms, np.abs(gain) * np.sqrt(units.shape[0]), rtol=1e-5)


def test_first_gradient_step_moves_the_direction_by_lr_over_fan_in():
    """Across v, w moves by (g/‖v‖)²·lr·P∇w = lr/fan_in·P∇w (first order, small lr)."""

    def gradient_step(graph):
        records = registry.get_records(keys.WEIGHT_NORM, graph)
        with graph.as_default():
            loss = tf.reduce_mean(tf.square(graph.get_tensor_by_name("fc6/BiasAdd:0")))
            variables = v1.trainable_variables()
            both = tf.gradients(loss, [r.w for r in records] + variables)
            step = v1.train.GradientDescentOptimizer(0.02).apply_gradients(
                zip(both[len(records) :], variables)
            )
        return records, both[: len(records)], step

    _, session, feed, _, (records, grads, step) = _initialized("mlp", before_session=gradient_step)
    with session:
        w0, grad = session.run(([r.w for r in records], grads), feed)
        session.run(step, feed)
        w1 = session.run([r.w for r in records])
    for before, after, gradient in zip(w0, w1, grad):
        unit = before / np.linalg.norm(before, axis=0)
        across = gradient - unit * (unit * gradient).sum(0)
        along = unit * (unit * gradient).sum(0)
        predicted = -0.02 * (across / before.shape[0] + along)
        np.testing.assert_allclose(
            after - before, predicted, rtol=2e-2, atol=2e-2 * np.abs(predicted).max()
        )


def test_data_init_warns_when_the_batch_is_too_small_for_the_dense_layers():
    with pytest.warns(UserWarning, match=r"6 layer\(s\).*Feed at least 16 examples"):
        _initialized("mlp", batch=2)[1].close()
    with warnings.catch_warnings(record=True) as caught:  # 8 images of 8×8
        warnings.simplefilter("always")
        _initialized("conv", batch=8)[1].close()
    ours = [str(w.message) for w in caught if "weight_norm_data_init" in str(w.message)]
    assert len(ours) == 1 and "1 layer(s) (logits/weights)" in ours[0], ours  # dense head only
    assert "batch of 8 example(s)" in ours[0] and "Feed at least 16 examples" in ours[0]


def test_data_init_validates_rescale_direction():
    graph, session, feed, _ = _initialized("mlp")
    with (
        session,
        pytest.raises(TypeError, match="`rescale_direction` must be True or False; got 'yes'"),
    ):
        tf1norm.weight_norm_data_init(session, feed, rescale_direction="yes")


# --- vgg_a (slow) ------------------------------------------------------------------------------

STEPS = 5


@pytest.fixture(scope="module")
def vgg_losses():
    """vgg_a at 224×224 (its 7×7 VALID fc6 needs a 7×7 pool5: no smaller size), batch 2.

    Data init on the training batch (it warns: fc6–fc8 see 2 values per unit),
    then ``STEPS`` steps of Momentum(0.01, 0.9) through ``create_train_op``.
    Before the direction rescale the second loss was 1.7e8, the third NaN.
    """
    graph, built, train = wn_init_report.build("vgg_a", 2, 224, weight_norm=True)
    feed = wn_init_report.batch_feed(built)
    with v1.Session(graph=graph) as session:
        session.run(v1.global_variables_initializer())
        with pytest.warns(UserWarning, match="Feed at least 16 examples"):
            tf1norm.weight_norm_data_init(session, feed)
        losses = [session.run(train, feed) for _ in range(STEPS)]
        return np.array(losses + [session.run(built.loss, feed)])


@pytest.mark.slow
def test_vgg_a_trains_after_data_init_at_the_plain_learning_rate(vgg_losses):
    assert np.all(np.isfinite(vgg_losses)), vgg_losses
    assert vgg_losses.max() <= 10 * vgg_losses[0], vgg_losses


@pytest.mark.parametrize("axis", [0, 1])
def test_direction_rescale_of_a_partitioned_kernel(axis):
    """Parts split the reduced axis (0) or the units (1): ‖v‖ is over the whole kernel."""
    batch = wn_reference.reference_batch([32, 10])
    with tf.Graph().as_default() as graph:
        with v1.variable_scope(
            "",
            custom_getter=tf1norm.weight_norm_getter(),
            partitioner=v1.fixed_size_partitioner(2, axis=axis),
        ):
            out = slim.fully_connected(
                tf.constant(batch), 6, scope="fc", biases_initializer=None
            )  # rank 1: no axis 1
        (record,) = registry.get_records(keys.WEIGHT_NORM, graph)
        with v1.Session(graph=graph) as session:
            session.run(v1.global_variables_initializer())
            tf1norm.weight_norm_data_init(session, rescale_direction=False)
            before = session.run([out, record.w])
            tf1norm.weight_norm_data_init(session)
            after = session.run([out, record.w])
            v, g = session.run([record.direction, record.g])
    assert len(list(record.v)) == 2
    for old, new in zip(before, after):
        np.testing.assert_allclose(new, old, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(v, axis=0), g * np.sqrt(10), rtol=1e-5)


def test_data_init_after_two_train_ops_uses_each_layer_s_forward_product():
    """Gradients add Conv2DBackpropInput consumers of each w; data init must skip them.

    ``consumers()`` lists them in no fixed order; with the input gradient taken
    for the layer, the first conv's statistics had 3 units (the image channels).
    """
    import tf_slim as slim

    rng = np.random.default_rng(0)
    with tf.Graph().as_default():
        images = v1.placeholder(tf.float32, [4, 8, 8, 3])
        labels = v1.placeholder(tf.int32, [4])
        net = images
        with tf1norm.slim_scope(weight_norm=True):
            for i, units in enumerate((5, 6, 7, 8)):
                net = slim.conv2d(net, units, [3, 3], scope=f"conv{i}")
        loss = v1.losses.sparse_softmax_cross_entropy(labels, tf.reduce_mean(net, [1, 2]))
        for i, optimizer in enumerate([v1.train.MomentumOptimizer(0.1, 0.9)] * 3):
            tf1norm.create_train_op(loss, optimizer, name=f"train_{i}", global_step=None)
        feed = {images: rng.standard_normal((4, 8, 8, 3)), labels: [0, 1, 2, 3]}
        with v1.Session() as session:
            session.run(v1.global_variables_initializer())
            report = tf1norm.weight_norm_data_init(session, feed)
    assert [np.shape(mean) for _, mean, _ in report] == [(5,), (6,), (7,), (8,)]
