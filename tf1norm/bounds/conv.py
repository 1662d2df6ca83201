"""A 2-D convolution as a ``Linear`` layer that never builds its dense matrix.

Layout (the same as TF's ``tf.reshape(x, [n, -1])`` of an NHWC tensor): a
batch of inputs is ``[n, H·W·C]`` with the channel index fastest, then the
column, then the row. The kernel is HWIO ``[kh, kw, C_in, C_out]`` as in
``tf.nn.conv2d``. Each map is a convolution, so its cost is that of the
convolution itself. Two engines compute the same thing (``layer.engine``):

* ``"tf"`` (the default): ``tf.nn.conv2d`` and ``tf.nn.conv2d_transpose`` in
  float64, run eagerly (also from inside a graph); in provisional runs of
  ``python tools/bench_conv.py`` (a 32x32x3 CNN, loaded machine) its
  ``backward`` took 0.4-0.55x the NumPy engine's time and a whole ``crown``
  call 0.64-0.8x; dense matrices took 1.85-2.2x and 56 MiB;
* ``"numpy"``: a loop over the ``kh·kw`` kernel taps, each a strided slice of
  the (padded) input times a ``[C_in, C_out]`` matrix; used for dilations > 1
  (TF's CPU kernels have no dilated transposed convolution), and the tests' twin.

Memory per call (NumPy engine; TF's kernels hold about the same):

=================  ===============================  ==============================
operation          computes                         memory held (float64 values)
=================  ===============================  ==============================
``__call__(x)``    ``conv(x, K) + b``               ``n·in_padded + n·out_size``
``forward_abs(r)`` ``conv(r, |K|)`` (IBP radius)    ``n·in_padded + n·out_size``
``backward(a)``    ``a·Wᵀ``: transposed convolution ``m·in_padded + m·out_size``
``as_matrix()``    the dense ``[in_size, out_size]`` ``in_size·out_size`` (MILP only)
=================  ===============================  ==============================

``in_padded = (H + pad_h)·(W + pad_w)·C_in``. The kernel itself is
``kh·kw·C_in·C_out`` values; nothing of size ``in_size × out_size`` exists
unless ``as_matrix()`` is called.
"""

import numpy as np

from tf1norm._src.compat import run_eagerly, tf
from tf1norm.bounds.network import Linear


def _pair(value, name):
    values = (value, value) if np.isscalar(value) else tuple(value)
    if len(values) == 4:  # TF's [1, s, s, 1]
        values = values[1:3]
    if len(values) != 2 or any(int(v) != v or v < 1 for v in values):
        raise ValueError(
            f"Conv2D: `{name}` must be a positive int or a pair of them; got {value!r}."
        )
    return tuple(int(v) for v in values)


