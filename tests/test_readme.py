"""Every Python block of README.md and docs/*.md, and every public docstring example, runs.

Markdown blocks (the convention is also in docs/development.md; README.md and
every page of docs/ follow it alike):

* A fenced block is either ```` ```python ```` (run by this test) or marked as
  not run by its language: ```` ```bash ````, ```` ```text ````,
  ```` ```console ```` or ```` ```ini ````. A fence without a language, or with
  another one, fails ``test_readme_fences_are_python_or_marked_not_run``.
* Each Python block runs in a fresh ``tf.Graph``, in a fresh temporary working
  directory, after ``COMMON`` (``tf1norm`` imported before TensorFlow, ``tf``,
  ``np``, ``slim``). A block that is a fragment (it uses ``loss``, ``sess``,
  ``x``... without defining them) gets a preamble: put
  ``<!-- readme-test: preamble=NAME -->`` on the line right before its fence,
  and ``NAME`` is a key of ``PREAMBLES`` below, whose ``setup`` runs before the
  block and whose ``check`` (if any) runs after it and asserts what the block
  promises. A fragment without a marker fails with a ``NameError`` and a message
  saying what to add, so a new block cannot rot silently.
* No user-facing block imports a private module (``tf1norm._src``...): examples
  use ``import tf1norm`` and then ``import tensorflow as tf``.

Docstring examples: the ``Example:``/``Example::`` section of every docstring
of ``tf1norm.__all__`` (functions, classes and their methods, modules and their
functions and classes), of ``tf1norm.bounds`` and of ``tf1norm.slim_layers`` runs
the same way; ``DOCSTRING_PREAMBLES`` maps the example's key (the qualified
name, printed in the test id) to a preamble.
"""

import collections
import contextlib
import importlib
import importlib.util
import inspect
import os
import re
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest

import tf1norm
from tf1norm._src.compat import tf, v1

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOC_PAGES = sorted((ROOT / "docs").glob("**/*.md"))
RUN_LANGUAGES = {"python"}
NOT_RUN_LANGUAGES = {"bash", "text", "console", "ini"}
MARKER = re.compile(r"^<!--\s*readme-test:\s*preamble=([\w-]+)\s*-->$")
FENCE = re.compile(r"^\s*```(\S*)\s*$")  # also indented, inside lists

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

HOW_TO_FIX = (
    "If the block is a fragment, put `<!-- readme-test: preamble=NAME -->` on the line before "
    "its fence (README) or map its key in DOCSTRING_PREAMBLES (docstrings), with NAME a "
    "preamble of tests/test_readme.py defining what it uses; if the block is wrong, fix it."
)


# ---------------------------------------------------------------- README parsing


def parse_readme(text, source="README.md"):
    """``(python_blocks, problems)`` of a Markdown page's text; problems are strings.

    ``source`` names the page in messages and keys (README.md's keys are the
    bare ``heading-n``; another page's are ``page:heading-n``).
    """
    blocks, problems, counts = [], [], collections.Counter()
    lines, heading, i = text.splitlines(), "top", 0
    while i < len(lines):
        if lines[i].startswith("#"):
            heading = _slug(lines[i])
        fence = FENCE.match(lines[i])
        if not fence:
            problems.extend(_orphan_marker(lines, i, source))
            i += 1
            continue
        end = _closing_fence(lines, i)
        block, problem = _classify(fence.group(1), lines, (i, end), heading, counts, source)
        blocks.extend([block] if block else [])
        problems.extend([problem] if problem else [])
        i = end + 1
    return blocks, problems


def _slug(heading_line):
    return re.sub(r"[^a-z0-9]+", "-", heading_line.lstrip("#").lower()).strip("-")[:40]


def _closing_fence(lines, start):
    for j in range(start + 1, len(lines)):
        if lines[j].strip() == "```":
            return j
    raise AssertionError(f"line {start + 1}: code fence never closed")


