"""Read networks from files: the ``.nnet`` text format and ONNX.

``from_nnet(path)`` reads the Reluplex / ACAS Xu ``.nnet`` format::

    // comment lines (any number)
    numLayers, inputSize, outputSize, maxLayerSize,
    size_0 (= inputSize), size_1, ..., size_numLayers (= outputSize),
    0,                                   (a legacy flag, ignored)
    input mins (inputSize values),
    input maxes (inputSize values),
    means (inputSize values, then one for the outputs),
    ranges (inputSize values, then one for the outputs),
    then for each layer: its weight rows (out rows of in values), then its
    biases (out rows of one value).

Hidden layers are ReLU, the output layer is linear. The file's network works
on normalized units: ``x_n = (x - mean) / range`` and ``y = y_n·range_out +
mean_out``. Both maps are folded into the first and last Dense layers, so the
returned ``Network`` takes and gives raw units. Reluplex also clips inputs to
``[min, max]``; that clipping is not part of the network: the file's box is
given as ``network.input_lower`` / ``network.input_upper`` (use them as the
bounds box, inside which clipping does nothing).

``from_onnx(path)`` reads an ONNX model (needs ``pip install "tf1norm[onnx]"``)
with the ops Gemm (transA=0, transB, alpha, beta), MatMul (data × constant),
Add (a constant: a bias; two computed values: a residual ``Add`` layer),
Sub / Mul / Div by a constant (an input normalization, as in the VNN-COMP
ACAS Xu files; folded with the neighbouring dense layers),
Relu, LeakyRelu, Sigmoid, Tanh, Flatten (axis 1), Reshape to ``[batch, -1]``,
Conv (2-D, group 1, explicit pads / VALID / SAME_UPPER, strides, dilations),
Identity and Constant. The returned network's input and output are the ONNX
input and output flattened in ONNX's own row-major order (NCHW for images:
give the box in that order); convolutions run internally in NHWC order with
``Permute`` layers at the boundaries (see ``onnx_import``).
"""

import numpy as np

from tf1norm.bounds.network import Network


def _numbers(line):
    return [float(token) for token in line.replace(",", " ").split()]


def _nnet_lines(path):
    try:
        with open(path, encoding="utf-8") as handle:
            lines = [line.strip() for line in handle]
    except UnicodeDecodeError as error:
        raise ValueError(
            f"from_nnet: {path!r} is not a text .nnet file (byte {error.start} is "
            "not UTF-8 text); pass a .nnet file as NNet's writeNNet or "
            "tf1norm.bounds.write_nnet writes it."
        ) from None
    except OSError as error:
        raise ValueError(f"from_nnet: cannot read {path!r}: {error.strerror or error}.") from error
    return [line for line in lines if line and not line.startswith("//")]


def _shortened(line, keep=80):
    """``repr`` of ``line``'s first ``keep`` characters, ``...`` marking a longer line."""
    return repr(line[:keep]) + (f"... ({len(line)} characters)" if len(line) > keep else "")


class _Reader:
    """Numbers from the ``.nnet`` lines, one line at a time, with errors naming the file."""

    def __init__(self, path, lines):
        self.path, self.lines, self.position = path, lines, 0

    def line(self, count, what):
        if self.position >= len(self.lines):
            raise ValueError(f"from_nnet: {self.path!r} ends early; expected {what}.")
        try:
            values = _numbers(self.lines[self.position])
        except ValueError as error:
            raise ValueError(
                f"from_nnet: {self.path!r}, data line {self.position + 1}: "
                f"expected {what}; got {_shortened(self.lines[self.position])}."
            ) from error
        self.position += 1
        if count is not None and len(values) < count:
            raise ValueError(
                f"from_nnet: {self.path!r}, data line {self.position}: expected "
                f"{count} numbers ({what}); got {len(values)}."
            )
        return np.array(values[:count] if count is not None else values)

    def matrix(self, rows, columns, what):
        return np.stack([self.line(columns, what) for _ in range(rows)])


def _read_header(reader):
    counts = reader.line(4, "numLayers, inputSize, outputSize, maxLayerSize").astype(int)
    layers, inputs, outputs = counts[:3]
    sizes = reader.line(layers + 1, f"{layers + 1} layer sizes").astype(int)
    if sizes[0] != inputs or sizes[-1] != outputs:
        raise ValueError(
            f"from_nnet: {reader.path!r}: layer sizes {sizes.tolist()} do not "
            f"start with inputSize {inputs} and end with outputSize {outputs}."
        )
    reader.line(None, "the legacy flag line")
    box = reader.line(inputs, "input mins"), reader.line(inputs, "input maxes")
    means, ranges = reader.line(inputs + 1, "means"), reader.line(inputs + 1, "ranges")
    if np.any(ranges == 0):
        raise ValueError(
            f"from_nnet: {reader.path!r}: the normalization ranges must be "
            f"non-zero; got {ranges.tolist()}."
        )
    return sizes, box, means, ranges


