"""The other generative families on the GANs' driver: VAE, PixelCNN, Real NVP and the RBM.

Each family is a *one-player game*. Its objective (:func:`jaxgan.vae.objective`,
:func:`jaxgan.pixelcnn.objective`, :func:`jaxgan.realnvp.objective`,
:func:`jaxgan.rbm.objective`) is G's; the second player has no parameters and a zero loss
(:func:`no_player`, as SRResNet's D, :func:`jaxgan.super_resolution.no_discriminator_objective`).
So the state is a :class:`jaxgan.game.GANState`, the step :func:`jaxgan.game.make_train_step`,
and :func:`jaxgan.train.drive` runs it as it runs every game: jitted chunks of steps with the data
on the device, checkpoints (with their corrupt and mismatch guards), the non-finite monitor,
``metrics.jsonl`` and TensorBoard, ``samples/step_<N>.png`` and exact resume. Where a density
model lives in the state:

* ``g_params``, ``g_opt_state``: the model's parameters and their optax state;
* ``g_batch_stats``: the model state its objective returns: PCD's persistent chains
  ``{'chains': (N, V)}``, ``{}`` for every other model;
* ``d_params``, ``d_opt_state``, ``d_batch_stats``: ``{}``.

In ``metrics.jsonl``, ``g_loss`` is the family's training loss (the negative ELBO, the NLL in
nats per image, the RBM's free-energy gap) and ``d_loss`` is 0.

Data (:func:`source`): the training split's uint8 pixels stay on the device and batch ``t`` holds
the examples :func:`jaxgan.data.batch_indices` ``(key, t)``. The Bernoulli models (VAE,
PixelCNN, RBM) see intensities ``x / 255`` in [0, 1], binarized as ``config.data.binarize``
says: ``'dynamic'`` (each step draws ``x ~ Bernoulli(intensity)`` afresh from its objective's
key, a function of ``(seed, step)``, so a resumed run draws what it would have), ``'static'``
(the split binarized once, from the seed) or ``'none'`` (the data must already be binary; MNIST
is not, and the first batch says so before anything compiles). Real NVP sees the integer levels
0..255, which its objective dequantizes uniformly.

Test-set evaluation (:func:`make_evaluator`), every ``train.eval_every`` steps on the first
``eval.num_examples`` test images, binarized once (Bernoulli models) or dequantized once (Real
NVP) from the seed, so every evaluation scores the same numbers: the VAE's ELBO (and, at the last
step, the IWAE bound with ``eval.iwae_k`` samples), PixelCNN's exact NLL, Real NVP's bits per
dimension of the dequantized pixels, the RBM's log-likelihood with log Z by annealed importance
sampling (``eval.ais_num_betas`` temperatures, ``eval.final_ais_num_betas`` at the last step).

``config.trainer`` names the family (:data:`FAMILIES`); ``configs/{vae,pixelcnn,realnvp,
rbm}_mnist.py`` are the configs and ``python -m jaxgan.main`` trains them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from jaxgan import data as data_lib
from jaxgan import faults, game, loop, pixelcnn, rbm, realnvp, train, vae, visualize

FAMILIES = ('vae', 'pixelcnn', 'realnvp', 'rbm')
# The families with a Bernoulli likelihood of binary pixels.
BERNOULLI_FAMILIES = ('vae', 'pixelcnn', 'rbm')
BINARIZATIONS = ('dynamic', 'static', 'none')
OPTIMIZERS = ('adam', 'sgd')
SCHEDULES = ('constant', 'cosine')
# The 28x28 greyscale datasets (the models are written for one channel).
DATASETS = tuple(name for name, shape in sorted(data_lib.IMAGE_SHAPES.items()) if shape[-1] == 1)

# Pixel value -> intensity in [0, 1] and -> level in {0, ..., 255}, by table lookup (bit for bit
# the same in every program, as jaxgan.data.to_unit_range).
_INTENSITY = np.arange(256, dtype=np.float32) / np.float32(255.0)
_LEVEL = np.arange(256, dtype=np.float32)


# ------------------------------------------------------------------- the one-player game


def no_player(params, state: game.GANState, batch, *, key, shared_key):
  """The absent second player: no parameters (``d_params = {}``) and the constant loss 0.

  :func:`jaxgan.game.make_train_step` then computes an empty gradient, its optimizer
  (``optax.set_to_zero()``) keeps no state and nothing is evaluated: the compiled step is the
  model's update alone, with ``d_loss = d_grad_norm = 0`` in the metrics.
  """
  del params, state, batch, key, shared_key
  return jnp.zeros(()), ({}, {})


def init_state(params, *, optimizer: optax.GradientTransformation,
               model_state: Any = None) -> game.GANState:
  """Step 0 of a one-player game: ``g_params = params`` with ``optimizer.init(params)``,
  ``g_batch_stats = model_state`` (``{}`` by default; PCD's ``{'chains': ...}``) and an empty
  second player."""
  return game.GANState(step=jnp.zeros((), jnp.int32), g_params=params, d_params={},
                       g_opt_state=optimizer.init(params),
                       d_opt_state=optax.set_to_zero().init({}),
                       g_batch_stats={} if model_state is None else model_state,
                       d_batch_stats={})


def make_train_step(objective: game.Objective, *, optimizer: optax.GradientTransformation,
                    skip_nonfinite: bool = False):
  """The pure ``train_step(state, batch, key) -> (state, metrics)`` of a one-player game:
  :func:`jaxgan.game.make_train_step` with ``objective`` as G's and :func:`no_player` as D's.

  One ``optimizer`` update of ``g_params`` on ``grad objective`` per step; the objective's
  model state becomes ``g_batch_stats``. Its ``key`` is :func:`objective_key` ``(key,
  state.step)``. Metrics: the objective's, ``g_loss``, ``g_grad_norm``, ``g_nonfinite`` and the
  empty player's zeros. Jit it at the call site.
  """
  return game.make_train_step(g_objective=objective, d_objective=no_player,
                              g_optimizer=optimizer, d_optimizer=optax.set_to_zero(),
                              update_rule='alternating', skip_nonfinite=skip_nonfinite)


def objective_key(key: jax.Array, step) -> jax.Array:
  """The key the objective of step ``step`` gets from :func:`make_train_step`'s ``train_step(
  state, batch, key)``: G's key in :mod:`jaxgan.game`, ``split(fold_in(key, step), 3)[2]``."""
  return jax.random.split(jax.random.fold_in(key, step), 3)[2]


