"""Skip-gram word2vec with NCE loss and max-norm on the embedding rows.

The TF1 word2vec tutorial trains ``tf.nn.embedding_lookup`` + ``tf.nn.nce_loss``
with SGD; a max-norm on a large embedding table applied densely costs the
whole table every step. Here ``tf1norm.embedding_lookup(max_norm=1.0)`` caps
only the rows looked up in a step, after the update (torch.nn.Embedding's row
renorm, see the docstring).

Text: the documentation topics that ship with CPython itself
(``pydoc_data.topics``, about 1 MB of English about Python), so nothing is
downloaded.

    python legacy_examples/word2vec_max_norm.py [--steps 3000]
"""

import argparse
import collections
import os
import re
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data  # noqa: E402  (the examples' shared module, TensorFlow-free)

data.quiet_tensorflow()  # before TensorFlow: its C++ log lines only with --verbose

import tf1norm  # noqa: E402
import tensorflow as tf  # noqa: E402  (after tf1norm)

v1 = tf.compat.v1

PROBES = ("list", "string", "function", "class", "file", "true")


def corpus(vocabulary_size):
    """Word ids of the pydoc topics text and the vocabulary (0 = UNK)."""
    from pydoc_data.topics import topics

    words = re.findall(r"[a-z]+", " ".join(topics.values()).lower())
    common = [w for w, _ in collections.Counter(words).most_common(vocabulary_size - 1)]
    index = {w: i + 1 for i, w in enumerate(common)}
    return np.array([index.get(w, 0) for w in words], np.int64), ["UNK"] + common


def skipgram_batch(ids, batch_size, window, rng):
    centers = rng.integers(window, len(ids) - window, batch_size)
    offsets = rng.choice([o for o in range(-window, window + 1) if o], batch_size)
    return ids[centers], ids[centers + offsets]


def neighbours(embeddings, words, probe, count=5):
    unit = embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)
    scores = unit @ unit[words.index(probe)]
    return [words[i] for i in np.argsort(-scores)[1 : count + 1]]


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=3000, help="training steps")
    parser.add_argument(
        "--vocabulary", type=int, default=3000, help="vocabulary size (most frequent words)"
    )
    parser.add_argument("--dim", type=int, default=64, help="embedding dimension")
    parser.add_argument(
        "--max-norm", type=float, default=1.0, help="max L2 norm of each looked-up embedding row"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    data.add_verbose_argument(parser)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    rng = np.random.default_rng(args.seed)
    ids, words = corpus(args.vocabulary)
    print(f"text: pydoc_data.topics, {len(ids):,} words, vocabulary {len(words)}")
    with tf.Graph().as_default():
        v1.set_random_seed(args.seed)
        centers = v1.placeholder(tf.int64, [None])
        contexts = v1.placeholder(tf.int64, [None, 1])
        embeddings = v1.get_variable(
            "embeddings",
            [len(words), args.dim],
            initializer=v1.random_uniform_initializer(-1.0, 1.0),
        )
        nce_weights = v1.get_variable(
            "nce_weights",
            [len(words), args.dim],
            initializer=v1.truncated_normal_initializer(stddev=args.dim**-0.5),
        )
        nce_biases = v1.get_variable("nce_biases", [len(words)], initializer=v1.zeros_initializer())
        embedded = tf1norm.embedding_lookup(embeddings, centers, max_norm=args.max_norm)
        loss = tf.reduce_mean(
            tf.nn.nce_loss(
                nce_weights, nce_biases, contexts, embedded, num_sampled=32, num_classes=len(words)
            )
        )
        train_op = tf1norm.create_train_op(loss, v1.train.GradientDescentOptimizer(1.0))
        with v1.Session() as sess:
            sess.run(v1.global_variables_initializer())
            start = sess.run(embeddings)
            seen, average = set(), 0.0
            for step in range(1, args.steps + 1):
                batch, targets = skipgram_batch(ids, 128, 2, rng)
                seen.update(batch.tolist())
                average += sess.run([train_op, loss], {centers: batch, contexts: targets[:, None]})[
                    1
                ]
                if step % 1000 == 0:
                    print(f"step {step:5d}  average NCE loss {average / 1000:.3f}")
                    average = 0.0
            final = sess.run(embeddings)
    norms = np.linalg.norm(final, axis=1)
    seen = np.array(sorted(seen))
    untouched = np.setdiff1d(np.arange(len(words)), seen)
    print(
        f"rows looked up: {len(seen)} of {len(words)}; "
        f"their largest norm {norms[seen].max():.4f} "
        f"(max_norm {args.max_norm}); rows never looked up unchanged: "
        f"{bool(np.array_equal(final[untouched], start[untouched]))}"
    )
    for probe in PROBES:
        print(f"  nearest to {probe!r}: {', '.join(neighbours(final, words, probe))}")
    return {
        "largest_seen_norm": float(norms[seen].max()),
        "seen": len(seen),
        "untouched_equal": bool(np.array_equal(final[untouched], start[untouched])),
    }


if __name__ == "__main__":
    main()
