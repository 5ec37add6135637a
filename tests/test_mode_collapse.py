"""The math of each mode-collapse technique, alone and wired into make_train_step."""

from __future__ import annotations

import functools
import math

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.test_util import check_grads

from jaxgan import data, gan, losses, mode_collapse, models, train


@pytest.fixture
def x64():
  """Float64 for finite differences, scoped to one test."""
  with jax.enable_x64(True):
    yield

# ------------------------------------------------------------------------ feature matching


def test_feature_matching_hand_value_and_zero_at_equal_means():
  real = jnp.array([[1.0, 0.0], [3.0, 0.0]])
  fake = jnp.array([[0.0, 1.0]])
  assert float(mode_collapse.feature_matching_loss(real, fake)) == 5.0  # 2^2 + 1^2
  assert float(mode_collapse.feature_matching_loss(real, real)) == 0.0
  # Different samples with the same mean also match exactly.
  assert float(mode_collapse.feature_matching_loss(real, jnp.array([[2.0, 0.0]]))) == 0.0


def test_feature_matching_gradient(x64):
  real = jax.random.normal(jax.random.key(0), (5, 3), jnp.float64)
  fake = jax.random.normal(jax.random.key(1), (4, 3), jnp.float64)
  check_grads(lambda f: mode_collapse.feature_matching_loss(real, f), (fake,), order=2)
  # Closed form: d/d fake_i = -2 (mean_real - mean_fake) / B'.
  grad = jax.grad(lambda f: mode_collapse.feature_matching_loss(real, f))(fake)
  expected = -2 * (real.mean(0) - fake.mean(0)) / 4
  chex.assert_trees_all_close(grad, jnp.broadcast_to(expected, fake.shape), rtol=1e-10)


def test_feature_matching_over_devices_uses_the_global_mean():
  real = jax.random.normal(jax.random.key(0), (8, 3))
  fake = jax.random.normal(jax.random.key(1), (8, 3))
  per_device = jax.vmap(
      functools.partial(mode_collapse.feature_matching_loss, axis_name='d'), axis_name='d')(
          real.reshape(2, 4, 3), fake.reshape(2, 4, 3))
  whole = mode_collapse.feature_matching_loss(real, fake)
  chex.assert_trees_all_close(per_device, jnp.full((2,), whole), rtol=1e-6)


def test_discriminator_features_are_the_last_hidden_layer():
  d = models.MLPDiscriminator(hidden=(4, 3))
  x = jax.random.normal(jax.random.key(0), (5, 2))
  params = d.init(jax.random.key(1), x)['params']
  logits, features, stats = mode_collapse.discriminator_features(d, params, {}, x, train=True)
  h = nn.relu(x @ params['Dense_0']['kernel'] + params['Dense_0']['bias'])
  h = nn.relu(h @ params['Dense_1']['kernel'] + params['Dense_1']['bias'])
  chex.assert_trees_all_close(features, h, rtol=1e-6)
  chex.assert_trees_all_close(logits, d.apply({'params': params}, x), rtol=1e-6)
  assert stats == {}


def test_discriminator_features_needs_a_sown_layer():
  class NoSow(nn.Module):
    @nn.compact
    def __call__(self, x, train=False):
      return nn.Dense(1)(x)[:, 0]
  params = NoSow().init(jax.random.key(0), jnp.zeros((1, 2)))['params']
  with pytest.raises(ValueError, match='sows no intermediate'):
    mode_collapse.discriminator_features(NoSow(), params, {}, jnp.zeros((1, 2)), train=False)


# ------------------------------------------------------------- minibatch discrimination


def mbd_params(t):
  return {'params': {'T': jnp.asarray(t, jnp.float32)}}


