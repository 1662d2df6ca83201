"""Benchmark: tf1norm's graph-construction and export costs on tf-slim's model zoo.

For each model (built with ``is_training=True``, batch 2, 224×224), every
round builds fresh graphs (model construction itself is not timed) and
measures, in rotating order:

* ``minimize``: ``optimizer.minimize(loss, global_step)`` under ``slim_scope(max_norm=1.0)``;
* ``create_train_op``: ``tf1norm.create_train_op(loss, optimizer)`` (which gets or
  creates and increments the global step) on the same model in its own graph,
  then ``check``: ``tf1norm.check_train_op`` of that op;
* ``Saver.save`` and ``export_plain_checkpoint`` of the same session, under
  ``slim_scope(weight_norm=True)`` (the export computes ``g·v/‖v‖`` per kernel).

Ratios are taken per round (create_train_op / minimize, check / minimize,
export / save) and their medians reported, with the median seconds. The
garbage collector runs before each timed call and is off during it (as in
``timeit``).

    python tools/bench_model_zoo.py [--models resnet_v1_50 vgg_a inception_v1] [--rounds 3]

``--step`` measures the per-step cost instead (``tools/bench_zoo_step.py``):
plain slim train op against ``tf1norm.create_train_op`` under max-norm, weight
norm and spectral norm, with the graph op count per step (issue 21)::

    python tools/bench_model_zoo.py --step --models resnet_v1_50 inception_v1 vgg_a --rounds 7

Targets (issue 12): check ≤ 0.5×, create_train_op ≤ 1.3× minimize, export ≤ 2× save.
"""

import argparse
import gc
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench_zoo_step  # noqa: E402
import model_zoo  # noqa: E402

import tf1norm  # noqa: E402
from tf1norm._src.compat import tf, v1  # noqa: E402


def _timed(fn):
    """Seconds of ``fn()``, with the garbage collector run before and off during, as timeit.

    A full collection walks every Python object of the model graphs built so
    far; left on, it lands in whichever measurement crosses its threshold and
    adds up to ~0.5 s to one side of a ratio at random.
    """
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        result = fn()
        return time.perf_counter() - start, result
    finally:
        gc.enable()


def _optimizer():
    return v1.train.MomentumOptimizer(0.01, 0.9)


def time_minimize(model):
    with tf.Graph().as_default():
        built = model_zoo.build(model, "max_norm", training=True)
        seconds, _ = _timed(
            lambda: _optimizer().minimize(
                built.loss, global_step=v1.train.get_or_create_global_step()
            )
        )
    return {"minimize": seconds}


def time_create_and_check(model):
    with tf.Graph().as_default():
        built = model_zoo.build(model, "max_norm", training=True)
        create, train_op = _timed(lambda: tf1norm.create_train_op(built.loss, _optimizer()))
        check, findings = _timed(lambda: tf1norm.check_train_op(train_op))
    if findings:
        raise RuntimeError(f"check_train_op found problems on {model}: {findings}")
    return {"create_train_op": create, "check": check}


def time_save_and_export(model, directory, export_first):
    with tf.Graph().as_default():
        model_zoo.build(model, "weight_norm", training=True)
        saver = v1.train.Saver()
        with v1.Session() as session:
            session.run(v1.global_variables_initializer())
            save = lambda: saver.save(session, os.path.join(directory, "saved"))  # noqa: E731
            export = lambda: tf1norm.export_plain_checkpoint(  # noqa: E731
                session, os.path.join(directory, "plain")
            )
            order = [("export", export), ("save", save)]
            times = {name: _timed(fn)[0] for name, fn in (order if export_first else order[::-1])}
    return times


def run_model(model, rounds):
    """Per-round times of every measure, in rotating order; returns lists per name."""
    times = {}
    with tempfile.TemporaryDirectory() as directory:
        for r in range(rounds):
            parts = [
                lambda: time_minimize(model),
                lambda: time_create_and_check(model),
                lambda: time_save_and_export(model, directory, r % 2 == 0),
            ]
            parts = parts[r % 3 :] + parts[: r % 3]
            for part in parts:
                for name, seconds in part().items():
                    times.setdefault(name, []).append(seconds)
            print(
                f"  {model} round {r + 1}/{rounds}: "
                + ", ".join(f"{k} {v[-1]:.2f}s" for k, v in times.items()),
                flush=True,
            )
    return times


def ratios(times):
    """Median per-round ratios against the issue's baselines."""

    def median_ratio(a, b):
        return statistics.median(x / y for x, y in zip(times[a], times[b]))

    return {
        "check / minimize": median_ratio("check", "minimize"),
        "create_train_op / minimize": median_ratio("create_train_op", "minimize"),
        "export / save": median_ratio("export", "save"),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--models",
        nargs="+",
        default=["resnet_v1_50", "vgg_a", "inception_v1"],
        choices=sorted(model_zoo.MODELS),
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--step", action="store_true", help="per-step cost (bench_zoo_step)")
    parser.add_argument("--steps", type=int, default=3, help="steps per round (--step)")
    parser.add_argument(
        "--variants",
        nargs="+",
        default=list(bench_zoo_step.VARIANTS),
        choices=list(bench_zoo_step.VARIANTS),
        help="variants of --step (plain is always measured)",
    )
    args = parser.parse_args(argv)
    if args.step:
        return step_main(args)
    rows = []
    for model in args.models:
        times = run_model(model, args.rounds)
        rows.append((model, {k: statistics.median(v) for k, v in times.items()}, ratios(times)))
    print(f"\nmedians of {args.rounds} rounds, seconds and per-round ratios")
    print(
        "| model | minimize (s) | create_train_op | check_train_op | Saver.save (s) | "
        "export_plain_checkpoint |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    for model, medians, r in rows:
        print(
            f"| {model} | {medians['minimize']:.2f} | "
            f"{r['create_train_op / minimize']:.2f}× ({medians['create_train_op']:.2f} s) | "
            f"{r['check / minimize']:.3f}× ({medians['check']:.3f} s) | "
            f"{medians['save']:.2f} | {r['export / save']:.2f}× ({medians['export']:.2f} s) |"
        )


def step_main(args):
    """``--step``: per-step ratios to the plain slim step and op counts, one table per model."""
    results = {}
    for model in args.models:
        results[model] = bench_zoo_step.measure_model(
            model, args.rounds, args.steps, variants=args.variants
        )
    print(f"\nper-step time, {args.rounds} interleaved rounds of {args.steps} steps")
    for model, result in results.items():
        bench_zoo_step.report(model, result)


if __name__ == "__main__":
    main()
