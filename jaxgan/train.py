"""GAN state, the pure train step, data parallelism, and `train_and_evaluate`.

The train step is a pure function ``train_step(state, batch, key) -> (state, metrics)`` built by
:func:`make_train_step`. It knows nothing about devices: with ``axis_name`` set it averages
gradients, metrics and batch-norm statistics with ``lax.pmean``, and :func:`parallelize` wraps it
in ``jax.pmap`` or ``jax.jit`` + ``jax.shard_map`` at the call site.

Update rules (the two-player game ``min_G max_D V(G, D)``, Goodfellow et al. 2014,
arXiv:1406.2661, Algorithm 1):

* ``'alternating'``: ``num_d_steps`` discriminator updates, each on its own real minibatch and
  fresh fakes, then one generator update against the *updated* discriminator.
* ``'simultaneous'``: both gradients are taken at the same point ``(theta_G, theta_D)`` (the same
  fakes), then both are applied.

Randomness: the step derives everything from ``fold_in(key, state.step)``; latents are drawn for
the global batch and each device keeps its own rows, so N devices on B/N examples each compute
what one device computes on B.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from absl import logging
from jax import lax
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from jaxgan import conditional, losses, mode_collapse, models, penalties, visualize
from jaxgan import data as data_lib

UPDATE_RULES = ('alternating', 'simultaneous')
PARALLEL_MODES = ('none', 'pmap', 'shard_map')
LATENT_DISTRIBUTIONS = ('uniform', 'normal')
MODELS = ('gaussian_1d_mlp', 'mnist_mlp', 'mlp', 'dcgan')
AXIS_NAME = 'batch'


@flax.struct.dataclass
class GANState:
  """Everything that changes during training; a pytree, checkpointed as a whole.

  Attributes:
    step: number of completed generator updates, int32 scalar.
    g_params, d_params: the players' parameters.
    g_opt_state, d_opt_state: the players' optax states.
    g_batch_stats, d_batch_stats: batch-norm running statistics (``{}`` for models without).
    ema_g_params: exponential moving average of ``g_params`` when ``train.ema_decay > 0``
      (see :func:`update_ema`), else ``{}``.
  """

  step: jax.Array
  g_params: Any
  d_params: Any
  g_opt_state: Any
  d_opt_state: Any
  g_batch_stats: Any
  d_batch_stats: Any
  ema_g_params: Any = flax.struct.field(default_factory=dict)


def sample_latent(key: jax.Array, num: int, latent_dim: int,
                  distribution: str = 'uniform') -> jax.Array:
  """Latents ``z`` of shape ``(num, latent_dim)``: U[-1, 1] (the seeds' choice) or N(0, I)."""
  if distribution == 'uniform':
    return jax.random.uniform(key, (num, latent_dim), minval=-1.0, maxval=1.0)
  if distribution == 'normal':
    return jax.random.normal(key, (num, latent_dim))
  raise ValueError(f'unknown latent distribution {distribution!r}; '
                   f'expected one of {list(LATENT_DISTRIBUTIONS)}')


def init_state(key: jax.Array, *, generator: nn.Module, discriminator: nn.Module,
               g_optimizer: optax.GradientTransformation,
               d_optimizer: optax.GradientTransformation, latent_dim: int,
               data_shape: tuple[int, ...], pack: int = 1, ema: bool = False) -> GANState:
  """Initializes both players' variables and optimizer states at step 0.

  With ``pack > 1`` (PacGAN) D is built for inputs of ``packed_shape(data_shape, pack)``.
  With ``ema``, ``ema_g_params`` starts as a copy of ``g_params``.
  """
  k_g, k_d = jax.random.split(key)
  g_vars = generator.init(k_g, jnp.zeros((1, latent_dim)), train=False)
  d_vars = discriminator.init(
      k_d, jnp.zeros((1, *mode_collapse.packed_shape(data_shape, pack))), train=False)
  return GANState(
      step=jnp.zeros((), jnp.int32),
      g_params=g_vars['params'], d_params=d_vars['params'],
      g_opt_state=g_optimizer.init(g_vars['params']),
      d_opt_state=d_optimizer.init(d_vars['params']),
      g_batch_stats=g_vars.get('batch_stats', {}), d_batch_stats=d_vars.get('batch_stats', {}),
      ema_g_params=jax.tree.map(jnp.copy, g_vars['params']) if ema else {})


def apply_model(model: nn.Module, params, batch_stats, x, *, train: bool, labels=None):
  """Runs ``model`` and returns ``(output, new_batch_stats)``; stats change only when training.

  ``labels`` (``(B,)`` ints) is passed on to class-conditional models (:mod:`jaxgan.conditional`).
  """
  variables = {'params': params}
  kwargs = {} if labels is None else {'labels': labels}
  if batch_stats:
    variables['batch_stats'] = batch_stats
    if train:
      out, updates = model.apply(variables, x, train=True, mutable=['batch_stats'], **kwargs)
      return out, updates['batch_stats']
  return model.apply(variables, x, train=train, **kwargs), batch_stats


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


def sample_labels(key: jax.Array, num: int, num_classes: int) -> jax.Array:
  """Class labels drawn uniformly from ``{0, ..., num_classes - 1}``, shape ``(num,)`` int32."""
  return jax.random.randint(key, (num,), 0, num_classes)


def _apply_gradients(tx: optax.GradientTransformation, params, opt_state, grads):
  updates, opt_state = tx.update(grads, opt_state, params)
  return optax.apply_updates(params, updates), opt_state


def _local_rows(key: jax.Array, sample: Callable[[jax.Array, int], jax.Array], num_local: int,
                axis_name: str | None) -> jax.Array:
  """Draws ``sample(key, global_batch)`` and keeps this device's rows (all rows on one device).

  Drawing the global batch everywhere costs a few extra random numbers and makes the result
  independent of the device count.
  """
  if axis_name is None:
    return sample(key, num_local)
  everything = sample(key, num_local * lax.axis_size(axis_name))
  return lax.dynamic_slice_in_dim(everything, lax.axis_index(axis_name) * num_local, num_local)


def make_train_step(*, generator: nn.Module, discriminator: nn.Module,
                    g_optimizer: optax.GradientTransformation,
                    d_optimizer: optax.GradientTransformation,
                    d_loss_fn: Callable = losses.minimax_discriminator_loss,
                    g_loss_fn: Callable = losses.non_saturating_generator_loss,
                    latent_dim: int, latent_distribution: str = 'uniform',
                    update: str = 'alternating', num_d_steps: int = 1,
                    gradient_penalty_weight: float = 0.0, r1_gamma: float = 0.0,
                    r1_every: int = 1, weight_clip: float | None = None,
                    axis_name: str | None = None,
                    feature_matching: bool = False, unrolled_steps: int = 0, pack: int = 1,
                    instance_noise: float = 0.0, skip_nonfinite: bool = False,
                    num_classes: int = 0, auxiliary_classifier_weight: float = 0.0,
                    ema_decay: float = 0.0):
  """Builds the pure ``train_step(state, batch, key) -> (state, metrics)``.

  Args:
    generator, discriminator: flax modules (see :mod:`jaxgan.models` for the conventions).
    g_optimizer, d_optimizer: one optax transformation per player.
    d_loss_fn: ``(real_logits, fake_logits) -> scalar``, minimized by D.
    g_loss_fn: ``fake_logits -> scalar``, minimized by G.
    latent_dim, latent_distribution: the prior of ``z`` (see :func:`sample_latent`).
    update: ``'alternating'`` or ``'simultaneous'`` (see the module docstring).
    num_d_steps: D updates per G update (``k`` of Algorithm 1); alternating only. The batch then
      holds ``num_d_steps * m`` examples and D step ``j`` uses rows ``j, j + k, j + 2k, ...``.
    gradient_penalty_weight: lambda of WGAN-GP (arXiv:1704.00028); 0 turns it off.
    r1_gamma: gamma of the R1 penalty, added to D's loss as ``gamma / 2 * R1``
      (arXiv:1801.04406); 0 turns it off.
    r1_every: lazy regularization (StyleGAN2, arXiv:1912.04958, Section 3.1): R1 enters D's loss
      only on the train steps with ``state.step % r1_every == 0``, as ``r1_every * gamma / 2 *
      R1``, the same weight per step on average for ``1 / r1_every`` of its cost (a
      ``lax.cond``: under ``jax.vmap`` keep ``state.step`` unbatched, or both branches run).
    weight_clip: clip D's weights to ``[-c, c]`` after each update (WGAN, arXiv:1701.07875).
    axis_name: the device axis when run under ``pmap``/``shard_map``; None on one device.
    feature_matching: G minimizes :func:`jaxgan.mode_collapse.feature_matching_loss` of D's sown
      ``'features'`` on a real minibatch (the last D step's) and its fakes, instead of
      ``g_loss_fn`` (arXiv:1606.03498).
    unrolled_steps: ``K``; G's loss is taken against D after ``K`` more updates with
      ``d_optimizer`` on the same real minibatch and G's fakes, differentiated through
      (arXiv:1611.02163). These look-ahead updates are not kept: D trains as usual.
      Differentiating through Adam needs ``optax.adam(..., eps_root=1e-8)``: with the default
      ``eps_root=0`` a parameter with zero gradient gives ``d sqrt(v) / dv = inf`` and a NaN.
    pack: PacGAN's ``m`` (arXiv:1712.04086): D judges ``pack`` samples concatenated, so init D
      with ``init_state(..., pack=pack)``; ``m`` must divide the (per-device) minibatch.
    instance_noise: std of Gaussian noise added to every real and fake input of D, in D's and
      G's updates (arXiv:1610.04490); 0 turns it off.
    skip_nonfinite: if a loss or gradient norm of the step is NaN/inf, return the state as it
      was before the step (both players), with only ``step`` advanced; the step is still
      reported in the metrics (see :mod:`jaxgan.faults`).
    num_classes: ``K > 0`` trains a class-conditional GAN (:mod:`jaxgan.conditional`): G and D
      get ``labels=`` (real data's ``batch['label']``; fakes' drawn uniformly from the key, for
      the global batch like the latents); 0 is unconditional.
    auxiliary_classifier_weight: AC-GAN's ``lambda`` (arXiv:1610.09585); D returns
      ``(logits, class_logits)`` and both players minimize ``lambda`` times the class
      cross-entropy: D on real and fake data, G on fake data. 0 turns it off.
    ema_decay: decay of the moving average of G's weights in ``state.ema_g_params`` (see
      :func:`update_ema`; the state needs ``init_state(..., ema=True)``); 0 turns it off.
    Feature matching, unrolling and packing are for unconditional models: with
    ``num_classes > 0`` they raise a ``ValueError``.

  Returns:
    ``train_step(state, batch, key)``. ``batch['x']`` has shape ``(num_d_steps * m, *data_shape)``
    (per device under pmap/shard_map); ``key`` is the run's key, folded with ``state.step``.
    Metrics (scalars): ``d_loss``, ``g_loss``, ``d_real`` and ``d_fake`` (mean sigmoid of D's
    logits on real and fake data, i.e. mean D(x) and D(G(z))), ``d_grad_norm``, ``g_grad_norm``,
    and ``d_nonfinite``/``g_nonfinite``: 1.0 if that player's loss or gradient norm (of its last
    update in the step) is NaN/inf, else 0.0 (the same on every device). With an auxiliary
    classifier also ``d_class_loss``, ``g_class_loss`` (the cross-entropies before weighting)
    and ``d_class_accuracy`` (D's accuracy on real labels).
  """
  if update not in UPDATE_RULES:
    raise ValueError(f'unknown update rule {update!r}; expected one of {list(UPDATE_RULES)}')
  if num_d_steps < 1:
    raise ValueError(f'num_d_steps must be >= 1, got {num_d_steps}')
  if update == 'simultaneous' and num_d_steps != 1:
    raise ValueError(f"update='simultaneous' takes both gradients at one point, so num_d_steps "
                     f'must be 1, got {num_d_steps}')
  if unrolled_steps < 0:
    raise ValueError(f'unrolled_steps must be >= 0, got {unrolled_steps}')
  if pack < 1:
    raise ValueError(f'pack must be >= 1, got {pack}')
  if r1_every < 1:
    raise ValueError(f'r1_every must be >= 1, got {r1_every}')
  if not instance_noise >= 0:
    raise ValueError(f'instance_noise must be >= 0, got {instance_noise}')
  if num_classes and (pack > 1 or feature_matching or unrolled_steps):
    raise ValueError(f'pack={pack}, feature_matching={feature_matching} and '
                     f'unrolled_steps={unrolled_steps} are for unconditional models; '
                     f'num_classes={num_classes} needs pack=1, no feature matching, no unrolling')
  sample_z = functools.partial(sample_latent, latent_dim=latent_dim,
                               distribution=latent_distribution)
  if num_classes < 0 or auxiliary_classifier_weight < 0 or not 0 <= ema_decay < 1:
    raise ValueError(f'need num_classes >= 0, auxiliary_classifier_weight >= 0 and '
                     f'0 <= ema_decay < 1; got {num_classes}, {auxiliary_classifier_weight}, '
                     f'{ema_decay}')
  if auxiliary_classifier_weight and not num_classes:
    raise ValueError(f'auxiliary_classifier_weight={auxiliary_classifier_weight} needs '
                     f'num_classes > 0')
  pmean = (lambda tree: lax.pmean(tree, axis_name)) if axis_name else (lambda tree: tree)
  label_sampler = functools.partial(sample_labels, num_classes=num_classes)

  def fake_labels(key, num):
    """The labels ``generate(..., key, num)`` conditions on (None when unconditional)."""
    if not num_classes:
      return None
    return _local_rows(jax.random.fold_in(key, 1), label_sampler, num, axis_name)

  def class_loss(class_logits, labels):
    return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(class_logits, labels))

  def generate(g_params, g_batch_stats, key, num):
    z = _local_rows(key, sample_z, num, axis_name)
    return apply_model(generator, g_params, g_batch_stats, z, train=True,
                       labels=fake_labels(key, num))

  def d_view(x, key):
    """What D is shown of a batch: instance noise added, then PacGAN packs formed."""
    if instance_noise:
      if axis_name:
        key = jax.random.fold_in(key, lax.axis_index(axis_name))
      x = mode_collapse.add_instance_noise(key, x, std=instance_noise)
    return mode_collapse.pack_samples(x, pack)

  def d_loss(d_params, state: GANState, real, fake, key, real_y=None, fake_y=None):
    if pack > 1 or instance_noise:
      k_real, k_fake = jax.random.split(jax.random.fold_in(key, 1))
      real, fake = d_view(real, k_real), d_view(fake, k_fake)
    real_out, d_stats = apply_model(discriminator, d_params, state.d_batch_stats, real,
                                    train=True, labels=real_y)
    fake_out, d_stats = apply_model(discriminator, d_params, d_stats, fake, train=True,
                                    labels=fake_y)
    (real_logits, real_class), (fake_logits, fake_class) = (
        conditional.split_logits(real_out), conditional.split_logits(fake_out))
    loss = d_loss_fn(real_logits, fake_logits)
    extra = {}
    if auxiliary_classifier_weight:
      extra['d_class_loss'] = class_loss(real_class, real_y) + class_loss(fake_class, fake_y)
      extra['d_class_accuracy'] = jnp.mean(jnp.argmax(real_class, -1) == real_y)
      loss += auxiliary_classifier_weight * extra['d_class_loss']
    d_fn = lambda x: conditional.split_logits(apply_model(
        discriminator, d_params, d_stats, x, train=True, labels=real_y)[0])[0]
    if gradient_penalty_weight:
      if axis_name:
        key = jax.random.fold_in(key, lax.axis_index(axis_name))
      loss += gradient_penalty_weight * penalties.gradient_penalty(d_fn, real, fake, key)
    if r1_gamma:
      r1 = lambda: 0.5 * r1_gamma * r1_every * penalties.r1_penalty(d_fn, real)
      loss += r1() if r1_every == 1 else lax.cond(state.step % r1_every == 0, r1,
                                                  lambda: jnp.zeros((), loss.dtype))
    metrics = {'d_loss': loss, 'd_real': jnp.mean(nn.sigmoid(real_logits)),
               'd_fake': jnp.mean(nn.sigmoid(fake_logits)), **extra}
    return loss, (d_stats, metrics)

  def g_loss(g_params, state: GANState, key, num, real=None):
    fake, g_stats = generate(g_params, state.g_batch_stats, key, num)
    if unrolled_steps:
      state = unrolled_d(state, real, fake, key)
    k_real, k_fake = jax.random.split(jax.random.fold_in(key, 1))
    if feature_matching:
      _, real_features, _ = mode_collapse.discriminator_features(
          discriminator, state.d_params, state.d_batch_stats, d_view(real, k_real), train=True)
      _, fake_features, _ = mode_collapse.discriminator_features(
          discriminator, state.d_params, state.d_batch_stats, d_view(fake, k_fake), train=True)
      loss = mode_collapse.feature_matching_loss(real_features, fake_features,
                                                 axis_name=axis_name)
      return loss, (g_stats, {'g_loss': loss})
    fake_y = fake_labels(key, num)
    fake_out, _ = apply_model(discriminator, state.d_params, state.d_batch_stats,
                              d_view(fake, k_fake), train=True, labels=fake_y)
    fake_logits, fake_class = conditional.split_logits(fake_out)
    loss = g_loss_fn(fake_logits)
    extra = {}
    if auxiliary_classifier_weight:
      extra['g_class_loss'] = class_loss(fake_class, fake_y)
      loss += auxiliary_classifier_weight * extra['g_class_loss']
    return loss, (g_stats, {'g_loss': loss, **extra})

  def unrolled_d(state: GANState, real, fake, key):
    """D after ``unrolled_steps`` updates on ``(real, fake)``; differentiable in ``fake``."""
    def d_update(carry):
      state, j = carry
      grads, (d_stats, _) = jax.grad(d_loss, has_aux=True)(
          state.d_params, state, real, fake, jax.random.fold_in(key, 2 + j))
      return apply_d(state, pmean(grads), pmean(d_stats)), j + 1
    return mode_collapse.unroll(d_update, (state, 0), unrolled_steps)[0]

  def d_gradients(state: GANState, real, k_z, k_penalty, real_y=None):
    """D's gradients at ``state`` on ``real`` and fakes drawn with ``k_z``."""
    fake, g_stats = generate(state.g_params, state.g_batch_stats, k_z, real.shape[0])
    grads, (d_stats, metrics) = jax.grad(d_loss, has_aux=True)(
        state.d_params, state, real, lax.stop_gradient(fake), k_penalty, real_y,
        fake_labels(k_z, real.shape[0]))
    grads = pmean(grads)
    metrics['d_grad_norm'] = optax.tree.norm(grads)
    return grads, g_stats, pmean(d_stats), metrics

  def g_gradients(state: GANState, key, num, real=None):
    grads, (g_stats, metrics) = jax.grad(g_loss, has_aux=True)(state.g_params, state, key, num,
                                                                real)
    grads = pmean(grads)
    metrics['g_grad_norm'] = optax.tree.norm(grads)
    return grads, pmean(g_stats), metrics

  def apply_d(state: GANState, grads, d_stats):
    d_params, d_opt_state = _apply_gradients(d_optimizer, state.d_params, state.d_opt_state,
                                             grads)
    if weight_clip is not None:
      d_params = penalties.clip_weights(d_params, weight_clip)
    return state.replace(d_params=d_params, d_opt_state=d_opt_state, d_batch_stats=d_stats)

  def apply_g(state: GANState, grads, g_stats):
    g_params, g_opt_state = _apply_gradients(g_optimizer, state.g_params, state.g_opt_state,
                                             grads)
    return state.replace(g_params=g_params, g_opt_state=g_opt_state, g_batch_stats=g_stats)

  def train_step(state: GANState, batch: dict[str, jax.Array], key: jax.Array):
    start_state = state
    x = batch['x']
    if x.shape[0] % num_d_steps:
      raise ValueError(f'batch of {x.shape[0]} examples is not divisible by '
                       f'num_d_steps={num_d_steps}')
    m = x.shape[0] // num_d_steps
    # Row i*k + j belongs to D step j: every device then holds its share of every minibatch.
    minibatches = x.reshape((m, num_d_steps, *x.shape[1:]))
    label_minibatches = [None] * num_d_steps
    if num_classes:
      if 'label' not in batch:
        raise ValueError(f'num_classes={num_classes} needs labelled batches; the batch has only '
                         f'{sorted(batch)}')
      label_minibatches = batch['label'].reshape((m, num_d_steps)).T
    key = jax.random.fold_in(key, state.step)
    k_z, k_penalty, k_g = jax.random.split(key, 3)

    if update == 'simultaneous':
      d_grads, _, d_stats, d_metrics = d_gradients(state, minibatches[:, 0], k_z, k_penalty,
                                                   label_minibatches[0])
      # The same key draws the same fakes: both gradients are taken at one point.
      g_grads, g_stats, g_metrics = g_gradients(state, k_z, m, minibatches[:, 0])
      new_state = apply_g(apply_d(state, d_grads, d_stats), g_grads, g_stats)
    else:
      for j in range(num_d_steps):
        d_grads, g_stats, d_stats, d_metrics = d_gradients(
            state, minibatches[:, j], jax.random.fold_in(k_z, j), jax.random.fold_in(k_penalty, j),
            label_minibatches[j])
        state = apply_d(state, d_grads, d_stats).replace(g_batch_stats=pmean(g_stats))
      g_grads, g_stats, g_metrics = g_gradients(state, k_g, m, minibatches[:, -1])
      new_state = apply_g(state, g_grads, g_stats)

    if ema_decay:
      if not state.ema_g_params:
        raise ValueError(f'ema_decay={ema_decay} needs a state made by init_state(..., ema=True)')
      new_state = new_state.replace(ema_g_params=update_ema(
          new_state.ema_g_params, new_state.g_params, decay=ema_decay, step=state.step))
    metrics = pmean({**d_metrics, **g_metrics})
    for p in ('d', 'g'):  # A global norm is finite iff every gradient is (below ~1e19).
      finite = jnp.isfinite(metrics[f'{p}_loss']) & jnp.isfinite(metrics[f'{p}_grad_norm'])
      metrics[f'{p}_nonfinite'] = 1.0 - finite.astype(jnp.float32)
    if skip_nonfinite:
      keep = (metrics['d_nonfinite'] + metrics['g_nonfinite']) > 0
      new_state = jax.tree.map(lambda old, new: jnp.where(keep, old, new), start_state, new_state)
    return new_state.replace(step=state.step + 1), metrics

  return train_step


