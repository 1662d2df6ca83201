"""The ``tf1norm`` command line (``tf1norm.cli.app.main``) and its plots.

Nothing here imports TensorFlow at module level, so ``tf1norm --help`` stays fast.
"""