# ---------------------------------------------------------------------------- config


def image_shape(config: ml_collections.ConfigDict) -> tuple[int, int, int]:
  """``(H, W, C)`` of the config's images."""
  return tuple(data_lib.data_shape(config.data.name))


def validate(config: ml_collections.ConfigDict) -> None:
  """One-line ``ValueError`` for a bad density-model config, before anything is loaded or
  compiled: the family (:data:`FAMILIES`), the dataset (:data:`DATASETS`), the driver's fields,
  one device, the optimizer, the binarization of a Bernoulli model, the evaluation fields, and
  per family: the IWAE's ``k >= 1``, Real NVP's squeezes (``num_scales - 1`` halvings of the
  image sides), PixelCNN's odd kernels, the RBM's Gibbs steps and AIS sizes."""
  family = config.get('trainer')
  if family not in FAMILIES:
    raise ValueError(f'config.trainer={family!r} is not a density model; expected one of '
                     f'{list(FAMILIES)}')
  if config.data.name not in DATASETS:
    raise ValueError(f'config.data.name={config.data.name!r}: the density models train on 28x28 '
                     f'greyscale images; expected one of {list(DATASETS)}')
  train.check_driver_fields(config)
  t, e, m = config.train, config.eval, config.model
  if t.parallel != 'none':
    raise ValueError(f"config.train.parallel={t.parallel!r}: the density models train on one "
                     f"device (PCD's chains are per-device state); use 'none'")
  if t.optimizer not in OPTIMIZERS:
    raise ValueError(f'config.train.optimizer={t.optimizer!r} is not allowed; expected one of '
                     f'{list(OPTIMIZERS)}')
  if t.schedule not in SCHEDULES:
    raise ValueError(f'config.train.schedule={t.schedule!r} is not allowed; expected one of '
                     f'{list(SCHEDULES)}')
  if t.learning_rate <= 0 or t.weight_decay < 0:
    raise ValueError(f'config.train.learning_rate={t.learning_rate} must be > 0 and '
                     f'config.train.weight_decay={t.weight_decay} >= 0')
  if t.eval_every < 0 or e.num_examples < 1 or e.batch_size < 1:
    raise ValueError(f'config.train.eval_every={t.eval_every} must be >= 0, '
                     f'config.eval.num_examples={e.num_examples} and '
                     f'config.eval.batch_size={e.batch_size} >= 1')
  if family in BERNOULLI_FAMILIES and config.data.binarize not in BINARIZATIONS:
    raise ValueError(f'config.data.binarize={config.data.binarize!r} is not allowed; expected '
                     f'one of {list(BINARIZATIONS)}')
  height, width, _ = image_shape(config)
  if family == 'vae':
    if e.iwae_k < 1 or e.iwae_chunk_size < 1:
      raise ValueError(f'config.eval.iwae_k={e.iwae_k}: the IWAE bound needs k >= 1 importance '
                       f'samples (and config.eval.iwae_chunk_size={e.iwae_chunk_size} >= 1)')
    if m.latent_dim < 1:
      raise ValueError(f'config.model.latent_dim={m.latent_dim} must be >= 1')
  elif family == 'pixelcnn':
    for name in ('first_kernel_size', 'kernel_size'):
      if m[name] < 1 or m[name] % 2 == 0:
        raise ValueError(f'config.model.{name}={m[name]}: a masked convolution needs an odd '
                         f'kernel side')
  elif family == 'realnvp':
    if m.num_scales < 1:
      raise ValueError(f'config.model.num_scales={m.num_scales} must be >= 1')
    factor = 2**(m.num_scales - 1)
    if height % factor or width % factor:
      raise ValueError(f'config.model.num_scales={m.num_scales} squeezes the images '
                       f'{m.num_scales - 1} times, so their sides must be divisible by '
                       f'{factor}; {height}x{width} are not (use num_scales <= '
                       f'{1 + _halvings(math.gcd(height, width))})')
    if not 0 < m.alpha < 0.5:
      raise ValueError(f'config.model.alpha={m.alpha} must be in (0, 1/2)')
  else:
    if m.num_hidden < 1 or m.num_gibbs_steps < 1 or e.sample_gibbs_steps < 1:
      raise ValueError(f'config.model.num_hidden={m.num_hidden}, config.model.num_gibbs_steps='
                       f'{m.num_gibbs_steps} and config.eval.sample_gibbs_steps='
                       f'{e.sample_gibbs_steps} must be >= 1')
    if m.persistent and m.num_chains < 1:
      raise ValueError(f'config.model.num_chains={m.num_chains}: PCD needs >= 1 chain')
    if e.ais_num_chains < 2 or min(e.ais_num_betas, e.final_ais_num_betas) < 4:
      raise ValueError(f'config.eval.ais_num_chains={e.ais_num_chains} must be >= 2 and '
                       f'config.eval.ais_num_betas={e.ais_num_betas}, '
                       f'config.eval.final_ais_num_betas={e.final_ais_num_betas} >= 4')


