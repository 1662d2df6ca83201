"""Migrate seed 002 (max-norm MLP) to TF2 in three stages, proving each equal.

1. the graph program: ``tf.compat.v1.layers.dense`` with
   ``tf1norm.max_norm_regularizer``, momentum, ``clip_by_value``, one
   ``create_train_op`` step per ``sess.run``;
2. the SAME model function inside a ``track_tf1_style_variables`` layer, trained
   by ``tf1norm.make_train_step`` in a ``tf.function`` with the same optimizer
   and transforms; ``tf1norm.migration.compare_steps`` runs stages 1 and 2 side
   by side from the same initial weights (``DeterministicRandomTestTool``) and
   reports the largest relative difference of any variable or slot;
3. a native Keras 3 model (``Dense(kernel_constraint=tf1norm.MaxNorm)``,
   ``keras.optimizers.SGD(momentum=0.9)``) started from the same weights and
   trained by ``model.fit`` with the clip transform attached
   (``tf1norm.attach_transforms``); its weights are compared with stage 1's.

Each stage prints its test accuracy on the digits (offline; ``--data
mnist.npz`` for MNIST).

    python legacy_examples/migrate_seed_002.py [--steps 200] [--data mnist.npz]
"""

import argparse
import os
import sys
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data  # noqa: E402  (the examples' shared module, TensorFlow-free)

data.quiet_tensorflow()  # before TensorFlow: its C++ log lines only with --verbose
warnings.filterwarnings("ignore", category=UserWarning)

import tf1norm  # noqa: E402  (before TensorFlow: tf.compat.v1.layers needs it)
from tf1norm import migration  # noqa: E402
import tensorflow as tf  # noqa: E402  (after tf1norm)

v1 = tf.compat.v1

LAYERS = (("hidden1", 300), ("hidden2", 100), ("output", 10))


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--data", help="path to a Keras mnist.npz (default: sklearn digits)")
    parser.add_argument("--steps", type=_positive_int, default=200, help="training steps per stage")
    parser.add_argument(
        "--compare-steps",
        type=_positive_int,
        default=10,
        help="also print the largest difference after this many steps (at most --steps)",
    )
    parser.add_argument("--batch-size", type=int, default=50, help="examples per step")
    parser.add_argument("--learning-rate", type=float, default=0.01, help="momentum SGD rate")
    parser.add_argument("--threshold", type=float, default=1.0, help="max-norm per hidden unit")
    parser.add_argument("--clip", type=float, default=1.0, help="gradient clip value")
    parser.add_argument("--seed", type=int, default=0, help="data split and batch order")
    data.add_verbose_argument(parser)
    return parser.parse_args(argv)


def _positive_int(text):
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1; got {text!r}")
    return value


def seed_002_model(x, y, threshold):
    """The seed's network, unchanged TF1 code: it returns the mean cross-entropy."""
    layers = tf1norm.require_v1_layers()
    he_init = v1.variance_scaling_initializer(scale=2.0)
    max_norm = tf1norm.max_norm_regularizer(threshold=threshold)
    h = x
    for name, units in LAYERS[:-1]:
        h = layers.dense(
            h, units, tf.nn.relu, kernel_initializer=he_init, kernel_regularizer=max_norm, name=name
        )
    logits = layers.dense(h, LAYERS[-1][1], kernel_initializer=he_init, name=LAYERS[-1][0])
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))


class SeedLayer(tf.keras.layers.Layer):
    """Stage 2: the seed's model function as a layer (the model-mapping shim)."""

    def __init__(self, threshold):
        super().__init__()
        self.threshold = threshold

    @v1.keras.utils.track_tf1_style_variables
    def call(self, x, y):
        return seed_002_model(x, y, self.threshold)


def numpy_accuracy(values, x, y):
    """Test accuracy of the MLP from ``{name: value}`` (stage 1's final weights)."""
    h = x
    for i, (name, _) in enumerate(LAYERS):
        h = h @ values[f"{name}/kernel"] + values[f"{name}/bias"]
        h = np.maximum(h, 0) if i < len(LAYERS) - 1 else h
    return float(np.mean(np.argmax(h, 1) == y))


