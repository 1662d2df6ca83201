"""The preambles of the runnable examples (see tests/test_readme.py).

``PREAMBLES`` maps the ``NAME`` of a ``<!-- readme-test: preamble=NAME -->``
marker (or of a ``DOCSTRING_PREAMBLES`` entry) to the setup a fragment needs and
the check that asserts what it promises. ``COMMON`` runs before every block.
"""

import collections

COMMON = """\
import tf1norm                      # before tensorflow
import numpy as np
import tensorflow as tf
import tf_slim as slim
"""

# fresh_process: run in a new interpreter with eager execution disabled, as a TF1
# program is (slow: TensorFlow is imported again); for blocks that start threads.
# eager: run with eager execution on and no graph (TF2 blocks: make_train_step, Keras).
Preamble = collections.namedtuple(
    "Preamble", "setup check fresh_process eager", defaults=(False, False)
)
Block = collections.namedtuple("Block", "key line code preamble source", defaults=("README.md",))

_MLP = """\
x = tf.compat.v1.placeholder(tf.float32, [None, 64], name="x")
y = tf.compat.v1.placeholder(tf.int64, [None], name="y")
with tf.compat.v1.variable_scope("hidden"):
    hidden = tf.compat.v1.layers.dense(
        x, 32, tf.nn.relu, kernel_regularizer=tf1norm.max_norm_regularizer(0.5))
logits = tf.compat.v1.layers.dense(hidden, 10)
loss = tf.compat.v1.losses.sparse_softmax_cross_entropy(y, logits)
rng = np.random.default_rng(0)
x_batch = rng.normal(size=(16, 64)).astype(np.float32)
y_batch = rng.integers(0, 10, 16)
sess = tf.compat.v1.Session()
"""

_CUDA_CONVNET = """\
with open("layers.cfg", "w") as cfg:
    cfg.write("[conv1]\\nepsW=0.01\\nepsB=0.02\\nmomW=0.9\\nmomB=0.9\\nwc=0.004\\n"
              "[fc]\\nepsW=0.01\\nepsB=0.02\\nmomW=0.9\\nmomB=0.9\\nwc=0.004\\n")
rng = np.random.default_rng(0)
images = tf.constant(rng.normal(size=(4, 8, 8, 1)), tf.float32)
net = slim.conv2d(images, 4, [3, 3], scope="conv1")
logits = slim.fully_connected(slim.flatten(net), 3, activation_fn=None, scope="fc")
xent = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=[0, 1, 2, 1], logits=logits)
"""

_RUN_TRAIN_OP_ONCE = """\
with tf.compat.v1.Session() as check_sess:
    check_sess.run(tf.compat.v1.global_variables_initializer())
    assert np.isfinite(check_sess.run(train_op))
"""

_IMAGES = """\
images = tf.compat.v1.placeholder(tf.float32, [None, 8, 8, 3], name="images")
images_nchw = tf.compat.v1.placeholder(tf.float32, [None, 3, 8, 8], name="images_nchw")
is_training = tf.compat.v1.placeholder_with_default(True, [], name="is_training")
"""

_EMBEDDING = """\
table = tf.compat.v1.get_variable(
    "table", initializer=np.random.default_rng(0).normal(size=(1000, 16)).astype(np.float32))
ids = tf.constant([3, 7, 3, 500])
targets = tf.constant([1.0, -1.0, 1.0, 0.5])
optimizer = tf.compat.v1.train.GradientDescentOptimizer(0.5)
"""

_TF2_MODEL = """\
import keras
model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
rng = np.random.default_rng(0)
x = rng.normal(size=(32, 4)).astype(np.float32)
y = x @ np.ones((4, 1), np.float32)
loss_fn = lambda prediction, target: tf.reduce_mean((prediction - target) ** 2)
"""

_TF1_AND_TF2_PORT = """\
import tf1norm.tf2.migration
def model_fn(x, y):
    with tf.compat.v1.variable_scope("fc"):
        h = tf.compat.v1.layers.dense(
            x, 8, tf.nn.relu, name="hidden",
            kernel_initializer=tf.compat.v1.glorot_uniform_initializer(),
            kernel_regularizer=tf1norm.max_norm_regularizer(0.5))
    return tf.compat.v1.losses.mean_squared_error(y, tf.compat.v1.layers.dense(
        h, 1, name="out", kernel_initializer=tf.compat.v1.glorot_uniform_initializer()))

def build_tf1(inputs):
    return tf1norm.create_train_op(model_fn(*inputs), tf.compat.v1.train.AdamOptimizer(0.01))

class Port(tf.keras.layers.Layer):
    @tf.compat.v1.keras.utils.track_tf1_style_variables
    def call(self, x, y):
        return model_fn(x, y)

def build_tf2():
    layer, optimizer = Port(), tf.compat.v1.train.AdamOptimizer(0.01)
    step = tf1norm.make_train_step(optimizer, [])
    step_fn = tf.function(lambda x, y: step(lambda: layer(x, y),
                                            lambda: layer.trainable_variables))
    return step_fn, lambda: tf1norm.migration.tf1_variable_map(layer.variables, optimizer, step)

rng = np.random.default_rng(0)
batches = [(rng.normal(size=(16, 4)).astype(np.float32),
            rng.normal(size=(16, 1)).astype(np.float32)) for _ in range(2)]
"""

