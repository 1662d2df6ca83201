"""property_search: the input-splitting search's leaf LP, attacks and sub-box bounds."""

import numpy as np
import pytest

from tf1norm.bounds import box_lp, property_attack, property_search, region_walk
from tf1norm.bounds.network import Activation, Dense, Network
from tf1norm.bounds.property_attack import attack_part
from tf1norm.bounds.property_search import PolytopeSearch
from tf1norm.bounds.vnnlib import Polytope


def _stable_relu_net(kernel, bias):
    """``x -> relu(x + 10) - 10 -> x·kernel + bias``: a ReLU that is on over ``[0, 1]^n``.

    The search sees one stable ReLU layer, so the root box is affine and goes
    straight to the leaf LP.
    """
    n = kernel.shape[0]
    return Network(
        [
            Dense(np.eye(n), np.full(n, 10.0)),
            Activation("relu"),
            Dense(kernel, bias - 10.0 * kernel.sum(axis=0)),
        ]
    )


@pytest.fixture
def no_attack(monkeypatch):
    """The search without its attacks, so the leaf LP alone must decide."""
    monkeypatch.setattr(PolytopeSearch, "_attack_best", lambda self, *args: None)


def _in_polytope(net, x, A, b):
    return bool(np.all(A @ net(x[None])[0] - b <= 0))


def test_affine_map_of_a_non_square_network_is_outputs_by_inputs():
    kernel = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])  # 3 inputs, 2 outputs
    net = _stable_relu_net(kernel, np.array([0.5, -0.5]))
    pre = {1: (np.full(3, 9.0), np.full(3, 11.0))}
    units, (matrix, bias) = box_lp.relaxed_maps(net, pre)
    assert units == []
    np.testing.assert_allclose(matrix, kernel.T)
    np.testing.assert_allclose(bias, [0.5, -0.5], atol=1e-12)


def test_leaf_lp_uses_the_map_not_its_transpose_on_a_square_network(no_attack):
    # y0 = x0 + x1, y1 = x1 on [0, 1]²; unsafe: y0 >= 1.98 and y1 <= 0.99, a
    # small triangle at the corner (1, 0.99). With the map transposed
    # (y0 = x0, y1 = x0 + x1) the LP needs x0 >= 1.98 and declares the box empty.
    net = _stable_relu_net(np.array([[1.0, 0.0], [1.0, 1.0]]), np.zeros(2))
    A, b = np.array([[-1.0, 0.0], [0.0, 1.0]]), np.array([-1.98, 0.99])
    search = PolytopeSearch(net, np.zeros(2), np.ones(2), A, b)
    status, x = search.run()
    assert status == "falsified"
    assert search.lps == 1  # decided by the leaf LP, not by an attack
    assert np.all((x >= 0) & (x <= 1)) and _in_polytope(net, x, A, b)


def test_leaf_lp_on_more_inputs_than_outputs(no_attack):
    # y0 = x0 + x1 + x2, y1 = x0 − x2 on [0, 1]³; unsafe: y0 >= 2.95 and y1 <= -0.1
    # needs x0 <= 0.9 (x2 <= 1), so y0 <= 2.9: empty.
    net = _stable_relu_net(np.array([[1.0, 1.0], [1.0, 0.0], [1.0, -1.0]]), np.zeros(2))
    A, b = np.array([[-1.0, 0.0], [0.0, 1.0]]), np.array([-2.95, -0.1])
    status, _ = PolytopeSearch(net, np.zeros(3), np.ones(3), A, b).run()
    assert status == "proved"
    # y0 >= 2.9 and y1 <= -0.05: a sliver near x = (0.93, 1, 0.99) is unsafe,
    # no box corner is (at (1, 1, 1), y1 = 0)
    b = np.array([-2.9, -0.05])
    search = PolytopeSearch(net, np.zeros(3), np.ones(3), A, b)
    status, x = search.run()
    assert status == "falsified" and search.lps == 1 and _in_polytope(net, x, A, b)