def _same_pads(size, kernel, stride, dilation):
    """TF's SAME padding along one axis: ``(before, after)``."""
    out = -(-size // stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def _explicit_pads(padding):
    pads = np.asarray(padding, dtype=np.int64)
    if pads.shape != (2, 2) or np.any(pads < 0):
        raise ValueError(
            f"Conv2D: explicit `padding` must be ((top, bottom), (left, right)) "
            f"of non-negative ints; got {padding!r}."
        )
    return tuple(map(tuple, pads.tolist()))


class Conv2D(Linear):
    """``conv2d(x, kernel) + bias`` over flattened NHWC inputs (see the module docstring).

    Args:
      kernel: ``[kh, kw, C_in, C_out]`` (HWIO).
      input_shape: ``(H, W, C_in)`` of one input.
      bias: ``[C_out]`` or None.
      strides: int or ``(sh, sw)`` (or TF's ``[1, sh, sw, 1]``).
      padding: ``"SAME"`` / ``"VALID"`` (TF's conventions) or explicit
        ``((top, bottom), (left, right))`` zero padding (ONNX ``pads``).
      dilations: int or ``(dh, dw)``.

    Attributes:
      output_shape: ``(H', W', C_out)``; ``pads``: ``((top, bottom), (left, right))``
        actually used; ``engine``: ``"tf"`` or ``"numpy"`` (settable; both
        compute the same maps).

    Raises:
      ValueError: a kernel that is not HWIO, channels that do not match
        ``input_shape``, bad strides/dilations/padding, or an empty output.
    """

    def __init__(self, kernel, input_shape, bias=None, strides=1, padding="VALID", dilations=1):
        self.kernel = np.asarray(kernel, np.float64)
        self.input_shape = tuple(int(s) for s in input_shape)
        if (
            self.kernel.ndim != 4
            or len(self.input_shape) != 3
            or self.kernel.shape[2] != self.input_shape[2]
        ):
            raise ValueError(
                f"Conv2D: need a HWIO `kernel` whose 3rd axis equals the channels "
                f"of `input_shape` (H, W, C); got kernel {self.kernel.shape} and "
                f"input_shape {input_shape!r}."
            )
        self.strides, self.dilations = _pair(strides, "strides"), _pair(dilations, "dilations")
        self.pads = self._pads(padding)
        # TF's CPU kernels have no dilated transposed convolution.
        self.engine = "numpy" if max(self.dilations) > 1 else "tf"
        self.output_shape = self._output_shape()
        channels = self.kernel.shape[3]
        self.bias = np.zeros(channels) if bias is None else np.asarray(bias, np.float64).ravel()
        if self.bias.shape != (channels,):
            raise ValueError(
                f"Conv2D: `bias` must have shape ({channels},); got {self.bias.shape}."
            )

    def _pads(self, padding):
        if isinstance(padding, str):
            if padding.upper() not in ("SAME", "VALID"):
                raise ValueError(
                    f"Conv2D: `padding` must be 'SAME', 'VALID' or explicit pairs; got {padding!r}."
                )
            if padding.upper() == "VALID":
                return (0, 0), (0, 0)
            return tuple(
                _same_pads(
                    self.input_shape[axis],
                    self.kernel.shape[axis],
                    self.strides[axis],
                    self.dilations[axis],
                )
                for axis in (0, 1)
            )
        return _explicit_pads(padding)

    def _output_shape(self):
        shape = []
        for axis in (0, 1):
            padded = self.input_shape[axis] + sum(self.pads[axis])
            reach = (self.kernel.shape[axis] - 1) * self.dilations[axis] + 1
            shape.append((padded - reach) // self.strides[axis] + 1)
        if min(shape) < 1:
            raise ValueError(
                f"Conv2D: kernel {self.kernel.shape[:2]} (dilations "
                f"{self.dilations}) does not fit the padded input "
                f"{self.input_shape}; the output would be empty."
            )
        return shape[0], shape[1], self.kernel.shape[3]

    in_size = property(lambda self: int(np.prod(self.input_shape)))
    out_size = property(lambda self: int(np.prod(self.output_shape)))
    bias_vector = property(lambda self: np.tile(self.bias, self.out_size // self.bias.size))

    def _taps(self):
        """``(i, j, row slice, column slice)`` of the padded input read by each kernel tap."""
        (sh, sw), (dh, dw) = self.strides, self.dilations
        oh, ow = self.output_shape[:2]
        for i in range(self.kernel.shape[0]):
            for j in range(self.kernel.shape[1]):
                yield (
                    i,
                    j,
                    slice(i * dh, i * dh + sh * (oh - 1) + 1, sh),
                    slice(j * dw, j * dw + sw * (ow - 1) + 1, sw),
                )

    def _convolve(self, x, kernel):
        x = np.asarray(x, np.float64)
        if x.ndim == 1:
            return self._convolve(x[None], kernel)[0]
        images = x.reshape((-1,) + self.input_shape)
        if self.engine == "tf":
            out = run_eagerly(
                lambda: tf.nn.conv2d(
                    images, kernel, self.strides, self._tf_padding(), dilations=self.dilations
                ).numpy()
            )
        else:
            out = self._convolve_numpy(images, kernel)
        return out.reshape(len(x), -1)

    def _tf_padding(self):
        (top, bottom), (left, right) = self.pads
        return [[0, 0], [top, bottom], [left, right], [0, 0]]

    def _convolve_numpy(self, images, kernel):
        (top, bottom), (left, right) = self.pads
        padded = np.pad(images, ((0, 0), (top, bottom), (left, right), (0, 0)))
        out = np.zeros((len(images),) + self.output_shape)
        rows_out = len(images) * self.output_shape[0] * self.output_shape[1]
        for i, j, rows, cols in self._taps():
            window = padded[:, rows, cols, :].reshape(rows_out, -1)  # 2-D: one BLAS call
            out += (window @ kernel[i, j]).reshape(out.shape)
        return out

    def __call__(self, x):
        """``conv(x, kernel) + bias`` for ``x`` of shape ``[n, in_size]`` (or one vector)."""
        return self._convolve(x, self.kernel) + self.bias_vector

    def forward_abs(self, radius):
        """``radius · |W|``: the convolution of the radius with ``|kernel|``, no bias."""
        return self._convolve(radius, np.abs(self.kernel))

    def backward(self, a):
        """``a · Wᵀ`` for ``a`` of shape ``[m, out_size]``: a transposed convolution.

        Holds ``m·in_padded + m·out_size`` values; returns ``[m, in_size]``
        (a vector for a vector).
        """
        a = np.asarray(a, np.float64)
        if a.ndim == 1:
            return self.backward(a[None])[0]
        grads = a.reshape((-1,) + self.output_shape)
        if self.engine == "tf":
            shape = [len(a)] + list(self.input_shape)
            out = run_eagerly(
                lambda: tf.nn.conv2d_transpose(
                    grads,
                    self.kernel,
                    shape,
                    self.strides,
                    self._tf_padding(),
                    dilations=self.dilations,
                ).numpy()
            )
        else:
            out = self._backward_numpy(grads)
        return out.reshape(len(a), -1)

    def _backward_numpy(self, grads):
        (top, bottom), (left, right) = self.pads
        height, width, channels = self.input_shape
        out = np.zeros((len(grads), height + top + bottom, width + left + right, channels))
        for i, j, rows, cols in self._taps():
            out[:, rows, cols, :] += grads @ self.kernel[i, j].T
        return out[:, top : top + height, left : left + width, :]

    def singular_value_bound(self):
        """``sqrt(‖W‖₁·‖W‖∞) >= σ(W)`` from the kernel alone (no dense matrix).

        An input (pixel, channel) meets each kernel tap at most once, so its
        row of ``|W|`` sums to at most ``Σ_{h,w,out} |K|``; an output column to
        at most ``Σ_{h,w,in} |K|``.
        """
        magnitude = np.abs(self.kernel)
        rows = magnitude.sum(axis=(0, 1, 3)).max()
        columns = magnitude.sum(axis=(0, 1, 2)).max()
        return float(np.sqrt(rows * columns))

    def as_matrix(self):
        """The dense ``[in_size, out_size]`` matrix (``in_size·out_size`` values: small nets)."""
        return self.backward(np.eye(self.out_size)).T

    def __repr__(self):
        return (
            f"Conv2D(kernel {self.kernel.shape}, input {self.input_shape} -> output "
            f"{self.output_shape}, strides {self.strides}, pads {self.pads}, "
            f"dilations {self.dilations})"
        )
