"""Name maps from other spectral-norm code's checkpoints to ``spectral_norm_getter``'s.

``spectral_norm_getter`` keeps the power-iteration vector of a kernel ``K``
(shape ``[..., out]``) in ``K/sn_u``, shape ``[1, out]``: an estimate of the
first *right* singular vector of ``W = reshape(K, [-1, out])``. Two common
TF1 conventions store the same idea under other names:

==========  ===========================================================  ==============
name map    the checkpoint's vector (for kernel ``scope/kernel``)        shape
==========  ===========================================================  ==============
``sn_gan``  ``scope/u`` beside ``scope/kernel`` (taki0112's SN-GAN        ``[1, out]``
            ``spectral_norm(w)``: ``get_variable("u")`` in the
            kernel's scope), the same right singular vector
``tf_gan``  ``scope/scope/kernel/spectral_normalize/spectral_norm/``     ``[rows, 1]``
            ``spectral_norm_u`` (TF-GAN's
            ``spectral_normalization_custom_getter``; the kernel's full
            name is repeated under the scope the getter ran in), the
            first *left* singular vector
==========  ===========================================================  ==============

An SN-GAN ``u`` is loaded as it is: both codes run the same iteration
(``v = normalize(u Wᵀ)``, ``u = normalize(v W)``, ``σ = v W uᵀ``), so the
restored model computes the SN-GAN's ``W / σ``. A TF-GAN ``u`` lives in the
other space; it becomes ``normalize(uᵀ W)``, the right vector TF-GAN's own next
pass computes from it. TF-GAN then takes ``σ = ‖W v‖`` and tf1norm
``σ = ‖Wᵀ normalize(W v)‖``, half a power iteration further: equal once ``u``
has converged (a trained model's has), and never more than one more
iteration's worth apart.

A dict ``{graph name: checkpoint name}`` names any variable explicitly; a
vector mapped to a ``.../sn_u`` is converted by its shape as above.
"""

import numpy as np

CONVENTIONS = ("sn_gan", "tf_gan")
_TF_GAN_SUFFIX = "/spectral_normalize/spectral_norm/spectral_norm_u"


def renamed_values(spectral_norm_names, shapes, read, fn):
    """``{graph name: (checkpoint name, value)}`` for the variables a name map renames.

    Args:
      spectral_norm_names: None, ``"sn_gan"``, ``"tf_gan"`` or a dict
        ``{graph name: checkpoint name}``.
      shapes: the checkpoint's ``{name: shape}``.
      read: ``read(checkpoint name) -> NumPy array``.
      fn: the calling function's name, for error messages.

    Returns:
      The renamed variables; ``<kernel>/sn_u`` values are ``[1, out]``.

    Raises:
      ValueError: an unknown convention, a dict naming a variable the
        checkpoint lacks, or a vector whose shape fits neither convention.
    """
    pairs = name_pairs(spectral_norm_names, shapes, fn)
    values = {}
    for graph_name, stored_name in pairs.items():
        value = read(stored_name)
        if graph_name.endswith("/sn_u"):
            kernel_name = pairs.get(graph_name[: -len("/sn_u")], graph_name[: -len("/sn_u")])
            value = right_vector(value, read(kernel_name), stored_name, fn)
        values[graph_name] = (stored_name, value)
    return values


def name_pairs(spectral_norm_names, shapes, fn):
    """``{graph name: checkpoint name}`` under a name map (see the module doc)."""
    if spectral_norm_names is None:
        return {}
    if isinstance(spectral_norm_names, dict):
        return _explicit_pairs(spectral_norm_names, shapes, fn)
    if spectral_norm_names == "sn_gan":
        return _sn_gan_pairs(shapes)
    if spectral_norm_names == "tf_gan":
        return _tf_gan_pairs(shapes)
    raise ValueError(
        f"{fn}: `spectral_norm_names` must be None, one of {', '.join(map(repr, CONVENTIONS))} "
        f"or a dict {{graph name: checkpoint name}}; got {spectral_norm_names!r}."
    )


def _sn_gan_pairs(shapes):
    """``scope/kernel/sn_u`` ← ``scope/u`` of shape ``[1, out]`` beside ``scope/kernel``."""
    pairs = {}
    for name, shape in shapes.items():
        scope, _, last = name.rpartition("/")
        kernel = f"{scope}/kernel" if scope else "kernel"
        if last == "u" and kernel in shapes and list(shape) == [1, shapes[kernel][-1]]:
            pairs[f"{kernel}/sn_u"] = name
    return pairs


def _tf_gan_pairs(shapes):
    """``K/sn_u`` ← ``<scope>/K/spectral_normalize/spectral_norm/spectral_norm_u``."""
    pairs = {}
    for name in shapes:
        if not name.endswith(_TF_GAN_SUFFIX):
            continue
        parts = name[: -len(_TF_GAN_SUFFIX)].split("/")
        kernels = ["/".join(parts[i:]) for i in range(len(parts))]  # longest first
        kernel = next((k for k in kernels if k in shapes), None)
        if kernel is not None:
            pairs[f"{kernel}/sn_u"] = name
    return pairs


def _explicit_pairs(mapping, shapes, fn):
    for graph_name, stored_name in mapping.items():
        if not isinstance(graph_name, str) or not isinstance(stored_name, str):
            raise ValueError(
                f"{fn}: `spectral_norm_names` maps graph names to checkpoint names "
                f"(strings); got {graph_name!r}: {stored_name!r}."
            )
        if stored_name not in shapes:
            raise ValueError(
                f"{fn}: `spectral_norm_names` maps {graph_name!r} to {stored_name!r}, "
                f"which the checkpoint does not hold (it has {sorted(shapes)[:8]}...)."
            )
    return dict(mapping)


def right_vector(u, kernel, name, fn):
    """``u`` as ``spectral_norm_getter``'s ``[1, out]`` right singular vector of ``kernel``.

    ``[1, out]`` is returned as it is; a left vector ``[rows, 1]`` (rows =
    ``prod(kernel.shape[:-1])``) becomes ``normalize(uᵀ W)`` (float64, then
    ``u``'s dtype; a zero product stays zero).
    """
    out = kernel.shape[-1]
    matrix = kernel.reshape(-1, out).astype(np.float64)
    if u.shape == (1, out):
        return u
    if u.shape == (matrix.shape[0], 1):
        right = u.astype(np.float64).T @ matrix
        norm = np.sqrt(np.sum(np.square(right)))
        return (right / norm if norm > 0 else right).astype(u.dtype)
    raise ValueError(
        f"{fn}: the spectral-norm vector {name!r} has shape {list(u.shape)}; for its "
        f"kernel of shape {list(kernel.shape)} it must be [1, {out}] (sn_gan) or "
        f"[{matrix.shape[0]}, 1] (tf_gan). Map it to the right kernel's sn_u."
    )