def stages_1_and_2(batches, args):
    """compare_steps of the graph program and the shim; returns (report, shim layer, init)."""
    transforms = lambda: [tf1norm.clip_by_value(-args.clip, args.clip)]  # noqa: E731
    optimizer = lambda: v1.train.MomentumOptimizer(args.learning_rate, 0.9)  # noqa: E731
    kept = {}

    def build_tf1(inputs):
        loss = seed_002_model(*inputs, args.threshold)
        return tf1norm.create_train_op(loss, optimizer(), transforms=transforms())

    def build_tf2():
        layer, opt = SeedLayer(args.threshold), optimizer()
        step = tf1norm.make_train_step(opt, transforms())
        layer(*[tf.constant(a) for a in batches[0]])  # create the weights (same draws)
        kept.update(layer=layer, initial={v.name.split(":")[0]: v.numpy() for v in layer.variables})
        run = tf.function(lambda x, y: step(lambda: layer(x, y), layer.trainable_variables))
        return run, lambda: migration.tf1_variable_map(layer.variables, opt, step)

    report = migration.compare_steps(build_tf1, build_tf2, batches, steps=len(batches))
    return report, kept["layer"], kept["initial"]


def stage_3(initial, batches, args):
    """Native Keras 3 model from the same initial weights, trained by model.fit."""
    import keras

    model = keras.Sequential(
        [keras.Input((batches[0][0].shape[1],))]
        + [
            keras.layers.Dense(
                units,
                activation="relu" if i < len(LAYERS) - 1 else None,
                kernel_constraint=(
                    tf1norm.MaxNorm(args.threshold) if i < len(LAYERS) - 1 else None
                ),
                name=name,
            )
            for i, (name, units) in enumerate(LAYERS)
        ]
    )
    for layer in model.layers:
        layer.set_weights([initial[f"{layer.name}/kernel"], initial[f"{layer.name}/bias"]])
    model.compile(
        optimizer=keras.optimizers.SGD(args.learning_rate, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    tf1norm.attach_transforms(model, [tf1norm.clip_by_value(-args.clip, args.clip)])
    x = np.concatenate([b[0] for b in batches])
    y = np.concatenate([b[1] for b in batches])
    model.fit(x, y, batch_size=args.batch_size, epochs=1, shuffle=False, verbose=0)
    return model


def training_batches(dataset, args):
    rng = np.random.default_rng(args.seed)
    batches = []
    while len(batches) < args.steps:
        batches += [
            (bx.astype(np.float32), by.astype(np.int32))
            for bx, by in data.batches(dataset.x_train, dataset.y_train, args.batch_size, rng)
        ]
    return batches[: args.steps]


def main(argv=None):
    args = parse_args(argv)
    dataset = data.load(args.data, seed=args.seed)
    batches = training_batches(dataset, args)
    x_test, y_test = dataset.x_test.astype(np.float32), dataset.y_test.astype(np.int32)
    print(f"data: {dataset.name}; {args.steps} steps of {args.batch_size} per stage")
    report, layer, initial = stages_1_and_2(batches, args)
    args.compare_steps = min(args.compare_steps, args.steps)
    early = report.per_step[args.compare_steps - 1]
    accuracy_1 = numpy_accuracy(report.tf1_values, x_test, y_test)
    accuracy_2 = numpy_accuracy(report.tf2_values, x_test, y_test)
    print(f"stage 1  graph program (create_train_op)     test accuracy {accuracy_1:.4f}")
    print(
        f"stage 2  same model code in the TF2 shim     test accuracy {accuracy_2:.4f}; "
        f"largest relative difference to stage 1: {early:.2e} after "
        f"{args.compare_steps} steps, {report.max_difference:.2e} over {args.steps}"
    )
    model = stage_3(initial, batches, args)
    values = {
        f"{l.name}/{part}": w
        for l in model.layers
        for part, w in zip(("kernel", "bias"), l.get_weights())
    }
    difference = max(
        migration.relative_difference(report.tf1_values[n], v) for n, v in values.items()
    )
    accuracy_3 = numpy_accuracy(values, x_test, y_test)
    print(
        f"stage 3  native Keras 3 model (model.fit)    test accuracy {accuracy_3:.4f}; "
        f"largest relative weight difference to stage 1 after {args.steps} steps: "
        f"{difference:.2e}"
    )
    return {
        "accuracy": [accuracy_1, accuracy_2, accuracy_3],
        "shim": early,
        "shim_all": report.max_difference,
        "keras": difference,
        "layer": layer,
    }


if __name__ == "__main__":
    main()
