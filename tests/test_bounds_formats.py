"""Reading .nnet and ONNX files that the tests write themselves."""

import sys

import numpy as np
import pytest

from tf1norm import bounds
from tf1norm.bounds.conv import Conv2D

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from onnx.reference import ReferenceEvaluator  # noqa: E402


def _write_nnet(path, weights, biases, mins, maxes, means, ranges, comment="test net"):
    """A minimal .nnet writer, independent of tf1norm's (weights as out × in rows)."""
    sizes = [weights[0].shape[1]] + [w.shape[0] for w in weights]
    lines = [
        f"// {comment}",
        "// second comment line",
        f"{len(weights)},{sizes[0]},{sizes[-1]},{max(sizes)},",
        ",".join(str(s) for s in sizes) + ",",
        "0,",
    ]
    for values in (mins, maxes, means, ranges):
        lines.append(",".join(f"{v:.17g}" for v in values) + ",")
    for w, b in zip(weights, biases):
        lines += [",".join(f"{v:.17g}" for v in row) + "," for row in w]
        lines += [f"{v:.17g}," for v in b]
    path.write_text("\n".join(lines) + "\n")


def _nnet_reference(x, weights, biases, means, ranges):
    """The .nnet semantics in NumPy: normalize, ReLU hidden layers, de-normalize."""
    h = (x - means[:-1]) / ranges[:-1]
    for k, (w, b) in enumerate(zip(weights, biases)):
        h = h @ w.T + b
        if k < len(weights) - 1:
            h = np.maximum(h, 0)
    return h * ranges[-1] + means[-1]


@pytest.fixture
def nnet_file(tmp_path, rng):
    sizes = [5, 8, 7, 3]
    weights = [rng.normal(size=(o, i)) for i, o in zip(sizes, sizes[1:])]
    biases = [rng.normal(size=o) for o in sizes[1:]]
    mins, maxes = rng.uniform(-3, -1, 5), rng.uniform(1, 3, 5)
    means, ranges = rng.normal(size=6), rng.uniform(0.5, 4, 6)
    path = tmp_path / "acas_like.nnet"
    _write_nnet(path, weights, biases, mins, maxes, means, ranges)
    return path, weights, biases, mins, maxes, means, ranges


def test_nnet_network_works_in_raw_units(nnet_file, rng):
    path, weights, biases, mins, maxes, means, ranges = nnet_file
    net = bounds.from_nnet(path)
    np.testing.assert_array_equal(net.input_lower, mins)
    np.testing.assert_array_equal(net.input_upper, maxes)
    x = mins + (maxes - mins) * rng.random((100, 5))
    np.testing.assert_allclose(
        net(x), _nnet_reference(x, weights, biases, means, ranges), rtol=1e-10, atol=1e-10
    )
    assert_sound(net, mins, maxes, ["interval", "crown", "alpha-crown", "exact"], rng)


def test_nnet_exposes_its_units_and_refuses_boxes_outside_its_domain(nnet_file):
    path, _, _, mins, maxes, means, ranges = nnet_file
    net = bounds.from_nnet(path)
    np.testing.assert_array_equal(net.input_means, means[:5])
    np.testing.assert_array_equal(net.input_ranges, ranges[:5])
    assert (net.output_mean, net.output_range) == (means[5], ranges[5])
    upper = maxes.copy()
    upper[3] = maxes[3] + 1.0  # e.g. a box given in normalized units
    for call in (
        lambda: bounds.output_bounds(net, mins, upper),
        lambda: bounds.verify(net, mins, upper, np.eye(3)),
    ):
        with pytest.raises(ValueError, match=r"input 3 leaves the network's input domain"):
            call()


def test_write_nnet_round_trips(nnet_file, tmp_path, rng):
    net = bounds.from_nnet(nnet_file[0])
    kernels = [layer.kernel for layer in net.layers if hasattr(layer, "kernel")]
    biases = [layer.bias for layer in net.layers if hasattr(layer, "kernel")]
    copy = tmp_path / "copy.nnet"
    bounds.write_nnet(
        copy, kernels, biases, net.input_lower, net.input_upper, np.zeros(6), np.ones(6)
    )
    x = rng.normal(size=(20, 5))
    np.testing.assert_allclose(bounds.from_nnet(copy)(x), net(x), rtol=1e-12, atol=1e-12)


