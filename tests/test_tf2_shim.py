"""One model code, two runtimes: tf1norm model code in a TF1 graph and in the TF2 shim.

Every model function below is plain TF1-style code (tf-slim, ``get_variable``,
``tf.compat.v1.layers``). It runs (a) in a TF1 graph and session, (b) in a
``track_tf1_style_variables`` layer called eagerly, (c) in that layer inside
``tf.function`` with and without ``jit_compile=True``. With the same weights
the outputs, the regularization losses, and the values the recorded
projections / u-refreshes / moving averages write must agree with the graph.
"""

import zlib

import numpy as np
import pytest

import tf1norm
from tf1norm import keys
from tf1norm import registry
from tf1norm._src.compat import tf, v1
from tf1norm.graph.getters import power_iteration_vector

slim = pytest.importorskip("tf_slim")

X = np.linspace(-1.0, 1.5, 24, dtype=np.float32).reshape(4, 6)
IDS = np.array([1, 3, 3, 0, 7], np.int32)
RTOL = 2e-6


def _penalties(x, ids):
    del ids
    net = slim.fully_connected(x, 5, scope="l1", weights_regularizer=tf1norm.l1_regularizer(0.01))
    net = slim.fully_connected(
        net, 5, scope="l1l2", weights_regularizer=tf1norm.l1_l2_regularizer(0.01, 0.02)
    )
    net = slim.fully_connected(net, 4, scope="l2", weights_regularizer=tf1norm.l2_regularizer(0.1))
    return slim.fully_connected(
        net, 3, scope="sn", weights_regularizer=tf1norm.spectral_norm_regularizer(0.1)
    )


def _max_norm(x, ids):
    del ids
    net = slim.fully_connected(
        x, 5, scope="fc1", weights_regularizer=tf1norm.max_norm_regularizer(0.5)
    )
    return v1.layers.dense(
        net, 3, name="dense", kernel_regularizer=tf1norm.max_norm_regularizer(0.7, axes=1)
    )


def _constraints(x, ids):
    del ids
    made = [
        ("max", tf1norm.MaxNorm(0.5)),
        ("unit", tf1norm.UnitNorm()),
        ("minmax", tf1norm.MinMaxNorm(0.5, 0.8)),
        ("nonneg", tf1norm.NonNeg()),
        ("spectral", tf1norm.SpectralNorm()),
    ]
    ws = [v1.get_variable(name, [6, 3], constraint=c) for name, c in made]
    return tf.add_n([tf.matmul(x, w) for w in ws])


def _weight_norm(x, ids):
    del ids
    with tf1norm.slim_scope(weight_norm=True):
        net = slim.fully_connected(x, 5, scope="wn_fc")
    with v1.variable_scope("wn", custom_getter=tf1norm.weight_norm_getter()):
        return v1.layers.dense(net, 3, name="dense")


def _spectral_norm(x, ids):
    del ids
    with tf1norm.slim_scope(spectral_norm=True):
        net = slim.fully_connected(x, 5, scope="sn_fc")
    with v1.variable_scope("sn", custom_getter=tf1norm.spectral_norm_getter(update="collection")):
        return v1.layers.dense(net, 3, name="dense")


def _slim_scope(x, ids):
    del ids
    with tf1norm.slim_scope(max_norm=0.5, l2=0.1):
        net = slim.fully_connected(x, 5, scope="a")
        return slim.fully_connected(net, 3, scope="b")


def _batch_norm(x, ids):
    del ids
    net = tf1norm.batch_norm(x, training=True, momentum=0.9, name="bn")
    return tf1norm.slim_layers.batch_norm(net, decay=0.8, scale=True, is_training=True, scope="sbn")


def _embedding(x, ids):
    table = v1.get_variable("table", [8, 6])
    rows = tf1norm.embedding_lookup(table, ids, max_norm=0.9)
    return tf.matmul(x, rows, transpose_b=True)


MODELS = {
    "penalties": _penalties,
    "max_norm": _max_norm,
    "constraints": _constraints,
    "weight_norm": _weight_norm,
    "spectral_norm": _spectral_norm,
    "slim_scope": _slim_scope,
    "batch_norm": _batch_norm,
    "embedding": _embedding,
}
MOVING = ("moving_mean", "moving_variance")


def _value_for(name, shape):
    """Deterministic weights by variable name, large enough for the projections to act."""
    rng = np.random.RandomState(zlib.crc32(name.split(":")[0].encode()))
    value = rng.normal(size=shape).astype(np.float32) * 1.5
    return np.abs(value) + 0.5 if "moving_variance" in name else value


