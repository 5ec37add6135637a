"""Guards of the training loop: bad batches, non-finite steps, and metrics of interrupted runs.

* :func:`check_batch` rejects a batch of the wrong rank, shape, dtype or value range on the host,
  before it reaches the jitted step (where it would recompile or fail deep inside XLA).
* :class:`NonFiniteMonitor` reads the ``d_nonfinite``/``g_nonfinite`` flags that
  :func:`jaxgan.train.make_train_step` reports, a few steps at a time (one transfer per check,
  so the device is not synchronized every step), and stops the run with
  :class:`NonFiniteError` naming the step and the player, or logs each skipped update.
* :func:`rewind_metrics` drops the ``metrics.jsonl`` rows a killed run wrote after the checkpoint
  the new run resumes from, so the file reads as if the run had never been interrupted.
"""

from __future__ import annotations

import json
import os

import jax
import ml_collections
import numpy as np
from absl import logging

from jaxgan import data as data_lib

ON_NONFINITE = ('stop', 'skip')
PLAYERS = {'d': 'discriminator', 'g': 'generator'}
# The step's metrics that NonFiniteMonitor reads (jaxgan.game.make_train_step reports them).
WATCHED_METRICS = ('d_nonfinite', 'g_nonfinite', 'd_loss', 'g_loss', 'd_grad_norm', 'g_grad_norm')


class NonFiniteError(FloatingPointError):
  """A player's loss or gradients went NaN/inf and ``config.train.on_nonfinite='stop'``.

  Attributes:
    step: the flagged step (1-based, as logged).
    state: set by :func:`jaxgan.train.train_and_evaluate`: the state after the last good step
      (on the host), for a look at what went wrong; None elsewhere.
  """

  def __init__(self, message: str, step: int | None = None):
    super().__init__(message)
    self.step, self.state = step, None


def batch_spec(config: ml_collections.ConfigDict) -> dict:
  """The :func:`check_batch` keywords for the batches ``config`` trains on."""
  image = config.data.name in data_lib.IMAGE_SHAPES
  return {'data_shape': tuple(data_lib.data_shape(config.data.name)),
          'batch_size': config.train.batch_size * config.train.num_d_steps,
          'value_range': (-1.0, 1.0) if image else None}


def check_batch(batch, *, data_shape: tuple[int, ...], batch_size: int,
                value_range: tuple[float, float] | None = None, dtype=np.float32,
                step: int | None = None) -> None:
  """Raises ``ValueError`` unless ``batch['x']`` has shape ``(batch_size, *data_shape)``.

  Also checks that its dtype is ``dtype``, that every value is finite and, with ``value_range``
  ``(lo, hi)``, that ``lo <= x <= hi`` (images are scaled to [-1, 1]: ``x / 127.5 - 1``).

  Args:
    batch: a mapping with an array ``'x'``, on the host (numpy) or device.
    data_shape: the shape of one example, e.g. ``(28, 28, 1)``.
    batch_size: the number of examples (``num_d_steps * m``: all D minibatches of one step).
    value_range: inclusive bounds of the values, or None for any finite value.
    dtype: the one dtype the step was compiled for.
    step: the step the batch is for, to name it in the message.
  """
  where = f' at step {step}' if step is not None else ''
  if not hasattr(batch, 'keys') or 'x' not in batch:
    keys = sorted(batch) if hasattr(batch, 'keys') else type(batch).__name__
    raise ValueError(f"batch{where} must be a mapping with an array 'x', got {keys}")
  x = np.asarray(batch['x'])
  want = (batch_size, *data_shape)
  if x.ndim != len(want):
    raise ValueError(f"batch['x']{where} has rank {x.ndim} (shape {x.shape}); expected rank "
                     f'{len(want)}: (batch, {", ".join(map(str, data_shape))})')
  if x.shape != want:
    raise ValueError(f"batch['x']{where} has shape {x.shape}; expected {want}")
  if x.dtype != np.dtype(dtype):
    raise ValueError(f"batch['x']{where} has dtype {x.dtype}; expected {np.dtype(dtype)} "
                     f'(convert with .astype(np.{np.dtype(dtype)}))')
  finite = np.isfinite(x)
  if not finite.all():
    first = np.unravel_index(np.argmin(finite), x.shape)
    raise ValueError(f"batch['x']{where} has {x.size - finite.sum()} non-finite values "
                     f'(first at index {tuple(map(int, first))}: {x[first]})')
  if value_range is not None:
    lo, hi = value_range
    x_min, x_max = float(x.min()), float(x.max())
    if x_min < lo or x_max > hi:
      hint = ' (images are scaled by x / 127.5 - 1)' if (lo, hi) == (-1.0, 1.0) else ''
      raise ValueError(f"batch['x']{where} has values in [{x_min:g}, {x_max:g}]; expected "
                       f'[{lo:g}, {hi:g}]{hint}')


