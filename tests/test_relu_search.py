"""relu_search: ReLU-splitting branch and bound, checked against the exact MILP on small nets."""

import time

import numpy as np
import pytest

from tf1norm.bounds import box_lp, relu_search
from tf1norm.bounds.crown import pre_activation_bounds
from tf1norm.bounds.exact import _big_m_bounds
from tf1norm.bounds.milp import MilpProblem
from tf1norm.bounds.network import Activation, Dense, Network
from tf1norm.bounds.relu_search import ReluSearch, clamp


def _random_net(seed, inputs=20, hidden=(15, 15), outputs=4):
    rng = np.random.default_rng(seed)
    layers, size = [], inputs
    for width in hidden:
        layers += [
            Dense(rng.normal(size=(size, width)) / np.sqrt(size), rng.normal(size=width) * 0.3)
        ]
        layers.append(Activation("relu"))
        size = width
    layers.append(Dense(rng.normal(size=(size, outputs)) / np.sqrt(size), rng.normal(size=outputs)))
    return Network(layers)


def _box(seed, inputs=20, radius=0.5):
    centre = np.random.default_rng(seed + 1000).uniform(-1, 1, inputs)
    return centre - radius, centre + radius


def _exact_minimum(net, lower, upper, row):
    """``min over the box of row·y`` by the big-M MILP (solved to optimality)."""
    problem = MilpProblem(net, lower, upper, _big_m_bounds(net, lower, upper, False))
    bound, _, finished = problem.maximize(-row)
    assert finished
    return -bound


def _in_polytope(net, x, A, b):
    return bool(np.all(A @ net(x[None])[0] - b <= 0))


# (seed, hidden): cases the search decides in about 2 s or less on a shared 2-core CPU
CASES = [(0, (15, 15)), (1, (15, 15)), (1, (12, 12, 12)), (2, (12, 12, 12))]
CASES_FAST = [(0, (15, 15)), (1, (15, 15))]


@pytest.mark.parametrize("seed,hidden", CASES_FAST)
@pytest.mark.parametrize("offset", [-1e-3, 1e-3])
def test_verdict_matches_the_milp_at_a_tiny_margin(seed, hidden, offset):
    """``y_0 − y_1 <= b`` with ``b`` the exact minimum −/+ 1e-3: empty / reachable."""
    net = _random_net(seed, hidden=hidden)
    lower, upper = _box(seed)
    A = np.array([[1.0, -1.0, 0.0, 0.0]])
    minimum = _exact_minimum(net, lower, upper, A[0])
    b = np.array([minimum + offset])
    search = ReluSearch(net, lower, upper, A, b, batch=32, leaf_unstable=100)
    status, x = search.run(time.monotonic() + 60)
    if offset < 0:  # holds: y_0 − y_1 >= minimum > b everywhere
        assert status == "proved"
        assert 0 < search.margin <= -offset + 1e-6
    else:
        assert status == "falsified"
        assert np.all((x >= lower) & (x <= upper))
        assert _in_polytope(net, x, A, b)


@pytest.mark.slow
@pytest.mark.parametrize("seed,hidden", [(0, (12, 12, 12)), (2, (12, 12, 12)), (3, (15, 15))])
def test_three_layer_net_at_a_tiny_margin_is_proved(seed, hidden):
    """Holds by 1e-3 (MILP): proved within 60 s (10-20 s measured)."""
    net = _random_net(seed, hidden=hidden)
    lower, upper = _box(seed)
    A = np.array([[1.0, -1.0, 0.0, 0.0]])
    b = np.array([_exact_minimum(net, lower, upper, A[0]) - 1e-3])
    search = ReluSearch(net, lower, upper, A, b, batch=32, leaf_unstable=100)
    assert search.run(time.monotonic() + 60)[0] == "proved"


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_violated_by_a_tiny_margin_is_falsified(seed):
    """``b`` = exact minimum + 1e-3 on 3-layer nets: a counterexample, checked in NumPy."""
    net = _random_net(seed, hidden=(12, 12, 12))
    lower, upper = _box(seed)
    A = np.array([[1.0, -1.0, 0.0, 0.0]])
    b = np.array([_exact_minimum(net, lower, upper, A[0]) + 1e-3])
    search = ReluSearch(net, lower, upper, A, b, batch=32, leaf_unstable=100)
    status, x = search.run(time.monotonic() + 60)
    assert status == "falsified" and _in_polytope(net, x, A, b)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(3))
