"""Exact tests of jaxgan.vae: closed forms, hand values, quadrature, and probabilistic PCA.

The centrepiece is the linear-Gaussian VAE: with a linear decoder ``x = W z + b + sigma eps``
and a linear encoder, the ELBO's maximum is the probabilistic-PCA log-likelihood (Tipping &
Bishop 1999), known in closed form from the data covariance's eigenvalues. At that optimum the
encoder is the exact posterior, so the ELBO is tight: every log importance weight equals
``log p(x)``. A second tiny Bernoulli model with a 1-D latent has ``log p(x)`` and the exact
ELBO by quadrature, against which the IWAE bounds are ordered.
"""

from __future__ import annotations

import functools
import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxgan import density_train, vae

LN4 = math.log(4.0)


@pytest.fixture
def x64():
  """Float64 for the closed forms, scoped to one test so it never leaks into other files."""
  with jax.enable_x64(True):
    yield


# ----------------------------------------------------------------------------- hand values


def test_gaussian_kl_hand_value():
  # mean (1, 0), variances (1, 2): 1/2 [(1 + 1 - 1 - 0) + (2 + 0 - 1 - ln 2)] = 1 - ln(2) / 2
  kl = vae.gaussian_kl(jnp.array([[1.0, 0.0]]), jnp.array([[0.0, math.log(2.0)]]))
  chex.assert_shape(kl, (1,))
  np.testing.assert_allclose(kl, [1.0 - math.log(2.0) / 2], rtol=1e-6)
  np.testing.assert_allclose(vae.gaussian_kl(jnp.zeros((3, 4)), jnp.zeros((3, 4))), 0.0)


def test_gaussian_kl_equals_monte_carlo_of_log_ratio():
  # KL = E_q[log q(z) - log p(z)], by 200,000 samples of a 2-D q; the MC error is ~0.003.
  mean, log_var = np.array([0.5, -1.0]), np.array([-1.0, 0.7])
  eps = np.random.default_rng(0).normal(size=(200_000, 2))
  z = mean + np.exp(0.5 * log_var) * eps
  log_ratio = np.sum(-0.5 * (eps**2 + log_var) + 0.5 * z**2, -1)
  np.testing.assert_allclose(vae.gaussian_kl(mean, log_var), np.mean(log_ratio), atol=0.015)


def test_bernoulli_log_likelihood_hand_value():
  # log sigmoid(0) + log(1 - sigmoid(ln 4)) + log(1 - sigmoid(-ln 4)) = ln(0.5 * 0.2 * 0.8)
  x = jnp.array([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]])
  logits = jnp.array([[0.0, LN4, -LN4], [0.0, LN4, -LN4]])
  # second row: ln(0.5 * 0.8 * 0.2), the same product
  ll = vae.bernoulli_log_likelihood(x, logits)
  np.testing.assert_allclose(ll, [math.log(0.08)] * 2, rtol=1e-6)
  # extreme logits: the right pixel costs ~0, the wrong one exactly |logit|
  ll = vae.bernoulli_log_likelihood(jnp.array([1.0, 0.0]), jnp.array([100.0, 100.0]))
  np.testing.assert_allclose(ll, -100.0, rtol=1e-6)


def test_bernoulli_log_likelihood_broadcasts_over_samples():
  x = jnp.array([[1.0, 0.0], [0.0, 1.0]])
  logits = jnp.zeros((5, 2, 2))
  np.testing.assert_allclose(vae.bernoulli_log_likelihood(x, logits), 2 * math.log(0.5) *
                             np.ones((5, 2)), rtol=1e-6)


# ----------------------------------------------------------------------------- bad input


TINY_ENCODER = vae.Encoder(hidden=(8,), latent_dim=1)
TINY_DECODER = vae.Decoder(hidden=(8,), latent_dim=1, data_dim=8)
TINY = {'encoder': TINY_ENCODER, 'decoder': TINY_DECODER}


@pytest.fixture(scope='module')
def tiny():
  """A random tiny Bernoulli VAE (8 pixels, 1-D latent) and 32 random binary images."""
  params = jax.jit(functools.partial(vae.init_params, **TINY))(jax.random.PRNGKey(0))
  x = jnp.asarray(np.random.default_rng(1).random((32, 8)) < 0.5, jnp.float32)
  return params, x


