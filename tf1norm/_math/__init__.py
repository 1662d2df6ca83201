"""The pure math, Tensor -> Tensor: safe norms, projections, reparameterizations (private).

The public functions are re-exported as ``tf1norm.max_norm``, ``tf1norm.renorm``,
``tf1norm.spectral_norm``, ``tf1norm.weight_norm`` and so on.
"""