def _classify(language, lines, span, heading, counts, source):
    """A Block for a python fence, or a problem string, or neither."""
    (start, end), where = span, f"{source}:{span[0] + 1}"
    marker = MARKER.match(lines[start - 1].strip()) if start else None
    if language in NOT_RUN_LANGUAGES:
        return None, (
            f"{where}: a readme-test marker on a ```{language} block (not run)" if marker else None
        )
    if language not in RUN_LANGUAGES:
        return None, (
            f"{where}: fence language {language or '(none)'!r}; use ```python to "
            f"run it or one of {sorted(NOT_RUN_LANGUAGES)} for a block not run"
        )
    counts[heading] += 1
    name = marker.group(1) if marker else None
    if name is not None and name not in PREAMBLES:
        return None, f"{where}: unknown preamble {name!r}; defined: {sorted(PREAMBLES)}"
    body = textwrap.dedent("\n".join(lines[start + 1 : end]))
    code = "\n" * (start + 1) + body + "\n"  # padded: tracebacks show the page's line numbers
    key = f"{heading}-{counts[heading]}"
    if source != "README.md":
        key = f"{Path(source).stem}:{key}"
    return Block(key, start + 2, code, name, source), None


def _orphan_marker(lines, i, source):
    is_marker = lines[i].lstrip().startswith("<!--") and "readme-test" in lines[i]
    followed_by_fence = i + 1 < len(lines) and FENCE.match(lines[i + 1])
    if is_marker and not (MARKER.match(lines[i].strip()) and followed_by_fence):
        return [
            f"{source}:{i + 1}: malformed or misplaced marker {lines[i].strip()!r}; write "
            "`<!-- readme-test: preamble=NAME -->` on the line right before a fence"
        ]
    return []


# ---------------------------------------------------------------- docstring extraction

EXAMPLE_HEADER = re.compile(r"^(\s*)Examples?::?\s*$")


def examples_in(doc):
    """The code of every ``Example:``/``Example::`` section of a docstring."""
    lines, found = inspect.cleandoc(doc or "").splitlines(), []
    for i, line in enumerate(lines):
        header = EXAMPLE_HEADER.match(line)
        if not header:
            continue
        body, indent = [], len(header.group(1))
        for following in lines[i + 1 :]:
            if following.strip() and len(following) - len(following.lstrip()) <= indent:
                break
            body.append(following)
        found.append(textwrap.dedent("\n".join(body)).strip() + "\n")
    return found


def _documented_objects():
    """``{qualified name: object}`` of the public API whose docstrings are run."""
    from tf1norm import bounds, slim_layers

    objects = {"tf1norm.bounds": bounds, "tf1norm.slim_layers": slim_layers}
    for name in tf1norm.__all__:
        objects[f"tf1norm.{name}"] = getattr(tf1norm, name)
    for module_name, module in list(objects.items()):
        if not isinstance(module, types.ModuleType):
            continue
        for name, value in vars(module).items():
            if not name.startswith("_") and _defined_in(value, module.__name__):
                objects[f"{module_name}.{name}"] = value
    for qualified, value in list(objects.items()):
        if inspect.isclass(value):
            for name, member in vars(value).items():
                member = getattr(member, "__func__", member)  # classmethod, staticmethod
                if not name.startswith("_") and inspect.isfunction(member):
                    objects[f"{qualified}.{name}"] = member
    return objects


def _defined_in(value, module_name):
    return (inspect.isfunction(value) or inspect.isclass(value)) and getattr(
        value, "__module__", ""
    ).startswith(module_name)


def docstring_examples():
    blocks, seen = [], set()
    for qualified, value in sorted(_documented_objects().items(), key=lambda kv: len(kv[0])):
        if id(value) in seen:  # re-exported: keep the shortest name
            continue
        seen.add(id(value))
        for index, code in enumerate(examples_in(value.__doc__)):
            key = qualified if index == 0 else f"{qualified}#{index + 1}"
            blocks.append(Block(key, 1, code, DOCSTRING_PREAMBLES.get(key)))
    return blocks


# ---------------------------------------------------------------- running


def run_block(block, where, tmp_path, monkeypatch):
    """COMMON, the preamble's setup, the block, the preamble's check, in a fresh graph."""
    monkeypatch.chdir(tmp_path)
    preamble = PREAMBLES[block.preamble] if block.preamble else Preamble("", "")
    if preamble.fresh_process:
        return run_in_fresh_process(block, where, preamble, tmp_path)
    namespace = {"__name__": "readme_block"}
    with contextlib.nullcontext() if preamble.eager else tf.Graph().as_default():
        try:
            exec(
                compile(COMMON + preamble.setup, f"<preamble {block.preamble}>", "exec"), namespace
            )
            try:
                exec(compile(block.code, where, "exec"), namespace)
            except Exception as error:
                raise AssertionError(
                    f"{where} ({block.key}, preamble {block.preamble}) "
                    f"raised {error!r}. {HOW_TO_FIX}"
                ) from error
            exec(compile(preamble.check, f"<check {block.preamble}>", "exec"), namespace)
        finally:
            if isinstance(namespace.get("sess"), v1.Session):
                namespace["sess"].close()


