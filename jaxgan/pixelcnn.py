r"""PixelCNN (van den Oord et al. 2016, arXiv:1601.06759): an explicit, exact image likelihood.

The joint distribution of an image's ``D = H W`` pixels is factored along the raster order (row
by row, left to right within a row),

.. math::

   p(x) = \prod_{i=1}^{D} p(x_i \mid x_1, \dots, x_{i-1}),

and one convolutional network outputs all ``D`` conditionals at once. Causality comes from
*masked* convolutions (paper Section 3.4): every kernel is multiplied by a mask that
zeroes the taps at and after the centre in raster order. A type-A mask also zeroes the centre
(the first layer, which must not see the pixel it predicts); a type-B mask keeps it (every later
layer, whose centre feature already depends only on earlier pixels). Through a stack of one
type-A layer and any number of type-B layers, the output at pixel ``i`` is a function of
``x_1 .. x_{i-1}`` only, so the NLL ``-log p(x) = sum_i -log p(x_i | x_<i)`` is exact and a
single forward pass. Sampling is ancestral, one pixel at a time (:func:`sample`).

What is built (paper Table 1, "PixelCNN" column, scaled down): a 7x7 type-A convolution, residual
blocks of 1x1 / 3x3 type-B / 1x1 convolutions (Figure 5), then two 1x1 type-B layers (ReLU
between all). The output is either

* ``num_levels=2``: one Bernoulli logit per pixel, for binarized images with values in
  ``{0, 1}`` (binarized MNIST, the paper's Table 4), or
* ``num_levels=K > 2``: a ``K``-way softmax per pixel over ``{0, ..., K-1}`` (``K = 256`` is the
  paper's discrete softmax over 8-bit intensities).

The masks are spatial only: with ``C > 1`` channels, the channels of pixel ``i`` are modelled as
conditionally independent given the earlier pixels (a valid density, but weaker than the paper's
R -> G -> B channel masks, which this module does not implement). The original PixelCNN's
"blind spot" (a stack of 3x3 type-B masks never reaches the pixels above-right of the 7x7 first
layer's field) is the paper's too; the Gated PixelCNN (arXiv:1606.05328) removes it.

Images are NHWC floats holding integer levels. Likelihoods are in nats per image (the MNIST
convention: 81.30 nats is the paper's Table 4 PixelCNN); :func:`bits_per_dim` converts.
"""

from __future__ import annotations

import functools
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

from jaxgan import game

MASK_TYPES = ('A', 'B')


def causal_mask(kernel_size: tuple[int, int], *, mask_type: str) -> np.ndarray:
  r"""The ``(kh, kw)`` 0/1 mask of a masked convolution (paper Section 3.4).

  With the centre ``(ci, cj) = (kh // 2, kw // 2)``,

  .. math::

     m_{rc} = [\,r < c_i\,] + [\,r = c_i,\ c < c_j\,] + [\,\text{type B}\,][\,r = c_i,\ c = c_j\,],

  i.e. the taps strictly before the centre in raster order, plus the centre itself for type B.
  For ``3x3``: type A ``[[1, 1, 1], [1, 0, 0], [0, 0, 0]]``, type B ``[[1, 1, 1], [1, 1, 0],
  [0, 0, 0]]``. A ``1x1`` type-B mask is ``[[1]]`` (an ordinary 1x1 convolution); ``1x1`` type A
  is ``[[0]]``, which sees nothing.

  Args:
    kernel_size: ``(kh, kw)``, both odd (an even kernel has no centre tap).
    mask_type: ``'A'`` (excludes the centre) or ``'B'`` (includes it).

  Returns:
    A float32 numpy array of shape ``(kh, kw)``.

  Raises:
    ValueError: for an even kernel side or an unknown ``mask_type``.
  """
  kh, kw = kernel_size
  if kh % 2 == 0 or kw % 2 == 0:
    raise ValueError(f'a masked convolution needs odd kernel sides; got kernel_size={kernel_size}')
  if mask_type not in MASK_TYPES:
    raise ValueError(f"mask_type must be one of {MASK_TYPES}; got {mask_type!r}")
  ci, cj = kh // 2, kw // 2
  mask = np.zeros((kh, kw), np.float32)
  mask[:ci, :] = 1.0
  mask[ci, :cj] = 1.0
  if mask_type == 'B':
    mask[ci, cj] = 1.0
  return mask


