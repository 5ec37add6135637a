"""The semi-supervised GAN of Improved GAN (Salimans et al. 2016, arXiv:1606.03498): its pieces.

D is a K-class classifier whose logits ``l(x)`` of shape ``(B, K)`` also say real vs. fake: the
logit of class K+1 ("fake") is fixed to 0, so ``D(x) = Z(x) / (Z(x) + 1)``, ``Z = sum_k exp l_k``
(the losses are in :mod:`jaxgan.losses`, ``semi_supervised_*``). G is trained by feature
matching on D's last hidden layer. This module holds the pure pieces; the trainer is
:mod:`jaxgan.semi_supervised_train`.

* :class:`SSGANGenerator`, :class:`SSGANDiscriminator`: the paper's MNIST models, as in its public
  code (``openai/improved-gan``, ``mnist_svhn_cifar10/train_mnist_feature_matching.py``).
* :func:`data_dependent_init`: weight-norm initialization from a batch (Salimans & Kingma 2016,
  arXiv:1602.07868), which the public code applies to D before training.
* :func:`hidden_scale_mask`: D's hidden weight-norm scales, which the public code keeps fixed.
* :func:`feature_matching_loss`, :func:`select_labeled`, :func:`count_errors`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

NOISE_RNG = 'noise'  # The rng stream of D's Gaussian noise layers.


class SSGANGenerator(nn.Module):
  """Improved GAN's MNIST generator: ``z (100) -> 500 -> 500 -> 784``, images in [0, 1].

  ``[Dense (no bias) -> BatchNorm (shift, no scale) -> softplus] x 2 -> WeightNorm(Dense) ->
  sigmoid``, reshaped to ``image_shape``. Dense kernels start Glorot-uniform (Lasagne's default);
  the output layer's per-unit weight norm is a trainable scale initialized to 1. Batch norm uses
  ``epsilon=1e-6`` and momentum 0.9 as the public code; the paper's code always runs G in
  training mode (batch statistics).

  Attributes:
    hidden: widths of the batch-normed softplus layers.
    image_shape: shape of one output image; values in [0, 1] (sigmoid).
    axis_name: device axis for synchronized batch norm (see :mod:`jaxgan.models`).
  """

  hidden: Sequence[int] = (500, 500)
  image_shape: Sequence[int] = (28, 28, 1)
  axis_name: str | None = None

  @nn.compact
  def __call__(self, z, train: bool = False):
    glorot = nn.initializers.xavier_uniform()
    h = z
    for width in self.hidden:
      h = nn.Dense(width, use_bias=False, kernel_init=glorot)(h)
      h = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-6,
                       use_scale=False, axis_name=self.axis_name if train else None)(h)
      h = nn.softplus(h)
    h = nn.WeightNorm(nn.Dense(math.prod(self.image_shape), kernel_init=glorot))(h)
    return nn.sigmoid(h).reshape((z.shape[0], *self.image_shape))


class SSGANDiscriminator(nn.Module):
  """Improved GAN's MNIST discriminator/classifier: 784 -> 1000-500-250-250-250 -> K logits.

  ``x + N(0, 0.3^2) -> [WeightNorm(Dense) -> ReLU -> + N(0, 0.5^2)] x 5 -> WeightNorm(Dense(K))``.
  The Gaussian noise is added only when ``train=True`` and draws from the ``'noise'`` rng
  (``apply(..., rngs={'noise': key})``). Kernels start as N(0, 0.1^2) directions with unit
  per-unit scales; :func:`data_dependent_init` then sets scales and biases from a batch.
  Layers are named ``dense_i``/``wn_i`` (hidden) and ``dense_out``/``wn_out``.

  Returns logits of shape ``(B, num_classes)`` (no fake logit: it is fixed to 0) and sows the
  last hidden layer (after ReLU, before its noise), shape ``(B, hidden[-1])``, as
  ``('intermediates', 'features')``: the statistics that feature matching compares.

  Attributes:
    hidden: widths of the hidden layers.
    num_classes: K, the number of real classes.
    input_noise: std of the noise added to the input.
    hidden_noise: std of the noise added after every hidden layer.
  """

  hidden: Sequence[int] = (1000, 500, 250, 250, 250)
  num_classes: int = 10
  input_noise: float = 0.3
  hidden_noise: float = 0.5

  def _noise(self, h, std: float, train: bool):
    if not train or std == 0:
      return h
    return h + std * jax.random.normal(self.make_rng(NOISE_RNG), h.shape, h.dtype)

  @nn.compact
  def __call__(self, x, train: bool = False):
    theta = nn.initializers.normal(0.1)
    h = self._noise(x.reshape((x.shape[0], -1)), self.input_noise, train)
    for i, width in enumerate(self.hidden):
      h = nn.WeightNorm(nn.Dense(width, kernel_init=theta, name=f'dense_{i}'), name=f'wn_{i}')(h)
      h = nn.relu(h)
      if i == len(self.hidden) - 1:
        self.sow('intermediates', 'features', h)
      h = self._noise(h, self.hidden_noise, train)
    dense = nn.Dense(self.num_classes, kernel_init=theta, name='dense_out')
    return nn.WeightNorm(dense, name='wn_out')(h)


def weight_norm_layer_names(discriminator: SSGANDiscriminator) -> list[tuple[str, str]]:
  """``(dense, weight_norm)`` submodule names of ``discriminator``, input to output."""
  names = [(f'dense_{i}', f'wn_{i}') for i in range(len(discriminator.hidden))]
  return [*names, ('dense_out', 'wn_out')]


def data_dependent_init(discriminator: SSGANDiscriminator, d_params, x: ArrayLike,
                        key: jax.Array):
  r"""Weight-norm data-dependent initialization of D (arXiv:1602.07868, Section 3).

  Layer by layer, input to output, each pre-activation ``a = s * (v / ||v||) . h + b`` on the
  batch ``x`` is made zero-mean and unit-variance per unit:

  .. math::
    s \leftarrow s / \sigma, \qquad b \leftarrow (b - \mu) / \sigma

  with ``mu`` and ``sigma`` the batch mean and standard deviation of ``a`` after the layers below
  were initialized. The noise layers are on (``train=True``) with the same ``key`` in every pass,
  so each layer sees the one noise draw that a single initialization pass would give it.

  Args:
    discriminator: the module whose ``params`` these are.
    d_params: its parameters from ``discriminator.init``.
    x: the batch, e.g. 500 training images, shape ``(B, ...)``.
    key: the noise key.

  Returns:
    New parameters; only the weight-norm scales and the biases change.
  """
  params = jax.tree.map(jnp.asarray, d_params)
  for dense, wn in weight_norm_layer_names(discriminator):
    _, state = discriminator.apply({'params': params}, x, train=True, rngs={NOISE_RNG: key},
                                   capture_intermediates=True,
                                   mutable=['intermediates'])
    pre = state['intermediates'][wn]['__call__'][0]
    mean = jnp.mean(pre, axis=0)
    std = jnp.sqrt(jnp.mean(jnp.square(pre - mean), axis=0) + 1e-12)
    scale_name = f'{dense}/kernel/scale'
    params = {**params,
              wn: {**params[wn], scale_name: params[wn][scale_name] / std},
              dense: {**params[dense], 'bias': (params[dense]['bias'] - mean) / std}}
  return params


def hidden_scale_mask(discriminator: SSGANDiscriminator, d_params):
  """A pytree of bools like ``d_params``: True for the weight-norm scales of D's hidden layers.

  The public code trains only the output layer's scale; the hidden scales stay at their
  data-dependent initial values. Use it as ``optax.masked(optax.set_to_zero(), mask)``.
  """
  frozen = {wn for _, wn in weight_norm_layer_names(discriminator)[:-1]}
  return jax.tree_util.tree_map_with_path(lambda path, _: path[0].key in frozen, d_params)


def feature_matching_loss(real_features: ArrayLike, fake_features: ArrayLike) -> jax.Array:
  r"""Feature matching: the squared distance between mean features of real and fake data.

  .. math::
    L_G = \frac{1}{F} \left\| \mathbb{E}_x f(x) - \mathbb{E}_z f(G(z)) \right\|_2^2

  with ``f`` an intermediate layer of D (for :class:`SSGANDiscriminator`, its last hidden layer)
  and ``F`` its width: the mean, not the sum, over features, as the paper's public code. G
  minimizes it; the gradient reaches G through ``fake_features`` only.

  Paper: Salimans et al. 2016, arXiv:1606.03498 (Section 3.1).

  Args:
    real_features: ``(B, F)`` features of real data.
    fake_features: ``(B', F)`` features of generated data.

  Returns:
    A scalar ``>= 0``.

  Example:
    >>> import jax.numpy as jnp
    >>> # means (2, 0) and (1, 2): ((2 - 1)^2 + (0 - 2)^2) / 2
    >>> real = jnp.array([[1.0, 0.0], [3.0, 0.0]])
    >>> print(feature_matching_loss(real, jnp.array([[1.0, 2.0]])))
    2.5
  """
  real_mean = jnp.mean(jnp.asarray(real_features), axis=0)
  fake_mean = jnp.mean(jnp.asarray(fake_features), axis=0)
  return jnp.mean(jnp.square(real_mean - fake_mean))


def select_labeled(key: jax.Array, labels: ArrayLike, *, num_labels: int,
                   num_classes: int = 10) -> jax.Array:
  """Indices of ``num_labels`` examples, ``num_labels / num_classes`` of each class, drawn by key.

  Within each class the examples are a uniformly random subset (the first ones of a random
  permutation, as the paper's code); the result is sorted by class, then by that permutation.

  Args:
    key: decides which examples; the same key gives the same indices.
    labels: integer classes of the whole training set, shape ``(N,)``.
    num_labels: how many labeled examples, a multiple of ``num_classes``.
    num_classes: K.

  Returns:
    int32 indices into ``labels``, shape ``(num_labels,)``, no repeats.

  Raises:
    ValueError: if ``num_labels`` is not a positive multiple of ``num_classes``, or a class has
      fewer than ``num_labels / num_classes`` examples.
  """
  if num_labels <= 0 or num_labels % num_classes:
    raise ValueError(f'num_labels={num_labels} must be a positive multiple of '
                     f'num_classes={num_classes}')
  labels = jnp.asarray(labels)
  per_class = num_labels // num_classes
  counts = jnp.bincount(labels, length=num_classes)
  if int(jnp.min(counts)) < per_class:
    raise ValueError(f'num_labels={num_labels} needs {per_class} examples of every class, but '
                     f'class {int(jnp.argmin(counts))} has {int(jnp.min(counts))}')
  perm = jax.random.permutation(key, labels.shape[0])
  by_class = perm[jnp.argsort(labels[perm], stable=True)]  # Class-sorted, random within class.
  starts = jnp.cumsum(counts) - counts
  rows = starts[:, None] + jnp.arange(per_class)[None, :]
  return by_class[rows.reshape(-1)].astype(jnp.int32)


def count_errors(logits: ArrayLike, labels: ArrayLike, *, mask: ArrayLike | None = None
                 ) -> jax.Array:
  """Number of examples whose arg-max class is not their label (ties: the lowest class wins).

  Args:
    logits: ``(B, K)`` class scores.
    labels: ``(B,)`` integer classes.
    mask: optional ``(B,)`` bools; only rows where it is True count (for padded batches).

  Returns:
    An int32 scalar in ``[0, B]``.

  Example:
    >>> import jax.numpy as jnp
    >>> print(count_errors(jnp.array([[0., 1.], [2., 1.], [0., 3.]]), jnp.array([1, 1, 1])))
    1
  """
  wrong = jnp.argmax(jnp.asarray(logits), axis=-1) != jnp.asarray(labels)
  if mask is not None:
    wrong = wrong & jnp.asarray(mask)
  return jnp.sum(wrong, dtype=jnp.int32)