def _halvings(n: int) -> int:
  count = 0
  while n % 2 == 0:
    n, count = n // 2, count + 1
  return count


def build_model(config: ml_collections.ConfigDict):
  """The family's flax modules: ``(encoder, decoder)`` for the VAE, a
  :class:`jaxgan.pixelcnn.PixelCNN` (binary) or :class:`jaxgan.realnvp.RealNVP`; None for the
  RBM (a dict of parameters, no module)."""
  family, m = config.trainer, config.model
  if family == 'vae':
    hidden = tuple(m.hidden)
    return (vae.Encoder(hidden=hidden, latent_dim=m.latent_dim),
            vae.Decoder(hidden=hidden, latent_dim=m.latent_dim,
                        data_dim=math.prod(image_shape(config))))
  if family == 'pixelcnn':
    return pixelcnn.PixelCNN(features=m.features, num_blocks=m.num_blocks,
                             hidden_features=m.hidden_features,
                             first_kernel_size=m.first_kernel_size, kernel_size=m.kernel_size,
                             num_levels=2)
  if family == 'realnvp':
    return realnvp.RealNVP(num_scales=m.num_scales, hidden_features=m.hidden_features,
                           num_hidden_layers=m.num_hidden_layers)
  return None


def optimizer(config: ml_collections.ConfigDict) -> optax.GradientTransformation:
  """``config.train``'s optimizer: an L2 weight cost ``weight_decay * theta`` added to the
  gradient of the weight matrices and kernels (leaves with ``ndim >= 2``; not the biases: Hinton's
  RBM weight cost, Real NVP's L2 of 5e-5), then Adam (``b1``, ``b2``, ``eps``) or SGD
  (``momentum``), at ``learning_rate``, constant or cosine-decayed over ``num_steps`` to
  ``final_lr_fraction`` of it."""
  t = config.train
  lr = t.learning_rate
  if t.schedule == 'cosine':
    lr = optax.cosine_decay_schedule(t.learning_rate, t.num_steps,
                                     alpha=t.get('final_lr_fraction', 0.0))
  if t.optimizer == 'adam':
    update = optax.adam(lr, b1=t.get('b1', 0.9), b2=t.get('b2', 0.999), eps=t.get('eps', 1e-8))
  else:
    update = optax.sgd(lr, momentum=t.get('momentum', 0.0) or None)
  if not t.weight_decay:
    return update
  weights = lambda params: jax.tree.map(lambda p: jnp.ndim(p) >= 2, params)
  return optax.chain(optax.masked(optax.add_decayed_weights(t.weight_decay), weights), update)


