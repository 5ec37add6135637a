"""From a config to the objects of an experiment: models, optimizers, state, train step, samples.

These builders read ``config`` (see :mod:`jaxgan.config`) once and pass each setting to the one
part that needs it, so that ``pack``, ``ema_decay`` and the rest are said once.
:func:`jaxgan.train.train_and_evaluate`, ``python -m jaxgan.sample``, the evaluator and the
benchmarks call them.
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import optax

from jaxgan import conditional, game, gan, losses, mode_collapse, models, penalties
from jaxgan import data as data_lib

# The key of the averaged G's standing batch-norm statistics (gan.standing_statistics).
STANDING_STATISTICS_KEY = 0x57A7


def build_models(config: ml_collections.ConfigDict, *, axis_name: str | None = None
                 ) -> tuple[nn.Module, nn.Module]:
  """The (generator, discriminator) pair that ``config.model`` names, for ``config.data``.

  With ``model.num_classes > 0`` the unconditional pair is wrapped (:mod:`jaxgan.conditional`):
  AC-GAN (``loss.auxiliary_classifier_weight > 0``) replaces D by
  :class:`~jaxgan.conditional.ACGANDiscriminator`, ``model.label_conditioning='every_layer'`` or
  ``'projection'`` by :class:`~jaxgan.conditional.ConditionalDCGANDiscriminator`.
  """
  generator, discriminator = _unconditional_models(config, axis_name=axis_name)
  num_classes = config.model.get('num_classes', 0)
  if not num_classes:
    return generator, discriminator
  shape = data_lib.data_shape(config.data.name)
  generator = conditional.ConditionalGenerator(generator, num_classes)
  if config.loss.get('auxiliary_classifier_weight', 0.0):
    return generator, conditional.ACGANDiscriminator(
        image_shape=shape, num_classes=num_classes, features=config.model.features,
        axis_name=axis_name)
  conditioning = config.model.get('label_conditioning', 'input')
  if conditioning != 'input':
    return generator, conditional.ConditionalDCGANDiscriminator(
        image_shape=shape, num_classes=num_classes, features=config.model.features,
        label_conditioning=conditioning, axis_name=axis_name)
  label_input = 'maps' if config.model.name == 'dcgan' else 'flat'
  return generator, conditional.ConditionalDiscriminator(discriminator, num_classes, label_input)


def _unconditional_models(config: ml_collections.ConfigDict, *, axis_name: str | None
                          ) -> tuple[nn.Module, nn.Module]:
  shape = data_lib.data_shape(config.data.name)
  model, name = config.model, config.model.name
  if name == 'gaussian_1d_mlp':
    return models.gaussian_1d_models()
  if name == 'mnist_mlp':
    return models.mnist_mlp_models()
  if name == 'mlp':
    bias_scale = model.get('bias_scale', 0.0)
    generator = models.MLPGenerator(hidden=tuple(model.g_hidden), data_shape=shape,
                                    activation=model.activation,
                                    output_activation=model.output_activation,
                                    bias_scale=bias_scale)
    if not mode_collapse_discriminator(config):
      return generator, models.MLPDiscriminator(hidden=tuple(model.d_hidden),
                                                activation=model.activation)
    return generator, mode_collapse.StabilizedMLPDiscriminator(
        hidden=tuple(model.d_hidden), activation=model.activation,
        minibatch_kernels=model.minibatch_kernels,
        minibatch_kernel_dim=model.minibatch_kernel_dim,
        minibatch_stddev=model.minibatch_stddev, spectral_norm=model.spectral_norm,
        bias_scale=bias_scale)
  if name == 'dcgan':
    return (models.DCGANGenerator(image_shape=shape, features=model.features,
                                  axis_name=axis_name),
            models.DCGANDiscriminator(image_shape=shape, features=model.features,
                                      axis_name=axis_name))
  raise ValueError(f'config.model.name={name!r} is not allowed; expected one of '
                   f'{list(models.MODELS)}')


def mode_collapse_discriminator(config: ml_collections.ConfigDict) -> bool:
  """Whether ``config.model`` asks for minibatch features, spectral norm or bias init in D."""
  model = config.model
  return bool(model.get('minibatch_kernels', 0) or model.get('minibatch_stddev', False)
              or model.get('spectral_norm', False) or model.get('bias_scale', 0.0))


def optimizers(config: ml_collections.ConfigDict
               ) -> tuple[optax.GradientTransformation, optax.GradientTransformation]:
  """Adam for G and for D with the config's learning rates and betas.

  ``train.lr_final_fraction < 1`` decays both learning rates with a cosine over
  ``train.num_steps`` to that fraction. With ``train.unrolled_steps`` D's Adam gets
  ``eps_root=1e-8`` so that G's gradient through the unrolled updates stays finite. With lazy R1
  (``loss.r1_every = k > 1``) D's Adam is corrected as in StyleGAN2: lr times ``c = k / (k + 1)``,
  betas to the power ``c`` (:func:`jaxgan.penalties.lazy_regularization_correction`).
  """
  t = config.train
  eps_root = 1e-8 if t.get('unrolled_steps', 0) else 0.0
  final = t.get('lr_final_fraction', 1.0)
  lr = lambda peak: (peak if final == 1.0 else
                     optax.cosine_decay_schedule(peak, t.num_steps, alpha=final))
  c = (penalties.lazy_regularization_correction(config.loss.get('r1_every', 1))
       if config.loss.r1_gamma else 1.0)
  # With c = 1 (no lazy R1) these are exactly the plain learning rate and betas.
  d_optimizer = optax.adam(lr(t.d_lr * c), b1=t.b1**c, b2=t.b2**c, eps_root=eps_root)
  return optax.adam(lr(t.g_lr), b1=t.b1, b2=t.b2), d_optimizer


def init_state(config: ml_collections.ConfigDict, key: jax.Array, generator: nn.Module,
               discriminator: nn.Module) -> game.GANState:
  """:func:`jaxgan.gan.init_state` with the optimizers, shapes, packing and EMA of ``config``.

  Jitted: one compiled program instead of the many small ones an eager init dispatches (most of
  a small run's start-up); the values are those of the eager init.
  """
  g_optimizer, d_optimizer = optimizers(config)
  init = functools.partial(gan.init_state, generator=generator, discriminator=discriminator,
                           g_optimizer=g_optimizer, d_optimizer=d_optimizer,
                           latent_dim=config.model.latent_dim,
                           data_shape=data_lib.data_shape(config.data.name),
                           pack=config.train.get('pack', 1),
                           ema=bool(config.train.get('ema_decay', 0.0)))
  return jax.jit(init)(key)


def build_train_step(config: ml_collections.ConfigDict, generator: nn.Module,
                     discriminator: nn.Module, *, axis_name: str | None = None,
                     skip_nonfinite: bool | None = None):
  """:func:`jaxgan.gan.make_train_step` with the losses, penalties and optimizers ``config``
  names. ``skip_nonfinite`` defaults to ``train.on_nonfinite == 'skip'`` (the driver always
  skips, and stops its chunk itself for ``'stop'``: :func:`jaxgan.loop.make_chunk`)."""
  if skip_nonfinite is None:
    skip_nonfinite = config.train.on_nonfinite == 'skip'
  d_loss_fn, g_loss_fn = losses.get_loss_pair(config.loss.name)
  if config.loss.label_smoothing:
    d_loss_fn = functools.partial(d_loss_fn, label_smoothing=config.loss.label_smoothing)
  g_optimizer, d_optimizer = optimizers(config)
  return gan.make_train_step(
      generator=generator, discriminator=discriminator, g_optimizer=g_optimizer,
      d_optimizer=d_optimizer, d_loss_fn=d_loss_fn, g_loss_fn=g_loss_fn,
      latent_dim=config.model.latent_dim, latent_distribution=config.model.latent_distribution,
      update_rule=config.train.update_rule, num_d_steps=config.train.num_d_steps,
      gradient_penalty_weight=config.loss.gradient_penalty_weight,
      r1_gamma=config.loss.r1_gamma, r1_every=config.loss.get('r1_every', 1),
      weight_clip=config.loss.weight_clip or None,
      axis_name=axis_name, feature_matching=config.loss.get('feature_matching', False),
      unrolled_steps=config.train.get('unrolled_steps', 0), pack=config.train.get('pack', 1),
      instance_noise=config.train.get('instance_noise', 0.0),
      skip_nonfinite=skip_nonfinite,
      num_classes=config.model.get('num_classes', 0),
      auxiliary_classifier_weight=config.loss.get('auxiliary_classifier_weight', 0.0),
      auxiliary_classifier_fake_weight=config.loss.get('auxiliary_classifier_fake_weight', 1.0),
      ema_decay=config.train.get('ema_decay', 0.0))


def data_scale(config: ml_collections.ConfigDict) -> float:
  """What toy data is divided by for training (``data.standardize``), and samples multiplied by.

  ``data.standardize=True`` trains on unit-variance coordinates
  (:data:`jaxgan.data.TOY_SCALES`), as ``benchmarks/mode_coverage.py`` does; 1.0 otherwise.
  """
  if config.data.get('standardize', False):
    return data_lib.TOY_SCALES[config.data.name]
  return 1.0


def sampling_variables(config: ml_collections.ConfigDict, generator: nn.Module,
                       state: game.GANState):
  """``(params, batch_stats)`` that samples are drawn with.

  The moving average of G's weights when ``train.ema_decay > 0``, with batch-norm statistics of
  its own (:func:`jaxgan.gan.standing_statistics`, 16 batches of 64 latents from a fixed key
  folded with the step); else G's weights and running statistics.
  """
  if not config.train.get('ema_decay', 0.0):
    return state.g_params, state.g_batch_stats
  key = jax.random.fold_in(jax.random.PRNGKey(STANDING_STATISTICS_KEY), state.step)
  stats = gan.standing_statistics(
      generator, state.ema_g_params, state.g_batch_stats, key,
      latent_dim=config.model.latent_dim, latent_distribution=config.model.latent_distribution,
      num_classes=config.model.get('num_classes', 0))
  return state.ema_g_params, stats


def sample(config: ml_collections.ConfigDict, generator: nn.Module, state: game.GANState,
           key: jax.Array | None, num: int, *, labels: jax.Array | None = None,
           z: jax.Array | None = None, variables=None) -> jax.Array:
  """Draws ``num`` samples from the generator of ``state`` (batch norm in inference mode).

  Uses :func:`sampling_variables` (pass them as ``variables`` to compute them once for many
  calls) and scales toy samples back by :func:`data_scale`. A conditional G gets ``labels``
  (default: ``0, 1, ..., K-1, 0, 1, ...``). ``z`` (``(num, latent_dim)``) replaces the latents
  drawn from ``key``.
  """
  if z is None:
    z = gan.sample_latent(key, num, config.model.latent_dim, config.model.latent_distribution)
  num_classes = config.model.get('num_classes', 0)
  if num_classes and labels is None:
    labels = jnp.arange(num) % num_classes
  params, batch_stats = variables or sampling_variables(config, generator, state)
  out = gan.apply_model(generator, params, batch_stats, z, train=False, labels=labels)[0]
  scale = data_scale(config)
  return out if scale == 1.0 else scale * out
