"""Training the semi-supervised GAN of Improved GAN (arXiv:1606.03498) on MNIST.

One step (:func:`make_ssgan_train_step`), as the paper's public code
(``openai/improved-gan``, ``mnist_svhn_cifar10/train_mnist_feature_matching.py``):

1. D update on a labeled batch ``(x_lab, y_lab)``, an unlabeled batch ``x_unl`` and fresh fakes:
   ``L_D = L_sup(x_lab, y_lab) + w * L_unsup(x_unl, G(z))`` with ``w = unlabeled_weight``
   (0.5 in the public code), noise layers on;
2. an exponential moving average of D's parameters (Polyak averaging), used for testing;
3. G update by feature matching against the updated D, on a second unlabeled batch ``x_unl2``
   and new fakes.

One epoch (:func:`make_train_epoch`) is a ``lax.scan`` over ``N // batch_size`` steps: the
unlabeled batches walk through two random permutations of the whole training set, the labeled
batches through back-to-back random permutations of the small labeled set. The epoch is one
jitted call on device-resident data, so a GPU runs it without host round trips.

Randomness: the step folds ``state.gan.step`` into the run key; the epoch's permutations use a
key folded with the step at the epoch's start. A run resumed from a checkpoint repeats exactly.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from typing import Any

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from absl import logging
from jax import lax

from jaxgan import checkpoint, losses
from jaxgan import semi_supervised as ssl
from jaxgan.game import GANState
from jaxgan.gan import apply_model

LR_SCHEDULES = ('constant', 'linear')


@flax.struct.dataclass
class SSGANState:
  """Everything the semi-supervised GAN changes while training; a pytree.

  Attributes:
    gan: the two players' parameters, optimizer states, batch-norm statistics and step count
      (``gan.step`` counts steps, i.e. batches, not epochs).
    d_params_avg: the moving average ``a <- d * a + (1 - d) * theta_D`` of D's parameters,
      started at zero; :func:`averaged_d_params` divides out the start-up bias.
  """

  gan: GANState
  d_params_avg: Any


def averaged_d_params(state: SSGANState, *, ema_decay: float):
  """D's averaged parameters ``a / (1 - d^t)`` (the zero start debiased); D's own at ``t = 0``."""
  correction = 1.0 - ema_decay ** state.gan.step.astype(jnp.float32)
  return jax.tree.map(lambda avg, p: jnp.where(state.gan.step > 0, avg / correction, p),
                      state.d_params_avg, state.gan.d_params)


def sample_latent(key: jax.Array, num: int, latent_dim: int) -> jax.Array:
  """``z ~ U[0, 1)^latent_dim``, the public code's prior (Theano's default uniform)."""
  return jax.random.uniform(key, (num, latent_dim))


def init_state(key: jax.Array, *, generator: ssl.SSGANGenerator,
               discriminator: ssl.SSGANDiscriminator, g_optimizer: optax.GradientTransformation,
               d_optimizer: optax.GradientTransformation, latent_dim: int,
               init_images: jax.Array) -> SSGANState:
  """Initializes both players, then D's weight norm from ``init_images`` (the paper uses 500)."""
  k_g, k_d, k_noise = jax.random.split(key, 3)
  g_vars = generator.init(k_g, jnp.zeros((1, latent_dim)), train=False)
  d_params = discriminator.init(k_d, init_images[:1], train=False)['params']
  d_params = ssl.data_dependent_init(discriminator, d_params, init_images, k_noise)
  gan = GANState(step=jnp.zeros((), jnp.int32), g_params=g_vars['params'], d_params=d_params,
                 g_opt_state=g_optimizer.init(g_vars['params']),
                 d_opt_state=d_optimizer.init(d_params),
                 g_batch_stats=g_vars.get('batch_stats', {}), d_batch_stats={})
  return SSGANState(gan=gan, d_params_avg=jax.tree.map(jnp.zeros_like, d_params))