# ------------------------------------------------------------------------------- data


def source(images: np.ndarray, key: jax.Array, batch_size: int, *,
           levels: bool = False) -> loop.Source:
  """Shuffled batches of uint8 ``images`` ``(N, H, W, C)``, gathered on the device: a
  :class:`jaxgan.loop.Source` whose batch ``t`` holds the examples
  :func:`jaxgan.data.batch_indices` ``(key, t)`` as ``{'x': (B, H, W, C) float32}``:
  intensities ``image / 255`` in [0, 1], or with ``levels=True`` the levels 0..255."""
  n = images.shape[0]
  data_lib.steps_per_epoch(n, batch_size)  # A clear error for a dataset smaller than a batch.
  plan = jax.jit(lambda start, length: data_lib.batch_indices(
      key, start, length, num_examples=n, batch_size=batch_size), static_argnums=1)
  table = _LEVEL if levels else _INTENSITY
  return loop.Source(data={'image': images}, plan=plan,
                     batch=lambda data, idx: {'x': jnp.asarray(table)[data['image'][idx]]})


def binarize_once(images: np.ndarray, key: jax.Array) -> np.ndarray:
  """One stochastic binarization of uint8 ``images``, ``Bernoulli(image / 255)`` per pixel, as
  uint8 0 or 255 (so :func:`source` gives intensities 0 or 1)."""
  bits = jax.random.bernoulli(key, jnp.asarray(_INTENSITY)[images])
  return np.asarray(bits, np.uint8) * np.uint8(255)


