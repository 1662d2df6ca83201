"""The result of ``exact``: ``low, high`` plus what is known exactly, and the spec check."""

import numpy as np


def bound_spec(network, spec):
    """``spec`` as a finite float64 matrix ``[k, outputs]`` (``None``: the identity).

    Raises:
      ValueError: wrong shape or non-finite entries.
    """
    if spec is None:
        return np.eye(network.output_size)
    matrix = np.asarray(spec, np.float64)
    if matrix.ndim == 1:
        matrix = matrix[None]
    if matrix.ndim != 2 or matrix.shape[1] != network.output_size or not matrix.shape[0]:
        raise ValueError(
            f"exact: `spec` must be a matrix [k, {network.output_size}] (one row "
            f"per bounded combination of the {network.output_size} outputs); got "
            f"shape {np.shape(spec)}."
        )
    if not np.all(np.isfinite(matrix)):
        raise ValueError("exact: `spec` has NaN or infinite entries; give finite coefficients.")
    return matrix


class ExactRange(tuple):
    """``(low, high)`` of every bounded row, with exactness labels and witnesses.

    Unpacks as ``low, high = result`` like every bounds method. Attributes:

    * ``low``, ``high``: sound bounds (float64 ``[k]``).
    * ``attained_low``, ``attained_high``: network values at ``low_inputs`` and
      ``high_inputs``, concrete inputs inside the box (``±inf`` if none found).
    * ``exact_low``, ``exact_high``, ``exact``: bool ``[k]``; a bound is exact
      when ``|bound − attained| <= tolerance·(1 + |attained|)``.
    * ``status``: per row, ``"exact"``, or why not: ``"time limit"``,
      ``"interrupted"`` or ``"not exact"`` (the solver's tolerance).
    * ``seconds``: wall time of the call.
    """

    def __new__(cls, low, high, **details):
        low, high = np.asarray(low) + 0.0, np.asarray(high) + 0.0  # no -0.0 when printed
        result = super().__new__(cls, (low, high))
        result.__dict__.update(details)
        return result

    low = property(lambda self: self[0])
    high = property(lambda self: self[1])

    @classmethod
    def from_maxima(cls, bound, best, witness, status, tolerance, seconds):
        """Split the maxima of ``[spec·y; −spec·y]`` into the range of ``spec·y``."""
        k = bound.size // 2
        high, low = bound[:k], -bound[k:]
        attained_high, attained_low = best[:k], -best[k:]
        with np.errstate(invalid="ignore"):  # no witness yet: attained = ∓inf
            exact_high = np.isfinite(attained_high) & (
                high - attained_high <= tolerance * (1 + np.abs(attained_high))
            )
            exact_low = np.isfinite(attained_low) & (
                attained_low - low <= tolerance * (1 + np.abs(attained_low))
            )
        exact = exact_low & exact_high
        reason = "not exact" if status == "exact" else status
        return cls(
            low,
            high,
            attained_low=attained_low,
            attained_high=attained_high,
            low_inputs=witness[k:],
            high_inputs=witness[:k],
            exact_low=exact_low,
            exact_high=exact_high,
            exact=exact,
            status=[("exact" if ok else reason) for ok in exact],
            seconds=seconds,
        )

    def __repr__(self):
        labels = ", ".join(sorted(set(self.status)))
        return f"ExactRange(low={self.low!r}, high={self.high!r}, status: {labels})"

    def __reduce__(self):
        return (_rebuild, (tuple(self), dict(self.__dict__)))


def _rebuild(pair, details):
    return ExactRange(*pair, **details)