def test_minibatch_discrimination_identical_samples_give_n():
  layer = mode_collapse.MinibatchDiscrimination(num_kernels=3, kernel_dim=2)
  x = jnp.tile(jnp.array([[0.3, -1.0, 2.0]]), (5, 1))
  variables = layer.init(jax.random.key(0), x)
  out = layer.apply(variables, x)
  chex.assert_shape(out, (5, 3 + 3))
  chex.assert_trees_all_close(out[:, :3], x)  # f(x) passes through
  chex.assert_trees_all_close(out[:, 3:], jnp.full((5, 3), 5.0))  # exp(0) summed over n = 5


def test_minibatch_discrimination_hand_value():
  # A = 1 input feature, K = 1 kernel, C = 2: T = [[1, 2]] so M_i = x_i * (1, 2).
  # Samples 0 and 0.5: ||M_0 - M_1||_1 = 0.5 + 1.0 = 1.5, so o = 1 + exp(-1.5) for both.
  layer = mode_collapse.MinibatchDiscrimination(num_kernels=1, kernel_dim=2)
  out = layer.apply(mbd_params([[1.0, 2.0]]), jnp.array([[0.0], [0.5]]))
  chex.assert_trees_all_close(out[:, 1], jnp.full((2,), 1 + math.exp(-1.5)), rtol=1e-6)
  # Far-apart samples see only themselves: o = 1.
  out = layer.apply(mbd_params([[1.0, 2.0]]), jnp.array([[0.0], [100.0], [-100.0]]))
  chex.assert_trees_all_close(out[:, 1], jnp.ones(3), rtol=1e-6)


def test_minibatch_discrimination_hand_value_two_kernels():
  # A = 1, K = 2, C = 2: T = [[1, 0, 0, 3]], so kernel 0 sees M_i0 = (x_i, 0), kernel 1
  # M_i1 = (0, 3 x_i). Samples 0, 0.5, 2: kernel 0's L1 distances 0.5, 2, 1.5 (pairs 01, 02,
  # 12), kernel 1's three times those: 1.5, 6, 4.5.
  layer = mode_collapse.MinibatchDiscrimination(num_kernels=2, kernel_dim=2)
  out = layer.apply(mbd_params([[1.0, 0.0, 0.0, 3.0]]), jnp.array([[0.0], [0.5], [2.0]]))
  e = math.exp
  expected = [[1 + e(-0.5) + e(-2.0), 1 + e(-1.5) + e(-6.0)],
              [1 + e(-0.5) + e(-1.5), 1 + e(-1.5) + e(-4.5)],
              [1 + e(-2.0) + e(-1.5), 1 + e(-6.0) + e(-4.5)]]
  chex.assert_trees_all_close(out[:, 1:], jnp.array(expected), rtol=1e-6)


def test_minibatch_discrimination_equals_the_papers_double_sum():
  n, a, k, c = 7, 5, 3, 4
  x = np.asarray(jax.random.normal(jax.random.key(2), (n, a)), np.float64)
  t = np.asarray(0.3 * jax.random.normal(jax.random.key(3), (a, k * c)), np.float64)
  m = (x @ t).reshape(n, k, c)
  o = np.array([[sum(np.exp(-np.abs(m[i, b] - m[j, b]).sum()) for j in range(n))
                 for b in range(k)] for i in range(n)])
  layer = mode_collapse.MinibatchDiscrimination(num_kernels=k, kernel_dim=c)
  out = layer.apply(mbd_params(t), jnp.asarray(x, jnp.float32))
  chex.assert_trees_all_close(out, jnp.asarray(np.concatenate([x, o], axis=1), jnp.float32),
                              rtol=1e-5, atol=1e-6)


def test_minibatch_discrimination_is_permutation_equivariant():
  layer = mode_collapse.MinibatchDiscrimination(num_kernels=4, kernel_dim=3)
  x = jax.random.normal(jax.random.key(0), (6, 5))
  variables = layer.init(jax.random.key(1), x)
  perm = jnp.array([3, 0, 5, 1, 4, 2])
  chex.assert_trees_all_close(layer.apply(variables, x[perm]), layer.apply(variables, x)[perm],
                              rtol=1e-6)


# ------------------------------------------------------------------- minibatch stddev


