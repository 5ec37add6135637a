r"""StyleGAN2 and progressive growing trained from the command line, on the one update rule.

Both systems are two objectives for :func:`jaxgan.game.make_train_step` (``'alternating'``, one D
update then one G update per step) run by the one driver, :func:`jaxgan.train.drive`: jitted
chunks, checkpoints with their corrupt and mismatch guards, the non-finite monitor,
``metrics.jsonl``, TensorBoard, ``samples/`` and exact resume. ``config.trainer`` names the
system (:data:`SYSTEMS`); ``configs/{stylegan2,pggan}_{mnist,fashion_mnist}.py`` are the
configs. The models are :mod:`jaxgan.stylegan2` and :mod:`jaxgan.pggan`.

Data: the 28x28 digits scaled to [-1, 1], zero-padded (black, -1) to 32x32
(:func:`jaxgan.pggan.pad_to`) and, for a model of ``resolution < 32``, average-pooled down to it
(:func:`jaxgan.pggan.downsample_to`); batch ``t`` holds the examples
:func:`jaxgan.data.batch_indices` ``(data_key, t)``, so a resumed run sees what it would have.

**StyleGAN2** (Karras et al. 2020, arXiv:1912.04958; Appendix B for the optimizer), with ``z ~
N(0, I)``, ``G`` the style generator (mapping, mixing, noise) and ``D`` the residual critic:

.. math::
  L_D = \mathbb E[\mathrm{softplus}(D(G(z)))] + \mathbb E[\mathrm{softplus}(-D(x))]
        + [t \bmod k_D = 0]\; k_D \tfrac{\gamma}{2}\, \mathbb E \lVert \nabla_x D(x) \rVert^2

.. math::
  L_G = \mathbb E[\mathrm{softplus}(-D(G(z)))]
        + [t \bmod k_G = 0]\; k_G\, w_{pl}\, \mathbb E[(\lVert J_w^\top y \rVert - a)^2]

the non-saturating logistic loss, lazy R1 every ``k_D = 16`` steps
(:func:`jaxgan.penalties.r1_term`) and lazy path-length regularization every ``k_G = 4`` steps
with ``w_pl = 2`` and the running mean ``a`` of the lengths (decay 0.01;
:func:`jaxgan.stylegan2.path_length_penalty`, on ``batch / pl_batch_shrink`` fresh latents as the
paper's code). Both players' fakes use style
mixing (probability ``model.style_mixing_probability``, the paper's 0.9) and per-pixel noise.
Each lazy term is weighted by its interval ``k`` so that its average weight per step is the
eager one, and the player's Adam is corrected as the paper's Appendix B says:

.. math::
  c = \frac{k}{k + 1}, \qquad \eta' = c\, \eta, \qquad \beta_1' = \beta_1^{c}, \qquad
  \beta_2' = \beta_2^{c}

(:func:`lazy_adam_hyperparameters`). The paper's code takes the regularizer in an optimizer step
of its own (``k + 1`` updates per ``k`` minibatches, which ``c`` accounts for); jaxgan adds it to
the ``k``-th step's loss (its one update rule has one update per player per step) and keeps the
paper's correction, as :func:`jaxgan.experiment.optimizers` does for lazy R1. G's model state
``g_batch_stats`` is ``{'w_avg': (w_dim,), 'path_length_mean': ()}``: the running average of
``w`` (updated by G's own forward pass in its objective, the truncation trick's centre) and
``a``. The moving average of G's weights (``train.ema_decay``) is the step's
(:func:`jaxgan.game.update_ema`); samples use it.

**Progressive growing** (Karras et al. 2018, arXiv:1710.10196): WGAN-GP (weight 10) plus the
drift term ``1e-3 E[D(x)^2]`` (Appendix A.1), stages ``4 -> 8 -> ... -> resolution``, each above
4x4 faded in over ``schedule.fade_steps`` steps and then trained ``schedule.stable_steps``
(:func:`jaxgan.pggan.stage_at`, :func:`jaxgan.pggan.alpha_at`: the stage and ``alpha`` are pure
functions of the step). The reals are blended like G's output
(:func:`jaxgan.pggan.fade_real_images`). Adam (``beta_1 = 0, beta_2 = 0.99``), its state reset
at the start of every phase (every fade and every stable period, as the paper's code's
``reset_opt_for_new_lod``; :func:`reset_at`).

*Why the state holds every stage's parameters from step 0.* The state is the full-resolution
networks' parameters (every ``block_<r>``, ``to_rgb_<r>`` and ``from_rgb_<r>``), and the step runs
the current stage's networks on their subset (:func:`stage_params`; the host picks the stage's
compiled step, :class:`jaxgan.loop.Switched`). This is what the paper's own code does (it builds G
and D at full resolution and a level-of-detail input picks the layers that run), so the checkpoint
has one structure for the whole run: resuming at or across a stage boundary is the same program on
the same state, bit for bit, and :class:`jaxgan.checkpoint.CheckpointMismatchError` keeps its one
meaning (another config wrote these checkpoints), with no per-stage reshaping that could hide a real
mismatch. Parameters of stages not yet reached get zero gradients, and Adam with ``beta_1 = 0`` (the
paper's) moves a parameter with a zero gradient by exactly zero, so they keep their initial values
until their stage begins (and the optimizer is reset there). The cost is memory for the unused
layers (small).

*Why a step is compiled per stage and per lazy-term pattern.* Which networks run (PGGAN) and
whether a lazy term is added (StyleGAN2) depend on the step's number. Chosen inside one program
(a ``lax.switch`` or ``lax.cond`` on ``state.step``), they put both players' gradients inside a
conditional, where XLA:CPU ran their convolutions 41-44 times slower
(``benchmarks/cond_gradients.py``). :func:`build_train_step` therefore returns a
:class:`jaxgan.loop.Switched` step: the host names each step's variant (PGGAN: its stage;
StyleGAN2: :func:`lazy_terms`, at most three patterns) and the driver runs a compiled,
conditional-free step per variant, each compiled when first reached.

Samples (``samples/step_<N>.png``): the EMA generator at the step's stage and ``alpha``, at that
stage's resolution; PGGAN also writes ``samples/resolution_<r>.png`` for every resolution it has
passed (rewritten at each sample of that stage: the last one it reached).
"""

