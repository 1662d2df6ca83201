"""Benchmark: cost of the overflow/underflow-safe norms on float32 kernels (issue 13).

    python tools/bench_safe_norms.py [--rounds 15] [--baseline REV] [--quick]

Each kernel runs in two variants interleaved in one process (tools/benchlib.py):
``before`` uses ``tf1norm/_math/projections.py``, ``reparam.py`` and ``embedding.py``
as of git revision ``--baseline`` (default ``HEAD``, read with ``git show``, no
checkout), ``after`` the working tree. Units are ordinary (norms ~1), so the
guard's fast path is what is measured:

* ``max_norm_assignment`` (the train op's projection) on [784, 300] and
  [2048, 2048]: one run = the projected tensor;
* ``unit_norm`` and ``min_max_norm`` on [2048, 2048]: forward;
* ``weight_norm`` on [2048, 2048]: forward + gradient (it is in every step);
* ``spectral_norm`` on [2048, 2048]: forward + gradient;
* ``max_norm_rows`` (embedding) on [1024, 128] rows.
"""

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
import types

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

from benchlib import measure, report  # noqa: E402

import tf1norm  # noqa: E402
from tf1norm.graph import embedding  # noqa: E402
from tf1norm._math import projections  # noqa: E402
from tf1norm._math import range_projections  # noqa: E402
from tf1norm._math import reparam  # noqa: E402
from tf1norm._src.compat import tf, v1  # noqa: E402


def load_baseline(revision, directory):
    """``{module name: module}`` of the baseline's projections, reparam and embedding."""
    modules = {}
    for name in ("projections", "reparam", "embedding"):
        source = subprocess.run(
            ["git", "-C", ROOT, "show", f"{revision}:tf1norm/{name}.py"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        # the live module already registered the lookup's gradient under this name
        source = source.replace("@tf.RegisterGradient(_UPDATE_AFTER)", "")
        source = source.replace(
            "from tf1norm._math.projections import", "from baseline_projections import"
        )
        path = os.path.join(directory, f"baseline_{name}.py")
        with open(path, "w") as handle:
            handle.write(source)
        spec = importlib.util.spec_from_file_location(f"baseline_{name}", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        modules[name] = module
    return modules


KERNELS = {
    "max_norm_assignment [784, 300]": (
        (784, 300),
        lambda m, w: m["projections"].max_norm_assignment(w, 1.0),
        False,
    ),
    "max_norm_assignment [2048, 2048]": (
        (2048, 2048),
        lambda m, w: m["projections"].max_norm_assignment(w, 1.0),
        False,
    ),
    "unit_norm [2048, 2048]": ((2048, 2048), lambda m, w: m["projections"].unit_norm(w), False),
    "min_max_norm [2048, 2048]": (
        (2048, 2048),
        lambda m, w: m["projections"].min_max_norm(w, 0.5, 1.0),
        False,
    ),
    "weight_norm fwd+grad [2048, 2048]": (
        (2048, 2048),
        lambda m, w: m["reparam"].weight_norm(w, tf.ones([w.shape[1]])),
        True,
    ),
    "spectral_norm fwd+grad [2048, 2048]": (
        (2048, 2048),
        lambda m, w: m["reparam"].spectral_norm(w, tf.ones([1, w.shape[1]]))[0],
        True,
    ),
    "max_norm_rows [1024, 128]": (
        (1024, 128),
        lambda m, w: m["embedding"].max_norm_rows(w, 1.0),
        False,
    ),
}


class Variant:
    """One kernel built from one set of modules, in its own graph and session."""

    def __init__(self, name, modules, shape, build, with_gradient):
        self.name = name
        self.graph = tf.Graph()
        with self.graph.as_default():
            value = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
            w = v1.get_variable("w", initializer=value / np.sqrt(shape[0]) * 1.5)
            out = build(modules, w)
            self.fetch = tf.gradients(tf.reduce_sum(out * out), w)[0] if with_gradient else out
            self.fetch = tf.reduce_sum(self.fetch)  # keep the copy out of the timing
            self.sess = v1.Session(graph=self.graph)
            self.sess.run(v1.global_variables_initializer())

    def steps(self, count):
        start = time.perf_counter()
        for _ in range(count):
            self.sess.run(self.fetch)
        return (time.perf_counter() - start) / count


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--baseline", default="HEAD", help="git revision of the 'before' code")
    parser.add_argument("--quick", action="store_true", help="2 rounds of 2 steps (smoke test)")
    args = parser.parse_args(argv)
    rounds, steps, warmup = (2, 2, 1) if args.quick else (args.rounds, 20, 10)
    live = types.SimpleNamespace(
        max_norm_assignment=projections.max_norm_assignment,
        unit_norm=range_projections.unit_norm,
        min_max_norm=range_projections.min_max_norm,
    )
    after = {"projections": live, "reparam": reparam, "embedding": embedding}
    print(
        f"tf {tf.__version__}, tf1norm {tf1norm.__file__}, {os.cpu_count()} cpus, "
        f"{rounds} rounds x {steps} runs, baseline {args.baseline}"
    )
    with tempfile.TemporaryDirectory() as directory:
        before = load_baseline(args.baseline, directory)
        all_results = {}
        for title, (shape, build, grad) in KERNELS.items():
            variants = [
                Variant("before", before, shape, build, grad),
                Variant("after", after, shape, build, grad),
            ]
            all_results[title] = measure(variants, rounds, steps, warmup)
            report(f"float32 {title}", all_results[title])
    return all_results


if __name__ == "__main__":
    main()
