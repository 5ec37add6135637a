r"""StyleGAN2 (Karras et al. 2020, arXiv:1912.04958; StyleGAN, arXiv:1812.04948) in flax.linen.

The generator is a mapping network ``f: z -> w`` and a synthesis network ``g`` that starts from a
learned constant and is steered at every layer by a copy of ``w``:

.. math::
  w = f(\mathrm{pixelnorm}(z)), \qquad x = g(w_0, w_1, \ldots, w_{L-1}; \text{noise}),
  \qquad w_i = w \ \text{(unless mixed)}

with ``L = 2 log2(R) - 2`` style inputs for an ``R x R`` image (:func:`num_ws`). Each convolution
of ``g`` is a *modulated convolution with weight demodulation* (arXiv:1912.04958, Section 2.2,
Eqs. 1 and 3): with styles ``s = A(w_i)`` (an affine map) and kernel ``w_{ijk}`` (input ``i``,
output ``j``, tap ``k``),

.. math::
  w'_{ijk} = s_i\, w_{ijk}, \qquad
  w''_{ijk} = w'_{ijk} \Big/ \sqrt{\textstyle\sum_{i,k} {w'_{ijk}}^2 + \epsilon},

computed either *fused* (one grouped convolution with a kernel per example) or *unfused* (scale
the activations by ``s``, convolve with the shared kernel, scale the outputs by the
demodulation factor), which are equal (:func:`modulated_conv_fused`,
:func:`modulated_conv_unfused`; the networks default to unfused, as the paper's code trains, and
because XLA:CPU differentiates the grouped convolution very slowly). After each convolution:
per-pixel Gaussian noise times a learned per-layer strength (:class:`StyleLayer`), a bias and
``sqrt(2) * LeakyReLU(0.2)``. The output is the *skip* architecture (Figure 7): an RGB image per
resolution, each upsampled and summed.

The rest of the paper, each a pure function:

* :func:`update_w_avg`: the running average ``w_avg`` of ``w`` (decay 0.995), kept by
  :class:`Generator` in its ``'batch_stats'`` collection (jaxgan's model-state collection, so the
  train step carries and device-averages it like batch-norm statistics).
* :func:`truncate`: the truncation trick ``w_avg + psi (w - w_avg)`` (arXiv:1812.04948, Eq. 2).
* :func:`mixing_cutoffs`, :func:`style_mix`: style-mixing regularization (arXiv:1812.04948,
  Section 3.1; probability 0.9): layers ``[0, c)`` take ``w`` of ``z_1``, layers ``[c, L)`` ``w``
  of ``z_2``.
* :func:`path_length_penalty`: path-length regularization (arXiv:1912.04958, Section 3.2, Eq. 4),
  ``E[(||J_w^T y||_2 - a)^2]`` with ``y ~ N(0, I) / sqrt(HW)`` and ``a`` the running mean of the
  lengths (decay 0.01); applied lazily (every 4 steps, weight 2) by the caller.
* :class:`Discriminator`: the residual D (Figure 7) with minibatch stddev
  (:func:`jaxgan.mode_collapse.minibatch_stddev`).

Equalized learning rate and pixel norm are :mod:`jaxgan.pggan`'s (:class:`EqualizedDense`,
:class:`EqualizedConv`, :func:`pixel_norm`, re-exported here). Simplifications at MNIST scale: up-
and downsampling are bilinear resizing and 2x2 average pooling instead of the paper's [1, 3, 3, 1]
FIR filter, and upsampling happens before a stride-1 modulated convolution instead of inside a
transposed one. Images are ``R x R`` (MNIST zero-padded to 32, :func:`jaxgan.pggan.pad_to`),
values unbounded (the paper's output is linear).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from jaxgan import mode_collapse
from jaxgan.pggan import (
    EqualizedConv,
    EqualizedDense,
    check_resolution,
    downsample_average,
    pixel_norm,
)

__all__ = [
    'EqualizedConv', 'EqualizedDense', 'pixel_norm', 'scaled_leaky_relu', 'num_ws',
    'modulate_kernel', 'demodulation_factors', 'modulated_conv_fused', 'modulated_conv_unfused',
    'ModulatedConv', 'StyleLayer', 'ToRGB', 'MappingNetwork', 'SynthesisNetwork', 'Generator',
    'Discriminator', 'update_w_avg', 'broadcast_ws', 'truncate', 'mixing_cutoffs', 'style_mix',
    'path_lengths', 'path_length_penalty', 'check_psi', 'check_mixing_probability',
]

_DIMENSIONS = ('NHWC', 'HWIO', 'NHWC')
DEMODULATION_EPSILON = 1e-8


def scaled_leaky_relu(x: jax.Array) -> jax.Array:
  """``sqrt(2) * LeakyReLU(x, 0.2)``: StyleGAN2's activation, gain folded in (unit-gain weights)."""
  return math.sqrt(2.0) * nn.leaky_relu(x, negative_slope=0.2)