def test_two_row_polytope_matches_the_milp(seed):
    """``y_0 <= c_0`` and ``y_1 <= c_1``: the MILP of ``max(y_0 − c_0, y_1 − c_1)`` decides."""
    net = _random_net(seed + 10)
    lower, upper = _box(seed + 10)
    A = np.array([[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]])
    # each row reachable on its own: whether both are at once is the question
    c = np.array([_exact_minimum(net, lower, upper, row) for row in A]) + 0.3
    joint = _joint_minimum(net, lower, upper, c)
    search = ReluSearch(net, lower, upper, A, c, batch=32, leaf_unstable=100)
    status, x = search.run(time.monotonic() + 60)
    assert abs(joint) > 1e-6  # no tie at this seed
    if joint > 0:
        assert status == "proved"
    else:
        assert status == "falsified" and _in_polytope(net, x, A, c)


def _joint_minimum(net, lower, upper, c, shift=1e3):
    """``min over the box of max(y_0 − c_0, y_1 − c_1)`` by the MILP.

    ``max(z_0, z_1) = relu(z_0 − z_1) + relu(z_1 + shift) − shift`` while
    ``z_1 > −shift``: two more layers on the network.
    """
    head = np.zeros((4, 2))
    head[0, 0] = head[1, 1] = 1.0
    maximum = Network(
        list(net.layers)
        + [Dense(head, -c), Dense(np.array([[1.0, 0.0], [-1.0, 1.0]]), np.array([0.0, shift]))]
        + [Activation("relu"), Dense(np.ones((2, 1)), np.array([-shift]))]
    )
    return _exact_minimum(maximum, lower, upper, np.array([1.0]))


@pytest.mark.parametrize("seed", range(4))
def test_crown_only_search_never_proves_a_violated_property(seed):
    """Default leaves (LP at <= 12 unstable ReLUs), 3 s: falsified or unknown, never proved."""
    net = _random_net(seed, hidden=(12, 12, 12))
    lower, upper = _box(seed)
    A = np.array([[1.0, -1.0, 0.0, 0.0]])
    b = np.array([_exact_minimum(net, lower, upper, A[0]) + 1e-3])
    status, x = ReluSearch(net, lower, upper, A, b, batch=64).run(time.monotonic() + 3)
    assert status in ("falsified", "unknown")
    if status == "falsified":
        assert _in_polytope(net, x, A, b)


def test_clamp_fixes_the_split_signs_only():
    pre = {1: (np.array([-1.0, -2.0, 0.5]), np.array([2.0, 1.0, 3.0]))}
    clamped = clamp(pre, [(1, 0, 1), (1, 1, -1)])
    np.testing.assert_array_equal(clamped[1][0], [0.0, -2.0, 0.5])
    np.testing.assert_array_equal(clamped[1][1], [2.0, 0.0, 3.0])
    np.testing.assert_array_equal(pre[1][0], [-1.0, -2.0, 0.5])  # the input is not changed


def test_bounded_lp_is_exact_when_every_relu_is_split():
    """With every unstable ReLU's sign fixed, the LP's depth is the exact one of that piece."""
    net = _random_net(3, inputs=5, hidden=(6,), outputs=2)
    lower, upper = -np.ones(5), np.ones(5)
    pre = pre_activation_bounds(net, lower, upper)
    l, u = pre[1]
    unstable = np.flatnonzero((l < 0) & (u > 0))
    rng = np.random.default_rng(0)
    signs = rng.choice([-1, 1], unstable.size)
    piece = clamp(pre, [(1, int(j), int(s)) for j, s in zip(unstable, signs)])
    A, b = np.array([[1.0, -1.0]]), np.array([0.0])
    depth, x = box_lp.deepest_point(net, piece, lower, upper, A, b, bounded=True)
    # brute force on the piece: sample, keep points with the chosen signs
    xs = rng.uniform(lower, upper, (200_000, 5))
    z = net.layers[0](xs)
    on = np.all((z[:, unstable] >= 0) == (signs > 0), axis=1)
    if not np.any(on):
        assert depth < 0 or np.isnan(depth)
        return
    best = np.max(-(net(xs[on]) @ A.T - b)[:, 0])
    best = min(best, 1.0)  # the LP caps the depth at 1
    assert depth >= best - 1e-6  # the LP is exact on the piece: never below a sample
    assert depth <= best + 0.05  # and sampling gets close to its optimum