from __future__ import annotations

import functools
import numbers
import os
from collections.abc import Callable
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from jax import lax

from jaxgan import data as data_lib
from jaxgan import faults, game, loop, losses, penalties, pggan, stylegan2, train, visualize

SYSTEMS = ('stylegan2', 'pggan')
# The 28x28 greyscale datasets, zero-padded to 32x32.
DATASETS = ('mnist', 'fashion_mnist')
PADDED_SIZE = 32


# ---------------------------------------------------------------------------- config


def base_config(system: str, data_name: str = 'mnist') -> ml_collections.ConfigDict:
  """The config of ``configs/<system>_<data_name>.py``: the paper's recipe at MNIST scale.

  StyleGAN2: 32x32, ``w_dim = z_dim = 64``, a 2-layer mapping network (the paper's 8 x 512),
  widths ``min(1024 / r, 64)`` (64 at 4x4-16x16, 32 at 32x32), the paper's Adam (lr 0.002,
  betas (0, 0.99), eps 1e-8), batch 32, R1 ``gamma = 0.0002 R^2 / B`` (StyleGAN2-ADA's heuristic
  for small images, arXiv:2006.06676, Appendix D.1: 0.0064 here) every 16 steps, path length
  weight 2 every 4 steps, mixing 0.9, G's moving average with decay 0.999.

  PGGAN: widths ``min(1024 / r, 64)``, ``z_dim = 64``, Adam (lr 0.001, betas (0, 0.99), eps
  1e-8; the paper's), batch 32, WGAN-GP 10 and drift 1e-3, phases of 1,000 steps (4x4 stable,
  then fade and stable at 8, 16 and 32: 7,000 steps) and 1,000 more at 32x32, EMA 0.999.
  """
  if system not in SYSTEMS:
    raise ValueError(f'unknown system {system!r}; expected one of {list(SYSTEMS)}')
  config = ml_collections.ConfigDict()
  # 'stylegan2' or 'pggan': jaxgan.main dispatches on it (jaxgan.style_train.SYSTEMS).
  config.trainer = system
  # Seeds the weights, the batch order, the latents, the noise and the mixing.
  config.seed = 0
  config.data = ml_collections.ConfigDict()
  # 'mnist' or 'fashion_mnist' (28x28, zero-padded to 32x32).
  config.data.name = data_name
  # A TFDS data_dir holding the prepared dataset (None: TFDS's default).
  config.data.data_dir = ml_collections.config_dict.placeholder(str)
  config.data.download = False
  config.model = ml_collections.ConfigDict()
  # The output side, a power of two in [4, 32] (below 32 the padded data are average-pooled).
  config.model.resolution = 32
  # Feature maps at side r: min(channel_base // r, channel_max).
  config.model.channel_base = 1024
  config.model.channel_max = 64
  # Groups of D's minibatch standard deviation (the papers' 4).
  config.model.mbstd_group_size = 4
  config.train = ml_collections.ConfigDict()
  config.train.batch_size = 32
  # Adam for both players (the papers' betas; StyleGAN2's are corrected for the lazy terms).
  config.train.b1 = 0.0
  config.train.b2 = 0.99
  config.train.eps = 1e-8
  # Decay of the moving average of G's weights that the samples use (0: none).
  config.train.ema_decay = 0.999
  # Intervals (steps) of metrics.jsonl rows, sample grids and checkpoints; checkpoints kept.
  config.train.log_every = 100
  config.train.sample_every = 1000
  config.train.checkpoint_every = 1000
  config.train.keep_checkpoints = 2
  # Samples per grid.
  config.train.num_samples = 64
  # One device; 'stop' at a NaN/inf step ('skip' keeps the state from before it).
  config.train.parallel = 'none'
  config.train.on_nonfinite = 'stop'
  # Convolutions: stepwise on a CPU, scanned elsewhere (jaxgan.loop.use_scan).
  config.train.chunk_mode = 'auto'
  config.loss = ml_collections.ConfigDict()
  if system == 'stylegan2':
    # Width of z and of w, and the mapping network's depth (>= 1) and learning-rate multiplier.
    config.model.latent_dim = 64
    config.model.mapping_depth = 2
    config.model.mapping_lr_multiplier = 0.01
    # Style mixing regularization: the probability that a fake mixes two latents' styles.
    config.model.style_mixing_probability = 0.9
    # Decay of the running average of w (the truncation trick's centre).
    config.model.w_avg_decay = 0.995
    # R1 on the reals, every r1_every steps (lazy); 0 turns it off.
    config.loss.r1_gamma = 0.0002 * 32**2 / 32
    config.loss.r1_every = 16
    # Path-length regularization: weight, interval (lazy), decay of the mean length, and the
    # divisor of the batch it is computed on (the paper's code: 2).
    config.loss.pl_weight = 2.0
    config.loss.pl_every = 4
    config.loss.pl_decay = 0.01
    config.loss.pl_batch_shrink = 2
    config.train.num_steps = 10_000
    config.train.g_lr = 0.002
    config.train.d_lr = 0.002
    # The truncation psi of the sample grids (1: none).
    config.train.truncation_psi = 1.0
  else:
    config.model.latent_dim = 64
    # WGAN-GP's lambda and the drift epsilon (Appendix A.1).
    config.loss.gradient_penalty_weight = pggan.GRADIENT_PENALTY_WEIGHT
    config.loss.drift_epsilon = pggan.DRIFT_EPSILON
    config.schedule = ml_collections.ConfigDict()
    # Steps of each fade-in and of each stable period (the paper: 800k images each).
    config.schedule.fade_steps = 1000
    config.schedule.stable_steps = 1000
    # Reset Adam's state at the start of every phase (the paper's reset_opt_for_new_lod).
    config.train.reset_optimizer = True
    config.train.num_steps = 8000
    config.train.g_lr = 0.001
    config.train.d_lr = 0.001
  return config