def test_non_binary_data_raise(tiny):
  params, x = tiny
  grey = x.at[0, 0].set(0.5)
  key = jax.random.PRNGKey(0)
  with pytest.raises(ValueError, match='must be binary'):
    vae.bernoulli_log_likelihood(grey, jnp.zeros_like(grey))
  with pytest.raises(ValueError, match='must be binary'):
    vae.elbo(params, grey, key, **TINY)
  with pytest.raises(ValueError, match='must be binary'):
    vae.elbo_loss(params, grey, key, **TINY)
  with pytest.raises(ValueError, match='must be binary'):  # checked inside lax.map's body too
    vae.iwae_bound(params, grey, key, k=4, chunk_size=2, **TINY)
  with pytest.raises(ValueError, match='must be binary'):
    vae.check_binary(2 * x)


def test_iwae_rejects_k_below_one(tiny):
  params, x = tiny
  for k in (0, -3):
    with pytest.raises(ValueError, match='k >= 1'):
      vae.iwae_bound(params, x, jax.random.PRNGKey(0), k=k, **TINY)
  with pytest.raises(ValueError, match='chunk_size'):
    vae.iwae_bound(params, x, jax.random.PRNGKey(0), k=3, chunk_size=0, **TINY)


def test_dynamic_binarize():
  x01 = jnp.array([0.0, 0.1, 0.5, 0.9, 1.0])
  with pytest.raises(ValueError, match=r'\[0, 1\]'):
    vae.dynamic_binarize(jax.random.PRNGKey(0), 2 * x01 - 1)
  keys = jax.random.split(jax.random.PRNGKey(0), 20_000)
  draws = jax.jit(jax.vmap(vae.dynamic_binarize, in_axes=(0, None)))(keys, x01)
  assert draws.dtype == jnp.float32
  assert set(np.unique(draws)) <= {0.0, 1.0}
  np.testing.assert_array_equal(draws[:, 0], 0.0)  # 0 and 1 are kept exactly
  np.testing.assert_array_equal(draws[:, -1], 1.0)
  # pixel means are the intensities: std of a mean <= 0.5 / sqrt(20000) = 0.0035
  np.testing.assert_allclose(draws.mean(0), x01, atol=0.015)


# ----------------------------------------------------------------------------- estimators


def test_iwae_with_one_sample_is_the_elbo_with_the_same_noise(tiny):
  params, x = tiny
  key = jax.random.PRNGKey(7)
  iwae_1 = jax.jit(functools.partial(vae.iwae_bound, k=1, **TINY))(params, x, key)
  elbo_fn = jax.jit(functools.partial(vae.elbo, analytic_kl=False, **TINY))
  elbo_a = elbo_fn(params, x, key)
  chex.assert_shape(iwae_1, (32,))
  np.testing.assert_allclose(iwae_1, elbo_a, atol=1e-5)
  assert not np.allclose(elbo_a, elbo_fn(params, x, jax.random.PRNGKey(8)))  # noise matters


def test_iwae_does_not_depend_on_chunk_size(tiny):
  params, x = tiny
  key = jax.random.PRNGKey(3)
  bounds = [jax.jit(functools.partial(vae.iwae_bound, k=7, chunk_size=c, **TINY))(params, x, key)
            for c in (3, 7)]  # 3: two full chunks and a rest of 1
  for bound in bounds[1:]:
    np.testing.assert_allclose(bound, bounds[0], atol=1e-5)


@jax.jit
def _quadrature(params, x):
  """``log p(x)`` and the exact ELBO of the 1-D-latent tiny model, on a grid of 4001 z in
  [-12, 12] (the integrands are smooth and negligible beyond): two ``(B,)`` arrays."""
  z = jnp.linspace(-12.0, 12.0, 4001)
  dz = z[1] - z[0]
  z_grid = jnp.broadcast_to(z[:, None, None], (len(z), x.shape[0], 1))  # (Z, B, 1)
  logits = TINY_DECODER.apply({'params': params['decoder']}, z_grid)
  log_px_z = vae.bernoulli_log_likelihood(x, logits)  # (Z, B)
  log_pz = -0.5 * (z**2 + math.log(2 * math.pi))
  log_px = jax.nn.logsumexp(log_px_z + log_pz[:, None], 0) + jnp.log(dz)
  mean, log_var = TINY_ENCODER.apply({'params': params['encoder']}, x)
  mean, log_var = mean[:, 0], log_var[:, 0]
  log_q = -0.5 * ((z[:, None] - mean)**2 / jnp.exp(log_var) + log_var + math.log(2 * math.pi))
  elbo = jnp.sum(jnp.exp(log_q) * (log_px_z + log_pz[:, None] - log_q), 0) * dz
  return log_px, elbo


