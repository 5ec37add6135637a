r"""The variational autoencoder (Kingma & Welling 2013, arXiv:1312.6114): a likelihood baseline.

A latent-variable model ``p(z) p(x | z)`` with ``p(z) = N(0, I)``, trained through an encoder
``q(z | x) = N(mu(x), diag(exp(log_var(x))))`` on the evidence lower bound

.. math::

   \log p(x) \ge \mathrm{ELBO}(x)
     = \mathbb{E}_{q(z|x)}[\log p(x | z)] - \mathrm{KL}(q(z|x) \,\|\, p(z)),

whose gradient is estimated with the reparameterization ``z = mu + exp(log_var / 2) * eps``,
``eps ~ N(0, I)``. The importance-weighted bound (Burda et al. 2015, arXiv:1509.00519, eq. 8)

.. math::

   \mathcal{L}_k(x) = \mathbb{E}\Big[\log \frac{1}{k} \sum_{i=1}^k w_i\Big], \qquad
   w_i = \frac{p(x, z_i)}{q(z_i | x)}, \quad z_i \sim q(z | x),

grows with ``k`` (``L_1 = ELBO``) towards ``log p(x)``; with ``k = 5000`` it is the test
log-likelihood that the IWAE paper and its successors report for MNIST.

The defaults are the IWAE paper's one-stochastic-layer architecture, so its numbers apply: an
MLP encoder 784-200-200-(50, 50) and decoder 50-200-200-784, tanh hidden units, a Bernoulli
decoder (``p(x | z) = prod_d Bernoulli(x_d; sigmoid(logits_d(z)))``) on *dynamically
binarized* MNIST (each pixel resampled as ``Bernoulli(intensity)`` every time an image is
seen: :func:`dynamic_binarize`). Data are flattened: ``x`` of shape ``(B, ...)`` is read as
``(B, D)`` with ``D = prod(...)``, and the decoder's outputs are ``(..., D)``.

Keys: every estimator draws the noise of its sample ``i`` as ``normal(fold_in(key, i), (B, L))``,
so :func:`elbo` with ``analytic_kl=False`` and :func:`iwae_bound` with ``k=1`` see the same
``z``, and the IWAE bound does not depend on ``chunk_size``. The training :func:`objective`
draws from ``split(key) = (binarize_key, noise_key)`` of the key its step gives it.

Bad input: :func:`bernoulli_log_likelihood` (and so :func:`elbo`, :func:`iwae_bound`,
:func:`elbo_loss` with the Bernoulli likelihood) and :func:`dynamic_binarize` check their data
on the host and raise ``ValueError`` when the data are concrete arrays: in eager calls, and in
the traced body of ``lax.map``/``lax.scan`` for data closed over from outside. Under ``jax.jit``
(the train step) the values are tracers and cannot be checked: check batches on the host before
the jitted step (:func:`check_binary`; :func:`jaxgan.density_train.train_and_evaluate` does), or
train with ``binarize=True``, which makes any batch in [0, 1] binary.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax
from jax.typing import ArrayLike

from jaxgan import game

LOG_2PI = math.log(2.0 * math.pi)
# log p(x | decoder_outputs) per example: (x (B, D), outputs (..., B, D)) -> (..., B).
LogLikelihood = Callable[[jax.Array, jax.Array], jax.Array]


def _host_values(x) -> np.ndarray | None:
  """``x`` as numpy when it is concrete, None when it is a tracer (inside ``jit``/``grad``...)."""
  try:
    return np.asarray(x)
  except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
    return None


def check_binary(x: ArrayLike, *, what: str = 'data') -> None:
  """Raises ``ValueError`` unless every value of the concrete array ``x`` is 0 or 1.

  A no-op for tracers (under ``jax.jit``), where values are unknown: call it on the host.
  """
  values = _host_values(x)
  if values is None:
    return
  bad = (values != 0) & (values != 1)
  if bad.any():
    first = values[bad].flat[0]
    raise ValueError(
        f'{what} must be binary (every value 0 or 1) for a Bernoulli likelihood; got '
        f'{int(bad.sum())} of {values.size} values that are not, e.g. {first!r}. Binarize '
        'intensities in [0, 1] first, e.g. with jaxgan.vae.dynamic_binarize.')


def dynamic_binarize(key: jax.Array, x01: ArrayLike) -> jax.Array:
  r"""One dynamic binarization: ``x_d ~ Bernoulli(x01_d)`` independently, same shape and dtype.

  Drawn afresh every time an example is used (Salakhutdinov & Murray 2008; the IWAE paper's
  MNIST), so the model sees an unbiased sample of binary images whose pixel means are the
  intensities. Binary inputs come back unchanged.

  Args:
    key: a PRNG key.
    x01: intensities in [0, 1], any shape; a float array.

  Returns:
    ``(x01.shape)`` array of 0s and 1s in ``x01``'s (float) dtype.

  Raises:
    ValueError: if ``x01`` is concrete and has values outside [0, 1] (e.g. images in [-1, 1]
      or uint8 in [0, 255]); not checked under ``jit``.
  """
  values = _host_values(x01)
  if values is not None and ((values < 0) | (values > 1)).any():
    raise ValueError(f'dynamic_binarize needs intensities in [0, 1]; got values in '
                     f'[{values.min()}, {values.max()}] (map images x to x / 255 or (x + 1) / 2)')
  x01 = jnp.asarray(x01)
  dtype = x01.dtype if jnp.issubdtype(x01.dtype, jnp.floating) else jnp.float32
  return jax.random.bernoulli(key, x01).astype(dtype)


class Encoder(nn.Module):
  """``q(z | x)``: an MLP from ``x`` to the mean and log-variance of a diagonal Gaussian.

  ``x (B, ...)`` is flattened to ``(B, D)``; ``h = tanh(Dense(h))`` for each of ``hidden``, then
  two linear heads, ``mean (B, L)`` and ``log_variance (B, L)``. ``hidden=()`` is the linear
  encoder of probabilistic PCA. Parameters: ``hidden_<i>``, ``mean``, ``log_variance``.

  Attributes:
    hidden: widths of the tanh layers (the IWAE paper's ``(200, 200)``).
    latent_dim: ``L``, the dimension of ``z`` (50).
  """

  hidden: Sequence[int] = (200, 200)
  latent_dim: int = 50

  @nn.compact
  def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    h = x.reshape(x.shape[0], -1)
    for i, width in enumerate(self.hidden):
      h = jnp.tanh(nn.Dense(width, name=f'hidden_{i}')(h))
    return (nn.Dense(self.latent_dim, name='mean')(h),
            nn.Dense(self.latent_dim, name='log_variance')(h))


class Decoder(nn.Module):
  """``p(x | z)``'s parameters: an MLP from ``z (..., L)`` to ``(..., D)`` outputs.

  ``h = tanh(Dense(h))`` for each of ``hidden``, then a linear layer ``output`` to ``data_dim``
  values: Bernoulli logits for :func:`bernoulli_log_likelihood` (the mean of a Gaussian for a
  Gaussian likelihood). Any leading dimensions are kept (``(k, B, L) -> (k, B, D)``).

  Attributes:
    hidden: widths of the tanh layers (the IWAE paper's ``(200, 200)``).
    latent_dim: ``L``; ``z``'s last dimension must match.
    data_dim: ``D``, the flattened data dimension (784 for MNIST).
  """

  hidden: Sequence[int] = (200, 200)
  latent_dim: int = 50
  data_dim: int = 784

  @nn.compact
  def __call__(self, z: jax.Array) -> jax.Array:
    if z.shape[-1] != self.latent_dim:
      raise ValueError(f'Decoder has latent_dim={self.latent_dim}; got z of shape {z.shape}')
    h = z
    for i, width in enumerate(self.hidden):
      h = jnp.tanh(nn.Dense(width, name=f'hidden_{i}')(h))
    return nn.Dense(self.data_dim, name='output')(h)


# The IWAE paper's one-stochastic-layer MNIST model, the default of every function here.
IWAE_ENCODER = Encoder()
IWAE_DECODER = Decoder()


def init_params(key: jax.Array, *, encoder: Encoder = IWAE_ENCODER,
                decoder: Decoder = IWAE_DECODER) -> dict:
  """``{'encoder': ..., 'decoder': ...}``: flax's default initializers for both networks.

  Raises:
    ValueError: if ``encoder.latent_dim != decoder.latent_dim``.
  """
  if encoder.latent_dim != decoder.latent_dim:
    raise ValueError(f'encoder.latent_dim={encoder.latent_dim} != '
                     f'decoder.latent_dim={decoder.latent_dim}')
  k_enc, k_dec = jax.random.split(key)
  return {'encoder': encoder.init(k_enc, jnp.zeros((1, decoder.data_dim)))['params'],
          'decoder': decoder.init(k_dec, jnp.zeros((1, decoder.latent_dim)))['params']}


def bernoulli_log_likelihood(x: ArrayLike, logits: ArrayLike) -> jax.Array:
  r"""``log p(x | z) = sum_d [x_d log sigmoid(l_d) + (1 - x_d) log sigmoid(-l_d)]`` per example.

  Equal to ``sum_d (x_d l_d - softplus(l_d))``, minus the binary cross-entropy summed over the
  last axis; finite for any finite logits.

  Args:
    x: binary data ``(B, D)`` (or any shape broadcastable against ``logits``).
    logits: the decoder's outputs ``(..., B, D)``.

  Returns:
    ``(..., B)``: the sum over the last axis.

  Raises:
    ValueError: if ``x`` is concrete and not binary (see the module docstring for where).

  Example:
    >>> import jax.numpy as jnp
    >>> # log sigmoid(0) + log(1 - sigmoid(ln 4)) = log(0.5 * 0.2)
    >>> print(f"{bernoulli_log_likelihood(jnp.array([1., 0.]), jnp.array([0., jnp.log(4.)])):.4f}")
    -2.3026
  """
  check_binary(x, what='x given to bernoulli_log_likelihood')
  return -jnp.sum(optax.sigmoid_binary_cross_entropy(jnp.asarray(logits), jnp.asarray(x)), -1)


def gaussian_kl(mean: ArrayLike, log_variance: ArrayLike) -> jax.Array:
  r"""``KL(N(mean, diag(exp(log_variance))) || N(0, I))``, analytically, per example.

  .. math::
    \mathrm{KL} = \frac{1}{2} \sum_j \left(e^{v_j} + \mu_j^2 - 1 - v_j\right),
    \quad v = \log\sigma^2

  (Kingma & Welling 2013, arXiv:1312.6114, Appendix B.)

  Args:
    mean, log_variance: ``(..., L)``.

  Returns:
    ``(...)``: the sum over the last axis; ``>= 0``, 0 only at ``mean = 0, log_variance = 0``.
  """
  mean, log_variance = jnp.asarray(mean), jnp.asarray(log_variance)
  return 0.5 * jnp.sum(jnp.exp(log_variance) + mean**2 - 1.0 - log_variance, -1)


def _noise(key: jax.Array, index, shape) -> jax.Array:
  """The ``eps`` of sample ``index``: the one convention every estimator shares."""
  return jax.random.normal(jax.random.fold_in(key, index), shape)


def _log_weights(params, x, mean, log_variance, eps, *, decoder, log_likelihood):
  r"""``log p(x | z) + log p(z) - log q(z | x)`` at ``z = mean + sigma eps``: ``(..., B)``."""
  z = mean + jnp.exp(0.5 * log_variance) * eps
  outputs = decoder.apply({'params': params['decoder']}, z)
  log_prior = -0.5 * jnp.sum(z**2 + LOG_2PI, -1)
  log_posterior = -0.5 * jnp.sum(eps**2 + LOG_2PI + log_variance, -1)
  return log_likelihood(x, outputs) + log_prior - log_posterior


def _flatten(x: ArrayLike) -> jax.Array:
  x = jnp.asarray(x)
  return x.reshape(x.shape[0], -1)


def _elbo_terms(params, x, key, *, encoder, decoder, log_likelihood):
  """``(log p(x | z), KL)`` per example, one reparameterized ``z`` each: two ``(B,)`` arrays."""
  mean, log_variance = encoder.apply({'params': params['encoder']}, x)
  eps = _noise(key, 0, mean.shape)
  z = mean + jnp.exp(0.5 * log_variance) * eps
  reconstruction = log_likelihood(x, decoder.apply({'params': params['decoder']}, z))
  return reconstruction, gaussian_kl(mean, log_variance)


def elbo(params, x: ArrayLike, key: jax.Array, *, encoder: Encoder = IWAE_ENCODER,
         decoder: Decoder = IWAE_DECODER,
         log_likelihood: LogLikelihood = bernoulli_log_likelihood,
         analytic_kl: bool = True) -> jax.Array:
  r"""A one-sample, reparameterized estimate of the ELBO of each example.

  With ``z = mu(x) + sigma(x) eps``, ``eps ~ N(0, I)`` (arXiv:1312.6114, eqs. 7 and 10):

  * ``analytic_kl=True`` (the paper's SGVB estimator B, lower variance):
    ``log p(x | z) - KL(q(z | x) || p(z))`` with :func:`gaussian_kl`;
  * ``analytic_kl=False`` (estimator A): ``log p(x | z) + log p(z) - log q(z | x)``, the log
    importance weight; equal to :func:`iwae_bound` with ``k=1`` and the same ``key``.

  Both are unbiased for the ELBO; gradients flow through ``z`` to the encoder.

  Args:
    params: ``{'encoder': ..., 'decoder': ...}`` (:func:`init_params`).
    x: data ``(B, ...)``, flattened to ``(B, D)``; binary for the Bernoulli likelihood.
    key: the noise ``eps = normal(fold_in(key, 0), (B, L))``.
    encoder, decoder: the modules ``params`` belong to (default: the IWAE paper's).
    log_likelihood: ``(x, decoder_outputs) -> (B,)``; Bernoulli on logits by default.
    analytic_kl: which of the two estimators (above).

  Returns:
    ``(B,)``: the estimate per example, in nats.
  """
  x = _flatten(x)
  if analytic_kl:
    reconstruction, kl = _elbo_terms(params, x, key, encoder=encoder, decoder=decoder,
                                     log_likelihood=log_likelihood)
    return reconstruction - kl
  mean, log_variance = encoder.apply({'params': params['encoder']}, x)
  return _log_weights(params, x, mean, log_variance, _noise(key, 0, mean.shape),
                      decoder=decoder, log_likelihood=log_likelihood)


def iwae_bound(params, x: ArrayLike, key: jax.Array, *, k: int, chunk_size: int = 100,
               encoder: Encoder = IWAE_ENCODER, decoder: Decoder = IWAE_DECODER,
               log_likelihood: LogLikelihood = bernoulli_log_likelihood) -> jax.Array:
  r"""The importance-weighted bound ``log (1/k) sum_i w_i`` of each example (arXiv:1509.00519).

  .. math::
    \hat{\mathcal{L}}_k(x) = \operatorname{logsumexp}_i \log w_i - \log k, \qquad
    \log w_i = \log p(x | z_i) + \log p(z_i) - \log q(z_i | x),

  with ``z_i = mu + sigma eps_i`` and ``eps_i = normal(fold_in(key, i), (B, L))``. Its
  expectation is ``L_k``, which increases with ``k`` from the ELBO (``k = 1``) to ``log p(x)``
  (Burda et al., Theorem 1); ``k = 5000`` is the standard MNIST test log-likelihood estimate.

  The ``k`` samples are decoded ``chunk_size`` at a time under ``lax.map`` (the log-weights,
  ``(k, B)``, are all kept), so memory is about ``chunk_size * B * D`` floats: ``k=5000`` with
  ``B=100`` and the default chunk holds 100 x 100 x 784 logits at a time. The result does not
  depend on ``chunk_size``.

  Args:
    params: ``{'encoder': ..., 'decoder': ...}``.
    x: data ``(B, ...)``, flattened to ``(B, D)``.
    key: the samples' noise (above).
    k: the number of importance samples, a Python int ``>= 1``.
    chunk_size: samples decoded at once, a Python int ``>= 1``.
    encoder, decoder, log_likelihood: as for :func:`elbo`.

  Returns:
    ``(B,)``: the estimate per example, in nats.

  Raises:
    ValueError: if ``k < 1`` or ``chunk_size < 1``.
  """
  if operator.index(k) < 1:
    raise ValueError(f'iwae_bound needs k >= 1 importance samples; got k={k}')
  if operator.index(chunk_size) < 1:
    raise ValueError(f'iwae_bound needs chunk_size >= 1; got chunk_size={chunk_size}')
  x = _flatten(x)
  mean, log_variance = encoder.apply({'params': params['encoder']}, x)

  def log_weights(indices):  # (c,) sample indices -> (c, B) log-weights
    eps = jax.vmap(lambda i: _noise(key, i, mean.shape))(indices)
    return _log_weights(params, x, mean, log_variance, eps, decoder=decoder,
                        log_likelihood=log_likelihood)

  chunk = min(chunk_size, k)
  num_full, rest = divmod(k, chunk)
  parts = []
  if num_full:
    indices = jnp.arange(num_full * chunk).reshape(num_full, chunk)
    parts.append(lax.map(log_weights, indices).reshape(num_full * chunk, x.shape[0]))
  if rest:
    parts.append(log_weights(jnp.arange(num_full * chunk, k)))
  return jax.nn.logsumexp(jnp.concatenate(parts), axis=0) - math.log(k)


def elbo_loss(params, x: ArrayLike, key: jax.Array, *, encoder: Encoder = IWAE_ENCODER,
              decoder: Decoder = IWAE_DECODER,
              log_likelihood: LogLikelihood = bernoulli_log_likelihood) -> jax.Array:
  """The training loss: ``-mean_b elbo(params, x, key)_b`` (analytic KL), a scalar to minimize."""
  return -jnp.mean(elbo(params, x, key, encoder=encoder, decoder=decoder,
                        log_likelihood=log_likelihood))


def objective(*, encoder: Encoder = IWAE_ENCODER, decoder: Decoder = IWAE_DECODER,
              log_likelihood: LogLikelihood = bernoulli_log_likelihood,
              binarize: bool = True) -> game.Objective:
  """The VAE as the one player of :func:`jaxgan.game.make_train_step`: minimize the negative ELBO.

  ``objective(params, state, batch, *, key, shared_key) -> (loss, ({}, metrics))`` with
  ``loss = -mean_b ELBO(x_b)``, the analytic-KL estimator of :func:`elbo`. ``key`` splits into
  ``(binarize_key, noise_key)``; with ``binarize=True``, ``batch['x']`` holds intensities in
  [0, 1] and the loss is that of ``dynamic_binarize(binarize_key, batch['x'])`` (binary data
  pass unchanged); with False the batch is used as is (binary for the Bernoulli likelihood;
  real-valued for a Gaussian one). The step (:func:`jaxgan.density_train.make_train_step`)
  folds its step number into the key it gives, so every step draws a new binarization and new
  noise. ``state`` and ``shared_key`` are unused; the VAE has no model state.

  Metrics (scalars, of the batch before the update): ``elbo`` (``-loss``), ``kl`` (mean
  ``KL(q || p)``), ``reconstruction`` (mean ``log p(x | z)``); the step adds ``g_loss`` (the
  negative ELBO) and ``g_grad_norm``.
  """

  def loss_fn(params, state, batch, *, key, shared_key):
    del state, shared_key
    binarize_key, noise_key = jax.random.split(key)
    x = _flatten(batch['x'])
    if binarize:
      x = dynamic_binarize(binarize_key, x)
    reconstruction, kl = _elbo_terms(params, x, noise_key, encoder=encoder, decoder=decoder,
                                     log_likelihood=log_likelihood)
    loss = -jnp.mean(reconstruction - kl)
    return loss, ({}, {'elbo': -loss, 'kl': jnp.mean(kl),
                       'reconstruction': jnp.mean(reconstruction)})

  return loss_fn


def sample(params, key: jax.Array, n: int, *, decoder: Decoder = IWAE_DECODER,
           binary: bool = False) -> jax.Array:
  """``n`` draws from the model: ``z ~ N(0, I)``, then ``sigmoid(decoder(z))``.

  Returns the Bernoulli means ``(n, D)`` in (0, 1) (the usual, smooth, picture of a VAE sample),
  or with ``binary=True`` a binary draw ``x ~ Bernoulli(means)``. The two halves of
  ``split(key)`` draw ``z`` and ``x``. Reshape to ``(n, 28, 28, 1)`` for MNIST grids.
  """
  z_key, x_key = jax.random.split(key)
  z = jax.random.normal(z_key, (n, decoder.latent_dim))
  means = jax.nn.sigmoid(decoder.apply({'params': params['decoder']}, z))
  if binary:
    return jax.random.bernoulli(x_key, means).astype(means.dtype)
  return means
