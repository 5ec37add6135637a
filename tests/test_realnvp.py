"""Exact tests of Real NVP (arXiv:1605.08803): masks, squeeze, inverse, log-determinant, the
logit change of variables, bits per dimension, and the Gaussian whose NLL is known.

The Gaussian of the fast checks lives on 2x2x1 "images": with the checkerboard halves
``A = {(0,0), (1,1)}`` and ``B = {(0,1), (1,0)}``, ``x_A ~ N(0, SIGMA_A^2 I)`` and
``x_B = M x_A + SIGMA_B eps``. Two couplings whiten it exactly: ``z_B = (x_B - M x_A) / SIGMA_B``
(the first, conditioned on ``A``) and ``z_A = x_A / SIGMA_A`` (the second), the other two left
at the identity; so its NLL per example is ``-log N(x; 0, Sigma)`` and its mean
``1/2 log det(2 pi e Sigma)``.
"""

from __future__ import annotations

import doctest
import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxgan import density_train, realnvp

ALPHA = realnvp.ALPHA

SIGMA_A, SIGMA_B = 2.0, 0.5
M = np.array([[0.8, -0.5], [0.3, 1.2]])  # x_B = M x_A + SIGMA_B eps; rows: B pixels (0,1), (1,0)
A_PIXELS, B_PIXELS = (0, 3), (1, 2)     # flat indices of (0,0), (1,1) and (0,1), (1,0)


@pytest.fixture
def x64():
  """Float64 for Jacobian determinants, scoped to one test."""
  with jax.enable_x64(True):
    yield


def structured_covariance() -> np.ndarray:
  """Sigma of the flattened 2x2 image (raster order) for the structured Gaussian above."""
  cov_ab = np.zeros((4, 4))  # in the order (A0, A1, B0, B1)
  cov_ab[:2, :2] = SIGMA_A ** 2 * np.eye(2)
  cov_ab[2:, :2] = SIGMA_A ** 2 * M
  cov_ab[:2, 2:] = SIGMA_A ** 2 * M.T
  cov_ab[2:, 2:] = SIGMA_A ** 2 * M @ M.T + SIGMA_B ** 2 * np.eye(2)
  order = np.array(A_PIXELS + B_PIXELS)
  cov = np.zeros((4, 4))
  cov[np.ix_(order, order)] = cov_ab
  return cov


def gaussian_nll(x: np.ndarray, cov: np.ndarray) -> np.ndarray:
  """-log N(x; 0, cov) of flattened rows x."""
  _, logdet = np.linalg.slogdet(2 * np.pi * cov)
  return 0.5 * np.einsum('ni,ij,nj->n', x, np.linalg.inv(cov), x) + 0.5 * logdet


def gaussian_entropy(cov: np.ndarray) -> float:
  """1/2 log det(2 pi e Sigma)."""
  return 0.5 * np.linalg.slogdet(2 * np.pi * np.e * cov)[1]


def random_params(model, shape, seed: int, *, gain: float = 1.0, identity: bool = False):
  """``model``'s parameters for inputs ``(1, *shape)``, drawn with numpy (a compiled or eager flax
  init costs seconds here): kernels N(0, gain^2 / fan_in), so the zero-initialized output layers
  are not zero; biases N(0, 0.2^2); each coupling's ``scale`` 1 + N(0, 0.2^2). ``identity=True``
  zeroes every coupling's output layer, which makes the flow the identity (as a fresh init)."""
  shapes = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, *shape)))['params']
  rng = np.random.default_rng(seed)

  def draw(path, leaf):
    names = [entry.key for entry in path]
    if identity and 'out' in names:
      value = np.zeros(leaf.shape)
    elif names[-1] == 'kernel':
      value = gain * rng.normal(size=leaf.shape) / math.sqrt(math.prod(leaf.shape[:-1]))
    elif names[-1] == 'scale':
      value = 1.0 + 0.2 * rng.normal(size=leaf.shape)
    else:
      value = 0.2 * rng.normal(size=leaf.shape)
    return value.astype(np.float32)

  return jax.tree_util.tree_map_with_path(draw, shapes)


