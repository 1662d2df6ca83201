"""Stale temporary files of interrupted checkpoint writes (plain file plumbing, no TensorFlow).

TensorFlow writes a checkpoint's files under temporary names and renames them
when the write completes: ``Saver.save`` (``SaveV2``) writes
``<prefix>.index.tempstate<digits>`` and ``<prefix>.data-00000-of-00001.tempstate<digits>``;
a sharded write (``tf.train.Checkpoint.write``) writes them inside
``<prefix>_temp/``. A process killed during the write leaves them behind,
and nothing else removes them. Every tf1norm function that writes a checkpoint
calls ``remove_stale_temporary_files`` first.
"""

import glob
import os
import time
import warnings

# Files last written before this module was imported cannot belong to a write of
# this process that is still running.
PROCESS_START = time.time()
PATTERNS = ("{prefix}*.tempstate*", "{prefix}_temp/*.tempstate*")


class StaleCheckpointFilesWarning(UserWarning):
    """Temporary files of an interrupted checkpoint write were found (and removed)."""


def stale_temporary_files(prefix):
    """Sorted paths matching ``PATTERNS`` for ``prefix`` (glob metacharacters escaped)."""
    escaped = glob.escape(os.fspath(prefix))
    found = set()
    for pattern in PATTERNS:
        found.update(glob.glob(pattern.format(prefix=escaped)))
    return sorted(found)


def remove_stale_temporary_files(prefix, fn):
    """Delete ``prefix``'s temporary files older than this process; warn naming each.

    Files written since the process started (another writer may be running)
    are left in place and named in the warning too. Files that cannot be
    deleted (permissions) are reported, never raised.

    Returns:
      ``(removed, kept)``: lists of paths.
    """
    removed, kept = [], []
    for path in stale_temporary_files(prefix):
        try:
            if os.path.getmtime(path) >= PROCESS_START:
                kept.append(path)
                continue
            os.remove(path)
            removed.append(path)
        except OSError:
            kept.append(path)
    if removed:
        warnings.warn(
            f"{fn}: removed {len(removed)} temporary file(s) an interrupted "
            f"checkpoint write left at {os.fspath(prefix)!r}: {removed}",
            StaleCheckpointFilesWarning,
            stacklevel=3,
        )
    if kept:
        warnings.warn(
            f"{fn}: temporary checkpoint file(s) at {os.fspath(prefix)!r} left in "
            f"place (written since this process started, or not removable; delete "
            f"them once no other save is running): {kept}",
            StaleCheckpointFilesWarning,
            stacklevel=3,
        )
    return removed, kept