def from_nnet(path):
    """A ``Network`` in raw units from a ``.nnet`` file (see the module docstring).

    Args:
      path: the ``.nnet`` file.

    Units: the returned network takes and gives **raw** units (the file's
    normalization is folded in). A VNN-COMP property for the same network
    (ACAS Xu's ``prop_*.vnnlib``) is written in *normalized* units for the
    ONNX files: convert a normalized box with ``x = x_n·input_ranges +
    input_means`` and outputs with ``y = y_n·output_range + output_mean``
    (or use ``from_onnx`` on the ONNX file, which works in normalized units).

    Returns:
      a ``Network`` (ReLU hidden layers, linear output) with the file's input
      normalization and output de-normalization folded in, and the extra
      attributes ``input_lower`` / ``input_upper`` (the file's input domain,
      raw units: every bounds method and ``verify`` raise ``ValueError`` for a
      box reaching outside it), ``input_means`` / ``input_ranges`` and
      ``output_mean`` / ``output_range`` (the file's normalization).

    Raises:
      ValueError: the file cannot be read or is malformed (the message names
        the file and the data line).
    """
    reader = _Reader(path, _nnet_lines(path))
    sizes, (mins, maxes), means, ranges = _read_header(reader)
    kernels, biases = [], []
    for k in range(len(sizes) - 1):
        what = f"layer {k} weights ({sizes[k + 1]} rows of {sizes[k]})"
        kernels.append(reader.matrix(sizes[k + 1], sizes[k], what).T)
        biases.append(reader.matrix(sizes[k + 1], 1, f"layer {k} biases").ravel())
    kernels[0], biases[0] = _fold_input_normalization(kernels[0], biases[0], means, ranges)
    kernels[-1], biases[-1] = kernels[-1] * ranges[-1], biases[-1] * ranges[-1] + means[-1]
    network = Network.from_numpy(kernels, biases)
    network.input_lower, network.input_upper = mins, maxes
    network.input_means, network.input_ranges = means[:-1], ranges[:-1]
    network.output_mean, network.output_range = means[-1], ranges[-1]
    return network


def _fold_input_normalization(kernel, bias, means, ranges):
    """``((x - mean) / range) @ K + b`` as ``x @ K' + b'``."""
    scale = 1.0 / ranges[:-1]
    return kernel * scale[:, None], bias - (means[:-1] * scale) @ kernel


def write_nnet(path, weights, biases, mins, maxes, means, ranges):
    """Write a ``.nnet`` file (kernels ``[in, out]`` as in ``Network.from_numpy``).

    ``means``/``ranges`` have ``inputs + 1`` entries (the last for the outputs).
    The inverse of ``from_nnet``; used by the tests and to export networks.
    """
    sizes = [weights[0].shape[0]] + [w.shape[1] for w in weights]
    rows = [
        "// written by tf1norm.bounds.formats.write_nnet",
        f"{len(weights)},{sizes[0]},{sizes[-1]},{max(sizes)},",
        ",".join(map(str, sizes)) + ",",
        "0,",
    ]
    rows += [
        ",".join(repr(float(v)) for v in values) + "," for values in (mins, maxes, means, ranges)
    ]
    for kernel, bias in zip(weights, biases):
        rows += [",".join(repr(float(v)) for v in row) + "," for row in np.asarray(kernel).T]
        rows += [repr(float(v)) + "," for v in np.asarray(bias).ravel()]
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(rows) + "\n")


def from_onnx(path):
    """A ``Network`` from an ONNX file (see the module docstring for the supported ops).

    Args:
      path: the ``.onnx`` file (one data input with a static shape besides the
        batch axis, one output).

    Returns:
      a ``Network`` whose input/output are the ONNX input/output flattened in
      ONNX row-major order (``x.reshape(n, -1)`` of the NCHW array).

    Raises:
      ImportError: the ``onnx`` package is missing.
      ValueError: the file cannot be read, or an unsupported op (the message
        names the file, the node and its op type).
    """
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError as error:
        raise ImportError(
            'from_onnx needs the onnx package: pip install "tf1norm[onnx]" (or pip install onnx).'
        ) from error
    from tf1norm.bounds.onnx_import import OnnxConverter

    try:
        model = onnx.load(str(path))
    except Exception as error:  # onnx raises several types (OSError, DecodeError, ...)
        raise ValueError(f"from_onnx: cannot read {str(path)!r}: {error}") from error
    return Network(OnnxConverter(model.graph, str(path), numpy_helper).convert())