# A single-scale flow of 4 cheap couplings, shared so compilations are reused across tests.
SMALL_FLOW = realnvp.RealNVP(num_scales=1, hidden_features=4, num_hidden_layers=1)
WHITENING_MODEL = realnvp.RealNVP(num_scales=1, hidden_features=2, num_hidden_layers=2)


def whitening_params():
  """WHITENING_MODEL's 4 couplings set by hand to the exact whitening of the structured Gaussian.

  Each s-t net: hidden_0 splits the masked input into (relu(x), relu(-x)) at the centre tap,
  hidden_1 passes both on, and out reads t = sum over taps w (relu(x) - relu(-x)), a linear
  function of the conditioning pixels, with s = tanh(bias) constant (scale 1)."""
  params = random_params(WHITENING_MODEL, (2, 2, 1), seed=0, identity=True)
  split = np.zeros((3, 3, 1, 2), np.float32)
  split[1, 1, 0] = [1.0, -1.0]
  keep = np.zeros((3, 3, 2, 2), np.float32)
  keep[1, 1] = np.eye(2)
  # t at B pixel (0,1) = -(M00 x(0,0) + M01 x(1,1)) / SIGMA_B: taps at offsets (0,-1), (+1,0);
  # at B pixel (1,0) = -(M10 x(0,0) + M11 x(1,1)) / SIGMA_B: taps at offsets (-1,0), (0,+1);
  # each of these taps falls in the zero padding when read from the other B pixel.
  t_taps = {(0, -1): M[0, 0], (1, 0): M[0, 1], (-1, 0): M[1, 0], (0, 1): M[1, 1]}
  for name, log_sigma, taps in (('final_checkerboard_0', math.log(SIGMA_B), t_taps),
                                ('final_checkerboard_1', math.log(SIGMA_A), {})):
    out = np.zeros((3, 3, 2, 2), np.float32)  # output channels (s_raw, t)
    for (dr, dc), m in taps.items():
      out[1 + dr, 1 + dc, :, 1] = np.array([1.0, -1.0]) * (-m / SIGMA_B)
    params[name] = {
        'hidden_0': {'kernel': split, 'bias': np.zeros(2, np.float32)},
        'hidden_1': {'kernel': keep, 'bias': np.zeros(2, np.float32)},
        'out': {'kernel': out, 'bias': np.array([math.atanh(-log_sigma), 0.0], np.float32)},
        'scale': np.ones(1, np.float32),
    }
  return jax.tree.map(jnp.asarray, params)


def sample_gaussian(seed: int, cov: np.ndarray, n: int) -> np.ndarray:
  x = np.random.default_rng(seed).multivariate_normal(np.zeros(len(cov)), cov, n)
  return x.astype(np.float32).reshape(n, 2, 2, 1)


# Compiled once per model and shape (eager flax runs op by op, several times slower here).
jit_flow_nll = jax.jit(realnvp.flow_nll, static_argnums=0)
jit_pixel_nll = jax.jit(realnvp.pixel_nll, static_argnums=0)
jit_bits_per_dim = jax.jit(realnvp.bits_per_dim, static_argnums=0)
jit_apply = jax.jit(lambda model, params, x: model.apply({'params': params}, x),
                    static_argnums=0)


# ---------------------------------------------------------------------- masks, squeeze


def test_masks_match_hand_written():
  np.testing.assert_array_equal(realnvp.checkerboard_mask(3, 4, parity=0)[..., 0],
                                [[1, 0, 1, 0], [0, 1, 0, 1], [1, 0, 1, 0]])
  np.testing.assert_array_equal(realnvp.checkerboard_mask(3, 4, parity=1)[..., 0],
                                [[0, 1, 0, 1], [1, 0, 1, 0], [0, 1, 0, 1]])
  np.testing.assert_array_equal(realnvp.channel_mask(4, parity=0), [[[1, 1, 0, 0]]])
  np.testing.assert_array_equal(realnvp.channel_mask(4, parity=1), [[[0, 0, 1, 1]]])
  with pytest.raises(ValueError, match='even number of channels'):
    realnvp.channel_mask(3, parity=0)