def _bump_net(centre, radius):
    """``y = relu(radius − |x0 − c0| − |x1 − c1|)`` on two inputs: zero (and flat) off a diamond."""
    shift = np.array([-centre[0], centre[0], -centre[1], centre[1]])
    return Network(
        [
            Dense(np.array([[1.0, -1.0, 0.0, 0.0], [0.0, 0.0, 1.0, -1.0]]), shift),
            Activation("relu"),
            Dense(-np.ones((4, 1)), np.array([radius])),
            Activation("relu"),
        ]
    )


def test_attack_finds_a_narrow_flat_unsafe_region_from_uniform_samples():
    # y >= 0.002 only on a diamond of radius 0.018 around (0.3, 0.7): 6.5e-4 of
    # the unit square, with a zero gradient everywhere else, so a descent from
    # a few dozen starts (the old attack) never reaches it; 16k samples hit it.
    net = _bump_net((0.3, 0.7), 0.02)
    polytope = Polytope(np.array([[-1.0]]), np.array([-0.002]))
    lower, upper = np.zeros(2), np.ones(2)
    for seed in range(3):
        x = attack_part(net, lower, upper, polytope, seed=seed)
        assert x is not None and net(x[None])[0, 0] >= 0.002
        assert np.all((x >= lower) & (x <= upper))
    assert attack_part(net, lower, upper, polytope, seed=0, samples=0, walks=0) is None


def test_attack_sample_count_shrinks_for_large_networks():
    small = Network([Dense(np.ones((5, 50))), Activation("relu"), Dense(np.ones((50, 5)))])
    large = Network([Dense(np.ones((784, 1024))), Activation("relu"), Dense(np.ones((1024, 10)))])
    assert property_attack.sample_count(small, 16384) == 16384
    assert 0 < property_attack.sample_count(large, 16384) < 1000


def test_attack_samples_box_faces_where_a_sliver_touches_the_box(monkeypatch):
    # y = relu(1e-6 − x0) on [0, 1]^8 is positive only within 1e-6 of the face
    # x0 = 0 (flat zero elsewhere): uniform samples miss it, face samples hit it
    # (8 inputs: the attack's start points include no box vertex).
    kernel = np.zeros((8, 1))
    kernel[0, 0] = -1.0
    net = Network([Dense(kernel, np.array([1e-6])), Activation("relu")])
    polytope = Polytope(np.array([[-1.0]]), np.array([-5e-7]))
    lower, upper = np.zeros(8), np.ones(8)
    x = attack_part(net, lower, upper, polytope, seed=0)
    assert x is not None and x[0] <= 5e-7 and np.all((x >= lower) & (x <= upper))
    monkeypatch.setattr(property_attack, "FACE_SHARE", 0.0)
    assert attack_part(net, lower, upper, polytope, seed=0) is None


def test_region_maps_reproduce_the_network_on_its_activation_region():
    rng = np.random.default_rng(3)
    sizes = (3, 8, 8, 2)
    net = Network.from_numpy(
        [rng.standard_normal((a, b)) for a, b in zip(sizes, sizes[1:])],
        [rng.standard_normal(b) for b in sizes[1:]],
    )
    x = rng.standard_normal(3)
    patterns = region_walk.activation_patterns(net, x)
    walls, (matrix, offset) = region_walk.region_maps(net, patterns)
    np.testing.assert_allclose(matrix @ x + offset, net(x[None])[0], rtol=1e-12, atol=1e-12)
    assert [k for k, _, _ in walls] == sorted(patterns)
    for k, wall, shift in walls:  # each wall's sign at x is the pattern's
        np.testing.assert_array_equal((wall @ x + shift) >= 0, patterns[k])


