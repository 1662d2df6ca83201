"""Graph plumbing: the registry and collection keys, regularizers, custom getters,
arg scopes, constraint objects, batch norm, embedding lookups, reparameterization tools
and the tf-slim adapter (``slim_layers``, the only module that imports ``tf_slim``).

Each calls the pure math of ``tf1norm._math``; the train step and the TF2 runtime sit above.
"""
