"""VNN-LIB property verdicts, the verify CLI's result file and the benchmark runner.

Every network and property is written by the tests themselves; nothing is downloaded.
"""

import importlib
import os
import re
import sys
import time

import numpy as np
import pytest

from tf1norm import bounds
from tf1norm.bounds import Network, Polytope
from tf1norm.bounds.vnnlib import Case, VnnLibProperty

property_verify = importlib.import_module("tf1norm.bounds.property_verify")
property_search = importlib.import_module("tf1norm.bounds.property_search")
onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tools"))
import run_vnncomp  # noqa: E402


@pytest.fixture(scope="module")
def net():
    """A 3-16-16-2 ReLU net with its box [-1, 1]³ and sampled output range."""
    rng = np.random.default_rng(7)
    sizes = (3, 16, 16, 2)
    network = Network.from_numpy(
        [rng.standard_normal((a, b)) for a, b in zip(sizes, sizes[1:])],
        [rng.standard_normal(b) * 0.3 for b in sizes[1:]],
    )
    x = rng.uniform(-1, 1, (20000, 3))
    return network, -np.ones(3), np.ones(3), network(x)


def prop_of(lower, upper, polytopes, outputs=2):
    return VnnLibProperty("test", lower.size, outputs, [Case(lower, upper, polytopes)])


def test_union_with_one_reachable_part_is_falsified_by_that_part(net):
    network, lower, upper, y = net
    unreachable = Polytope([[1.0, 0.0]], [y[:, 0].min() - 50])
    reachable = Polytope([[-1.0, 0.0], [0.0, 1.0]], [-np.median(y[:, 0]), y[:, 1].max()])
    verdict = bounds.verify(network, prop_of(lower, upper, [unreachable, reachable]), time_limit=30)
    assert verdict.status == "falsified" and verdict.part == 1
    x = verdict.counterexample
    assert np.all(x >= lower) and np.all(x <= upper)
    np.testing.assert_allclose(verdict.counterexample_output, network(x[None])[0])
    assert reachable.contains(verdict.counterexample_output)


def test_union_of_unreachable_parts_is_proved(net):
    network, lower, upper, y = net
    parts = [
        Polytope([[1.0, 0.0]], [y[:, 0].min() - 50]),
        Polytope([[0.0, -1.0]], [-(y[:, 1].max() + 50)]),
    ]
    verdict = bounds.verify(network, prop_of(lower, upper, parts), time_limit=30)
    assert verdict.status == "proved" and np.all(verdict.margins > 0)


def test_conjunction_closed_only_by_joint_reasoning():
    """y = x on [0, 1]: "y <= 0.5" and "y >= 0.6" each hold somewhere, never together."""
    identity = Network.from_numpy([np.eye(1)], [np.zeros(1)], ["linear"])
    polytope = Polytope([[1.0], [-1.0]], [0.5, -0.6])
    lower, upper = np.zeros(1), np.ones(1)
    rows, _ = bounds.output_bounds(identity, lower, upper, "alpha-crown", spec=polytope.A)
    assert np.all(rows <= polytope.b)  # no single row is violated on the whole box
    search = property_search.PolytopeSearch(identity, lower, upper, polytope.A, polytope.b)
    assert search.run() == ("proved", None)
    assert search.boxes == 1  # closed on the root box, without splitting
    assert 0 < search.margin <= 0.05 + 1e-12  # 0.05 at the best weights (1/2, 1/2)
    verdict = bounds.verify(identity, prop_of(lower, upper, [polytope], 1), time_limit=10)
    assert verdict.status == "proved" and verdict.method == "branch and bound"


def test_one_deadline_covers_the_whole_call(net, monkeypatch):
    network, lower, upper, y = net
    slow_step = property_search.PolytopeSearch._step

    def step(self):
        time.sleep(0.05)
        return slow_step(self)

    monkeypatch.setattr(property_search.PolytopeSearch, "_step", step)
    for blind in ("_counterexample", "_attack_best"):  # a search that can never falsify
        monkeypatch.setattr(property_search.PolytopeSearch, blind, lambda *args: None)
    monkeypatch.setattr(property_verify, "attack_part", lambda *args, **kwargs: None)
    hard = Polytope([[1.0, 0.0]], [np.median(y[:, 0])])  # reachable: never proved either
    start = time.monotonic()
    verdict = bounds.verify(network, prop_of(lower, upper, [hard]), time_limit=0.5)
    elapsed = time.monotonic() - start
    assert verdict.status == "unknown" and verdict.method == "time limit"
    assert 0.5 <= elapsed < 1.5


def test_stops_as_soon_as_decided(net, monkeypatch):
    network, lower, upper, y = net

    def never(*args, **kwargs):
        raise AssertionError("ran a step after the verdict was decided")

    reachable = Polytope([[1.0, 0.0]], [np.median(y[:, 0])])
    monkeypatch.setattr(property_verify, "row_bounds", never)
    verdict = bounds.verify(network, prop_of(lower, upper, [reachable, reachable]))
    assert verdict.status == "falsified" and verdict.method == "attack" and verdict.part == 0
    monkeypatch.undo()
    monkeypatch.setattr(property_search, "PolytopeSearch", never)
    easy = Polytope([[1.0, 0.0]], [y[:, 0].min() - 50])
    assert bounds.verify(network, prop_of(lower, upper, [easy])).status == "proved"


