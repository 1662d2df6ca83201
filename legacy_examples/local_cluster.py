"""A real parameter-server cluster on this machine: max-norm survives distribution.

The parent process picks free ports on 127.0.0.1, then starts one process per
task (this script again, with private ``--job/--task/--cluster`` flags). The ps
tasks serve the variables (``server.join()``); every worker builds the same
graph under ``replica_device_setter``: a 64-32-32-10 MLP on scikit-learn's
digits with ``tf1norm.max_norm_regularizer`` on the hidden kernels, trained by
``tf1norm.create_train_op`` (momentum + ``add_decoupled_weight_decay``; the
max-norm projection runs on the ps right after each update) inside
``MonitoredTrainingSession``; worker 0 is the chief and writes checkpoints.
With ``--sync`` the optimizer is wrapped in ``SyncReplicasOptimizer`` and the
transform chain runs on the aggregated gradients. ``cluster_worker.py`` has
the graph and the training loop, and explains the ps-side mutex that keeps
this example's own reads from seeing an update before its projection.

When the global step reaches ``--steps`` the chief reads the model under that
mutex and writes ``final_model.npz`` to the checkpoint directory; the parent
(which never imports TensorFlow) then prints its test accuracy and its largest
hidden-unit norm, which is at most ``--threshold``:

    python legacy_examples/local_cluster.py --ps 1 --workers 2 [--steps 300] [--sync]

Workers rebuild their ``MonitoredTrainingSession`` when a task dies; the chief
restores the last checkpoint (``tests/test_cluster_faults.py`` kills a worker
and the ps with SIGKILL). Every task dies with the parent (Linux), so no
server outlives it holding a port.
"""

import argparse
import ctypes
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
SNAPSHOT = "final_model.npz"  # the chief's final model, in --logdir
PR_SET_PDEATHSIG = 1  # prctl option: signal this process when its parent exits


