"""SIGKILL a worker, then the ps, of a real local cluster: training recovers under max-norm.

One ps and two workers run ``legacy_examples/local_cluster.py``'s tasks as
separate processes on 127.0.0.1 (slow: every process imports TensorFlow), with
and without ``SyncReplicasOptimizer``. Worker 1 is killed with SIGKILL and
restarted, then the ps. A restart is a new process that was started at the
beginning in standby (TensorFlow imported, server not started), so the test
does not wait for a second import. Each worker appends one JSON line per event
to its own file (see ``legacy_examples/cluster_worker.py``): ``session``,
``step`` (global step and largest unit norm of each max-norm kernel, read
under the ps-side mutex the updates hold until their projection),
``checkpoint`` and ``snapshot``. The test reads those files after the run.

Every wait is bounded: all of one test's waits share one deadline
(``TIMEOUT``), and the workers get the same ``--timeout``. Every process is
killed at the end, also on failure, and dies with this process if it is
killed.
"""

import json
import pathlib
import subprocess
import sys
import time

import pytest

import portpicker_free_ports as ports

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "legacy_examples"))

import local_cluster  # noqa: E402  (TensorFlow-free: the tasks import it)

pytestmark = pytest.mark.slow

THRESHOLD = 1.0
TARGET_STEP = 500  # the workers stop here
STEPS_PER_PHASE = 20  # steps a worker logs before the next fault
TIMEOUT = 180  # seconds for all the waits of one test (45-80 s are used on a busy 2-core VM)


