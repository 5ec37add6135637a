"""Training the semi-supervised GAN of Improved GAN (arXiv:1606.03498) on MNIST.

The GAN is two objectives (:func:`ssl.discriminator_objective`, the K+1-class D;
:func:`ssl.generator_objective`, feature matching) for the one train step of every game,
:func:`jaxgan.game.make_train_step`, on the same :class:`jaxgan.game.GANState`; what is its own
is D's weight-norm initialization (:func:`init_state`) and the Polyak average of D that is tested
(kept in D's optimizer state, :func:`optimizers`). :func:`build_train_step` says what one step
does.

It trains on the one driver of every run, :func:`jaxgan.train.drive`: ``train.num_steps``
steps in jitted chunks (:mod:`jaxgan.loop`) on device-resident MNIST, with the same
checkpoints, ``metrics.jsonl``, TensorBoard, ``samples/`` and exact resume as every config, and
the test errors of D (its own and its averaged parameters) as the driver's evaluation, every
``train.eval_every`` steps. :func:`train_and_evaluate` is the entry point that ``python -m
jaxgan.main`` calls for a config with ``trainer='semi_supervised'``.

The data of step ``t`` (0-based) is a function of ``(key, t)`` (:func:`data_source`): epoch ``e
= t // S`` (``S = N // batch_size`` steps) draws :func:`epoch_indices` from ``fold_in(key, e
S)``, the unlabeled batches walking through two random permutations of the training set, the
labeled ones through back-to-back permutations of the labeled subset; the labeled subset itself
is chosen by the seed alone (:func:`jaxgan.semi_supervised.select_labeled`). The step folds
``state.step`` into the run key (:mod:`jaxgan.game`). A run resumed from a checkpoint at any
step repeats the uninterrupted run bit for bit.
"""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from jax import lax

from jaxgan import faults, game, loop, train, visualize
from jaxgan import semi_supervised as ssl
from jaxgan.game import GANState

LR_SCHEDULES = ('constant', 'linear')


def num_steps(config: ml_collections.ConfigDict, *, steps_per_epoch: int | None = None) -> int:
  """The run's length in steps: ``train.num_steps``, or ``train.num_epochs * steps_per_epoch``
  where ``train.num_epochs`` is set (the trainer's unit before it ran on the one driver; an
  epoch is ``N // batch_size`` steps, 600 for MNIST at batch 100)."""
  epochs = config.train.get('num_epochs')
  if epochs is None:
    return config.train.num_steps
  if steps_per_epoch is None:
    raise ValueError(f'config.train.num_epochs={epochs} counts epochs: give steps_per_epoch '
                     '(or set config.train.num_steps and leave num_epochs None)')
  return epochs * steps_per_epoch


def init_state(config: ml_collections.ConfigDict, key: jax.Array,
               generator: ssl.SSGANGenerator, discriminator: ssl.SSGANDiscriminator,
               init_images: jax.Array, *, steps_per_epoch: int | None = None) -> GANState:
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
                     discriminator: ssl.SSGANDiscriminator, *,
                     steps_per_epoch: int | None = None, skip_nonfinite: bool | None = None):
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
  'skip'``; with ``'stop'`` the driver stops at the step itself) a non-finite step keeps the
  state from before it. ``steps_per_epoch`` only matters for a ``'linear'`` schedule of a run
  whose length is ``train.num_epochs`` (:func:`num_steps`).
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


# Module-level, so that every run of the same sizes reuses one compilation.
@functools.partial(jax.jit, static_argnames=('num_unlabeled', 'num_labeled', 'batch_size'))
def _epoch_indices_at(key: jax.Array, epoch_start, *, num_unlabeled: int, num_labeled: int,
                      batch_size: int) -> dict[str, jax.Array]:
  """:func:`epoch_indices` of ``key`` folded with the epoch's first step ``epoch_start``."""
  return epoch_indices(jax.random.fold_in(key, epoch_start), num_unlabeled=num_unlabeled,
                       num_labeled=num_labeled, batch_size=batch_size)