class MaskedConv(nn.Module):
  """A stride-1 ``'SAME'`` convolution whose kernel is multiplied by :func:`causal_mask`.

  ``y = conv(x, kernel * mask[:, :, None, None]) + bias``: the mask is applied to the kernel on
  every call (not once at initialization), so the masked taps are exactly zero in the forward
  pass and receive zero gradient; the stored ``kernel`` keeps its masked entries, which have no
  effect. Zero padding is causal too: padded positions hold zeros, not pixels.

  Attributes:
    features: output channels.
    kernel_size: ``(kh, kw)``, both odd.
    mask_type: ``'A'`` or ``'B'``.
    use_bias: add a per-channel bias.
  """

  features: int
  kernel_size: tuple[int, int]
  mask_type: str
  use_bias: bool = True

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """``(B, H, W, C_in)`` -> ``(B, H, W, features)``."""
    mask = causal_mask(self.kernel_size, mask_type=self.mask_type)
    kernel = self.param('kernel', nn.initializers.lecun_normal(),
                        (*self.kernel_size, x.shape[-1], self.features))
    y = lax.conv_general_dilated(x, kernel * mask[:, :, None, None], window_strides=(1, 1),
                                 padding='SAME', dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
    if self.use_bias:
      y = y + self.param('bias', nn.initializers.zeros_init(), (self.features,))
    return y


class ResidualBlock(nn.Module):
  """Paper Figure 5: ``h + 1x1(ReLU(kxk_B(ReLU(1x1(ReLU(h))))))``, the inner layers at half width.

  All three convolutions are type B (1x1 type B is an ordinary 1x1 convolution), so the block
  keeps the stack causal.
  """

  features: int
  kernel_size: int = 3

  @nn.compact
  def __call__(self, h: jax.Array) -> jax.Array:
    half = max(self.features // 2, 1)
    k = self.kernel_size
    y = MaskedConv(half, (1, 1), 'B', name='reduce')(nn.relu(h))
    y = MaskedConv(half, (k, k), 'B', name='masked')(nn.relu(y))
    y = MaskedConv(self.features, (1, 1), 'B', name='expand')(nn.relu(y))
    return h + y


class PixelCNN(nn.Module):
  r"""The conditionals ``p(x_i | x_<i)`` of every pixel, in one forward pass.

  With ``F = features``, ``Hd = hidden_features``, ``K = num_levels``::

    h = MaskedConv A, first_kernel_size^2 (F)(x')          x' = 2 x / (K - 1) - 1, in [-1, 1]
    h = ResidualBlock(F)(h)                                 num_blocks times
    h = MaskedConv B 1x1 (Hd)(ReLU(h))
    out = MaskedConv B 1x1 (C or C K)(ReLU(h))

  The input is rescaled to ``[-1, 1]`` so that a padded zero (outside the image) differs from
  every pixel value: pixel 1 of the raster order sees only padding, and its conditional is the
  marginal ``p(x_1)``.

  Attributes:
    features: ``F``, channels of the residual stream (the paper's ``2h``).
    num_blocks: residual blocks (0: the type-A layer followed directly by the 1x1 output
      layers).
    hidden_features: channels of the penultimate 1x1 layer.
    first_kernel_size: side of the type-A layer's kernel (the paper's 7).
    kernel_size: side of the type-B kernels inside the blocks (the paper's 3).
    num_levels: ``K``, the number of pixel values: 2 for Bernoulli, ``K > 2`` for a softmax.
  """

  features: int = 64
  num_blocks: int = 4
  hidden_features: int = 64
  first_kernel_size: int = 7
  kernel_size: int = 3
  num_levels: int = 2

  @nn.compact
  def __call__(self, images: jax.Array) -> jax.Array:
    """``(B, H, W, C)`` levels in ``{0, ..., K-1}`` -> logits ``(B, H, W, C)`` if ``K = 2``, else
    ``(B, H, W, C, K)``; the logits at pixel ``i`` depend on the pixels before ``i`` only."""
    if self.num_levels < 2:
      raise ValueError(f'num_levels must be >= 2; got num_levels={self.num_levels}')
    channels = images.shape[-1]
    x = 2.0 * images.astype(jnp.float32) / (self.num_levels - 1) - 1.0
    k = self.first_kernel_size
    h = MaskedConv(self.features, (k, k), 'A', name='input_conv')(x)
    for i in range(self.num_blocks):
      h = ResidualBlock(self.features, self.kernel_size, name=f'block_{i}')(h)
    h = MaskedConv(self.hidden_features, (1, 1), 'B', name='hidden_conv')(nn.relu(h))
    if self.num_levels == 2:
      return MaskedConv(channels, (1, 1), 'B', name='output_conv')(nn.relu(h))
    logits = MaskedConv(channels * self.num_levels, (1, 1), 'B', name='output_conv')(nn.relu(h))
    return logits.reshape((*images.shape, self.num_levels))


# ------------------------------------------------------------------------- likelihood


def check_images(images, *, num_levels: int) -> None:
  """Raises ``ValueError`` unless ``images`` hold integer levels in ``{0, ..., num_levels-1}``.

  A Bernoulli PixelCNN given grayscale data in ``[0, 1]`` would silently compute a cross-entropy,
  not a likelihood; this catches it. Only concrete arrays are checked: under ``jax.jit`` the
  values are unknown and the check is skipped, so a driver should call it on a batch eagerly.
  """
  if isinstance(images, jax.core.Tracer):
    return
  values = np.asarray(images)
  if values.size == 0:
    return
  low, high = float(values.min()), float(values.max())
  if not (np.all(values == np.round(values)) and low >= 0 and high <= num_levels - 1):
    what = 'binary images with values in {0, 1}' if num_levels == 2 else (
        f'integer levels in {{0, ..., {num_levels - 1}}}')
    raise ValueError(f'a PixelCNN with num_levels={num_levels} needs {what}; got values in '
                     f'[{low:g}, {high:g}]' + ('' if np.all(values == np.round(values))
                                               else ', not all integers'))


def bernoulli_nll(logits: jax.Array, images: jax.Array) -> jax.Array:
  r"""Exact NLL per image of binary images under independent Bernoulli conditionals.

  .. math::

     -\log p(x) = \sum_i -x_i \log \sigma(l_i) - (1 - x_i) \log(1 - \sigma(l_i))
                = \sum_i \operatorname{softplus}(l_i) - x_i l_i,

  summed over every axis but the batch axis (``optax.sigmoid_binary_cross_entropy``, finite for
  any finite logit).

  Args:
    logits: ``(B, ...)`` logits ``l_i`` of ``p(x_i = 1 | x_<i)``.
    images: ``(B, ...)`` values in ``{0, 1}``, the same shape.

  Returns:
    ``(B,)`` nats per image.

  Example:
    >>> import jax.numpy as jnp
    >>> # p(x_1 = 1) = 0.5 and p(x_2 = 1) = 0.8, x = (1, 0): -log 0.5 - log 0.2 = log 10
    >>> print(f'{bernoulli_nll(jnp.array([[0.0, jnp.log(4.0)]]), jnp.array([[1.0, 0.0]]))[0]:.4f}')
    2.3026
  """
  per_pixel = optax.sigmoid_binary_cross_entropy(logits, images.astype(logits.dtype))
  return jnp.sum(per_pixel.reshape((per_pixel.shape[0], -1)), axis=-1)


def categorical_nll(logits: jax.Array, images: jax.Array) -> jax.Array:
  r"""Exact NLL per image under ``K``-way softmax conditionals.

  .. math::

     -\log p(x) = \sum_i -\log \operatorname{softmax}(l_i)_{x_i}
                = \sum_i \operatorname{logsumexp}(l_i) - l_{i, x_i}.

  Args:
    logits: ``(B, ..., K)``.
    images: ``(B, ...)`` integer levels in ``{0, ..., K-1}``.

  Returns:
    ``(B,)`` nats per image.
  """
  labels = images.astype(jnp.int32)
  per_pixel = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
  return jnp.sum(per_pixel.reshape((per_pixel.shape[0], -1)), axis=-1)


def nll(model: PixelCNN, params, images: jax.Array) -> jax.Array:
  """``-log p(images)`` in nats, ``(B,)``: one forward pass, then :func:`bernoulli_nll` or
  :func:`categorical_nll`. Raises ``ValueError`` (via :func:`check_images`) for concrete images
  that are not levels of ``model.num_levels``."""
  check_images(images, num_levels=model.num_levels)
  logits = model.apply({'params': params}, images)
  if model.num_levels == 2:
    return bernoulli_nll(logits, images)
  return categorical_nll(logits, images)


def bits_per_dim(nll_nats: jax.Array, *, num_dims: int) -> jax.Array:
  """Nats per image to bits per dimension: ``nll / (D ln 2)`` with ``D = H W C``."""
  return nll_nats / (num_dims * math.log(2.0))


# ------------------------------------------------------------------------------ sampling


@functools.partial(jax.jit, static_argnames=('model', 'num_samples', 'image_shape'))
def sample(model: PixelCNN, params, key: jax.Array, *, num_samples: int,
           image_shape: tuple[int, int, int]) -> jax.Array:
  """Ancestral sampling: ``x_i ~ p(x_i | x_<i)`` for ``i = 1 .. H W`` in raster order.

  A ``lax.fori_loop`` over the ``H W`` pixels; step ``i`` runs the whole network on the canvas
  (pixels ``>= i`` still zero, which the masks never read), takes the conditional at pixel ``i``
  and draws it with ``fold_in(key, i)``; the ``C`` channels of a pixel are drawn together
  (independent given ``x_<i``). ``H W`` forward passes, so ``O(D)`` times the cost of the NLL.

  Args:
    model: the :class:`PixelCNN` (static: one compilation per model and shape).
    params: its parameters.
    key: a PRNG key.
    num_samples: ``N``.
    image_shape: ``(H, W, C)``.

  Returns:
    ``(N, H, W, C)`` float32 levels in ``{0, ..., num_levels-1}``.
  """
  height, width, channels = image_shape

  def draw_pixel(i, canvas):
    row, col = i // width, i % width
    logits = model.apply({'params': params}, canvas)[:, row, col]  # (N, C) or (N, C, K)
    pixel_key = jax.random.fold_in(key, i)
    if model.num_levels == 2:
      values = jax.random.bernoulli(pixel_key, jax.nn.sigmoid(logits))
    else:
      values = jax.random.categorical(pixel_key, logits)
    return canvas.at[:, row, col].set(values.astype(canvas.dtype))

  canvas = jnp.zeros((num_samples, height, width, channels), jnp.float32)
  return lax.fori_loop(0, height * width, draw_pixel, canvas)


# ------------------------------------------------------------------------------ training


def init_params(key: jax.Array, model: PixelCNN, *, image_shape: tuple[int, int, int]):
  """The model's parameters for images of shape ``image_shape = (H, W, C)`` (flax's default
  initializers)."""
  return model.init(key, jnp.zeros((1, *image_shape), jnp.float32))['params']


def objective(model: PixelCNN, *, dynamic_binarization: bool = False) -> game.Objective:
  """The PixelCNN as the one player of :func:`jaxgan.game.make_train_step`: minimize the NLL.

  ``objective(params, state, batch, *, key, shared_key) -> (loss, ({}, metrics))`` with
  ``loss = mean_b -log p(x_b)`` in nats per image. ``batch['x']`` is ``(B, H, W, C)`` levels,
  or, with ``dynamic_binarization=True`` (binary models only), intensities in ``[0, 1]`` that
  are binarized afresh, ``x ~ Bernoulli(batch['x'])`` with ``key`` (the step folds its step
  number into it: "dynamically binarized MNIST"); without it ``key`` is unused. Metrics:
  ``nll`` (nats per image), ``bits_per_dim``; the step adds ``g_loss`` and ``g_grad_norm``.

  Raises:
    ValueError: ``dynamic_binarization`` for a model that is not binary.
  """
  if dynamic_binarization and model.num_levels != 2:
    raise ValueError('dynamic_binarization needs a binary model (num_levels=2); got '
                     f'num_levels={model.num_levels}')

  def loss_fn(params, state, batch, *, key, shared_key):
    del state, shared_key
    images = batch['x']
    if dynamic_binarization:
      images = jax.random.bernoulli(key, images).astype(jnp.float32)
    loss = jnp.mean(nll(model, params, images))
    num_dims = math.prod(images.shape[1:])
    return loss, ({}, {'nll': loss, 'bits_per_dim': bits_per_dim(loss, num_dims=num_dims)})

  return loss_fn