def _load(config: ml_collections.ConfigDict, split: str) -> np.ndarray:
  images = data_lib.load_images(config.data.name, split=split, data_dir=config.data.data_dir,
                                download=config.data.download)
  faults.check_images(images, data_shape=image_shape(config),
                      name=f'{config.data.name}[{split}]')
  return images['image']


def _binarization(config) -> str:
  return config.data.binarize if config.trainer in BERNOULLI_FAMILIES else 'none'


def _check_binary(x, what: str) -> None:
  try:
    vae.check_binary(x, what=what)
  except ValueError as e:
    raise ValueError(f"{e} (config.data.binarize='none' takes the data as given; 'dynamic' or "
                     f"'static' binarizes them)") from None


def check_batch(config: ml_collections.ConfigDict, batch: dict, step: int) -> None:
  """:func:`jaxgan.faults.check_batch` of a training batch (shape, float32, finite, in [0, 1]
  or, for Real NVP, [0, 255]); with ``data.binarize='none'`` a Bernoulli model's batch must
  also be binary."""
  levels = config.trainer == 'realnvp'
  faults.check_batch(batch, data_shape=image_shape(config), batch_size=config.train.batch_size,
                     value_range=(0.0, 255.0) if levels else (0.0, 1.0), step=step)
  if _binarization(config) == 'none' and config.trainer in BERNOULLI_FAMILIES:
    _check_binary(batch['x'], f"batch['x'] at step {step} (config.trainer="
                              f"{config.trainer!r})")


def eval_inputs(config: ml_collections.ConfigDict, images: np.ndarray,
                key: jax.Array) -> np.ndarray:
  """The evaluation's test data from uint8 ``images``: for a Bernoulli model binary float32
  (binarized once with ``key``; as given for ``data.binarize='none'``, which must be binary),
  for Real NVP the levels dequantized once, ``v + U[0, 1)`` with ``key``."""
  if config.trainer == 'realnvp':
    return np.asarray(realnvp.dequantize(_LEVEL[images], key))
  if _binarization(config) != 'none':
    images = binarize_once(images, key)
  x = _INTENSITY[images]
  _check_binary(x, f'the {config.data.name} test images (config.trainer={config.trainer!r})')
  return x


# --------------------------------------------------------------------- model, objective


def init_params(config: ml_collections.ConfigDict, key: jax.Array, model, *,
                visible_bias: jax.Array | None = None):
  """The model's parameters at step 0; the RBM's visible biases are ``visible_bias``, the base
  rate of the training images (:func:`base_rate`, Hinton's recipe)."""
  family = config.trainer
  if family == 'vae':
    return vae.init_params(key, encoder=model[0], decoder=model[1])
  if family == 'pixelcnn':
    return pixelcnn.init_params(key, model, image_shape=image_shape(config))
  if family == 'realnvp':
    return realnvp.init_params(key, model, shape=image_shape(config))
  return rbm.init_params(key, math.prod(image_shape(config)), config.model.num_hidden,
                         weight_scale=config.model.weight_scale,
                         visible_bias=visible_bias)


def base_rate(images: np.ndarray) -> jax.Array:
  """:func:`jaxgan.rbm.base_rate_visible_bias` of uint8 ``images`` ``(N, ...)``: the logits of
  their smoothed mean intensities, ``(D,)`` (the mean taken in float64 on the host)."""
  mean = images.reshape(images.shape[0], -1).mean(0, dtype=np.float64) / 255.0
  return rbm.base_rate_visible_bias(jnp.asarray(mean[None], jnp.float32))


def build_objective(config: ml_collections.ConfigDict, model) -> game.Objective:
  """The family's objective (see each module), from ``config.model`` and ``data.binarize``."""
  family, m = config.trainer, config.model
  dynamic = _binarization(config) == 'dynamic'
  if family == 'vae':
    return vae.objective(encoder=model[0], decoder=model[1], binarize=dynamic)
  if family == 'pixelcnn':
    return pixelcnn.objective(model, dynamic_binarization=dynamic)
  if family == 'realnvp':
    return realnvp.objective(model, alpha=m.alpha)
  return rbm.objective(num_gibbs_steps=m.num_gibbs_steps, persistent=m.persistent,
                       binarize=dynamic)