def data_source(data: dict, key: jax.Array, *, batch_size: int) -> loop.Source:
  """The training batches as a :class:`jaxgan.loop.Source` for :func:`jaxgan.loop.make_chunk`.

  ``data`` holds ``x_unl`` ``(N, ...)``, ``x_lab`` ``(L, ...)`` and ``y_lab`` ``(L,)`` (placed on
  the device once by the driver). The plan of steps ``start, ..., start + length - 1`` is their
  rows of :func:`epoch_indices`, epoch ``e`` (steps ``e S, ..., e S + S - 1``, ``S = N //
  batch_size``) drawn from ``fold_in(key, e S)``: the key folded with the step at the epoch's
  start. A step's batch gathers ``x_unl``, ``x_unl2``, ``x_lab`` and ``y_lab`` on the device;
  labeled batches have ``batch_size`` rows too, as in the paper's code. Every batch is a
  function of ``(key, step)``, so a run resumed at any step finds its place in O(1).
  """
  num_unlabeled, num_labeled = data['x_unl'].shape[0], data['x_lab'].shape[0]
  per_epoch = num_unlabeled // batch_size
  if per_epoch == 0:
    raise ValueError(f'batch_size={batch_size} is larger than the {num_unlabeled} unlabeled '
                     'examples')
  # The driver's chunks may be shorter than an epoch: each epoch's permutations are drawn once.
  indices = functools.lru_cache(maxsize=2)(lambda epoch: _epoch_indices_at(
      key, epoch * per_epoch, num_unlabeled=num_unlabeled, num_labeled=num_labeled,
      batch_size=batch_size))

  def plan(start: int, length: int):
    first, stop = start // per_epoch, -(-(start + length) // per_epoch)
    epochs = [indices(e) for e in range(first, stop)]
    offset = start - first * per_epoch
    if len(epochs) == 1 and offset == 0 and length == per_epoch:
      return epochs[0]  # An epoch exactly.
    return jax.tree.map(lambda *rows: jnp.concatenate(rows)[offset:offset + length], *epochs)

  def batch(data, idx):
    return {'x_unl': data['x_unl'][idx['unl']], 'x_unl2': data['x_unl'][idx['unl2']],
            'x_lab': data['x_lab'][idx['lab']], 'y_lab': data['y_lab'][idx['lab']]}

  return loop.Source(data=data, plan=plan, batch=batch)


@functools.lru_cache(maxsize=8)  # One compilation for every run of the same D.
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