PREAMBLES = {
    # Nothing: the block is a whole program (README.md's example). The check
    # asserts what it promises: after three steps `loss_value` is finite and
    # every hidden unit's norm (`unit_norms`) is <= 1.0.
    "getting_started": Preamble(
        "",
        """\
assert np.isfinite(loss_value) and unit_norms.shape == (32,)
assert unit_norms.max() <= 1.0 * (1 + 1e-6)
""",
    ),
    "tf2": Preamble("import keras\n", "", eager=True),
    "tf2_model": Preamble(_TF2_MODEL, "train(x, y)\n", eager=True),
    "tf2_fit": Preamble(_TF2_MODEL, "", eager=True),
    "tf2_port": Preamble(_TF1_AND_TF2_PORT, "", eager=True),
    # A [None, 784] input `x`.
    "x784": Preamble('x = tf.compat.v1.placeholder(tf.float32, [None, 784], name="x")\n', ""),
    # Seed 002's names: placeholders X, y, a batch X_batch, y_batch and a session `sess`.
    "seed002": Preamble(
        """\
X = tf.compat.v1.placeholder(tf.float32, [None, 64], name="X")
y = tf.compat.v1.placeholder(tf.int64, [None], name="y")
rng = np.random.default_rng(0)
X_batch = rng.normal(size=(32, 64)).astype(np.float32)
y_batch = rng.integers(0, 10, 32)
sess = tf.compat.v1.Session()
""",
        """\
kernels = sess.run([v for v in tf.compat.v1.global_variables() if "hidden" in v.name
                    and v.name.endswith("weights:0")])
assert len(kernels) == 2
assert max(np.linalg.norm(k, axis=0).max() for k in kernels) <= 1.5 * (1 + 1e-6)
""",
    ),
    # An MLP 64-32-10 on placeholders x, y with max-norm 0.5 on the hidden kernel
    # (its initial unit norms are ~1.1): `loss`, a batch x_batch, y_batch, `sess`.
    "mlp": Preamble(_MLP, ""),
    # As "mlp"; the block runs one step into `loss_value`, after which every
    # hidden unit's norm is <= 0.5.
    "mlp_step": Preamble(
        _MLP,
        """\
assert np.isfinite(loss_value)
kernel, = [v for v in tf.compat.v1.global_variables() if v.name == "hidden/dense/kernel:0"]
kernel = sess.run(kernel)
assert np.linalg.norm(kernel, axis=0).max() <= 0.5 * (1 + 1e-6)
""",
    ),
    # As "mlp", plus an Adam `optimizer` and a `logdir`; the check finds the
    # TensorBoard event file the block wrote there.
    "mlp_logdir": Preamble(
        _MLP
        + """\
optimizer = tf.compat.v1.train.AdamOptimizer(1e-3)
logdir = "train_logs"
""",
        'import glob\nassert glob.glob(logdir + "/events.out.tfevents.*")\n',
    ),
    # A slim layer scoped "fc" on constant inputs: `total_loss`, `optimizer`,
    # `logdir` (in the temporary directory); the block trains 1000 steps. A
    # fresh TF1 process: the Supervisor's summary and checkpoint threads do
    # not inherit `Graph.as_default()` and fail where eager execution is on.
    "slim_fc": Preamble(
        """\
rng = np.random.default_rng(0)
inputs = tf.constant(rng.normal(size=(32, 8)), tf.float32)
logits = slim.fully_connected(inputs, 3, activation_fn=None, scope="fc")
total_loss = tf.compat.v1.losses.sparse_softmax_cross_entropy(rng.integers(0, 3, 32), logits)
optimizer = tf.compat.v1.train.GradientDescentOptimizer(0.1)
logdir = "train_logs"
""",
        'assert tf.train.load_checkpoint(logdir).get_tensor("global_step") == 1000\n',
        True,
    ),
    # A layers.cfg with sections [conv1] and [fc] and a slim net with those
    # scopes: per-example cross-entropy `xent`; the check runs one step.
    "cuda_convnet": Preamble(_CUDA_CONVNET, _RUN_TRAIN_OP_ONCE),
    # A 5-D input `x` (NDHWC) and a boolean tensor `is_training`; the check
    # evaluates `y` (batch statistics: per-channel mean ~0).
    "bn3d": Preamble(
        """\
x = tf.compat.v1.placeholder(tf.float32, [2, 4, 8, 8, 3], name="x")
is_training = tf.compat.v1.placeholder_with_default(True, [], name="is_training")
""",
        """\
with tf.compat.v1.Session() as check_sess:
    check_sess.run(tf.compat.v1.global_variables_initializer())
    batch = np.random.default_rng(0).normal(3.0, 2.0, size=(2, 4, 8, 8, 3))
    out = check_sess.run(y, {x: batch})
    np.testing.assert_allclose(out.mean(axis=(0, 1, 2, 3)), 0.0, atol=1e-4)
""",
    ),
    # A 1000x16 `table` (rows of norm ~4), `ids`, `targets`, an SGD `optimizer`;
    # the check runs one step: every looked-up row then has norm <= 1.
    "embedding": Preamble(
        _EMBEDDING,
        """\
with tf.compat.v1.Session() as check_sess:
    check_sess.run(tf.compat.v1.global_variables_initializer())
    check_sess.run(train_op)
    looked_up = check_sess.run(table)[[3, 7, 500]]
    assert np.linalg.norm(looked_up, axis=1).max() <= 1.0
""",
    ),
    # A TF1 ReLU net x -> logits (4-8-3) with an initialized `sess`, and a
    # tf-keras Sequential `model` of the same shape.
    "bounds": Preamble(
        """\
import tf_keras
x = tf.compat.v1.placeholder(tf.float32, [None, 4], name="x")
logits = tf.compat.v1.layers.dense(tf.compat.v1.layers.dense(x, 8, tf.nn.relu), 3)
sess = tf.compat.v1.Session()
sess.run(tf.compat.v1.global_variables_initializer())
model = tf_keras.Sequential([tf_keras.layers.Input((4,)),
                             tf_keras.layers.Dense(8, activation="relu"),
                             tf_keras.layers.Dense(3)])
""",
        "assert bounds.lipschitz_bound(net) > 0\n",
    ),
    # NumPy weights W1 (2x3), b1, W2 (3x1), b2 for bounds.Network.from_numpy.
    "bounds_numpy": Preamble(
        """\
W1, b1 = np.ones((2, 3)), np.zeros(3)
W2, b2 = np.array([[1.0, 0.5]] * 3), np.zeros(2)
""",
        "np.testing.assert_allclose([low, high], [[0.0, 0.0], [6.0, 3.0]])\n",
    ),
    # Placeholders x [None, 16] and images [None, 8, 8, 3], a numpy
    # `first_batch` of images, a session `sess`.
    "reparam": Preamble(
        """\
x = tf.compat.v1.placeholder(tf.float32, [None, 16], name="x")
images = tf.compat.v1.placeholder(tf.float32, [None, 8, 8, 3], name="images")
first_batch = np.random.default_rng(0).normal(size=(32, 8, 8, 3)).astype(np.float32)
sess = tf.compat.v1.Session()
""",
        """\
# data init makes the pre-activations N(0, 1) per unit, so after slim's ReLU
# every channel has mean 1/sqrt(2*pi) = 0.399 and std 0.584 on the batch.
out = sess.run(net, {images: first_batch})
np.testing.assert_allclose(out.mean(axis=(0, 1, 2)), 0.399, atol=0.03)
np.testing.assert_allclose(out.std(axis=(0, 1, 2)), 0.584, atol=0.03)
""",
    ),
    # Placeholders `images` (NHWC), `images_nchw` and a boolean `is_training`.
    "images": Preamble(_IMAGES, ""),
    # A legacy loop: max-norm collection ops and `train_op = minimize(...)`
    # incrementing the global step.
    "legacy_train_op": Preamble(
        """\
inputs = tf.constant(np.random.default_rng(0).normal(size=(8, 4)), tf.float32)
with slim.arg_scope([slim.fully_connected],
                    weights_regularizer=tf1norm.max_norm_regularizer(0.1)):
    net = slim.fully_connected(inputs, 5, scope="hidden")
loss = tf.reduce_mean(tf.square(net - 1.0))
train_op = tf.compat.v1.train.GradientDescentOptimizer(0.1).minimize(
    loss, global_step=tf.compat.v1.train.get_or_create_global_step())
""",
        "",
    ),
    # The embedding preamble (`ids`) without a check.
    "ids": Preamble(_EMBEDDING, ""),
}

DOCSTRING_PREAMBLES = {
    "tf1norm.make_train_step": "tf2_model",
    "tf1norm.attach_transforms": "tf2_fit",
    "tf1norm.migration.compare_steps": "tf2_port",
    "tf1norm.ConstraintHook": "legacy_train_op",
    "tf1norm.adamw": "mlp",
    "tf1norm.batch_norm": "images",
    "tf1norm.bounds": "bounds_numpy",
    "tf1norm.create_train_op": "mlp_step",
    "tf1norm.embedding_lookup": "ids",
    "tf1norm.layer_params": "cuda_convnet",
    "tf1norm.max_norm_regularizer": "x784",
    "tf1norm.slim_layers": "images",
    "tf1norm.slim_layers.batch_norm": "images",
    "tf1norm.slim_scope": "images",
    "tf1norm.summarize_chain": "mlp_logdir",
}