class ShimLayer(tf.keras.layers.Layer):
    """The migration shim around one model function."""

    def __init__(self, model, **kwargs):
        super().__init__(**kwargs)
        self.model = model

    @v1.keras.utils.track_tf1_style_variables
    def call(self, x, ids):
        return self.model(x, ids)


def _state(variables):
    return {v.name.split(":")[0]: v.numpy() for v in variables}


def _tf2_variables(layer):
    extra = [
        power_iteration_vector(v)
        for v in layer.variables
        if isinstance(v.constraint, tf1norm.SpectralNorm) or v.name == "sn/weights:0"
    ]
    return list(layer.variables) + extra


def _set_weights(variables):
    for v in variables:
        v.assign(_value_for(v.name, v.shape.as_list()))


def _run_tf2(layer, how):
    """``(output, loss sum, variables after forward, variables after projections)``."""
    _set_weights(_tf2_variables(layer))
    trained = [v.ref() for v in layer.variables]

    def forward_and_project():
        out = layer(tf.constant(X), tf.constant(IDS))
        loss = tf.add_n(layer.losses) if layer.losses else tf.constant(0.0)
        after_forward = [v.read_value() for v in _tf2_variables(layer)]
        for collection in registry.recorded_collections():
            for projection in registry.get_projections(collection):
                if any(v.ref() in trained for v in projection.variables):
                    projection.build()
        for v in layer.variables:
            if v.constraint is not None:
                v.assign(v.constraint(v))
        return out, loss, after_forward

    if how == "eager":
        out, loss, after_forward = forward_and_project()
        registry.clear_step_records()
    else:
        out, loss, after_forward = tf.function(forward_and_project, jit_compile=how == "jit")()
    names = [v.name.split(":")[0] for v in _tf2_variables(layer)]
    return (
        out.numpy(),
        float(loss),
        dict(zip(names, [a.numpy() for a in after_forward])),
        _state(_tf2_variables(layer)),
    )


def _run_graph(model):
    """The same as ``_run_tf2`` in a TF1 graph: UPDATE_OPS and immediate u stores included."""
    with tf.Graph().as_default() as graph, v1.Session(graph=graph) as session:
        out = model(tf.constant(X), tf.constant(IDS))
        losses = v1.get_collection(keys.REGULARIZATION_LOSSES)
        fetches = [out, tf.add_n(losses) if losses else tf.constant(0.0)]
        fetches += v1.get_collection(keys.UPDATE_OPS)
        ops = [
            p.build() for c in registry.recorded_collections() for p in registry.get_projections(c)
        ]  # built now, they read when run
        ops += [
            v.assign(v.constraint(v)) for v in v1.trainable_variables() if v.constraint is not None
        ]
        session.run(v1.global_variables_initializer())
        variables = v1.global_variables()
        for v in variables:
            v.load(_value_for(v.name, v.shape.as_list()), session)
        fetched = session.run(fetches)
        after_forward = _state_in(session, variables)
        session.run(ops)
        return fetched[0], float(fetched[1]), after_forward, _state_in(session, variables)


def _state_in(session, variables):
    return dict(zip([v.op.name for v in variables], session.run(variables)))


@pytest.fixture(scope="module")
def results():
    """Per model: the graph run and the eager / function / jit runs of one shim layer."""
    table = {}
    for name, model in MODELS.items():
        layer = ShimLayer(model, name=f"shim_{name}")
        layer(tf.constant(X), tf.constant(IDS))  # build (creates the variables eagerly)
        registry.clear_step_records()
        table[name] = {"layer": layer, "graph": _run_graph(model)}
        for how in ("eager", "function", "jit"):
            table[name][how] = _run_tf2(layer, how)
    return table


@pytest.mark.parametrize("how", ["eager", "function", "jit"])
@pytest.mark.parametrize("name", sorted(MODELS))
def test_same_outputs_losses_and_projections_as_the_graph(results, name, how):
    graph_out, graph_loss, _, graph_final = results[name]["graph"]
    out, loss, _, final = results[name][how]
    rtol = RTOL if how != "jit" else 1e-5
    np.testing.assert_allclose(out, graph_out, rtol=rtol, atol=1e-6)
    np.testing.assert_allclose(loss, graph_loss, rtol=rtol, atol=1e-7)
    assert sorted(final) == sorted(graph_final)
    for variable, value in graph_final.items():
        np.testing.assert_allclose(
            final[variable], value, rtol=rtol, atol=1e-6, err_msg=f"{name}/{how}: {variable}"
        )


@pytest.mark.parametrize("how", ["eager", "function", "jit"])
@pytest.mark.parametrize("name", sorted(MODELS))
def test_forward_pass_assigns_nothing_but_moving_averages(results, name, how):
    _, _, after_forward, _ = results[name][how]
    for variable, value in after_forward.items():
        initial = _value_for(variable, value.shape)
        if variable.split("/")[-1] in MOVING:
            assert not np.array_equal(value, initial), variable  # updated on the forward pass
        else:
            np.testing.assert_array_equal(value, initial, err_msg=f"{name}/{how}: {variable}")