def test_squeeze_matches_hand_written_and_inverts():
  # 2x4 image 0..7 in raster order: block (0,0) holds 0, 1 / 4, 5 and block (0,1) 2, 3 / 6, 7;
  # channel (2 di + dj) of a block holds its pixel (di, dj).
  x = jnp.arange(8.0).reshape(1, 2, 4, 1)
  np.testing.assert_array_equal(realnvp.squeeze(x), [[[[0, 1, 4, 5], [2, 3, 6, 7]]]])
  y = np.random.default_rng(0).normal(size=(2, 4, 6, 3)).astype(np.float32)
  chex.assert_shape(realnvp.squeeze(y), (2, 2, 3, 12))
  np.testing.assert_array_equal(realnvp.unsqueeze(realnvp.squeeze(y)), y)
  with pytest.raises(ValueError, match='squeeze needs even height and width'):
    realnvp.squeeze(jnp.zeros((1, 4, 5, 1)))
  # A 28x28 image allows 3 scales (28 -> 14 -> 7); a 4th would squeeze 7x7.
  with pytest.raises(ValueError, match=r'shape \(1, 7, 7, 4\)'):
    jax.eval_shape(realnvp.RealNVP(num_scales=4, hidden_features=2).init, jax.random.key(0),
                   jnp.zeros((1, 28, 28, 1)))


# ---------------------------------------------------------- inverse and log-determinant


@pytest.mark.parametrize('model, shape', [
    (realnvp.RealNVP(num_scales=2, hidden_features=4, num_hidden_layers=1), (4, 4, 1)),  # 16 dims
    (realnvp.RealNVP(num_scales=1, hidden_features=4, num_hidden_layers=1), (2, 2, 2)),  # 8 dims
    (realnvp.AffineCoupling('channel', 1, hidden_features=4), (2, 1, 4)),  # 2 hidden layers
])
def test_log_det_is_slogdet_of_the_jacobian_and_inverse_inverts(model, shape, x64):
  # In float64: the log|det| the flow returns equals slogdet of jax.jacfwd of the flattened map;
  # the inverse's is its negative at the image point (so, with the inverse inverting, it is the
  # inverse Jacobian's); inverse(forward(x)) == x to 1e-12, and to 1e-5 in float32.
  dims = math.prod(shape)
  params = random_params(model, shape, seed=0, gain=2.0)  # larger s than a trained flow's
  params = jax.tree.map(lambda p: p.astype(np.float64), params)
  x = jnp.asarray(np.random.default_rng(1).normal(size=dims))

  def apply(params, x, inverse):
    out, log_det = model.apply({'params': params}, x.reshape(1, *shape), inverse=inverse)
    return out.reshape(-1), log_det[0]

  @jax.jit
  def check(params, x):
    z, log_det = apply(params, x, False)
    jacobian = jax.jacfwd(lambda x: apply(params, x, False)[0])(x)
    x_back, inv_log_det = apply(params, z, True)
    return log_det, jacobian, jnp.linalg.slogdet(jacobian), x_back, inv_log_det

  log_det, jacobian, (sign, logabs), x_back, inv_log_det = check(params, x)
  assert float(sign) == 1.0
  # Not vacuous: some dimension is scaled by more than 10% (no volume-preserving shortcut).
  assert np.max(np.abs(np.log(np.abs(np.diag(jacobian))))) > 0.1
  chex.assert_trees_all_close(log_det, logabs, atol=1e-10)
  chex.assert_trees_all_close(inv_log_det, -log_det, atol=1e-10)
  chex.assert_trees_all_close(x_back, x, atol=1e-12)
  with jax.enable_x64(False):
    params32 = random_params(model, shape, seed=0)
    x32 = np.random.default_rng(1).normal(size=(8, *shape)).astype(np.float32)
    forward_inverse = jax.jit(lambda p, x: model.apply(
        {'params': p}, model.apply({'params': p}, x)[0], inverse=True)[0])
    chex.assert_trees_all_close(forward_inverse(params32, x32), x32, atol=1e-5)


# --------------------------------------------------- pixels, logit space, bits per dim