def test_nnet_errors_name_the_file(tmp_path, nnet_file):
    with pytest.raises(ValueError, match="missing.nnet"):
        bounds.from_nnet(tmp_path / "missing.nnet")
    truncated = tmp_path / "truncated.nnet"
    truncated.write_text("\n".join(nnet_file[0].read_text().splitlines()[:-4]))
    with pytest.raises(ValueError, match="truncated.nnet.*ends early"):
        bounds.from_nnet(truncated)
    garbled = tmp_path / "garbled.nnet"
    garbled.write_text(nnet_file[0].read_text().replace("0,\n", "zero,\n", 1))
    with pytest.raises(ValueError, match="garbled.nnet"):
        bounds.from_nnet(garbled)
    _, weights, biases, mins, maxes, means, ranges = nnet_file
    flat = tmp_path / "flat.nnet"
    _write_nnet(flat, weights, biases, mins, maxes, means, np.r_[ranges[:-1], 0.0])
    with pytest.raises(ValueError, match="flat.nnet.*ranges must be non-zero"):
        bounds.from_nnet(flat)


def assert_sound(network, lower, upper, methods, rng, samples=2000):
    points = lower + (upper - lower) * rng.random((samples, lower.size))
    corners = lower + (upper - lower) * rng.integers(0, 2, (300, lower.size))
    outputs = network(np.concatenate([points, corners]))
    for method in methods:
        low, high = bounds.output_bounds(network, lower, upper, method)
        assert np.all(outputs >= low - 1e-7) and np.all(outputs <= high + 1e-7), method
        assert np.all(np.isfinite(high - low)), method


def _init(name, value):
    return numpy_helper.from_array(np.asarray(value, np.float32), name)


def _save(path, nodes, initializers, input_shape, output_size):
    graph = helper.make_graph(
        nodes,
        "net",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, input_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", output_size])],
        initializer=initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return model


def _dense_model(path, rng):
    inits = [
        _init("W1", rng.normal(size=(6, 4))),
        _init("b1", rng.normal(size=6)),
        _init("W2", rng.normal(size=(6, 5))),
        _init("b2", rng.normal(size=(1, 5))),
        _init("W3", rng.normal(size=(3, 5))),
    ]
    nodes = [
        helper.make_node("Gemm", ["x", "W1", "b1"], ["h1"], transB=1, alpha=0.5, beta=2.0),
        helper.make_node("Relu", ["h1"], ["a1"]),
        helper.make_node("MatMul", ["a1", "W2"], ["h2"]),
        helper.make_node("Add", ["h2", "b2"], ["h3"]),
        helper.make_node("Tanh", ["h3"], ["a2"]),
        helper.make_node("Identity", ["a2"], ["a3"]),
        helper.make_node("Gemm", ["a3", "W3"], ["h4"], transB=1),
        helper.make_node("Sigmoid", ["h4"], ["y"]),
    ]
    return _save(path, nodes, inits, ["N", 4], 3), 4


def _conv_model(path, rng):
    inits = [
        _init("K1", rng.normal(size=(3, 2, 3, 3)) * 0.5),
        _init("c1", rng.normal(size=3)),
        _init("K2", rng.normal(size=(2, 3, 2, 2)) * 0.5),
        _init("W", rng.normal(size=(2 * 3 * 2, 4))),
        numpy_helper.from_array(np.array([-1, 12], np.int64), "flat"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "K1", "c1"], ["h1"], pads=[1, 0, 1, 2], strides=[1, 1]),
        helper.make_node("Relu", ["h1"], ["a1"]),
        helper.make_node("Conv", ["a1", "K2"], ["h2"], strides=[2, 2]),
        helper.make_node("Reshape", ["h2", "flat"], ["f"]),
        helper.make_node("MatMul", ["f", "W"], ["y"]),
    ]
    return _save(path, nodes, inits, ["N", 2, 6, 5], 4), 60


