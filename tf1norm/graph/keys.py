"""Names of the graph collections tf1norm reads and writes.

Legacy code fetches these with ``tf.compat.v1.get_collection(NAME)``; keeping
them in one module means every factory and the train-op builder agree.

==========================  ===================================================
name                        holds
==========================  ===================================================
``MAX_NORM``                assign ops built by ``max_norm_regularizer``
                            (seed 002: ``sess.run(get_collection("max_norm"))``)
``LOSSES``                  the conventional user collection ``"losses"`` that
                            seed 003 sums with ``tf.add_n``
``REGULARIZATION_LOSSES``   TensorFlow's own key; ``get_variable``, tf-slim and
                            ``tf.compat.v1.layers`` add regularizer losses here
``UPDATE_OPS``              TensorFlow's key for batch-norm moving averages
``TRAIN_OP``                TensorFlow's key; ``create_train_op`` adds its result
``GRADIENT_GLOBAL_NORM``    pre-clip global norms from ``clip_by_global_norm``
``SKIPPED_STEPS``           counters of steps ``skip_nonfinite`` skipped
``EMBEDDING_MAX_NORM``      registry collection of ``embedding_lookup`` row projections
``SPECTRAL_NORM``           registry collection of ``spectral_norm_getter(update=
                            "collection")`` u refreshes
``SPECTRAL_NORM_SIGMA``     σ of every spectrally normalized weight
``SPECTRAL_NORM_WEIGHTS``   registry records (weight, u, W/σ) for the export
``WEIGHT_NORM``             registry records (v, g, w) of weight-normalized weights
==========================  ===================================================
"""

from tf1norm._src.compat import v1

MAX_NORM = "max_norm"
LOSSES = "losses"
REGULARIZATION_LOSSES = v1.GraphKeys.REGULARIZATION_LOSSES
UPDATE_OPS = v1.GraphKeys.UPDATE_OPS
TRAIN_OP = v1.GraphKeys.TRAIN_OP
GRADIENT_GLOBAL_NORM = "tf1norm_gradient_global_norm"
SKIPPED_STEPS = "tf1norm_skipped_steps"
EMBEDDING_MAX_NORM = "tf1norm_embedding_max_norm"
SPECTRAL_NORM = "tf1norm_spectral_norm_u"
SPECTRAL_NORM_SIGMA = "tf1norm_spectral_norm_sigma"
SPECTRAL_NORM_WEIGHTS = "tf1norm_spectral_norm_weights"
WEIGHT_NORM = "tf1norm_weight_norm"