def test_projections_change_the_weights(results):
    """The fixtures would be vacuous if nothing needed projecting."""
    for name in ("max_norm", "slim_scope", "constraints", "embedding", "spectral_norm"):
        _, _, after_forward, final = results[name]["function"]
        changed = [k for k in final if not np.array_equal(final[k], after_forward[k])]
        assert changed, name
    final = results["max_norm"]["function"][3]
    assert np.linalg.norm(final["fc1/weights"], axis=0).max() <= 0.5 * (1 + 1e-6)
    assert np.linalg.norm(final["dense/kernel"], axis=1).max() <= 0.7 * (1 + 1e-6)


def test_losses_land_in_layer_losses(results):
    assert len(results["penalties"]["layer"].losses) == 4
    assert len(results["slim_scope"]["layer"].losses) == 2
    assert results["max_norm"]["layer"].losses == []


def test_u_and_g_are_tracked_variables(results, tmp_path):
    sn_layer, wn_layer = results["spectral_norm"]["layer"], results["weight_norm"]["layer"]
    u = sorted(v.name for v in sn_layer.non_trainable_variables)
    assert u == ["sn/dense/kernel/sn_u:0", "sn_fc/weights/sn_u:0"]
    assert not [v for v in sn_layer.trainable_variables if "sn_u" in v.name]
    g = sorted(v.name for v in wn_layer.trainable_variables if "wn_g" in v.name)
    assert g == ["wn/dense/kernel/wn_g:0", "wn_fc/weights/wn_g:0"]
    path = tf.train.Checkpoint(sn=sn_layer, wn=wn_layer).write(str(tmp_path / "ckpt"))
    saved = " ".join(name for name, _ in tf.train.list_variables(path))
    assert saved.count("sn_u") == 2 and saved.count("wn_g") == 2


def test_records_of_a_trace_stay_in_that_trace(results):
    """Transient records (u refresh, rows) never leak out of the function that made them."""
    layer = results["spectral_norm"]["layer"]
    registry.clear_step_records()  # reading layer.losses eagerly records refreshes too
    inside = []

    @tf.function
    def traced():
        layer(tf.constant(X), tf.constant(IDS))
        inside.extend(p.target.name for p in registry.get_projections(keys.SPECTRAL_NORM))
        return tf.constant(0)

    traced()
    assert sorted(inside) == ["sn/dense/kernel/sn_u:0", "sn_fc/weights/sn_u:0"]
    assert registry.get_projections(keys.SPECTRAL_NORM) == []


def test_eager_step_store_holds_rows_until_cleared(results):
    """Each eager lookup records its rows; ``clear_step_records`` ends the step."""
    layer = results["embedding"]["layer"]
    layer(tf.constant(X), tf.constant([0, 1]))
    layer(tf.constant(X), tf.constant([5]))
    rows = [
        p
        for p in registry.get_projections(keys.EMBEDDING_MAX_NORM)
        if isinstance(p, registry.RowProjection)
    ]
    assert [r.ids.numpy().tolist() for r in rows] == [[0, 1], [5]]
    registry.clear_step_records()
    assert registry.get_projections(keys.EMBEDDING_MAX_NORM) == []


@pytest.mark.parametrize("name", ["max_norm", "slim_scope"])
def test_max_norm_is_recorded_without_reading_layer_losses(name):
    """The shim calls regularizers lazily (on ``layer.losses``); max-norm records at creation."""
    layer = ShimLayer(MODELS[name], name=f"lazy_{name}")
    layer(tf.constant(X), tf.constant(IDS))
    mine = {v.ref() for v in layer.variables}
    recorded = [
        p.variable.name for p in registry.get_projections(keys.MAX_NORM) if p.variable.ref() in mine
    ]
    expected = {
        "max_norm": ["fc1/weights:0", "dense/kernel:0"],
        "slim_scope": ["a/weights:0", "b/weights:0"],
    }[name]
    assert recorded == expected


def test_graph_records_unchanged_in_a_tf1_graph(graph):
    _max_norm(tf.constant(X), tf.constant(IDS))
    assert [p.variable.op.name for p in registry.get_projections(keys.MAX_NORM)] == [
        "fc1/weights",
        "dense/kernel",
    ]
    assert len(v1.get_collection(keys.MAX_NORM)) == 2


# ------------------------------------------------------------------ Keras models