class Cluster:
    """The tasks' processes (current and standby), their event files, bounded waits."""

    def __init__(self, tmp_path, sync):
        self.dir, self.logdir = tmp_path, tmp_path / "checkpoints"
        self.spec = local_cluster.local_cluster(1, 2, pick=ports.pick)
        self.options = [
            "--steps",
            str(TARGET_STEP),
            "--logdir",
            str(self.logdir),
            "--threshold",
            str(THRESHOLD),
            "--timeout",
            str(TIMEOUT),
        ]
        self.options += ["--sync"] if sync else []
        self.current, self.standby, self.started = {}, {}, []
        self.kill_times = []  # wall clock (the events' clock) of every SIGKILL
        self.deadline = time.monotonic() + TIMEOUT

    def start(self, job, task, standby=False):
        """Start a task, or with ``standby`` a process that waits to become it."""
        name = f"{job}{task}"
        events = ["--events", str(self.events_file(task))] if job == "worker" else []
        with open(self.output_file(name, standby), "w") as output:
            process = local_cluster.start_task(
                self.spec, job, task, self.options + events, output, standby=standby
            )
        (self.standby if standby else self.current)[name] = process
        self.started.append(process)
        return process

    def kill_and_restart(self, name):
        """SIGKILL task ``name``, then let its standby process take over; its pid."""
        self.kill_times.append(time.time())
        self.current[name].kill()
        self.current[name].wait(timeout=30)
        process = self.current[name] = self.standby.pop(name)
        process.stdin.write(b"go\n")
        process.stdin.close()
        return process.pid

    def output_file(self, name, standby=False):
        """Where a task's (or its standby's) stdout and stderr go."""
        return self.dir / (f"{name}-standby.out" if standby else f"{name}.out")

    def events_file(self, task):
        """Worker ``task``'s JSON lines (all its processes append to it)."""
        return self.dir / f"worker{task}.jsonl"

    def events(self, task):
        """Worker ``task``'s events so far (a line still being written is skipped)."""
        path = self.events_file(task)
        lines = path.read_text().splitlines() if path.exists() else []
        return [json.loads(line) for line in lines if line.endswith("}")]

    def steps(self, task, pid):
        """How many steps process ``pid`` of worker ``task`` has logged."""
        return sum(e["event"] == "step" and e["pid"] == pid for e in self.events(task))

    def standing_by(self):
        """True once every standby process has imported TensorFlow and waits."""
        return all(
            "standing by" in self.output_file(name, standby=True).read_text()
            for name in self.standby
        )

    def wait_until(self, condition, what):
        """Poll ``condition`` until true; fail at the deadline or when a task exits."""
        while not condition():
            if time.monotonic() > self.deadline:
                pytest.fail(f"waiting for {what}: the test's {TIMEOUT} s are over\n{self.tails()}")
            exited = [
                name
                for name, process in {**self.current, **self.standby}.items()
                if process.poll() is not None
            ]
            if exited:
                pytest.fail(f"{exited} exited while waiting for {what}\n{self.tails()}")
            time.sleep(0.2)

    def wait_for_workers(self):
        """Wait for both workers to exit; fail unless both exit with status 0."""
        for name in ("worker0", "worker1"):
            process = self.current[name]
            try:
                process.wait(timeout=max(0.1, self.deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pytest.fail(
                    f"{name} did not finish: the test's {TIMEOUT} s are over\n{self.tails()}"
                )
            assert process.returncode == 0, f"{name} failed\n{self.tails()}"

    def tails(self):
        """The last lines of every task's output, for failure messages."""
        return "\n".join(
            f"--- {path.name}\n" + "\n".join(path.read_text().splitlines()[-15:])
            for path in sorted(self.dir.glob("*.out"))
        )

    def stop(self):
        """SIGKILL and reap every process this cluster started."""
        local_cluster.stop_all(self.started)


def checkpoint_step(logdir):
    """Global step of the newest checkpoint (0 when there is none yet)."""
    state = logdir / "checkpoint"
    if not state.exists():
        return 0
    first = state.read_text().splitlines()[0]  # model_checkpoint_path: "model.ckpt-120"
    return int(first.rsplit("-", 1)[1].rstrip('"'))


def run_with_faults(cluster):
    """Train; kill -9 worker 1 and restart it; then kill -9 the ps and restart it.

    Returns ``(pids of worker 1 before/after, checkpoint step and event counts
    just before the ps kill)``.
    """
    for job, task in (("ps", 0), ("worker", 0), ("worker", 1)):
        cluster.start(job, task)
    first = cluster.current["worker1"].pid
    cluster.start("worker", 1, standby=True)
    cluster.start("ps", 0, standby=True)
    cluster.wait_until(
        lambda: (
            cluster.steps(1, first) >= STEPS_PER_PHASE and checkpoint_step(cluster.logdir) >= 10
        ),
        "steps and a checkpoint",
    )
    cluster.wait_until(cluster.standing_by, "the standby processes")
    restarted = cluster.kill_and_restart("worker1")
    cluster.wait_until(
        lambda: cluster.steps(1, restarted) >= STEPS_PER_PHASE, "steps from the restarted worker 1"
    )
    saved = checkpoint_step(cluster.logdir)
    marks = [len(cluster.events(task)) for task in (0, 1)]
    cluster.kill_and_restart("ps0")
    cluster.wait_for_workers()
    return (first, restarted), saved, marks


def split_at_new_session(events, mark):
    """``(before, after)``: ``after`` starts at the first ``session`` event after ``mark``."""
    starts = [i for i, e in enumerate(events) if i >= mark and e["event"] == "session"]
    assert starts, f"no new session after the ps restart in {events[mark:][:20]}"
    return events[: starts[0]], events[starts[0] :]


def checked_reads(events, kill_times):
    """Largest norm of each read that follows a whole update made after the last restart.

    A session starts from the restored checkpoint, and a checkpoint can hold
    a snapshot taken during an update (the saver takes no mutex); the first
    update of the session projects every kernel again. A worker killed during
    its update can leave such a half step too: the ps aborts the dead
    worker's step, which releases the mutex after some variables were written
    and before their projection. A read counts when the reader's own train
    step, which projects every kernel, started after the last kill: its
    previous ``step`` or ``session`` event (logged before that train step ran)
    is later than the kill.
    """
    session_step, previous, norms = {}, {}, []
    for event in events:  # each pid's events are in the order its process wrote them
        pid = event["pid"]
        if event["event"] == "step" and event["step"] > session_step.get(pid, 0):
            last_kill = max((t for t in kill_times if t < event["time"]), default=None)
            if last_kill is None or previous.get(pid, -1.0) > last_kill + 1e-3:  # times: 1 ms
                norms.append(max(event["norms"]))
        if event["event"] == "session":
            session_step[pid] = event["step"]
        if event["event"] in ("session", "step"):
            previous[pid] = event["time"]
    return norms


def assert_worker_rejoined(events, first, restarted):
    """The restarted worker 1 joined at the current global step, not at zero."""
    last_before = max(e["step"] for e in events if e["event"] == "step" and e["pid"] == first)
    joined = next(e["step"] for e in events if e["event"] == "session" and e["pid"] == restarted)
    assert joined >= last_before, (joined, last_before)


def assert_restored_from_last_checkpoint(chief_before, chief_after, saved):
    """The chief's first session after the ps restart restored its last checkpoint.

    The restored global step can exceed the step in the checkpoint's name
    (asynchronous: another worker finished a step while the saver read).
    """
    session = chief_after[0]
    checkpoints = [e["step"] for e in chief_before if e["event"] == "checkpoint"]
    assert session["restored_from"] == checkpoints[-1], (session, checkpoints[-5:])
    assert saved <= session["restored_from"] <= session["step"], (saved, session)
    assert session["step"] <= TARGET_STEP - 100, session  # the ps was killed mid-training
    return session["step"]


def assert_training_went_on(after, restored):
    """After the ps restart, the workers trained on from ``restored``."""
    steps = [e["step"] for e in after if e["event"] == "step"]
    assert min(steps) >= restored
    assert len(steps) >= (TARGET_STEP - restored) // 2  # (the snapshot is at the target)


def assert_max_norm_held(events, kill_times):
    """Every checked read: largest unit norm at most the threshold, and at it (active)."""
    norms = checked_reads(events, kill_times)
    assert len(norms) >= TARGET_STEP // 2
    assert max(norms) <= THRESHOLD * (1 + 1e-5)
    assert min(norms) >= THRESHOLD * 0.999  # the constraint is active in every read


def assert_final_model(chief_events):
    """The chief's final snapshot: at the target step, max-norm held, it learned."""
    snapshots = [e for e in chief_events if e["event"] == "snapshot"]
    assert snapshots, "the chief wrote no final snapshot"
    final = local_cluster.report(snapshots[-1]["path"], THRESHOLD)
    assert final["global_step"] >= TARGET_STEP
    assert THRESHOLD * 0.999 <= final["largest_norm"] <= THRESHOLD * (1 + 1e-5)
    assert final["accuracy"] >= 0.9


@pytest.mark.parametrize("sync", [False, True], ids=["async", "sync"])
def test_training_survives_worker_and_ps_kills(tmp_path, sync):
    """Worker and ps restarts: rejoin, restore, train on, max-norm held throughout."""
    cluster = Cluster(tmp_path, sync)
    try:
        (first, restarted), saved, marks = run_with_faults(cluster)
    finally:
        cluster.stop()
    events = [cluster.events(task) for task in (0, 1)]
    (chief_before, chief_after), (_, worker_after) = (
        split_at_new_session(events[task], marks[task]) for task in (0, 1)
    )
    assert_worker_rejoined(events[1], first, restarted)
    restored = assert_restored_from_last_checkpoint(chief_before, chief_after, saved)
    assert_training_went_on(chief_after + worker_after, restored)
    assert_max_norm_held(events[0] + events[1], cluster.kill_times)
    assert_final_model(events[0])
