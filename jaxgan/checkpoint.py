"""Checkpoints with orbax: atomic, rotating, verified, array-only (no pickle; loading runs no code).

What each failure leaves behind and what :func:`restore_latest` does about it:

* **Killed while saving** (SIGKILL, power cut of the process): orbax writes a step into
  ``<step>.orbax-checkpoint-tmp-<time>/`` and renames it to ``<step>/`` only once every file is
  written, so a killed save leaves a temporary directory that is never taken for a checkpoint;
  :func:`manager` deletes such directories when it opens the workdir.
* **Half-written or corrupted step directory** (a copy that stopped half way, a truncated file,
  flipped bits): each checkpoint carries a CRC32 digest of every array (in orbax's JSON
  ``custom_metadata``). A step whose metadata or arrays can't be read, or whose arrays don't
  match their digest, is moved aside to ``<step>.corrupt-<time>/`` with a warning, and the next
  older one is tried. If no step is readable, :class:`CorruptCheckpointError` is raised rather
  than silently starting over.
* **Checkpoints of a different config** (the arrays' shapes, dtypes or tree differ from the
  state this config builds): :class:`CheckpointMismatchError` names the first differing arrays
  and the config fields that differ from the ``config.json`` the earlier run wrote.

Checkpoints are orbax ``StandardSave`` pytrees: raw array bytes (tensorstore OCDBT/zarr) plus
JSON metadata, and restoring always goes through a target structure built in code, so loading
never unpickles and cannot execute code from the checkpoint directory.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import sys
import time
import zlib

import jax
import numpy as np
import orbax.checkpoint as ocp
from absl import logging

DIGEST_KEY = 'jaxgan_digest'


class CheckpointMismatchError(ValueError):
  """The workdir's checkpoints hold a state of another shape: they belong to another config."""


class CorruptCheckpointError(RuntimeError):
  """No checkpoint in the workdir could be read back intact."""


class _Unreadable(Exception):
  """One checkpoint step can't be read back intact (internal: triggers the fallback)."""


def manager(workdir: str, *, keep: int) -> ocp.CheckpointManager:
  """A manager for ``workdir/checkpoints`` that keeps the last ``keep`` checkpoints.

  Temporary directories of saves that never finished (the process was killed) are deleted.
  """
  directory = os.path.abspath(os.path.join(workdir, 'checkpoints'))
  # Deleted here, before the manager exists: orbax's own cleanup (cleanup_tmp_directories) runs
  # in a background thread that races with whatever the caller does next.
  for path in glob.glob(os.path.join(directory, '*.orbax-checkpoint-tmp*')):
    shutil.rmtree(path, ignore_errors=True)
  return ocp.CheckpointManager(
      directory, item_handlers=ocp.StandardCheckpointHandler(),
      options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True))


def _path_str(path) -> str:
  """A key path as ``'g_params/Dense_0/kernel'``, the same for a pytree and its orbax metadata."""
  parts = []
  for entry in path:
    for attr in ('name', 'key', 'idx'):
      if hasattr(entry, attr):
        parts.append(str(getattr(entry, attr)))
        break
    else:
      parts.append(str(entry))
  return '/'.join(parts)


def digest(tree) -> dict[str, str]:
  """``{'g_params/Dense_0/kernel': 'float32(1, 5):1a2b3c4d', ...}``: dtype, shape, CRC32 of bytes.

  Detects accidental corruption (truncation, flipped bits), not deliberate tampering.
  """
  leaves = jax.tree_util.tree_flatten_with_path(jax.device_get(tree))[0]
  out = {}
  for path, x in leaves:
    x = np.ascontiguousarray(x)
    out[_path_str(path)] = f'{x.dtype}{tuple(x.shape)}:{zlib.crc32(x.tobytes()):08x}'
  return out


def save_args(state) -> ocp.args.StandardSave:
  """Orbax save args for ``state`` with its :func:`digest` in the checkpoint's JSON metadata."""
  return ocp.args.StandardSave(state, custom_metadata={DIGEST_KEY: digest(state)})


