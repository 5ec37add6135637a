r"""pix2pix (Isola et al. 2016, arXiv:1611.07004): a conditional GAN for paired image translation.

G maps an input image ``x`` to an output ``G(x)``; D judges *pairs*, the input beside a real
target ``(x, y)`` or beside G's output ``(x, G(x))``, concatenated along channels. The objective
(paper eq. 4) is the conditional GAN loss plus an L1 reconstruction term,

.. math::

   G^* = \arg\min_G \max_D\ \mathcal{L}_{cGAN}(G, D) + \lambda\, \mathcal{L}_{L1}(G),
   \quad \mathcal{L}_{cGAN} = \mathbb{E}_{x,y}[\log D(x, y)] + \mathbb{E}_{x}[\log(1 - D(x, G(x)))],
   \quad \mathcal{L}_{L1} = \mathbb{E}_{x,y}\lVert y - G(x) \rVert_1,

with :math:`\lambda = 100`. G has no latent ``z``: its noise is dropout, applied at training *and*
at test time (the paper's "Objective" and "Optimization and inference"). D is a PatchGAN: it
outputs a map of logits, one per overlapping patch, whose losses are averaged ("Markovian
discriminator (PatchGAN)"); L1 takes care of the low frequencies, D of the local,
high-frequency structure. (Sections are named, not numbered: the arXiv versions number them
differently.)

Both networks here are scaled from the paper's 256x256 ones to 28x28 and are stateless: the
paper's batch norm, run with the test batch's statistics at batch size 1, *is* instance norm
(its "Optimization and inference" says so; Ulyanov et al. 2016, arXiv:1607.08022), so both use
``flax.linen.InstanceNorm``, whose only variables are params (no ``batch_stats``). Images are
NHWC floats in [-1, 1].
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from jaxgan import data as data_lib
from jaxgan import game, gan, losses, train, translation
from jaxgan.layers import AdjointConvTranspose

# PyTorch's InstanceNorm2d epsilon (the reference implementation's).
NORM_EPSILON = 1e-5


def _instance_norm(name: str) -> nn.Module:
  return nn.InstanceNorm(epsilon=NORM_EPSILON, name=name)


class UNetGenerator(nn.Module):
  """U-Net generator ("Generator with skips", appendix "Generator architectures"), for 28x28.

  With ``F = features``, ``LReLU = leaky_relu(0.2)`` and IN instance norm (shapes at 28x28)::

    e1 = Conv 4x4/2 (F)(x)                          14x14xF   (no norm, as the paper's C64)
    e2 = IN(Conv 4x4/2 (2F)(LReLU(e1)))              7x7x2F
    b  = IN(Conv 3x3/1 (4F)(LReLU(e2)))              7x7x4F   bottleneck
    u2 = Dropout(IN(Conv 3x3/1 (2F)(ReLU(b))))       7x7x2F
    u1 = Dropout(IN(ConvT 4x4/2 (F)(ReLU([u2, e2]))))  14x14xF
    y  = tanh(ConvT 4x4/2 (C_out)(ReLU([u1, e1])))   28x28xC_out

  ``[a, b]`` is concatenation along channels: each decoder stage reads the mirrored encoder
  features, so ``u1``'s kernel has ``4F`` input channels and the last one ``2F``. Activations come
  before each convolution, as in the reference code's ``UnetSkipConnectionBlock``; its innermost
  block skips the norm because it runs at 1x1, where it would zero the features, which this 7x7
  bottleneck does not need. 4x4/2 convolutions use ``'SAME'`` padding (one pixel each side, like
  the reference's ``padding=1``); the transposed ones double the size. Convolutions followed by a
  norm have no bias (the norm's shift replaces it). Any input size divisible by 4 works.

  Noise: dropout at rate ``dropout_rate`` after both inner decoder stages (the paper drops out in
  the first 3 of its 8 decoder layers). ``train=True`` applies it and needs a ``'dropout'`` rng,
  ``model.apply(variables, x, train=True, rngs={'dropout': key})``; ``train=False`` is the
  deterministic mean-field net. The paper keeps dropout on at test time, so *sample* with
  ``train=True`` and a fresh key; since instance norm keeps no statistics, ``train`` changes
  nothing else.

  Attributes:
    out_channels: channels ``C_out`` of the output image, values in [-1, 1] (tanh).
    features: channels ``F`` of the first encoder layer (the paper's 64).
    dropout_rate: the decoder's dropout rate (0.5 in the paper); 0 turns the noise off.
  """

  out_channels: int = 1
  features: int = 64
  dropout_rate: float = 0.5

  @nn.compact
  def __call__(self, x, *, train: bool):
    """``(B, H, W, C_in)`` in [-1, 1] -> ``(B, H, W, out_channels)`` in [-1, 1]."""
    if x.shape[1] % 4 or x.shape[2] % 4:
      raise ValueError(f'UNetGenerator needs H and W divisible by 4, got input {x.shape}')
    f = self.features
    lrelu = lambda h: nn.leaky_relu(h, negative_slope=0.2)
    dropout = lambda h: nn.Dropout(self.dropout_rate, deterministic=not train)(h)

    e1 = nn.Conv(f, (4, 4), strides=(2, 2), padding='SAME', name='down1')(x)
    e2 = nn.Conv(2 * f, (4, 4), strides=(2, 2), padding='SAME', use_bias=False,
                 name='down2')(lrelu(e1))
    e2 = _instance_norm('down2_norm')(e2)
    b = nn.Conv(4 * f, (3, 3), padding='SAME', use_bias=False, name='bottleneck')(lrelu(e2))
    b = _instance_norm('bottleneck_norm')(b)

    u2 = nn.Conv(2 * f, (3, 3), padding='SAME', use_bias=False, name='up2')(nn.relu(b))
    u2 = dropout(_instance_norm('up2_norm')(u2))
    u1 = AdjointConvTranspose(f, (4, 4), strides=(2, 2), padding='SAME', use_bias=False,
                              name='up1')(nn.relu(jnp.concatenate([u2, e2], axis=-1)))
    u1 = dropout(_instance_norm('up1_norm')(u1))
    y = AdjointConvTranspose(self.out_channels, (4, 4), strides=(2, 2), padding='SAME',
                             name='out')(nn.relu(jnp.concatenate([u1, e1], axis=-1)))
    return jnp.tanh(y)


def patch_receptive_field(num_layers: int) -> int:
  """Receptive field (pixels per side) of :class:`PatchDiscriminator` with ``num_layers``.

  Backwards from one logit through 4x4 kernels: the two stride-1 layers give ``4`` then
  ``4 + 3 = 7``; each stride-2 layer maps ``r -> 2 (r - 1) + 4``. ``num_layers=3`` gives the
  paper's 70 (for 256x256), ``num_layers=1`` gives 16.
  """
  if num_layers < 1:
    raise ValueError(f'num_layers must be >= 1, got {num_layers}')
  field = 7
  for _ in range(num_layers):
    field = 2 * (field - 1) + 4
  return field


class PatchDiscriminator(nn.Module):
  """PatchGAN discriminator (appendix "Discriminator architectures"): one logit per image patch.

  The reference code's ``NLayerDiscriminator`` (junyanz/pytorch-CycleGAN-and-pix2pix) with
  ``n_layers = num_layers``; its default 3 is the paper's 70x70 PatchGAN for 256x256 images.
  Scaled to 28x28 with the default ``num_layers=1``, a patch is 16x16 (:data:`RECEPTIVE_FIELD`):
  the smallest ``NLayerDiscriminator``, and the only one whose patches are smaller than a 28x28
  image (``num_layers=2`` gives 34). Relative to the image it is larger than the paper's (16/28
  against 70/256 of a side)::

    Conv 4x4/2 (F)  -> LReLU               28 -> 14   (no norm on the first layer)
    Conv 4x4/1 (2F) -> IN -> LReLU         14 -> 13
    Conv 4x4/1 (1)                         13 -> 12   one logit per patch

  (``num_layers=k`` puts ``k`` stride-2 layers of ``F, 2F, 4F, ...`` (at most ``8F``) before the
  stride-1 one.) Every convolution pads one pixel each side, as the reference's ``padding=1``, so
  the stride-1 ones shrink the map by one: ``(B, 28, 28, C) -> (B, 12, 12, 1)`` logits, never
  probabilities (the losses apply the sigmoid). Logit ``(i, j)`` sees input rows ``2i - 5 ..
  2i + 10`` and columns ``2j - 5 .. 2j + 10`` (16 each, cut at the borders) through the
  convolutions; instance norm's per-image mean and variance add a weak dependence on the whole
  image, as the paper's batch norm at batch size 1 does.

  Attributes:
    features: channels ``F`` of the first convolution (the paper's 64).
    num_layers: stride-2 convolutions; the receptive field is ``patch_receptive_field(num_layers)``.
    normalize: instance norm after every convolution but the first and the last; False leaves it
      out (the receptive field is then exact, with no global dependence).
  """

  features: int = 64
  num_layers: int = 1
  normalize: bool = True

  @nn.compact
  def __call__(self, x, *, train: bool):
    """``x = concat([input, output], -1)``, ``(B, H, W, C_in + C_out)`` in [-1, 1] -> logits
    ``(B, h, w, 1)`` (``h = w = 12`` at 28x28 with ``num_layers=1``). ``train`` is unused (no
    dropout, no statistics); it keeps the models' signature."""
    del train
    patch_receptive_field(self.num_layers)  # Validates num_layers.
    pad = ((1, 1), (1, 1))
    lrelu = lambda h: nn.leaky_relu(h, negative_slope=0.2)

    def conv_norm_act(h, channels, stride, index):
      h = nn.Conv(channels, (4, 4), strides=(stride, stride), padding=pad,
                  use_bias=not self.normalize, name=f'conv{index}')(h)
      if self.normalize:
        h = _instance_norm(f'conv{index}_norm')(h)
      return lrelu(h)

    h = lrelu(nn.Conv(self.features, (4, 4), strides=(2, 2), padding=pad, name='conv0')(x))
    for index in range(1, self.num_layers):
      h = conv_norm_act(h, self.features * min(2**index, 8), 2, index)
    h = conv_norm_act(h, self.features * min(2**self.num_layers, 8), 1, self.num_layers)
    return nn.Conv(1, (4, 4), padding=pad, name='logits')(h)


# Side, in pixels, of the patch each logit of the default PatchDiscriminator sees.
RECEPTIVE_FIELD = patch_receptive_field(1)


# The game: objectives for jaxgan.game.make_train_step, and the system a config builds.


def translate(generator: nn.Module, g_params, x: jax.Array, key: jax.Array) -> jax.Array:
  """``G(x)`` with dropout on (the paper's test-time noise), from ``key``: ``(B, H, W, C)``."""
  return generator.apply({'params': g_params}, x, train=True, rngs={'dropout': key})


def _pair(x, y):
  return jnp.concatenate([x, y], axis=-1)


def discriminator_objective(generator: nn.Module, discriminator: nn.Module, *,
                            d_loss_fn=losses.minimax_discriminator_loss) -> game.Objective:
  """D's objective: half of ``d_loss_fn`` on the patch logits of real pairs ``(x, y)`` and fake
  pairs ``(x, G(x))`` (the paper divides D's objective by 2, "to slow down the rate at which D
  learns relative to G"). ``batch`` is ``{'x': input, 'y': target}``; G's dropout uses
  ``shared_key`` and its output is held constant. Metrics ``d_real``/``d_fake``: the mean of
  ``sigmoid`` of the logits (of the raw outputs for losses that use none)."""
  probabilities = gan.reports_probabilities(d_loss_fn)

  def objective(d_params, state: game.GANState, batch, *, key, shared_key):
    x, y = batch['x'], batch['y']
    fake = lax.stop_gradient(translate(generator, state.g_params, x, shared_key))
    d = lambda pair: discriminator.apply({'params': d_params}, pair, train=True)
    real_logits, fake_logits = d(_pair(x, y)), d(_pair(x, fake))
    show = jax.nn.sigmoid if probabilities else (lambda v: v)
    metrics = {'d_real': jnp.mean(show(real_logits)), 'd_fake': jnp.mean(show(fake_logits))}
    return 0.5 * d_loss_fn(real_logits, fake_logits), ({}, metrics)

  return objective


def generator_objective(generator: nn.Module, discriminator: nn.Module, *,
                        g_loss_fn=losses.non_saturating_generator_loss, l1_weight: float = 100.0,
                        gan_weight: float = 1.0) -> game.Objective:
  """G's objective, paper eq. 4: ``gan_weight * g_loss_fn(D(x, G(x))) + l1_weight * |y - G(x)|``
  (the L1 term a mean over all elements). ``gan_weight=0`` is "L1 alone", the blurry
  conditional median of the paper's Figure 4. Metrics: ``l1``, ``g_gan``."""

  def objective(g_params, state: game.GANState, batch, *, key, shared_key):
    x, y = batch['x'], batch['y']
    fake = translate(generator, g_params, x, key)
    l1 = jnp.mean(jnp.abs(y - fake))
    adversarial = jnp.zeros(())
    if gan_weight:
      fake_logits = discriminator.apply({'params': state.d_params}, _pair(x, fake), train=True)
      adversarial = g_loss_fn(fake_logits)
    return gan_weight * adversarial + l1_weight * l1, ({}, {'l1': l1, 'g_gan': adversarial})

  return objective


def base_config(data_name: str, transform: str):
  """pix2pix as the paper trains it, scaled to 28x28 images on a CPU: the config of
  ``configs/pix2pix_*.py`` for ``data_name`` and the task ``transform``
  (:data:`jaxgan.translation.TRANSFORMS`), G's input being the transformed image.

  U-Net G with ``features=32`` (half the paper's 64) and dropout 0.5 as its noise, a PatchGAN D
  with one strided layer (``d_layers=1``: 16x16 patches, :data:`RECEPTIVE_FIELD`; see
  :class:`PatchDiscriminator`) and ``d_features=32``; loss =
  non-saturating cGAN + 100 L1; Adam 2e-4 / b1 0.5, batch 64, 3,000 steps.
  """
  config = translation.base_config('pix2pix')
  config.data.name = data_name
  config.task.transform = transform
  config.task.direction = 'from_transformed'
  config.model.update({'features': 32, 'dropout_rate': 0.5, 'd_features': 32, 'd_layers': 1})
  config.loss.update({'name': 'non_saturating', 'l1_weight': 100.0, 'gan_weight': 1.0})
  config.train.num_steps = 3000
  return config


def build_models(config) -> tuple[UNetGenerator, PatchDiscriminator]:
  """The U-Net G and the PatchGAN D of ``config.model`` (``features``, ``d_features``,
  ``dropout_rate``, ``d_layers``) for ``config.data``'s images."""
  channels = data_lib.data_shape(config.data.name)[-1]
  m = config.model
  return (UNetGenerator(out_channels=channels, features=m.features, dropout_rate=m.dropout_rate),
          PatchDiscriminator(features=m.d_features, num_layers=m.d_layers))


def init_state(config, key: jax.Array, generator: nn.Module, discriminator: nn.Module
               ) -> game.GANState:
  """Both players at step 0 (stateless: no batch statistics), with :func:`translation.adam_pair`."""
  shape = data_lib.data_shape(config.data.name)
  k_g, k_d = jax.random.split(key)
  x = jnp.zeros((1, *shape))
  g_params = generator.init(k_g, x, train=False)['params']
  d_params = discriminator.init(k_d, _pair(x, x), train=False)['params']
  g_opt, d_opt = translation.adam_pair(config)
  return game.GANState(step=jnp.zeros((), jnp.int32), g_params=g_params, d_params=d_params,
                       g_opt_state=g_opt.init(g_params), d_opt_state=d_opt.init(d_params),
                       g_batch_stats={}, d_batch_stats={})


def build_train_step(config, generator: nn.Module, discriminator: nn.Module, *,
                     axis_name: str | None = None, skip_nonfinite: bool | None = None):
  """The alternating step of the reference code (D, then G) with ``config.loss``'s ``name``
  (a pair of :func:`jaxgan.losses.get_loss_pair`; the paper's is ``'non_saturating'``),
  ``l1_weight`` and ``gan_weight``."""
  if skip_nonfinite is None:
    skip_nonfinite = config.train.on_nonfinite == 'skip'
  d_loss_fn, g_loss_fn = losses.get_loss_pair(config.loss.name)
  g_opt, d_opt = translation.adam_pair(config)
  return game.make_train_step(
      g_objective=generator_objective(generator, discriminator, g_loss_fn=g_loss_fn,
                                      l1_weight=config.loss.l1_weight,
                                      gan_weight=config.loss.gan_weight),
      d_objective=discriminator_objective(generator, discriminator, d_loss_fn=d_loss_fn),
      g_optimizer=g_opt, d_optimizer=d_opt, update_rule='alternating', axis_name=axis_name,
      skip_nonfinite=skip_nonfinite)


def train_and_evaluate(config, workdir: str, *, should_stop=None) -> game.GANState:
  """Trains the pix2pix of ``config`` (``configs/pix2pix_*.py``) with the one driver
  (:func:`jaxgan.train.drive`): ``metrics.jsonl`` (with ``l1``, ``g_gan``), checkpoints and
  resume as every run, and ``samples/step_<N>.png``: rows of test input | G(input) | truth."""
  translation.validate(config)
  axis_name = None if config.train.parallel == 'none' else train.AXIS_NAME
  generator, discriminator = build_models(config)
  init_key, step_key, data_key, sample_key = jax.random.split(jax.random.PRNGKey(config.seed), 4)
  generate = jax.jit(functools.partial(translate, generator))
  return translation.drive(
      config, workdir, state=init_state(config, init_key, generator, discriminator),
      train_step=build_train_step(config, generator, discriminator, axis_name=axis_name),
      strips=lambda state, x, y: [x, generate(state.g_params, x, sample_key), y],
      data_key=data_key, step_key=step_key, paired=True, axis_name=axis_name,
      should_stop=should_stop)
