"""Stale ``*.tempstate*`` files of killed checkpoint writes are removed and named before writing."""

import os
import time

import numpy as np
import pytest

import tf1norm
from tf1norm._src import checkpoint_files as _checkpoint_files
from tf1norm.cli import app as cli
from tf1norm._src.checkpoint_files import StaleCheckpointFilesWarning
from tf1norm._src.compat import tf, v1


def _plant(prefix, suffix, age_seconds):
    """A leftover temporary file named as ``SaveV2`` names it, last written ``age_seconds`` ago."""
    path = f"{prefix}{suffix}"
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(b"\0" * 64)
    stamp = _checkpoint_files.PROCESS_START - age_seconds
    os.utime(path, (stamp, stamp))
    return path


def _tiny_session(graph):
    v1.get_variable("dense/kernel", initializer=tf.constant(np.ones([3, 2], np.float32)))
    session = v1.Session(graph=graph)
    session.run(v1.global_variables_initializer())
    return session


def test_export_removes_and_names_stale_tempstate_files(graph, tmp_path):
    prefix = str(tmp_path / "plain" / "model.ckpt")
    stale = [
        _plant(prefix, ".index.tempstate1234", 3600),
        _plant(prefix, ".data-00000-of-00001.tempstate5678", 3600),
    ]
    other = _plant(str(tmp_path / "plain" / "other.ckpt"), ".index.tempstate1", 3600)
    with _tiny_session(graph) as session, pytest.warns(StaleCheckpointFilesWarning) as caught:
        tf1norm.export_plain_checkpoint(session, prefix)
    message = str(caught[0].message)
    assert message.startswith("export_plain_checkpoint: removed 2 temporary file(s)")
    assert all(path in message for path in stale)
    assert not any(os.path.exists(path) for path in stale)
    assert os.path.exists(other)  # another prefix's files are not touched
    assert tf.train.load_checkpoint(prefix).get_tensor("dense/kernel").shape == (3, 2)


def test_files_written_since_the_process_started_are_reported_not_removed(graph, tmp_path):
    prefix = str(tmp_path / "model.ckpt")
    recent = _plant(prefix, ".index.tempstate99", -(time.time() - _checkpoint_files.PROCESS_START))
    with (
        _tiny_session(graph) as session,
        pytest.warns(StaleCheckpointFilesWarning, match="left in place") as caught,
    ):
        tf1norm.export_plain_checkpoint(session, prefix)
    assert recent in str(caught[0].message) and os.path.exists(recent)


def test_no_warning_without_leftovers(graph, tmp_path):
    import warnings

    with _tiny_session(graph) as session, warnings.catch_warnings():
        warnings.simplefilter("error", StaleCheckpointFilesWarning)
        tf1norm.export_plain_checkpoint(session, str(tmp_path / "model.ckpt"))


def test_convert_checkpoint_cli_removes_and_reports_stale_files(tmp_path, capsys):
    with tf.Graph().as_default() as graph, _tiny_session(graph) as session:
        source = v1.train.Saver().save(session, str(tmp_path / "tf1" / "model.ckpt"))
    output = str(tmp_path / "tf2" / "model")
    stale = [
        _plant(output, ".index.tempstate42", 3600),
        _plant(output, "_temp/part-00000-of-00001.data-00000-of-00001.tempstate7", 3600),
    ]
    assert cli.main(["convert-checkpoint", source, output]) == 0
    err = capsys.readouterr().err
    assert "tf1norm convert-checkpoint: removed 2 temporary file(s)" in err
    assert all(path in err for path in stale) and not any(os.path.exists(p) for p in stale)
    names = tf.train.load_checkpoint(output).get_variable_to_shape_map()
    assert any("dense" in name for name in names), names


def test_glob_metacharacters_in_the_prefix_are_literal(tmp_path):
    prefix = str(tmp_path / "run[1]" / "model")
    planted = _plant(prefix, ".index.tempstate3", 3600)
    _plant(str(tmp_path / "run1" / "model"), ".index.tempstate3", 3600)
    assert _checkpoint_files.stale_temporary_files(prefix) == [planted]