def test_minibatch_stddev_hand_values():
  out = mode_collapse.minibatch_stddev(jnp.array([[0.0], [2.0]]), epsilon=0.0)
  chex.assert_trees_all_close(out, jnp.array([[0.0, 1.0], [2.0, 1.0]]))
  # Two features: stds 1 (of {0, 2}) and 3 (of {1, 7}), averaged: 2.
  out = mode_collapse.minibatch_stddev(jnp.array([[0.0, 1.0], [2.0, 7.0]]), epsilon=0.0)
  chex.assert_trees_all_close(out[:, 2], jnp.full((2,), 2.0))
  # Identical samples: sqrt(epsilon).
  out = mode_collapse.minibatch_stddev(jnp.ones((3, 4)), epsilon=1e-8)
  chex.assert_trees_all_close(out[:, 4], jnp.full((3,), 1e-4), rtol=1e-5)


def test_minibatch_stddev_groups_and_images():
  x = jnp.array([[0.0], [2.0], [5.0], [5.0]])
  out = mode_collapse.minibatch_stddev(x, group_size=2, epsilon=0.0)
  chex.assert_trees_all_close(out[:, 1], jnp.array([1.0, 1.0, 0.0, 0.0]))
  images = jax.random.normal(jax.random.key(0), (4, 3, 3, 2))
  out = mode_collapse.minibatch_stddev(images, epsilon=0.0)
  chex.assert_shape(out, (4, 3, 3, 3))
  expected = jnp.mean(jnp.std(images, axis=0))
  chex.assert_trees_all_close(out[..., 2], jnp.full((4, 3, 3), expected), rtol=1e-6)
  with pytest.raises(ValueError, match='group_size=3'):
    mode_collapse.minibatch_stddev(x, group_size=3)


# -------------------------------------------------------------------------------- packing


def test_pack_samples_order_and_shape():
  x = jnp.arange(12).reshape(6, 2)
  packed = mode_collapse.pack_samples(x, 3)
  np.testing.assert_array_equal(packed, [[0, 1, 2, 3, 4, 5], [6, 7, 8, 9, 10, 11]])
  assert mode_collapse.pack_samples(x, 1) is x
  # Images: channel block j of packed image i is image i*m + j.
  images = jax.random.normal(jax.random.key(0), (4, 5, 5, 3))
  packed = mode_collapse.pack_samples(images, 2)
  chex.assert_shape(packed, (2, 5, 5, 6))
  chex.assert_trees_all_close(packed[1, ..., 3:], images[3])
  chex.assert_trees_all_close(packed[0, ..., :3], images[0])
  assert mode_collapse.packed_shape((5, 5, 3), 2) == (5, 5, 6)
  assert mode_collapse.packed_shape((2,), 4) == (8,)
  with pytest.raises(ValueError, match='pack=4'):
    mode_collapse.pack_samples(x, 4)


# ------------------------------------------------------------------------- instance noise


def test_instance_noise_statistics():
  x = jnp.full((200_000,), 3.0)
  noisy = mode_collapse.add_instance_noise(jax.random.key(0), x, std=0.5)
  np.testing.assert_allclose(float(jnp.mean(noisy)), 3.0, atol=5e-3)
  np.testing.assert_allclose(float(jnp.std(noisy)), 0.5, rtol=1e-2)
  assert mode_collapse.add_instance_noise(jax.random.key(0), x, std=0.0) is x
  with pytest.raises(ValueError, match='-0.1'):
    mode_collapse.add_instance_noise(jax.random.key(0), x, std=-0.1)


# -------------------------------------------------------------------------------- unroll