def test_elbo_estimators_are_unbiased_for_the_exact_elbo(tiny):
  params, x = tiny
  _, exact_elbo = _quadrature(params, x)
  keys = jax.random.split(jax.random.PRNGKey(11), 400)
  for analytic_kl in (True, False):
    fn = functools.partial(vae.elbo, analytic_kl=analytic_kl, **TINY)
    draws = jax.jit(jax.vmap(fn, in_axes=(None, None, 0)))(params, x, keys)  # (400, 32)
    se = draws.mean(1).std() / math.sqrt(len(keys))
    assert abs(draws.mean() - exact_elbo.mean()) < 4 * se + 1e-4, (analytic_kl, se)


def test_iwae_grows_with_k_from_the_elbo_to_log_px(tiny):
  params, x = tiny
  # A poor encoder (posteriors shifted by 1 and 3x too narrow) opens the gaps between bounds.
  enc = dict(params['encoder'])
  enc['mean'] = {**enc['mean'], 'bias': enc['mean']['bias'] + 1.0}
  enc['log_variance'] = {**enc['log_variance'], 'bias': enc['log_variance']['bias'] - 2.2}
  params = {**params, 'encoder': enc}
  log_px, exact_elbo = _quadrature(params, x)
  x_rep = jnp.tile(x, (16, 1))  # 16 independent estimates of each of the 32 examples
  means, ses = {}, {}
  for k in (1, 10, 100, 1000):
    fn = jax.jit(functools.partial(vae.iwae_bound, k=k, chunk_size=500, **TINY))
    bound = fn(params, x_rep, jax.random.PRNGKey(k)).reshape(16, 32)
    means[k], ses[k] = float(bound.mean()), float(bound.mean(1).std() / 4)
  log_px, exact_elbo = float(log_px.mean()), float(exact_elbo.mean())
  # Seed-fixed values: exact ELBO -7.64, L_1 -7.60, L_10 -7.13, L_100 -6.73, L_1000 -6.47 (each
  # se <= 0.03), log p(x) -5.57. The margins below leave >= 4.5 standard errors of each gap.
  assert abs(means[1] - exact_elbo) < 4 * ses[1], (means, exact_elbo)
  assert means[1] + 0.2 < means[10], means
  assert means[10] + 0.2 < means[100], means
  assert means[100] + 0.1 < means[1000], means
  assert means[1000] < log_px - 0.5, (means, log_px)
  assert exact_elbo + 1.0 < log_px


def test_iwae_5000_reaches_log_px(tiny):
  params, x = tiny
  log_px, _ = _quadrature(params, x)
  fn = jax.jit(functools.partial(vae.iwae_bound, k=5000, chunk_size=500, **TINY))
  bound = fn(params, x, jax.random.PRNGKey(0))
  np.testing.assert_allclose(bound.mean(), log_px.mean(), atol=0.01)
  np.testing.assert_allclose(bound, log_px, atol=0.05)


# ------------------------------------------------------------ linear-Gaussian VAE = PPCA


LATENT, DATA = 2, 5
LINEAR_ENCODER = vae.Encoder(hidden=(), latent_dim=LATENT)
LINEAR_DECODER = vae.Decoder(hidden=(), latent_dim=LATENT, data_dim=DATA)
LINEAR = {'encoder': LINEAR_ENCODER, 'decoder': LINEAR_DECODER}


def _gaussian_data(n=2000):
  """``(n, 5)`` draws of a Gaussian with covariance eigenvalues (4, 2.5, 0.7, 0.5, 0.3)."""
  rng = np.random.default_rng(0)
  basis, _ = np.linalg.qr(rng.normal(size=(DATA, DATA)))
  scale = basis * np.sqrt([4.0, 2.5, 0.7, 0.5, 0.3])
  return rng.normal(size=(n, DATA)) @ scale.T + np.array([1.0, -2.0, 0.5, 0.0, 3.0])