class DataParallel(NamedTuple):
  """A train step placed on devices, with the functions that move state and batches there.

  Attributes:
    step: ``step(state, batch, key) -> (state, metrics)`` on device-placed state and batch; the
      state argument is donated.
    put_state: host state -> device state (replicated on every device), always a copy, since
      ``step`` donates the state it is given.
    put_batch: a global batch ``(B, ...)`` -> the layout ``step`` takes.
    get_state: device state -> one copy of the state (for checkpoints and sampling).
    num_devices: devices the batch is split over.
  """

  step: Callable
  put_state: Callable
  put_batch: Callable
  get_state: Callable
  num_devices: int


def parallelize(train_step: Callable, parallel: str, devices=None) -> DataParallel:
  """Runs ``train_step`` on one device (``'none'``) or data-parallel (``'pmap'``/``'shard_map'``).

  For ``'pmap'`` and ``'shard_map'`` the step must have been built with
  ``make_train_step(..., axis_name=jaxgan.train.AXIS_NAME)``. The state is replicated; the
  global batch is split along its first axis. ``shard_map`` uses a 1-D mesh with Explicit axes
  and puts every input on it with a ``NamedSharding``.
  """
  devices = list(devices if devices is not None else jax.local_devices())
  if parallel == 'none':
    # put_state copies: the step donates its state, and the caller may still hold the original.
    return DataParallel(jax.jit(train_step, donate_argnums=0),
                        lambda s: jax.device_put(s, devices[0], may_alias=False), lambda b: b,
                        lambda s: s, 1)
  if parallel == 'pmap':
    step = jax.pmap(train_step, axis_name=AXIS_NAME, in_axes=(0, 0, None), donate_argnums=0,
                    devices=devices)
    n = len(devices)
    put_state = lambda s: jax.tree.map(lambda x: jnp.broadcast_to(x, (n, *jnp.shape(x))), s)
    get_state = lambda s: jax.tree.map(lambda x: x[0], s)
    put_batch = lambda b: data_lib.shard(b, len(devices))
    return DataParallel(step, put_state, put_batch, get_state, len(devices))
  if parallel == 'shard_map':
    mesh = jax.sharding.Mesh(np.array(devices), (AXIS_NAME,),
                             axis_types=(jax.sharding.AxisType.Explicit,))
    replicated, split = NamedSharding(mesh, P()), NamedSharding(mesh, P(AXIS_NAME))
    step = jax.jit(jax.shard_map(train_step, mesh=mesh, in_specs=(P(), P(AXIS_NAME), P()),
                                 out_specs=(P(), P()), check_vma=False), donate_argnums=0)

    def put_batch(batch):
      data_lib.shard(batch, len(devices))  # Checks divisibility with a clear error.
      return jax.device_put(batch, split)

    return DataParallel(lambda s, b, k: step(s, b, jax.device_put(k, replicated)),
                        lambda s: jax.device_put(s, replicated, may_alias=False), put_batch,
                        lambda s: s, len(devices))
  raise ValueError(f'unknown parallel mode {parallel!r}; expected one of {list(PARALLEL_MODES)}')