def test_split_scores_are_positive_exactly_on_unstable_neurons():
    pre = {1: (np.array([[-1.0, 0.0, -2.0]]), np.array([[1.0, 2.0, -0.5]]))}
    coefficients = {1: np.array([[[0.0, 3.0, 1.0]]])}
    scores = relu_search.branching_scores(coefficients, pre, np.array([0]))
    assert scores[1][0, 0] > 0 and scores[1][0, 1] == 0 and scores[1][0, 2] == 0


# --- solver soundness: what HiGHS does with tiny and huge coefficients -------------------


def _tiny_slope_net():
    """``y = relu(1e-10·x − 5e-7)`` on ``x in [0, 1e4]``: positive exactly for ``x > 5000``."""
    return Network([Dense(np.array([[1e-10]]), np.array([-5e-7])), Activation("relu")])


def test_lp_with_a_tiny_coefficient_is_not_called_infeasible():
    """HiGHS drops |a| <= 1e-9 from its matrix: the split row ``z >= 0`` (``x >= 5000``)
    would read ``0 <= -5e-7`` and the LP "infeasible", closing a subdomain that holds
    every ``x >= 5000``. Folded into the right-hand side, the LP stays feasible."""
    net, lower, upper = _tiny_slope_net(), np.array([0.0]), np.array([1e4])
    pre = {1: (np.array([0.0]), np.array([5e-7]))}  # the "on" side of a split of that ReLU
    A, b = np.array([[1.0]]), np.array([1.0])  # y <= 1: every input of the domain reaches it
    depth, x = box_lp.deepest_point(net, pre, lower, upper, A, b, bounded=True)
    assert np.isfinite(depth) and depth > 0.5
    assert x is not None and _in_polytope(net, x, A, b)


def test_relaxed_rows_contain_every_point_of_the_original_rows():
    from tf1norm.bounds.milp import fold_small_coefficients

    rng = np.random.default_rng(0)
    matrix = rng.normal(size=(30, 8))
    matrix[rng.random(matrix.shape) < 0.3] *= 1e-11
    low, high = -rng.uniform(1, 1e4, 8), rng.uniform(1, 1e4, 8)
    points = rng.uniform(low, high, size=(500, 8))
    values = points @ matrix.T
    row_low, row_high = np.quantile(values, 0.2, axis=0), np.quantile(values, 0.8, axis=0)
    folded, new_low, new_high = fold_small_coefficients(matrix, row_low, row_high, low, high)
    assert np.all(np.abs(folded[folded != 0]) >= 1e-8)
    inside = np.all((values >= row_low) & (values <= row_high), axis=1)
    assert inside.any()
    kept = points[inside] @ folded.T
    assert np.all((kept >= new_low) & (kept <= new_high))
    unbounded = high.copy()
    unbounded[np.flatnonzero(np.abs(matrix).min(axis=0) < 1e-8)[0]] = np.inf
    assert fold_small_coefficients(matrix, row_low, row_high, low, unbounded) is None


def test_a_solver_model_error_is_not_an_infeasibility_proof():
    """SciPy gives HiGHS's model error (a coefficient >= 1e15) status 2, like infeasible."""
    from scipy.optimize import linprog

    from tf1norm.bounds.milp import proved_infeasible

    error = linprog([1.0], A_ub=[[1e16]], b_ub=[1.0], bounds=[(0, 1)], method="highs")
    infeasible = linprog([1.0], A_ub=[[1.0]], b_ub=[-1.0], bounds=[(0, 1)], method="highs")
    assert error.status == 2 and infeasible.status == 2
    assert not proved_infeasible(error) and proved_infeasible(infeasible)
    net = Network([Dense(np.array([[1e16]]), np.array([0.0])), Activation("relu")])
    pre = {1: (np.array([0.0]), np.array([1e16]))}
    depth, _ = box_lp.deepest_point(
        net, pre, np.array([0.0]), np.array([1.0]), np.ones((1, 1)), np.ones(1), bounded=True
    )
    assert not depth == -np.inf  # NaN (solver failed) or a real depth, never "infeasible"