def num_ws(resolution: int) -> int:
  """Style inputs of the synthesis network for ``resolution``: ``2 log2(resolution) - 2``.

  One per convolution (1 at 4x4, 2 per doubling) plus one for the last toRGB; each toRGB shares
  its ``w`` with the next block's first convolution (as in the paper's code). 8 for 32x32.
  """
  return 2 * int(math.log2(check_resolution(resolution))) - 2


def check_psi(psi) -> None:
  """One-line ValueError for a truncation ``psi < 0`` (a Python number; traced values pass)."""
  if isinstance(psi, numbers.Real) and not psi >= 0:
    raise ValueError(f'truncation psi must be >= 0, got {psi!r}')


def check_mixing_probability(probability) -> None:
  """One-line ValueError for a style-mixing probability outside [0, 1]."""
  if not (isinstance(probability, numbers.Real) and 0 <= probability <= 1):
    raise ValueError(f'style mixing probability must be in [0, 1], got {probability!r}')


# --- Modulated convolution -----------------------------------------------------------------------

def modulate_kernel(kernel: jax.Array, styles: jax.Array, *, demodulate: bool = True,
                    epsilon: float = DEMODULATION_EPSILON) -> jax.Array:
  r"""Per-example kernels ``w''`` (arXiv:1912.04958, Eqs. 1 and 3).

  .. math::
    w'_{b,k,i,j} = s_{b,i}\, w_{k,i,j}, \qquad
    w''_{b,k,i,j} = w'_{b,k,i,j} \Big/ \sqrt{\textstyle\sum_{k,i} {w'_{b,k,i,j}}^2 + \epsilon}

  ``k`` the spatial taps, ``i`` the input and ``j`` the output channel. Demodulated kernels have
  unit L2 norm per example and output channel (up to ``epsilon``), whatever the scale of ``s``.

  Args:
    kernel: ``(kh, kw, C_in, C_out)``.
    styles: ``(B, C_in)``.
    demodulate: divide by the norm (False: modulation only, as in toRGB).
    epsilon: added to the squared norm.

  Returns:
    ``(B, kh, kw, C_in, C_out)``.
  """
  weights = kernel[None] * styles[:, None, None, :, None]
  if demodulate:
    weights = weights * lax.rsqrt(jnp.sum(jnp.square(weights), axis=(1, 2, 3), keepdims=True)
                                  + epsilon)
  return weights


def demodulation_factors(kernel: jax.Array, styles: jax.Array, *,
                         epsilon: float = DEMODULATION_EPSILON) -> jax.Array:
  r"""``1 / sqrt(sum_{k,i} (s_i w_{kij})^2 + eps) = 1 / sqrt(sum_i s_i^2 sum_k w_{kij}^2 + eps)``,
  shape ``(B, C_out)``: the demodulation without forming the per-example kernels."""
  return lax.rsqrt(jnp.square(styles) @ jnp.sum(jnp.square(kernel), axis=(0, 1)) + epsilon)