def test_unroll_closed_form_and_gradient(x64):
  # D's parameter d descends (d - theta)^2 / 2 with SGD(eta): d_{k+1} = d_k - eta (d_k - theta),
  # so d_K = theta + (1 - eta)^K (d_0 - theta) and d d_K / d theta = 1 - (1 - eta)^K.
  eta, k = 0.3, 4

  def d_after(theta, d0=2.0):
    return mode_collapse.unroll(lambda d: d - eta * (d - theta), jnp.asarray(d0), k)

  theta = jnp.asarray(0.5)
  np.testing.assert_allclose(d_after(theta), 0.5 + 0.7**4 * 1.5, rtol=1e-12)
  np.testing.assert_allclose(jax.grad(d_after)(theta), 1 - 0.7**4, rtol=1e-12)
  check_grads(d_after, (theta,), order=2)
  assert mode_collapse.unroll(lambda d: d + 1, 5.0, 0) == 5.0
  with pytest.raises(ValueError, match='-1'):
    mode_collapse.unroll(lambda d: d, 0.0, -1)


# ----------------------------------------------------------------- spectral normalization


def test_spectral_norm_discriminator_normalizes_each_kernel():
  d = mode_collapse.StabilizedMLPDiscriminator(hidden=(8,), spectral_norm=True)
  x = jax.random.normal(jax.random.key(0), (16, 3))
  variables = d.init(jax.random.key(1), x)
  stats = variables['batch_stats']
  # 30 training-mode calls = 30 power iterations; train.apply_model threads the stats.
  for _ in range(30):
    _, stats = train.apply_model(d, variables['params'], stats, x, train=True)
  kernel = variables['params']['Dense_0']['kernel']
  sigma = stats['SpectralNorm_0']['Dense_0/kernel/sigma']
  np.testing.assert_allclose(float(sigma), np.linalg.svd(np.asarray(kernel))[1][0], rtol=1e-4)
  # In inference the first layer computes x @ (W / sigma) + b with the stored sigma.
  _, features, _ = mode_collapse.discriminator_features(d, variables['params'], stats, x,
                                                        train=False)
  bias = variables['params']['Dense_0']['bias']
  chex.assert_trees_all_close(features, nn.relu(x @ (kernel / sigma) + bias), rtol=1e-5,
                              atol=1e-6)


# ---------------------------------------------------------------- LS-GAN (jaxgan.losses)


def test_loss_sensitive_hand_values():
  real, fake = jnp.array([1.0, 3.0]), jnp.array([0.0, 2.5])
  # Pairs (r, f): 1 - 1 + 0 = 0, 1 - 1 + 2.5 = 2.5, 1 - 3 + 0 < 0, 1 - 3 + 2.5 = 0.5.
  # L_D = -mean(1, 3) + mean(0, 2.5, 0, 0.5) = -2 + 0.75.
  d = losses.loss_sensitive_discriminator_loss(real, fake, margin=1.0)
  np.testing.assert_allclose(float(d), -1.25, rtol=1e-6)
  d = losses.loss_sensitive_discriminator_loss(real, fake, margin=1.0, hinge_weight=2.0)
  np.testing.assert_allclose(float(d), -0.5, rtol=1e-6)
  np.testing.assert_allclose(float(losses.loss_sensitive_generator_loss(fake)), -1.25)
  with pytest.raises(ValueError, match='hinge_weight'):
    losses.loss_sensitive_discriminator_loss(real, fake, hinge_weight=0.0)


def test_loss_sensitive_with_the_l1_margin(x64):
  real_x = jnp.array([[0.0, 0.0], [1.0, 1.0]])
  fake_x = jnp.array([[0.5, 0.0]])
  margin = losses.loss_sensitive_margin(real_x, fake_x)
  np.testing.assert_allclose(margin, [[0.5], [1.5]])
  real, fake = jnp.array([0.2, 1.0]), jnp.array([0.4])
  # hinge: 0.5 - 0.2 + 0.4 = 0.7 and 1.5 - 1.0 + 0.4 = 0.9; L_D = -0.6 + 0.8.
  d = losses.loss_sensitive_discriminator_loss(real, fake, margin=margin)
  np.testing.assert_allclose(float(d), 0.2, rtol=1e-12)
  check_grads(lambda r, f: losses.loss_sensitive_discriminator_loss(r, f, margin=margin),
              (real.astype(jnp.float64), fake.astype(jnp.float64)), order=2, modes=['rev'])


