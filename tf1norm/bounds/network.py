"""A network as a list of NumPy layers: the common input of every bounds method.

Layers act on batches of flattened row vectors ``[n, size]``. There are three
kinds, and every method dispatches on them:

* ``Linear`` layers (``Dense``, ``Diagonal``, ``Permute`` here, ``conv.Conv2D``): an affine map
  ``x ↦ x·W + b`` given through four methods, so no method needs the matrix W:
  ``__call__(x)``, ``forward_abs(r) = r·|W|`` (interval radius),
  ``backward(a) = a·Wᵀ`` (back-substitution, ``a`` of shape ``[m, out_size]``),
  and ``bias_vector`` (``[out_size]``). ``as_matrix()`` gives the dense W for
  methods that need it (MILP); it may be large.
* ``Activation``: an elementwise function.
* ``Add(source)``: adds the output of an earlier layer (a residual branch):
  ``out = previous output + output of layer `source``` (``source=-1`` is the
  network input). Back-substitution hands the same coefficients to both
  summands.
"""

import numpy as np

ACTIVATIONS = ("linear", "relu", "leaky_relu", "sigmoid", "tanh")


class Linear:
    """An affine layer: the interface every bounds method uses (see the module docstring)."""

    in_size = out_size = None

    def __call__(self, x):
        raise NotImplementedError

    def forward_abs(self, radius):
        raise NotImplementedError

    def backward(self, a):
        raise NotImplementedError

    def as_matrix(self):
        raise NotImplementedError

    def largest_singular_value(self):
        """An upper bound of σ(W), never below it (``lipschitz_bound`` multiplies them).

        Exact (SVD of ``as_matrix()``) while the dense matrix has at most
        ``DENSE_SVD_LIMIT`` entries; larger layers override
        ``singular_value_bound`` with a bound that needs no matrix.
        """
        if self.in_size * self.out_size <= DENSE_SVD_LIMIT:
            return float(np.linalg.svd(self.as_matrix(), compute_uv=False)[0])
        return self.singular_value_bound()

    def singular_value_bound(self):
        raise ValueError(
            f"lipschitz_bound: {type(self).__name__} of {self.in_size} x "
            f"{self.out_size} is too large for an exact SVD and has no cheaper "
            f"sound bound of its largest singular value."
        )


DENSE_SVD_LIMIT = 4_000_000


class Dense(Linear):
    """``x @ kernel + bias`` with ``kernel`` of shape ``[in, out]``."""

    def __init__(self, kernel, bias=None):
        self.kernel = np.asarray(kernel, np.float64)
        if self.kernel.ndim != 2:
            raise ValueError(
                f"Dense: `kernel` must be a matrix [in, out]; got shape {self.kernel.shape}."
            )
        out = self.kernel.shape[1]
        self.bias = np.zeros(out) if bias is None else np.asarray(bias, np.float64).reshape(-1)
        if self.bias.shape != (out,):
            raise ValueError(f"Dense: `bias` must have shape ({out},); got {self.bias.shape}.")

    in_size = property(lambda self: self.kernel.shape[0])
    out_size = property(lambda self: self.kernel.shape[1])
    bias_vector = property(lambda self: self.bias)

    def __call__(self, x):
        return x @ self.kernel + self.bias

    def forward_abs(self, radius):
        """``radius · |kernel|``: the half-width of the image of a box."""
        return radius @ np.abs(self.kernel)

    def backward(self, a):
        """``a · kernelᵀ``: coefficients on the output carried to the input."""
        return a @ self.kernel.T

    def as_matrix(self):
        return self.kernel

    def largest_singular_value(self, iterations=None, seed=None):
        """σ(kernel), exactly (SVD)."""
        return float(np.linalg.svd(self.kernel, compute_uv=False)[0])


class Diagonal(Linear):
    """``x * scale + shift`` elementwise (batch normalization in inference mode).

    Holds ``2·size`` values; ``as_matrix()`` builds the ``size × size`` diagonal.
    """

    def __init__(self, scale, shift=None):
        self.scale = np.asarray(scale, np.float64).reshape(-1)
        self.shift = (
            np.zeros_like(self.scale)
            if shift is None
            else np.asarray(shift, np.float64).reshape(-1)
        )
        if self.shift.shape != self.scale.shape:
            raise ValueError(
                f"Diagonal: `shift` must have shape {self.scale.shape} like "
                f"`scale`; got {self.shift.shape}."
            )

    in_size = out_size = property(lambda self: self.scale.size)
    bias_vector = property(lambda self: self.shift)

    def __call__(self, x):
        return x * self.scale + self.shift

    def forward_abs(self, radius):
        return radius * np.abs(self.scale)

    def backward(self, a):
        return a * self.scale

    def singular_value_bound(self):
        return float(np.abs(self.scale).max())

    def as_matrix(self):
        return np.diag(self.scale)