def run_in_fresh_process(block, where, preamble, tmp_path):
    """As ``run_block``, in a new interpreter with eager execution disabled."""
    script = (
        f"{COMMON}tf.compat.v1.disable_eager_execution()\n{preamble.setup}\n"
        f"exec(compile({block.code!r}, {where!r}, 'exec'))\n{preamble.check}"
    )
    (tmp_path / "block.py").write_text(script, encoding="utf-8")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    done = subprocess.run(
        [sys.executable, "block.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, (
        f"{where} ({block.key}, preamble {block.preamble}, fresh "
        f"process) failed:\n{done.stderr[-3000:]}\n{HOW_TO_FIX}"
    )


def _params(blocks):
    """pytest params; blocks needing a fresh interpreter are marked slow."""
    return [
        pytest.param(
            b,
            id=b.key,
            marks=[pytest.mark.slow] if b.preamble and PREAMBLES[b.preamble].fresh_process else [],
        )
        for b in blocks
    ]


def parse_pages(paths):
    """``(blocks, problems)`` of README.md and the docs pages together."""
    blocks, problems = [], []
    for path in paths:
        found, trouble = parse_readme(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))
        blocks.extend(found)
        problems.extend(trouble)
    return blocks, problems


README_BLOCKS, README_PROBLEMS = parse_pages([README])
DOC_BLOCKS, DOC_PROBLEMS = parse_pages(DOC_PAGES)
PRIVATE_IMPORT = re.compile(
    r"\b(from\s+tf1norm(\.\w+)*\._\w*\s+import|import\s+tf1norm(\.\w+)*\._)"
    r"|\btf1norm(\.\w+)*\._[a-z]\w*"
)
DOCSTRING_BLOCKS = docstring_examples()


def test_readme_fences_are_python_or_marked_not_run():
    assert README_PROBLEMS == []
    assert len(README_BLOCKS) >= 1


def test_docs_fences_are_python_or_marked_not_run():
    assert DOC_PROBLEMS == []
    assert len(DOC_PAGES) >= 12 and len(DOC_BLOCKS) >= 20


@pytest.mark.parametrize("block", _params(README_BLOCKS))
def test_readme_block_runs(block, tmp_path, monkeypatch):
    run_block(block, f"README.md:{block.line}", tmp_path, monkeypatch)


@pytest.mark.parametrize("block", _params(DOC_BLOCKS))
def test_docs_block_runs(block, tmp_path, monkeypatch):
    run_block(block, f"{block.source}:{block.line}", tmp_path, monkeypatch)


