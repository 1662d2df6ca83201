"""Exact power-of-two scaling on IEEE bit patterns, immune to flush-to-zero (pure math).

TensorFlow's CPU kernels (and XLA's) run with the FTZ and DAZ flags set:
every floating-point operation reads a subnormal input as 0 and writes a
subnormal result as 0. ``1e-40 * 2**100`` is 0 in float32, ``1e-40 > 0`` is
False, a float32 cast of a float64 subnormal is 0. Only operations that move
bits (``bitcast``, ``where``, ``abs``, casts between float32 and bfloat16)
and integer arithmetic see subnormals. The functions here take values apart
and put them back together with integer operations only:

* ``split_exponent(x) -> (s, e)`` with ``x = s · 2^e`` exactly, ``|s|`` in
  ``[1, 2)`` (a normal number) and ``e`` an integer, for every finite ``x``
  including subnormals (``s = 0``, ``e = 0`` for ±0);
* ``times_power_of_two(s, e)`` is ``s · 2^e`` for a normal or zero ``s``:
  exact where the result is a normal number, **rounded toward zero** where it
  is subnormal (so a scaled-down vector's norm never grows), 0 below the
  smallest subnormal, ±inf above the largest finite value;
* ``to_half_toward_zero(wide, dtype)`` casts float32 to float16/bfloat16,
  rounding to nearest but toward zero where the result is subnormal;
* ``is_positive(x)``: ``x > 0`` and finite, true for positive subnormals.

float32 uses int32 patterns (8 exponent bits, 23 fraction bits), float64 int64
(11, 52). Nothing here is differentiable.
"""

from tf1norm._src.compat import tf

# dtype -> (integer dtype of the same width, fraction bits, exponent bias)
LAYOUT = {
    tf.float32: (tf.int32, 23, 127),
    tf.float64: (tf.int64, 52, 1023),
    tf.float16: (tf.int16, 10, 15),
    tf.bfloat16: (tf.int16, 7, 127),
}
NO_EXPONENT = -(1 << 20)  # below every real exponent (float64 subnormals reach -1074)


def _layout(dtype):
    int_dtype, fraction_bits, bias = LAYOUT[tf.as_dtype(dtype).base_dtype]
    width = int_dtype.size * 8
    constant = lambda value: tf.constant(value, int_dtype)  # noqa: E731
    return (
        int_dtype,
        constant(fraction_bits),
        constant(bias),
        constant(-(1 << (width - 1))),
        constant((1 << fraction_bits) - 1),
        constant(2 * bias + 1),
    )


def split_exponent(x):
    """``(s, e)``: ``x = s · 2^e`` exactly, ``|s|`` in ``[1, 2)`` (0 for ±0), ``e`` an integer.

    float32 and float64. A subnormal's fraction field ``f`` (``|x| = f·2^(1−bias−M)``)
    is converted to a float, which is exact (``f < 2^M``) and normal, and that
    float's exponent field gives the normalization. Integer dtype of ``e``:
    int32 for float32, int64 for float64.
    """
    int_dtype, fraction_bits, bias, sign_bit, fraction_mask, exponent_mask = _layout(x.dtype)
    bits = tf.bitcast(x, int_dtype)
    sign, magnitude = bits & sign_bit, bits & ~sign_bit
    field = tf.bitwise.right_shift(magnitude, fraction_bits)
    fraction = magnitude & fraction_mask
    as_float = tf.bitcast(tf.cast(fraction, x.dtype), int_dtype)  # exact, normal (or 0)
    subnormal = tf.equal(field, 0)
    fraction = tf.where(subnormal, as_float & fraction_mask, fraction)
    # a subnormal is f·2^(1−bias−M), and f = 1.xxx·2^(field(f) − bias)
    from_fraction = tf.bitwise.right_shift(as_float, fraction_bits) - 2 * bias - fraction_bits + 1
    exponent = tf.where(subnormal, from_fraction, field - bias)
    zero = tf.equal(magnitude, 0)
    s_bits = sign | tf.bitwise.left_shift(bias, fraction_bits) | fraction
    return (
        tf.bitcast(tf.where(zero, bits, s_bits), x.dtype),
        tf.where(zero, tf.zeros_like(exponent), exponent),
    )


def times_power_of_two(s, e):
    """``s · 2^e`` for normal or zero ``s`` (float32/float64) and integer ``e`` (same width).

    Exact for normal results; subnormal results keep the leading bits of the
    significand (rounded toward zero); results below the smallest subnormal
    are ±0, above the largest finite value ±inf.
    """
    int_dtype, fraction_bits, bias, sign_bit, fraction_mask, exponent_mask = _layout(s.dtype)
    bits = tf.bitcast(s, int_dtype)
    sign, magnitude = bits & sign_bit, bits & ~sign_bit
    field = tf.bitwise.right_shift(magnitude, fraction_bits) + e
    implicit_one = tf.bitwise.left_shift(tf.ones_like(bias), fraction_bits)
    significand = (magnitude & fraction_mask) | implicit_one
    normal = (
        sign
        | tf.bitwise.left_shift(tf.clip_by_value(field, 1, exponent_mask - 1), fraction_bits)
        | (magnitude & fraction_mask)
    )
    shift = tf.clip_by_value(1 - field, 0, fraction_bits + 1)
    subnormal = sign | tf.bitwise.right_shift(significand, shift)
    infinite = sign | tf.bitwise.left_shift(exponent_mask, fraction_bits)
    out = tf.where(field >= exponent_mask, infinite, tf.where(field >= 1, normal, subnormal))
    return tf.bitcast(tf.where(tf.equal(magnitude, 0), bits, out), s.dtype)


def to_half_toward_zero(wide, dtype):
    """float32 ``wide`` cast to float16/bfloat16: to nearest, but toward zero where subnormal.

    A cast that rounded a subnormal result up in magnitude is moved one unit
    in the last place down (integer arithmetic on the 16-bit pattern).
    """
    if wide.dtype == dtype:
        return wide
    narrow = tf.cast(wide, dtype)
    magnitude_of = lambda t, mask: tf.bitcast(t, LAYOUT[t.dtype][0]) & mask  # noqa: E731
    grew = magnitude_of(tf.cast(narrow, tf.float32), 0x7FFFFFFF) > magnitude_of(wide, 0x7FFFFFFF)
    bits = tf.bitcast(narrow, tf.int16)
    subnormal = (bits & 0x7FFF) < (1 << LAYOUT[dtype][1])
    return tf.bitcast(tf.where(grew & subnormal, bits - 1, bits), dtype)


def is_positive(x):
    """``x > 0`` and finite, elementwise, subnormals included (``x > 0`` reads them as 0)."""
    int_dtype = LAYOUT[x.dtype.base_dtype][0]
    return (tf.bitcast(x, int_dtype) > 0) & tf.math.is_finite(x)