def build_models(config: ml_collections.ConfigDict, *, axis_name: str | None = None
                 ) -> tuple[nn.Module, nn.Module]:
  """The (generator, discriminator) pair that ``config.model`` names, for ``config.data``."""
  if config.model.get('num_classes', 0):
    return conditional.build_models(config, axis_name=axis_name)
  shape = data_lib.data_shape(config.data.name)
  name = config.model.name
  if name == 'mlp' and mode_collapse_discriminator(config):
    bias_scale = config.model.get('bias_scale', 0.0)
    return (models.MLPGenerator(hidden=tuple(config.model.g_hidden), data_shape=shape,
                                activation=config.model.activation,
                                output_activation=config.model.output_activation,
                                bias_scale=bias_scale),
            mode_collapse.StabilizedMLPDiscriminator(
                hidden=tuple(config.model.d_hidden), activation=config.model.activation,
                minibatch_kernels=config.model.minibatch_kernels,
                minibatch_kernel_dim=config.model.minibatch_kernel_dim,
                minibatch_stddev=config.model.minibatch_stddev,
                spectral_norm=config.model.spectral_norm, bias_scale=bias_scale))
  if name == 'gaussian_1d_mlp':
    return models.gaussian_1d_models()
  if name == 'mnist_mlp':
    return models.mnist_mlp_models()
  if name == 'mlp':
    return (models.MLPGenerator(hidden=tuple(config.model.g_hidden), data_shape=shape,
                                activation=config.model.activation,
                                output_activation=config.model.output_activation),
            models.MLPDiscriminator(hidden=tuple(config.model.d_hidden),
                                    activation=config.model.activation))
  if name == 'dcgan':
    return (models.DCGANGenerator(image_shape=shape, features=config.model.features,
                                  axis_name=axis_name),
            models.DCGANDiscriminator(image_shape=shape, features=config.model.features,
                                      axis_name=axis_name))
  raise ValueError(f'config.model.name={name!r} is not allowed; expected one of {list(MODELS)}')


