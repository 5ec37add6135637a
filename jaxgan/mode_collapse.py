"""Techniques against mode collapse, each a pure function or a flax module.

* :func:`feature_matching_loss`: G matches the mean of D's intermediate features on real and fake
  batches (Salimans et al. 2016, arXiv:1606.03498, Section 3.1). :func:`discriminator_features`
  reads them from the ``'intermediates'`` collection that jaxgan's discriminators ``sow`` into.
* :class:`MinibatchDiscrimination`: the T-tensor layer of arXiv:1606.03498, Section 3.2.
* :func:`minibatch_stddev` / :class:`MinibatchStdDev`: the one-feature batch statistic of
  Karras et al. 2018, arXiv:1710.10196, Section 3.
* :class:`StabilizedMLPDiscriminator`: an MLP discriminator with those layers and optional spectral
  normalization (Miyato et al. 2018, arXiv:1802.05957, via ``flax.linen.SpectralNorm``).
* :func:`unroll`: ``k`` discriminator updates as one ``lax.scan``, differentiable end to end, for
  the unrolled GAN (Metz et al. 2017, arXiv:1611.02163).
* :func:`pack_samples` / :func:`packed_shape`: PacGAN packing (Lin et al. 2018, arXiv:1712.04086).
* :func:`add_instance_noise`: Gaussian noise on D's inputs (Sønderby et al. 2017,
  arXiv:1610.04490; Arjovsky & Bottou 2017, arXiv:1701.04862).

WGAN weight clipping, WGAN-GP and R1 live in :mod:`jaxgan.penalties`; the loss-sensitive GAN in
:mod:`jaxgan.losses`; :func:`jaxgan.train.make_train_step` wires all of them in by keyword.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from jax import lax

from jaxgan import models, rng


def feature_matching_loss(real_features: jax.Array, fake_features: jax.Array, *,
                          axis_name: str | None = None) -> jax.Array:
  r"""Feature matching: squared distance between the mean D features of real and fake data.

  .. math::
    L_G = \lVert \mathbb{E}_x f(x) - \mathbb{E}_z f(G(z)) \rVert_2^2

  ``f`` is an intermediate layer of D (jaxgan's discriminators ``sow`` the layer before their
  last ``Dense`` as ``'features'``). G minimizes ``L_G`` instead of fooling D's output; D trains
  as usual. Zero exactly when the batch means agree.

  Paper: Salimans et al. 2016, arXiv:1606.03498, Section 3.1.

  Args:
    real_features: ``(B, ...)`` features of a real batch (treated as constants by G: they do
      not depend on G's parameters).
    fake_features: ``(B', ...)`` features of a fake batch; ``B'`` may differ from ``B``.
    axis_name: under ``pmap``/``shard_map``, the device axis: the means are then taken over the
      global batch with ``lax.pmean``, so N devices compute what one device computes.

  Returns:
    A scalar ``>= 0``.

  Example:
    >>> import jax.numpy as jnp
    >>> real = jnp.array([[1.0, 0.0], [3.0, 0.0]])  # mean (2, 0)
    >>> fake = jnp.array([[0.0, 1.0]])              # mean (0, 1)
    >>> print(feature_matching_loss(real, fake))   # 2^2 + 1^2
    5.0
  """
  real_mean = jnp.mean(real_features, axis=0)
  fake_mean = jnp.mean(fake_features, axis=0)
  if axis_name is not None:
    real_mean, fake_mean = lax.pmean((real_mean, fake_mean), axis_name)
  return jnp.sum(jnp.square(real_mean - fake_mean))


def discriminator_features(discriminator: nn.Module, params, batch_stats, x: jax.Array, *,
                           train: bool, name: str = 'features'
                           ) -> tuple[jax.Array, jax.Array, Any]:
  """Runs ``discriminator`` and returns ``(logits, features, new_batch_stats)``.

  ``features`` is what the module sowed into ``'intermediates'`` under ``name`` (the last value
  if it sowed more than once). ``batch_stats`` (batch norm, spectral-norm power iterations) are
  updated only when ``train`` and non-empty, as in :func:`jaxgan.train.apply_model`.

  Raises:
    ValueError: if the module sows nothing under ``name``.
  """
  variables = {'params': params}
  mutable = ['intermediates']
  if batch_stats:
    variables['batch_stats'] = batch_stats
    if train:
      mutable.append('batch_stats')
  logits, updates = discriminator.apply(variables, x, train=train, mutable=mutable)
  sown = updates.get('intermediates', {}).get(name)
  if sown is None:
    raise ValueError(f'{type(discriminator).__name__} sows no intermediate named {name!r}; '
                     f"feature matching needs self.sow('intermediates', {name!r}, h)")
  return logits, sown[-1], updates.get('batch_stats', batch_stats)


class MinibatchDiscrimination(nn.Module):
  r"""Minibatch discrimination: features of each sample's closeness to the rest of its batch.

  .. math::
    M_i = f(x_i)\, T \in \mathbb{R}^{K \times C}, \qquad
    o(x_i)_k = \sum_{j=1}^{n} \exp(-\lVert M_{i,k} - M_{j,k} \rVert_{L_1}),

  with the sum over the whole batch, ``j = i`` included (as in the paper), so each
  ``o(x_i)_k`` lies in ``[1, n]``: ``n`` when all samples are identical, near 1 when every
  other sample is far away. The output is ``[f(x_i), o(x_i)]``, shape ``(n, A + K)``. A
  collapsed generator's batch has large ``o``, which D learns to reject. Samples interact, so
  keep real and fake batches apart (jaxgan's step applies D to each separately), and note that
  the per-example gradients assumed by :mod:`jaxgan.penalties` no longer hold exactly.

  Paper: Salimans et al. 2016, arXiv:1606.03498, Section 3.2.

  Attributes:
    num_kernels: ``K``, the number of closeness features.
    kernel_dim: ``C``, the dimension each kernel compares in.
    kernel_init: initializer of ``T`` (shape ``(A, K * C)``).
  """

  num_kernels: int = 16
  kernel_dim: int = 8
  kernel_init: Callable = nn.initializers.normal(stddev=0.1)

  @nn.compact
  def __call__(self, features: jax.Array) -> jax.Array:
    if features.ndim != 2:
      raise ValueError(f'MinibatchDiscrimination takes (batch, features), got shape '
                       f'{features.shape}')
    t = self.param('T', self.kernel_init, (features.shape[-1], self.num_kernels * self.kernel_dim))
    m = (features @ t).reshape((features.shape[0], self.num_kernels, self.kernel_dim))
    # The L1 distances as a sum over the C kernel dimensions of (K, n, n) arrays, whose last axis
    # is the batch: ~4x faster on a CPU (forward and backward) than reducing a (n, n, K, C)
    # array over its short last axis.
    m = jnp.transpose(m, (2, 1, 0))  # (C, K, n)
    l1 = sum(jnp.abs(m[c][:, :, None] - m[c][:, None, :]) for c in range(self.kernel_dim))
    closeness = jnp.sum(jnp.exp(-l1), axis=-1).T  # (n, K)
    return jnp.concatenate([features, closeness], axis=-1)


def minibatch_stddev(x: jax.Array, *, group_size: int | None = None,
                     epsilon: float = 1e-8) -> jax.Array:
  r"""Appends the batch's average standard deviation as one more feature (channel).

  .. math::
    s = \operatorname{mean}_{f} \sqrt{\operatorname{Var}_{i \in g}[x_{i,f}] + \epsilon}

  The (biased, population) variance of each feature ``f`` over the samples of a group ``g``,
  its square root, averaged over all features (and positions) into one scalar per group, which
  is appended to every sample of the group along the last axis: ``(B, ..., C) -> (B, ..., C+1)``.
  A collapsed batch has ``s`` near 0. Groups are consecutive runs of ``group_size`` samples
  (the paper uses 4); ``None`` makes the whole batch one group.

  Paper: Karras et al. 2018, arXiv:1710.10196, Section 3.

  Args:
    x: ``(B, ..., C)`` activations.
    group_size: samples per group; must divide ``B``. ``None``: ``B``.
    epsilon: added to the variance before the square root (keeps the gradient finite at 0).

  Returns:
    ``(B, ..., C + 1)``.

  Raises:
    ValueError: if ``group_size`` does not divide the batch.

  Example:
    >>> import jax.numpy as jnp
    >>> minibatch_stddev(jnp.array([[0.0], [2.0]]), epsilon=0.0)  # std of {0, 2} is 1
    Array([[0., 1.],
           [2., 1.]], dtype=float32)
  """
  batch = x.shape[0]
  group_size = batch if group_size is None else group_size
  if group_size < 1 or batch % group_size:
    raise ValueError(f'group_size={group_size} must divide the batch of {batch} samples')
  groups = x.reshape((batch // group_size, group_size, *x.shape[1:]))
  std = jnp.sqrt(jnp.var(groups, axis=1) + epsilon)  # (G, ..., C)
  stat = jnp.mean(std.reshape((std.shape[0], -1)), axis=-1)  # (G,)
  stat = jnp.repeat(stat, group_size).reshape((batch,) + (1,) * (x.ndim - 1))
  return jnp.concatenate([x, jnp.broadcast_to(stat, (*x.shape[:-1], 1))], axis=-1)


class MinibatchStdDev(nn.Module):
  """:func:`minibatch_stddev` as a layer (no parameters)."""

  group_size: int | None = None

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    return minibatch_stddev(x, group_size=self.group_size)


class StabilizedMLPDiscriminator(nn.Module):
  """MLP discriminator with optional minibatch features and spectral normalization.

  ``x -> [Dense -> act] x len(hidden) -> sow('features') -> [minibatch stddev]
  -> [minibatch discrimination] -> Dense(1)``. The sown features (what feature matching
  matches) are the last hidden layer, before the batch statistics are appended. With
  ``spectral_norm`` every ``Dense`` is wrapped in ``nn.SpectralNorm`` (one power iteration per
  call in training): its ``u`` vectors and ``sigma`` live in the ``'batch_stats'`` collection,
  which :func:`jaxgan.train.apply_model` already threads through the step.

  Attributes:
    hidden: widths of the hidden layers.
    activation: one of :data:`jaxgan.models.ACTIVATIONS`.
    minibatch_kernels: ``K`` of :class:`MinibatchDiscrimination`; 0 leaves it out.
    minibatch_kernel_dim: ``C`` of :class:`MinibatchDiscrimination`.
    minibatch_stddev: append :func:`minibatch_stddev` of the last hidden layer.
    spectral_norm: spectrally normalize every ``Dense`` (arXiv:1802.05957).
    bias_scale: biases start ``U(+-bias_scale / sqrt(fan_in))``
      (:func:`jaxgan.models.fan_in_uniform_bias`); 0 starts them at zero.
  """

  hidden: Sequence[int]
  activation: str = 'relu'
  minibatch_kernels: int = 0
  minibatch_kernel_dim: int = 8
  minibatch_stddev: bool = False
  spectral_norm: bool = False
  bias_scale: float = 0.0

  @nn.compact
  def __call__(self, x, train: bool = False):
    act = models._activation(self.activation)

    def dense(width, h):
      layer = nn.Dense(width, bias_init=models.fan_in_uniform_bias(self.bias_scale, h.shape[-1]))
      if self.spectral_norm:
        return nn.SpectralNorm(layer)(h, update_stats=train)
      return layer(h)

    h = x.reshape((x.shape[0], -1))
    for width in self.hidden:
      h = act(dense(width, h))
    self.sow('intermediates', 'features', h)
    if self.minibatch_stddev:
      h = MinibatchStdDev()(h)
    if self.minibatch_kernels:
      h = MinibatchDiscrimination(self.minibatch_kernels, self.minibatch_kernel_dim)(h)
    return dense(1, h)[:, 0]


def unroll(update: Callable[[Any], Any], carry, num_steps: int):
  r"""``update`` applied ``num_steps`` times, as one ``lax.scan``: ``update^k(carry)``.

  The unrolled GAN (arXiv:1611.02163) trains G against
  ``f(\theta_G, \theta_D^K)``, where ``\theta_D^{k+1} = \theta_D^k + \eta^k
  \frac{\partial f(\theta_G, \theta_D^k)}{\partial \theta_D^k}`` are ``K`` discriminator updates
  that are *differentiated through*: ``jax.grad`` of a function of ``unroll(...)`` flows through
  every update back to ``\theta_G``. ``num_steps=0`` returns ``carry`` unchanged, so G's loss
  is then the ordinary one.

  Args:
    update: a pure function ``carry -> carry`` (e.g. one optimizer step of D, closing over G's
      fake batch so that the dependence on G's parameters is kept).
    carry: any pytree (e.g. D's parameters and optimizer state).
    num_steps: ``K >= 0``, a Python int.

  Returns:
    The carry after ``num_steps`` updates.

  Example:
    >>> print(unroll(lambda x: 0.5 * x, 8.0, 3))
    1.0
  """
  if num_steps < 0:
    raise ValueError(f'num_steps must be >= 0, got {num_steps}')
  if num_steps == 0:
    return carry
  return lax.scan(lambda c, _: (update(c), None), carry, None, length=num_steps)[0]


def packed_shape(data_shape: Sequence[int], pack: int) -> tuple[int, ...]:
  """Shape of one packed example: the last axis (features or channels) times ``pack``."""
  if pack < 1:
    raise ValueError(f'pack must be >= 1, got {pack}')
  return (*tuple(data_shape)[:-1], data_shape[-1] * pack)


def pack_samples(x: jax.Array, pack: int) -> jax.Array:
  r"""PacGAN packing: ``pack`` consecutive samples concatenated into one D input.

  ``(B, ..., C) -> (B / pack, ..., pack * C)``: packed row ``i`` holds samples
  ``i*pack, i*pack + 1, ..., i*pack + pack - 1``, in that order, along the last axis (features
  for vectors, channels for images, as in the paper). D then judges ``pack`` samples jointly,
  which penalizes a generator whose samples are all alike. Real packs hold only real samples and
  fake packs only fakes; D's input layer is ``pack`` times wider (see :func:`packed_shape`).

  Paper: Lin et al. 2018, arXiv:1712.04086.

  Raises:
    ValueError: if ``pack`` does not divide the batch.

  Example:
    >>> import jax.numpy as jnp
    >>> pack_samples(jnp.array([[0, 1], [2, 3], [4, 5], [6, 7]]), 2)
    Array([[0, 1, 2, 3],
           [4, 5, 6, 7]], dtype=int32)
  """
  batch = x.shape[0]
  if pack < 1 or batch % pack:
    raise ValueError(f'pack={pack} must be >= 1 and divide the batch of {batch} samples')
  if pack == 1:
    return x
  grouped = x.reshape((batch // pack, pack, *x.shape[1:]))
  grouped = jnp.moveaxis(grouped, 1, -2)  # (B/pack, ..., pack, C)
  return grouped.reshape((batch // pack, *x.shape[1:-1], pack * x.shape[-1]))


def add_instance_noise(key: jax.Array, x: jax.Array, *, std: float,
                       axis_name: str | None = None) -> jax.Array:
  r"""Instance noise: ``x + std * N(0, I)``, applied to real and fake inputs of D alike.

  Blurring both distributions makes their supports overlap, so D cannot separate them perfectly
  and G's gradient stays informative (Arjovsky & Bottou 2017, arXiv:1701.04862; Sønderby et
  al. 2017, arXiv:1610.04490, who anneal ``std`` to 0). Here ``std`` is constant.

  Args:
    key: PRNG key.
    x: any shape.
    std: ``>= 0``; 0 returns ``x`` unchanged.
    axis_name: under ``pmap``/``shard_map``, the device axis: the noise is drawn for the global
      batch and each device keeps its rows (:func:`jaxgan.rng.local_rows`), so the result does
      not depend on the number of devices.

  Raises:
    ValueError: if ``std`` is negative.
  """
  if not std >= 0:
    raise ValueError(f'instance noise std must be >= 0, got {std!r}')
  if std == 0:
    return x
  noise = rng.local_rows(key, lambda k, n: jax.random.normal(k, (n, *x.shape[1:]), x.dtype),
                         x.shape[0], axis_name)
  return x + std * noise


def discriminator_view(*, pack: int = 1, instance_noise: float = 0.0,
                       axis_name: str | None = None) -> Callable | None:
  """What D is shown of a batch: ``view(x, key)`` adds instance noise, then forms PacGAN packs.

  Returns None when ``pack == 1`` and ``instance_noise == 0`` (D sees the batch as it is).
  """
  if pack == 1 and not instance_noise:
    return None

  def view(x, key):
    if instance_noise:
      x = add_instance_noise(key, x, std=instance_noise, axis_name=axis_name)
    return pack_samples(x, pack)

  return view


def feature_matching_objective(discriminator: nn.Module, d_params, d_batch_stats, real, fake, *,
                               axis_name: str | None = None) -> jax.Array:
  """G's feature-matching loss: :func:`feature_matching_loss` of D's sown ``'features'`` on
  ``real`` (a constant for G) and ``fake``, D in training mode (arXiv:1606.03498)."""
  _, real_features, _ = discriminator_features(discriminator, d_params, d_batch_stats, real,
                                               train=True)
  _, fake_features, _ = discriminator_features(discriminator, d_params, d_batch_stats, fake,
                                               train=True)
  return feature_matching_loss(real_features, fake_features, axis_name=axis_name)


def unrolled_discriminator(d_loss: Callable, d_optimizer: optax.GradientTransformation,
                           num_steps: int, *, project: Callable | None = None,
                           axis_name: str | None = None) -> Callable:
  r"""The unrolled GAN's look-ahead D (Metz et al. 2016, arXiv:1611.02163).

  Returns ``lookahead(d_params, d_opt_state, d_batch_stats, step, real, fake, key) ->
  (d_params, d_opt_state, d_batch_stats)`` after ``num_steps`` updates of D with
  ``d_optimizer`` on ``(real, fake)``, each on the gradient of ``d_loss`` (the signature of
  :func:`jaxgan.gan.make_discriminator_loss`'s ``loss_on``; key of update ``j``:
  ``fold_in(key, 2 + j)``), averaged over ``axis_name`` and followed by ``project``. The
  updates are differentiable in ``fake``, so G's loss against the look-ahead D is
  differentiated through them (:func:`unroll`); they are not kept: D trains as usual.
  """
  pmean = (lambda tree: lax.pmean(tree, axis_name)) if axis_name else (lambda tree: tree)

  def lookahead(d_params, d_opt_state, d_batch_stats, step, real, fake, key):
    def d_update(carry):
      (params, opt_state, stats), j = carry
      grads, (stats, _) = jax.grad(d_loss, has_aux=True)(params, stats, step, real, fake,
                                                         jax.random.fold_in(key, 2 + j))
      updates, opt_state = d_optimizer.update(pmean(grads), opt_state, params)
      params = optax.apply_updates(params, updates)
      if project is not None:
        params = project(params)
      return (params, opt_state, pmean(stats)), j + 1

    return unroll(d_update, ((d_params, d_opt_state, d_batch_stats), 0), num_steps)[0]

  return lookahead

