"""TF1 name-based checkpoints into TF2 models, and to object-based checkpoints.

A TF1 ``Saver`` checkpoint names every variable as the graph did
(``hidden1/kernel``, ``hidden1/kernel/Adam``, ``mlp/dense/kernel/sn_u``,
``beta1_power``, ``global_step``). A TF2 port of the same model code names
its variables the same way (``track_tf1_style_variables`` keeps the names;
``tf1norm.migration.tf1_variable_map`` adds the optimizer slots and the step
counter), so the values go across by name:

* ``restore_tf1_checkpoint(path, variable_map)`` assigns the values to the
  TF2 variables, and training continues exactly where the TF1 program stopped;
* ``convert_checkpoint(path, output_prefix)`` (also ``tf1norm
  convert-checkpoint``) writes an object-based checkpoint whose objects are the
  TF1 names, readable by ``tf.train.Checkpoint(variables=variable_map)``.
"""

import re

from tf1norm._src import checkpoint_files as _checkpoint_files
from tf1norm._src import checks as _checks
from tf1norm._src.compat import tf
from tf1norm.graph import spectral_norm_names as _sn_names


def _reader(path, fn):
    """A checkpoint reader for ``path`` (a prefix or a directory), or ValueError."""
    return _checks.checkpoint_reader(path, fn)


def restore_tf1_checkpoint(path, variable_map, allow_missing=False):
    """Assign the values of a TF1 name-based checkpoint to TF2 variables, by TF1 name.

    Args:
      path: checkpoint prefix (``Saver.save``'s return value) or its folder.
      variable_map: ``{TF1 name: variable}``, e.g.
        ``tf1norm.migration.tf1_variable_map(layer.variables, optimizer, step)``
        (call ``step.build(layer.trainable_variables)`` first so the slots exist).
      allow_missing: when False (default), a name of ``variable_map`` that the
        checkpoint lacks raises.

    Returns:
      ``(restored, unused)``: the names assigned, and the checkpoint's names
      that ``variable_map`` does not name.

    Raises:
      ValueError: the checkpoint cannot be read, a name is missing (unless
        ``allow_missing``), or a shape differs.
    """
    reader = _reader(path, "restore_tf1_checkpoint")
    shapes = reader.get_variable_to_shape_map()
    restored = []
    for name, variable in variable_map.items():
        if name not in shapes:
            if allow_missing:
                continue
            raise ValueError(
                f"restore_tf1_checkpoint: {name!r} is not in the checkpoint "
                f"{path!r}; it has {sorted(shapes)[:8]}... Rename, or pass "
                "allow_missing=True."
            )
        value = _checks.checkpoint_tensor(reader, name, path, "restore_tf1_checkpoint")
        if tuple(value.shape) != tuple(variable.shape):
            raise ValueError(
                f"restore_tf1_checkpoint: {name!r} has shape {value.shape} in "
                f"the checkpoint but {tuple(variable.shape)} in the TF2 model."
            )
        variable.assign(value)
        restored.append(name)
    return restored, sorted(set(shapes) - set(variable_map))


def convert_checkpoint(path, output_prefix, exclude=(), spectral_norm_names=None):
    """Write a TF1 name-based checkpoint as an object-based one, keyed by TF1 name.

    Read it back with ``tf.train.Checkpoint(variables=variable_map).read(prefix)``
    (``variable_map`` from ``tf1norm.migration.tf1_variable_map``); each
    variable finds its value under its TF1 name.

    Args:
      path: the TF1 checkpoint prefix or folder.
      output_prefix: where to write (``dir/model``; the files get
        ``.index``/``.data-*`` suffixes).
      exclude: regular expressions; matching names are left out.
      spectral_norm_names: None, ``"sn_gan"``, ``"tf_gan"`` or a dict
        ``{tf1norm name: checkpoint name}``: the checkpoint was written by
        other spectral-norm code, and its power-iteration vectors are written
        as ``<kernel>/sn_u`` (``[1, out]``; a TF-GAN ``[rows, 1]`` vector is
        converted), the names ``spectral_norm_getter`` gives them (see
        ``tf1norm.graph.spectral_norm_names``). Each foreign name is then left out.

    Temporary files an interrupted write left at ``output_prefix``
    (``*.tempstate*``, written before this process started) are deleted first,
    with a ``StaleCheckpointFilesWarning`` naming them.

    Returns:
      ``(written prefix, names written)``.

    Raises:
      ValueError: the checkpoint cannot be read, ``exclude`` is not a
        list of regular expressions, ``spectral_norm_names`` is unknown, or
        nothing is left to write.
    """
    patterns = _patterns(exclude)
    reader = _reader(path, "convert_checkpoint")
    shapes = reader.get_variable_to_shape_map()
    renamed = _sn_names.renamed_values(
        spectral_norm_names,
        shapes,
        lambda name: _checks.checkpoint_tensor(reader, name, path, "convert_checkpoint"),
        "convert_checkpoint",
    )
    sources = {source for source, _ in renamed.values()}
    names = sorted(
        n for n in set(shapes) - sources | set(renamed) if not any(p.search(n) for p in patterns)
    )
    if not names:
        raise ValueError(
            f"convert_checkpoint: no variable left to write from {path!r} "
            f"(exclude={list(exclude)!r})."
        )
    arrays = {
        name: renamed[name][1]
        if name in renamed
        else _checks.checkpoint_tensor(reader, name, path, "convert_checkpoint")
        for name in names
    }  # all read before any variable is made
    values = {
        name: tf.Variable(array, name=name.replace("/", "_")) for name, array in arrays.items()
    }
    _checkpoint_files.remove_stale_temporary_files(output_prefix, "convert_checkpoint")
    written = tf.train.Checkpoint(variables=values).write(output_prefix)
    return written, names


def _patterns(exclude):
    if isinstance(exclude, str):
        exclude = [exclude]
    try:
        return [re.compile(p) for p in exclude]
    except (TypeError, re.error) as error:
        raise ValueError(
            f"convert_checkpoint: `exclude` must be regular expressions; got {exclude!r} ({error})."
        ) from None