# -------------------------------------------------------------------- samples, evaluation


def _batches(n: int, size: int):
  return [(start, min(size, n - start)) for start in range(0, n, size)]


def make_sampler(config: ml_collections.ConfigDict, model, *, batch_size: int = 500
                 ) -> Callable[[game.GANState, jax.Array, int], np.ndarray]:
  """``sample(state, key, num) -> (num, H, W, C)`` images in [-1, 1], drawn ``batch_size`` at a
  time (batch ``i`` with ``fold_in(key, i)``): the VAE's Bernoulli means
  ``sigmoid(decoder(z))``, PixelCNN's binary ancestral samples, Real NVP's quantized levels, the
  RBM's visible probabilities ``p(v | h)`` after ``eval.sample_gibbs_steps`` Gibbs sweeps from
  the base rate (the smooth pictures of the Bernoulli models, as papers draw them)."""
  family, shape = config.trainer, image_shape(config)
  if family == 'vae':
    draw = jax.jit(lambda state, key, n: vae.sample(state.g_params, key, n, decoder=model[1]),
                   static_argnums=2)
  elif family == 'pixelcnn':
    draw = lambda state, key, n: pixelcnn.sample(model, state.g_params, key, num_samples=n,
                                                 image_shape=shape)
  elif family == 'realnvp':
    alpha = config.model.alpha
    draw = jax.jit(lambda state, key, n: realnvp.sample(
        model, state.g_params, key, num_samples=n, image_shape=shape, alpha=alpha) / 255.0,
        static_argnums=2)
  else:
    steps = config.eval.sample_gibbs_steps
    draw = jax.jit(lambda state, key, n: rbm.sample(state.g_params, key, n, num_steps=steps)[1],
                   static_argnums=2)

  def sample(state: game.GANState, key: jax.Array, num: int) -> np.ndarray:
    parts = [np.asarray(draw(state, jax.random.fold_in(key, i), n)).reshape((n, *shape))
             for i, (_, n) in enumerate(_batches(num, batch_size))]
    return 2.0 * np.concatenate(parts) - 1.0

  return sample


def _summed(fn, x: np.ndarray, batch_size: int, *args) -> float:
  """``sum_b fn(x_b, i, *args)`` over ``batch_size`` batches ``x_b`` (the ``i``-th), in float64."""
  return sum(float(fn(jnp.asarray(x[start:start + n]), i, *args))
             for i, (start, n) in enumerate(_batches(len(x), batch_size)))


