"""Weight-norm data init on tf-slim's zoo: per-layer statistics, first step, openai reference.

For one network (``tools/model_zoo.py``: random N(0, 1) images, labels
``i % 10``, graph seed 0, dropout on as in training) and each of the inits

* ``plain``: the network without weight norm (its own initializers);
* ``none``: ``slim_scope(weight_norm=True)``, no data init;
* ``tf1norm``: ``tf1norm.weight_norm_data_init`` on the training batch;
* ``openai``: the data init of openai/weightnorm's ``tensorflow/nn.py``
  (``reference_data_init`` in ``tools/wn_reference.py``, ported to tf.compat.v1),

it prints, per layer: the pre-activation's mean ``|μ|`` (mean over units of
the per-unit mean) and its per-unit std (root mean square over units) after
the init, the gains ``g`` (median, max), ``‖v‖`` (median over units), the
relative change of the effective kernel in the first Momentum step
``‖ΔW‖/‖W‖`` (whole kernel), and the pre-activation std after that step;
then the loss of every step. ``*`` marks the first layer whose pre-activation
std grew more than 10× in the first step (where the blow-up starts).

    python tools/wn_init_report.py --model vgg_a --batch 2 --inits plain tf1norm openai
    python tools/wn_init_report.py --model resnet_v1_50 --batch 16 --image 64 --steps 20
    python tools/wn_init_report.py --fixture tests/fixtures/weight_norm_reference.npz

``--fixture`` writes the reference statistics the fast test compares
``weight_norm_data_init`` with (``wn_reference.reference_nets``: a 6-layer ReLU
MLP and a 4-layer conv net).
"""

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

import tf1norm  # noqa: E402
from tf1norm._src.compat import tf, v1  # noqa: E402
from wn_reference import (
    Loader,
    layer_tensors,
    reference_data_init,  # noqa: E402
    reference_init_tensors,
    write_fixture,
)

LEARNING_RATE, MOMENTUM = 0.01, 0.9


# --- per-layer statistics (the layers: wn_reference.layer_tensors) ----------------------------


def unit_statistics(values):
    """``(mean over units of |μ_unit|, rms over units of σ_unit)``, float64, last axis = unit."""
    values = np.asarray(values, np.float64).reshape(-1, np.shape(values)[-1])
    return float(np.abs(values.mean(0)).mean()), float(np.sqrt(values.var(0).mean()))


def _norms(v):
    return np.sqrt(np.square(np.asarray(v, np.float64).reshape(-1, v.shape[-1])).sum(0))


def snapshot(session, layers, feed):
    """Per layer: pre-activation statistics, effective kernel, g, ‖v‖ (one ``session.run``)."""
    fetches = [
        (pre, w, g if g is not None else w, v if v is not None else w, b if b is not None else pre)
        for _, pre, b, w, g, v in layers
    ]
    rows = []
    for (name, _, b, _, g, _), (pre, w, gain, v, bias) in zip(layers, session.run(fetches, feed)):
        rows.append(
            {
                "name": name,
                "stats": unit_statistics(pre),
                "w": w,
                "b": None if b is None else np.asarray(bias, np.float64),
                "g": None if g is None else np.asarray(gain, np.float64).ravel(),
                "v_norm": _norms(v),
            }
        )
    return rows


# --- one experiment ------------------------------------------------------------------------------


def build(model, batch, image, weight_norm, seed=0):
    """The network in a fresh graph, with a Momentum(0.01, 0.9) ``create_train_op``."""
    import model_zoo

    graph = tf.Graph()
    with graph.as_default():
        v1.set_random_seed(seed)
        built = model_zoo.build(
            model, "weight_norm" if weight_norm else None, batch=batch, image=image, training=True
        )
        train = tf1norm.create_train_op(
            built.loss, v1.train.MomentumOptimizer(LEARNING_RATE, MOMENTUM)
        )
    return graph, built, train


def batch_feed(built, seed=0):
    shape = built.images.shape.as_list()
    images = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    return {built.images: images, built.labels: np.arange(shape[0], dtype=np.int32) % 10}