def positive(kind):
    """argparse type: a number of ``kind`` that is > 0, with a message naming the value."""

    def convert(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a {kind.__name__}; got {text!r}")
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be > 0; got {text}")
        return value

    return convert


def parse_args(argv=None):
    """The user's flags, and the private ones the parent passes to each task."""
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--ps", type=positive(int), default=1, help="parameter-server tasks")
    parser.add_argument(
        "--workers", type=positive(int), default=2, help="worker tasks (task 0 is the chief)"
    )
    parser.add_argument("--steps", type=positive(int), default=300, help="stop at this global step")
    parser.add_argument("--sync", action="store_true", help="use SyncReplicasOptimizer")
    parser.add_argument("--logdir", help="checkpoint directory (default: a temporary one)")
    parser.add_argument(
        "--threshold", type=positive(float), default=1.0, help="max-norm per hidden unit"
    )
    parser.add_argument(
        "--timeout", type=positive(float), default=300.0, help="seconds the workers get to finish"
    )
    for private in ("--job", "--task", "--cluster", "--events"):
        parser.add_argument(private, help=argparse.SUPPRESS)
    parser.add_argument("--standby", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="show TensorFlow's log lines of every task (hidden by default)",
    )
    return parser.parse_args(argv)


# ---- parent side: no TensorFlow ---------------------------------------------------------


def free_port():
    """A port that was free on 127.0.0.1 a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def local_cluster(ps, workers, pick=free_port):
    """``{"ps": [...], "worker": [...]}`` addresses on 127.0.0.1."""
    return {
        "ps": [f"127.0.0.1:{pick()}" for _ in range(ps)],
        "worker": [f"127.0.0.1:{pick()}" for _ in range(workers)],
    }


def task_argv(cluster, job, task, options):
    """Command line of one task: this script, the options, the private task flags."""
    return [
        sys.executable,
        os.path.join(HERE, "local_cluster.py"),
        *options,
        "--job",
        job,
        "--task",
        str(task),
        "--cluster",
        json.dumps(cluster),
    ]


def start_task(cluster, job, task, options, output=None, standby=False):
    """Start one task; ``output`` is a file for its stdout and stderr (default: inherit).

    With ``standby`` the task imports TensorFlow, prints ``standing by`` and
    waits for a line on its stdin (a pipe, ``process.stdin``) before it
    starts its server: a restart that does not wait for the import.
    """
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    argv = task_argv(cluster, job, task, options + (["--standby"] if standby else []))
    return subprocess.Popen(
        argv,
        env=env,
        stdout=output,
        stderr=subprocess.STDOUT if output else None,
        stdin=subprocess.PIPE if standby else subprocess.DEVNULL,
    )


def stop_all(processes, timeout=30):
    """SIGKILL every process still running and reap it."""
    for process in processes:
        if process.poll() is None:
            process.kill()
    for process in processes:
        process.wait(timeout=timeout)


def wait_for_workers(workers, timeout):
    """Wait for every worker to exit with status 0 within ``timeout`` seconds in all."""
    deadline = time.monotonic() + timeout
    for task, worker in enumerate(workers):
        try:
            worker.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            sys.exit(
                f"local_cluster: worker {task} did not finish within {timeout:g} s "
                "(raise --timeout on a slow machine)"
            )
        if worker.returncode != 0:
            sys.exit(
                f"local_cluster: worker {task} failed with exit status "
                f"{worker.returncode}; its output is above"
            )


def run_parent(args):
    """Start the cluster, wait for the workers, stop every task, report the final model."""
    if args.logdir is None:  # a temporary one, removed after the report
        with tempfile.TemporaryDirectory(prefix="tf1norm_cluster_") as logdir:
            args.logdir = logdir
            return run_parent(args)
    logdir = args.logdir
    options = [
        "--steps",
        str(args.steps),
        "--logdir",
        logdir,
        "--threshold",
        str(args.threshold),
        "--timeout",
        str(args.timeout),
    ]
    options += ["--sync"] if args.sync else []
    options += ["--verbose"] if args.verbose else []
    cluster = local_cluster(args.ps, args.workers)
    print(f"cluster {cluster}, checkpoints in {logdir}", flush=True)
    tasks = []
    try:
        tasks += [start_task(cluster, "ps", i, options) for i in range(args.ps)]
        workers = [start_task(cluster, "worker", i, options) for i in range(args.workers)]
        tasks += workers
        wait_for_workers(workers, args.timeout)
    finally:
        stop_all(tasks)  # also on Ctrl-C (KeyboardInterrupt), a failure or a timeout
    return report(os.path.join(logdir, SNAPSHOT), args.threshold)


def report(path, threshold):
    """Print and return the global step, test accuracy and largest hidden-unit norm (NumPy).

    ``path`` is the chief's ``final_model.npz``.
    """
    sys.path.insert(0, HERE)
    import data

    if not os.path.exists(path):
        sys.exit(f"local_cluster: no final model at {path}: the chief did not finish")
    with np.load(path) as snapshot:
        model = join_partitions(dict(snapshot))
    dataset = data.load()
    accuracy = float(np.mean(np.argmax(forward(model, dataset.x_test), 1) == dataset.y_test))
    norm = max(
        float(np.linalg.norm(model[f"{layer}/kernel"], axis=0).max())
        for layer in ("hidden1", "hidden2")
    )
    step = int(model["global_step"])
    print(
        f"final model at global step {step}: test accuracy {accuracy:.4f}, "
        f"largest hidden-unit norm {norm:.6f} (threshold {threshold:g})",
        flush=True,
    )
    return {"global_step": step, "accuracy": accuracy, "largest_norm": norm}


def join_partitions(model):
    """``{name/part_i: array}`` entries joined into ``{name: array}`` (split along axis 0)."""
    joined, parts = {}, {}
    for name, value in model.items():
        match = re.fullmatch(r"(.*)/part_(\d+)", name)
        if match:
            parts.setdefault(match[1], {})[int(match[2])] = value
        else:
            joined[name] = value
    for name, pieces in parts.items():
        joined[name] = np.concatenate([pieces[i] for i in sorted(pieces)], axis=0)
    return joined


def forward(model, x):
    """Logits of the MLP in ``model`` (a dict of NumPy arrays) for inputs ``x``."""
    for layer in ("hidden1", "hidden2"):
        x = np.maximum(x @ model[f"{layer}/kernel"] + model[f"{layer}/bias"], 0.0)
    return x @ model["output/kernel"] + model["output/bias"]


# ---- task side ----------------------------------------------------------------------------


def die_with_parent():
    """Have the kernel SIGKILL this task when its parent exits (Linux; elsewhere a no-op)."""
    if not sys.platform.startswith("linux"):
        return
    parent = os.getppid()
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent exited before prctl
        os._exit(1)


def run_task(args):
    """A ps (serves until killed) or a worker (trains, then returns)."""
    sys.path.insert(0, HERE)
    import data

    data.quiet_tensorflow(["--verbose"] if args.verbose else [])
    import tf1norm  # noqa: F401  (before TensorFlow)
    import tensorflow as tf

    if args.standby:
        print(f"{args.job} {args.task}: standing by", flush=True)
        if not sys.stdin.readline():
            return  # stdin closed without a go: not needed after all
    cluster = tf.train.ClusterSpec(json.loads(args.cluster))
    server = tf.distribute.Server(cluster, args.job, int(args.task), start=True)
    if args.job == "ps":
        server.join()
    else:
        import cluster_worker

        cluster_worker.train(server, cluster, args)


def main(argv=None):
    args = parse_args(argv)
    if args.job:
        die_with_parent()
        signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C ends a task at once
        return run_task(args)
    return run_parent(args)


if __name__ == "__main__":
    main()