def make_evaluator(config: ml_collections.ConfigDict, model, test_x: np.ndarray, *,
                   key: jax.Array, base_visible_bias: jax.Array | None = None
                   ) -> Callable[..., dict[str, float]]:
  """``evaluate(state, *, final=False) -> {name: float}`` on the test data ``test_x``
  (:func:`eval_inputs`), ``eval.batch_size`` examples at a time, every number in nats per image
  unless named otherwise:

  * VAE: ``test_elbo`` (one reparameterized draw per image, analytic KL, :func:`jaxgan.vae.elbo`
    with ``fold_in(key, batch)``); with ``final`` also ``test_iwae``, the IWAE bound with
    ``eval.iwae_k`` samples (:func:`jaxgan.vae.iwae_bound`), the test log-likelihood estimate
    of the IWAE paper (k = 5000: 5000 decoder passes per image);
  * PixelCNN: ``test_nll`` (exact) and ``test_bits_per_dim``;
  * Real NVP: ``test_bits_per_dim`` (:func:`jaxgan.realnvp.bits_per_dim`, the dequantized pixels'
    density by the change of variables through the logit transform) and ``test_nll``;
  * RBM: ``test_log_likelihood`` ``= mean(-F(x)) - log Z``, with ``log_z`` and
    ``log_z_std_error`` from :func:`jaxgan.rbm.ais_log_partition` (``eval.ais_num_chains``
    chains from the base-rate model ``base_visible_bias``; ``eval.ais_num_betas``
    temperatures of :func:`jaxgan.rbm.paper_betas`, ``eval.final_ais_num_betas`` with
    ``final``), drawn with ``key``.

  Raises:
    ValueError: ``eval.iwae_k < 1`` (from :func:`jaxgan.vae.iwae_bound`).
  """
  family, e = config.trainer, config.eval
  n, size = len(test_x), e.batch_size
  if family == 'vae':
    encoder, decoder = model
    elbo = jax.jit(lambda params, x, i: jnp.sum(vae.elbo(
        params, x, jax.random.fold_in(key, i), encoder=encoder, decoder=decoder)))
    k, chunk = e.iwae_k, e.iwae_chunk_size
    iwae = jax.jit(lambda params, x, i: jnp.sum(vae.iwae_bound(
        params, x, jax.random.fold_in(jax.random.fold_in(key, 2**31 - 1), i), k=k,
        chunk_size=chunk, encoder=encoder, decoder=decoder)))

    def evaluate_vae(state, *, final: bool = False):
      out = {'test_elbo': _summed(lambda x, i: elbo(state.g_params, x, i), test_x, size) / n}
      if final:
        out['test_iwae'] = _summed(lambda x, i: iwae(state.g_params, x, i), test_x, size) / n
      return out

    return evaluate_vae
  if family in ('pixelcnn', 'realnvp'):
    if family == 'pixelcnn':
      nll = jax.jit(lambda params, x: jnp.sum(pixelcnn.nll(model, params, x)))
    else:
      alpha = config.model.alpha
      nll = jax.jit(lambda params, x: jnp.sum(realnvp.pixel_nll(model, params, x, alpha=alpha)))
    num_dims = math.prod(test_x.shape[1:])

    def evaluate_likelihood(state, *, final: bool = False):
      del final
      mean = _summed(lambda x, i: nll(state.g_params, x), test_x, size) / n
      return {'test_nll': mean, 'test_bits_per_dim': mean / (num_dims * math.log(2.0))}

    return evaluate_likelihood
  free_energy = jax.jit(lambda params, x: jnp.sum(rbm.free_energy(params, x.reshape(
      x.shape[0], -1))))
  ais = jax.jit(lambda params, betas: rbm.ais_log_partition(
      params, key, num_chains=e.ais_num_chains, betas=betas,
      base_visible_bias=base_visible_bias))
  schedules = {False: jnp.asarray(rbm.paper_betas(e.ais_num_betas), jnp.float32),
               True: jnp.asarray(rbm.paper_betas(e.final_ais_num_betas), jnp.float32)}

  def evaluate_rbm(state, *, final: bool = False):
    log_z, std_error = ais(state.g_params, schedules[bool(final)])
    mean_free_energy = _summed(lambda x, i: free_energy(state.g_params, x), test_x, size) / n
    return {'test_log_likelihood': -mean_free_energy - float(log_z), 'log_z': float(log_z),
            'log_z_std_error': float(std_error)}

  return evaluate_rbm


# ----------------------------------------------------------------------------- a run


class Run(NamedTuple):
  """The pieces of one run of a density model, as :func:`jaxgan.train.drive` takes them.

  Attributes:
    model: :func:`build_model`'s modules.
    state: the state at step 0 (:func:`init_state`).
    train_step: :func:`make_train_step` of the family's objective.
    source: the training batches (:func:`source`).
    step_key: the key every step folds its step number into.
    sample: :func:`make_sampler`'s ``sample(state, key, num)``.
    sample_key: the key of the sample grids.
    evaluate: :func:`make_evaluator`'s ``evaluate(state, *, final=False)``.
  """

  model: Any
  state: game.GANState
  train_step: Callable
  source: loop.Source
  step_key: jax.Array
  sample: Callable[[game.GANState, jax.Array, int], np.ndarray]
  sample_key: jax.Array
  evaluate: Callable[..., dict[str, float]]


