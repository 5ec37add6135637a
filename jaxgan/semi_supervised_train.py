"""Training the semi-supervised GAN of Improved GAN (arXiv:1606.03498) on MNIST.

The GAN is two objectives (:func:`ssl.discriminator_objective`, the K+1-class D;
:func:`ssl.generator_objective`, feature matching) for the one train step of every game,
:func:`jaxgan.game.make_train_step`, on the same :class:`jaxgan.game.GANState`; what is its own
is D's weight-norm initialization (:func:`init_state`) and the Polyak average of D that is tested
(kept in D's optimizer state, :func:`optimizers`). :func:`build_train_step` says what one step
does.

An epoch has ``N // batch_size`` steps: the unlabeled batches walk through two random
permutations of the whole training set, the labeled batches through back-to-back random
permutations of the small labeled set (:func:`epoch_indices`). It runs as one chunk of the main
driver's machinery (:mod:`jaxgan.loop`): the data are a :class:`jaxgan.loop.Source`
(:func:`data_source`) kept on the device, the epoch one jitted ``lax.scan``
(:func:`jaxgan.loop.make_chunk`), so a GPU runs it without host round trips, and every step's
non-finite flags reach :class:`jaxgan.faults.NonFiniteMonitor`. :func:`train_and_evaluate` is the
entry point that ``python -m jaxgan.main`` calls for a config with ``trainer='semi_supervised'``,
with the main trainer's guards.

Randomness: the step folds ``state.step`` into the run key (:mod:`jaxgan.game`); the epoch's
permutations use a key folded with the step at the epoch's start. A run resumed from a
checkpoint repeats exactly.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from absl import logging
from jax import lax

from jaxgan import checkpoint, faults, game, loop, parallel
from jaxgan import semi_supervised as ssl
from jaxgan.game import GANState

LR_SCHEDULES = ('constant', 'linear')


def init_state(config: ml_collections.ConfigDict, key: jax.Array,
               generator: ssl.SSGANGenerator, discriminator: ssl.SSGANDiscriminator,
               init_images: jax.Array, *, steps_per_epoch: int) -> GANState:
  """Both players at step 0 (a :class:`jaxgan.game.GANState`, as the main trainer's), then D's
  weight norm from ``init_images`` (:func:`ssl.data_dependent_init`; the paper uses 500).

  D's optimizer state holds the Polyak average of its parameters (:func:`optimizers`)."""
  k_g, k_d, k_noise = jax.random.split(key, 3)
  g_optimizer, d_optimizer = optimizers(config, discriminator, steps_per_epoch=steps_per_epoch)
  g_vars = generator.init(k_g, jnp.zeros((1, config.model.latent_dim)), train=False)
  d_params = discriminator.init(k_d, init_images[:1], train=False)['params']
  d_params = ssl.data_dependent_init(discriminator, d_params, init_images, k_noise)
  return GANState(step=jnp.zeros((), jnp.int32), g_params=g_vars['params'], d_params=d_params,
                  g_opt_state=g_optimizer.init(g_vars['params']),
                  d_opt_state=d_optimizer.init(d_params),
                  g_batch_stats=g_vars.get('batch_stats', {}), d_batch_stats={})


def build_train_step(config: ml_collections.ConfigDict, generator: ssl.SSGANGenerator,
                     discriminator: ssl.SSGANDiscriminator, *, steps_per_epoch: int,
                     skip_nonfinite: bool | None = None):
  """The pure ``train_step(state, batch, key) -> (state, metrics)`` of ``config``.

  :func:`jaxgan.game.make_train_step` with the semi-supervised objectives, alternating with one
  D step, as the public code (``openai/improved-gan``,
  ``mnist_svhn_cifar10/train_mnist_feature_matching.py``):

  1. D update on a labeled batch ``(x_lab, y_lab)``, an unlabeled batch ``x_unl`` and fresh
     fakes (:func:`ssl.discriminator_objective`), then the Polyak average of D's parameters
     (inside D's optimizer, :func:`ssl.parameter_average`);
  2. G update by feature matching against the updated D on a second unlabeled batch ``x_unl2``
     and new fakes (:func:`ssl.generator_objective`).

  ``batch`` holds ``x_lab`` ``(B_l, ...)``, ``y_lab`` ``(B_l,)`` int, ``x_unl`` and ``x_unl2``
  ``(B, ...)``. Metrics: the objectives' (``loss_lab``, ``loss_unl``, ``loss_gen``,
  ``train_err``, ``d_real``, ``d_fake``) and the step's (``d_loss``, ``g_loss``, gradient norms,
  ``d_nonfinite``/``g_nonfinite``). With ``skip_nonfinite`` (default: ``train.on_nonfinite ==
  'skip'``; :func:`train_and_evaluate` always skips and stops its epoch itself for ``'stop'``,
  as the main driver) a non-finite step keeps the state from before it.
  """
  if skip_nonfinite is None:
    skip_nonfinite = config.train.on_nonfinite == 'skip'
  g_optimizer, d_optimizer = optimizers(config, discriminator, steps_per_epoch=steps_per_epoch)
  latent_dim = config.model.latent_dim
  return game.make_train_step(
      g_objective=ssl.generator_objective(generator, discriminator, latent_dim=latent_dim),
      d_objective=ssl.discriminator_objective(generator, discriminator, latent_dim=latent_dim,
                                              unlabeled_weight=config.train.unlabeled_weight),
      g_optimizer=g_optimizer, d_optimizer=d_optimizer, update_rule='alternating',
      skip_nonfinite=skip_nonfinite)


def averaged_d_params(config: ml_collections.ConfigDict, state: GANState):
  """D's Polyak-averaged parameters (debiased, :func:`ssl.averaged_params`): what is tested."""
  average = state.d_opt_state[-1]
  if not isinstance(average, ssl.ParameterAverageState):
    raise TypeError('state.d_opt_state does not end with ssl.parameter_average: build it with '
                    'semi_supervised_train.optimizers')
  return ssl.averaged_params(average, state.d_params, decay=config.train.d_ema_decay)


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


def data_source(data: dict, key: jax.Array, *, batch_size: int) -> loop.Source:
  """The training batches as a :class:`jaxgan.loop.Source` for :func:`jaxgan.loop.make_chunk`.

  ``data`` holds ``x_unl`` ``(N, ...)``, ``x_lab`` ``(L, ...)`` and ``y_lab`` ``(L,)`` (placed on
  the device once by the driver). The plan of steps ``start, ..., start + length - 1`` is their
  rows of :func:`epoch_indices`, epoch ``e`` (steps ``e S, ..., e S + S - 1``, ``S = N //
  batch_size``) drawn from ``fold_in(key, e S)``: the key folded with the step at the epoch's
  start. A step's batch gathers ``x_unl``, ``x_unl2``, ``x_lab`` and ``y_lab`` on the device;
  labeled batches have ``batch_size`` rows too, as in the paper's code.
  """
  num_unlabeled, num_labeled = data['x_unl'].shape[0], data['x_lab'].shape[0]
  indices = jax.jit(lambda epoch_start: epoch_indices(
      jax.random.fold_in(key, epoch_start), num_unlabeled=num_unlabeled,
      num_labeled=num_labeled, batch_size=batch_size))
  per_epoch = num_unlabeled // batch_size
  if per_epoch == 0:
    raise ValueError(f'batch_size={batch_size} is larger than the {num_unlabeled} unlabeled '
                     'examples')

  def plan(start: int, length: int):
    first, stop = start // per_epoch, -(-(start + length) // per_epoch)
    epochs = [indices(e * per_epoch) for e in range(first, stop)]
    offset = start - first * per_epoch
    if len(epochs) == 1 and offset == 0 and length == per_epoch:
      return epochs[0]  # An epoch exactly: the driver's case.
    return jax.tree.map(lambda *rows: jnp.concatenate(rows)[offset:offset + length], *epochs)

  def batch(data, idx):
    return {'x_unl': data['x_unl'][idx['unl']], 'x_unl2': data['x_unl'][idx['unl2']],
            'x_lab': data['x_lab'][idx['lab']], 'y_lab': data['y_lab'][idx['lab']]}

  return loop.Source(data=data, plan=plan, batch=batch)


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
  if 'ema_decay' in config.train:
    raise ValueError('config.train.ema_decay is G\'s weight average in jaxgan; the average of '
                     'D that the semi-supervised GAN tests is config.train.d_ema_decay')
  if not 0.0 <= config.train.d_ema_decay < 1.0:
    raise ValueError(f'config.train.d_ema_decay={config.train.d_ema_decay!r} must be in [0, 1)')
  if config.train.on_nonfinite not in faults.ON_NONFINITE:
    raise ValueError(f'config.train.on_nonfinite={config.train.on_nonfinite!r} is not allowed; '
                     f'expected one of {list(faults.ON_NONFINITE)}')
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
  """``(g_optimizer, d_optimizer)``: Adam for G and D as the public code (``eps`` inside the square
  root), with the config's learning-rate schedule. D's hidden weight-norm scales stay frozen
  unless ``config.train.train_hidden_scale``; D's optimizer ends with
  :func:`ssl.parameter_average` of decay ``config.train.d_ema_decay``."""
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
  return adam(t.g_lr), optax.chain(d_optimizer, ssl.parameter_average(t.d_ema_decay))


def check_data(config: ml_collections.ConfigDict, mnist: dict[str, np.ndarray]) -> None:
  """Raises ``ValueError`` naming the array unless ``mnist`` holds float32 images in [0, 1] of
  ``config.model.image_shape`` and int labels in ``[0, num_classes)``, one per image."""
  for split in ('train', 'test'):
    x, y = mnist[f'x_{split}'], np.asarray(mnist[f'y_{split}'])
    try:
      faults.check_batch({'x': x}, data_shape=tuple(config.model.image_shape),
                         batch_size=np.shape(x)[0], value_range=(0.0, 1.0))
    except ValueError as e:
      raise ValueError(f"mnist['x_{split}']: {e}") from None
    if y.shape != (np.shape(x)[0],) or not np.issubdtype(y.dtype, np.integer):
      raise ValueError(f"mnist['y_{split}'] has shape {y.shape} and dtype {y.dtype}; expected "
                       f'({np.shape(x)[0]},) integers')
    if y.size and (y.min() < 0 or y.max() >= config.data.num_classes):
      raise ValueError(f"mnist['y_{split}'] has labels in [{y.min()}, {y.max()}]; expected "
                       f'[0, {config.data.num_classes - 1}]')


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str | None = None, *,
                       mnist: dict[str, np.ndarray] | None = None,
                       on_epoch: Callable[[dict], None] | None = None) -> GANState:
  """Trains the semi-supervised GAN of ``config`` and tests it after every epoch.

  With a ``workdir`` it writes ``metrics.jsonl`` (one row per epoch), ``config.json`` and orbax
  checkpoints (every ``train.checkpoint_every`` epochs and the last), and resumes from the
  latest one, with the main trainer's guards (:func:`jaxgan.train.train_and_evaluate`): the
  config and the data are checked before anything compiles, a checkpoint of another config is
  refused naming the fields that differ, a damaged one is skipped for the previous one, rows
  logged after the checkpoint are dropped, and a non-finite step stops the run
  (``train.on_nonfinite='stop'``, naming the step; the last good checkpoint is kept) or is
  skipped (``'skip'``).

  Args:
    config: an SSGAN config (``configs/ssgan_mnist.py``).
    workdir: optional directory for checkpoints and metrics.
    mnist: the arrays of :func:`load_mnist` (loaded from ``config.data`` when None).
    on_epoch: called with each epoch's row.

  Returns:
    The final :class:`jaxgan.game.GANState` (on the host), as the main trainer. A row has
    ``epoch``, ``step``, ``test_errors`` (of the test images, D's own parameters),
    ``test_errors_avg`` (D's averaged parameters, the paper's protocol), the means over the
    epoch's steps of the step's metrics (:func:`build_train_step`; when a step was skipped, the
    monitored ``d_*``/``g_*`` values of the first skipped step), ``nonfinite_steps`` (how many
    steps were skipped), ``epoch_seconds`` (training only) and ``eval_seconds``; the first row a
    process trains also has ``compile_seconds``.

  Raises:
    ValueError: a bad config or data (before anything compiles).
    jaxgan.faults.NonFiniteError: a non-finite step with ``train.on_nonfinite='stop'``.
    jaxgan.checkpoint.CheckpointMismatchError: the workdir holds another config's checkpoints.
  """
  validate(config)
  if mnist is None:
    mnist = load_mnist(data_dir=config.data.data_dir, download=config.data.download)
  check_data(config, mnist)
  k_label, k_init, k_train = jax.random.split(jax.random.PRNGKey(config.seed), 3)
  x_train, y_train = mnist['x_train'], mnist['y_train']
  labeled = np.asarray(ssl.select_labeled(k_label, y_train, num_labels=config.data.num_labels,
                                          num_classes=config.data.num_classes))
  x_test, y_test = jax.device_put((mnist['x_test'], mnist['y_test']))

  generator, discriminator = build_models(config)
  batch_size = config.train.batch_size
  steps_per_epoch = x_train.shape[0] // batch_size
  init_rows = jax.random.choice(jax.random.fold_in(k_init, 1), x_train.shape[0],
                                (config.train.init_batch_size,), replace=False)
  state = init_state(config, k_init, generator, discriminator,
                     jnp.asarray(x_train[np.asarray(init_rows)]),
                     steps_per_epoch=steps_per_epoch)
  # 'skip': the step keeps the state from before a non-finite update; 'stop': the monitor raises
  # at the epoch's end, naming the step, before anything is logged or saved.
  train_step = build_train_step(config, generator, discriminator,
                                steps_per_epoch=steps_per_epoch)
  k_perm, k_step = jax.random.split(k_train)
  source = data_source({'x_unl': x_train, 'x_lab': x_train[labeled], 'y_lab': y_train[labeled]},
                       k_perm, batch_size=batch_size)
  dp = parallel.parallelize_chunk(loop.make_chunk(train_step, source.batch), 'none')
  data = dp.put_batch(source.data)
  evaluate = make_evaluate(discriminator, batch_size=config.eval.batch_size)
  average = jax.jit(lambda s: averaged_d_params(config, s))

  manager, metrics_path = None, None
  if workdir:
    os.makedirs(workdir, exist_ok=True)
    manager = checkpoint.manager(workdir, keep=2)
    state = checkpoint.restore_latest(manager, state, config=config)
    metrics_path = os.path.join(workdir, 'metrics.jsonl')
    faults.rewind_metrics(metrics_path, int(state.step))
    with open(os.path.join(workdir, 'config.json'), 'w') as f:
      f.write(config.to_json_best_effort(indent=2))
  start_epoch = int(state.step) // steps_per_epoch
  if start_epoch:
    logging.info('Resuming after epoch %d from %s', start_epoch, workdir)
  monitor = faults.NonFiniteMonitor(config.train.on_nonfinite, manager=manager)
  # One chunk per epoch: the driver tests, logs and checkpoints after every epoch.
  chunks = loop.chunk_ends(start_epoch * steps_per_epoch,
                           config.train.num_epochs * steps_per_epoch, steps_per_epoch)
  dp_state = dp.put_state(state)
  timing, run_epoch = {}, dp.step
  if chunks:
    tick = time.perf_counter()
    run_epoch = dp.step.lower(dp_state, data, source.plan(*chunks[0]), k_step).compile()
    timing = {'compile_seconds': time.perf_counter() - tick}
  for first, length in chunks:
    epoch = (first + length) // steps_per_epoch
    tick = time.perf_counter()
    dp_state, out = run_epoch(dp_state, data, source.plan(first, length), k_step)
    # Raises before anything non-finite is tested, logged or saved; names the step and player.
    skipped = monitor.check_chunk(first + 1, out['watched'])
    metrics = {k: float(v) for k, v in jax.device_get(out['mean']).items()}
    epoch_seconds = time.perf_counter() - tick
    if skipped:  # The first skipped step's own values name what went wrong.
      watched = jax.device_get(out['watched'])
      metrics.update({k: float(v[skipped[0] - first - 1]) for k, v in watched.items()})
    metrics = dict(sorted({**metrics, 'nonfinite_steps': float(len(skipped))}.items()))
    state = dp.get_state(dp_state)
    tick = time.perf_counter()
    errors = int(evaluate(state.d_params, x_test, y_test))
    errors_avg = int(evaluate(average(state), x_test, y_test))
    row = {'epoch': epoch, 'step': int(state.step), 'test_errors': errors,
           'test_errors_avg': errors_avg, **metrics, 'epoch_seconds': epoch_seconds,
           'eval_seconds': time.perf_counter() - tick, **timing}
    timing = {}
    logging.info('epoch %d/%d  test errors %d (averaged D %d)  loss_lab %.4f  loss_unl %.4f  '
                 'loss_gen %.4f  %.1fs', epoch, config.train.num_epochs, errors, errors_avg,
                 metrics['loss_lab'], metrics['loss_unl'], metrics['loss_gen'], epoch_seconds)
    if metrics_path:
      with open(metrics_path, 'a') as f:
        f.write(json.dumps(row) + '\n')
    if manager and (epoch % config.train.checkpoint_every == 0
                    or epoch == config.train.num_epochs):
      manager.save(epoch * steps_per_epoch, args=checkpoint.save_args(state))
    if on_epoch:
      on_epoch(row)
  if manager:
    manager.wait_until_finished()
    manager.close()
  return jax.device_get(dp.get_state(dp_state))


def summarize_errors(errors) -> dict[str, float]:
  """``{'mean', 'std', 'n'}`` of test-error counts over seeds; ``std`` is the sample standard
  deviation (``ddof=1``), 0 for a single seed."""
  errors = np.asarray(errors, dtype=np.float64)
  if errors.size == 0:
    raise ValueError('summarize_errors needs at least one run, got none')
  std = float(np.std(errors, ddof=1)) if errors.size > 1 else 0.0
  return {'mean': float(np.mean(errors)), 'std': std, 'n': int(errors.size)}