def num_stages(config) -> int:
  """PGGAN's stages: ``log2(resolution) - 1`` (4x4 is stage 0)."""
  return len(pggan.resolutions(config.model.resolution))


def validate(config: ml_collections.ConfigDict) -> None:
  """One-line ``ValueError`` for a bad config, before any data are loaded or anything compiles:
  the system, the dataset, the resolution (a power of two ``>= 4``, at most 32), the widths,
  the driver's fields, one device, the learning rates and betas, EMA; StyleGAN2's mixing
  probability (in [0, 1]), truncation ``psi >= 0``, mapping depth ``>= 1``, the lazy intervals;
  PGGAN's schedule."""
  system = config.get('trainer')
  if system not in SYSTEMS:
    raise ValueError(f'config.trainer={system!r} is not a style-based or progressive GAN; '
                     f'expected one of {list(SYSTEMS)}')
  if config.data.name not in DATASETS:
    raise ValueError(f'config.data.name={config.data.name!r}: expected one of {list(DATASETS)} '
                     f'(28x28 greyscale, zero-padded to 32x32)')
  m, t, loss = config.model, config.train, config.loss
  pggan.check_resolution(m.resolution, 'config.model.resolution')
  if m.resolution > PADDED_SIZE:
    raise ValueError(f'config.model.resolution={m.resolution}: the 28x28 data are padded to '
                     f'{PADDED_SIZE}x{PADDED_SIZE}; use a resolution <= {PADDED_SIZE}')
  if min(m.channel_base, m.channel_max, m.latent_dim, m.mbstd_group_size) < 1:
    raise ValueError(f'config.model.channel_base={m.channel_base}, channel_max={m.channel_max}, '
                     f'latent_dim={m.latent_dim} and mbstd_group_size={m.mbstd_group_size} must '
                     f'be >= 1')
  train.check_driver_fields(config)
  if t.parallel != 'none':
    raise ValueError(f"config.train.parallel={t.parallel!r}: {system} trains on one device here; "
                     f"use 'none'")
  if not (t.g_lr > 0 and t.d_lr > 0 and 0 <= t.b1 < 1 and 0 <= t.b2 < 1 and t.eps > 0):
    raise ValueError(f'config.train: need g_lr={t.g_lr} > 0, d_lr={t.d_lr} > 0, b1={t.b1} and '
                     f'b2={t.b2} in [0, 1), eps={t.eps} > 0')
  if not 0 <= t.ema_decay < 1:
    raise ValueError(f'config.train.ema_decay={t.ema_decay} must be in [0, 1)')
  if system == 'stylegan2':
    p = m.style_mixing_probability
    if not (isinstance(p, numbers.Real) and 0 <= p <= 1):
      raise ValueError(f'config.model.style_mixing_probability={p!r} must be in [0, 1]')
    if not (isinstance(t.truncation_psi, numbers.Real) and t.truncation_psi >= 0):
      raise ValueError(f'config.train.truncation_psi={t.truncation_psi!r} must be >= 0')
    if not (isinstance(m.mapping_depth, numbers.Integral) and m.mapping_depth >= 1):
      raise ValueError(f'config.model.mapping_depth={m.mapping_depth!r} must be an integer >= 1')
    if not m.mapping_lr_multiplier > 0 or not 0 <= m.w_avg_decay <= 1:
      raise ValueError(f'config.model.mapping_lr_multiplier={m.mapping_lr_multiplier} must be '
                       f'> 0 and w_avg_decay={m.w_avg_decay} in [0, 1]')
    if min(loss.r1_every, loss.pl_every, loss.pl_batch_shrink) < 1:
      raise ValueError(f'config.loss.r1_every={loss.r1_every}, pl_every={loss.pl_every} and '
                       f'pl_batch_shrink={loss.pl_batch_shrink} must be >= 1')
    if loss.r1_gamma < 0 or loss.pl_weight < 0 or not 0 <= loss.pl_decay <= 1:
      raise ValueError(f'config.loss.r1_gamma={loss.r1_gamma} and pl_weight={loss.pl_weight} '
                       f'must be >= 0, pl_decay={loss.pl_decay} in [0, 1]')
  else:
    s = config.schedule
    if s.fade_steps < 1 or s.stable_steps < 1:
      raise ValueError(f'config.schedule.fade_steps={s.fade_steps} and stable_steps='
                       f'{s.stable_steps} must be >= 1')
    if loss.gradient_penalty_weight < 0 or loss.drift_epsilon < 0:
      raise ValueError(f'config.loss.gradient_penalty_weight={loss.gradient_penalty_weight} and '
                       f'drift_epsilon={loss.drift_epsilon} must be >= 0')