@pytest.mark.parametrize("path", [README] + DOC_PAGES, ids=lambda p: p.name)
def test_no_private_imports_in_user_facing_examples(path):
    """Examples reach tf1norm through its public names only (``import tf1norm``)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    fenced, offenders = False, []
    for number, line in enumerate(lines, 1):
        if FENCE.match(line):
            fenced = not fenced
        elif fenced and PRIVATE_IMPORT.search(line):
            offenders.append(f"{path.name}:{number}: {line.strip()}")
    assert offenders == [], "use `import tf1norm` then `import tensorflow as tf`"


def test_private_import_pattern():
    assert PRIVATE_IMPORT.search("from tf1norm._src.compat import tf")
    assert PRIVATE_IMPORT.search("import tf1norm._norms as n")
    assert PRIVATE_IMPORT.search("x = tf1norm._norms.safe_norm(w)")
    assert not PRIVATE_IMPORT.search("import tf1norm  # before tensorflow")
    assert not PRIVATE_IMPORT.search("from tf1norm import bounds")
    assert not PRIVATE_IMPORT.search("tf1norm.max_norm_regularizer(1.5)")


@pytest.mark.parametrize("block", _params(DOCSTRING_BLOCKS))
def test_docstring_example_runs(block, tmp_path, monkeypatch):
    run_block(block, f"<docstring of {block.key}>", tmp_path, monkeypatch)


def test_docstring_examples_are_found():
    keys = {block.key for block in DOCSTRING_BLOCKS}
    assert set(DOCSTRING_PREAMBLES) <= keys, "stale DOCSTRING_PREAMBLES entries"
    assert {"tf1norm.max_norm", "tf1norm.renorm", "tf1norm.bounds"} <= keys


def test_every_preamble_is_used():
    used = {b.preamble for b in README_BLOCKS + DOC_BLOCKS} | set(DOCSTRING_PREAMBLES.values())
    assert set(PREAMBLES) - used == set()


def test_parser_flags_unmarked_and_unknown_fences():
    text = (
        "# Head\n```\nplain\n```\n<!-- readme-test: preamble=nope -->\n```python\nx\n```\n"
        "```python\nprint(1)\n```\n<!-- readme-test: preamble=mlp -->\n\n```python\nx\n```\n"
        "<!-- readme-test: preamble=mlp -->\n```bash\nls\n```\n"
    )
    blocks, problems = parse_readme(text)
    assert [(b.key, b.line, b.preamble) for b in blocks] == [
        ("head-2", 10, None),
        ("head-3", 15, None),
    ]
    assert blocks[0].code == "\n" * 9 + "print(1)\n"
    assert len(problems) == 4
    assert "language '(none)'" in problems[0] and "unknown preamble 'nope'" in problems[1]
    assert "misplaced marker" in problems[2] and "```bash block" in problems[3]


def test_unmarked_fragment_fails_with_the_fix(tmp_path, monkeypatch):
    block = Block("fragment-1", 3, "loss_value = sess.run(train_op)\n", None)
    with pytest.raises(AssertionError, match="NameError.*readme-test: preamble=NAME"):
        run_block(block, "README.md:3", tmp_path, monkeypatch)


def test_examples_in_reads_both_docstring_styles():
    doc = (
        "Summary.\n\n    Example::\n\n        a = 1\n        b = a\n\n    Returns:\n"
        "      x\n\n    Example:\n      c = 2\n    References:\n      none\n"
    )
    assert examples_in(doc) == ["a = 1\nb = a\n", "c = 2\n"]


def test_parser_reads_indented_fences_inside_lists():
    blocks, problems = parse_readme("* item:\n\n  ```python\n  y = 1\n  ```\n")
    assert problems == [] and [b.code for b in blocks] == ["\n" * 3 + "y = 1\n"]


API_TARGET = re.compile(r"^:::\s+(\S+)\s*$", re.M)
PUBLIC_MODULES = {"bounds", "cli", "slim_layers"}  # public modules beside tf1norm.__all__


def _resolve(dotted):
    """The object a dotted path names: its longest importable prefix, then attributes."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            value = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            value = getattr(value, name)
        return value
    raise ImportError(dotted)


@pytest.mark.parametrize("page", sorted((ROOT / "docs" / "api").glob("*.md")), ids=lambda p: p.name)
def test_api_pages_name_public_objects(page):
    """Every ``::: target`` of the API reference is public and resolves at run time."""
    targets = API_TARGET.findall(page.read_text(encoding="utf-8"))
    assert targets, f"{page.name} documents nothing"
    for target in targets:
        parts = target.split(".")
        assert parts[0] == "tf1norm" and not any(p.startswith("_") for p in parts), target
        assert parts[1] in set(tf1norm.__all__) | PUBLIC_MODULES, (
            f"{page.name}: {target} is not reached through tf1norm's public surface"
        )
        assert _resolve(target) is not None


def test_api_pages_read_example_blocks_and_rest_tables_as_markdown():
    """docs/griffe_rst.py fences ``Example::`` code and keeps reST tables aligned."""
    spec = importlib.util.spec_from_file_location("griffe_rst", ROOT / "docs" / "griffe_rst.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    doc = (
        "Summary.\n\n=====  ====\nname   what\n=====  ====\n``a``  one\n=====  ====\n\n"
        "Example::\n\n    a = 1\n\n    b = a\n\nReturns:\n  b.\n"
    )
    assert module.markdown_ready(doc).splitlines() == [
        "Summary.",
        "",
        "```text",
        "=====  ====",
        "name   what",
        "=====  ====",
        "``a``  one",
        "=====  ====",
        "```",
        "",
        "Examples:",
        "    ```python",
        "    a = 1",
        "",
        "    b = a",
        "    ```",
        "",
        "Returns:",
        "  b.",
    ]
