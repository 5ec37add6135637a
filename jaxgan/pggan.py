"""Progressive growing of GANs (Karras et al. 2018, arXiv:1710.10196) and its shared layers.

The networks start at 4x4 and grow by doubling, ``4 -> 8 -> 16 -> 32``; each new resolution is
faded in smoothly. With ``r`` the current resolution, ``h`` the generator's features at ``r / 2``
and ``alpha`` going linearly from 0 to 1 over the transition (Section 2, Figure 2):

.. math::
  G_r(z) = (1 - \\alpha)\\, \\mathrm{up}\\big(\\mathrm{toRGB}_{r/2}(h)\\big)
           + \\alpha\\, \\mathrm{toRGB}_r\\big(\\mathrm{block}_r(h)\\big)

.. math::
  D_r(x) = D_{<r}\\Big((1 - \\alpha)\\, \\mathrm{fromRGB}_{r/2}\\big(\\mathrm{down}(x)\\big)
           + \\alpha\\, \\mathrm{block}_r\\big(\\mathrm{fromRGB}_r(x)\\big)\\Big)

with ``up`` nearest-neighbour x2 and ``down`` 2x2 average pooling (:func:`upsample_nearest`,
:func:`downsample_average`). So at ``alpha = 0`` the grown G computes exactly the previous
stage's image upsampled, and the grown D exactly the previous stage's D on the pooled image; at
``alpha = 1`` only the new blocks are used.

Parameters are named by resolution (``block_8``, ``to_rgb_8``, ``from_rgb_8``, ...): growing a
stage only ADDS names (``block_<2r>`` and ``to_rgb_<2r>`` / ``from_rgb_<2r>``), and the previous
stage's arrays keep their names and shapes, so a checkpoint of stage ``k`` extends to stage
``k + 1`` with :func:`grow_params`. (The toRGB / fromRGB layers of stages before the previous one
are kept, unused, for this.)

The other parts of the paper, each a function or layer here:

* Equalized learning rate (Section 4.1): :class:`EqualizedDense`, :class:`EqualizedConv` store
  ``N(0, 1)`` weights and scale them at run time by He's constant ``gain / sqrt(fan_in)``, so that
  Adam's scale-invariant steps change every layer at the same relative rate. StyleGAN's learning
  rate multiplier (arXiv:1812.04948, Appendix C) is an attribute of both.
* Pixel-wise feature normalization (Section 4.2): :func:`pixel_norm`, after every convolution of G.
* Minibatch standard deviation (Section 3): :func:`jaxgan.mode_collapse.minibatch_stddev`, at the
  start of D's 4x4 block.
* The loss: WGAN-GP (:func:`jaxgan.penalties.gradient_penalty`, weight 10) plus the drift term
  ``epsilon_drift E[D(x)^2]`` with ``epsilon_drift = 1e-3`` (Appendix A.1):
  :func:`drift_penalty`, :func:`drift_term`, :func:`discriminator_terms`.
* The schedule: :func:`stage_at` and :func:`alpha_at` (fade-in, then stabilize, per stage), and
  :func:`fade_real_images`, the same blend applied to the real images D sees.

MNIST's 28x28 digits are zero-padded to 32x32 (:func:`pad_to`).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax import traverse_util
from jax import lax

from jaxgan import mode_collapse, penalties

# The drift weight of the paper (Appendix A.1) and WGAN-GP's lambda (arXiv:1704.00028).
DRIFT_EPSILON = 1e-3
GRADIENT_PENALTY_WEIGHT = 10.0


def check_resolution(resolution, name: str = 'resolution') -> int:
  """Returns ``resolution`` if it is a power of two >= 4, else raises a one-line ValueError."""
  if (not isinstance(resolution, numbers.Integral) or isinstance(resolution, bool)
      or resolution < 4 or resolution & (resolution - 1)):
    raise ValueError(f'{name} must be a power of two >= 4 (4, 8, 16, 32, ...), got '
                     f'{resolution!r}')
  return int(resolution)


def _check_alpha(alpha) -> None:
  if isinstance(alpha, numbers.Real) and not 0 <= alpha <= 1:
    raise ValueError(f'alpha must be in [0, 1], got {alpha!r}')


def resolutions(resolution: int) -> list[int]:
  """``[4, 8, ..., resolution]``."""
  return [2**k for k in range(2, int(math.log2(check_resolution(resolution))) + 1)]


def channels_at(resolution: int, *, channel_base: int, channel_max: int) -> int:
  """Feature maps at ``resolution``: ``min(channel_base // resolution, channel_max)``, >= 1.

  The paper's CelebA-HQ networks are ``channel_base = 8192, channel_max = 512`` (512 maps up to
  16x16, halving per doubling after that).
  """
  return max(1, min(channel_base // resolution, channel_max))


# --- Layers shared with StyleGAN2 (jaxgan.stylegan2) ---------------------------------------------

def pixel_norm(x: jax.Array, *, epsilon: float = 1e-8) -> jax.Array:
  r"""Pixel-wise feature vector normalization (arXiv:1710.10196, Section 4.2).

  .. math::
    b_{x,y} = a_{x,y} \Big/ \sqrt{\tfrac1C \textstyle\sum_{j=1}^{C} (a^j_{x,y})^2 + \epsilon}

  over the last (channel) axis; every position's feature vector gets unit mean square. Also the
  normalization of ``z`` in StyleGAN's mapping network.
  """
  return x * lax.rsqrt(jnp.mean(jnp.square(x), axis=-1, keepdims=True) + epsilon)


def leaky_relu(x: jax.Array) -> jax.Array:
  """LeakyReLU with slope 0.2, the paper's activation."""
  return nn.leaky_relu(x, negative_slope=0.2)