def modulated_conv_fused(x: jax.Array, kernel: jax.Array, styles: jax.Array, *,
                         demodulate: bool = True, epsilon: float = DEMODULATION_EPSILON,
                         precision=None) -> jax.Array:
  """The modulated convolution as one grouped convolution: the batch folded into the groups.

  ``x`` ``(B, H, W, C_in)`` becomes one image of ``B * C_in`` channels and the per-example
  kernels (:func:`modulate_kernel`) one kernel of ``B * C_out`` outputs, with
  ``feature_group_count = B``, so example ``b``'s outputs read only example ``b``'s inputs
  (the paper's implementation). Stride 1, 'SAME' padding.

  Returns:
    ``(B, H, W, C_out)``.
  """
  b, h, w, c_in = x.shape
  kh, kw, _, c_out = kernel.shape
  weights = modulate_kernel(kernel, styles, demodulate=demodulate, epsilon=epsilon)
  # (B, kh, kw, C_in, C_out) -> (kh, kw, C_in, B * C_out): output channel b * C_out + j.
  weights = weights.transpose((1, 2, 3, 0, 4)).reshape((kh, kw, c_in, b * c_out))
  # (B, H, W, C_in) -> (1, H, W, B * C_in): input channel b * C_in + i, group b.
  x = x.transpose((1, 2, 0, 3)).reshape((1, h, w, b * c_in))
  y = lax.conv_general_dilated(x, weights, (1, 1), 'SAME', dimension_numbers=_DIMENSIONS,
                               feature_group_count=b, precision=precision)
  return y.reshape((h, w, b, c_out)).transpose((2, 0, 1, 3))


def modulated_conv_unfused(x: jax.Array, kernel: jax.Array, styles: jax.Array, *,
                           demodulate: bool = True, epsilon: float = DEMODULATION_EPSILON,
                           precision=None) -> jax.Array:
  """The modulated convolution by scaling activations: ``conv(x * s, w) * demod``.

  Convolution is linear in the kernel, so scaling input channel ``i`` by ``s_i`` before one
  shared convolution and output channel ``j`` by :func:`demodulation_factors` after it equals
  :func:`modulated_conv_fused` (up to float rounding). Stride 1, 'SAME' padding.
  """
  y = lax.conv_general_dilated(x * styles[:, None, None, :], kernel, (1, 1), 'SAME',
                               dimension_numbers=_DIMENSIONS, precision=precision)
  if demodulate:
    y = y * demodulation_factors(kernel, styles, epsilon=epsilon)[:, None, None, :]
  return y


class ModulatedConv(nn.Module):
  """A modulated (and demodulated) convolution with its affine style map ``A``.

  ``styles = A(w)``, an :class:`EqualizedDense` whose effective bias starts at 1 (so styles start
  near 1). The ``kernel`` ``(k, k, C_in, C_out)`` is stored ``N(0, 1)`` and scaled by
  ``1 / sqrt(k k C_in)`` (equalized learning rate; demodulation cancels the scale, toRGB keeps
  it). No bias here (:class:`StyleLayer` adds it after the noise).

  Attributes:
    features: ``C_out``.
    kernel_size: ``k``.
    demodulate: weight demodulation (False for toRGB).
    fused: :func:`modulated_conv_fused` (True) or :func:`modulated_conv_unfused` (False, the
      default). The two are equal; the paper's code trains unfused and samples fused. On XLA:CPU
      the grouped convolution's gradient is very slow: a 32x32 G step at batch 32 (widths 64)
      took 45 s fused against 0.3 s unfused.
  """

  features: int
  kernel_size: int = 3
  demodulate: bool = True
  fused: bool = False

  @nn.compact
  def __call__(self, x: jax.Array, w: jax.Array) -> jax.Array:
    c_in, k = x.shape[-1], self.kernel_size
    styles = EqualizedDense(c_in, bias_init=1.0, name='affine')(w)
    kernel = self.param('kernel', nn.initializers.normal(1.0), (k, k, c_in, self.features))
    kernel = kernel / math.sqrt(k * k * c_in)
    conv = modulated_conv_fused if self.fused else modulated_conv_unfused
    return conv(x, kernel, styles, demodulate=self.demodulate)