# ------------------------------------------------------------ wired into make_train_step

G = models.MLPGenerator(hidden=(16,), data_shape=(2,))
D = models.MLPDiscriminator(hidden=(16, 8))
BATCH = 8


def _setup(discriminator=D, d_optimizer=None, pack=1, **step_kwargs):
  tx = optax.adam(1e-2)
  d_optimizer = d_optimizer or tx
  state = train.init_state(jax.random.key(0), generator=G, discriminator=discriminator,
                           g_optimizer=tx, d_optimizer=d_optimizer, latent_dim=2,
                           data_shape=(2,), pack=pack)
  step = gan.make_train_step(generator=G, discriminator=discriminator, g_optimizer=tx,
                               d_optimizer=d_optimizer, latent_dim=2, pack=pack,
                               **step_kwargs)
  batch = {'x': data.ring(jax.random.key(1), BATCH)}
  return state, jax.jit(step), batch


def _keys(state, key):
  """The keys the alternating step derives (see train.make_train_step)."""
  k_z, k_penalty, k_g = jax.random.split(jax.random.fold_in(key, state.step), 3)
  return jax.random.fold_in(k_z, 0), jax.random.fold_in(k_penalty, 0), k_g


def _fakes(params, key):
  return G.apply({'params': params}, train.sample_latent(key, BATCH, 2))


def test_options_off_give_the_plain_losses_and_adams_first_step():
  # Feature matching, unrolling, packing and instance noise off: D's loss is the minimax loss of
  # D on the batch and on G(z) (the step's D key), G's the non-saturating loss of the updated D on
  # G(z) (G's key), and D moves by Adam's first update -lr * g / (|g| + 1e-8), lr = 1e-2.
  state, step, batch = _setup(feature_matching=False, unrolled_steps=0, pack=1,
                              instance_noise=0.0)
  key = jax.random.key(2)
  new_state, metrics = step(state, batch, key)
  k_z, _, k_g = _keys(state, key)
  fake = _fakes(state.g_params, k_z)

  @jax.jit
  def d_loss_and_adam_step(d_params):
    def d_loss(p):
      return losses.minimax_discriminator_loss(D.apply({'params': p}, batch['x']),
                                               D.apply({'params': p}, fake))

    value, grads = jax.value_and_grad(d_loss)(d_params)
    return value, jax.tree.map(lambda p, g: p - 1e-2 * g / (jnp.abs(g) + 1e-8), d_params, grads)

  d_loss, d_params = d_loss_and_adam_step(state.d_params)
  np.testing.assert_allclose(float(metrics['d_loss']), float(d_loss), rtol=1e-5)
  chex.assert_trees_all_close(new_state.d_params, d_params, rtol=1e-5, atol=1e-6)
  g_loss = losses.non_saturating_generator_loss(
      D.apply({'params': new_state.d_params}, _fakes(state.g_params, k_g)))
  np.testing.assert_allclose(float(metrics['g_loss']), float(g_loss), rtol=1e-5)


def test_feature_matching_g_loss_in_the_step():
  state, step, batch = _setup(feature_matching=True)
  key = jax.random.key(2)
  new_state, metrics = step(state, batch, key)
  _, _, k_g = _keys(state, key)
  fake = _fakes(state.g_params, k_g)
  # G's loss is taken against the updated D (alternating), on the step's real minibatch.
  _, real_f, _ = mode_collapse.discriminator_features(D, new_state.d_params, {}, batch['x'],
                                                      train=True)
  _, fake_f, _ = mode_collapse.discriminator_features(D, new_state.d_params, {}, fake,
                                                      train=True)
  expected = jnp.sum(jnp.square(real_f.mean(0) - fake_f.mean(0)))
  np.testing.assert_allclose(float(metrics['g_loss']), float(expected), rtol=1e-5)


