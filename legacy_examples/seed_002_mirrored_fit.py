"""Seed 002's max-norm MLP trained by ``model.fit`` under ``tf.distribute.MirroredStrategy``.

The seed's model code is unchanged TF1 code (``tf.compat.v1.layers.dense`` with
``tf1norm.max_norm_regularizer``) inside a ``track_tf1_style_variables`` layer
of a tf-keras model. ``tf1norm.attach_transforms`` makes ``model.fit`` run the
chain around the compiled optimizer's update: decoupled weight decay, then
momentum, then the max-norm projection the regularizer recorded (the step's
last write of each kernel, on every replica).

The script splits the CPU into two logical devices, trains the model on both
(each replica sees half of every global batch), then trains the same model
from the same initial weights on one device with the same global batches, and
prints each run's test accuracy and largest hidden-unit norm, and the largest
relative difference of any weight between the two runs (float32 round-off:
the replicas sum the gradient in another order).

    python legacy_examples/seed_002_mirrored_fit.py [--epochs 10] [--data mnist.npz]
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

HIDDEN = (("hidden1", 300), ("hidden2", 100))


OPTIONS = (  # flag, type, default, help
    ("--epochs", int, 10, "training epochs"),
    ("--batch-size", int, 64, "global batch (both runs)"),
    ("--learning-rate", float, 0.05, "SGD learning rate (momentum 0.9)"),
    ("--threshold", float, 1.0, "max-norm per hidden unit"),
    ("--weight-decay", float, 1e-4, "decoupled decay rate (kernels)"),
    ("--seed", int, 0, "data split, order and initial weights"),
)


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    for flag, kind, default, text in OPTIONS:
        parser.add_argument(flag, type=kind, default=default, help=text)
    parser.add_argument("--data", help="path to a Keras mnist.npz (default: sklearn digits)")
    data.add_verbose_argument(parser)
    return parser.parse_args(argv)


def split_cpu(replicas=2):
    """Two logical CPUs (allowed only before TensorFlow's first op); their names."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * replicas
    )
    return [device.name for device in tf.config.list_logical_devices("CPU")]


class SeedLogits(tf.keras.layers.Layer):
    """The seed's hidden layers and logits: TF1 code in the model-mapping shim."""

    def __init__(self, n_classes, threshold, seed):
        super().__init__()
        self.n_classes, self.threshold, self.seed = n_classes, threshold, seed

    @v1.keras.utils.track_tf1_style_variables
    def call(self, x):
        layers = tf1norm.require_v1_layers()
        he_init = v1.variance_scaling_initializer(scale=2.0, seed=self.seed)
        max_norm = tf1norm.max_norm_regularizer(threshold=self.threshold)
        for name, units in HIDDEN:
            x = layers.dense(
                x, units, tf.nn.relu, kernel_initializer=he_init, kernel_regularizer=max_norm,
                name=name,
            )  # fmt: skip
        return layers.dense(x, self.n_classes, kernel_initializer=he_init, name="output")


def build(strategy, dataset, args, initial=None):
    """The compiled model under ``strategy`` (weights ``initial`` if given), chain attached."""
    with strategy.scope():
        inputs = tf.keras.Input((dataset.x_train.shape[1],))
        logits = SeedLogits(int(dataset.y_train.max()) + 1, args.threshold, args.seed)(inputs)
        model = tf.keras.Model(inputs, logits)
        if initial is not None:
            model.set_weights(initial)
        model.compile(
            optimizer=tf.keras.optimizers.SGD(args.learning_rate, momentum=0.9),
            loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
    chain = [tf1norm.add_decoupled_weight_decay(args.weight_decay, exclude=["bias"])]
    tf1norm.attach_transforms(model, chain)  # + the recorded max-norm projections
    return model


def train(strategy, dataset, args, initial=None):
    """Fit ``args.epochs`` epochs; ``(model, test accuracy, largest hidden-unit norm)``."""
    model = build(strategy, dataset, args, initial)
    batches = (
        tf.data.Dataset.from_tensor_slices((dataset.x_train, dataset.y_train))
        .shuffle(len(dataset.x_train), seed=args.seed)
        .batch(args.batch_size, drop_remainder=True)  # equal halves on the two replicas
    )
    model.fit(batches, epochs=args.epochs, verbose=0)
    logits = model.predict(dataset.x_test, batch_size=256, verbose=0)
    accuracy = float(np.mean(np.argmax(logits, 1) == dataset.y_test))
    return model, accuracy, largest_unit_norm(strategy, model)


def largest_unit_norm(strategy, model):
    """The largest column norm of the hidden kernels, over every replica's copy."""
    kernels = [w for w in model.weights if "hidden" in w.name and "kernel" in w.name]
    return max(
        float(np.max(np.linalg.norm(np.asarray(copy, np.float64), axis=0)))
        for kernel in kernels
        for copy in strategy.experimental_local_results(kernel)
    )


def largest_relative_difference(model, reference):
    """The largest ``migration.relative_difference`` of any weight between two models."""
    return max(
        migration.relative_difference(a, b)
        for a, b in zip(model.get_weights(), reference.get_weights())
    )


def main(argv=None):
    args = parse_args(argv)
    devices = split_cpu()
    tf.keras.utils.set_random_seed(args.seed)
    dataset = data.load(args.data, seed=args.seed)
    print(
        f"data: {dataset.name}, {len(dataset.x_train)} train / {len(dataset.x_test)} test, "
        f"global batch {args.batch_size}, {args.epochs} epochs"
    )
    mirrored = tf.distribute.MirroredStrategy(devices[:2])
    initial = build(tf.distribute.get_strategy(), dataset, args).get_weights()
    model, accuracy, norm = train(mirrored, dataset, args, initial)
    print(
        f"MirroredStrategy ({mirrored.num_replicas_in_sync} replicas): "
        f"test accuracy {accuracy:.4f}, largest unit norm {norm:.7f}"
    )
    reference, ref_accuracy, ref_norm = train(tf.distribute.get_strategy(), dataset, args, initial)
    print(f"one device: test accuracy {ref_accuracy:.4f}, largest unit norm {ref_norm:.7f}")
    difference = largest_relative_difference(model, reference)
    print(f"relative difference, 2 replicas vs one device: {difference:.3g}")
    return {"accuracy": accuracy, "norm": norm, "difference": difference}


if __name__ == "__main__":
    main()