def check_images(images: dict[str, np.ndarray], *, data_shape: tuple[int, ...],
                 num_classes: int = 0, name: str = 'images') -> None:
  """Raises ``ValueError`` unless ``images`` is ``{'image': (N, *data_shape) uint8, 'label':
  (N,) int}`` with labels in ``[0, num_classes)`` (when ``num_classes > 0``).

  The whole dataset a run keeps in memory is checked once, when it is loaded; uint8 pixels are
  in range and finite by construction.
  """
  x, labels = np.asarray(images['image']), np.asarray(images['label'])
  if x.ndim != len(data_shape) + 1 or x.shape[1:] != tuple(data_shape):
    raise ValueError(f"{name}: images have shape {x.shape}; expected (N, "
                     f"{', '.join(map(str, data_shape))})")
  if x.dtype != np.uint8:
    raise ValueError(f'{name}: images have dtype {x.dtype}; expected uint8 pixels in [0, 255]')
  if labels.shape != (x.shape[0],):
    raise ValueError(f'{name}: labels have shape {labels.shape}; expected ({x.shape[0]},)')
  if num_classes and labels.size and not 0 <= labels.min() <= labels.max() < num_classes:
    raise ValueError(f'{name}: labels in [{labels.min()}, {labels.max()}]; expected '
                     f'[0, {num_classes - 1}]')


def describe_nonfinite(step: int, metrics: dict[str, float]) -> str:
  """``'step 7: the discriminator went non-finite (d_loss=nan, d_grad_norm=nan)'``."""
  players = [p for p in PLAYERS if metrics.get(f'{p}_nonfinite', 0.0) > 0]
  values = ', '.join(f'{p}_{name}={metrics[f"{p}_{name}"]:g}' for p in players
                     for name in ('loss', 'grad_norm') if f'{p}_{name}' in metrics)
  who = ' and the '.join(PLAYERS[p] for p in players)
  return f'step {step}: the {who} went non-finite ({values})'


