"""The same random numbers in a TF1 graph program and in its TF2 port.

``DeterministicRandomTestTool(mode="num_random_ops")`` gives the n-th random op
created in a program the op seed ``n``. That makes the *initial weights* of a
TF1 graph and of its TF2 port equal, but not their dropout masks: a
``tf.function`` traces its Python function twice when the first trace creates
variables (and again for every new input signature), and every trace creates
the dropout ops anew, so they get op seeds the TF1 graph never used; an eager
step creates them anew every step. The two sides then draw different masks
and ``compare_steps`` reported a relative difference of 0.4-1.2 after one
step of any model with dropout.

:class:`ReplayedSeeds` keeps the tool (it still seeds every op the replay does
not reach) and adds a record/replay of the op seeds:

* On the TF1 side (:meth:`ReplayedSeeds.record`) every seed the tool hands out
  is recorded in creation order, as an *initializer* seed (asked for while a
  variable is being created: its initial value) or a *step* seed (every other
  random op: dropout, noise).
* On the TF2 side (:meth:`ReplayedSeeds.replay`) the n-th initializer asks for
  a seed gets the n-th recorded initializer seed, and the n-th random op of a
  step gets the n-th recorded step seed, counted afresh in every
  ``tf.function`` trace (keyed by the outermost function graph) and in every
  eager step (:meth:`ReplayedSeeds.begin_step`). A stateful random op with the
  same (graph seed, op seed) draws the same sequence in a ``Session`` and in
  TF2 (one draw per run), so dropout masks match step after step.

It cannot match random ops that take no op seed: stateless random ops
(``tf.random.stateless_*``) and Keras 3 layers (``keras.layers.Dropout``
draws from its own ``keras.random.SeedGenerator``). :attr:`mismatches` then
says so (the TF2 step draws fewer or more seeded random ops than the TF1 one).
"""

import contextlib

from tensorflow.python.framework import random_seed

from tf1norm._src.compat import tf, v1

_MODES = ("num_random_ops", "constant")


class ReplayedSeeds:
    """Record a TF1 program's op seeds; replay them to its TF2 port.

    Args:
      mode: ``DeterministicRandomTestTool`` mode: ``"num_random_ops"`` (each
        random op its own seed) or ``"constant"`` (every op seed 0).
      seed: the graph-level seed both sides use.

    Raises:
      ValueError: ``mode`` is not one of the two modes.

    Example::

        seeds = ReplayedSeeds()
        with seeds.record():          # TF1 side: build the graph, run it
            ...
        with seeds.replay():          # TF2 side
            for batch in batches:
                seeds.begin_step()
                step_fn(*batch)
        assert not seeds.mismatches
    """

    def __init__(self, mode="num_random_ops", seed=42):
        if mode not in _MODES:
            raise ValueError(
                f"compare_steps: `mode` must be one of {', '.join(map(repr, _MODES))} "
                f"(DeterministicRandomTestTool's modes); got {mode!r}."
            )
        self.mode, self.seed = mode, seed
        self.initializer_seeds, self.step_seeds = [], []
        self._replayed_initializers = 0
        self._step_counts = {}  # outermost graph (or eager step number) -> seeds asked
        self._eager_step = 0
        self._creating = 0

    @contextlib.contextmanager
    def record(self):
        """Context for the TF1 side: the tool's scope, every seed recorded."""
        tool = v1.keras.utils.DeterministicRandomTestTool(seed=self.seed, mode=self.mode)
        with tool.scope() as tool_get_seed, self._track_variable_creation():

            def recording_get_seed(op_seed):
                seeds = tool_get_seed(op_seed)
                self._recorded_list().append(seeds[1])
                return seeds

            with _patched_get_seed(recording_get_seed):
                yield self

    @contextlib.contextmanager
    def replay(self):
        """Context for the TF2 side: recorded seeds handed out in the same order."""
        tool = v1.keras.utils.DeterministicRandomTestTool(seed=self.seed, mode=self.mode)
        with tool.scope() as tool_get_seed, self._track_variable_creation():

            def replaying_get_seed(op_seed):
                seeds = tool_get_seed(op_seed)  # keeps the tool's side effects
                replayed = self._next_replayed()
                return seeds if replayed is None else (seeds[0], replayed)

            with _patched_get_seed(replaying_get_seed):
                yield self

    def begin_step(self):
        """Mark the start of a TF2 step: eager random ops count from the first again."""
        self._eager_step += 1

    @property
    def mismatches(self):
        """Why the two sides cannot draw the same numbers (empty list: they can)."""
        reasons = []
        step_counts = sorted(set(self._step_counts.values()))
        if step_counts not in ([], [len(self.step_seeds)]) or (not step_counts and self.step_seeds):
            drawn = " or ".join(map(str, step_counts)) if step_counts else "none"
            reasons.append(
                f"the TF1 step draws {len(self.step_seeds)} seeded random op(s), the TF2 "
                f"step {drawn}: random ops that take no op seed (stateless "
                "tf.random.stateless_* ops; Keras 3 layers such as keras.layers.Dropout, "
                "which draw from their own keras.random.SeedGenerator) cannot be given "
                "TF1's seeds. Use tf.nn.dropout, tf.compat.v1.layers.dropout or tf-keras "
                "Dropout in the port, or compare with dropout off"
            )
        if self.mode == "constant" and any(isinstance(key, tuple) for key in self._step_counts):
            reasons.append(
                "mode='constant' gives every random op the same seed, and eager random ops "
                "with the same seed share one random stream that the tool restarts at each "
                "op, so an eager step cannot draw TF1's numbers. Wrap the step in "
                "tf.function or use mode='num_random_ops'"
            )
        if self._replayed_initializers != len(self.initializer_seeds):
            reasons.append(
                f"TF1 initializers drew {len(self.initializer_seeds)} seeded random op(s), "
                f"TF2 ones {self._replayed_initializers}: initial weights differ unless "
                "both sides use the same TF1-style initializers"
            )
        return reasons

    def _recorded_list(self):
        return self.initializer_seeds if self._creating else self.step_seeds

    def _next_replayed(self):
        """The recorded op seed for this request, or None (the tool decides)."""
        if self._creating:
            index = self._replayed_initializers
            self._replayed_initializers += 1
            recorded = self.initializer_seeds
        else:
            key = _outermost_function_graph() or ("eager step", self._eager_step)
            index = self._step_counts.get(key, 0)
            self._step_counts[key] = index + 1
            recorded = self.step_seeds
        return recorded[index] if index < len(recorded) else None

    @contextlib.contextmanager
    def _track_variable_creation(self):
        def creator(next_creator, **kwargs):
            self._creating += 1
            try:
                return next_creator(**kwargs)
            finally:
                self._creating -= 1

        with v1.variable_creator_scope(creator):  # v1 and v2 variables share the stack
            yield


@contextlib.contextmanager
def _patched_get_seed(get_seed):
    """Replace ``random_seed.get_seed`` (which every stateful random op calls)."""
    with v1.test.mock.patch.object(random_seed, "get_seed", get_seed):
        yield


def _outermost_function_graph():
    """The ``tf.function`` graph being traced (outermost of nested ones), or None."""
    if tf.executing_eagerly():
        return None
    graph = v1.get_default_graph()
    if not hasattr(graph, "outer_graph"):
        return None
    while getattr(graph.outer_graph, "outer_graph", None) is not None:
        graph = graph.outer_graph
    return graph