def mode_collapse_discriminator(config: ml_collections.ConfigDict) -> bool:
  """Whether ``config.model`` asks for minibatch features, spectral norm or bias init in D."""
  model = config.model
  return bool(model.get('minibatch_kernels', 0) or model.get('minibatch_stddev', False)
              or model.get('spectral_norm', False) or model.get('bias_scale', 0.0))


def build_train_step(config: ml_collections.ConfigDict, generator: nn.Module,
                     discriminator: nn.Module, *, axis_name: str | None = None) -> Callable:
  """:func:`make_train_step` with the losses, penalties and optimizers ``config`` names."""
  d_loss_fn, g_loss_fn = losses.get_loss_pair(config.loss.name)
  if config.loss.label_smoothing:
    d_loss_fn = functools.partial(d_loss_fn, label_smoothing=config.loss.label_smoothing)
  g_optimizer, d_optimizer = optimizers(config)
  return make_train_step(
      generator=generator, discriminator=discriminator, g_optimizer=g_optimizer,
      d_optimizer=d_optimizer, d_loss_fn=d_loss_fn, g_loss_fn=g_loss_fn,
      latent_dim=config.model.latent_dim, latent_distribution=config.model.latent_distribution,
      update=config.train.update_rule, num_d_steps=config.train.num_d_steps,
      gradient_penalty_weight=config.loss.gradient_penalty_weight,
      r1_gamma=config.loss.r1_gamma, r1_every=config.loss.get('r1_every', 1),
      weight_clip=config.loss.weight_clip or None,
      axis_name=axis_name, feature_matching=config.loss.get('feature_matching', False),
      unrolled_steps=config.train.get('unrolled_steps', 0), pack=config.train.get('pack', 1),
      instance_noise=config.train.get('instance_noise', 0.0),
      skip_nonfinite=config.train.on_nonfinite == 'skip',
      num_classes=config.model.get('num_classes', 0),
      auxiliary_classifier_weight=config.loss.get('auxiliary_classifier_weight', 0.0),
      ema_decay=config.train.get('ema_decay', 0.0))