def make_ssgan_train_step(*, generator: ssl.SSGANGenerator,
                          discriminator: ssl.SSGANDiscriminator,
                          g_optimizer: optax.GradientTransformation,
                          d_optimizer: optax.GradientTransformation, latent_dim: int,
                          unlabeled_weight: float = 0.5, ema_decay: float = 0.9999):
  """Builds the pure ``train_step(state, batch, key) -> (state, metrics)``.

  Args:
    generator, discriminator: the paper's models (or smaller ones of the same kind).
    g_optimizer, d_optimizer: one optax transformation per player.
    latent_dim: size of ``z ~ U[0, 1)``.
    unlabeled_weight: ``w`` in ``L_D = L_sup + w * L_unsup``.
    ema_decay: ``d`` of D's parameter average (the public code: 0.9999).

  Returns:
    ``train_step(state: SSGANState, batch, key)``. ``batch`` holds ``x_lab`` ``(B_l, ...)``,
    ``y_lab`` ``(B_l,)`` int, and two unlabeled batches ``x_unl``, ``x_unl2`` ``(B, ...)``;
    ``key`` is the run key, folded with ``state.gan.step``. Metrics (scalars): ``loss_lab``
    (``L_sup``), ``loss_unl`` (``L_unsup``, unweighted), ``loss_gen`` (feature matching),
    ``train_err`` (error rate on the labeled batch, noise on), ``d_real``/``d_fake`` (mean
    ``D(x) = Z/(Z+1)`` on unlabeled real data and on fakes).
  """
  if unlabeled_weight < 0:
    raise ValueError(f'unlabeled_weight must be >= 0, got {unlabeled_weight}')
  if not 0.0 <= ema_decay < 1.0:
    raise ValueError(f'ema_decay must be in [0, 1), got {ema_decay}')

  def d_loss(d_params, batch, fake, key):
    n_lab, n_unl = batch['x_lab'].shape[0], batch['x_unl'].shape[0]
    # D has no batch norm, so one call on the concatenation equals three separate calls.
    x = jnp.concatenate([batch['x_lab'], batch['x_unl'], fake])
    logits = discriminator.apply({'params': d_params}, x, train=True, rngs={ssl.NOISE_RNG: key})
    lab, unl, fk = logits[:n_lab], logits[n_lab:n_lab + n_unl], logits[n_lab + n_unl:]
    loss_lab = losses.semi_supervised_classification_loss(lab, batch['y_lab'])
    loss_unl = losses.semi_supervised_discriminator_loss(unl, fk)
    p_real = lambda lg: jnp.mean(jax.nn.sigmoid(jax.nn.logsumexp(lg, axis=-1)))
    metrics = {'loss_lab': loss_lab, 'loss_unl': loss_unl,
               'train_err': jnp.mean(jnp.argmax(lab, -1) != batch['y_lab']),
               'd_real': p_real(unl), 'd_fake': p_real(fk)}
    return loss_lab + unlabeled_weight * loss_unl, metrics

  def features(d_params, x, key):
    _, state = discriminator.apply({'params': d_params}, x, train=True,
                                   rngs={ssl.NOISE_RNG: key}, mutable=['intermediates'])
    return state['intermediates']['features'][0]

  def g_loss(g_params, g_batch_stats, d_params, real_features, z, key):
    fake, g_batch_stats = apply_model(generator, g_params, g_batch_stats, z, train=True)
    loss = ssl.feature_matching_loss(real_features, features(d_params, fake, key))
    return loss, (g_batch_stats, {'loss_gen': loss})

  def train_step(state: SSGANState, batch: dict[str, jax.Array], key: jax.Array):
    gan = state.gan
    k_zd, k_nd, k_zg, k_ng, k_nr = jax.random.split(jax.random.fold_in(key, gan.step), 5)
    m = batch['x_unl'].shape[0]

    # The public code never uses G's running averages; they are kept for sampling only.
    fake, _ = apply_model(generator, gan.g_params, gan.g_batch_stats,
                          sample_latent(k_zd, m, latent_dim), train=True)
    d_grads, d_metrics = jax.grad(d_loss, has_aux=True)(gan.d_params, batch,
                                                        lax.stop_gradient(fake), k_nd)
    d_updates, d_opt_state = d_optimizer.update(d_grads, gan.d_opt_state, gan.d_params)
    d_params = optax.apply_updates(gan.d_params, d_updates)
    d_params_avg = jax.tree.map(lambda a, p: ema_decay * a + (1.0 - ema_decay) * p,
                                state.d_params_avg, d_params)

    # Real features outside the gradient: G's loss reaches D only through the fakes.
    real_features = features(d_params, batch['x_unl2'], k_nr)
    g_grads, (g_batch_stats, g_metrics) = jax.grad(g_loss, has_aux=True)(
        gan.g_params, gan.g_batch_stats, d_params, real_features,
        sample_latent(k_zg, m, latent_dim), k_ng)
    g_updates, g_opt_state = g_optimizer.update(g_grads, gan.g_opt_state, gan.g_params)
    g_params = optax.apply_updates(gan.g_params, g_updates)

    gan = gan.replace(step=gan.step + 1, g_params=g_params, d_params=d_params,
                      g_opt_state=g_opt_state, d_opt_state=d_opt_state,
                      g_batch_stats=g_batch_stats)
    return SSGANState(gan=gan, d_params_avg=d_params_avg), {**d_metrics, **g_metrics}

  return train_step


