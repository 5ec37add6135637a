"""A two-player game and its one train step: the update rule, and nothing GAN-specific.

A *player* is its parameters, an optax optimizer and an *objective*: a pure function

    objective(params, state, batch, *, key, shared_key) -> (loss, (model_state, metrics))

that the player minimizes over ``params``. ``state`` is the whole :class:`GANState` (the other
player's parameters, both players' model state), ``batch`` this update's minibatch,
``model_state`` the player's new batch-norm/spectral-norm statistics (``{}`` if none) and
``metrics`` a dict of scalars. ``key`` is the update's own randomness; ``shared_key`` fixes the
*point of the game* the update is taken at (e.g. the latents of the fakes): in a simultaneous
step both players get the same ``shared_key``, so they see the same samples. A GAN's
objectives are built in :mod:`jaxgan.gan`; the bilinear game ``V(x, y) = x y`` in
:mod:`jaxgan.dynamics` is two one-line objectives.

:func:`make_train_step` composes the two objectives under an update rule (Goodfellow et al.
2014, arXiv:1406.2661, Algorithm 1, for ``min_G max_D V``):

* ``'alternating'``: ``num_d_steps`` D updates, each on its own minibatch, then one G update
  against the *updated* D.
* ``'simultaneous'``: both gradients at the same point ``(theta_G, theta_D)``, then both applied.
* ``'g_first'``: one G update, then ``num_d_steps`` D updates against the updated G (the order of
  CycleGAN's code, arXiv:1703.10593).

Keys: the step folds ``state.step`` into the key it is given and splits it into
``(k_shared, k_d, k_g)``. D update ``j`` of an alternating step gets ``key=fold_in(k_d, j)``,
``shared_key=fold_in(k_shared, j)``; G gets ``key=shared_key=k_g``. A simultaneous step gives D
``(k_d, k_shared)`` and G ``(k_g, k_shared)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax
import jax
import jax.numpy as jnp
import optax
from jax import lax

UPDATE_RULES = ('alternating', 'simultaneous', 'g_first')
Objective = Callable[..., tuple[jax.Array, tuple[Any, dict]]]


@flax.struct.dataclass
class GANState:
  """Everything that changes during training; a pytree, checkpointed as a whole.

  Attributes:
    step: number of completed train steps (G updates), int32 scalar.
    g_params, d_params: the players' parameters (any pytrees: two generators of a CycleGAN are
      one dict).
    g_opt_state, d_opt_state: the players' optax states.
    g_batch_stats, d_batch_stats: the players' model state, e.g. batch-norm running statistics
      (``{}`` for models without).
    ema_g_params: exponential moving average of ``g_params`` (see :func:`update_ema`) when the
      step averages, else ``{}``.
  """

  step: jax.Array
  g_params: Any
  d_params: Any
  g_opt_state: Any
  d_opt_state: Any
  g_batch_stats: Any
  d_batch_stats: Any
  ema_g_params: Any = flax.struct.field(default_factory=dict)


def update_ema(ema_params, params, *, decay: float, step: jax.Array):
  """One step of the exponential moving average of G's weights.

  ``ema <- d ema + (1 - d) params`` with ``d = min(decay, (1 + step) / (10 + step))``: the warm-up
  (TensorFlow's ``ExponentialMovingAverage(num_updates=step)``) keeps the average from dwelling on
  the random initial weights early in a run. Averaged generator weights give smoother, better
  samples (Yazici et al. 2018, arXiv:1806.04498; Karras et al. 2017, arXiv:1710.10196).
  """
  step = jnp.asarray(step, jnp.float32)
  d = jnp.minimum(decay, (1 + step) / (10 + step))
  return optax.incremental_update(params, ema_params, step_size=1 - d)


def minibatch(batch: dict, j: int, k: int) -> dict:
  """Minibatch ``j`` of ``k`` in ``batch``: rows ``j, j + k, j + 2k, ...`` of every entry.

  Row ``i k + j`` belongs to minibatch ``j``, so every device of a split batch holds its share of
  every minibatch.
  """
  if k == 1:
    return batch
  for name, a in batch.items():
    if a.shape[0] % k:
      raise ValueError(f'batch[{name!r}] has {a.shape[0]} rows, not divisible by '
                       f'num_d_steps={k}')
  return jax.tree.map(lambda a: a.reshape((a.shape[0] // k, k, *a.shape[1:]))[:, j], batch)


def make_train_step(*, g_objective: Objective, d_objective: Objective,
                    g_optimizer: optax.GradientTransformation,
                    d_optimizer: optax.GradientTransformation, update_rule: str = 'alternating',
                    num_d_steps: int = 1, axis_name: str | None = None,
                    d_projection: Callable | None = None, ema_decay: float = 0.0,
                    skip_nonfinite: bool = False):
  """Builds the pure ``train_step(state, batch, key) -> (state, metrics)`` of a two-player game.

  Args:
    g_objective, d_objective: the players' objectives (see the module docstring).
    g_optimizer, d_optimizer: one optax transformation per player.
    update_rule: ``'alternating'``, ``'simultaneous'`` or ``'g_first'`` (the module docstring).
    num_d_steps: D updates per step (``k`` of Algorithm 1; not for ``'simultaneous'``). Each
      entry of ``batch`` then holds ``k`` minibatches (:func:`minibatch`); G gets the last.
    axis_name: the device axis under ``pmap``/``shard_map``: gradients, model state and metrics
      are averaged over it with ``lax.pmean``. None on one device.
    d_projection: ``params -> params`` applied to D after each of its updates (e.g. WGAN's
      weight clipping, ``optax.projections.projection_box``).
    ema_decay: > 0 keeps :func:`update_ema` of G's weights in ``state.ema_g_params``.
    skip_nonfinite: a step with a non-finite loss or gradient norm returns the state from
      before it, with only ``step`` advanced (``optax.apply_if_finite``'s semantics, for both
      players at once).

  Returns:
    ``train_step``. Metrics: each objective's, plus ``d_loss``, ``g_loss``, ``d_grad_norm``,
    ``g_grad_norm`` and ``d_nonfinite``/``g_nonfinite`` (1.0 if that player's loss or gradient
    norm, of its last update, is NaN/inf), averaged over devices.
  """
  if update_rule not in UPDATE_RULES:
    raise ValueError(f'unknown update rule {update_rule!r}; expected one of {list(UPDATE_RULES)}')
  if not (isinstance(num_d_steps, int) and num_d_steps >= 1):
    raise ValueError(f'num_d_steps must be >= 1 (an int), got {num_d_steps!r}')
  if update_rule == 'simultaneous' and num_d_steps != 1:
    raise ValueError(f"update_rule='simultaneous' takes both gradients at one point, so "
                     f'num_d_steps must be 1, got {num_d_steps}')
  if not 0 <= ema_decay < 1:
    raise ValueError(f'ema_decay must be in [0, 1), got {ema_decay!r}')
  pmean = (lambda tree: lax.pmean(tree, axis_name)) if axis_name else (lambda tree: tree)
  players = {'g': (g_objective, g_optimizer, None), 'd': (d_objective, d_optimizer, d_projection)}

  def player_update(p, state: GANState, batch, key, shared_key):
    """``(fields of the state to replace, metrics)`` after one update of player ``p``."""
    objective, optimizer, project = players[p]
    params, opt_state = getattr(state, f'{p}_params'), getattr(state, f'{p}_opt_state')
    (loss, (model_state, metrics)), grads = jax.value_and_grad(objective, has_aux=True)(
        params, state, batch, key=key, shared_key=shared_key)
    grads = pmean(grads)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    params = optax.apply_updates(params, updates)
    if project is not None:
      params = project(params)
    metrics = {**metrics, f'{p}_loss': loss, f'{p}_grad_norm': optax.tree.norm(grads)}
    return {f'{p}_params': params, f'{p}_opt_state': opt_state,
            f'{p}_batch_stats': pmean(model_state)}, metrics

  def train_step(state: GANState, batch: dict, key: jax.Array):
    if ema_decay and not state.ema_g_params:
      raise ValueError(f'ema_decay={ema_decay} needs a state with ema_g_params, a copy of '
                       f'g_params at the start (jaxgan.gan.init_state(..., ema=True))')
    k_shared, k_d, k_g = jax.random.split(jax.random.fold_in(key, state.step), 3)
    k = num_d_steps
    minibatches = [minibatch(batch, j, k) for j in range(k)]

    def d_steps(state):
      for j in range(k):
        fields, d_metrics = player_update('d', state, minibatches[j], jax.random.fold_in(k_d, j),
                                          jax.random.fold_in(k_shared, j))
        state = state.replace(**fields)
      return state, d_metrics

    if update_rule == 'simultaneous':
      d_fields, d_metrics = player_update('d', state, batch, k_d, k_shared)
      g_fields, g_metrics = player_update('g', state, batch, k_g, k_shared)
      new_state = state.replace(**d_fields, **g_fields)
    elif update_rule == 'alternating':
      new_state, d_metrics = d_steps(state)
      g_fields, g_metrics = player_update('g', new_state, minibatches[-1], k_g, k_g)
      new_state = new_state.replace(**g_fields)
    else:
      g_fields, g_metrics = player_update('g', state, minibatches[-1], k_g, k_g)
      new_state, d_metrics = d_steps(state.replace(**g_fields))
    if ema_decay:
      new_state = new_state.replace(ema_g_params=update_ema(
          new_state.ema_g_params, new_state.g_params, decay=ema_decay, step=state.step))
    metrics = pmean({**d_metrics, **g_metrics})
    for p in ('d', 'g'):  # A global norm is finite iff every gradient is (below ~1e19).
      finite = jnp.isfinite(metrics[f'{p}_loss']) & jnp.isfinite(metrics[f'{p}_grad_norm'])
      metrics[f'{p}_nonfinite'] = 1.0 - finite.astype(jnp.float32)
    if skip_nonfinite:
      bad = (metrics['d_nonfinite'] + metrics['g_nonfinite']) > 0
      new_state = jax.tree.map(lambda old, new: jnp.where(bad, old, new), state, new_state)
    return new_state.replace(step=state.step + 1), metrics

  return train_step