def test_logit_transform_log_det_hand_value_and_jacobian(x64):
  # u = 128: p = 0.05 + 0.9 / 2 = 1/2, y = 0, d y / d u = 0.9 / 256 / (1/2 * 1/2) = 0.0140625.
  y, log_det = realnvp.logit_transform(jnp.full((1, 2, 2, 1), 128.0))
  np.testing.assert_array_equal(y, 0.0)
  chex.assert_trees_all_close(log_det, jnp.array([4 * math.log(0.9 * 4 / 256)]), rtol=1e-12)
  u = jnp.asarray(np.random.default_rng(0).uniform(0.0, 256.0, (1, 2, 3, 1)))
  jacobian = jax.jacfwd(lambda u: realnvp.logit_transform(u.reshape(1, 2, 3, 1))[0].ravel())(
      u.ravel())
  chex.assert_trees_all_close(realnvp.logit_transform(u)[1][0],
                              jnp.linalg.slogdet(jacobian)[1], rtol=1e-12)
  chex.assert_trees_all_close(realnvp.inverse_logit_transform(realnvp.logit_transform(u)[0]), u,
                              rtol=1e-12)


def test_uniform_pixels_through_the_logit_are_8_bits_per_dim():
  # u ~ U[0, 256)^D has density 256^-D, so its logit y has density (change of variables)
  # p_Y(y) = prod_d sigmoid(y_d)(1 - sigmoid(y_d)) / (1 - 2 alpha), and the pixel-space NLL
  # -log p_Y(y) - log|det dy/du| must be exactly D log 256, i.e. 8 bits per dimension, for every
  # u; the logit-space NLL alone is at most -log2(0.05 * 0.95 / 0.9) = 4.24 bits per dimension.
  u = np.random.default_rng(0).uniform(0.0, 256.0, (5, 2, 3, 1)).astype(np.float32)
  y, log_det = realnvp.logit_transform(u)
  sig = jax.nn.sigmoid(y)
  logit_nll = -jnp.sum(jnp.log(sig * (1 - sig) / (1 - 2 * ALPHA)), axis=(1, 2, 3))
  pixel_bpd = (logit_nll - log_det) / (6 * math.log(2))
  chex.assert_trees_all_close(pixel_bpd, jnp.full(5, 8.0), rtol=1e-5)
  assert np.all(logit_nll / (6 * math.log(2)) < 4.25)  # the logit-space figure is far off


@pytest.mark.parametrize('perturbed', [False, True])
def test_pixel_density_integrates_to_the_flows_mass_on_0_256(perturbed):
  # One pixel. On a 1x1 image the parity-1 couplings see only zeros, so the flow is affine,
  # z = a y + c (a > 0): the identity when fresh, a != 1, c != 0 when perturbed. The pixel density
  # exp(-pixel_nll(u)) then integrates over [0, 256] to P(logit(alpha) <= y <= logit(1 - alpha))
  # = Phi(a logit(0.95) + c) - Phi(a logit(0.05) + c) (trapezoid rule on 4,097 points); for the
  # identity 2 Phi(2.944439) - 1 = 0.996765: the mass the flow puts outside [0, 256) is lost.
  model = SMALL_FLOW
  params = random_params(model, (1, 1, 1), seed=3, gain=2.0, identity=not perturbed)
  z = jit_apply(model, params, jnp.array([0.0, 1.0, 2.0]).reshape(3, 1, 1, 1))[0].ravel()
  c, a = float(z[0]), float(z[1] - z[0])
  chex.assert_trees_all_close(z[2], 2 * a + c, rtol=1e-5)  # affine indeed
  assert (abs(a - 1) > 0.05 and abs(c) > 0.05) if perturbed else (a == 1 and c == 0)
  u = jnp.linspace(0.0, 256.0, 4097)
  density = jnp.exp(-jit_pixel_nll(model, params, u.reshape(-1, 1, 1, 1)))
  mass = float(jnp.sum((density[1:] + density[:-1]) / 2) * (u[1] - u[0]))
  phi = lambda v: 0.5 * (1 + math.erf(v / math.sqrt(2)))
  y_low, y_high = math.log(ALPHA / (1 - ALPHA)), math.log((1 - ALPHA) / ALPHA)
  expected = phi(a * y_high + c) - phi(a * y_low + c)
  assert abs(mass - expected) < 1e-5, (mass, expected)
  if not perturbed:
    assert abs(expected - 0.996765) < 1e-6


