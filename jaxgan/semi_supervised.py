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
* :func:`discriminator_objective`, :func:`generator_objective`: the K+1-class D objective and
  G's feature-matching objective, for :func:`jaxgan.game.make_train_step` (alternating, one D
  step), as any other game's.
* :func:`parameter_average`: the Polyak average of D's parameters that is tested, kept in D's
  optimizer state (the public code's ``ema`` of D's parameters, decay 0.9999).
* :func:`select_labeled`, :func:`count_errors`.

G's prior is ``z ~ U[0, 1)^latent_dim`` (the public code's Theano uniform), not jaxgan's
``U[-1, 1]`` (:func:`jaxgan.gan.sample_latent`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from jax import lax
from jax.typing import ArrayLike

from jaxgan import losses, mode_collapse
from jaxgan.gan import apply_model

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


def _features(discriminator: SSGANDiscriminator, d_params, x: jax.Array, key: jax.Array):
  """D's last hidden layer on ``x`` in training mode (noise drawn from ``key``), ``(B, F)``."""
  _, state = discriminator.apply({'params': d_params}, x, train=True, rngs={NOISE_RNG: key},
                                 mutable=['intermediates'])
  return state['intermediates']['features'][0]


def discriminator_objective(generator: SSGANGenerator, discriminator: SSGANDiscriminator, *,
                            latent_dim: int, unlabeled_weight: float = 0.5):
  r"""D's objective: ``L_D = L_sup(x_lab, y_lab) + w L_unsup(x_unl, G(z))``, ``z ~ U[0, 1)``.

  ``L_sup`` is :func:`jaxgan.losses.semi_supervised_classification_loss` (cross-entropy of the
  K real classes on the labeled batch), ``L_unsup`` is
  :func:`jaxgan.losses.semi_supervised_discriminator_loss` (real vs fake through
  ``D(x) = Z/(Z+1)``), and ``w = unlabeled_weight`` (0.5 in the public code). D's noise layers
  are on. The fakes come from G in training mode (batch statistics; the public code never uses
  G's running averages), one per unlabeled row; ``shared_key`` draws their ``z``, ``key`` D's
  noise. Salimans et al. 2016, arXiv:1606.03498, Section 5.

  Returns:
    A :mod:`jaxgan.game` objective. ``batch`` holds ``x_lab`` ``(B_l, ...)``, ``y_lab``
    ``(B_l,)`` int and ``x_unl`` ``(B, ...)``. Metrics: ``loss_lab`` (``L_sup``), ``loss_unl``
    (``L_unsup``, unweighted), ``train_err`` (error rate on the labeled batch, noise on),
    ``d_real``/``d_fake`` (mean ``D(x)`` on the unlabeled reals and on the fakes).
  """
  if unlabeled_weight < 0:
    raise ValueError(f'unlabeled_weight must be >= 0, got {unlabeled_weight}')

  def objective(d_params, state, batch, *, key, shared_key):
    n_lab, n_unl = batch['x_lab'].shape[0], batch['x_unl'].shape[0]
    z = jax.random.uniform(shared_key, (n_unl, latent_dim))
    fake, _ = apply_model(generator, state.g_params, state.g_batch_stats, z, train=True)
    # D has no batch norm, so one call on the concatenation equals three separate calls.
    x = jnp.concatenate([batch['x_lab'], batch['x_unl'], lax.stop_gradient(fake)])
    logits = discriminator.apply({'params': d_params}, x, train=True, rngs={NOISE_RNG: key})
    lab, unl, fk = logits[:n_lab], logits[n_lab:n_lab + n_unl], logits[n_lab + n_unl:]
    loss_lab = losses.semi_supervised_classification_loss(lab, batch['y_lab'])
    loss_unl = losses.semi_supervised_discriminator_loss(unl, fk)
    p_real = lambda lg: jnp.mean(jax.nn.sigmoid(jax.nn.logsumexp(lg, axis=-1)))
    metrics = {'loss_lab': loss_lab, 'loss_unl': loss_unl,
               'train_err': jnp.mean(jnp.argmax(lab, -1) != batch['y_lab']),
               'd_real': p_real(unl), 'd_fake': p_real(fk)}
    return loss_lab + unlabeled_weight * loss_unl, (state.d_batch_stats, metrics)

  return objective


def generator_objective(generator: SSGANGenerator, discriminator: SSGANDiscriminator, *,
                        latent_dim: int):
  r"""G's feature-matching objective against the current D, on a second unlabeled batch.

  .. math::
    L_G = \frac{1}{F} \lVert \mathbb{E}_x f(x) - \mathbb{E}_z f(G(z)) \rVert_2^2

  :func:`jaxgan.mode_collapse.feature_matching_loss` divided by the width ``F`` of D's last
  hidden layer ``f`` (the public code takes the mean over features), ``x`` the batch's
  ``x_unl2`` ``(B, ...)``, ``B`` fakes, ``z ~ U[0, 1)``; D's noise is on for both (own keys). The
  real features are constants: G's loss reaches D only through the fakes. Arxiv:1606.03498,
  Section 3.1. Metric: ``loss_gen``.
  """

  def objective(g_params, state, batch, *, key, shared_key):
    del shared_key  # G's update has no point to share: the step gives it key == shared_key.
    k_z, k_fake, k_real = jax.random.split(key, 3)
    real = lax.stop_gradient(_features(discriminator, state.d_params, batch['x_unl2'], k_real))
    z = jax.random.uniform(k_z, (batch['x_unl2'].shape[0], latent_dim))
    fake, g_batch_stats = apply_model(generator, g_params, state.g_batch_stats, z, train=True)
    fake_features = _features(discriminator, state.d_params, fake, k_fake)
    loss = mode_collapse.feature_matching_loss(real, fake_features) / real.shape[-1]
    return loss, (g_batch_stats, {'loss_gen': loss})

  return objective


class ParameterAverageState(NamedTuple):
  """State of :func:`parameter_average`: ``count`` updates seen, the (biased) ``average``."""

  count: jax.Array
  average: Any


def parameter_average(decay: float) -> optax.GradientTransformation:
  """Keeps ``a <- d a + (1 - d) theta`` of the parameters *after* each update; updates unchanged.

  Chain it last, so it sees the final updates: ``optax.chain(adam, parameter_average(d))``;
  the average then lives in the optimizer state and is checkpointed, skipped on a non-finite
  step and restored with it. It starts at zero; :func:`averaged_params` divides out the bias.
  This is the Polyak average of D that Improved GAN's public code tests (its ``ema``, decay
  0.9999); G's average in jaxgan's main trainer is :func:`jaxgan.game.update_ema`.
  """
  if not 0.0 <= decay < 1.0:
    raise ValueError(f'decay must be in [0, 1), got {decay!r}')

  def init(params):
    return ParameterAverageState(count=jnp.zeros((), jnp.int32),
                                 average=jax.tree.map(jnp.zeros_like, params))

  def update(updates, state, params):
    if params is None:
      raise ValueError('parameter_average needs the parameters: optimizer.update(g, s, params)')
    average = optax.incremental_update(optax.apply_updates(params, updates), state.average,
                                       step_size=1.0 - decay)
    return updates, ParameterAverageState(count=state.count + 1, average=average)

  return optax.GradientTransformation(init, update)


def averaged_params(average_state: ParameterAverageState, params, *, decay: float):
  """The debiased average ``a / (1 - d^t)`` after ``t`` updates; ``params`` at ``t = 0``."""
  t = average_state.count
  correction = 1.0 - decay ** t.astype(jnp.float32)
  return jax.tree.map(lambda a, p: jnp.where(t > 0, a / correction, p), average_state.average,
                      params)