def test_search_refuses_what_it_cannot_encode():
    leaky = Network([Dense(np.eye(2), np.zeros(2)), Activation("leaky_relu")])
    box = (-np.ones(2), np.ones(2))
    with pytest.raises(ValueError, match="leaky_relu"):
        ReluSearch(leaky, *box, np.eye(2), np.zeros(2))
    net = _random_net(0, inputs=2, hidden=(3,), outputs=2)
    with pytest.raises(ValueError, match="batch must be an integer >= 2.*got 1"):
        ReluSearch(net, *box, np.eye(2), np.zeros(2), batch=1)
    with pytest.raises(ValueError, match="leaf_unstable must be >= 0.*got -1"):
        ReluSearch(net, *box, np.eye(2), np.zeros(2), leaf_unstable=-1)


@pytest.mark.parametrize("offset,expected", [(-1e-3, "proved"), (1e-3, "falsified")])
def test_network_without_relus_is_decided_by_the_exact_lp(offset, expected):
    """Two rows of a linear net: the joint minimum needs the LP, not the per-row bounds."""
    rng = np.random.default_rng(5)
    net = Network([Dense(rng.normal(size=(3, 2)), rng.normal(size=2))])
    lower, upper = -np.ones(3), np.ones(3)
    A = np.array([[1.0, 0.0], [-1.0, 1.0]])
    # the smallest t with y_0 <= t and y_1 − y_0 <= t at one input: an LP on y = S·x + y0
    from scipy.optimize import linprog

    outputs = net(np.vstack([np.zeros(3), np.eye(3)]))
    offset_y, slopes = outputs[0], (outputs[1:] - outputs[0]).T
    rows = A @ slopes
    result = linprog(
        np.append(np.zeros(3), 1.0),
        A_ub=np.hstack([rows, -np.ones((2, 1))]),
        b_ub=-(A @ offset_y),
        bounds=[(-1, 1)] * 3 + [(None, None)],
        method="highs",
    )
    t = result.x[-1]
    b = np.full(2, t + offset)
    status, x = ReluSearch(net, lower, upper, A, b).run()
    assert status == expected
    if expected == "falsified":
        assert _in_polytope(net, x, A, b)


def test_milp_with_a_tiny_coefficient_bounds_the_reachable_output():
    """``y = relu(1e-10·x − 0.5)`` reaches 0.5 at ``x = 1e10``; with the tiny slope
    dropped, the big-M row ``a <= z − l(1 − δ)`` reads ``a <= 0`` and the MILP's
    "upper bound" of ``y`` is 0."""
    net = Network([Dense(np.array([[1e-10]]), np.array([-0.5])), Activation("relu")])
    lower, upper = np.array([0.0]), np.array([1e10])
    problem = MilpProblem(net, lower, upper, _big_m_bounds(net, lower, upper, False))
    bound, _, _ = problem.maximize(np.ones(1))
    assert bound >= 0.5 - 1e-6
    status, _ = problem.find_input(np.array([0.4]))
    assert status != "infeasible"  # a candidate to re-run (the relaxation's) or unknown


def test_find_input_with_a_tiny_output_slope_on_an_unbounded_unit_answers_unknown():
    """``y = 1e-10·relu(x)`` with the ReLU's upper bound infinite: no sound folding of
    the output row exists, so the MILP must not be asked (nor crash)."""
    net = Network(
        [Dense(np.eye(1), np.zeros(1)), Activation("relu"), Dense(np.array([[1e-10]]), np.zeros(1))]
    )
    pre = {1: (np.array([-1.0]), np.array([np.inf]))}
    problem = MilpProblem(net, np.array([-1.0]), np.array([1.0]), pre)
    assert problem.find_input(np.array([-1.0])) == ("unknown", None)