def epoch_indices(key: jax.Array, *, num_unlabeled: int, num_labeled: int, batch_size: int,
                  labeled_batch_size: int | None = None) -> dict[str, jax.Array]:
  """Index arrays of one epoch, each ``(num_unlabeled // batch_size, batch)``.

  ``unl`` and ``unl2`` are two independent permutations of ``range(num_unlabeled)`` cut into
  batches (a last partial batch is dropped); ``lab`` is back-to-back permutations of
  ``range(num_labeled)``, so every labeled example appears equally often (the public code).
  """
  labeled_batch_size = labeled_batch_size or batch_size
  steps = num_unlabeled // batch_size
  if steps == 0:
    raise ValueError(f'batch_size={batch_size} is larger than the {num_unlabeled} unlabeled '
                     'examples')
  k_unl, k_unl2, k_lab = jax.random.split(key, 3)
  cut = lambda perm, size: perm[:steps * size].reshape((steps, size))
  reps = -(-steps * labeled_batch_size // num_labeled)
  lab = jax.vmap(lambda k: jax.random.permutation(k, num_labeled))(jax.random.split(k_lab, reps))
  return {'unl': cut(jax.random.permutation(k_unl, num_unlabeled), batch_size),
          'unl2': cut(jax.random.permutation(k_unl2, num_unlabeled), batch_size),
          'lab': cut(lab.reshape(-1), labeled_batch_size)}


def make_train_epoch(train_step: Callable, *, batch_size: int):
  """Builds ``train_epoch(state, data, key) -> (state, mean metrics)``: a scan of ``train_step``.

  ``data`` holds ``x_unl`` ``(N, ...)``, ``x_lab`` ``(L, ...)`` and ``y_lab`` ``(L,)``; pass
  device arrays once and jit the epoch (``jax.jit(train_epoch, donate_argnums=0)``). Labeled
  batches have ``batch_size`` rows too, as in the paper's code.
  """

  def train_epoch(state: SSGANState, data: dict[str, jax.Array], key: jax.Array):
    k_perm, k_step = jax.random.split(key)
    idx = epoch_indices(jax.random.fold_in(k_perm, state.gan.step),
                        num_unlabeled=data['x_unl'].shape[0],
                        num_labeled=data['x_lab'].shape[0], batch_size=batch_size)

    def body(state, idx):
      batch = {'x_unl': data['x_unl'][idx['unl']], 'x_unl2': data['x_unl'][idx['unl2']],
               'x_lab': data['x_lab'][idx['lab']], 'y_lab': data['y_lab'][idx['lab']]}
      return train_step(state, batch, k_step)

    state, metrics = lax.scan(body, state, idx)
    return state, jax.tree.map(jnp.mean, metrics)

  return train_epoch


def make_evaluate(discriminator: ssl.SSGANDiscriminator, *, batch_size: int = 1000):
  """Builds jitted ``evaluate(d_params, images, labels) -> int32 number of test errors``.

  D runs in inference mode (no noise) over chunks of ``batch_size``; the last chunk is padded
  and the padding masked out, so every image counts exactly once.
  """

  @jax.jit
  def evaluate(d_params, images, labels):
    n = images.shape[0]
    pad = -n % batch_size
    images = jnp.pad(images, [(0, pad)] + [(0, 0)] * (images.ndim - 1))
    labels = jnp.pad(labels, (0, pad))
    mask = jnp.arange(n + pad) < n
    chunks = jax.tree.map(lambda a: a.reshape((-1, batch_size, *a.shape[1:])),
                          (images, labels, mask))

    def count(chunk):
      x, y, m = chunk
      return ssl.count_errors(discriminator.apply({'params': d_params}, x, train=False), y,
                              mask=m)

    return jnp.sum(lax.map(count, chunks))

  return evaluate


def load_mnist(*, data_dir: str | None, download: bool = False) -> dict[str, np.ndarray]:
  """All of MNIST in memory: ``x_train`` (60000, 28, 28, 1) and ``x_test`` (10000, ...) float32
  in [0, 1] (the range of G's sigmoid), ``y_train``/``y_test`` int32."""
  import tensorflow as tf
  import tensorflow_datasets as tfds
  tf.config.set_visible_devices([], 'GPU')  # JAX owns the accelerators.
  out = {}
  for split in ('train', 'test'):
    ds = tfds.load('mnist', split=split, data_dir=data_dir, download=download)
    chunks = list(tfds.as_numpy(ds.batch(10_000)))  # (batch_size=-1 aborts under mock_data.)
    out[f'x_{split}'] = np.concatenate([c['image'] for c in chunks]).astype(np.float32) / 255.0
    out[f'y_{split}'] = np.concatenate([c['label'] for c in chunks]).astype(np.int32)
  return out


def validate(config: ml_collections.ConfigDict) -> None:
  """Raises ``ValueError`` naming the first bad field of an SSGAN config."""
  if config.train.lr_schedule not in LR_SCHEDULES:
    raise ValueError(f'config.train.lr_schedule={config.train.lr_schedule!r} is not allowed; '
                     f'expected one of {list(LR_SCHEDULES)}')
  for field in ('data.num_labels', 'data.num_classes', 'model.latent_dim', 'train.num_epochs',
                'train.batch_size', 'train.g_lr', 'train.d_lr', 'train.init_batch_size',
                'eval.batch_size'):
    section, name = field.split('.')
    if not config[section][name] > 0:
      raise ValueError(f'config.{field}={config[section][name]!r} must be > 0')
  if config.data.num_labels % config.data.num_classes:
    raise ValueError(f'config.data.num_labels={config.data.num_labels} must be a multiple of '
                     f'config.data.num_classes={config.data.num_classes}')
  if not 0.0 <= config.train.ema_decay < 1.0:
    raise ValueError(f'config.train.ema_decay={config.train.ema_decay!r} must be in [0, 1)')
  if config.train.unlabeled_weight < 0:
    raise ValueError(f'config.train.unlabeled_weight={config.train.unlabeled_weight!r} must be '
                     '>= 0')


def build_models(config: ml_collections.ConfigDict
                 ) -> tuple[ssl.SSGANGenerator, ssl.SSGANDiscriminator]:
  """The (generator, discriminator) pair of ``config.model``."""
  m = config.model
  return (ssl.SSGANGenerator(hidden=tuple(m.g_hidden), image_shape=tuple(m.image_shape)),
          ssl.SSGANDiscriminator(hidden=tuple(m.d_hidden), num_classes=config.data.num_classes,
                                 input_noise=m.input_noise, hidden_noise=m.hidden_noise))


def optimizers(config: ml_collections.ConfigDict, discriminator: ssl.SSGANDiscriminator, *,
               steps_per_epoch: int):
  """Adam for G and D as the public code (``eps`` inside the square root), with the config's
  learning-rate schedule; D's hidden weight-norm scales stay frozen unless
  ``config.train.train_hidden_scale``."""
  t = config.train
  def adam(lr):
    if t.lr_schedule == 'linear':
      lr = optax.linear_schedule(lr, 0.0, transition_steps=t.num_epochs * steps_per_epoch)
    return optax.adam(lr, b1=t.b1, b2=t.b2, eps=0.0, eps_root=1e-8)

  d_optimizer = adam(t.d_lr)
  if not t.train_hidden_scale:
    d_optimizer = optax.chain(
        d_optimizer,
        optax.masked(optax.set_to_zero(), lambda p: ssl.hidden_scale_mask(discriminator, p)))
  return adam(t.g_lr), d_optimizer


def _read_curve(path: str, last_epoch: int) -> list[dict]:
  if not os.path.exists(path):
    return []
  with open(path) as f:
    rows = [json.loads(line) for line in f if line.strip()]
  return [r for r in rows if r['epoch'] <= last_epoch]


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str | None = None, *,
                       mnist: dict[str, np.ndarray] | None = None,
                       on_epoch: Callable[[dict], None] | None = None) -> dict:
  """Trains the semi-supervised GAN of ``config`` and tests it after every epoch.

  With a ``workdir`` it writes ``metrics.jsonl`` (one row per epoch) and orbax checkpoints
  (every ``train.checkpoint_every`` epochs and the last), and resumes from the latest one.

  Args:
    config: an SSGAN config (``configs/ssgan_mnist.py``).
    workdir: optional directory for checkpoints and metrics.
    mnist: the arrays of :func:`load_mnist` (loaded from ``config.data`` when None).
    on_epoch: called with each epoch's row.

  Returns:
    ``{'curve': [row per epoch], 'test_errors', 'test_errors_avg', 'compile_seconds',
    'train_seconds'}``. A row has ``epoch``, ``test_errors`` (of the test images, D's own
    parameters), ``test_errors_avg`` (D's averaged parameters, the paper's protocol), the
    epoch's mean step metrics, ``epoch_seconds`` (training only) and ``eval_seconds``.
  """
  validate(config)
  if mnist is None:
    mnist = load_mnist(data_dir=config.data.data_dir, download=config.data.download)
  k_label, k_init, k_train = jax.random.split(jax.random.PRNGKey(config.seed), 3)
  x_train, y_train = mnist['x_train'], mnist['y_train']
  labeled = np.asarray(ssl.select_labeled(k_label, y_train, num_labels=config.data.num_labels,
                                          num_classes=config.data.num_classes))
  data = jax.device_put({'x_unl': x_train, 'x_lab': x_train[labeled],
                         'y_lab': y_train[labeled]})
  x_test, y_test = jax.device_put((mnist['x_test'], mnist['y_test']))

  generator, discriminator = build_models(config)
  batch_size = config.train.batch_size
  steps_per_epoch = x_train.shape[0] // batch_size
  g_optimizer, d_optimizer = optimizers(config, discriminator, steps_per_epoch=steps_per_epoch)
  init_rows = jax.random.choice(jax.random.fold_in(k_init, 1), x_train.shape[0],
                                (config.train.init_batch_size,), replace=False)
  state = init_state(k_init, generator=generator, discriminator=discriminator,
                     g_optimizer=g_optimizer, d_optimizer=d_optimizer,
                     latent_dim=config.model.latent_dim,
                     init_images=jnp.asarray(x_train[np.asarray(init_rows)]))
  train_step = make_ssgan_train_step(
      generator=generator, discriminator=discriminator, g_optimizer=g_optimizer,
      d_optimizer=d_optimizer, latent_dim=config.model.latent_dim,
      unlabeled_weight=config.train.unlabeled_weight, ema_decay=config.train.ema_decay)
  train_epoch = jax.jit(make_train_epoch(train_step, batch_size=batch_size), donate_argnums=0)
  evaluate = make_evaluate(discriminator, batch_size=config.eval.batch_size)
  average = jax.jit(lambda s: averaged_d_params(s, ema_decay=config.train.ema_decay))

  curve, manager, metrics_path = [], None, None
  if workdir:
    os.makedirs(workdir, exist_ok=True)
    manager = checkpoint.manager(workdir, keep=2)
    state = checkpoint.restore_latest(manager, state)
    metrics_path = os.path.join(workdir, 'metrics.jsonl')
    curve = _read_curve(metrics_path, int(state.gan.step) // steps_per_epoch)
    with open(metrics_path, 'w') as f:  # Drops rows of epochs after the checkpoint.
      f.writelines(json.dumps(row) + '\n' for row in curve)
    with open(os.path.join(workdir, 'config.json'), 'w') as f:
      f.write(config.to_json_best_effort(indent=2))
  start_epoch = int(state.gan.step) // steps_per_epoch
  if start_epoch:
    logging.info('Resuming after epoch %d from %s', start_epoch, workdir)

  tick = time.perf_counter()
  train_epoch = train_epoch.lower(state, data, k_train).compile()
  compile_seconds = time.perf_counter() - tick
  train_seconds = 0.0
  for epoch in range(start_epoch + 1, config.train.num_epochs + 1):
    tick = time.perf_counter()
    state, metrics = train_epoch(state, data, k_train)
    metrics = {k: float(v) for k, v in jax.device_get(metrics).items()}
    epoch_seconds = time.perf_counter() - tick
    train_seconds += epoch_seconds
    tick = time.perf_counter()
    errors = int(evaluate(state.gan.d_params, x_test, y_test))
    errors_avg = int(evaluate(average(state), x_test, y_test))
    row = {'epoch': epoch, 'test_errors': errors, 'test_errors_avg': errors_avg, **metrics,
           'epoch_seconds': epoch_seconds, 'eval_seconds': time.perf_counter() - tick}
    curve.append(row)
    logging.info('epoch %d/%d  test errors %d (averaged D %d)  loss_lab %.4f  loss_unl %.4f  '
                 'loss_gen %.4f  %.1fs', epoch, config.train.num_epochs, errors, errors_avg,
                 metrics['loss_lab'], metrics['loss_unl'], metrics['loss_gen'], epoch_seconds)
    if metrics_path:
      with open(metrics_path, 'a') as f:
        f.write(json.dumps(row) + '\n')
    if manager and (epoch % config.train.checkpoint_every == 0
                    or epoch == config.train.num_epochs):
      manager.save(epoch, args=checkpoint.save_args(state))
    if on_epoch:
      on_epoch(row)
  if manager:
    manager.wait_until_finished()
  last = curve[-1] if curve else {'test_errors': None, 'test_errors_avg': None}
  return {'curve': curve, 'test_errors': last['test_errors'],
          'test_errors_avg': last['test_errors_avg'], 'compile_seconds': compile_seconds,
          'train_seconds': train_seconds}


def summarize_errors(errors) -> dict[str, float]:
  """``{'mean', 'std', 'n'}`` of test-error counts over seeds; ``std`` is the sample standard
  deviation (``ddof=1``), 0 for a single seed."""
  errors = np.asarray(errors, dtype=np.float64)
  if errors.size == 0:
    raise ValueError('summarize_errors needs at least one run, got none')
  std = float(np.std(errors, ddof=1)) if errors.size > 1 else 0.0
  return {'mean': float(np.mean(errors)), 'std': std, 'n': int(errors.size)}