CONSTRAINTS = [
    tf1norm.MaxNorm(0.5),
    tf1norm.UnitNorm(),
    tf1norm.MinMaxNorm(0.2, 0.6),
    tf1norm.NonNeg(),
    tf1norm.SpectralNorm(),
]


def _keras_model(keras_module, constraints):
    layers = [keras_module.Input((6,))]
    layers += [
        keras_module.layers.Dense(6, kernel_constraint=c, name=f"d{i}")
        for i, c in enumerate(constraints)
    ]
    model = keras_module.Sequential(layers)
    model.compile(keras_module.optimizers.SGD(0.3), "mse", jit_compile=True)  # XLA too
    return model


@pytest.fixture(scope="module", params=["keras", "tf_keras"])
def keras_trained(request, tmp_path_factory):
    """A Keras 3 / tf-keras model with every constraint, trained 2 steps, saved and loaded."""
    keras_module = pytest.importorskip(request.param)
    # seeded: kernels and SpectralNorm's u start random, and with one power iteration
    # a step an unlucky start left σ at 3.8 after two steps (once, in a full-suite run)
    keras_module.utils.set_random_seed(0)
    model = _keras_model(keras_module, CONSTRAINTS)
    rng = np.random.RandomState(0)
    model.fit(
        rng.normal(size=(16, 6)).astype(np.float32) * 3,
        rng.normal(size=(16, 6)).astype(np.float32) * 5,
        batch_size=8,
        verbose=0,
    )
    path = str(tmp_path_factory.mktemp(request.param) / "model.keras")
    model.save(path)
    return model, keras_module.models.load_model(path)  # no custom_objects


def test_keras_constraints_hold_after_fit(keras_trained):
    model, _ = keras_trained
    kernels = [layer.kernel.numpy() for layer in model.layers]
    norms = [np.linalg.norm(k, axis=0) for k in kernels]
    assert norms[0].max() <= 0.5 * (1 + 1e-6)
    np.testing.assert_allclose(norms[1], 1.0, rtol=1e-6)
    assert norms[2].max() <= 0.6 * (1 + 1e-6) and norms[2].min() >= 0.2 * (1 - 1e-6)
    assert kernels[3].min() >= 0.0 and kernels[3].max() > 0.0
    assert np.linalg.svd(kernels[4], compute_uv=False)[0] < 1.5  # one power iteration a step


def test_keras_model_round_trips_with_its_constraints(keras_trained):
    model, loaded = keras_trained
    assert [layer.kernel_constraint for layer in loaded.layers] == CONSTRAINTS
    assert all(
        type(layer.kernel_constraint).__module__ == "tf1norm.graph.constraints"
        for layer in loaded.layers
    )
    for original, restored in zip(model.layers, loaded.layers):
        np.testing.assert_array_equal(original.kernel.numpy(), restored.kernel.numpy())


@pytest.mark.slow
def test_load_in_a_fresh_process_needs_only_import_tf1norm(tmp_path):
    """``import tf1norm``, then Keras, then ``load_model``: the import hook registered them."""
    import os
    import subprocess
    import sys

    lines = ["import tf1norm"]
    for flavour in ("keras", "tf_keras"):
        keras_module = pytest.importorskip(flavour)
        path = str(tmp_path / f"{flavour}.keras")
        _keras_model(keras_module, [tf1norm.MaxNorm(0.25, axes=[0])]).save(path)
        lines += [
            f"import {flavour}",
            f"c = {flavour}.models.load_model({path!r}).layers[0].kernel_constraint",
            "print(type(c).__module__, c.threshold)",
        ]
    out = subprocess.run(
        [sys.executable, "-c", "; ".join(lines)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert out.stdout.split() == ["tf1norm.graph.constraints", "0.25"] * 2, out.stderr[-2000:]


def test_max_norm_matches_keras_3_live_and_keeps_in_range_units_bit_exact():
    keras = pytest.importorskip("keras")
    rng = np.random.RandomState(1)
    kernel = rng.normal(size=(6, 8)).astype(np.float32)
    kernel[:, :4] *= 0.5 / np.linalg.norm(kernel[:, :4], axis=0) * 0.9  # 4 units in range
    kernel[:, 4:] *= 2.0
    ours = tf1norm.MaxNorm(0.5)(tf.Variable(kernel)).numpy()
    theirs = keras.constraints.MaxNorm(0.5)(tf.Variable(kernel))
    theirs = np.asarray(keras.ops.convert_to_numpy(theirs))
    np.testing.assert_array_equal(ours[:, :4], kernel[:, :4])  # untouched, bit for bit
    np.testing.assert_allclose(ours[:, 4:], theirs[:, 4:], rtol=1e-6)
    assert not np.array_equal(theirs[:, :4], kernel[:, :4])  # Keras rescales by n/(eps+n)