def optimizers(config: ml_collections.ConfigDict):
  """Adam for G and for D with the config's learning rates and betas.

  ``train.lr_final_fraction < 1`` decays both learning rates with a cosine over
  ``train.num_steps`` to that fraction. With ``train.unrolled_steps`` D's Adam gets
  ``eps_root=1e-8`` so that G's gradient through the unrolled updates stays finite (see
  :func:`make_train_step`).
  """
  t = config.train
  eps_root = 1e-8 if t.get('unrolled_steps', 0) else 0.0
  final = t.get('lr_final_fraction', 1.0)
  lr = lambda peak: (peak if final == 1.0 else
                     optax.cosine_decay_schedule(peak, t.num_steps, alpha=final))
  return (optax.adam(lr(t.g_lr), b1=t.b1, b2=t.b2),
          optax.adam(lr(t.d_lr), b1=t.b1, b2=t.b2, eps_root=eps_root))


def _batches(config: ml_collections.ConfigDict, key: jax.Array, start_step: int
             ) -> Iterator[dict[str, np.ndarray]]:
  size = config.train.batch_size * config.train.num_d_steps
  if config.data.name in data_lib.TOY_DATASETS:
    return data_lib.toy_batches(config.data.name, key, size, start_step=start_step)
  return data_lib.image_batches(config.data.name, split='train', batch_size=size,
                                seed=config.seed, data_dir=config.data.data_dir,
                                download=config.data.download, start_step=start_step)


