"""The pure math, Tensor -> Tensor (private): safe norms (``norms``), projections
(``projections``), reparameterizations (``reparam``), embedding row caps (``rows``)
and batch-norm statistics (``batch_stats``).

The public functions are re-exported as ``tf1norm.max_norm``, ``tf1norm.renorm``,
``tf1norm.spectral_norm``, ``tf1norm.weight_norm`` and so on.
"""