def build(config: ml_collections.ConfigDict) -> Run:
  """Validates ``config`` and builds its run: loads the training and test splits, initializes
  the model and makes the step, the data, the sampler and the evaluator. The keys are
  ``split(PRNGKey(config.seed), 5) = (init, step, data, sample, eval)``."""
  validate(config)
  init_key, step_key, data_key, sample_key, eval_key = jax.random.split(
      jax.random.PRNGKey(config.seed), 5)
  train_images = _load(config, 'train')
  if _binarization(config) == 'static':
    train_images = binarize_once(train_images, jax.random.fold_in(data_key, 1))
  test_images = _load(config, 'test')[:config.eval.num_examples]
  model = build_model(config)
  bias = base_rate(train_images) if config.trainer == 'rbm' else None
  params = init_params(config, init_key, model, visible_bias=bias)
  model_state = None
  if config.trainer == 'rbm' and config.model.persistent:
    model_state = {'chains': rbm.init_chains(jax.random.fold_in(init_key, 1), params,
                                             config.model.num_chains)}
  tx = optimizer(config)
  state = init_state(params, optimizer=tx, model_state=model_state)
  train_step = make_train_step(build_objective(config, model), optimizer=tx,
                               skip_nonfinite=config.train.on_nonfinite == 'skip')
  batches = source(train_images, data_key, config.train.batch_size,
                   levels=config.trainer == 'realnvp')
  evaluate = make_evaluator(
      config, model, eval_inputs(config, test_images, jax.random.fold_in(eval_key, 0)),
      key=jax.random.fold_in(eval_key, 1), base_visible_bias=bias)
  return Run(model=model, state=state, train_step=train_step, source=batches,
             step_key=step_key, sample=make_sampler(config, model), sample_key=sample_key,
             evaluate=evaluate)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str, *,
                       should_stop: Callable[[int], bool] | None = None) -> game.GANState:
  """Trains the density model ``config`` describes (``config.trainer`` in :data:`FAMILIES`)
  with the one driver, :func:`jaxgan.train.drive`, writing into ``workdir``.

  Writes what every run writes (``checkpoints/``, ``metrics.jsonl``, TensorBoard, ``config.json``)
  and ``samples/step_<N>.png``, a grid of ``train.num_samples`` samples (:func:`make_sampler`).
  With ``train.eval_every > 0`` the test metrics of :func:`make_evaluator` join the
  ``metrics.jsonl`` row of every ``eval_every``-th step and of the last, which also gets the
  final ones (``test_iwae``, the long AIS) when it is ``train.num_steps``. Run again with the
  same workdir, it resumes from the latest checkpoint exactly: batches, binarizations,
  dequantizations and PCD's chains (in the state) are what the uninterrupted run had.
  ``should_stop(step)`` ends the run after a chunk, as :func:`jaxgan.train.drive` says.

  Returns:
    The final state (on the host).

  Raises:
    ValueError: a bad config (before anything is loaded) or a bad first batch (before anything
      compiles), e.g. non-binary data for a Bernoulli model.
  """
  run = build(config)
  t = config.train

  def save_samples(state, path, step):
    del step
    visualize.save_image_grid(path, run.sample(state, run.sample_key, t.num_samples))

  evaluate = None
  if t.eval_every:
    evaluate = lambda state: run.evaluate(state, final=int(state.step) >= t.num_steps)
  return train.drive(config, workdir, state=run.state, train_step=run.train_step,
                     source=run.source, step_key=run.step_key, save_samples=save_samples,
                     check_batch=lambda batch, step: check_batch(config, batch, step),
                     evaluate=evaluate, should_stop=should_stop)