class StyleLayer(nn.Module):
  """One synthesis layer: [upsample x2] -> modulated 3x3 conv -> + noise -> + bias -> activation.

  The noise is ``strength * n`` with ``n`` of shape ``(B, H, W, 1)`` (one value per pixel,
  broadcast over channels) and ``strength`` a learned scalar starting at 0 (the paper's code;
  arXiv:1812.04948, Section 2 learns per-channel factors). ``n = None`` adds no noise.

  Attributes:
    features: output channels.
    upsample: bilinear x2 before the convolution.
    fused: see :class:`ModulatedConv`.
  """

  features: int
  upsample: bool = False
  fused: bool = False

  @nn.compact
  def __call__(self, x: jax.Array, w: jax.Array, noise: jax.Array | None) -> jax.Array:
    if self.upsample:
      x = _upsample_bilinear(x)
    x = ModulatedConv(self.features, 3, fused=self.fused, name='conv')(x, w)
    strength = self.param('noise_strength', nn.initializers.zeros, ())
    if noise is not None:
      x = x + strength * noise
    return scaled_leaky_relu(x + self.param('bias', nn.initializers.zeros, (self.features,)))


class ToRGB(nn.Module):
  """toRGB: a modulated, not demodulated, 1x1 convolution plus bias (no activation)."""

  channels: int
  fused: bool = False

  @nn.compact
  def __call__(self, x: jax.Array, w: jax.Array) -> jax.Array:
    y = ModulatedConv(self.channels, 1, demodulate=False, fused=self.fused, name='conv')(x, w)
    return y + self.param('bias', nn.initializers.zeros, (self.channels,))


def _upsample_bilinear(x: jax.Array) -> jax.Array:
  b, h, w, c = x.shape
  return jax.image.resize(x, (b, 2 * h, 2 * w, c), 'bilinear')


# --- Mapping and synthesis -----------------------------------------------------------------------

class MappingNetwork(nn.Module):
  """``z -> w``: pixel norm of ``z``, then ``depth`` x [EqualizedDense(w_dim) -> activation].

  Every dense layer has learning-rate multiplier ``lr_multiplier`` (0.01, arXiv:1812.04948,
  Appendix C) and is followed by :func:`scaled_leaky_relu`, the last one included (the paper's
  code). The paper has 8 layers of 512; at MNIST scale fewer and narrower.

  Attributes:
    w_dim: width of every layer and of ``w``.
    depth: number of dense layers, >= 1.
    lr_multiplier: ``lambda`` of :class:`EqualizedDense`.
  """

  w_dim: int = 128
  depth: int = 4
  lr_multiplier: float = 0.01

  def __post_init__(self):
    if not (isinstance(self.depth, numbers.Integral) and self.depth >= 1):
      raise ValueError(f'mapping depth must be an integer >= 1, got {self.depth!r}')
    super().__post_init__()

  @nn.compact
  def __call__(self, z: jax.Array) -> jax.Array:
    h = pixel_norm(z)
    for i in range(self.depth):
      h = scaled_leaky_relu(EqualizedDense(self.w_dim, lr_multiplier=self.lr_multiplier,
                                           name=f'dense_{i}')(h))
    return h


