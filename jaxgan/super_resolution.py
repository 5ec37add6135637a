r"""Single-image super-resolution: SRResNet and SRGAN (Ledig et al. 2016, arXiv:1609.04802).

A generator ``G`` maps a low-resolution image ``I^{LR}`` to a super-resolved ``G(I^{LR})`` of the
high-resolution ``I^{HR}``, ``r`` times larger on each side. SRResNet trains it with a content loss
alone; SRGAN adds an adversarial term from a discriminator ``D`` (the paper's eqs. 3 and 2):

.. math::

   l^{SR} = l^{SR}_X + \lambda\, l^{SR}_{Gen}, \qquad
   l^{SR}_{Gen} = \mathbb{E}[-\log D(G(I^{LR}))], \qquad \lambda = 10^{-3},

   \min_D\ \mathbb{E}[-\log D(I^{HR})] + \mathbb{E}[-\log(1 - D(G(I^{LR})))],

where the content loss :math:`l^{SR}_X` is the pixel MSE (SRResNet-MSE, SRGAN-MSE) or an MSE of
features :math:`\phi` of a fixed network (the paper's VGG losses, eq. 5):
:math:`\operatorname{mean}(\phi(I^{HR}) - \phi(G(I^{LR})))^2`. :func:`feature_mse` takes any
feature function; jaxgan ships the pixel MSE, the features of its MNIST classifier
(:func:`classifier_features`) and, for photographs, VGG19's (:mod:`jaxgan.vgg`, with
torchvision's weights converted to ``.npz``; ``config.loss.content='vgg'``). The MSE-trained
network predicts the blurry mean of every high-resolution image consistent with its input; the
adversarial term pushes G towards one sharp, plausible one (the paper's Figure 3).

Conventions: images are NHWC floats in [-1, 1] (the paper scales HR to [-1, 1]; here LR too, as
the rest of jaxgan). The LR input of the digits is the exact ``r x r`` box average of the HR image
(:func:`downsample_box`, ``r = 4``: 28x28 -> 7x7), not rounded to uint8; papers downsample
with MATLAB's bicubic ``imresize`` instead. Batches are ``{'lr': (B, h, w, C), 'hr': (B, h r,
w r, C)}``; G has no noise and D no dropout, so the objectives use no randomness.

Photographs (``config.data.name='photos'``): the real photographs scikit-image ships inside its
wheel (:data:`PHOTOS`; nothing is downloaded), greyscale ones repeated to RGB. The config fixes the
split: ``data.test_images`` (default :data:`SET3`: astronaut, coffee, chelsea) are held out whole,
each cropped to a multiple of the scale; training batches are random ``task.crop_size`` squares
(96x96, 24x24 inputs at x4, the paper's) of ``data.train_images`` (:func:`photo_source`).
"""

from __future__ import annotations

import functools
import numbers
import os
from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

from jaxgan import (
  checkpoint,
  faults,
  game,
  gan,
  layers,
  loop,
  losses,
  metrics,
  train,
  vgg,
  visualize,
)
from jaxgan import data as data_lib
from jaxgan.eval import classifier

SYSTEMS = ('srresnet', 'srgan')
OUTPUTS = ('tanh', 'linear', 'bicubic_residual')

# The photographs inside scikit-image's wheel (skimage.data; loaded from the installed package,
# none downloaded), by their skimage.data function names: RGB, then greyscale.
PHOTOS = ('astronaut', 'chelsea', 'coffee', 'rocket', 'hubble_deep_field', 'immunohistochemistry',
          'retina', 'colorwheel', 'camera', 'moon', 'coins', 'page', 'text', 'brick', 'grass',
          'gravel', 'cell')
# The held-out photographs ("Set3"), and the training photographs: all the others.
SET3 = ('astronaut', 'coffee', 'chelsea')
PHOTO_TRAIN = tuple(name for name in PHOTOS if name not in SET3)
DATASETS = (*sorted(data_lib.IMAGE_SHAPES), 'photos')

ContentLoss = Callable[[jax.Array, jax.Array], jax.Array]
FeatureFn = Callable[[jax.Array], jax.Array]


# Resampling: the degradation and the baselines.


def _check_nhwc(fn: str, x) -> jax.Array:
  x = jnp.asarray(x)
  if x.ndim != 4:
    raise ValueError(f'{fn}: x must have shape (B, H, W, C), got shape {x.shape}')
  return x


def _check_factor(fn: str, factor) -> int:
  if isinstance(factor, bool) or not isinstance(factor, numbers.Integral) or factor < 1:
    raise ValueError(f'{fn}: factor must be an int >= 1, got factor={factor!r}')
  return int(factor)