def run(model, batch, image, init, steps):
    """``(rows after init, rows after step 1, [losses], init seconds)`` for one init.

    ``losses``: the loss of each step (before its update), then the loss after
    the last step; it stops at a step whose gradient check fails.
    """
    graph, built, train = build(model, batch, image, init != "plain")
    layers = layer_tensors(graph)
    reference = reference_init_tensors(graph) if init == "openai" else []
    with graph.as_default():
        loader = Loader([v for r in reference for v in r[:2] if v is not None])
    feed = batch_feed(built)
    with v1.Session(graph=graph) as session:
        session.run(v1.global_variables_initializer())
        start = time.perf_counter()
        if init == "tf1norm":
            tf1norm.weight_norm_data_init(session, feed)
        elif init == "openai":
            reference_data_init(session, reference, loader, feed)
        seconds = time.perf_counter() - start
        before = snapshot(session, layers, feed)
        losses = _train(session, train, feed, 1)
        after = snapshot(session, layers, feed)
        if len(losses) == 1:
            losses += _train(session, train, feed, steps - 1)
        if all(isinstance(x, float) for x in losses):
            losses.append(float(session.run(built.loss, feed)))
    return before, after, losses, seconds


def _train(session, train, feed, steps):
    losses = []
    for _ in range(steps):
        try:
            losses.append(float(session.run(train, feed)))
        except tf.errors.InvalidArgumentError as error:  # create_train_op's finiteness check
            losses.append(error.message.split("\n")[0][:100])
            break
    return losses


# --- printing ------------------------------------------------------------------------------------


def _median(values):
    return float(np.median(values)) if values is not None else float("nan")


def layer_table(before, after):
    """Lines: per layer the statistics after init and after the first step."""
    lines = [
        f"{'layer':32s} {'|mean|':>8s} {'std':>9s} {'g med':>9s} {'g max':>9s} "
        f"{'|v| med':>9s} {'dW/W':>9s} {'dg/g':>9s} {'dv^':>9s} {'db/std':>9s} {'std@1':>9s}"
    ]
    marked = False
    for b, a in zip(before, after):
        change = np.linalg.norm(a["w"] - b["w"]) / max(np.linalg.norm(b["w"]), 1e-30)
        grew = a["stats"][1] > 10 * b["stats"][1] or not np.isfinite(a["stats"][1])
        mark = "*" if grew and not marked else " "
        marked = marked or grew
        g = b["g"]
        dg, dv = _gain_and_direction_change(b, a)
        lines.append(
            f"{b['name'][-32:]:32s} {b['stats'][0]:8.3g} {b['stats'][1]:9.3g} "
            f"{_median(g):9.3g} {np.max(g) if g is not None else np.nan:9.3g} "
            f"{_median(b['v_norm']):9.3g} {change:9.3g} {dg:9.3g} {dv:9.3g} "
            f"{_bias_change(b, a):9.3g} "
            f"{a['stats'][1]:9.3g}{mark}"
        )
    return lines


def _gain_and_direction_change(b, a):
    """Median over units of ``|Δg|/|g|`` and of ``‖Δ(w/‖w‖)‖`` (the direction's move)."""
    units = [np.asarray(x["w"], np.float64).reshape(-1, x["w"].shape[-1]) for x in (b, a)]
    norms = [np.linalg.norm(u, axis=0) for u in units]
    moved = np.linalg.norm(units[1] / norms[1] - units[0] / norms[0], axis=0)
    return float(np.median(np.abs(norms[1] - norms[0]) / norms[0])), float(np.median(moved))


def _bias_change(b, a):
    """Median over units of ``|Δb|`` in units of the pre-activation std after init."""
    if b["b"] is None:
        return float("nan")
    return float(np.median(np.abs(a["b"] - b["b"]))) / max(b["stats"][1], 1e-30)


def _loss_line(losses):
    floats = [x for x in losses if isinstance(x, float)]
    text = " ".join(f"{x:.4g}" for x in floats)
    if len(floats) < len(losses):
        return f"losses: {text} | stopped: {losses[-1]}"
    ratio = max(floats) / floats[0]
    return (
        f"losses: {text}\ninitial {floats[0]:.4g}  max {max(floats):.4g} ({ratio:.3g}x)  "
        f"final {floats[-1]:.4g}"
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="vgg_a")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--image", type=int, default=224)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument(
        "--inits",
        nargs="+",
        default=["plain", "none", "tf1norm", "openai"],
        choices=["plain", "none", "tf1norm", "openai"],
    )
    parser.add_argument("--fixture", help="write the reference statistics of the small nets here")
    args = parser.parse_args(argv)
    if args.fixture:
        return write_fixture(args.fixture)
    print(
        f"{args.model} {args.image}x{args.image}, batch {args.batch}, "
        f"Momentum({LEARNING_RATE}, {MOMENTUM}), {args.steps} steps"
    )
    for init in args.inits:
        before, after, losses, seconds = run(args.model, args.batch, args.image, init, args.steps)
        print(f"\n== init: {init} ({seconds:.1f} s)")
        print("\n".join(layer_table(before, after)))
        print(_loss_line(losses), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
