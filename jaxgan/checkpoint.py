"""Checkpoints with orbax: atomic, rotating, array-only (no pickle; loading runs no code)."""

from __future__ import annotations

import os

import jax
import orbax.checkpoint as ocp


def manager(workdir: str, *, keep: int) -> ocp.CheckpointManager:
  """A manager for ``workdir/checkpoints`` that keeps the last ``keep`` checkpoints."""
  return ocp.CheckpointManager(
      os.path.abspath(os.path.join(workdir, 'checkpoints')),
      options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True))


def save_args(state) -> ocp.args.StandardSave:
  return ocp.args.StandardSave(state)


def restore_latest(mgr: ocp.CheckpointManager, like):
  """The latest checkpoint restored into the structure of ``like``, or ``like`` if there is none."""
  step = mgr.latest_step()
  if step is None:
    return like
  abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
  return mgr.restore(step, args=ocp.args.StandardRestore(abstract))