def _residual_model(path, rng):
    inits = [
        _init("K1", rng.normal(size=(2, 2, 3, 3)) * 0.5),
        _init("c1", rng.normal(size=2)),
        _init("K2", rng.normal(size=(2, 2, 3, 3)) * 0.5),
        _init("bias", rng.normal(size=(2, 1, 1))),
        _init("W", rng.normal(size=(3, 32))),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "K1", "c1"], ["h1"], auto_pad="SAME_UPPER"),
        helper.make_node("Relu", ["h1"], ["a1"]),
        helper.make_node("Conv", ["a1", "K2"], ["h2"], pads=[1, 1, 1, 1]),
        helper.make_node("Add", ["x", "h2"], ["s"]),
        helper.make_node("Add", ["s", "bias"], ["t"]),
        helper.make_node("Relu", ["t"], ["a2"]),
        helper.make_node("Flatten", ["a2"], ["f"]),
        helper.make_node("Gemm", ["f", "W"], ["y"], transB=1),
    ]
    return _save(path, nodes, inits, ["N", 2, 4, 4], 3), 32


def _acas_like_model(path, rng):
    """The layout of the VNN-COMP ACAS Xu files: constant Sub/Div on a [N, 1, 1, 5] input."""
    inits = [
        _init("mean", rng.normal(size=(1, 1, 1, 5))),
        _init("range", [[[[2, 4, 0.5, 1, 3]]]]),
        _init("W1", rng.normal(size=(5, 7))),
        _init("b1", rng.normal(size=7)),
        _init("W2", rng.normal(size=(7, 5))),
        _init("b2", rng.normal(size=5)),
        _init("scale", rng.normal(size=5)),
        _init("one", [1.0]),
    ]
    nodes = [
        helper.make_node("Sub", ["x", "mean"], ["c"]),
        helper.make_node("Div", ["c", "range"], ["n"]),
        helper.make_node("Flatten", ["n"], ["f"]),
        helper.make_node("MatMul", ["f", "W1"], ["h1"]),
        helper.make_node("Add", ["h1", "b1"], ["h2"]),
        helper.make_node("Relu", ["h2"], ["a1"]),
        helper.make_node("MatMul", ["a1", "W2"], ["h3"]),
        helper.make_node("Add", ["b2", "h3"], ["h4"]),
        helper.make_node("Mul", ["scale", "h4"], ["h5"]),
        helper.make_node("Sub", ["one", "h5"], ["y"]),
    ]
    return _save(path, nodes, inits, ["N", 1, 1, 5], 5), 5


MODELS = {
    "dense": _dense_model,
    "conv": _conv_model,
    "residual": _residual_model,
    "acas_like": _acas_like_model,
}


def test_onnx_constant_affine_ops_fold_into_the_dense_layers(tmp_path, rng):
    _acas_like_model(tmp_path / "acas.onnx", rng)
    net = bounds.from_onnx(tmp_path / "acas.onnx")
    assert [type(layer).__name__ for layer in net.layers] == ["Dense", "Activation", "Dense"]


def test_onnx_sub_of_two_computed_values_names_the_node(tmp_path, rng):
    nodes = [
        helper.make_node("MatMul", ["x", "W"], ["h"]),
        helper.make_node("Sub", ["h", "h"], ["y"]),
    ]
    path = tmp_path / "sub.onnx"
    _save(path, nodes, [_init("W", rng.normal(size=(3, 2)))], ["N", 3], 2)
    with pytest.raises(ValueError, match=r"Sub \(unnamed, output 'y'\) needs one constant"):
        bounds.from_onnx(path)