# ------------------------------------------------------------------------- optimizers


def lazy_adam_hyperparameters(*, learning_rate: float, b1: float, b2: float,
                              every: int) -> dict[str, float]:
  r"""Adam's hyperparameters for a player with a regularizer applied every ``every`` steps.

  StyleGAN2 (arXiv:1912.04958, Appendix B): ``c = k / (k + 1)``, ``lr' = c lr``,
  ``b1' = b1^c``, ``b2' = b2^c`` (:func:`jaxgan.penalties.lazy_regularization_correction`;
  ``every = 1`` changes nothing). E.g. ``k = 16``: ``c = 16/17``, lr 0.002 -> 0.00188235,
  ``b2`` 0.99 -> 0.99058; ``k = 4``: ``c = 0.8``, 0.002 -> 0.0016, 0.99 -> 0.99199.

  Returns:
    ``{'learning_rate', 'b1', 'b2', 'c'}``.
  """
  c = penalties.lazy_regularization_correction(every)
  return {'learning_rate': learning_rate * c, 'b1': b1**c, 'b2': b2**c, 'c': c}


class ResetState(NamedTuple):
  """:func:`reset_at`'s state: the number of updates so far and the inner optimizer's state."""

  count: jax.Array
  inner: Any


def reset_at(inner: optax.GradientTransformation,
             counts: tuple[int, ...]) -> optax.GradientTransformation:
  """``inner`` with its state reset to ``inner.init(params)`` before update number ``c`` (from
  0) for every ``c`` in ``counts``: PGGAN's optimizer reset at each new phase (a pure function
  of the update count, so a resumed run resets where the uninterrupted one did)."""
  boundaries = jnp.asarray(sorted(counts) or [-1], jnp.int32)

  def init(params):
    return ResetState(jnp.zeros((), jnp.int32), inner.init(params))

  def update(updates, state, params=None):
    reset = jnp.any(state.count == boundaries)
    inner_state = jax.tree.map(lambda fresh, old: jnp.where(reset, fresh, old),
                               inner.init(params), state.inner)
    updates, inner_state = inner.update(updates, inner_state, params)
    return updates, ResetState(state.count + 1, inner_state)

  return optax.GradientTransformation(init, update)


def phase_starts(config) -> tuple[int, ...]:
  """PGGAN's steps (0-based) that begin a fade or a stable period after the first."""
  s, n = config.schedule, num_stages(config)
  starts = []
  for k in range(1, n):
    first = s.stable_steps + (k - 1) * (s.fade_steps + s.stable_steps)
    starts += [first, first + s.fade_steps]
  return tuple(starts)


def optimizers(config) -> tuple[optax.GradientTransformation, optax.GradientTransformation]:
  """``(g_optimizer, d_optimizer)``: Adam with ``config.train``'s rates and betas.

  StyleGAN2: each player's corrected for its lazy term (:func:`lazy_adam_hyperparameters`;
  G by ``loss.pl_every`` when ``pl_weight > 0``, D by ``loss.r1_every`` when ``r1_gamma > 0``).
  PGGAN: reset at every phase (:func:`reset_at`, :func:`phase_starts`) with
  ``train.reset_optimizer``.
  """
  t = config.train

  def adam(lr, every):
    h = lazy_adam_hyperparameters(learning_rate=lr, b1=t.b1, b2=t.b2, every=every)
    return optax.adam(h['learning_rate'], b1=h['b1'], b2=h['b2'], eps=t.eps)

  if config.trainer == 'stylegan2':
    loss = config.loss
    return (adam(t.g_lr, loss.pl_every if loss.pl_weight else 1),
            adam(t.d_lr, loss.r1_every if loss.r1_gamma else 1))
  g, d = adam(t.g_lr, 1), adam(t.d_lr, 1)
  if t.reset_optimizer:
    g, d = reset_at(g, phase_starts(config)), reset_at(d, phase_starts(config))
  return g, d


# ----------------------------------------------------------------------------- models


