"""The TF2 runtime: the eager/``tf.function`` train step, Keras ``fit`` transforms, and
migration of TF1 programs and checkpoints to TF2.
"""