def make_evaluator(config: ml_collections.ConfigDict, discriminator: ssl.SSGANDiscriminator,
                   images, labels) -> Callable[[GANState], dict[str, int]]:
  """``evaluate(state) -> {'test_errors', 'test_errors_avg'}`` for :func:`jaxgan.train.drive`:
  the errors of D on the test ``images`` (``(N, 28, 28, 1)`` in [0, 1]) and their ``labels``
  with its own parameters and with its averaged ones (:func:`averaged_d_params`, the paper's
  protocol), each counted by :func:`make_evaluate` (``eval.batch_size`` images per call)."""
  count = make_evaluate(discriminator, batch_size=config.eval.batch_size)
  average = jax.jit(lambda state: averaged_d_params(config, state))
  images, labels = jax.device_put((images, labels))

  def evaluate(state):
    return {'test_errors': int(count(state.d_params, images, labels)),
            'test_errors_avg': int(count(average(state), images, labels))}

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
  for field in ('data.num_labels', 'data.num_classes', 'model.latent_dim', 'train.batch_size',
                'train.g_lr', 'train.d_lr', 'train.init_batch_size', 'eval.batch_size'):
    section, name = field.split('.')
    if not config[section][name] > 0:
      raise ValueError(f'config.{field}={config[section][name]!r} must be > 0')
  train.check_driver_fields(config)  # num_steps and the *_every intervals (steps) >= 1.
  t = config.train
  if t.get('num_epochs') is not None and not t.num_epochs > 0:
    raise ValueError(f'config.train.num_epochs={t.num_epochs!r} must be > 0 (or None: '
                     'train.num_steps steps)')
  for name in ('eval_every', 'keep_checkpoints', 'num_samples'):
    if t[name] < 1:
      raise ValueError(f'config.train.{name}={t[name]} must be >= 1')
  if t.parallel != 'none':
    raise ValueError(f"config.train.parallel={t.parallel!r}: the semi-supervised GAN trains on "
                     "one device (parallel='none')")
  if t.chunk_mode not in loop.CHUNK_MODES:
    raise ValueError(f'config.train.chunk_mode={t.chunk_mode!r} is not allowed; expected one '
                     f'of {list(loop.CHUNK_MODES)}')
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
               steps_per_epoch: int | None = None):
  """``(g_optimizer, d_optimizer)``: Adam for G and D as the public code (``eps`` inside the square
  root), with the config's learning-rate schedule (``'linear'``: to 0 at the run's last step,
  :func:`num_steps`). D's hidden weight-norm scales stay frozen unless
  ``config.train.train_hidden_scale``; D's optimizer ends with :func:`ssl.parameter_average` of
  decay ``config.train.d_ema_decay``."""
  t = config.train
  def adam(lr):
    if t.lr_schedule == 'linear':
      lr = optax.linear_schedule(lr, 0.0, transition_steps=num_steps(
          config, steps_per_epoch=steps_per_epoch))
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
                       on_row: Callable[[dict], None] | None = None,
                       should_stop: Callable[[int], bool] | None = None,
                       on_epoch: Callable[[dict], None] | None = None) -> GANState:
  """Trains the semi-supervised GAN of ``config`` on the one driver (:func:`jaxgan.train.drive`)
  and tests D every ``train.eval_every`` steps.

  Writes into ``workdir`` (a temporary directory, removed at the end, when None) what every run
  writes: ``checkpoints/`` (every ``train.checkpoint_every`` steps and the last, the last
  ``train.keep_checkpoints`` kept), ``metrics.jsonl``, TensorBoard event files,
  ``samples/step_<N>.png`` (``train.num_samples`` images of G) and ``config.json``; run again
  with the same workdir, it resumes from the latest checkpoint, bit-exact, and continues to
  :func:`num_steps`. The guards are the driver's: the config and the data are checked before
  anything compiles, a checkpoint of another config is refused naming the fields that differ, a
  damaged one is skipped for the previous one, rows logged after the checkpoint are dropped, and
  a non-finite step stops the run (``train.on_nonfinite='stop'``, naming the step and player;
  the last good checkpoint is kept) or is skipped (``'skip'``).

  A ``metrics.jsonl`` row, every ``train.log_every`` steps and at the last: ``step``, the
  logged step's metrics (:func:`build_train_step`: ``loss_lab``, ``loss_unl``, ``loss_gen``,
  ``train_err``, ``d_loss``, ...), ``steps_per_sec``, each metric's mean over the chunk of steps
  that ends there as ``chunk_mean/<name>`` (with the default intervals a chunk is one epoch, so
  these are the epoch means the trainer's earlier per-epoch rows held), and, every
  ``train.eval_every`` steps and at the last, ``test_errors`` (of the test images, D's own
  parameters) and ``test_errors_avg`` (D's averaged parameters, the paper's protocol)
  (:func:`make_evaluator`; a row of their own at a step that is not logged).

  Args:
    config: an SSGAN config (``configs/ssgan_mnist.py``).
    workdir: the run's directory, or None.
    mnist: the arrays of :func:`load_mnist` (loaded from ``config.data`` when None).
    on_row: called with each row as it is written to ``metrics.jsonl``.
    should_stop: ``should_stop(step)``, asked after each chunk, ends the run there as if that
      step were the last (logged, tested, sampled and checkpointed).
    on_epoch: the former name of ``on_row`` (rows were per epoch); still accepted.

  Returns:
    The final :class:`jaxgan.game.GANState` (on the host), as the main trainer.

  Raises:
    ValueError: a bad config or data (before anything compiles).
    jaxgan.faults.NonFiniteError: a non-finite step with ``train.on_nonfinite='stop'``.
    jaxgan.checkpoint.CheckpointMismatchError: the workdir holds another config's checkpoints.
  """
  if on_epoch is not None:
    if on_row is not None:
      raise ValueError('give on_row or its former name on_epoch, not both')
    on_row = on_epoch
  validate(config)
  if mnist is None:
    mnist = load_mnist(data_dir=config.data.data_dir, download=config.data.download)
  check_data(config, mnist)
  x_train, y_train = mnist['x_train'], mnist['y_train']
  steps_per_epoch = x_train.shape[0] // config.train.batch_size
  if steps_per_epoch == 0:
    raise ValueError(f'config.train.batch_size={config.train.batch_size} is larger than the '
                     f'{x_train.shape[0]} training images')
  config = _in_steps(config, steps_per_epoch)
  k_label, k_init, k_train = jax.random.split(jax.random.PRNGKey(config.seed), 3)
  labeled = np.asarray(ssl.select_labeled(k_label, y_train, num_labels=config.data.num_labels,
                                          num_classes=config.data.num_classes))
  generator, discriminator = build_models(config)
  init_rows = jax.random.choice(jax.random.fold_in(k_init, 1), x_train.shape[0],
                                (config.train.init_batch_size,), replace=False)
  # Eager, as the trainer of the README's figures (jitted, XLA rounds D's weight-norm
  # initialization differently by an ulp); each op compiles once per process.
  state = init_state(config, k_init, generator, discriminator,
                     jnp.asarray(x_train[np.asarray(init_rows)]))
  k_perm, k_step = jax.random.split(k_train)
  source = data_source({'x_unl': x_train, 'x_lab': x_train[labeled], 'y_lab': y_train[labeled]},
                       k_perm, batch_size=config.train.batch_size)
  z = jax.random.uniform(jax.random.fold_in(k_train, 1),
                         (config.train.num_samples, config.model.latent_dim))

  def save_samples(state: GANState, path: str, step: int) -> None:
    del step
    visualize.save_image_grid(path, 2.0 * np.asarray(_draw(generator, state, z)) - 1.0)

  def run(workdir: str) -> GANState:
    return train.drive(
        config, workdir, state=state, train_step=build_train_step(config, generator,
                                                                  discriminator),
        source=source, step_key=k_step, save_samples=save_samples,
        evaluate=make_evaluator(config, discriminator, mnist['x_test'], mnist['y_test']),
        should_stop=should_stop, row_means=True, on_row=on_row)

  if workdir:
    return run(workdir)
  with tempfile.TemporaryDirectory(prefix='ssgan_') as tmp:
    return run(tmp)