def downsample_box(x: jax.Array, factor: int) -> jax.Array:
  r"""Exact ``factor x factor`` box average: ``(B, H, W, C) -> (B, H / r, W / r, C)``, NHWC.

  .. math::
    \text{out}[b, i, j, c] = \frac{1}{r^2} \sum_{0 \le p, q < r} x[b,\ i r + p,\ j r + q,\ c]

  Each output pixel is the mean of its own ``r x r`` block (no overlap, no border effects): the
  area resampling of a sensor with ``r x r`` larger pixels, and the low-resolution input of the
  digit task (28x28 -> 7x7 with ``r = 4``).

  Args:
    x: ``(B, H, W, C)`` with ``H`` and ``W`` divisible by ``factor``.
    factor: the downscaling factor ``r``, an int ``>= 1``.

  Returns:
    ``(B, H // factor, W // factor, C)``, in ``x``'s dtype.

  Raises:
    ValueError: for an input that is not 4-D, a factor that is not an int ``>= 1``, or a side not
      divisible by it.

  Example:
    >>> import jax.numpy as jnp
    >>> downsample_box(jnp.arange(16.).reshape(1, 4, 4, 1), 2)[0, :, :, 0]
    Array([[ 2.5,  4.5],
           [10.5, 12.5]], dtype=float32)
  """
  x = _check_nhwc('downsample_box', x)
  r = _check_factor('downsample_box', factor)
  batch, height, width, channels = x.shape
  if height % r or width % r:
    raise ValueError(f'downsample_box: image size {height}x{width} is not divisible by '
                     f'factor={r}')
  blocks = x.reshape(batch, height // r, r, width // r, r, channels)
  return jnp.mean(blocks, axis=(2, 4)).astype(x.dtype)


def _resize(fn: str, x, factor: int, method: str) -> jax.Array:
  x = _check_nhwc(fn, x)
  r = _check_factor(fn, factor)
  batch, height, width, channels = x.shape
  return jax.image.resize(x, (batch, height * r, width * r, channels), method=method)


def upsample_nearest(x: jax.Array, factor: int) -> jax.Array:
  """Nearest-neighbour upsampling by ``factor``: each pixel becomes an ``r x r`` block.

  ``out[b, i, j, c] = x[b, i // r, j // r, c]``, i.e.
  ``np.repeat(np.repeat(x, r, axis=1), r, axis=2)``, computed by
  ``jax.image.resize(..., method='nearest')``. ``(B, H, W, C) -> (B, H r, W r, C)``.
  """
  return _resize('upsample_nearest', x, factor, 'nearest')


def upsample_bicubic(x: jax.Array, factor: int) -> jax.Array:
  r"""Bicubic upsampling by ``factor``: ``jax.image.resize(..., method='cubic')``.

  Output pixel ``j`` (per axis) samples the input at ``s = (j + 1/2) / r - 1/2`` (pixel centres
  aligned, as every image library does) with the separable cubic convolution kernel of Keys
  (1981) with ``a = -0.5``,

  .. math::
    k(t) = \begin{cases} (a + 2)|t|^3 - (a + 3)|t|^2 + 1 & |t| \le 1 \\
                         a|t|^3 - 5a|t|^2 + 8a|t| - 4a & 1 < |t| < 2 \\
                         0 & \text{otherwise,} \end{cases}

  which reproduces constant and linear images exactly wherever all four taps of a sample lie in
  the image. MATLAB's ``imresize(x, r, 'bicubic')``, which super-resolution papers use for their
  bicubic baseline and to make their low-resolution inputs, has the same kernel and sampling
  positions but differs in three ways: at the borders jax drops the taps that fall outside the
  image and renormalizes the rest (a constant stays constant, a ramp bends), where MATLAB pads
  symmetrically (repeating the edge pixels); when *down*sampling MATLAB widens the kernel by the
  factor (antialiasing; jax's ``antialias=True`` does too, but this module downsamples by
  :func:`downsample_box`, and upsampling needs no antialiasing, so none is applied here); and
  MATLAB's ``uint8`` output is rounded and clipped, where this one is neither and may overshoot
  [-1, 1] near edges (``jnp.clip(y, -1, 1)`` before comparing it with an image).
  ``(B, H, W, C) -> (B, H r, W r, C)``.
  """
  return _resize('upsample_bicubic', x, factor, 'cubic')


# The generator (SRResNet) and the discriminator.


def upsampling_steps(scale: int) -> int:
  """The number of x2 sub-pixel upsampling blocks of a x``scale`` generator: ``log2(scale)``.

  Raises:
    ValueError: unless ``scale`` is a power of 2, ``>= 2`` (2, 4, 8, ...).
  """
  if (isinstance(scale, bool) or not isinstance(scale, numbers.Integral) or scale < 2
      or scale & (scale - 1)):
    raise ValueError(f'the scale factor must be a power of 2 (2, 4, 8, ...), got {scale!r}')
  return int(scale).bit_length() - 1


class PReLU(nn.Module):
  """Parametric ReLU with one learned slope per channel (He et al. 2015, arXiv:1502.01852).

  ``y = x`` for ``x >= 0`` and ``a_c x`` otherwise, ``a`` of shape ``(C,)`` (the last axis),
  initialized to 0.25 as in that paper (and PyTorch's ``nn.PReLU``). ``flax.linen.PReLU`` learns
  a single slope shared by all channels; this is the channel-wise one SRResNet uses.
  """

  negative_slope_init: float = 0.25

  @nn.compact
  def __call__(self, x):
    slope = self.param('negative_slope', nn.initializers.constant(self.negative_slope_init),
                       (x.shape[-1],))
    return jnp.where(x >= 0, x, slope.astype(x.dtype) * x)


class SRResNet(nn.Module):
  """SRResNet, the generator of SRGAN (arXiv:1609.04802, Figure 4, top).

  With ``F = features``, ``B = num_blocks``, BN batch norm and all convolutions stride 1,
  ``'SAME'``::

    h0 = PReLU(Conv 9x9 (F)(x))                               h x w x F
    h  = h0; B times: h = h + BN(Conv 3x3 (F)(PReLU(BN(Conv 3x3 (F)(h)))))
    h  = h0 + BN(Conv 3x3 (F)(h))                              the long skip
    log2(scale) times: h = PReLU(pixel_shuffle(Conv 3x3 (4F)(h), 2))   x2 per block
    y  = tanh(Conv 9x9 (C)(h))                                 h r x w r x C
    (or y = Conv 9x9 (C)(h), or y = upsample_bicubic(x, r) + Conv 9x9 (C)(h): ``output``)

  The residual blocks run at the low resolution and the sub-pixel convolutions
  (:func:`jaxgan.layers.pixel_shuffle`, arXiv:1609.05158) learn the upsampling. The output is
  ``tanh`` (``output='tanh'``, the default: targets are in [-1, 1] and so is every output);
  Figure 4 draws no output activation, and ``output='linear'`` leaves the last convolution's
  output unbounded, as it does. ``output='bicubic_residual'`` (not the paper's: VDSR's global
  residual, Kim et al. 2016, arXiv:1511.04587) adds the last convolution to the bicubic
  upsampling of the input (:func:`upsample_bicubic`; the input's channels must equal
  ``channels``) and starts that convolution at zero, so that G at initialization *is* bicubic
  and learns only the detail bicubic misses: what a short CPU budget can train on photographs.
  Convolutions followed by BN carry no bias (BN's shift replaces it). Batch norm: batch
  statistics with ``train=True`` (``mutable=['batch_stats']``; see :func:`jaxgan.gan.apply_model`),
  running averages (momentum 0.9) with ``train=False``.

  The defaults are the paper's (``F = 64``, ``B = 16``); the digit configs use a smaller G.

  Attributes:
    channels: channels ``C`` of the output image (1 for digits, 3 for photographs).
    scale: the upscaling factor ``r``, a power of 2 (:func:`upsampling_steps`).
    features: the width ``F``.
    num_blocks: residual blocks ``B``.
    output: ``'tanh'``, ``'linear'`` or ``'bicubic_residual'`` (:data:`OUTPUTS`).
    axis_name: device axis for synchronized batch norm (data parallel), or None.
  """

  channels: int = 3
  scale: int = 4
  features: int = 64
  num_blocks: int = 16
  output: str = 'tanh'
  axis_name: str | None = None

  @nn.compact
  def __call__(self, x, *, train: bool):
    """``(B, h, w, C_in)`` in [-1, 1] -> ``(B, h r, w r, channels)``."""
    steps = upsampling_steps(self.scale)
    if self.output not in OUTPUTS:
      raise ValueError(f'unknown output {self.output!r}; expected one of {list(OUTPUTS)}')
    f = self.features
    conv = lambda channels, size, name, bias=True: nn.Conv(
        channels, (size, size), padding='SAME', use_bias=bias, name=name)
    norm = lambda name: nn.BatchNorm(use_running_average=not train, momentum=0.9,
                                     axis_name=self.axis_name if train else None, name=name)

    h0 = PReLU(name='head_prelu')(conv(f, 9, 'head')(x))
    h = h0
    for i in range(self.num_blocks):
      r = PReLU(name=f'block{i}_prelu')(norm(f'block{i}_norm1')(
          conv(f, 3, f'block{i}_conv1', bias=False)(h)))
      h = h + norm(f'block{i}_norm2')(conv(f, 3, f'block{i}_conv2', bias=False)(r))
    h = h0 + norm('trunk_norm')(conv(f, 3, 'trunk', bias=False)(h))
    for i in range(steps):
      h = layers.pixel_shuffle(conv(4 * f, 3, f'up{i}')(h), 2)
      h = PReLU(name=f'up{i}_prelu')(h)
    if self.output == 'bicubic_residual':
      if x.shape[-1] != self.channels:
        raise ValueError(f"output='bicubic_residual' needs an input of {self.channels} channels "
                         f'(the output\'s), got input {x.shape}')
      detail = nn.Conv(self.channels, (9, 9), padding='SAME', name='out',
                       kernel_init=nn.initializers.zeros)(h)
      return upsample_bicubic(x, self.scale) + detail
    y = conv(self.channels, 9, 'out')(h)
    return jnp.tanh(y) if self.output == 'tanh' else y


class SRGANDiscriminator(nn.Module):
  """The VGG-style discriminator of SRGAN (arXiv:1609.04802, Figure 4, bottom).

  With ``F = features``, ``S = num_stages``, LReLU ``leaky_relu(0.2)``, 3x3 ``'SAME'``
  convolutions::

    Conv 3x3/1 (F) -> LReLU                     (no batch norm on the first layer)
    Conv 3x3/2 (F) -> BN -> LReLU
    for s = 1 .. S-1: [Conv 3x3/1 (F 2^s) -> BN -> LReLU, Conv 3x3/2 (F 2^s) -> BN -> LReLU]
    flatten -> Dense(dense_features) -> LReLU -> Dense(1)

  Strides alternate 1, 2 and the features double at every stage: ``F = 64, S = 4,
  dense_features = 1024`` (the defaults) is the paper's eight convolutions, 64 to 512 features,
  for 96x96 crops (6x6x512 before the dense layers). Scaled for 28x28 digits (the configs'
  ``S = 2``): 28 -> 14 -> 7, then the dense layers. Outputs logits ``(B, 1)``, never probabilities
  (the losses apply the sigmoid). Convolutions followed by BN carry no bias.

  Attributes:
    features: channels ``F`` of the first stage.
    num_stages: stride-2 convolutions ``S`` (each halves the size, rounding up).
    dense_features: width of the hidden dense layer.
    axis_name: device axis for synchronized batch norm, or None.
  """

  features: int = 64
  num_stages: int = 4
  dense_features: int = 1024
  axis_name: str | None = None

  @nn.compact
  def __call__(self, x, *, train: bool):
    """``(B, H, W, C)`` in [-1, 1] -> logits ``(B, 1)``."""
    if self.num_stages < 1:
      raise ValueError(f'num_stages must be >= 1, got {self.num_stages}')
    lrelu = lambda h: nn.leaky_relu(h, negative_slope=0.2)

    def conv_norm(h, channels, stride, name):
      h = nn.Conv(channels, (3, 3), strides=(stride, stride), padding='SAME', use_bias=False,
                  name=name)(h)
      return lrelu(nn.BatchNorm(use_running_average=not train, momentum=0.9,
                                axis_name=self.axis_name if train else None,
                                name=f'{name}_norm')(h))

    h = lrelu(nn.Conv(self.features, (3, 3), padding='SAME', name='conv0')(x))
    h = conv_norm(h, self.features, 2, 'conv0_down')
    for s in range(1, self.num_stages):
      h = conv_norm(h, self.features * 2**s, 1, f'conv{s}')
      h = conv_norm(h, self.features * 2**s, 2, f'conv{s}_down')
    h = lrelu(nn.Dense(self.dense_features, name='dense')(h.reshape((h.shape[0], -1))))
    return nn.Dense(1, name='logits')(h)


# Content losses.


def feature_mse(features: FeatureFn) -> ContentLoss:
  r"""The content loss of a feature function ``phi``:
  ``loss(sr, hr) = mean((phi(sr) - phi(hr))^2)``, a scalar.

  The mean is over every element of the features (batch, positions, channels). The paper's VGG
  loss (eq. 5) sums over channels and averages over positions, i.e. it is this times the number
  of channels (and its features are further divided by 12.75); a loss weight absorbs the factor.
  ``phi`` must be a jax function (it is differentiated through); it is applied to the target as
  well, whose gradient nobody takes. :func:`pixel_mse` is ``phi = identity``.

  Args:
    features: ``(B, H, W, C)`` images in [-1, 1] -> features of any shape with leading axis B.

  Returns:
    ``content_loss(sr, hr) -> ()``.
  """

  def loss(sr, hr):
    return jnp.mean(jnp.square(features(sr) - lax.stop_gradient(features(hr))))

  return loss


def pixel_mse(sr: jax.Array, hr: jax.Array) -> jax.Array:
  """The pixel-wise MSE content loss (the paper's eq. 4, SRResNet's loss): ``mean((sr - hr)^2)``
  over all elements; on [-1, 1] images, 4x the MSE of [0, 1] ones."""
  return jnp.mean(jnp.square(sr - hr))


# The feature maps of jaxgan.eval.classifier.LeNet a content loss can use, named after the
# paper's phi_{i,j} ("after activation, before the i-th max-pooling"): conv1 (28x28x32, before
# the first pool), conv2 (14x14x64, before the second pool: the last one, the analogue of
# VGG54), features (the 64-d penultimate layer, the one classifier FID reads).
CLASSIFIER_LAYERS = ('conv1', 'conv2', 'features')


def classifier_features(dataset: str = 'mnist', *, layer: str = 'conv2') -> FeatureFn:
  """A jax feature function of the classifier jaxgan ships for ``dataset``
  (:mod:`jaxgan.eval.classifier`), for :func:`feature_mse`.

  ``phi(x)``: images ``(B, 28, 28, 1)`` in [-1, 1] -> the ReLU activations of ``layer`` (one of
  :data:`CLASSIFIER_LAYERS`): ``'conv1'`` ``(B, 28, 28, 32)``, ``'conv2'`` ``(B, 14, 14, 64)``,
  ``'features'`` ``(B, 64)``, the same features as :func:`jaxgan.eval.classifier.extractor`'s.
  The weights are constants of the returned function (no gradient reaches them).

  Raises:
    ValueError: for an unknown ``layer``, or a ``dataset`` jaxgan ships no classifier for.
  """
  if layer not in CLASSIFIER_LAYERS:
    raise ValueError(f'unknown classifier layer {layer!r}; expected one of '
                     f'{list(CLASSIFIER_LAYERS)}')
  path = classifier.weights_dir(dataset)
  if not classifier.is_shipped(dataset):
    raise ValueError(f'jaxgan ships no classifier for {dataset!r} (nothing in {path}); train one '
                     f'with python -m jaxgan.eval.train_classifier --dataset={dataset}, or use '
                     f"config.loss.content='mse'")
  model, params, _ = classifier.load(path)
  params = jax.tree.map(jnp.asarray, params)
  module = {'conv1': 'Conv_0', 'conv2': 'Conv_1'}.get(layer)

  def phi(x):
    if module is None:
      return model.apply({'params': params}, x)[0]
    _, state = model.apply({'params': params}, x, capture_intermediates=True,
                           mutable=['intermediates'])
    return nn.relu(state['intermediates'][module]['__call__'][0])

  return phi


CONTENT_LOSSES = ('mse', 'classifier', 'vgg')


def vgg_features(path: str, *, layer: str = 'relu5_4', scale: float = 1.0) -> FeatureFn:
  """``phi(x) = scale * VGG19_layer(x)``: the features of :class:`jaxgan.vgg.VGG19` with the
  weights of the converted ``.npz`` at ``path`` (:func:`jaxgan.vgg.load_params`), for
  :func:`feature_mse`. ``layer='relu5_4'`` is the paper's VGG54, ``'relu2_2'`` its VGG22.

  ``scale`` multiplies the features before the MSE: the paper divides its (Caffe) VGG's features,
  computed on 0-255 inputs, by 12.75 to bring the loss to the MSE's order; torchvision's network
  takes normalized inputs (about 1/57 of those), so its features start smaller.

  Raises:
    ValueError: with the command that makes the file, when there is none at ``path``.
  """
  try:
    params = vgg.load_params(path, layer=layer)
  except FileNotFoundError as e:
    raise ValueError(str(e)) from None
  phi = vgg.features(params, layer=layer)
  return lambda x: scale * phi(x)


def content_loss(config) -> ContentLoss:
  """The content loss ``config.loss.content`` names: ``'mse'`` (:func:`pixel_mse`),
  ``'classifier'`` (:func:`feature_mse` of :func:`classifier_features` for ``config.data.name``
  at ``config.loss.classifier_layer``) or ``'vgg'`` (:func:`feature_mse` of
  :func:`vgg_features` of ``config.loss.vgg_weights`` at ``config.loss.vgg_layer``, times
  ``config.loss.vgg_scale``)."""
  name = config.loss.content
  if name == 'mse':
    return pixel_mse
  if name == 'classifier':
    return feature_mse(classifier_features(config.data.name, layer=config.loss.classifier_layer))
  if name == 'vgg':
    return feature_mse(vgg_features(config.loss.vgg_weights, layer=config.loss.vgg_layer,
                                    scale=config.loss.vgg_scale))
  raise ValueError(f'unknown content loss config.loss.content={name!r}; expected one of '
                   f'{list(CONTENT_LOSSES)}')


# The game: objectives for jaxgan.game.make_train_step.


def discriminator_objective(generator: nn.Module, discriminator: nn.Module, *,
                            d_loss_fn=losses.minimax_discriminator_loss) -> game.Objective:
  """D's objective: ``d_loss_fn(D(hr), D(G(lr)))`` (the paper's: the standard GAN loss,
  ``softplus(-D(hr)) + softplus(D(G(lr)))`` as a mean over the batch).

  G runs in training mode (batch statistics; its updated statistics are dropped) and its output
  is held constant. D sees the real batch, then the fake one (two batches, as
  :func:`jaxgan.gan.make_discriminator_loss`), its running statistics updated by both in turn;
  they are the returned model state. Metrics ``d_real``/``d_fake``: mean ``sigmoid`` of the
  logits (the raw mean for losses that use none).
  """
  show = jax.nn.sigmoid if gan.reports_probabilities(d_loss_fn) else (lambda v: v)

  def objective(d_params, state: game.GANState, batch, *, key, shared_key):
    del key, shared_key  # Nothing here is random.
    sr, _ = gan.apply_model(generator, state.g_params, state.g_batch_stats, batch['lr'],
                            train=True)
    sr = lax.stop_gradient(sr)
    real_logits, d_stats = gan.apply_model(discriminator, d_params, state.d_batch_stats,
                                           batch['hr'], train=True)
    fake_logits, d_stats = gan.apply_model(discriminator, d_params, d_stats, sr, train=True)
    metrics_ = {'d_real': jnp.mean(show(real_logits)), 'd_fake': jnp.mean(show(fake_logits))}
    return d_loss_fn(real_logits, fake_logits), (d_stats, metrics_)

  return objective


def no_discriminator_objective(d_params, state: game.GANState, batch, *, key, shared_key):
  """SRResNet's D: no parameters (``d_params = {}``) and a loss that is the constant 0.

  With it :func:`jaxgan.game.make_train_step` runs the one-player game: D's gradient is an empty
  pytree, its optimizer is ``optax.set_to_zero()`` (no state), and no network is evaluated, so
  the compiled step is G's update alone (``d_loss = d_grad_norm = 0`` in the metrics). This
  keeps SRResNet on the same step, driver, checkpoints and resume as every game, with nothing
  added to the step; ``num_d_steps=0`` is refused by the step, and a real D with a zero weight
  would still be trained.
  """
  del d_params, state, batch, key, shared_key
  return jnp.zeros(()), ({}, {})


def generator_objective(generator: nn.Module, discriminator: nn.Module | None, *,
                        content_loss: ContentLoss = pixel_mse, adversarial_weight: float = 1e-3,
                        g_loss_fn=losses.non_saturating_generator_loss) -> game.Objective:
  r"""G's objective, the paper's perceptual loss (eq. 3):
  ``content_loss(G(lr), hr) + adversarial_weight * g_loss_fn(D(G(lr)))``.

  The paper's adversarial loss (eq. 6) is :math:`-\log D(G(I^{LR}))`, the non-saturating
  ``softplus(-logit)``, with ``adversarial_weight = 1e-3``. ``adversarial_weight = 0`` is
  SRResNet: D is not evaluated (``discriminator`` may be None) and ``g_gan`` is reported as 0.
  G runs in training mode and returns its new batch statistics; D runs in training mode on the
  fakes with its statistics left unchanged. Metrics: ``content``, ``g_gan`` (the unweighted
  adversarial loss) and ``psnr`` (the batch's mean :func:`jaxgan.metrics.psnr`, in dB, of the
  training-mode output).
  """
  if adversarial_weight < 0:
    raise ValueError(f'adversarial_weight must be >= 0, got {adversarial_weight}')
  if adversarial_weight and discriminator is None:
    raise ValueError(f'adversarial_weight={adversarial_weight} needs a discriminator')

  def objective(g_params, state: game.GANState, batch, *, key, shared_key):
    del key, shared_key  # Nothing here is random.
    hr = batch['hr']
    sr, g_stats = gan.apply_model(generator, g_params, state.g_batch_stats, batch['lr'],
                                  train=True)
    content = content_loss(sr, hr)
    adversarial = jnp.zeros(())
    if adversarial_weight:
      fake_logits, _ = gan.apply_model(discriminator, state.d_params, state.d_batch_stats, sr,
                                       train=True)
      adversarial = g_loss_fn(fake_logits)
    psnr = jnp.mean(metrics.psnr(lax.stop_gradient(sr), hr))
    return content + adversarial_weight * adversarial, (
        g_stats, {'content': content, 'g_gan': adversarial, 'psnr': psnr})

  return objective


def super_resolve(generator: nn.Module, g_params, g_batch_stats, lr: jax.Array) -> jax.Array:
  """``G(lr)`` at test time, batch norm on its running averages:
  ``(B, h, w, C) -> (B, h r, w r, C)``."""
  return gan.apply_model(generator, g_params, g_batch_stats, lr, train=False)[0]


# A system from a config.


def has_discriminator(config) -> bool:
  """Whether the run trains a D: SRGAN's ``config.loss.adversarial_weight > 0``."""
  return config.loss.adversarial_weight > 0


def validate(config, *, num_devices: int | None = None) -> None:
  """One-line ``ValueError`` for a bad super-resolution config, before anything is loaded or
  compiled.

  Checks ``config.trainer`` (one of :data:`SYSTEMS`; ``'srresnet'`` has no adversarial term), the
  dataset (for ``'photos'`` also the split, :func:`check_photo_split`), that ``task.scale`` is a
  power of 2 that divides the target size and that ``task.lr_size * task.scale`` is the target
  size (the image, or the photos' ``task.crop_size``), every ``config.loss`` weight ``>= 0``, the
  content loss (one of :data:`CONTENT_LOSSES`; the classifier's needs one shipped for the
  dataset and a known layer, VGG's a known layer and its weight file), ``model.output``, the
  batch size (divisible by the devices when data parallel), the step intervals and
  ``train.init_g_from``. (A photo smaller than the crop is found when the photos load.)
  """
  trainer = config.get('trainer')
  if trainer not in SYSTEMS:
    raise ValueError(f'config.trainer={trainer!r} is not a super-resolution system; expected '
                     f'one of {list(SYSTEMS)}')
  if config.data.name not in DATASETS:
    raise ValueError(f'config.data.name={config.data.name!r} is not an image dataset; expected '
                     f'one of {list(DATASETS)}')
  photos = config.data.name == 'photos'
  if photos:
    check_photo_split(config.data.train_images, config.data.test_images)
    if config.task.crop_size < 1:
      raise ValueError(f'config.task.crop_size={config.task.crop_size} must be >= 1')
  height, width, channels = target_shape(config)
  scale, lr_size = config.task.scale, config.task.lr_size
  what = (f'the {height}x{width} training crops (config.task.crop_size={height})' if photos
          else f'the {height}x{width} images of {config.data.name!r}')
  target = what if photos else f'the {height}x{width} target images of {config.data.name!r}'
  try:
    upsampling_steps(scale)
  except ValueError as e:
    raise ValueError(f'config.task.scale={scale!r}: {e}') from None
  if height % scale or width % scale:
    raise ValueError(f'config.task.scale={scale}: {what} are not divisible by it')
  if lr_size * scale != height or lr_size * scale != width:
    raise ValueError(f'config.task.lr_size={lr_size} times config.task.scale={scale} is '
                     f'{lr_size * scale}, not {target}')
  for name, value in config.loss.items():
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
      raise ValueError(f'config.loss.{name}={value} must be >= 0')
  if trainer == 'srresnet' and config.loss.adversarial_weight:
    raise ValueError(f'config.loss.adversarial_weight={config.loss.adversarial_weight}: '
                     f"SRResNet trains on the content loss alone; the adversarial term is "
                     f"SRGAN's (config.trainer='srgan')")
  if config.loss.content not in CONTENT_LOSSES:
    raise ValueError(f'unknown content loss config.loss.content={config.loss.content!r}; '
                     f'expected one of {list(CONTENT_LOSSES)}')
  if config.loss.content == 'classifier':
    if config.loss.classifier_layer not in CLASSIFIER_LAYERS:
      raise ValueError(f'config.loss.classifier_layer={config.loss.classifier_layer!r} is not '
                       f'a layer of the classifier; expected one of {list(CLASSIFIER_LAYERS)}')
    path = classifier.weights_dir(config.data.name)
    if (height, width, channels) != classifier.IMAGE_SHAPE or not classifier.is_shipped(
        config.data.name):
      raise ValueError(f"config.loss.content='classifier': jaxgan ships no classifier for "
                       f"{config.data.name!r} (nothing in {path}); use config.loss.content="
                       f"'mse', or train one with python -m jaxgan.eval.train_classifier")
  if config.loss.content == 'vgg':
    if config.loss.vgg_layer not in vgg.LAYERS:
      raise ValueError(f'config.loss.vgg_layer={config.loss.vgg_layer!r} is not a VGG19 layer; '
                       f"expected one of {list(vgg.LAYERS)} (the paper's VGG54 is 'relu5_4', "
                       f"VGG22 'relu2_2')")
    path = config.loss.vgg_weights
    if not path or not os.path.isfile(path):
      raise ValueError(f"config.loss.content='vgg': no VGG19 weights at config.loss.vgg_weights="
                       f"{path!r}; convert torchvision's vgg19-dcbb9e9d.pth with python -m "
                       f"jaxgan.vgg --torch_weights=vgg19-dcbb9e9d.pth --out=vgg19.npz (needs "
                       f"torch) and pass --config.loss.vgg_weights=vgg19.npz, or use "
                       f"config.loss.content='mse'")
  if config.model.output not in OUTPUTS:
    raise ValueError(f'config.model.output={config.model.output!r} is not allowed; expected '
                     f'one of {list(OUTPUTS)}')
  t = config.train
  train.check_driver_fields(config)
  if t.eval_every < 0 or t.num_eval < 1:
    raise ValueError(f'config.train.eval_every={t.eval_every} must be >= 0 and '
                     f'config.train.num_eval={t.num_eval} >= 1')
  if t.parallel != 'none':
    devices = num_devices or len(jax.local_devices())
    if t.batch_size % devices:
      raise ValueError(f'config.train.batch_size={t.batch_size} is not divisible by the '
                       f'{devices} devices of config.train.parallel={t.parallel!r}')
  if t.init_g_from and not os.path.isdir(os.path.join(t.init_g_from, 'checkpoints')):
    raise ValueError(f'config.train.init_g_from={t.init_g_from!r} holds no checkpoints/ (it '
                     f'should be the workdir of an SRResNet run)')


def base_config(trainer: str, data_name: str = 'mnist'):
  """The super-resolution config of ``configs/srresnet_*.py`` / ``configs/srgan_*.py``: x4 on
  ``data_name``'s 28x28 images (7x7 inputs), scaled from the paper to a CPU.

  G: :class:`SRResNet` with ``features=32, num_blocks=4`` (the paper's 64, 16), tanh output.
  D (SRGAN): :class:`SRGANDiscriminator` with ``d_features=32, d_stages=2, d_dense=256`` (the
  paper's 64, 4, 1024 for 96x96). Loss: pixel MSE content loss; ``adversarial_weight`` 0 for
  ``'srresnet'``, the paper's 1e-3 for ``'srgan'``; the standard GAN loss (non-saturating G).
  Adam 1e-4 with beta1 = 0.9 for both players (the paper's), batch 64, 3,000 steps.

  ``data_name='photos'``: the paper's 96x96 crops (24x24 inputs) of :data:`PHOTO_TRAIN`,
  tested on :data:`SET3`; the paper's batch of 16; D with four stride-2 stages (96 -> 6, as the
  paper's) but ``d_features=32, d_dense=256``; G as above. The configs
  ``configs/sr*_photos.py`` set their own sizes.
  """
  import ml_collections

  if trainer not in SYSTEMS:
    raise ValueError(f'unknown trainer {trainer!r}; expected one of {list(SYSTEMS)}')
  photos = data_name == 'photos'
  config = ml_collections.ConfigDict()
  # 'srresnet' (content loss alone, no D) or 'srgan' (content + adversarial, the VGG-style D).
  config.trainer = trainer
  config.seed = 0
  config.data = ml_collections.ConfigDict({'name': data_name, 'download': False})
  # A TFDS data_dir holding the prepared dataset (None: TFDS's default; unused by 'photos').
  config.data.data_dir = ml_collections.config_dict.placeholder(str)
  if photos:
    # scikit-image's bundled photographs (PHOTOS): random crops of the first, the second whole.
    config.data.train_images = PHOTO_TRAIN
    config.data.test_images = SET3
  # The upscaling factor (a power of 2) and the side of the low-resolution input (28 / 4 = 7).
  config.task = ml_collections.ConfigDict({'scale': 4, 'lr_size': 7})
  if photos:
    # The side of the square training crops (the paper's 96) and of their inputs (96 / 4).
    config.task.update({'crop_size': 96, 'lr_size': 24})
  config.model = ml_collections.ConfigDict({
      # G: width, residual blocks, output head ('tanh', 'linear' or 'bicubic_residual': bicubic
      # upsampling plus a learned detail that starts at zero).
      'features': 32, 'num_blocks': 4, 'output': 'tanh',
      # D (SRGAN only): first-stage width, stride-2 stages, hidden dense width.
      'd_features': 32, 'd_stages': 2, 'd_dense': 256})
  config.loss = ml_collections.ConfigDict({
      # 'mse' (pixels) or 'classifier' (features of jaxgan's shipped classifier; MNIST only).
      'content': 'mse',
      # The classifier layer of a 'classifier' content loss (CLASSIFIER_LAYERS).
      'classifier_layer': 'conv2',
      # A 'vgg' content loss: the converted torchvision VGG19 weights (python -m jaxgan.vgg),
      # the layer (the paper's VGG54 'relu5_4', VGG22 'relu2_2') and a factor on the features.
      'vgg_weights': '', 'vgg_layer': 'relu5_4', 'vgg_scale': 1.0,
      # lambda of the paper's eq. 3 (1e-3); 0 trains no D.
      'adversarial_weight': 1e-3 if trainer == 'srgan' else 0.0,
      # The GAN loss family (jaxgan.losses.get_loss_pair); the paper's is 'non_saturating'.
      'name': 'non_saturating'})
  config.train = ml_collections.ConfigDict({
      'num_steps': 3000, 'batch_size': 64, 'g_lr': 1e-4, 'd_lr': 1e-4, 'b1': 0.9, 'b2': 0.999,
      'log_every': 100, 'sample_every': 1000, 'checkpoint_every': 1000, 'keep_checkpoints': 2,
      # Test images in the samples strips; PSNR/SSIM of the first num_eval test images every
      # eval_every steps (0: never).
      'num_samples': 8, 'eval_every': 0, 'num_eval': 1000,
      'parallel': 'none', 'on_nonfinite': 'stop', 'chunk_mode': 'auto',
      # The workdir of an SRResNet run whose latest G (weights and batch statistics) starts
      # this run's G, as the paper starts SRGAN; '' starts from random weights.
      'init_g_from': ''})
  if photos:
    config.model.d_stages = 4
    config.train.batch_size = 16
  return config


def build_models(config, *, axis_name: str | None = None
                 ) -> tuple[SRResNet, SRGANDiscriminator | None]:
  """G and D of ``config.model`` for ``config.data``'s images; D is None when the run trains
  none (:func:`has_discriminator`)."""
  channels = target_shape(config)[-1]
  m = config.model
  generator = SRResNet(channels=channels, scale=config.task.scale, features=m.features,
                       num_blocks=m.num_blocks, output=m.output, axis_name=axis_name)
  discriminator = None
  if has_discriminator(config):
    discriminator = SRGANDiscriminator(features=m.d_features, num_stages=m.d_stages,
                                       dense_features=m.d_dense, axis_name=axis_name)
  return generator, discriminator


def optimizers(config) -> tuple[optax.GradientTransformation, optax.GradientTransformation]:
  """Adam for G and D with ``train.g_lr``, ``train.d_lr``, ``train.b1``, ``train.b2`` (the
  paper's: 1e-4, beta1 = 0.9); D's is ``optax.set_to_zero()`` when there is no D."""
  t = config.train
  g_opt = optax.adam(t.g_lr, b1=t.b1, b2=t.b2)
  if not has_discriminator(config):
    return g_opt, optax.set_to_zero()
  return g_opt, optax.adam(t.d_lr, b1=t.b1, b2=t.b2)


def _load_generator(workdir: str, like_params, like_stats):
  """``(g_params, g_batch_stats)`` of the latest checkpoint in ``workdir``, checked against the
  structure and shapes this config builds."""
  step, arrays = checkpoint.load(workdir)
  loaded = {'g_params': arrays['g_params'], 'g_batch_stats': arrays.get('g_batch_stats', {})}
  like = {'g_params': like_params, 'g_batch_stats': like_stats}
  shapes = lambda tree: jax.tree.map(lambda a: (tuple(np.shape(a)), str(np.asarray(a).dtype)),
                                     tree)
  if shapes(loaded) != shapes(like):
    raise ValueError(f"config.train.init_g_from={workdir!r}: the generator of its step {step} "
                     f"checkpoint differs from this config's (use the model.features, "
                     f"model.num_blocks, task.scale and data.name of that run)")
  return jax.tree.map(jnp.asarray, loaded['g_params']), jax.tree.map(
      jnp.asarray, loaded['g_batch_stats'])


@functools.partial(jax.jit, static_argnames=('model', 'shape'))
def _init_variables(key, *, model: nn.Module, shape: tuple[int, ...]):
  """``(params, batch_stats)`` of ``model`` for inputs of ``shape`` (``{}`` if no statistics).

  Jitted with the module static (flax modules hash by their fields): one compiled program per
  architecture, reused by every later run in the process, where an eager init dispatches many
  small ones.
  """
  variables = model.init(key, jnp.zeros(shape), train=False)
  return variables['params'], variables.get('batch_stats', {})


def init_state(config, key: jax.Array, generator: nn.Module,
               discriminator: nn.Module | None) -> game.GANState:
  """Both players at step 0 (:func:`optimizers`); with no D, ``d_params = d_batch_stats = {}``.

  With ``train.init_g_from``, G's weights and batch statistics are those of the latest
  checkpoint of that workdir (an SRResNet run: the paper starts SRGAN from the trained
  SRResNet), with a fresh optimizer.
  """
  height, width, channels = target_shape(config)
  lr_size = config.task.lr_size
  k_g, k_d = jax.random.split(key)
  g_params, g_stats = _init_variables(k_g, model=generator,
                                      shape=(1, lr_size, lr_size, channels))
  d_params, d_stats = {}, {}
  if discriminator is not None:
    d_params, d_stats = _init_variables(k_d, model=discriminator,
                                        shape=(1, height, width, channels))
  if config.train.init_g_from:
    g_params, g_stats = _load_generator(config.train.init_g_from, g_params, g_stats)
  g_opt, d_opt = optimizers(config)
  return game.GANState(step=jnp.zeros((), jnp.int32), g_params=g_params, d_params=d_params,
                       g_opt_state=g_opt.init(g_params), d_opt_state=d_opt.init(d_params),
                       g_batch_stats=g_stats, d_batch_stats=d_stats)


def build_train_step(config, generator: nn.Module, discriminator: nn.Module | None, *,
                     axis_name: str | None = None, skip_nonfinite: bool | None = None):
  """The alternating step (D, then G against the updated D), as the paper's code; SRResNet's
  D is :func:`no_discriminator_objective`. ``config.loss``: ``content``
  (:func:`content_loss`), ``adversarial_weight``, ``name`` (:func:`jaxgan.losses.get_loss_pair`)."""
  if skip_nonfinite is None:
    skip_nonfinite = config.train.on_nonfinite == 'skip'
  d_loss_fn, g_loss_fn = losses.get_loss_pair(config.loss.name)
  g_opt, d_opt = optimizers(config)
  weight = config.loss.adversarial_weight if discriminator is not None else 0.0
  d_objective = (no_discriminator_objective if discriminator is None else
                 discriminator_objective(generator, discriminator, d_loss_fn=d_loss_fn))
  return game.make_train_step(
      g_objective=generator_objective(generator, discriminator, content_loss=content_loss(config),
                                      adversarial_weight=weight, g_loss_fn=g_loss_fn),
      d_objective=d_objective, g_optimizer=g_opt, d_optimizer=d_opt, update_rule='alternating',
      axis_name=axis_name, skip_nonfinite=skip_nonfinite)


# Data and the driver.


def source(images: np.ndarray, key: jax.Array, batch_size: int, *, factor: int) -> loop.Source:
  """Shuffled super-resolution batches of uint8 ``images`` ``(N, H, W, C)``, made on the device:
  a :class:`jaxgan.loop.Source`.

  Batch ``t`` holds the examples :func:`jaxgan.data.batch_indices` ``(key, t)``:
  ``hr = to_unit_range(image)`` and ``lr = downsample_box(hr, factor)``, i.e.
  ``{'lr': (B, H / r, W / r, C), 'hr': (B, H, W, C)}`` float32 in [-1, 1]. A pure function of
  ``(key, t)``, so a resumed run finds its place in O(1).
  """
  n = images.shape[0]
  data_lib.steps_per_epoch(n, batch_size)  # A clear error for a dataset smaller than a batch.
  plan = jax.jit(lambda start, length: data_lib.batch_indices(
      key, start, length, num_examples=n, batch_size=batch_size), static_argnums=1)

  def batch(data, idx):
    hr = data_lib.to_unit_range(data['image'][idx])
    return {'lr': downsample_box(hr, factor), 'hr': hr}

  return loop.Source(data={'image': images}, plan=plan, batch=batch)


def target_shape(config) -> tuple[int, int, int]:
  """``(H, W, C)`` of a training target: the image of a TFDS dataset, or for ``'photos'`` the
  RGB ``task.crop_size`` square."""
  if config.data.name == 'photos':
    return (config.task.crop_size, config.task.crop_size, 3)
  return data_lib.data_shape(config.data.name)


def check_photo_split(train_images, test_images) -> None:
  """One-line ``ValueError`` unless both are non-empty sequences of distinct :data:`PHOTOS`
  with none in both."""
  for field, names in (('train_images', train_images), ('test_images', test_images)):
    if isinstance(names, str) or not isinstance(names, (list, tuple)) or not names:
      raise ValueError(f'config.data.{field}={names!r} must be a non-empty list of photo names')
    unknown = [n for n in names if n not in PHOTOS]
    if unknown:
      raise ValueError(f'config.data.{field}: {unknown} are not photographs scikit-image ships; '
                       f'expected names from {list(PHOTOS)}')
    if len(set(names)) != len(names):
      raise ValueError(f'config.data.{field}={names} names a photo twice')
  both = sorted(set(train_images) & set(test_images))
  if both:
    raise ValueError(f'{both} are in both config.data.train_images and config.data.test_images')


def load_photos(names) -> dict[str, np.ndarray]:
  """``{name: (H, W, 3) uint8}``: scikit-image's bundled photographs (:data:`PHOTOS`), in order,
  greyscale ones repeated to three channels.

  Raises:
    ImportError: without scikit-image (``pip install -e '.[photos]'``).
    ValueError: for a name not in :data:`PHOTOS`.
  """
  unknown = [n for n in names if n not in PHOTOS]
  if unknown:
    raise ValueError(f'{unknown} are not photographs scikit-image ships; expected names from '
                     f'{list(PHOTOS)}')
  try:
    import skimage.data
  except ImportError:
    raise ImportError("data.name='photos' needs scikit-image: pip install -e '.[photos]'"
                      ) from None
  out = {}
  for name in names:
    image = np.asarray(getattr(skimage.data, name)())
    if image.ndim == 2:
      image = np.repeat(image[:, :, None], 3, axis=2)
    out[name] = np.ascontiguousarray(image[:, :, :3], dtype=np.uint8)
  return out


def check_photo_sizes(photos: dict[str, np.ndarray], crop_size: int) -> None:
  """One-line ``ValueError`` naming the first photo smaller than a ``crop_size`` square."""
  for name, image in photos.items():
    height, width = image.shape[:2]
    if height < crop_size or width < crop_size:
      raise ValueError(f'photo {name!r} is {height}x{width}, smaller than the {crop_size}x'
                       f'{crop_size} crop (config.task.crop_size={crop_size})')


def crop_to_multiple(image: np.ndarray, factor: int) -> np.ndarray:
  """``image[:H - H % r, :W - W % r]``: the bottom rows and right columns that a ``factor`` does
  not divide dropped (the "modcrop" of super-resolution test sets)."""
  height, width = image.shape[:2]
  return image[:height - height % factor, :width - width % factor]


def photo_source(photos: dict[str, np.ndarray], key: jax.Array, batch_size: int, *,
                 crop_size: int, factor: int) -> loop.Source:
  """Random ``crop_size`` squares of ``photos`` (``{name: (H, W, 3) uint8}``), gathered on the
  device: a :class:`jaxgan.loop.Source`.

  Batch ``t``'s crops are drawn on the host by ``numpy.random.default_rng([*key_data(key),
  t])``: for each example a photo ``i`` uniformly (each photo equally often, whatever its size),
  then the top-left corner ``(y, x)`` uniformly among the ``(H_i - crop_size + 1) (W_i -
  crop_size + 1)`` positions; no flips or rotations (the paper mentions none). (Drawn with
  ``jax.random`` in a jitted plan instead, the same takes seconds to compile on a CPU.) The plan
  is their ``(length, B, 3)`` int32 ``(i, y, x)``; the batch gathers those squares from the
  photos, kept on the device as one flat uint8 buffer: ``hr = to_unit_range(crop)``, ``lr =
  downsample_box(hr, factor)``, ``{'lr': (B, crop / r, crop / r, 3), 'hr': (B, crop, crop,
  3)}`` float32 in [-1, 1]. A pure function of ``(key, t)``, so a resumed run draws the batches
  it would have.

  Raises:
    ValueError: naming a photo smaller than the crop, or for a crop that ``factor`` does not
      divide.
  """
  check_photo_sizes(photos, crop_size)
  if crop_size % factor:
    raise ValueError(f'photo_source: crop_size={crop_size} is not divisible by factor={factor}')
  images = list(photos.values())
  heights = np.array([im.shape[0] for im in images], np.int32)
  widths = np.array([im.shape[1] for im in images], np.int32)
  sizes = heights.astype(np.int64) * widths * 3
  offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
  if sizes.sum() >= 2**31:
    raise ValueError(f'photo_source: {sizes.sum()} pixels in all, more than int32 indexes')
  pixels = np.concatenate([im.reshape(-1) for im in images])
  words = np.asarray(jax.random.key_data(key) if jnp.issubdtype(key.dtype, jax.dtypes.prng_key)
                     else key, np.uint32).ravel().tolist()
  starts = np.stack([heights, widths], axis=-1) - crop_size + 1  # (N, 2) corner positions.

  def draw(t: int) -> np.ndarray:
    rng = np.random.default_rng([*words, t])
    i = rng.integers(0, len(images), batch_size)
    corner = rng.integers(0, starts[i])
    return np.concatenate([i[:, None], corner], axis=-1).astype(np.int32)

  def plan(start, length):
    return np.stack([draw(int(start) + s) for s in range(length)])

  def batch(data, where):
    i, y, x = where[:, 0], where[:, 1], where[:, 2]
    rows = y[:, None] + jnp.arange(crop_size)  # (B, crop)
    cols = x[:, None] + jnp.arange(crop_size)
    flat = (data['offset'][i][:, None, None, None]
            + ((rows[:, :, None, None] * data['width'][i][:, None, None, None]
                + cols[:, None, :, None]) * 3 + jnp.arange(3)))
    hr = data_lib.to_unit_range(jnp.take(data['pixels'], flat))
    return {'lr': downsample_box(hr, factor), 'hr': hr}

  data = {'pixels': pixels, 'offset': offsets.astype(np.int32), 'width': widths}
  return loop.Source(data=data, plan=plan, batch=batch)


def check_batch(batch: dict, step: int, *, batch_size: int, hr_shape, factor: int) -> None:
  """:func:`jaxgan.faults.check_batch` on ``batch['hr']`` (``hr_shape``) and ``batch['lr']``
  (``hr_shape`` divided by ``factor``): shapes, float32, finite, in [-1, 1]."""
  height, width, channels = hr_shape
  shapes = {'hr': tuple(hr_shape), 'lr': (height // factor, width // factor, channels)}
  for name, shape in shapes.items():
    try:
      faults.check_batch({'x': batch[name]}, data_shape=shape, batch_size=batch_size,
                         value_range=(-1.0, 1.0), step=step)
    except ValueError as e:
      raise ValueError(str(e).replace("batch['x']", f'batch[{name!r}]')) from None


def _images(config, split: str) -> np.ndarray:
  images = data_lib.load_images(config.data.name, split=split, data_dir=config.data.data_dir,
                                download=config.data.download)
  faults.check_images(images, data_shape=data_lib.data_shape(config.data.name),
                      name=f'{config.data.name}[{split}]')
  return images['image']


def make_evaluator(config, generator: nn.Module, test_images, *,
                   batch_size: int = 500) -> Callable[[game.GANState], dict]:
  """``evaluate(state) -> {'psnr', 'ssim'}``: the means over the first ``train.num_eval`` test
  images of :func:`jaxgan.metrics.psnr` and :func:`jaxgan.metrics.ssim` between
  :func:`super_resolve` of their box-downsampled inputs and the originals, in the
  super-resolution convention (``crop_border = task.scale``; the Y channel of RGB images).

  ``test_images``: uint8 ``(N, H, W, C)``, run ``batch_size`` at a time; or a list of uint8
  ``(H, W, C)`` images of any sizes (the photographs), each run whole on its own after
  :func:`crop_to_multiple` (the mean is then over images, each weighing the same)."""
  factor = config.task.scale
  if getattr(test_images, 'ndim', None) == 4:
    images = np.asarray(test_images[:config.train.num_eval])
    groups = [images[i:i + batch_size] for i in range(0, len(images), batch_size)]
  else:
    groups = [crop_to_multiple(np.asarray(im), factor)[None]
              for im in list(test_images)[:config.train.num_eval]]
  hrs = [np.asarray(data_lib.to_unit_range(g)) for g in groups]
  lrs = [np.asarray(downsample_box(hr, factor)) for hr in hrs]

  @jax.jit
  def scores(g_params, g_batch_stats, lr, hr):
    sr = super_resolve(generator, g_params, g_batch_stats, lr)
    rgb = hr.shape[-1] == 3
    return (metrics.psnr(sr, hr, crop_border=factor, y_channel=rgb),
            metrics.ssim(sr, hr, crop_border=factor, y_channel=rgb))

  def evaluate(state):
    parts = [scores(state.g_params, state.g_batch_stats, lr, hr)
             for lr, hr in zip(lrs, hrs, strict=True)]
    psnr, ssim = (np.concatenate([np.asarray(p[k]) for p in parts]) for k in (0, 1))
    return {'psnr': float(psnr.mean()), 'ssim': float(ssim.mean())}

  return evaluate


def _center_crop(image: np.ndarray, size: int) -> np.ndarray:
  top, left = (image.shape[0] - size) // 2, (image.shape[1] - size) // 2
  return image[top:top + size, left:left + size]


def _data(config, data_key: jax.Array):
  """``(train source, test images, sample images)``: the test images as :func:`make_evaluator`
  takes them, the samples' uint8 ``(n, H, W, C)`` (the first ``train.num_samples`` test images;
  for photos their centre ``crop_size`` squares)."""
  factor, batch_size = config.task.scale, config.train.batch_size
  num_samples = config.train.num_samples
  if config.data.name == 'photos':
    crop = config.task.crop_size
    test = load_photos(config.data.test_images)
    check_photo_sizes(test, crop)  # The samples are crops of them.
    train_source = photo_source(load_photos(config.data.train_images), data_key, batch_size,
                                crop_size=crop, factor=factor)
    test_images = [crop_to_multiple(im, factor) for im in test.values()]
    samples = np.stack([_center_crop(im, crop) for im in test_images[:num_samples]])
    return train_source, test_images, samples
  test_images = _images(config, 'test')
  train_source = source(_images(config, 'train'), data_key, batch_size, factor=factor)
  return train_source, test_images, test_images[:num_samples]


def train_and_evaluate(config, workdir: str, *, should_stop=None) -> game.GANState:
  """Trains the SRResNet or SRGAN of ``config`` (``configs/srresnet_*.py``,
  ``configs/srgan_*.py``) with the one driver (:func:`jaxgan.train.drive`).

  Writes ``metrics.jsonl`` (with ``content``, ``g_gan``, ``psnr``; ``eval_every > 0`` adds the
  test set's ``psnr``/``ssim`` rows of :func:`make_evaluator`), checkpoints and resume as every
  run, and ``samples/step_<N>.png``: rows of the first ``train.num_samples`` test images (for
  photos, their centre ``task.crop_size`` squares), input (nearest-upsampled) | G(input) |
  truth. The data are loaded (a photo smaller than the crop fails there) and the first batch is
  checked before anything compiles.

  Returns:
    The final state.
  """
  parallel = config.train.parallel
  validate(config)
  axis_name = None if parallel == 'none' else train.AXIS_NAME
  generator, discriminator = build_models(config, axis_name=axis_name)
  sampler = build_models(config)[0]  # Outside the device axis: G without synchronized BN.
  init_key, step_key, data_key = jax.random.split(jax.random.PRNGKey(config.seed), 3)
  factor, shape = config.task.scale, target_shape(config)
  train_source, test_images, samples = _data(config, data_key)
  state = init_state(config, init_key, generator, discriminator)
  hr = np.asarray(data_lib.to_unit_range(samples))
  lr = np.asarray(downsample_box(hr, factor))
  apply = jax.jit(functools.partial(super_resolve, sampler))

  def save_samples(state, path, step):
    del step
    sr = apply(state.g_params, state.g_batch_stats, lr)
    visualize.save_strips(path, [np.asarray(upsample_nearest(lr, factor)), np.asarray(sr), hr])

  evaluate = None
  if config.train.eval_every:
    evaluate = make_evaluator(config, sampler, test_images)
  batch_size = config.train.batch_size
  return train.drive(
      config, workdir, state=state,
      train_step=build_train_step(config, generator, discriminator, axis_name=axis_name),
      source=train_source, step_key=step_key, save_samples=save_samples, evaluate=evaluate,
      axis_name=axis_name, should_stop=should_stop,
      check_batch=functools.partial(check_batch, batch_size=batch_size, hr_shape=shape,
                                    factor=factor))