def _ppca(x):
  """Tipping & Bishop 1999: the maximum-likelihood PPCA of ``x`` with ``LATENT`` factors.

  Returns ``(mu, W, sigma2, mean_log_likelihood)`` where, with the eigenvalues ``lam`` of the
  ML covariance ``S`` in decreasing order, ``sigma2 = mean(lam[q:])``,
  ``W = U_q (Lam_q - sigma2 I)^(1/2)`` and the average log-likelihood is
  ``-1/2 (D log 2 pi + sum_{j<=q} log lam_j + (D - q) log sigma2 + D)``.
  """
  mu = x.mean(0)
  s = (x - mu).T @ (x - mu) / len(x)
  lam, u = np.linalg.eigh(s)
  lam, u = lam[::-1], u[:, ::-1]
  sigma2 = lam[LATENT:].mean()
  w = u[:, :LATENT] * np.sqrt(lam[:LATENT] - sigma2)
  log_lik = -0.5 * (DATA * math.log(2 * math.pi) + np.log(lam[:LATENT]).sum()
                    + (DATA - LATENT) * math.log(sigma2) + DATA)
  return mu, w, sigma2, log_lik


def _ppca_vae_params(mu, w, sigma2):
  """The linear VAE at the PPCA optimum: decoder ``W z + mu``; encoder the exact posterior
  ``N(M^-1 W^T (x - mu), sigma2 M^-1)``, ``M = W^T W + sigma2 I = diag(lam_q)`` (diagonal because
  the columns of ``W`` are orthogonal), so a diagonal Gaussian represents it exactly."""
  m = w.T @ w + sigma2 * np.eye(LATENT)
  np.testing.assert_allclose(m, np.diag(np.diag(m)), atol=1e-10)
  kernel = w @ np.linalg.inv(m)  # (D, q): mean = (x - mu) @ kernel
  return {
      'encoder': {'mean': {'kernel': jnp.asarray(kernel), 'bias': jnp.asarray(-mu @ kernel)},
                  'log_variance': {'kernel': jnp.zeros((DATA, LATENT)),
                                   'bias': jnp.asarray(np.log(sigma2 / np.diag(m)))}},
      'decoder': {'output': {'kernel': jnp.asarray(w.T), 'bias': jnp.asarray(mu)}},
  }


def _gaussian_log_likelihood(log_noise_variance):
  """``log N(x; mean, sigma2 I)`` summed over the last axis, with ``sigma2 = exp(arg)``."""

  def log_likelihood(x, mean):
    return jnp.sum(-0.5 * ((x - mean)**2 / jnp.exp(log_noise_variance) + log_noise_variance
                           + math.log(2 * math.pi)), -1)

  return log_likelihood


@jax.jit
def _analytic_linear_elbo(params, log_noise_variance, x):
  r"""The exact ELBO of the linear-Gaussian VAE, per example:
  ``log N(x; W mu_q + b, s2 I) - tr(W diag(v_q) W^T) / (2 s2) - KL(q || p)``, the expectation of
  the Gaussian log-likelihood under ``q = N(mu_q, diag(v_q))`` done in closed form."""
  mean, log_var = LINEAR_ENCODER.apply({'params': params['encoder']}, x)
  w = params['decoder']['output']['kernel'].T  # (D, q)
  recon_mean = LINEAR_DECODER.apply({'params': params['decoder']}, mean)
  trace = jnp.sum(w**2 * jnp.exp(log_var)[:, None, :], (-2, -1))
  expected_ll = (_gaussian_log_likelihood(log_noise_variance)(x, recon_mean)
                 - 0.5 * trace / jnp.exp(log_noise_variance))
  return expected_ll - vae.gaussian_kl(mean, log_var)