def test_property_sizes_must_match_the_network(net):
    network, lower, upper, _ = net
    with pytest.raises(ValueError, match="declares 3 inputs and 4 outputs"):
        bounds.verify(network, prop_of(lower, upper, [Polytope(np.ones((1, 4)), [0])], 4))


def write_onnx(path, network):
    """``network`` (Dense/ReLU layers) as an ONNX file with an ACAS-like input Sub."""
    dense = [layer for layer in network.layers if hasattr(layer, "kernel")]
    inits = [numpy_helper.from_array(np.zeros((1, 3), np.float32), "mean")]
    nodes, value = [helper.make_node("Sub", ["x", "mean"], ["v0"])], "v0"
    for k, layer in enumerate(dense):
        inits += [
            numpy_helper.from_array(layer.kernel.astype(np.float32), f"W{k}"),
            numpy_helper.from_array(layer.bias.astype(np.float32), f"b{k}"),
        ]
        out = "y" if k == len(dense) - 1 else f"h{k}"
        nodes.append(helper.make_node("Gemm", [value, f"W{k}", f"b{k}"], [out]))
        if out != "y":
            nodes.append(helper.make_node("Relu", [out], [f"a{k}"]))
            value = f"a{k}"
    graph = helper.make_graph(
        nodes,
        "net",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2])],
        initializer=inits,
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))


def write_vnnlib(path, threshold):
    """Unsafe: Y_0 <= threshold, on the box [-1, 1]³."""
    lines = [f"(declare-const X_{i} Real)" for i in range(3)]
    lines += [f"(declare-const Y_{j} Real)" for j in range(2)]
    lines += [f"(assert (<= X_{i} 1))\n(assert (>= X_{i} -1))" for i in range(3)]
    path.write_text("\n".join(lines + [f"(assert (<= Y_0 {threshold!r}))"]) + "\n")


@pytest.fixture
def bench_dir(tmp_path, net):
    """A benchmark folder: one network, a violated and a holding property, instances.csv."""
    network, _, _, y = net
    write_onnx(tmp_path / "net.onnx", network)
    write_vnnlib(tmp_path / "violated.vnnlib", float(np.median(y[:, 0])))
    write_vnnlib(tmp_path / "holds.vnnlib", float(y[:, 0].min() - 50))
    (tmp_path / "instances.csv").write_text(
        "net.onnx,violated.vnnlib,30\nnet.onnx,holds.vnnlib,30\n"
    )
    return tmp_path


def test_cli_writes_the_competition_result_file(bench_dir, net, capsys):
    from tf1norm.cli import app as cli

    results = bench_dir / "out.txt"
    code = cli.main(
        [
            "verify",
            str(bench_dir / "net.onnx"),
            str(bench_dir / "violated.vnnlib"),
            "--timeout",
            "30",
            "--results",
            str(results),
        ]
    )
    assert code == 3
    text = results.read_text()
    assert text.startswith("sat\n((X_0 ")
    pairs = re.findall(r"\((X_\d+|Y_\d+) ([^()\s]+)\)", text)
    assert len(pairs) == 5
    values = {name: value for name, value in pairs}
    x = np.array([float(values[f"X_{i}"]) for i in range(3)])
    y = np.array([float(values[f"Y_{j}"]) for j in range(2)])
    np.testing.assert_allclose(bounds.from_onnx(bench_dir / "net.onnx")(x[None])[0], y)
    assert y[0] <= float(np.median(net[3][:, 0]))
    argv = [
        "verify",
        str(bench_dir / "net.onnx"),
        str(bench_dir / "holds.vnnlib"),
        "--results",
        str(results),
    ]
    assert cli.main(argv) == 0 and results.read_text() == "unsat\n"
    (bench_dir / "bad.vnnlib").write_text("(declare-const X_0 Real)\n(assert (foo))\n")
    argv[2] = str(bench_dir / "bad.vnnlib")
    assert cli.main(argv) == 1 and results.read_text() == "error\n"
    assert "bad.vnnlib:2" in capsys.readouterr().err


def test_runner_reports_solved_and_flags_a_wrong_published_verdict(bench_dir, capsys):
    published = bench_dir / "tool.csv"
    published.write_text(
        "bench,./net.onnx,./violated.vnnlib,0.1,violated,1.0\n"
        "bench,./net.onnx,./holds.vnnlib,0.1,SAT,1.0\n"
    )
    assert run_vnncomp.main([str(bench_dir), "--results", str(published)]) == 1
    out = capsys.readouterr().out
    assert "violated.vnnlib" in out and "published sat      solved" in out
    assert "published sat      wrong" in out
    assert "| all                    |      1 |       0 |     1 |" in out


def test_runner_reads_gzipped_files_and_limits(bench_dir, capsys):
    import gzip

    data = (bench_dir / "holds.vnnlib").read_bytes()
    (bench_dir / "holds.vnnlib").unlink()
    (bench_dir / "holds.vnnlib.gz").write_bytes(gzip.compress(data))
    (bench_dir / "instances.csv").write_text(
        "net.onnx,holds.vnnlib,30\nnet.onnx,violated.vnnlib,30\n"
    )
    assert run_vnncomp.main([str(bench_dir), "--limit", "1"]) == 0
    out = capsys.readouterr().out
    assert "unsat" in out and "violated.vnnlib" not in out