def test_bits_per_dim_hand_value_for_the_identity_flow():
  # A fresh flow is the identity (zero output layers; the other weights do not matter), so at
  # u = 128 (y = 0) the pixel NLL per
  # dimension is 1/2 log 2 pi - log(0.9 * 4 / 256) = 0.918939 + 4.264244 nats = 7.477751 bits;
  # the logit-space NLL alone would report 1/2 log2(2 pi) = 1.325748 bits.
  model = SMALL_FLOW
  params = random_params(model, (2, 2, 1), seed=0, identity=True)
  u = jnp.full((3, 2, 2, 1), 128.0)
  bpd = jit_bits_per_dim(model, params, u)
  expected = (0.5 * math.log(2 * math.pi) - math.log(0.9 * 4 / 256)) / math.log(2)
  chex.assert_trees_all_close(bpd, jnp.full(3, expected), rtol=1e-6)
  assert abs(expected - 7.477751) < 1e-6
  chex.assert_trees_all_close(jit_flow_nll(model, params, jnp.zeros((1, 2, 2, 1))),
                              jnp.array([2 * math.log(2 * math.pi)]), rtol=1e-6)


def test_non_level_pixels_are_an_error():
  with pytest.raises(ValueError, match=r'integer pixel levels in \{0, \.\.\., 255\}'):
    realnvp.dequantize(jnp.full((1, 2, 2, 1), 0.5), jax.random.key(0))
  with pytest.raises(ValueError, match=r'got values in \[256, 256\]'):
    realnvp.check_pixels(jnp.full((1, 2, 2, 1), 256.0))


# --------------------------------------------------- the Gaussian, sampling, training


def test_whitening_flow_nll_is_the_gaussian_nll():
  # The hand-set flow's NLL equals -log N(x; 0, Sigma) for every x, and its mean over 20,000
  # samples is within 5 standard errors of 1/2 log det(2 pi e Sigma) = 2 log(2 pi e) + 2 log 2
  # + 2 log 0.5 = 5.675754.
  cov = structured_covariance()
  entropy = gaussian_entropy(cov)
  assert abs(entropy - 2 * math.log(2 * math.pi * math.e)) < 1e-12  # SIGMA_A SIGMA_B = 1
  x = sample_gaussian(0, cov, 20000)
  nll = np.asarray(jit_flow_nll(WHITENING_MODEL, whitening_params(), x), np.float64)
  exact = gaussian_nll(x.astype(np.float64).reshape(-1, 4), cov)
  np.testing.assert_allclose(nll, exact, rtol=1e-5, atol=1e-5)
  assert abs(nll.mean() - entropy) < 5 * nll.std() / math.sqrt(len(nll))


def test_samples_of_the_whitening_flow_have_covariance_sigma():
  # 20,000 samples through the inverse: every entry of the empirical covariance is within 5
  # standard errors, sqrt((S_ii S_jj + S_ij^2) / n), of Sigma.
  n = 20000
  cov = structured_covariance()
  y = realnvp.sample_flow(WHITENING_MODEL, whitening_params(), jax.random.key(1), num_samples=n,
                          shape=(2, 2, 1))
  empirical = np.cov(np.asarray(y, np.float64).reshape(n, 4), rowvar=False)
  stderr = np.sqrt((np.outer(np.diag(cov), np.diag(cov)) + cov ** 2) / n)
  assert np.all(np.abs(empirical - cov) < 5 * stderr), (empirical, cov)