def test_region_walk_crosses_walls_to_an_unsafe_region():
    # y = relu(x0 − 0.5) + relu(x1 − 0.5) − 0.3·relu(0.5 − x1) on [0, 1]²;
    # unsafe: y >= 0.9, only where x0, x1 > 0.9. From (0.7, 0.2) the region
    # x1 < 0.5 tops out at y = 0.5 against its wall x1 = 0.5, which it crosses.
    net = Network(
        [
            Dense(np.array([[1.0, 0.0, 0.0], [0.0, 1.0, -1.0]]), np.array([-0.5, -0.5, 0.5])),
            Activation("relu"),
            Dense(np.array([[1.0], [1.0], [-0.3]])),
        ]
    )
    polytope = Polytope(np.array([[-1.0]]), np.array([-0.9]))
    lower, upper, seed = np.zeros(2), np.ones(2), np.array([0.7, 0.2])
    patterns = region_walk.activation_patterns(net, seed)
    depth, _, binding = region_walk.region_lp(net, lower, upper, polytope, patterns)
    assert depth == pytest.approx(-0.4)
    assert binding and set(binding) <= {(1, 1), (1, 2)}  # both are the wall x1 = 0.5
    x = region_walk.region_walk(net, lower, upper, polytope, seed)
    assert x is not None and net(x[None])[0, 0] >= 0.9


def _random_net(seed, sizes=(2, 12, 12, 3)):
    rng = np.random.default_rng(seed)
    return Network.from_numpy(
        [rng.standard_normal((a, b)) for a, b in zip(sizes, sizes[1:])],
        [rng.standard_normal(b) * 0.5 for b in sizes[1:]],
    )


def test_leaf_lp_depth_bounds_every_sampled_depth_and_is_exact_on_a_tiny_box():
    from tf1norm.bounds.box_crown import BoxBounds

    net = _random_net(5)
    A, b = np.array([[1.0, -1.0, 0.0], [0.0, 1.0, -1.0]]), np.array([0.3, 0.2])
    rng = np.random.default_rng(0)
    norms = np.linalg.norm(A, axis=1)
    for radius in (1.0, 0.3, 1e-4):
        lower, upper = np.full(2, 0.2 - radius), np.full(2, 0.2 + radius)
        pre = BoxBounds(net, lower[None], upper[None]).pre
        pre = {k: (l[0], u[0]) for k, (l, u) in pre.items()}
        depth, x = box_lp.deepest_point(net, pre, lower, upper, A, b)
        points = lower + (upper - lower) * rng.random((20000, 2))
        sampled = np.min((b - net(points) @ A.T) / norms, axis=1)
        assert depth >= sampled.max() - 1e-9  # a relaxation: never below the truth
        assert np.all((x >= lower) & (x <= upper))
    assert depth == pytest.approx(sampled.max(), abs=1e-3)  # (nearly) affine on a tiny box


@pytest.mark.parametrize("sides", [1, 8])
@pytest.mark.parametrize("threshold", [-0.5, 0.0, 0.5])
def test_search_verdicts_agree_with_and_without_lookahead(threshold, sides, monkeypatch):
    monkeypatch.setattr(property_search, "LOOKAHEAD_SIDES", sides)
    net = _random_net(7)
    A, b = np.array([[-1.0, 1.0, 0.0], [-1.0, 0.0, 1.0]]), np.full(2, threshold)
    lower, upper = -np.ones(2), np.ones(2)
    verdicts = []
    for lookahead in (True, False):
        search = PolytopeSearch(net, lower, upper, A, b, lookahead=lookahead)
        status, x = search.run(deadline=None)
        if status == "falsified":
            assert _in_polytope(net, x, A, b)
        verdicts.append(status)
    points = lower + 2 * np.random.default_rng(1).random((50000, 2))
    reachable = np.any(np.all(net(points) @ A.T - b <= 0, axis=1))
    assert verdicts[0] == verdicts[1] == ("falsified" if reachable else "proved")