@functools.partial(jax.jit, static_argnums=0)
def _draw(generator: ssl.SSGANGenerator, state: GANState, z: jax.Array) -> jax.Array:
  """G's images of ``z`` in [0, 1]; G runs in training mode (batch statistics), as the paper's
  code."""
  variables = {'params': state.g_params, 'batch_stats': state.g_batch_stats}
  return generator.apply(variables, z, train=True, mutable=['batch_stats'])[0]


def _in_steps(config: ml_collections.ConfigDict, steps_per_epoch: int
              ) -> ml_collections.ConfigDict:
  """``config`` in the driver's unit: where ``train.num_epochs`` is set, a copy with
  ``train.num_steps`` of :func:`num_steps` and ``num_epochs`` None (what ``config.json``
  holds)."""
  if config.train.get('num_epochs') is None:
    return config
  steps = num_steps(config, steps_per_epoch=steps_per_epoch)
  config = config.copy_and_resolve_references()
  with config.unlocked():
    config.train.num_steps, config.train.num_epochs = steps, None
  return config


def summarize_errors(errors) -> dict[str, float]:
  """``{'mean', 'std', 'n'}`` of test-error counts over seeds; ``std`` is the sample standard
  deviation (``ddof=1``), 0 for a single seed."""
  errors = np.asarray(errors, dtype=np.float64)
  if errors.size == 0:
    raise ValueError('summarize_errors needs at least one run, got none')
  std = float(np.std(errors, ddof=1)) if errors.size > 1 else 0.0
  return {'mean': float(np.mean(errors)), 'std': std, 'n': int(errors.size)}