def test_linear_gaussian_vae_optimum_is_the_ppca_log_likelihood(x64):
  x = jnp.asarray(_gaussian_data())
  mu, w, sigma2, ppca_log_lik = _ppca(np.asarray(x))
  params = _ppca_vae_params(mu, w, sigma2)
  log_s2 = jnp.asarray(math.log(sigma2))
  mean_elbo = lambda p, s: jnp.mean(_analytic_linear_elbo(p, s, x))
  np.testing.assert_allclose(mean_elbo(params, log_s2), ppca_log_lik, rtol=1e-4)
  np.testing.assert_allclose(mean_elbo(params, log_s2), ppca_log_lik, rtol=1e-10)  # in float64
  # ... and it is a stationary point in every parameter, encoder, decoder and noise variance.
  grads = jax.jit(jax.grad(mean_elbo, argnums=(0, 1)))(params, log_s2)
  assert max(float(jnp.max(jnp.abs(g))) for g in jax.tree.leaves(grads)) < 1e-8


def test_rotated_ppca_is_not_representable():
  mu, w, sigma2, _ = _ppca(_gaussian_data(200))
  theta = 0.3
  rot = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
  with pytest.raises(AssertionError):  # the exact posterior's covariance would be full
    _ppca_vae_params(mu, w @ rot, sigma2)


def test_library_estimators_are_exact_at_the_ppca_optimum(x64):
  x = jnp.asarray(_gaussian_data(500))
  mu, w, sigma2, _ = _ppca(np.asarray(x))
  params = _ppca_vae_params(mu, w, sigma2)
  ll = _gaussian_log_likelihood(jnp.asarray(math.log(sigma2)))
  # The marginal log N(x; mu, W W^T + sigma2 I), per example.
  cov = w @ w.T + sigma2 * np.eye(DATA)
  centred = np.asarray(x) - mu
  log_px = -0.5 * (np.sum(centred @ np.linalg.inv(cov) * centred, 1)
                   + np.linalg.slogdet(2 * math.pi * cov)[1])
  # q is the exact posterior: every log weight log p(x, z) - log q(z | x) IS log p(x).
  key = jax.random.PRNGKey(0)
  iwae = jax.jit(functools.partial(vae.iwae_bound, k=5, log_likelihood=ll, **LINEAR))
  np.testing.assert_allclose(iwae(params, x, key), log_px, rtol=1e-9)
  elbo_a = jax.jit(functools.partial(vae.elbo, analytic_kl=False, log_likelihood=ll, **LINEAR))
  np.testing.assert_allclose(elbo_a(params, x, key), log_px, rtol=1e-9)
  # The analytic-KL estimator is noisy but unbiased: 200 draws average to the exact ELBO.
  fn = functools.partial(vae.elbo, log_likelihood=ll, **LINEAR)
  draws = jax.jit(jax.vmap(fn, in_axes=(None, None, 0)))(params, x, jax.random.split(key, 200))
  se = float(draws.mean(1).std() / math.sqrt(200))
  assert se > 1e-3  # (so the check below is not the zero-variance one above)
  assert abs(float(draws.mean()) - log_px.mean()) < 4 * se


@pytest.mark.slow
def test_training_the_linear_vae_reaches_the_ppca_log_likelihood():
  """The library's train step, from random weights, climbs to the PPCA optimum (noise variance
  held at its optimum; the ELBO is a lower bound, so it can only approach from below)."""
  x = jnp.asarray(_gaussian_data(1000), jnp.float32)
  mu, w, sigma2, ppca_log_lik = _ppca(np.asarray(x, np.float64))
  log_s2 = jnp.asarray(math.log(sigma2), jnp.float32)
  optimizer = optax.adam(optax.cosine_decay_schedule(0.03, 3000, alpha=0.01))
  state = density_train.init_state(vae.init_params(jax.random.PRNGKey(0), **LINEAR),
                                   optimizer=optimizer)
  step = density_train.make_train_step(
      vae.objective(log_likelihood=_gaussian_log_likelihood(log_s2), binarize=False, **LINEAR),
      optimizer=optimizer)

  @jax.jit
  def train(state):
    def body(state, _):
      return step(state, {'x': x}, jax.random.PRNGKey(1))[0], None
    return jax.lax.scan(body, state, None, length=3000)[0]

  start = float(jnp.mean(_analytic_linear_elbo(state.g_params, log_s2, x)))
  state = train(state)
  end = float(jnp.mean(_analytic_linear_elbo(state.g_params, log_s2, x)))
  assert int(state.step) == 3000
  assert start < ppca_log_lik - 1.0, start
  assert ppca_log_lik - 0.01 < end < ppca_log_lik + 1e-4, (end, ppca_log_lik)