class Permute(Linear):
    """Reorders features: ``out[:, k] = x[:, order[k]]`` (e.g. NCHW <-> NHWC flattening).

    Holds ``size`` indices; ``as_matrix()`` builds the ``size × size`` permutation.
    """

    def __init__(self, order):
        self.order = np.asarray(order).reshape(-1)
        if not np.array_equal(np.sort(self.order), np.arange(self.order.size)):
            raise ValueError(
                f"Permute: `order` must be a permutation of 0..n-1; got {self.order[:10]}..."
            )

    in_size = out_size = property(lambda self: self.order.size)
    bias_vector = property(lambda self: np.zeros(self.order.size))

    def __call__(self, x):
        return x[..., self.order]

    forward_abs = __call__

    def backward(self, a):
        result = np.zeros_like(a)
        result[..., self.order] = a
        return result

    def singular_value_bound(self):
        return 1.0

    def as_matrix(self):
        matrix = np.zeros((self.order.size, self.order.size))
        matrix[self.order, np.arange(self.order.size)] = 1.0
        return matrix


def zero_layer(in_size, out_size):
    """A Linear layer mapping everything to 0 (the first half of a jump to an earlier tensor)."""
    if in_size == out_size:
        return Diagonal(np.zeros(in_size))
    return Dense(np.zeros((in_size, out_size)))


class Add:
    """Residual sum: the previous layer's output plus the output of layer ``source``.

    ``source`` indexes ``Network.layers``; ``-1`` is the network input. It must
    come before this layer and have the same size as the previous output.
    """

    def __init__(self, source):
        if not isinstance(source, (int, np.integer)) or isinstance(source, bool) or source < -1:
            raise ValueError(
                f"Add: `source` must be a layer index >= -1 (-1 = the network "
                f"input); got {source!r}."
            )
        self.source = int(source)


class Activation:
    """Elementwise activation: linear, relu, leaky_relu(alpha), sigmoid or tanh."""

    def __init__(self, kind, alpha=0.2):
        if kind not in ACTIVATIONS:
            raise ValueError(
                f"Activation: unsupported activation {kind!r}; supported: {', '.join(ACTIVATIONS)}."
            )
        if kind == "leaky_relu" and not 0 <= alpha < 1:
            raise ValueError(f"Activation: leaky_relu `alpha` must be in [0, 1); got {alpha!r}.")
        self.kind, self.alpha = kind, float(alpha)

    def __call__(self, z):
        return evaluate(self.kind, z, self.alpha)


def evaluate(kind, z, alpha=0.2):
    """The activation function itself, on NumPy arrays."""
    if kind == "relu":
        return np.maximum(z, 0.0)
    if kind == "leaky_relu":
        return np.where(z >= 0, z, alpha * z)
    if kind == "sigmoid":
        return 1.0 / (1.0 + np.exp(-z))
    if kind == "tanh":
        return np.tanh(z)
    return z


class Network:
    """An ordered list of ``Linear``, ``Activation`` and ``Add`` layers."""

    def __init__(self, layers):
        self.layers = list(layers)
        if not self.layers or not isinstance(self.layers[0], Linear):
            raise ValueError("Network: the first layer must be Dense (or another Linear layer).")
        self.input_size = self.layers[0].in_size
        self.sizes = self._output_sizes()
        self.output_size = self.sizes[-1]

    def _output_sizes(self):
        """The output size of every layer, checking that consecutive layers fit."""
        sizes = []
        for index, layer in enumerate(self.layers):
            size = sizes[-1] if sizes else self.input_size
            if isinstance(layer, Linear):
                if layer.in_size != size:
                    raise ValueError(
                        f"Network: layer {index} ({type(layer).__name__}) expects "
                        f"{layer.in_size} inputs but the previous layer gives {size}."
                    )
                size = layer.out_size
            elif isinstance(layer, Add):
                source = self.size_at(sizes, layer.source)
                if layer.source >= index or source != size:
                    raise ValueError(
                        f"Network: Add at layer {index} needs an earlier source of "
                        f"size {size}; got source={layer.source} (size {source})."
                    )
            elif not isinstance(layer, Activation):
                raise TypeError(
                    f"Network: layer {index} is a {type(layer).__name__}; use "
                    f"Linear (Dense, Conv2D, Diagonal, Permute), Activation or "
                    f"Add layers."
                )
            sizes.append(size)
        return sizes

    def size_at(self, sizes, index):
        """Output size of layer ``index`` (``-1``: the input), ``None`` if not built yet."""
        if index == -1:
            return self.input_size
        return sizes[index] if index < len(sizes) else None

    @classmethod
    def from_numpy(cls, weights, biases=None, activations=None):
        """Build from lists: kernels ``[in, out]``, biases, activation names per layer.

        ``activations[i]`` follows layer ``i`` (default: relu between layers,
        linear after the last).
        """
        examples = {
            "weights": "[kernel_0, kernel_1]",
            "biases": "[bias_0, bias_1]",
            "activations": "['relu', 'linear']",
        }
        for arg, values in (("weights", weights), ("biases", biases), ("activations", activations)):
            if (
                isinstance(values, (str, bytes))
                or values is not None
                and not hasattr(values, "__iter__")
            ):
                raise TypeError(
                    f"Network.from_numpy: `{arg}` must be a list with one entry "
                    f"per layer; got {values!r:.80}. Pass a list, e.g. "
                    f"{arg}={examples[arg]}."
                )
        biases = [None] * len(weights) if biases is None else list(biases)
        if activations is None:
            activations = ["relu"] * (len(weights) - 1) + ["linear"]
        if not len(weights) == len(biases) == len(activations):
            raise ValueError(
                f"Network.from_numpy: got {len(weights)} weights, {len(biases)} "
                f"biases and {len(activations)} activations; give one per layer."
            )
        layers = []
        for kernel, bias, activation in zip(weights, biases, activations):
            layers.append(Dense(kernel, bias))
            if activation != "linear":
                layers.append(Activation(activation))
        return cls(layers)

    def __call__(self, x):
        outputs = {-1: x}
        for index, layer in enumerate(self.layers):
            x = x + outputs[layer.source] if isinstance(layer, Add) else layer(x)
            outputs[index] = x
        return x