def build_models(config) -> tuple[nn.Module, nn.Module]:
  """G and D at ``config.model.resolution`` (PGGAN: the last stage's, whose parameters hold
  every stage's)."""
  m = config.model
  widths = {'channel_base': m.channel_base, 'channel_max': m.channel_max}
  if config.trainer == 'stylegan2':
    g = stylegan2.Generator(
        resolution=m.resolution, image_channels=1, w_dim=m.latent_dim,
        mapping_depth=m.mapping_depth, mapping_lr_multiplier=m.mapping_lr_multiplier,
        style_mixing_probability=m.style_mixing_probability, w_avg_decay=m.w_avg_decay,
        **widths)
    return g, stylegan2.Discriminator(resolution=m.resolution,
                                      mbstd_group_size=m.mbstd_group_size, **widths)
  return stage_models(config, num_stages(config) - 1)


def stage_models(config, stage: int) -> tuple[pggan.ProgressiveGenerator,
                                              pggan.ProgressiveDiscriminator]:
  """PGGAN's G and D of stage ``stage`` (side ``4 * 2**stage``)."""
  m, r = config.model, 4 * 2**stage
  widths = {'channel_base': m.channel_base, 'channel_max': m.channel_max}
  return (pggan.ProgressiveGenerator(resolution=r, image_channels=1, **widths),
          pggan.ProgressiveDiscriminator(resolution=r, mbstd_group_size=m.mbstd_group_size,
                                         **widths))


def _init_variables(config, key, generator, discriminator):
  k_g, k_d = jax.random.split(key)
  r = generator.resolution
  g_vars = generator.init(k_g, jnp.zeros((1, config.model.latent_dim)))
  d_vars = discriminator.init(k_d, jnp.zeros((1, r, r, 1)))
  return g_vars, d_vars


def init_state(config, key: jax.Array, generator: nn.Module,
               discriminator: nn.Module) -> game.GANState:
  """Step 0: both players' parameters (from ``split(key)``), Adam states and G's copy for the
  moving average; StyleGAN2's ``g_batch_stats = {'w_avg': 0, 'path_length_mean': 0}``."""
  g_tx, d_tx = optimizers(config)

  def init(key):
    g_vars, d_vars = _init_variables(config, key, generator, discriminator)
    g_params, d_params = g_vars['params'], d_vars['params']
    stats = {}
    if config.trainer == 'stylegan2':
      stats = {'w_avg': g_vars['batch_stats']['w_avg'],
               'path_length_mean': jnp.zeros((), jnp.float32)}
    return game.GANState(
        step=jnp.zeros((), jnp.int32), g_params=g_params, d_params=d_params,
        g_opt_state=g_tx.init(g_params), d_opt_state=d_tx.init(d_params),
        g_batch_stats=stats, d_batch_stats={},
        ema_g_params=jax.tree.map(jnp.copy, g_params) if config.train.ema_decay else {})

  return jax.jit(init)(key)


def stage_params(params: dict, like: dict) -> dict:
  """The entries of the full-resolution ``params`` that a stage's module (its parameters' tree
  ``like``, e.g. a ``jax.eval_shape`` of its init) has: PGGAN's stages nest by name
  (:mod:`jaxgan.pggan`), so a stage's parameters are a subset of the last stage's."""
  out = {}
  for name, sub in like.items():
    if name not in params:
      raise ValueError(f'stage_params: {name} is not in the full-resolution parameters')
    out[name] = stage_params(params[name], sub) if isinstance(sub, dict) else params[name]
    if not isinstance(sub, dict) and jnp.shape(out[name]) != tuple(sub.shape):
      raise ValueError(f'stage_params: {name} has shape {jnp.shape(out[name])}, the stage '
                       f'wants {tuple(sub.shape)}')
  return out


# ---------------------------------------------------------------------- StyleGAN2 objectives


def _g_variables(g_params, g_stats) -> dict:
  return {'params': g_params, 'batch_stats': {'w_avg': g_stats['w_avg']}}


def lazy_terms(config, step: int) -> tuple[bool, bool]:
  """``(path_length, r1)``: whether StyleGAN2's step ``step`` (0-based, ``state.step`` before
  it) adds the lazy path-length term (``step % loss.pl_every == 0``, ``loss.pl_weight > 0``) and
  lazy R1 (``step % loss.r1_every == 0``, ``loss.r1_gamma > 0``): the variant of its
  :class:`jaxgan.loop.Switched` step."""
  loss = config.loss
  return (bool(loss.pl_weight) and step % loss.pl_every == 0,
          bool(loss.r1_gamma) and step % loss.r1_every == 0)