def _pre_bounds(net, lower, upper):
    from tf1norm.bounds.box_crown import BoxBounds

    pre = BoxBounds(net, lower[None], upper[None]).pre
    return {k: (l[0], u[0]) for k, (l, u) in pre.items()}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_milp_find_input_agrees_with_sampling_on_a_tiny_network(seed):
    from tf1norm.bounds.milp import MilpProblem

    net = _random_net(seed, sizes=(2, 8, 8, 2))
    lower, upper = -np.ones(2), np.ones(2)
    problem = MilpProblem(net, lower, upper, _pre_bounds(net, lower, upper))
    outputs = net(lower + 2 * np.random.default_rng(seed).random((40000, 2)))
    best = outputs[np.argmax(np.min(outputs, axis=1))]  # the sampled point highest in both
    status, x = problem.find_input(best - 0.01)
    assert status == "feasible" and np.all(net(x[None])[0] >= best - 0.01 - 1e-6)
    assert np.all((x >= lower - 1e-9) & (x <= upper + 1e-9))
    status, x = problem.find_input(outputs.max(axis=0) + [0.05, 0.0])  # y0 above its range
    assert status == "infeasible" and x is None


def test_milp_find_input_is_exact_where_every_single_row_is_reachable():
    # y0 = relu(x) and y1 = relu(−x) on [−1, 1]: each reaches 0.5, both never
    # (one of them is 0), which no per-row bound can show.
    from tf1norm.bounds.milp import MilpProblem

    net = Network([Dense(np.array([[1.0, -1.0]])), Activation("relu")])
    lower, upper = -np.ones(1), np.ones(1)
    problem = MilpProblem(net, lower, upper, _pre_bounds(net, lower, upper))
    assert problem.find_input(np.array([0.5, -1.0]))[0] == "feasible"
    assert problem.find_input(np.array([0.5, 0.5]))[0] == "infeasible"
    assert problem.find_input(np.array([1e-3, 1e-3]))[0] == "infeasible"


@pytest.fixture
def milp_leaves_only(monkeypatch):
    """No leaf LP: every box with at most 6 unstable ReLUs goes to the MILP, whatever its bound."""
    monkeypatch.setattr(property_search, "LEAF_UNSTABLE", -1)
    monkeypatch.setattr(property_search, "MILP_UNSTABLE", 6)
    monkeypatch.setattr(property_search, "MILP_GAP", np.inf)


@pytest.mark.parametrize("threshold", [0.0, 0.25])
def test_search_closes_boxes_by_milp_where_sampling_finds_nothing(
    threshold, no_attack, milp_leaves_only
):
    # on this net and these thresholds CROWN alone leaves boxes open (checked:
    # the search needs at least one MILP) and no sample reaches the polytope
    net = _random_net(7)
    A, b = np.array([[-1.0, 1.0, 0.0], [-1.0, 0.0, 1.0]]), np.full(2, threshold)
    lower, upper = -np.ones(2), np.ones(2)
    points = lower + 2 * np.random.default_rng(1).random((50000, 2))
    assert not np.any(np.all(net(points) @ A.T - b <= 0, axis=1))
    search = PolytopeSearch(net, lower, upper, A, b)
    assert search.run(deadline=None)[0] == "proved"
    assert search.milps >= 1 and search.lps == 0 and search.margin > 0


def test_search_falsifies_by_milp_a_corner_triangle(no_attack, milp_leaves_only):
    # the affine net of the leaf-LP test: unsafe is a small triangle at the
    # corner (1, 0.99) that no box corner or centre hits; the MILP's point does
    net = _stable_relu_net(np.array([[1.0, 0.0], [1.0, 1.0]]), np.zeros(2))
    A, b = np.array([[-1.0, 0.0], [0.0, 1.0]]), np.array([-1.98, 0.99])
    search = PolytopeSearch(net, np.zeros(2), np.ones(2), A, b)
    status, x = search.run()
    assert status == "falsified" and search.milps == 1 and search.lps == 0
    assert np.all((x >= 0) & (x <= 1)) and _in_polytope(net, x, A, b)


def test_only_boxes_with_few_unstable_relus_and_a_bound_near_zero_go_to_the_milp():
    box = property_search._Box(-0.5 * property_search.MILP_GAP, 0, None, None, {}, None, 0)
    assert property_search._wants_milp(box)
    box.unstable = property_search.MILP_UNSTABLE + 1
    assert not property_search._wants_milp(box)
    box.unstable, box.priority = 0, -2 * property_search.MILP_GAP
    assert not property_search._wants_milp(box)