class NonFiniteMonitor:
  """Watches the steps' non-finite flags and stops or warns, by ``config.train.on_nonfinite``.

  ``record`` keeps each step's flags on device; ``check`` fetches them all at once. Call
  ``check`` before anything that would keep a non-finite state (a checkpoint) and before
  logging or plotting, so a checkpoint is only ever written after every step before it was
  checked.

  Args:
    on_nonfinite: ``'stop'``: raise :class:`NonFiniteError` at the first flagged step;
      ``'skip'``: the step already kept the previous state (``make_train_step(...,
      skip_nonfinite=True)``), so log a warning per skipped step and go on.
    manager: the run's orbax checkpoint manager, or None. Before raising, its pending saves
      are finished and it is closed, so the last good checkpoint is complete on disk.
  """

  def __init__(self, on_nonfinite: str, *, manager=None):
    if on_nonfinite not in ON_NONFINITE:
      raise ValueError(f'on_nonfinite={on_nonfinite!r} is not allowed; expected one of '
                       f'{list(ON_NONFINITE)}')
    self.on_nonfinite, self.manager = on_nonfinite, manager
    self.skipped: list[int] = []
    self._pending: list[tuple[int, dict]] = []

  def record(self, step: int, metrics) -> None:
    """Keeps ``metrics``' flags of ``step`` (device arrays; nothing is transferred)."""
    self._pending.append((step, {k: metrics[k] for k in WATCHED_METRICS if k in metrics}))

  def check(self) -> list[int]:
    """Fetches the recorded flags; returns the flagged steps (``'skip'``) or raises (``'stop'``)."""
    pending, self._pending = self._pending, []
    if not pending:
      return []
    host = jax.device_get([m for _, m in pending])
    flagged = []
    for (step, _), metrics in zip(pending, host, strict=True):
      metrics = {k: float(np.asarray(v).reshape(-1)[0]) for k, v in metrics.items()}
      if not (metrics.get('d_nonfinite', 0.0) > 0 or metrics.get('g_nonfinite', 0.0) > 0):
        continue
      if self.on_nonfinite == 'stop':
        raise NonFiniteError(self._stop_message(step, metrics), step=step)
      logging.warning('Skipped the update of %s; the state is the one before it '
                      "(config.train.on_nonfinite='skip').", describe_nonfinite(step, metrics))
      flagged.append(step)
    self.skipped.extend(flagged)
    return flagged

  def check_chunk(self, first_step: int, watched) -> list[int]:
    """:meth:`record` and :meth:`check` for a chunk's steps ``first_step, first_step + 1, ...``.

    ``watched`` maps each of :data:`WATCHED_METRICS` to its per-step values, ``(length,)`` (or
    ``(devices, length)``: the values agree across devices); one transfer for the chunk.
    """
    host = {k: np.asarray(v) for k, v in jax.device_get(dict(watched)).items()}
    host = {k: v.reshape(-1, v.shape[-1])[0] for k, v in host.items()}
    flagged = np.flatnonzero((host.get('d_nonfinite', 0) > 0) | (host.get('g_nonfinite', 0) > 0))
    for i in flagged:
      self._pending.append((first_step + int(i), {k: v[i] for k, v in host.items()}))
    return self.check()

  def _stop_message(self, step: int, metrics: dict[str, float]) -> str:
    kept = ''
    if self.manager is not None:
      self.manager.wait_until_finished()
      last = self.manager.latest_step()
      self.manager.close()
      kept = (f' The last good checkpoint (step {last}) is kept in {self.manager.directory}; '
              'rerunning the same command resumes from it.' if last is not None else
              ' No checkpoint had been written yet.')
    text = describe_nonfinite(step, metrics)
    return (f'Training stopped at {text}.{kept} Set --config.train.on_nonfinite=skip to skip '
            f'such updates, or lower the learning rates.')


def rewind_metrics(path: str, step: int) -> int:
  """Drops the rows of the JSON-lines file ``path`` after ``step`` and any unreadable line.

  A run killed after its last checkpoint has logged steps the resumed run will log again, and
  a kill during a write leaves half a line. Returns the number of dropped lines.
  """
  if not os.path.exists(path):
    return 0
  with open(path) as f:
    lines = f.read().splitlines()
  kept = []
  for line in lines:
    try:
      row = json.loads(line)
    except ValueError:
      continue
    if isinstance(row, dict) and row.get('step', 0) <= step:
      kept.append(line)
  dropped = len(lines) - len(kept)
  if dropped:
    tmp = f'{path}.tmp'
    with open(tmp, 'w') as f:
      f.write(''.join(f'{line}\n' for line in kept))
    os.replace(tmp, path)
    logging.info('Dropped %d lines of %s logged after step %d, where this run resumes.',
                 dropped, path, step)
  return dropped