def stylegan2_objectives(config, generator: stylegan2.Generator,
                         discriminator: stylegan2.Discriminator, *, path_length: bool,
                         r1: bool) -> tuple[game.Objective, game.Objective]:
  """``(g_objective, d_objective)`` of StyleGAN2's steps with or without each lazy term (the
  module docstring's ``L_G`` and ``L_D``; :func:`lazy_terms` says which steps have which).

  Fakes: ``z ~ N(0, I)`` from ``fold_in(shared_key, 0)``, G in training mode (mixing and noise)
  with ``fold_in(shared_key, 1)``; both players see the same fakes. ``path_length``: G's loss
  adds ``k_G w_pl`` times the path-length penalty; ``r1``: D's adds ``k_D gamma / 2`` R1; a term
  left out is not computed (no ``lax.cond``: see :class:`jaxgan.loop.Switched`). Metrics:
  ``d_real``, ``d_fake`` (mean sigmoids), ``r1_penalty`` (the weighted term on its steps, else
  0), ``path_length_penalty`` (the unweighted penalty on its steps, else 0) and
  ``path_length_mean`` (``a``).
  """
  loss, z_dim = config.loss, config.model.latent_dim
  # The lazy term is the eager one weighted by its interval (module docstring).
  r1_value_of = penalties.r1_term(loss.r1_gamma * loss.r1_every) if r1 else None

  def generate(g_params, g_stats, key, num):
    z = jax.random.normal(jax.random.fold_in(key, 0), (num, z_dim))
    fake, updates = generator.apply(_g_variables(g_params, g_stats), z, train=True,
                                    key=jax.random.fold_in(key, 1), mutable=['batch_stats'])
    return fake, updates['batch_stats']['w_avg']

  def d_objective(d_params, state: game.GANState, batch, *, key, shared_key):
    real = batch['x']
    fake, _ = generate(state.g_params, state.g_batch_stats, shared_key, real.shape[0])
    d_fn = lambda x: discriminator.apply({'params': d_params}, x)
    real_logits, fake_logits = d_fn(real), d_fn(lax.stop_gradient(fake))
    d_loss = losses.minimax_discriminator_loss(real_logits, fake_logits)
    r1_value = (r1_value_of(d_fn, real, fake, key, state.step) if r1_value_of is not None
                else jnp.zeros(()))
    return d_loss + r1_value, ({}, {'d_real': jnp.mean(nn.sigmoid(real_logits)),
                                    'd_fake': jnp.mean(nn.sigmoid(fake_logits)),
                                    'r1_penalty': r1_value})

  def path_length_term(g_params, g_stats, key, num):
    """``(k_G w_pl penalty, a', penalty)`` on ``num`` fresh latents."""
    variables = _g_variables(g_params, g_stats)
    z = jax.random.normal(jax.random.fold_in(key, 0), (num, z_dim))
    ws, _ = generator.apply(variables, z, key=jax.random.fold_in(key, 1), train=True,
                            method=stylegan2.Generator.mapping, mutable=['batch_stats'])
    noise_key = jax.random.fold_in(key, 2)
    synthesis = lambda ws: generator.apply(variables, ws, noise_key=noise_key,
                                           method=stylegan2.Generator.synthesize)
    penalty, mean = stylegan2.path_length_penalty(
        synthesis, ws, jax.random.fold_in(key, 3), g_stats['path_length_mean'],
        decay=loss.pl_decay)
    return loss.pl_every * loss.pl_weight * penalty, mean, penalty

  def g_objective(g_params, state: game.GANState, batch, *, key, shared_key):
    num = batch['x'].shape[0]
    stats = state.g_batch_stats
    fake, w_avg = generate(g_params, stats, shared_key, num)
    fake_logits = discriminator.apply({'params': state.d_params}, fake)
    g_loss = losses.non_saturating_generator_loss(fake_logits)
    mean, penalty, term = stats['path_length_mean'], jnp.zeros(()), jnp.zeros(())
    if path_length:
      pl_num = max(1, num // loss.pl_batch_shrink)
      term, mean, penalty = path_length_term(g_params, stats, jax.random.fold_in(key, 2), pl_num)
    return g_loss + term, ({'w_avg': w_avg, 'path_length_mean': mean},
                           {'path_length_penalty': penalty, 'path_length_mean': mean})

  return g_objective, d_objective


# -------------------------------------------------------------------------- PGGAN objectives


def pggan_objectives(config, stage: int) -> tuple[game.Objective, game.Objective]:
  """``(g_objective, d_objective)`` of PGGAN's steps in ``stage`` (:func:`jaxgan.pggan.stage_at`
  of the step): that stage's networks run on their :func:`stage_params` at
  :func:`jaxgan.pggan.alpha_at` ``(state.step)``.

  ``L_D = E[D(G(z))] - E[D(x_a)] + 10 GP + 1e-3 E[D(x_a)^2]`` with ``x_a`` the reals pooled to
  the stage's side and faded (:func:`jaxgan.pggan.fade_real_images`); ``L_G = -E[D(G(z))]``.
  ``z ~ N(0, I)`` from ``shared_key``, GP's interpolation from ``key``. Metrics: ``d_real``,
  ``d_fake`` (mean critic values), ``gradient_penalty`` (unweighted), ``drift``, ``alpha`` and
  ``resolution``.
  """
  s, loss, z_dim = config.schedule, config.loss, config.model.latent_dim
  stages = num_stages(config)
  if not 0 <= stage < stages:
    raise ValueError(f'pggan_objectives: stage must be in [0, {stages}), got {stage}')
  generator, discriminator = stage_models(config, stage)
  shapes = jax.eval_shape(functools.partial(_init_variables, config, generator=generator,
                                            discriminator=discriminator),
                          jax.random.PRNGKey(0))
  g_like, d_like = shapes[0]['params'], shapes[1]['params']
  side = 4 * 2**stage

  def alpha_of(step):
    return pggan.alpha_at(step, num_stages=stages, fade_steps=s.fade_steps,
                          stable_steps=s.stable_steps)

  def fakes(g_params, key, num, alpha):
    z = jax.random.normal(key, (num, z_dim))
    return generator.apply({'params': stage_params(g_params, g_like)}, z, alpha=alpha)

  def d_objective(d_params, state, batch, *, key, shared_key):
    alpha = alpha_of(state.step)
    real = pggan.downsample_to(batch['x'], side)
    real = real if stage == 0 else pggan.fade_real_images(real, alpha)
    fake = lax.stop_gradient(fakes(state.g_params, shared_key, real.shape[0], alpha))
    sub = stage_params(d_params, d_like)
    d_fn = lambda x: discriminator.apply({'params': sub}, x, alpha=alpha)
    real_logits, fake_logits = d_fn(real), d_fn(fake)
    gp = penalties.gradient_penalty(d_fn, real, fake, key)
    drift = pggan.drift_penalty(real_logits, epsilon=loss.drift_epsilon)
    d_loss = (losses.wasserstein_discriminator_loss(real_logits, fake_logits)
              + loss.gradient_penalty_weight * gp + drift)
    return d_loss, ({}, {'d_real': jnp.mean(real_logits), 'd_fake': jnp.mean(fake_logits),
                         'gradient_penalty': gp, 'drift': drift,
                         'alpha': jnp.asarray(alpha, jnp.float32),
                         'resolution': jnp.float32(side)})

  def g_objective(g_params, state, batch, *, key, shared_key):
    del key
    alpha = alpha_of(state.step)
    fake = fakes(g_params, shared_key, batch['x'].shape[0], alpha)
    fake_logits = discriminator.apply({'params': stage_params(state.d_params, d_like)}, fake,
                                      alpha=alpha)
    return losses.wasserstein_generator_loss(fake_logits), ({}, {})

  return g_objective, d_objective


def build_train_step(config, generator: nn.Module, discriminator: nn.Module) -> loop.Switched:
  """The system's step as a :class:`jaxgan.loop.Switched` one: for each variant (StyleGAN2:
  :func:`lazy_terms` of the step; PGGAN: its stage, :func:`jaxgan.pggan.stage_at`) a
  ``train_step(state, batch, key) -> (state, metrics)`` of :func:`jaxgan.game.make_train_step`
  on that variant's objectives, alternating, with the moving average of G
  (``train.ema_decay``) and ``skip_nonfinite`` for ``train.on_nonfinite='skip'``. One step of
  step number ``t`` (jitted): ``s = build_train_step(...); jax.jit(s.train_step(s.variant(t)))``.
  """
  g_tx, d_tx = optimizers(config)

  def step_of(g_objective, d_objective):
    return game.make_train_step(g_objective=g_objective, d_objective=d_objective,
                                g_optimizer=g_tx, d_optimizer=d_tx, update_rule='alternating',
                                ema_decay=config.train.ema_decay,
                                skip_nonfinite=config.train.on_nonfinite == 'skip')

  if config.trainer == 'stylegan2':
    def stylegan2_step(terms):
      path_length, r1 = terms
      return step_of(*stylegan2_objectives(config, generator, discriminator,
                                           path_length=path_length, r1=r1))
    return loop.Switched(functools.partial(lazy_terms, config), stylegan2_step)

  s = config.schedule
  stage = functools.partial(pggan.stage_at, num_stages=num_stages(config),
                            fade_steps=s.fade_steps, stable_steps=s.stable_steps)
  return loop.Switched(stage, lambda k: step_of(*pggan_objectives(config, k)))


# ------------------------------------------------------------------------------- data


def to_resolution(x: jax.Array, resolution: int) -> jax.Array:
  """``(B, 28, 28, C)`` images in [-1, 1] -> ``(B, R, R, C)``: zero-padded (-1) to 32x32, then
  average-pooled to ``R`` (:func:`jaxgan.pggan.downsample_to`)."""
  return pggan.downsample_to(pggan.pad_to(x, PADDED_SIZE), resolution)


def source(images: dict[str, np.ndarray], key: jax.Array, batch_size: int, *,
           resolution: int) -> loop.Source:
  """:func:`jaxgan.loop.image_source`'s batches (on the device) at ``resolution``
  (:func:`to_resolution`): ``{'x': (B, R, R, 1), 'label': (B,)}``."""
  base = loop.image_source(images, key, batch_size)

  def batch(data, idx):
    out = base.batch(data, idx)
    return {**out, 'x': to_resolution(out['x'], resolution)}

  return base._replace(batch=batch)


# ---------------------------------------------------------------------------- samples


def to_data_size(images: np.ndarray, size: int = 28) -> np.ndarray:
  """``(N, r, r, C)`` samples of a model of the padded data -> ``(N, size, size, C)``, the
  digits' own 28x28: nearest-upsampled to 32x32 (a PGGAN stopped below its last stage, or a
  model of ``resolution < 32``), then the padding (2 pixels a side) cropped; the inverse of
  :func:`to_resolution`'s padding, so samples meet a classifier of the 28x28 data."""
  images = np.asarray(images)
  r = images.shape[1] if images.ndim == 4 else 0
  if not r or images.shape[2] != r or PADDED_SIZE % r:
    raise ValueError(f'to_data_size: expected (N, r, r, C) images with r dividing '
                     f'{PADDED_SIZE}, got shape {images.shape}')
  if r < PADDED_SIZE:
    images = np.asarray(pggan.upsample_nearest(jnp.asarray(images), PADDED_SIZE // r))
  top = (PADDED_SIZE - size) // 2
  return images[:, top:top + size, top:top + size]


def make_sampler(config, generator: nn.Module) -> Callable[..., np.ndarray]:
  """``sample(state, key, num, *, psi=None, stage=None) -> (num, r, r, 1)`` images.

  G's moving average when the run keeps one (else ``g_params``); ``z ~ N(0, I)`` from
  ``fold_in(key, 0)``. StyleGAN2: noise from ``fold_in(key, 1)``, no mixing, truncation ``psi``
  (default ``train.truncation_psi``) towards ``w_avg``. PGGAN: the generator of ``stage``
  (default the stage of the last step taken, ``state.step - 1``) at that step's ``alpha`` (1
  for an earlier stage), at that stage's side.
  """
  z_dim = config.model.latent_dim

  def params_of(state):
    return state.ema_g_params if state.ema_g_params else state.g_params

  if config.trainer == 'stylegan2':
    @functools.partial(jax.jit, static_argnums=3)
    def draw(params, w_avg, key, num, psi):
      z = jax.random.normal(jax.random.fold_in(key, 0), (num, z_dim))
      return generator.apply({'params': params, 'batch_stats': {'w_avg': w_avg}}, z,
                             key=jax.random.fold_in(key, 1), psi=psi)

    def sample_style(state, key, num, *, psi=None, stage=None):
      del stage
      psi = config.train.truncation_psi if psi is None else psi
      stylegan2.check_psi(psi)
      return np.asarray(draw(params_of(state), state.g_batch_stats['w_avg'], key, num,
                             jnp.float32(psi)))

    return sample_style

  s, stages = config.schedule, num_stages(config)
  schedule = {'fade_steps': s.fade_steps, 'stable_steps': s.stable_steps, 'num_stages': stages}
  models = [stage_models(config, k)[0] for k in range(stages)]

  @functools.partial(jax.jit, static_argnums=(0, 3))
  def draw_stage(k, params, key, num, alpha):
    like = jax.eval_shape(models[k].init, jax.random.PRNGKey(0), jnp.zeros((1, z_dim)))['params']
    z = jax.random.normal(jax.random.fold_in(key, 0), (num, z_dim))
    return models[k].apply({'params': stage_params(params, like)}, z, alpha=alpha)

  def sample_progressive(state, key, num, *, psi=None, stage=None):
    del psi
    step = max(int(state.step) - 1, 0)  # The last step taken: what the state has trained at.
    current = pggan.stage_at(step, **schedule)
    stage = current if stage is None else stage
    alpha = float(pggan.alpha_at(step, **schedule)) if stage == current else 1.0
    return np.asarray(draw_stage(stage, params_of(state), key, num, jnp.float32(alpha)))

  return sample_progressive


# ----------------------------------------------------------------------------- a run


def _load(config, split: str) -> dict[str, np.ndarray]:
  images = data_lib.load_images(config.data.name, split=split, data_dir=config.data.data_dir,
                                download=config.data.download)
  faults.check_images(images, data_shape=data_lib.data_shape(config.data.name),
                      num_classes=data_lib.NUM_CLASSES[config.data.name], name=config.data.name)
  return images


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str, *,
                       should_stop: Callable[[int], bool] | None = None) -> game.GANState:
  """Trains the StyleGAN2 or PGGAN that ``config`` describes with :func:`jaxgan.train.drive`.

  Keys: ``init, step, data, sample = split(PRNGKey(config.seed), 4)``. Writes what every run
  writes (``checkpoints/``, ``metrics.jsonl``, TensorBoard, ``config.json``) and
  ``samples/step_<N>.png`` (:func:`make_sampler`; PGGAN also ``samples/resolution_<r>.png``).
  Run again with the same workdir, it resumes from the latest checkpoint exactly, across PGGAN's
  stage boundaries too (the state's shapes never change; module docstring).

  Raises:
    ValueError: a bad config (before anything is loaded) or a bad first batch (before anything
      compiles).
  """
  validate(config)
  generator, discriminator = build_models(config)
  init_key, step_key, data_key, sample_key = jax.random.split(jax.random.PRNGKey(config.seed), 4)
  resolution = config.model.resolution
  batches = source(_load(config, 'train'), data_key, config.train.batch_size,
                   resolution=resolution)
  state = init_state(config, init_key, generator, discriminator)
  train_step = build_train_step(config, generator, discriminator)
  sample = make_sampler(config, generator)
  num = config.train.num_samples

  def save_samples(state, path, step):
    del step
    images = sample(state, sample_key, num)
    visualize.save_image_grid(path, images)
    if config.trainer == 'pggan':
      side = images.shape[1]
      visualize.save_image_grid(os.path.join(os.path.dirname(path), f'resolution_{side}.png'),
                                images)

  def check_batch(batch, step):
    faults.check_batch(batch, data_shape=(resolution, resolution, 1),
                       batch_size=config.train.batch_size, value_range=(-1.0, 1.0), step=step)

  return train.drive(config, workdir, state=state, train_step=train_step, source=batches,
                     step_key=step_key, save_samples=save_samples, check_batch=check_batch,
                     should_stop=should_stop)