def _real_for_plots(config: ml_collections.ConfigDict, key: jax.Array) -> np.ndarray:
  """``train.num_samples`` real toy points to draw beside the generated ones (images: a batch)."""
  if config.data.name in data_lib.TOY_DATASETS:
    return np.asarray(data_lib.TOY_DATASETS[config.data.name](key, config.train.num_samples))
  return next(_batches(config, key, 0))['x']


def _scalars(metrics) -> dict[str, float]:
  """Device metrics (already averaged over devices) -> plain floats."""
  return {k: float(np.asarray(v).reshape(-1)[0]) for k, v in jax.device_get(metrics).items()}


class _Progress:
  """A one-line progress bar on a terminal; plain log lines otherwise."""

  def __init__(self, total: int):
    self.total, self.tty = total, sys.stderr.isatty()

  def update(self, step: int, steps_per_sec: float, metrics: dict[str, float]) -> None:
    text = (f'step {step}/{self.total}  {steps_per_sec:.1f} steps/s  '
            f'd_loss {metrics["d_loss"]:.4f}  g_loss {metrics["g_loss"]:.4f}')
    if self.tty:
      done = int(30 * step / self.total)
      sys.stderr.write(f'\r[{"#" * done}{"." * (30 - done)}] {text}')
      sys.stderr.flush()
      if step == self.total:
        sys.stderr.write('\n')
    else:
      logging.info(text)