# ----------------------------------------------------------------------------- train step, sample


def test_train_step_is_one_optimizer_step_on_the_negative_elbo(tiny):
  params, _ = tiny
  x01 = jnp.asarray(np.random.default_rng(2).random((16, 8)), jnp.float32)
  optimizer = optax.sgd(0.1)
  state = density_train.init_state(params, optimizer=optimizer).replace(
      step=jnp.asarray(3, jnp.int32))
  step = density_train.make_train_step(vae.objective(**TINY), optimizer=optimizer)

  @jax.jit
  def step_and_reference(state, key):
    new_state, metrics = step(state, {'x': x01}, key)
    # The documented keys: split(objective_key(key, step)) = (binarize_key, noise_key).
    binarize_key, noise_key = jax.random.split(density_train.objective_key(key, 3))
    x = vae.dynamic_binarize(binarize_key, x01)
    loss, grads = jax.value_and_grad(functools.partial(vae.elbo_loss, **TINY))(params, x,
                                                                               noise_key)
    mean, log_var = TINY_ENCODER.apply({'params': params['encoder']}, x)
    expected = {'g_loss': loss, 'elbo': -loss, 'kl': vae.gaussian_kl(mean, log_var).mean(),
                'g_grad_norm': optax.tree.norm(grads)}
    return new_state, metrics, grads, expected

  new_state, metrics, grads, expected = step_and_reference(state, jax.random.PRNGKey(5))
  chex.assert_trees_all_close(new_state.g_params,
                              jax.tree.map(lambda p, g: p - 0.1 * g, params, grads), atol=1e-6)
  assert int(new_state.step) == 4
  chex.assert_trees_all_close({k: metrics[k] for k in expected}, expected, rtol=1e-5)
  np.testing.assert_allclose(metrics['reconstruction'] - metrics['kl'], metrics['elbo'],
                             rtol=1e-5)


def test_init_rejects_mismatched_latent_dims():
  with pytest.raises(ValueError, match='latent_dim'):
    vae.init_params(jax.random.PRNGKey(0), encoder=vae.Encoder(latent_dim=3),
                    decoder=vae.Decoder(latent_dim=4))


def test_default_architecture_is_the_iwae_papers():
  shapes = jax.tree.map(jnp.shape, jax.eval_shape(vae.init_params, jax.random.PRNGKey(0)))
  assert shapes['encoder']['hidden_0']['kernel'] == (784, 200)
  assert shapes['encoder']['hidden_1']['kernel'] == (200, 200)
  assert shapes['encoder']['mean']['kernel'] == (200, 50)
  assert shapes['encoder']['log_variance']['kernel'] == (200, 50)
  assert shapes['decoder']['hidden_0']['kernel'] == (50, 200)
  assert shapes['decoder']['output']['kernel'] == (200, 784)


def test_sample():
  # A decoder sigmoid(z) on one pixel: the means are sigmoid of N(0, 1) draws.
  decoder = vae.Decoder(hidden=(), latent_dim=1, data_dim=1)
  params = {'decoder': {'output': {'kernel': jnp.ones((1, 1)), 'bias': jnp.zeros((1,))}}}
  key = jax.random.PRNGKey(0)
  means = jax.jit(functools.partial(vae.sample, n=20_000, decoder=decoder))(params, key)
  chex.assert_shape(means, (20_000, 1))
  z = jax.random.normal(jax.random.split(key)[0], (20_000, 1))  # the documented z key
  np.testing.assert_allclose(means, jax.nn.sigmoid(z), rtol=1e-6)
  # E sigmoid(z)^2 for z ~ N(0, 1) by quadrature: 0.2933
  grid = np.linspace(-10, 10, 20001)
  second = np.sum(np.exp(-grid**2 / 2) / np.sqrt(2 * np.pi) / (1 + np.exp(-grid))**2) * (
      grid[1] - grid[0])
  np.testing.assert_allclose(jnp.mean(means**2), second, atol=0.005)
  draws = jax.jit(functools.partial(vae.sample, n=20_000, decoder=decoder, binary=True))(params,
                                                                                        key)
  assert set(np.unique(draws)) == {0.0, 1.0}
  np.testing.assert_allclose(draws.mean(), 0.5, atol=0.015)