@pytest.mark.parametrize("name", list(MODELS))
def test_onnx_networks_match_the_onnx_reference_evaluator(tmp_path, rng, name):
    path = tmp_path / f"{name}.onnx"
    model, size = MODELS[name](path, rng)
    net = bounds.from_onnx(path)
    shape = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim[1:]]
    x = rng.uniform(-1, 1, [40] + shape).astype(np.float32)
    expected = ReferenceEvaluator(model).run(None, {"x": x})[0]
    np.testing.assert_allclose(
        net(x.reshape(40, -1).astype(np.float64)), expected, rtol=1e-4, atol=1e-4
    )
    if name in ("conv", "residual"):
        assert any(isinstance(layer, Conv2D) for layer in net.layers)
    methods = ["interval", "crown", "alpha-crown"] + (["exact"] if name == "conv" else [])
    lower = rng.uniform(-1, 0, size)
    assert_sound(net, lower, lower + 0.5, methods, rng)


def test_onnx_unsupported_op_names_node_and_type(tmp_path, rng):
    nodes = [
        helper.make_node("MatMul", ["x", "W"], ["h"], name="first"),
        helper.make_node("Softplus", ["h"], ["y"], name="smooth"),
    ]
    path = tmp_path / "softplus.onnx"
    _save(path, nodes, [_init("W", rng.normal(size=(3, 2)))], ["N", 3], 2)
    with pytest.raises(ValueError, match="softplus.onnx.*'smooth' of op type Softplus"):
        bounds.from_onnx(path)


def test_onnx_file_errors_name_the_file(tmp_path, monkeypatch):
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a protobuf at all \x00\xff")
    with pytest.raises(ValueError, match="broken.onnx"):
        bounds.from_onnx(broken)
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(ImportError, match=r'pip install "tf1norm\[onnx\]"'):
        bounds.from_onnx(broken)


def _cli_rows(out):
    """``{output: (lower, upper)}`` from the ``tf1norm bounds`` table."""
    rows = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[0].isdigit():
            try:
                rows[int(parts[0])] = (float(parts[1]), float(parts[2]))
            except ValueError:  # the "3 inputs, 2 outputs" line
                continue
    return rows


def test_cli_reads_nnet_and_onnx_files(nnet_file, tmp_path, rng, capsys):
    from tf1norm.cli import app as cli

    path, *_ = nnet_file
    lower, upper = -np.ones(5), np.ones(5)
    argv = ["bounds", str(path), "--lower", "-1", "--upper", "1", "--method", "crown"]
    assert cli.main(argv) == 0
    expected = bounds.output_bounds(bounds.from_nnet(path), lower, upper, "crown")
    rows = _cli_rows(capsys.readouterr().out)
    np.testing.assert_allclose([rows[j] for j in range(3)], np.stack(expected, 1), rtol=1e-5)
    onnx_path = tmp_path / "dense.onnx"
    _dense_model(onnx_path, rng)
    net = bounds.from_onnx(onnx_path)
    for label in range(3):
        verdict = bounds.verify(
            net, np.full(4, -0.01), np.full(4, 0.01), bounds.top_class_spec(3, label)
        )
        status = cli.main(
            [
                "verify",
                str(onnx_path),
                "--lower",
                "-0.01",
                "--upper",
                "0.01",
                "--top-class",
                str(label),
            ]
        )
        assert status == {"proved": 0, "falsified": 3, "unknown": 4}[verdict.status]
        assert verdict.status in capsys.readouterr().out
    # the top class at the centre is proved on a box this small; the others are falsified
    top = int(np.argmax(net(np.zeros((1, 4)))[0]))
    assert (
        bounds.verify(
            net, np.full(4, -0.01), np.full(4, 0.01), bounds.top_class_spec(3, top)
        ).status
        == "proved"
    )


def test_cli_nnet_and_onnx_errors_are_one_line(tmp_path, capsys):
    from tf1norm.cli import app as cli

    bad = tmp_path / "bad.nnet"
    bad.write_text("garbage\n")
    for path, needle in ((bad, "data line 1"), (tmp_path / "missing.onnx", "no model file")):
        assert cli.main(["bounds", str(path), "--lower", "-1", "--upper", "1"]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and needle in err[0] and str(path) in err[0], err
