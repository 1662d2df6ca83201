"""The train step: ``create_train_op`` and the transforms it chains (clipping, gradient
multipliers, skipping non-finite steps, weight decay, constraint projection), the
cuda-convnet preset, ``check_train_op``, hooks and chain summaries.
"""