def check_network(network, caller):
    """TypeError unless ``network`` is a ``Network``."""
    if not isinstance(network, Network):
        raise TypeError(
            f"{caller}: `network` must be a tf1norm.bounds.Network; got "
            f"{type(network).__name__}. Build one with Network.from_numpy."
        )
    return network


def check_box(network, lower, upper):
    """``lower``/``upper`` as finite float64 vectors of the input size, lower <= upper.

    A NaN or infinite corner would give NaN bounds, so it raises ValueError;
    so does a network with a non-finite weight (see ``check_finite_layers``).
    """
    lower, upper = _box_corner(lower, "lower"), _box_corner(upper, "upper")
    check_finite_layers(network)
    if lower.shape != (network.input_size,) or upper.shape != (network.input_size,):
        raise ValueError(
            f"bounds: `lower` and `upper` need {network.input_size} values (one per "
            f"input feature); got {lower.size} and {upper.size}."
        )
    if np.any(lower > upper):
        bad = int(np.argmax(lower > upper))
        raise ValueError(
            f"bounds: `lower` must be <= `upper`; feature {bad} has {lower[bad]} > {upper[bad]}."
        )
    check_input_domain(network, lower, upper)
    return lower, upper


def check_input_domain(network, lower, upper):
    """ValueError if the box leaves the network's stated input domain (``.nnet`` files).

    A network read by ``from_nnet`` carries ``input_lower``/``input_upper``
    (raw units); Reluplex clips inputs to that box, so bounds outside it
    describe a function the file does not define, and a box given in the
    wrong units (normalized instead of raw) usually lands outside it.
    """
    domain_lower = getattr(network, "input_lower", None)
    domain_upper = getattr(network, "input_upper", None)
    if domain_lower is None or domain_upper is None:
        return
    slack = 1e-9 * np.maximum(np.abs(domain_upper - domain_lower), 1.0)
    outside = (lower < domain_lower - slack) | (upper > domain_upper + slack)
    if np.any(outside):
        i = int(np.argmax(outside))
        raise ValueError(
            f"bounds: the box [{lower[i]:g}, {upper[i]:g}] of input {i} leaves the "
            f"network's input domain [{domain_lower[i]:g}, {domain_upper[i]:g}] "
            "(the .nnet file's mins/maxes, raw units). Give the box in raw units "
            "(x = x_normalized·input_ranges + input_means) inside that domain."
        )


def _box_corner(values, arg):
    try:
        corner = np.asarray(values, np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise TypeError(
            f"bounds: `{arg}` must be numbers, one per input feature; got {values!r}."
        ) from None
    if not np.all(np.isfinite(corner)):
        bad = int(np.argmax(~np.isfinite(corner)))
        raise ValueError(
            f"bounds: `{arg}` must be finite; got {corner[bad]} for feature {bad}. "
            "Bound every input by finite numbers (e.g. the data's min and max)."
        )
    return corner


def check_finite_layers(network):
    """ValueError naming the first layer whose kernel or bias has a NaN or infinite entry."""
    for index, layer in enumerate(network.layers):
        for arg in ("kernel", "bias"):
            values = getattr(layer, arg, None)
            if values is not None and not np.all(np.isfinite(values)):
                raise ValueError(
                    f"bounds: layer {index} ({type(layer).__name__}) `{arg}` has a "
                    f"non-finite entry ({values[~np.isfinite(values)][0]}); bounds "
                    "of such a network are NaN. Check the checkpoint or weights "
                    "it was built from."
                )