class SynthesisNetwork(nn.Module):
  """``ws (B, num_ws, w_dim) -> images (B, R, R, C)``: StyleGAN2's skip generator.

  ``const`` (4x4, ``N(0, 1)``) -> ``b4_conv1`` (``ws[:, 0]``) and ``b4_torgb`` (``ws[:, 1]``); for
  each ``r = 8, ..., R``: ``b<r>_conv0`` (upsampling, ``ws[:, 2i - 1]``), ``b<r>_conv1``
  (``ws[:, 2i]``) and ``b<r>_torgb`` (``ws[:, 2i + 1]``), with ``i = log2(r) - 2``; the image is
  ``up(image) + toRGB_r(x)``. Feature maps ``min(channel_base // r, channel_max)``.

  Noise: ``noise_key`` gives layer ``l`` (in the order above, 0-based over convolutions)
  ``N(0, 1)`` maps drawn with ``fold_in(noise_key, l)``; None adds none (deterministic output).

  Attributes:
    resolution: ``R``, a power of two >= 4.
    image_channels: ``C``.
    w_dim: width of ``w``.
    channel_base, channel_max: feature maps per resolution.
    fused_modconv: see :class:`ModulatedConv`.
  """

  resolution: int = 32
  image_channels: int = 1
  w_dim: int = 128
  channel_base: int = 2048
  channel_max: int = 128
  fused_modconv: bool = False

  def __post_init__(self):
    check_resolution(self.resolution)
    super().__post_init__()

  @property
  def num_ws(self) -> int:
    return num_ws(self.resolution)

  @nn.compact
  def __call__(self, ws: jax.Array, *, noise_key: jax.Array | None = None) -> jax.Array:
    if ws.ndim != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
      raise ValueError(f'SynthesisNetwork(resolution={self.resolution}) takes ws of shape '
                       f'(B, {self.num_ws}, {self.w_dim}), got {ws.shape}')
    batch = ws.shape[0]
    width = lambda r: max(1, min(self.channel_base // r, self.channel_max))
    layers = iter(range(self.num_ws))

    def noise(size):
      index = next(layers)
      if noise_key is None:
        return None
      return jax.random.normal(jax.random.fold_in(noise_key, index), (batch, size, size, 1),
                               ws.dtype)

    const = self.param('const', nn.initializers.normal(1.0), (4, 4, width(4)))
    x = jnp.broadcast_to(const, (batch, *const.shape)).astype(ws.dtype)
    x = StyleLayer(width(4), fused=self.fused_modconv, name='b4_conv1')(x, ws[:, 0], noise(4))
    image = ToRGB(self.image_channels, fused=self.fused_modconv, name='b4_torgb')(x, ws[:, 1])
    for i in range(1, int(math.log2(self.resolution)) - 1):
      r = 4 * 2**i
      x = StyleLayer(width(r), upsample=True, fused=self.fused_modconv,
                     name=f'b{r}_conv0')(x, ws[:, 2 * i - 1], noise(r))
      x = StyleLayer(width(r), fused=self.fused_modconv, name=f'b{r}_conv1')(
          x, ws[:, 2 * i], noise(r))
      rgb = ToRGB(self.image_channels, fused=self.fused_modconv, name=f'b{r}_torgb')(
          x, ws[:, 2 * i + 1])
      image = _upsample_bilinear(image) + rgb
    return image


# --- w: its average, truncation, mixing ----------------------------------------------------------

def update_w_avg(w_avg: jax.Array, w: jax.Array, *, decay: float = 0.995) -> jax.Array:
  """``decay * w_avg + (1 - decay) * mean_batch(w)``: the running average of ``w`` (paper's
  code, decay 0.995), the centre of the truncation trick. ``w`` ``(B, w_dim)``."""
  return decay * w_avg + (1.0 - decay) * jnp.mean(w, axis=0)


def broadcast_ws(w: jax.Array, num: int) -> jax.Array:
  """``(B, w_dim) -> (B, num, w_dim)``: the same ``w`` for every layer."""
  return jnp.broadcast_to(w[:, None, :], (w.shape[0], num, w.shape[-1]))


def truncate(ws: jax.Array, w_avg: jax.Array, psi, *, cutoff: int | None = None) -> jax.Array:
  r"""The truncation trick ``w' = w_avg + psi (w - w_avg)`` (arXiv:1812.04948, Eq. 2).

  ``psi = 1`` is the identity, ``psi = 0`` maps every ``w`` to ``w_avg``, ``0 < psi < 1`` trades
  variety for typicality. ``cutoff``: only layers ``[0, cutoff)`` are truncated (None: all).

  Args:
    ws: ``(B, num_ws, w_dim)`` or ``(B, w_dim)``.
    w_avg: ``(w_dim,)``.
    psi: ``>= 0``.
    cutoff: number of leading layers to truncate (``ws`` 3-D only).
  """
  check_psi(psi)
  truncated = w_avg + psi * (ws - w_avg)
  if cutoff is None:
    return truncated
  layer = jnp.arange(ws.shape[1])[None, :, None]
  return jnp.where(layer < cutoff, truncated, ws)


def mixing_cutoffs(key: jax.Array, batch: int, num_layers: int, probability: float) -> jax.Array:
  """Per-example style-mixing cut-offs ``c`` in ``{1, ..., num_layers}``, shape ``(B,)`` int32.

  With probability ``probability`` an example mixes: ``c ~ U{1, ..., num_layers - 1}`` (at least
  one layer from each latent); otherwise ``c = num_layers``, no mixing (see :func:`style_mix`).
  The paper's code draws one ``c`` per minibatch; one per example is the same regularizer with
  less variance between steps. Uniform draw from ``fold_in(key, 0)``, the decision from
  ``fold_in(key, 1)``.
  """
  check_mixing_probability(probability)
  if num_layers < 2:
    return jnp.full((batch,), num_layers, jnp.int32)
  cutoff = jax.random.randint(jax.random.fold_in(key, 0), (batch,), 1, num_layers)
  mix = jax.random.uniform(jax.random.fold_in(key, 1), (batch,)) < probability
  return jnp.where(mix, cutoff, num_layers).astype(jnp.int32)


def style_mix(ws_1: jax.Array, ws_2: jax.Array, cutoff) -> jax.Array:
  """Style mixing: layers ``[0, cutoff)`` from ``ws_1``, layers ``[cutoff, L)`` from ``ws_2``.

  Convention: ``cutoff`` counts the leading (coarse, low-resolution) layers that keep the first
  latent's styles. ``cutoff = L`` (past the last layer) is ``ws_1`` unmixed and ``cutoff = 0`` is
  ``ws_2`` unmixed; ``0 < cutoff < L`` mixes.

  Args:
    ws_1, ws_2: ``(B, L, w_dim)``.
    cutoff: an int or ``(B,)`` ints in ``[0, L]``.
  """
  cutoff = jnp.asarray(cutoff)
  if cutoff.ndim == 1:
    cutoff = cutoff[:, None, None]
  layer = jnp.arange(ws_1.shape[1])[None, :, None]
  return jnp.where(layer < cutoff, ws_1, ws_2)


# --- The generator -------------------------------------------------------------------------------

class Generator(nn.Module):
  """StyleGAN2's generator: ``z (B, z_dim) -> images (B, R, R, C)``.

  ``w = mapping(z)``; in training with a ``key``, ``z_2 ~ N(0, I)`` from the key is mapped too and
  mixed in (:func:`mixing_cutoffs`, :func:`style_mix`) and noise is drawn; then the truncation
  (``psi``) and the synthesis network. ``w_avg`` lives in ``variables['batch_stats']['w_avg']``
  (zeros at init) and is updated from the batch's ``w`` (of ``z``, before mixing) by
  :func:`update_w_avg` when ``train=True`` (make the collection mutable, as
  :func:`jaxgan.gan.apply_model` does).

  Keys: ``key`` is split into ``(k_mix, k_noise)``; ``k_noise`` is the synthesis network's
  ``noise_key``, ``fold_in(k_mix, 0)`` draws ``z_2`` and ``fold_in(k_mix, 1)`` the cut-offs. Mixing
  happens only with ``train=True``; noise whenever there is a key. ``key=None``: deterministic.

  Attributes:
    resolution: ``R``, a power of two >= 4.
    image_channels: ``C``.
    w_dim: width of ``w``.
    mapping_depth: layers of the mapping network (>= 1).
    mapping_lr_multiplier: its learning-rate multiplier (0.01).
    channel_base, channel_max: the synthesis network's widths.
    style_mixing_probability: in [0, 1] (the paper's 0.9).
    w_avg_decay: of :func:`update_w_avg`.
    fused_modconv: see :class:`ModulatedConv`.
  """

  resolution: int = 32
  image_channels: int = 1
  w_dim: int = 128
  mapping_depth: int = 4
  mapping_lr_multiplier: float = 0.01
  channel_base: int = 2048
  channel_max: int = 128
  style_mixing_probability: float = 0.9
  w_avg_decay: float = 0.995
  fused_modconv: bool = False

  def __post_init__(self):
    check_resolution(self.resolution)
    check_mixing_probability(self.style_mixing_probability)
    if not (isinstance(self.mapping_depth, numbers.Integral) and self.mapping_depth >= 1):
      raise ValueError(f'mapping depth must be an integer >= 1, got {self.mapping_depth!r}')
    if not 0 <= self.w_avg_decay <= 1:
      raise ValueError(f'w_avg_decay must be in [0, 1], got {self.w_avg_decay!r}')
    super().__post_init__()

  @property
  def num_ws(self) -> int:
    return num_ws(self.resolution)

  def setup(self):
    self.mapping_network = MappingNetwork(self.w_dim, self.mapping_depth,
                                          self.mapping_lr_multiplier, name='mapping')
    self.synthesis_network = SynthesisNetwork(
        self.resolution, self.image_channels, self.w_dim, self.channel_base, self.channel_max,
        self.fused_modconv, name='synthesis')
    self.w_avg = self.variable('batch_stats', 'w_avg', jnp.zeros, (self.w_dim,))

  def mapping(self, z: jax.Array, *, key: jax.Array | None = None, train: bool = False,
              psi=1.0, truncation_cutoff: int | None = None) -> jax.Array:
    """``z -> ws (B, num_ws, w_dim)``: mapping, running average, mixing, truncation."""
    check_psi(psi)
    w = self.mapping_network(z)
    if train and not self.is_initializing():
      self.w_avg.value = update_w_avg(self.w_avg.value, w, decay=self.w_avg_decay)
    ws = broadcast_ws(w, self.num_ws)
    if train and key is not None and self.style_mixing_probability > 0:
      k_mix = jax.random.split(key)[0]
      z_2 = jax.random.normal(jax.random.fold_in(k_mix, 0), z.shape, z.dtype)
      ws_2 = broadcast_ws(self.mapping_network(z_2), self.num_ws)
      cutoff = mixing_cutoffs(jax.random.fold_in(k_mix, 1), z.shape[0], self.num_ws,
                              self.style_mixing_probability)
      ws = style_mix(ws, ws_2, cutoff)
    if not (isinstance(psi, numbers.Real) and psi == 1):
      ws = truncate(ws, self.w_avg.value, psi, cutoff=truncation_cutoff)
    return ws

  def synthesize(self, ws: jax.Array, *, noise_key: jax.Array | None = None) -> jax.Array:
    """``ws (B, num_ws, w_dim) -> images``: the synthesis network (for path length, mixing
    grids)."""
    return self.synthesis_network(ws, noise_key=noise_key)

  def __call__(self, z: jax.Array, train: bool = False, *, key: jax.Array | None = None,
               psi=1.0, truncation_cutoff: int | None = None) -> jax.Array:
    ws = self.mapping(z, key=key, train=train, psi=psi, truncation_cutoff=truncation_cutoff)
    noise_key = None if key is None else jax.random.split(key)[1]
    return self.synthesize(ws, noise_key=noise_key)


# --- Path-length regularization ------------------------------------------------------------------

def path_lengths(synthesis_fn: Callable[[jax.Array], jax.Array], ws: jax.Array,
                 y: jax.Array) -> jax.Array:
  r"""``||J_w^T y||`` per example, in the paper's code's normalization, shape ``(B,)``.

  .. math::
    \ell_b = \sqrt{\tfrac1L \textstyle\sum_{l=1}^{L} \lVert J_{w_l}^{\top} y_b \rVert_2^2},
    \qquad J_{w_l} = \partial g(w)_b / \partial w_{b,l}

  (a vector-Jacobian product; the squared norm summed over ``w_dim`` and averaged over the ``L``
  style inputs). ``synthesis_fn`` maps ``ws`` ``(B, L, w_dim)`` to images ``(B, H, W, C)`` with
  examples independent; ``y`` has the images' shape.
  """
  _, vjp = jax.vjp(synthesis_fn, ws)
  (grads,) = vjp(y)
  return jnp.sqrt(jnp.mean(jnp.sum(jnp.square(grads), axis=2), axis=1))


def path_length_penalty(synthesis_fn: Callable[[jax.Array], jax.Array], ws: jax.Array,
                        key: jax.Array, mean_path_length: jax.Array, *,
                        decay: float = 0.01) -> tuple[jax.Array, jax.Array]:
  r"""StyleGAN2's path-length regularizer (arXiv:1912.04958, Section 3.2, Eq. 4).

  .. math::
    y \sim \mathcal N(0, I) / \sqrt{HW}, \qquad \ell_b = \lVert J_w^\top y \rVert \
    \text{(:func:`path_lengths`)}, \qquad
    a' = a + \text{decay}\,(\bar\ell - a), \qquad
    \text{penalty} = \tfrac1B \textstyle\sum_b (\ell_b - a')^2

  ``y`` is scaled by ``1 / sqrt(H W)`` (not ``H W C``), as in the paper's code, so that for a
  linear synthesis ``g(w) = A w`` (one style input) ``E[\ell^2] = tr(A A^T) / (H W)``: the lengths
  do not grow with the resolution. ``a`` is the running mean of the lengths (``decay = 0.01``);
  the penalty is differentiable with respect to the parameters ``synthesis_fn`` closes over (a
  double backward pass), with ``a'`` held constant. The paper weights it ``w_pl = 2`` and applies
  it lazily every 4 steps (so ``4 * 2 * penalty`` on those steps), often on half the batch.

  Args:
    synthesis_fn: ``ws -> images``, e.g. ``lambda ws: g.apply(variables, ws, noise_key=k,
      method=Generator.synthesize)``.
    ws: ``(B, L, w_dim)`` the styles the images were made from (after mixing).
    key: draws ``y``.
    mean_path_length: ``a``, a scalar (start at 0).
    decay: of the running mean.

  Returns:
    ``(penalty, a')``.
  """
  images_shape = jax.eval_shape(synthesis_fn, ws)
  h, w = images_shape.shape[1:3]
  y = jax.random.normal(key, images_shape.shape, images_shape.dtype) / math.sqrt(h * w)
  lengths = path_lengths(synthesis_fn, ws, y)
  new_mean = mean_path_length + decay * (jnp.mean(lax.stop_gradient(lengths)) - mean_path_length)
  penalty = jnp.mean(jnp.square(lengths - lax.stop_gradient(new_mean)))
  return penalty, new_mean


# --- The discriminator ---------------------------------------------------------------------------

class _ResidualBlock(nn.Module):
  """``(x + skip) / sqrt(2)``: conv 3x3 -> act -> pool -> conv 3x3 -> act, skip pool -> 1x1."""

  features: int
  out_features: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    skip = EqualizedConv(self.out_features, 1, use_bias=False, name='skip')(
        downsample_average(x))
    h = scaled_leaky_relu(EqualizedConv(self.features, 3, name='conv0')(x))
    h = scaled_leaky_relu(EqualizedConv(self.out_features, 3, name='conv1')(
        downsample_average(h)))
    return (skip + h) * math.sqrt(0.5)


class Discriminator(nn.Module):
  """StyleGAN2's residual discriminator: ``(B, R, R, C) -> (B,)`` logits.

  ``fromRGB`` (1x1 conv, activation) at ``R``, residual blocks ``R -> R/2 -> ... -> 4``
  (:class:`_ResidualBlock`), then minibatch stddev (groups of ``gcd(mbstd_group_size, B)``),
  conv 3x3, dense ``C_4``, dense 1. Equalized learning rate throughout, activations
  :func:`scaled_leaky_relu`, no normalization.

  Attributes:
    resolution: ``R``, a power of two >= 4.
    channel_base, channel_max: feature maps per resolution, as in the generator.
    mbstd_group_size: 4 in the paper.
  """

  resolution: int = 32
  channel_base: int = 2048
  channel_max: int = 128
  mbstd_group_size: int = 4

  def __post_init__(self):
    check_resolution(self.resolution)
    super().__post_init__()

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    del train
    if x.ndim != 4 or x.shape[1:3] != (self.resolution, self.resolution):
      raise ValueError(f'Discriminator(resolution={self.resolution}) got inputs of shape '
                       f'{x.shape}')
    width = lambda r: max(1, min(self.channel_base // r, self.channel_max))
    h = scaled_leaky_relu(EqualizedConv(width(self.resolution), 1, name='from_rgb')(x))
    r = self.resolution
    while r > 4:
      h = _ResidualBlock(width(r), width(r // 2), name=f'b{r}')(h)
      r //= 2
    h = mode_collapse.minibatch_stddev(h, group_size=math.gcd(self.mbstd_group_size,
                                                              h.shape[0]))
    h = scaled_leaky_relu(EqualizedConv(width(4), 3, name='b4_conv')(h))
    h = h.reshape((h.shape[0], -1))
    self.sow('intermediates', 'features', h)
    h = scaled_leaky_relu(EqualizedDense(width(4), name='b4_dense')(h))
    return EqualizedDense(1, name='out')(h)[:, 0]