def upsample_nearest(x: jax.Array, factor: int = 2) -> jax.Array:
  """Nearest-neighbour upsampling ``(B, H, W, C) -> (B, H f, W f, C)``: each pixel repeated."""
  return jnp.repeat(jnp.repeat(x, factor, axis=1), factor, axis=2)


def downsample_average(x: jax.Array, factor: int = 2) -> jax.Array:
  """``factor x factor`` average pooling ``(B, H, W, C) -> (B, H / f, W / f, C)``."""
  b, h, w, c = x.shape
  if h % factor or w % factor:
    raise ValueError(f'downsample_average: {h}x{w} is not divisible by {factor}')
  return jnp.mean(x.reshape((b, h // factor, factor, w // factor, factor, c)), axis=(2, 4))


def pad_to(x: jax.Array, resolution: int, *, value: float = -1.0) -> jax.Array:
  """Pads ``(B, H, W, C)`` images symmetrically to ``resolution x resolution`` with ``value``.

  MNIST's 28x28 digits become 32x32 with 2 pixels on every side. ``value = -1`` is black in
  jaxgan's ``[-1, 1]`` images: zero padding of the ``[0, 1]`` pixels.
  """
  h, w = x.shape[1:3]
  if h > resolution or w > resolution:
    raise ValueError(f'pad_to: images of {h}x{w} are larger than {resolution}x{resolution}')
  top, left = (resolution - h) // 2, (resolution - w) // 2
  return jnp.pad(x, ((0, 0), (top, resolution - h - top), (left, resolution - w - left), (0, 0)),
                 constant_values=value)


class EqualizedDense(nn.Module):
  r"""A dense layer with an equalized learning rate (arXiv:1710.10196, Section 4.1).

  .. math::
    y = x \big(c\, W\big) + \lambda b, \qquad c = \frac{g \lambda}{\sqrt{\text{fan\_in}}},
    \qquad W_{ij} \sim \mathcal N(0, \lambda^{-2})

  The stored ``kernel`` ``W`` is drawn with std ``1 / lambda`` (``N(0, 1)`` for ``lambda = 1``)
  and scaled at run time, so the *effective* weight ``c W`` has variance ``g^2 / fan_in`` (He's
  initialization for ``g = sqrt(2)``) whatever ``lambda`` is. The gradient with respect to ``W`` is
  ``c`` times that with respect to the effective weight, so an Adam step of size ``lr`` moves the
  effective weight by ``lr * c``: the same ``lr * lambda`` relative to its scale in every layer.
  ``lambda`` is StyleGAN's learning-rate multiplier (arXiv:1812.04948, Appendix C; 0.01 in the
  mapping network). The stored bias is multiplied by ``lambda`` too and starts at
  ``bias_init / lambda``: the effective bias starts at ``bias_init``.

  Attributes:
    features: output width.
    use_bias: add the bias.
    gain: ``g``; 1 (StyleGAN2, which puts ``sqrt(2)`` into its activation) or ``sqrt(2)`` (PGGAN).
    lr_multiplier: ``lambda > 0``.
    bias_init: the effective bias at initialization.
  """

  features: int
  use_bias: bool = True
  gain: float = 1.0
  lr_multiplier: float = 1.0
  bias_init: float = 0.0

  def __post_init__(self):
    if not self.lr_multiplier > 0:
      raise ValueError(f'lr_multiplier must be > 0, got {self.lr_multiplier!r}')
    super().__post_init__()

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    fan_in = x.shape[-1]
    kernel = self.param('kernel', nn.initializers.normal(1.0 / self.lr_multiplier),
                        (fan_in, self.features))
    y = x @ (kernel * (self.gain * self.lr_multiplier / math.sqrt(fan_in)))
    if self.use_bias:
      bias = self.param('bias', nn.initializers.constant(self.bias_init / self.lr_multiplier),
                        (self.features,))
      y = y + bias * self.lr_multiplier
    return y


class EqualizedConv(nn.Module):
  r"""A stride-1 'SAME' convolution with an equalized learning rate (see :class:`EqualizedDense`).

  ``kernel`` of shape ``(k, k, C_in, C_out)`` is stored ``N(0, lambda^{-2})`` and scaled at run
  time by ``c = gain * lambda / sqrt(k * k * C_in)``; the bias by ``lambda``.

  Attributes:
    features: ``C_out``.
    kernel_size: ``k``.
    use_bias, gain, lr_multiplier, bias_init: as in :class:`EqualizedDense`.
  """

  features: int
  kernel_size: int = 3
  use_bias: bool = True
  gain: float = 1.0
  lr_multiplier: float = 1.0
  bias_init: float = 0.0

  def __post_init__(self):
    if not self.lr_multiplier > 0:
      raise ValueError(f'lr_multiplier must be > 0, got {self.lr_multiplier!r}')
    super().__post_init__()

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    k, fan_in = self.kernel_size, self.kernel_size**2 * x.shape[-1]
    kernel = self.param('kernel', nn.initializers.normal(1.0 / self.lr_multiplier),
                        (k, k, x.shape[-1], self.features))
    y = lax.conv_general_dilated(
        x, kernel * (self.gain * self.lr_multiplier / math.sqrt(fan_in)), (1, 1), 'SAME',
        dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
    if self.use_bias:
      bias = self.param('bias', nn.initializers.constant(self.bias_init / self.lr_multiplier),
                        (self.features,))
      y = y + bias * self.lr_multiplier
    return y


# --- The progressive networks --------------------------------------------------------------------

_HE_GAIN = math.sqrt(2.0)


class _GeneratorBlock(nn.Module):
  """G's block at one resolution: 4x4 from the latent, or up x2 and two 3x3 convolutions.

  The paper's Table 2: ``latent -> dense to 4x4 (its "conv 4x4") -> conv 3x3``, and above 4x4
  ``upsample -> conv 3x3 -> conv 3x3``; LeakyReLU(0.2) and pixel norm after each.
  """

  features: int
  first: bool

  @nn.compact
  def __call__(self, h: jax.Array) -> jax.Array:
    act = lambda y: pixel_norm(leaky_relu(y))
    if self.first:
      # The paper's gain sqrt(2) / 4 on the projection to 16 positions: each output unit then
      # has He's variance per position of the 4x4 "convolution" it stands for.
      h = EqualizedDense(16 * self.features, gain=_HE_GAIN / 4, name='dense')(pixel_norm(h))
      h = act(h.reshape((h.shape[0], 4, 4, self.features)))
    else:
      h = act(EqualizedConv(self.features, 3, gain=_HE_GAIN, name='conv0')(upsample_nearest(h)))
    return act(EqualizedConv(self.features, 3, gain=_HE_GAIN, name='conv1')(h))


class ProgressiveGenerator(nn.Module):
  """PGGAN's generator at one stage: ``z -> (B, resolution, resolution, image_channels)``.

  ``z`` is pixel-normalized, mapped to 4x4 and grown by :class:`_GeneratorBlock`\\ s named
  ``block_4, block_8, ..., block_<resolution>``; ``to_rgb_<r>`` are linear 1x1 convolutions (the
  paper's output is linear). Above 4x4 the output fades in (module docstring):
  ``(1 - alpha) up(to_rgb_{r/2}(h)) + alpha to_rgb_r(block_r(h))``; ``to_rgb_{r/2}`` is always
  built, so the parameters do not depend on ``alpha`` (a traced scalar is fine). At 4x4
  ``alpha`` is ignored. ``to_rgb_<r>`` of the resolutions below ``resolution / 2`` (the earlier
  stages' outputs) are created at init and never used, so that every stage's parameters contain
  every earlier stage's (as in the paper's code, which holds the toRGB of every level of detail).

  Attributes:
    resolution: the stage's output size, a power of two >= 4.
    image_channels: ``C``.
    channel_base, channel_max: feature maps per resolution (:func:`channels_at`).
  """

  resolution: int = 32
  image_channels: int = 1
  channel_base: int = 2048
  channel_max: int = 128

  def __post_init__(self):
    check_resolution(self.resolution)
    super().__post_init__()

  @nn.compact
  def __call__(self, z: jax.Array, train: bool = False, *, alpha=1.0) -> jax.Array:
    del train  # No batch norm.
    _check_alpha(alpha)
    sizes = resolutions(self.resolution)
    width = lambda r: channels_at(r, channel_base=self.channel_base,
                                  channel_max=self.channel_max)
    to_rgb = lambda r, h: EqualizedConv(self.image_channels, 1, name=f'to_rgb_{r}')(h)
    h = z
    for r in sizes[:-1]:
      h = _GeneratorBlock(width(r), first=r == 4, name=f'block_{r}')(h)
      if r < sizes[-1] // 2 and self.is_initializing():
        to_rgb(r, h)  # The earlier stages' outputs: kept, unused, so stages nest (see above).
    top = sizes[-1]
    new = to_rgb(top, _GeneratorBlock(width(top), first=top == 4, name=f'block_{top}')(h))
    if top == 4:
      return new
    old = upsample_nearest(to_rgb(top // 2, h))
    # (1 - alpha) old + alpha new: exactly `old` at alpha = 0 and exactly `new` at alpha = 1.
    return (1 - alpha) * old + alpha * new


class _DiscriminatorBlock(nn.Module):
  """D's block at one resolution: two 3x3 convolutions and 2x2 average pooling, or the 4x4 head.

  The paper's Table 2: ``conv 3x3 (C_r) -> conv 3x3 (C_{r/2}) -> downsample``; at 4x4
  ``minibatch stddev -> conv 3x3 -> conv 4x4 (a dense layer on the 4x4 maps) -> dense 1``.
  LeakyReLU(0.2) after each convolution, no normalization.
  """

  features: int
  out_features: int
  last: bool
  mbstd_group_size: int = 4

  @nn.compact
  def __call__(self, h: jax.Array) -> jax.Array:
    if self.last:
      h = mode_collapse.minibatch_stddev(h, group_size=math.gcd(self.mbstd_group_size,
                                                                h.shape[0]))
      h = leaky_relu(EqualizedConv(self.features, 3, gain=_HE_GAIN, name='conv0')(h))
      h = h.reshape((h.shape[0], -1))
      h = leaky_relu(EqualizedDense(self.features, gain=_HE_GAIN, name='dense0')(h))
      return EqualizedDense(1, name='dense1')(h)[:, 0]
    h = leaky_relu(EqualizedConv(self.features, 3, gain=_HE_GAIN, name='conv0')(h))
    h = leaky_relu(EqualizedConv(self.out_features, 3, gain=_HE_GAIN, name='conv1')(h))
    return downsample_average(h)


class ProgressiveDiscriminator(nn.Module):
  """PGGAN's discriminator at one stage: ``(B, resolution, resolution, C) -> (B,)`` critic values.

  ``from_rgb_<r>`` (1x1 convolution, LeakyReLU) then :class:`_DiscriminatorBlock`\\ s
  ``block_<resolution>, ..., block_8, block_4``. Above 4x4 the input fades in (module docstring):
  ``(1 - alpha) from_rgb_{r/2}(down(x)) + alpha block_r(from_rgb_r(x))``; ``from_rgb_{r/2}`` is
  always built; ``from_rgb_<r>`` of the lower resolutions are created at init and never used (as
  ``to_rgb`` in G). Minibatch stddev uses groups of ``gcd(mbstd_group_size, B)`` samples.

  Attributes:
    resolution: the stage's input size, a power of two >= 4.
    channel_base, channel_max: feature maps per resolution (:func:`channels_at`).
    mbstd_group_size: the paper's 4.
  """

  resolution: int = 32
  channel_base: int = 2048
  channel_max: int = 128
  mbstd_group_size: int = 4

  def __post_init__(self):
    check_resolution(self.resolution)
    super().__post_init__()

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False, *, alpha=1.0) -> jax.Array:
    del train
    _check_alpha(alpha)
    if x.shape[1:3] != (self.resolution, self.resolution):
      raise ValueError(f'ProgressiveDiscriminator(resolution={self.resolution}) got images of '
                       f'shape {x.shape[1:]}')
    width = lambda r: channels_at(r, channel_base=self.channel_base,
                                  channel_max=self.channel_max)
    from_rgb = lambda r, x: leaky_relu(
        EqualizedConv(width(r), 1, gain=_HE_GAIN, name=f'from_rgb_{r}')(x))
    block = lambda r: _DiscriminatorBlock(width(r), width(max(r // 2, 4)), last=r == 4,
                                          mbstd_group_size=self.mbstd_group_size,
                                          name=f'block_{r}')
    sizes = resolutions(self.resolution)[::-1]
    if self.is_initializing():
      for r in sizes[2:]:  # The earlier stages' inputs: kept, unused, so stages nest.
        from_rgb(r, jnp.zeros((1, r, r, x.shape[-1]), x.dtype))
    h = block(sizes[0])(from_rgb(sizes[0], x))
    if len(sizes) == 1:
      return h
    old = from_rgb(sizes[1], downsample_average(x))
    h = (1 - alpha) * old + alpha * h
    for r in sizes[1:]:
      h = block(r)(h)
    return h


def grow_params(old_params, new_params):
  """Stage ``k``'s parameters extended to stage ``k + 1``: ``new_params`` with ``old_params``'s
  arrays under every name they share.

  Every name of ``old_params`` must be in ``new_params`` with the same shape (the progressive
  models guarantee it); the names only ``new_params`` has (the new blocks, ``to_rgb``/``from_rgb``
  of the new resolution) keep their fresh initialization. Works for any nested dicts of arrays
  (e.g. Adam's ``mu``/``nu``, though the paper resets the optimizer at each stage).

  Raises:
    ValueError: a name of ``old_params`` is missing from ``new_params`` or has another shape.
  """
  old = traverse_util.flatten_dict(old_params, sep='/')
  new = traverse_util.flatten_dict(new_params, sep='/')
  for name, value in old.items():
    if name not in new:
      raise ValueError(f'grow_params: {name} of the old stage is not in the new one')
    if jnp.shape(value) != jnp.shape(new[name]):
      raise ValueError(f'grow_params: {name} has shape {jnp.shape(value)} in the old stage, '
                       f'{jnp.shape(new[name])} in the new one')
  return traverse_util.unflatten_dict({**new, **old}, sep='/')


# --- The schedule --------------------------------------------------------------------------------

def _check_schedule(fade_steps: int, stable_steps: int, num_stages: int) -> None:
  if fade_steps < 1 or stable_steps < 1 or num_stages < 1:
    raise ValueError(f'need fade_steps >= 1, stable_steps >= 1, num_stages >= 1; got '
                     f'{fade_steps}, {stable_steps}, {num_stages}')


def stage_at(step: int, *, fade_steps: int, stable_steps: int, num_stages: int) -> int:
  """The stage (0 is 4x4, ``k`` is ``4 * 2**k``) that train step ``step`` (from 0) runs at.

  Stage 0 runs ``stable_steps`` steps; every later stage ``fade_steps`` steps of fade-in and then
  ``stable_steps`` stable ones; the last stage runs on for ever. (The paper counts 800k real images
  per phase.) A Python int: the stage fixes the shapes, so the host picks it between steps.
  """
  _check_schedule(fade_steps, stable_steps, num_stages)
  stage = 0 if step < stable_steps else 1 + (step - stable_steps) // (fade_steps + stable_steps)
  return min(int(stage), num_stages - 1)


def alpha_at(step, *, fade_steps: int, stable_steps: int, num_stages: int):
  """The fade-in ``alpha`` of step ``step``: ``(step - start) / fade_steps`` clipped to [0, 1].

  ``start`` is the first step of :func:`stage_at`'s stage; 1 at stage 0 and after each fade. Works
  on a traced ``step`` too (then the stage is ``stage_at`` of the same step, fixed by the caller).
  """
  _check_schedule(fade_steps, stable_steps, num_stages)
  # The stage from the traced step: min(1 + (step - stable) // period, last), >= 1 only after
  # stage 0.
  period = fade_steps + stable_steps
  stage = jnp.minimum(1 + jnp.maximum(step - stable_steps, 0) // period, num_stages - 1)
  start = stable_steps + (stage - 1) * period
  alpha = jnp.clip((step - start) / fade_steps, 0.0, 1.0)
  return jnp.where((step < stable_steps) | (num_stages == 1), 1.0, alpha)


def fade_real_images(x: jax.Array, alpha) -> jax.Array:
  """The real images D sees during a fade-in: ``(1 - alpha) up(down(x)) + alpha x``.

  The paper interpolates the reals between the two resolutions as G's output is (Appendix A.1);
  at ``alpha = 0`` D then sees exactly the previous stage's (pooled) image, upsampled.
  """
  _check_alpha(alpha)
  return (1 - alpha) * upsample_nearest(downsample_average(x)) + alpha * x


def downsample_to(x: jax.Array, resolution: int) -> jax.Array:
  """Real images average-pooled down to ``resolution`` (the earlier stages' data)."""
  check_resolution(resolution)
  factor = x.shape[1] // resolution
  if factor * resolution != x.shape[1] or factor & (factor - 1):
    raise ValueError(f'downsample_to: {x.shape[1]} is not {resolution} times a power of two')
  return x if factor == 1 else downsample_average(x, factor)


# --- The loss parts ------------------------------------------------------------------------------

def drift_penalty(real_logits: jax.Array, *, epsilon: float = DRIFT_EPSILON) -> jax.Array:
  r"""PGGAN's drift term ``epsilon * E_{x ~ P_r}[D(x)^2]`` (arXiv:1710.10196, Appendix A.1).

  ADD it to the WGAN-GP critic loss: it keeps the critic's values from drifting far from zero (the
  Wasserstein loss is invariant to a constant shift of D, the penalty is not). ``epsilon = 1e-3``.

  Args:
    real_logits: D's outputs on real data, any shape.
    epsilon: the weight.

  Returns:
    A scalar: ``epsilon * mean(real_logits ** 2)``.
  """
  return epsilon * jnp.mean(jnp.square(real_logits))


def drift_term(epsilon: float = DRIFT_EPSILON) -> Callable:
  """:func:`drift_penalty` as a term of D's objective: ``term(d_fn, real, fake, key, step)``.

  The signature of :func:`jaxgan.penalties.gradient_penalty_term`; it runs ``d_fn`` on ``real``
  once more (the objective's own real logits are not passed to terms).
  """
  if epsilon < 0:
    raise ValueError(f'epsilon must be >= 0, got {epsilon!r}')

  def term(d_fn, real, fake, key, step):
    del fake, key, step
    return drift_penalty(d_fn(real), epsilon=epsilon)
  return term


def discriminator_terms(*, gradient_penalty_weight: float = GRADIENT_PENALTY_WEIGHT,
                        drift_epsilon: float = DRIFT_EPSILON,
                        axis_name: str | None = None) -> list[Callable]:
  """PGGAN's extra terms of the Wasserstein critic loss: ``[10 * GP, 1e-3 * E[D(x)^2]]``.

  For :func:`jaxgan.gan.make_discriminator_loss` beside ``losses.wasserstein_discriminator_loss``:
  ``L_D = E[D(G(z))] - E[D(x)] + lambda GP + epsilon_drift E[D(x)^2]`` (Appendix A.1).
  """
  return [penalties.gradient_penalty_term(gradient_penalty_weight, axis_name=axis_name),
          drift_term(drift_epsilon)]