def test_unrolled_with_frozen_lookahead_equals_plain_and_one_sgd_step_by_hand():
  # With an SGD(0) optimizer for D, the look-ahead leaves D where it is: G's loss and update
  # equal the plain step's exactly, for any K.
  frozen = optax.sgd(0.0)
  state, plain, batch = _setup(d_optimizer=frozen)
  _, unrolled, _ = _setup(d_optimizer=frozen, unrolled_steps=3)
  chex.assert_trees_all_close(plain(state, batch, jax.random.key(2)),
                              unrolled(state, batch, jax.random.key(2)), rtol=1e-6)
  # K = 1 with SGD(eta): G's loss is the non-saturating loss against D - eta * grad L_D.
  eta = 0.5
  state, step, batch = _setup(d_optimizer=optax.sgd(eta), unrolled_steps=1)
  key = jax.random.key(2)
  new_state, metrics = step(state, batch, key)
  _, _, k_g = _keys(state, key)
  fake = _fakes(state.g_params, k_g)

  def d_loss(p):
    return losses.minimax_discriminator_loss(D.apply({'params': p}, batch['x']),
                                             D.apply({'params': p}, fake))

  ahead = jax.tree.map(lambda p, g: p - eta * g, new_state.d_params,
                       jax.grad(d_loss)(new_state.d_params))
  expected = losses.non_saturating_generator_loss(D.apply({'params': ahead}, fake))
  np.testing.assert_allclose(float(metrics['g_loss']), float(expected), rtol=1e-5)
  plain_g = losses.non_saturating_generator_loss(D.apply({'params': new_state.d_params}, fake))
  assert abs(float(plain_g) - float(expected)) > 1e-4  # the look-ahead did change the loss


def test_pacgan_step_shows_d_packed_pairs():
  state, step, batch = _setup(pack=2)
  chex.assert_shape(state.d_params['Dense_0']['kernel'], (4, 16))  # 2 samples x 2 coordinates
  key = jax.random.key(2)
  _, metrics = step(state, batch, key)
  k_z, _, _ = _keys(state, key)
  fake = _fakes(state.g_params, k_z)
  d = lambda x: D.apply({'params': state.d_params}, mode_collapse.pack_samples(x, 2))
  expected = losses.minimax_discriminator_loss(d(batch['x']), d(fake))
  np.testing.assert_allclose(float(metrics['d_loss']), float(expected), rtol=1e-5)


def test_instance_noise_in_the_d_step():
  std = 0.3
  state, step, batch = _setup(instance_noise=std)
  key = jax.random.key(2)
  _, metrics = step(state, batch, key)
  k_z, k_penalty, _ = _keys(state, key)
  fake = _fakes(state.g_params, k_z)
  k_real, k_fake = jax.random.split(jax.random.fold_in(k_penalty, 1))
  d = lambda x: D.apply({'params': state.d_params}, x)
  expected = losses.minimax_discriminator_loss(
      d(mode_collapse.add_instance_noise(k_real, batch['x'], std=std)),
      d(mode_collapse.add_instance_noise(k_fake, fake, std=std)))
  np.testing.assert_allclose(float(metrics['d_loss']), float(expected), rtol=1e-5)
  noiseless = losses.minimax_discriminator_loss(d(batch['x']), d(fake))
  assert abs(float(noiseless) - float(expected)) > 1e-4