def _shapes(tree) -> dict[str, tuple[tuple[int, ...], str]]:
  leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
  return {_path_str(path): (tuple(x.shape), str(np.dtype(x.dtype))) for path, x in leaves}


def _config_diff(directory: str, config) -> str:
  """The fields of ``config`` that differ from ``<workdir>/config.json``, as a short phrase."""
  path = os.path.join(os.path.dirname(directory), 'config.json')
  if config is None or not os.path.exists(path):
    return ''
  try:
    with open(path) as f:
      saved = json.load(f)
  except (OSError, ValueError):
    return ''
  current = json.loads(config.to_json_best_effort())

  def flat(d, prefix=''):
    out = {}
    for k, v in d.items():
      if isinstance(v, dict):
        out.update(flat(v, f'{prefix}{k}.'))
      else:
        out[f'{prefix}{k}'] = v
    return out

  saved, current = flat(saved), flat(current)
  diffs = [f'{k}: {saved.get(k)!r} -> {current.get(k)!r}' for k in sorted({*saved, *current})
           if saved.get(k) != current.get(k)]
  return f'; config fields that differ from {path}: {", ".join(diffs[:8])}' if diffs else ''


def check_compatible(metadata_tree, like, *, step: int, directory: str, config=None) -> None:
  """Raises :class:`CheckpointMismatchError` unless the checkpoint's arrays match ``like``'s."""
  saved, wanted = _shapes(metadata_tree), _shapes(like)
  if saved == wanted:
    return
  problems = []
  for name in sorted({*saved, *wanted}):
    if saved.get(name) != wanted.get(name):
      s, w = saved.get(name), wanted.get(name)
      problems.append(f'{name}: checkpoint {"missing" if s is None else f"{s[1]}{s[0]}"}, '
                      f'config {"missing" if w is None else f"{w[1]}{w[0]}"}')
  more = f' (and {len(problems) - 3} more)' if len(problems) > 3 else ''
  if any(name.startswith('gan/') for name in saved) and 'd_params_avg' in {
      name.split('/')[0] for name in saved}:
    raise CheckpointMismatchError(
        f'The checkpoint of step {step} in {directory} was written by the semi-supervised '
        f'trainer of jaxgan before its redesign (an SSGANState: gan/..., d_params_avg/...); it '
        f'does not load into the GANState of this version. Use a new --workdir to retrain.')
  raise CheckpointMismatchError(
      f'The checkpoint of step {step} in {directory} was written by a different config: '
      f'{"; ".join(problems[:3])}{more}{_config_diff(directory, config)}. Use a new --workdir, '
      f'or the config that wrote these checkpoints.')


def _move_aside(mgr: ocp.CheckpointManager, step: int) -> str:
  src = os.path.join(os.fspath(mgr.directory), str(step))
  dst = f'{src}.corrupt-{time.strftime("%Y%m%d-%H%M%S")}'
  os.rename(src, dst)
  mgr.reload()
  return dst


def _first_line(e: Exception) -> str:
  lines = str(e).splitlines()
  return f'{type(e).__name__}: {lines[0][:200] if lines else ""}'


@contextlib.contextmanager
def _quiet_closed_loop_callbacks():
  """Drops the 'Event loop is closed' tracebacks of a failed orbax read.

  Orbax reads arrays on a private asyncio loop and closes it as soon as one read fails; the
  reads still in flight then call back into the closed loop, and each prints a traceback that
  says nothing about the checkpoint. Other unraisable exceptions pass through.
  """
  previous = sys.unraisablehook

  def hook(unraisable):
    if not (unraisable.exc_type is RuntimeError
            and str(unraisable.exc_value) == 'Event loop is closed'):
      previous(unraisable)

  sys.unraisablehook = hook
  try:
    yield
  except Exception:
    time.sleep(0.1)  # Let the cancelled reads finish while the hook is still in place.
    raise
  finally:
    sys.unraisablehook = previous