def test_pixel_samples_of_the_identity_flow_have_the_logit_normal_quantiles():
  # The identity flow samples y ~ N(0, 1) per dimension, so a pixel level v = floor(u) is below
  # t with probability Phi(logit(alpha + (1 - 2 alpha) t / 256)): 0.1662 for t = 64, 0.5 for
  # t = 128 (32,000 pixels, 4 binomial standard errors).
  model = SMALL_FLOW
  params = random_params(model, (4, 4, 1), seed=0, identity=True)
  pixels = np.asarray(realnvp.sample(model, params, jax.random.key(1), num_samples=2000,
                                     image_shape=(4, 4, 1)))
  assert set(np.unique(pixels)) <= set(range(256))
  phi = lambda v: 0.5 * (1 + math.erf(v / math.sqrt(2)))
  for t in (1, 64, 128, 200):
    p = ALPHA + (1 - 2 * ALPHA) * t / 256
    expected = phi(math.log(p / (1 - p)))
    assert abs(np.mean(pixels < t) - expected) < 4 * math.sqrt(expected * (1 - expected)
                                                               / pixels.size), t


def test_train_step_is_one_exact_sgd_step_on_dequantized_pixels():
  # The objective dequantizes with the key its step gives it (density_train.objective_key): the
  # nll metric is the mean pixel_nll of exactly those pixels at the old parameters, and SGD
  # moves the parameters by -lr * grad.
  model = SMALL_FLOW
  optimizer = optax.sgd(0.01)
  params = random_params(model, (2, 2, 1), seed=4)
  state = density_train.init_state(params, optimizer=optimizer)
  images = np.random.default_rng(1).integers(0, 256, (6, 2, 2, 1)).astype(np.float32)
  key = jax.random.key(2)
  pixels = realnvp.dequantize(images, density_train.objective_key(key, 0))
  loss_fn = lambda p: jnp.mean(realnvp.pixel_nll(model, p, pixels))
  loss, grads = jax.jit(jax.value_and_grad(loss_fn))(state.g_params)
  step = jax.jit(density_train.make_train_step(realnvp.objective(model), optimizer=optimizer))
  new_state, metrics = step(state, {'x': images}, key)
  assert int(new_state.step) == 1
  chex.assert_trees_all_close(metrics['nll'], loss, rtol=1e-5)
  chex.assert_trees_all_close(metrics['bits_per_dim'], loss / (4 * math.log(2)), rtol=1e-5)
  chex.assert_trees_all_close(
      new_state.g_params, jax.tree.map(lambda p, g: p - 0.01 * g, state.g_params, grads),
      rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_trained_flow_reaches_the_gaussian_entropy():
  # A general Sigma on 2x2x1 (not the structured one): after training on fresh samples, the
  # flow's mean NLL on 20,000 test points is within 0.03 nats of the true Gaussian NLL of the same
  # points (their difference estimates the KL), which is itself within 5 standard errors of
  # 1/2 log det(2 pi e Sigma).
  root = np.array([[1.0, 0.0, 0.0, 0.0], [0.6, 0.8, 0.0, 0.0], [-0.4, 0.5, 0.7, 0.0],
                   [0.3, -0.2, 0.6, 0.5]])
  cov = root @ root.T
  steps, batch_size = 1500, 256
  model = realnvp.RealNVP(num_scales=1, hidden_features=16)
  optimizer = optax.adam(3e-3)
  state = density_train.init_state(
      realnvp.init_params(jax.random.key(0), model, shape=(2, 2, 1)), optimizer=optimizer)
  step = jax.jit(density_train.make_train_step(realnvp.objective(model, continuous=True),
                                               optimizer=optimizer))
  data = sample_gaussian(1, cov, steps * batch_size).reshape(steps, batch_size, 2, 2, 1)
  state, _ = jax.lax.scan(lambda s, x: step(s, {'x': x}, jax.random.key(0)), state, data)
  test = sample_gaussian(2, cov, 20000)
  exact = gaussian_nll(test.astype(np.float64).reshape(-1, 4), cov)
  model_nll = np.asarray(jit_flow_nll(model, state.g_params, test))
  assert abs(exact.mean() - gaussian_entropy(cov)) < 5 * exact.std() / math.sqrt(len(exact))
  gap = model_nll.mean() - exact.mean()
  assert -0.01 < gap < 0.03, gap


def test_docstring_examples():
  runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
  for test in doctest.DocTestFinder().find(realnvp.logit_transform, globs=vars(realnvp).copy()):
    runner.run(test)
  assert runner.summarize(verbose=False).failed == 0
  assert runner.summarize(verbose=False).attempted > 0