def test_minibatch_and_spectral_norm_discriminator_in_the_step():
  # For a rank-one kernel W = a b^T one power iteration from any u (not orthogonal to b) gives
  # sigma = |a| |b| exactly; the output kernel (21, 1) is a column, so sigma = its norm. Then
  # the spectrally normalized D is the plain D with the kernels W / sigma, a peer computation.
  kwargs = dict(hidden=(16,), minibatch_kernels=4, minibatch_stddev=True)
  d = mode_collapse.StabilizedMLPDiscriminator(**kwargs, spectral_norm=True)
  state, step, batch = _setup(discriminator=d)
  a = jnp.array([0.6, -0.8])  # |a| = 1
  b = jax.random.normal(jax.random.key(3), (16,))
  out_kernel = state.d_params['Dense_1']['kernel']
  chex.assert_shape(out_kernel, (16 + 1 + 4, 1))  # hidden, stddev, minibatch features
  d_params = {**state.d_params, 'Dense_0': {**state.d_params['Dense_0'],
                                            'kernel': jnp.outer(a, b)}}
  state = state.replace(d_params=d_params)
  key = jax.random.key(2)
  new_state, metrics = step(state, batch, key)
  # Two power iterations in the D step (real, then fake batch), both exact here.
  stats = new_state.d_batch_stats
  sigmas = (float(jnp.linalg.norm(b)), float(jnp.linalg.norm(out_kernel)))
  np.testing.assert_allclose(stats['SpectralNorm_0']['Dense_0/kernel/sigma'], sigmas[0], rtol=1e-5)
  np.testing.assert_allclose(stats['SpectralNorm_1']['Dense_1/kernel/sigma'], sigmas[1], rtol=1e-5)
  plain = mode_collapse.StabilizedMLPDiscriminator(**kwargs, spectral_norm=False)
  normalized = {**d_params,
                'Dense_0': {**d_params['Dense_0'], 'kernel': jnp.outer(a, b) / sigmas[0]},
                'Dense_1': {**d_params['Dense_1'], 'kernel': out_kernel / sigmas[1]}}
  k_z, _, _ = _keys(state, key)

  @jax.jit
  def plain_d_loss_and_real(params, real, fake):
    real_logits = plain.apply({'params': params}, real)
    fake_logits = plain.apply({'params': params}, fake)
    return (losses.minimax_discriminator_loss(real_logits, fake_logits),
            jnp.mean(nn.sigmoid(real_logits)))

  d_loss, d_real = plain_d_loss_and_real(normalized, batch['x'], _fakes(state.g_params, k_z))
  np.testing.assert_allclose(float(metrics['d_loss']), float(d_loss), rtol=1e-5)
  np.testing.assert_allclose(float(metrics['d_real']), float(d_real), rtol=1e-5)


@pytest.mark.parametrize('kwargs, match', [
    ({'unrolled_steps': -1}, 'unrolled_steps'),
    ({'pack': 0}, 'pack'),
    ({'instance_noise': -1.0}, 'instance_noise'),
    ({'pack': 2, 'num_classes': 10}, 'pack=2.*num_classes=10'),
    ({'feature_matching': True, 'num_classes': 10}, 'feature_matching=True.*num_classes=10'),
    ({'unrolled_steps': 3, 'num_classes': 10}, 'unrolled_steps=3.*num_classes=10'),
])
def test_bad_options_raise(kwargs, match):
  tx = optax.adam(1e-3)
  with pytest.raises(ValueError, match=match):
    gan.make_train_step(generator=G, discriminator=D, g_optimizer=tx, d_optimizer=tx,
                          latent_dim=2, **kwargs)


def test_fan_in_uniform_bias_init():
  d = models.MLPDiscriminator(hidden=(256,), bias_scale=1.0)
  params = d.init(jax.random.key(0), jnp.zeros((1, 2)))['params']
  first, last = params['Dense_0']['bias'], params['Dense_1']['bias']
  bound = 1 / math.sqrt(2)  # fan_in 2
  assert float(jnp.max(jnp.abs(first))) <= bound
  assert float(jnp.max(jnp.abs(first))) > 0.9 * bound  # 256 uniform draws fill the interval
  np.testing.assert_allclose(float(jnp.mean(first)), 0.0, atol=0.1)
  assert float(jnp.max(jnp.abs(last))) <= 1 / math.sqrt(256)
  g = models.MLPGenerator(hidden=(8,), data_shape=(2,))  # the default stays flax's zeros
  g_params = g.init(jax.random.key(0), jnp.zeros((1, 2)))['params']
  assert not jnp.any(g_params['Dense_0']['bias']) and not jnp.any(g_params['Dense_1']['bias'])