def _restore_verified(mgr: ocp.CheckpointManager, step: int, like, *, config):
  """Restores ``step`` into ``like``'s structure; raises ``_Unreadable`` if it is damaged."""
  try:
    with _quiet_closed_loop_callbacks():
      metadata = mgr.item_metadata(step)
      if metadata is None:
        raise ValueError('its metadata is missing')
      tree, custom = metadata.tree, metadata.custom_metadata
  except Exception as e:  # Any failure to read a damaged directory is the same to us.
    raise _Unreadable(_first_line(e)) from e
  check_compatible(tree, like, step=step, directory=os.fspath(mgr.directory), config=config)
  abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
  try:
    with _quiet_closed_loop_callbacks():
      state = mgr.restore(step, args=ocp.args.StandardRestore(abstract))
  except Exception as e:
    raise _Unreadable(_first_line(e)) from e
  expected = (custom or {}).get(DIGEST_KEY)
  if expected is None:
    logging.warning('The checkpoint of step %d has no digest (an older jaxgan wrote it); '
                    'restored without verifying it.', step)
  else:
    got = digest(state)
    bad = [k for k in expected if got.get(k) != expected[k]]
    if bad or set(got) != set(expected):
      raise _Unreadable(f'arrays differ from their digest: {", ".join(bad[:3]) or "tree"}')
  return state


def restore_latest(mgr: ocp.CheckpointManager, like, *, config=None):
  """The newest intact checkpoint restored into the structure of ``like``, or ``like`` if none.

  Damaged checkpoints are moved aside (``<step>.corrupt-<time>``) with a warning saying which
  step training resumes from instead.

  Args:
    mgr: from :func:`manager`.
    like: a state of the structure, shapes and dtypes to restore (e.g. a freshly initialized one,
      or its ``jax.eval_shape``: ``jax.ShapeDtypeStruct`` leaves; returned as is if there is no
      checkpoint).
    config: the run's config, only to name the fields that differ in a mismatch error.

  Raises:
    CheckpointMismatchError: the checkpoints hold arrays of other shapes/dtypes than ``like``.
    CorruptCheckpointError: there are checkpoints but none is intact.
  """
  steps = sorted(mgr.all_steps(), reverse=True)
  damaged = []
  for step in steps:
    try:
      state = _restore_verified(mgr, step, like, config=config)
    except _Unreadable as e:
      moved = _move_aside(mgr, step)
      damaged.append(step)
      logging.warning('The checkpoint of step %d is damaged (%s); moved it to %s and trying '
                      'the previous one.', step, e, moved)
      continue
    if damaged:
      logging.warning('Resuming from step %d, the last good checkpoint; damaged checkpoints '
                      'of steps %s were skipped.', step, damaged)
    return state
  if damaged:
    raise CorruptCheckpointError(
        f'Every checkpoint in {os.fspath(mgr.directory)} is damaged (steps {damaged}, moved '
        f'aside to <step>.corrupt-*); not starting over silently. Remove them or use a new '
        f'--workdir to train from scratch.')
  return like


def load(workdir: str, *, step: int | None = None) -> tuple[int, dict]:
  """``(step, arrays)`` of a checkpoint in ``workdir`` (default: the latest), as saved.

  Restores without a target structure: a nested dict of ``numpy`` arrays (what orbax's
  metadata describes), for inspection and tests. Training resumes with :func:`restore_latest`.
  """
  mgr = ocp.CheckpointManager(os.path.abspath(os.path.join(workdir, 'checkpoints')),
                              item_handlers=ocp.StandardCheckpointHandler(),
                              options=ocp.CheckpointManagerOptions(read_only=True))
  step = mgr.latest_step() if step is None else step
  if step is None:
    raise FileNotFoundError(f'no checkpoint in {workdir}/checkpoints')
  metadata = mgr.item_metadata(step).tree
  target = jax.tree.map(lambda m: np.zeros(m.shape, m.dtype), metadata)
  restored = mgr.restore(step, args=ocp.args.StandardRestore(target))
  mgr.close()
  return step, jax.tree.map(np.asarray, restored)