def sample(config: ml_collections.ConfigDict, generator: nn.Module, state: GANState,
           key: jax.Array, num: int, *, labels: jax.Array | None = None,
           z: jax.Array | None = None) -> jax.Array:
  """Draws ``num`` samples from the generator of ``state`` (batch norm in inference mode).

  Uses the moving average of G's weights when ``config.train.ema_decay > 0``. A conditional G
  gets ``labels`` (default: ``0, 1, ..., K-1, 0, 1, ...``). ``z`` (``(num, latent_dim)``) replaces
  the latents drawn from ``key``.
  """
  if z is None:
    z = sample_latent(key, num, config.model.latent_dim, config.model.latent_distribution)
  num_classes = config.model.get('num_classes', 0)
  if num_classes and labels is None:
    labels = jnp.arange(num) % num_classes
  params = state.ema_g_params if config.train.get('ema_decay', 0.0) else state.g_params
  return apply_model(generator, params, state.g_batch_stats, z, train=False, labels=labels)[0]


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> GANState:
  """Trains the GAN that ``config`` describes, writing everything into ``workdir``.

  Writes ``checkpoints/`` (orbax, every ``train.checkpoint_every`` steps and at the end, the last
  ``train.keep_checkpoints`` kept), ``metrics.jsonl`` (one JSON object per logged step with
  ``step``, ``d_loss``, ``g_loss``, ``d_real``, ``d_fake``, gradient norms and ``steps_per_sec``),
  TensorBoard event files, ``samples/step_<N>.png`` and ``config.json``. With
  ``train.eval_every > 0``, sample-quality metrics (:mod:`jaxgan.eval.evaluator`) join the
  ``metrics.jsonl`` row of every ``eval_every``-th step and of the last (a row of their own if
  that step is not logged), and TensorBoard as ``eval/<name>``. Run again with the same
  workdir, it resumes from the latest checkpoint and continues to ``train.num_steps``.

  Faults (see the README, :mod:`jaxgan.faults` and :mod:`jaxgan.checkpoint`): a damaged
  checkpoint is skipped for the previous one, a killed run's extra ``metrics.jsonl`` rows are
  dropped on resume, and each batch is checked before the step.

  Returns:
    The final state (on the host, one copy).

  Raises:
    ValueError: a bad config (before anything is built) or a bad batch (naming the step).
    jaxgan.faults.NonFiniteError: a NaN/inf step with ``train.on_nonfinite='stop'``.
    jaxgan.checkpoint.CheckpointMismatchError: the workdir holds another config's checkpoints.
  """
  from jaxgan import checkpoint, faults
  from jaxgan import config as config_lib
  parallel = config.train.parallel
  devices = jax.local_devices()
  config_lib.validate(config, num_devices=1 if parallel == 'none' else len(devices))
  axis_name = None if parallel == 'none' else AXIS_NAME
  generator, discriminator = build_models(config, axis_name=axis_name)
  dp = parallelize(build_train_step(config, generator, discriminator, axis_name=axis_name),
                   parallel, devices)

  init_key, step_key, data_key, sample_key = jax.random.split(jax.random.PRNGKey(config.seed), 4)
  g_optimizer, d_optimizer = optimizers(config)
  state = init_state(init_key, generator=generator, discriminator=discriminator,
                     g_optimizer=g_optimizer, d_optimizer=d_optimizer,
                     latent_dim=config.model.latent_dim,
                     data_shape=data_lib.data_shape(config.data.name),
                     pack=config.train.get('pack', 1),
                     ema=bool(config.train.get('ema_decay', 0.0)))
  os.makedirs(workdir, exist_ok=True)
  manager = checkpoint.manager(workdir, keep=config.train.keep_checkpoints)
  state = checkpoint.restore_latest(manager, state, config=config)
  start = int(state.step)
  faults.rewind_metrics(os.path.join(workdir, 'metrics.jsonl'), start)
  if start:
    logging.info('Resuming from the checkpoint of step %d in %s', start, workdir)
  with open(os.path.join(workdir, 'config.json'), 'w') as f:
    f.write(config.to_json_best_effort(indent=2))

  from flax.metrics import tensorboard
  writer = tensorboard.SummaryWriter(os.path.join(workdir, 'tensorboard'))
  total = config.train.num_steps
  batches = _batches(config, data_key, start)
  progress = _Progress(total)
  real_for_plots = _real_for_plots(config, jax.random.fold_in(data_key, 2**31 - 1))
  evaluate = None
  if config.train.get('eval_every', 0):
    from jaxgan.eval import evaluator
    evaluate = evaluator.make_evaluator(config, generator, key=jax.random.fold_in(sample_key, 1))
  dp_state = dp.put_state(state)
  tick, ticked_step = time.perf_counter(), start
  monitor = faults.NonFiniteMonitor(config.train.on_nonfinite, manager=manager)
  batch_spec = faults.batch_spec(config)
  for step in range(start + 1, total + 1):
    batch = next(batches)
    faults.check_batch(batch, **batch_spec, step=step)
    dp_state, metrics = dp.step(dp_state, dp.put_batch(batch), step_key)
    monitor.record(step, metrics)
    last = step == total
    if last or not (step % config.train.log_every and step % config.train.sample_every
                    and step % config.train.checkpoint_every):
      monitor.check()  # Stops before anything non-finite is logged, drawn or saved.
    results = {}
    if evaluate is not None and (step % config.train.eval_every == 0 or last):
      monitor.check()
      eval_start = time.perf_counter()
      results = evaluate(dp.get_state(dp_state))
      tick += time.perf_counter() - eval_start  # Evaluating is not training: keep it out of speed.
      for name, value in results.items():
        writer.scalar(f'eval/{name}', value, step)
      logging.info('step %d: %s', step, results)
      if not (step % config.train.log_every == 0 or last):
        with open(os.path.join(workdir, 'metrics.jsonl'), 'a') as f:
          f.write(json.dumps({'step': step, **results}) + '\n')
    if step % config.train.log_every == 0 or last:
      scalars = _scalars(metrics)
      now = time.perf_counter()
      scalars['steps_per_sec'] = (step - ticked_step) / (now - tick)
      tick, ticked_step = now, step
      with open(os.path.join(workdir, 'metrics.jsonl'), 'a') as f:
        f.write(json.dumps({'step': step, **scalars, **results}) + '\n')
      for name, value in scalars.items():
        writer.scalar(name, value, step)
      progress.update(step, scalars['steps_per_sec'], scalars)
    if step % config.train.sample_every == 0 or last:
      fake = sample(config, generator, dp.get_state(dp_state), sample_key,
                    min(config.train.num_samples, 64) if real_for_plots.ndim == 4
                    else config.train.num_samples)
      visualize.save_samples(os.path.join(workdir, 'samples', f'step_{step}.png'),
                             real_for_plots, np.asarray(fake), title=f'step {step}')
    if step % config.train.checkpoint_every == 0 or last:
      manager.save(step, args=checkpoint.save_args(dp.get_state(dp_state)))
  manager.wait_until_finished()
  manager.close()
  writer.flush()
  return jax.device_get(dp.get_state(dp_state))
