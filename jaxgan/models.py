"""Generators and discriminators in `flax.linen`.

Conventions shared by every model here:

* A generator maps latents ``z`` of shape ``(B, latent_dim)`` to samples of shape
  ``(B, *data_shape)``; a discriminator maps samples ``(B, *data_shape)`` to **logits** of shape
  ``(B,)``, never probabilities: the losses in :mod:`jaxgan.losses` apply the sigmoid themselves,
  stably.
* Every ``__call__`` takes ``train``: batch norm uses batch statistics (and updates its running
  averages in the ``batch_stats`` collection) when ``train=True``, running averages otherwise.
* ``axis_name`` (models with batch norm) names the device axis of ``jax.pmap`` or ``shard_map``;
  batch-norm statistics are then averaged across devices ("sync batch norm"), so N devices on
  B/N examples each compute exactly what one device computes on B.

The seeds' worked examples (lecture 004) are :func:`gaussian_1d_models` ("Example 1") and
:func:`mnist_mlp_models` ("Example 2"); DCGAN is Radford et al. 2015, arXiv:1511.06434.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgan.layers import AdjointConvTranspose

# The names config.model.name takes (jaxgan.experiment.build_models).
MODELS = ('gaussian_1d_mlp', 'mnist_mlp', 'mlp', 'dcgan')
# Those without convolutions: XLA:CPU runs them as fast inside a lax.scan as alone
# (jaxgan.loop.use_scan).
DENSE_MODELS = ('gaussian_1d_mlp', 'mnist_mlp', 'mlp')

ACTIVATIONS: dict[str, Callable] = {
    'relu': nn.relu,
    'tanh': jnp.tanh,
    'leaky_relu': lambda x: nn.leaky_relu(x, negative_slope=0.2),
    'identity': lambda x: x,
}


def fan_in_uniform_bias(scale: float, fan_in: int) -> Callable:
  """Bias initializer ``U(-scale / sqrt(fan_in), scale / sqrt(fan_in))``; 0 gives zeros.

  ``scale=1`` is PyTorch's default for ``nn.Linear``. Non-zero biases matter for low-dimensional
  inputs: with zero biases a ReLU MLP is positively homogeneous at init, ``f(t x) = t f(x)``, so
  every kink passes through the origin and toy samples lie on rays until the biases have grown.
  """
  if scale == 0:
    return nn.initializers.zeros
  bound = scale / math.sqrt(fan_in)
  return lambda key, shape, dtype=jnp.float32: jax.random.uniform(key, shape, dtype, -bound, bound)


def _activation(name: str) -> Callable:
  if name not in ACTIVATIONS:
    raise ValueError(f'unknown activation {name!r}; expected one of {sorted(ACTIVATIONS)}')
  return ACTIVATIONS[name]


class MLPGenerator(nn.Module):
  """Fully connected generator: ``z -> hidden... -> prod(data_shape)``, reshaped to data_shape.

  Attributes:
    hidden: widths of the hidden layers.
    data_shape: shape of one sample, e.g. ``(1,)``, ``(2,)`` or ``(28, 28, 1)``.
    activation: hidden activation name (``'relu'``, ``'tanh'``, ``'leaky_relu'``).
    output_activation: ``'tanh'`` for images in [-1, 1], ``'identity'`` for unbounded toys.
    bias_scale: biases start ``U(+-bias_scale / sqrt(fan_in))`` (see :func:`fan_in_uniform_bias`);
      0, the default, starts them at zero.
  """

  hidden: Sequence[int]
  data_shape: Sequence[int]
  activation: str = 'relu'
  output_activation: str = 'identity'
  bias_scale: float = 0.0

  @nn.compact
  def __call__(self, z, train: bool = False):
    del train  # No batch norm.
    act = _activation(self.activation)
    dense = lambda width, h: nn.Dense(
        width, bias_init=fan_in_uniform_bias(self.bias_scale, h.shape[-1]))(h)
    h = z
    for width in self.hidden:
      h = act(dense(width, h))
    h = dense(math.prod(self.data_shape), h)
    h = _activation(self.output_activation)(h)
    return h.reshape((z.shape[0], *self.data_shape))


class MLPDiscriminator(nn.Module):
  """Fully connected discriminator: flattened sample -> hidden... -> one logit per example.

  Attributes:
    hidden: widths of the hidden layers.
    activation: hidden activation name.
    bias_scale: biases start ``U(+-bias_scale / sqrt(fan_in))`` (see :func:`fan_in_uniform_bias`);
      0, the default, starts them at zero.
  """

  hidden: Sequence[int]
  activation: str = 'relu'
  bias_scale: float = 0.0

  @nn.compact
  def __call__(self, x, train: bool = False):
    del train
    act = _activation(self.activation)
    dense = lambda width, h: nn.Dense(
        width, bias_init=fan_in_uniform_bias(self.bias_scale, h.shape[-1]))(h)
    h = x.reshape((x.shape[0], -1))
    for width in self.hidden:
      h = act(dense(width, h))
    self.sow('intermediates', 'features', h)
    return dense(1, h)[:, 0]


def gaussian_1d_models() -> tuple[MLPGenerator, MLPDiscriminator]:
  """Lecture 004, "Example 1": learn N(1, 1) from z ~ U[-1, 1].

  G: 1 -> 5 -> 5 -> 1 with tanh hidden units and a linear output;
  D: 1 -> 10 -> 10 -> 1 with tanh hidden units (the sigmoid lives in the loss).
  """
  return (MLPGenerator(hidden=(5, 5), data_shape=(1,), activation='tanh'),
          MLPDiscriminator(hidden=(10, 10), activation='tanh'))


def mnist_mlp_models() -> tuple[MLPGenerator, MLPDiscriminator]:
  """Lecture 004, "Example 2": MNIST from 100-d z ~ U(-1, 1).

  G: 100 -> 256 -> 512 -> 1024 -> 784 with ReLU, tanh output (reshaped to 28x28x1);
  D: 784 -> 1024 -> 512 -> 256 -> 1 with ReLU (the sigmoid lives in the loss).
  """
  return (MLPGenerator(hidden=(256, 512, 1024), data_shape=(28, 28, 1), activation='relu',
                       output_activation='tanh'),
          MLPDiscriminator(hidden=(1024, 512, 256), activation='relu'))


def dcgan_depth(image_shape: Sequence[int]) -> int:
  """Number of stride-2 stages between a 4x4 (or 7x7) seed and the image size."""
  height, width = image_shape[:2]
  if height != width:
    raise ValueError(f'DCGAN needs square images, got image_shape={tuple(image_shape)}')
  for start in (4, 7):
    depth = math.log2(height / start)
    if depth >= 1 and depth.is_integer():
      return int(depth)
  raise ValueError(f'DCGAN needs an image size of 4*2^k or 7*2^k (e.g. 28, 32, 64), '
                   f'got image_shape={tuple(image_shape)}')


class DCGANGenerator(nn.Module):
  """DCGAN generator (arXiv:1511.06434): project z, then stride-2 transposed convolutions.

  ``z -> Dense(s*s*F*2^(n-1)) -> BN -> ReLU -> [ConvT 4x4/2 -> BN -> ReLU] x (n-1)
  -> ConvT 4x4/2 -> tanh``, where ``s`` is 7 for 28x28 images and 4 for 32 or 64, and ``n`` the
  number of doublings. For 28x28x1: 7x7x128 -> 14x14x64 -> 28x28x1. The transposed convolutions
  are :class:`jaxgan.layers.AdjointConvTranspose`: ``nn.ConvTranspose``'s parameters (same names)
  and outputs, with gradients that XLA:CPU computes about 15x faster.

  Attributes:
    image_shape: ``(H, W, C)`` of the output images, values in [-1, 1].
    features: channels of the last hidden stage (doubling towards the input).
    axis_name: device axis for synchronized batch norm (see the module docstring).
  """

  image_shape: Sequence[int] = (28, 28, 1)
  features: int = 64
  axis_name: str | None = None

  @nn.compact
  def __call__(self, z, train: bool = False):
    depth = dcgan_depth(self.image_shape)
    size = self.image_shape[0] // 2**depth
    norm = lambda: nn.BatchNorm(use_running_average=not train, momentum=0.9,
                                axis_name=self.axis_name if train else None)
    channels = self.features * 2**(depth - 1)
    # Layers followed by batch norm carry no bias: BN's shift replaces it (as in DCGAN's code).
    h = nn.Dense(size * size * channels, use_bias=False)(z)
    h = h.reshape((z.shape[0], size, size, channels))
    h = nn.relu(norm()(h))
    for stage in range(depth - 1):
      channels = self.features * 2**(depth - 2 - stage)
      h = AdjointConvTranspose(channels, (4, 4), strides=(2, 2), use_bias=False,
                               name=f'ConvTranspose_{stage}')(h)
      h = nn.relu(norm()(h))
    h = AdjointConvTranspose(self.image_shape[-1], (4, 4), strides=(2, 2),
                             name=f'ConvTranspose_{depth - 1}')(h)
    return jnp.tanh(h)


class DCGANDiscriminator(nn.Module):
  """DCGAN discriminator (arXiv:1511.06434): stride-2 convolutions, LeakyReLU(0.2), no pooling.

  ``x -> Conv 4x4/2 -> LReLU -> [Conv 4x4/2 -> BN -> LReLU] x (n-1) -> flatten -> Dense(1)``,
  channels ``F, 2F, 4F, ...``; no batch norm on the first layer, as in the paper. For 28x28:
  28 -> 14x14x64 -> 7x7x128 -> logit.

  Attributes:
    image_shape: ``(H, W, C)`` of the input images.
    features: channels of the first convolution.
    axis_name: device axis for synchronized batch norm.
  """

  image_shape: Sequence[int] = (28, 28, 1)
  features: int = 64
  axis_name: str | None = None

  @nn.compact
  def __call__(self, x, train: bool = False):
    depth = dcgan_depth(self.image_shape)
    h = nn.leaky_relu(nn.Conv(self.features, (4, 4), strides=(2, 2), padding='SAME')(x), 0.2)
    for stage in range(1, depth):
      h = nn.Conv(self.features * 2**stage, (4, 4), strides=(2, 2), padding='SAME',
                  use_bias=False)(h)
      h = nn.BatchNorm(use_running_average=not train, momentum=0.9,
                       axis_name=self.axis_name if train else None)(h)
      h = nn.leaky_relu(h, 0.2)
    h = h.reshape((h.shape[0], -1))
    self.sow('intermediates', 'features', h)
    return nn.Dense(1)(h)[:, 0]
