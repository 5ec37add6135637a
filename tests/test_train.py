"""The train step: hand-computed updates, update rules, and data parallelism on 8 CPU devices."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from chex import assert_trees_all_close

from jaxgan import gan, losses, models, train

LR = 0.1


class DiracGenerator(nn.Module):
  """G(z) = theta for every z: independent of the latent, so a step is hand-computable."""

  @nn.compact
  def __call__(self, z, train=False):
    theta = self.param('theta', lambda key: jnp.array(0.5))
    return jnp.full((z.shape[0], 1), theta)


class AffineDiscriminator(nn.Module):
  """D(x) = psi * x + c."""

  @nn.compact
  def __call__(self, x, train=False):
    psi = self.param('psi', lambda key: jnp.array(0.3))
    c = self.param('c', lambda key: jnp.array(-0.2))
    return psi * x[:, 0] + c


def _tiny_state(**step_kwargs):
  g, d = DiracGenerator(), AffineDiscriminator()
  state = train.init_state(jax.random.PRNGKey(0), generator=g, discriminator=d,
                           g_optimizer=optax.sgd(LR), d_optimizer=optax.sgd(LR), latent_dim=1,
                           data_shape=(1,))
  step = gan.make_train_step(generator=g, discriminator=d, g_optimizer=optax.sgd(LR),
                               d_optimizer=optax.sgd(LR), latent_dim=1, **step_kwargs)
  return state, step


def _hand_d_update(theta, psi, c, real):
  """One SGD step on L_D = mean softplus(-(psi x + c)) + softplus(psi theta + c)."""
  sig = lambda t: 1 / (1 + np.exp(-t))
  w_real = -sig(-(psi * real + c))  # d/dl softplus(-l) = -sigmoid(-l)
  w_fake = sig(psi * theta + c)  # d/dl softplus(l) = sigmoid(l)
  grad_psi = np.mean(w_real * real) + w_fake * theta
  grad_c = np.mean(w_real) + w_fake
  return psi - LR * grad_psi, c - LR * grad_c


def _hand_g_update(theta, psi, c):
  """One SGD step on the non-saturating L_G = softplus(-(psi theta + c))."""
  grad_theta = -psi / (1 + np.exp(psi * theta + c))
  return theta - LR * grad_theta


REAL = np.array([[1.0], [2.0], [-0.5], [0.25]], np.float32)


@pytest.mark.parametrize('update', ['alternating', 'simultaneous'])
def test_one_step_matches_hand_computation(update):
  state, step = _tiny_state(update_rule=update)
  new_state, metrics = jax.jit(step)(state, {'x': REAL}, jax.random.PRNGKey(1))
  theta, psi, c = 0.5, 0.3, -0.2
  psi_new, c_new = _hand_d_update(theta, psi, c, REAL[:, 0])
  # Alternating: G answers the *updated* D; simultaneous: G's gradient is taken at the old D.
  theta_new = _hand_g_update(theta, *((psi_new, c_new) if update == 'alternating' else (psi, c)))
  np.testing.assert_allclose(new_state.d_params['psi'], psi_new, rtol=1e-6)
  np.testing.assert_allclose(new_state.d_params['c'], c_new, rtol=1e-6)
  np.testing.assert_allclose(new_state.g_params['theta'], theta_new, rtol=1e-6)
  assert int(new_state.step) == 1
  # The metrics are the losses at the points where the gradients were taken.
  d_loss = losses.minimax_discriminator_loss(psi * REAL[:, 0] + c, jnp.array([psi * theta + c]))
  np.testing.assert_allclose(metrics['d_loss'], d_loss, rtol=1e-6)
  np.testing.assert_allclose(metrics['d_real'], np.mean(1 / (1 + np.exp(-(psi * REAL + c)))),
                             rtol=1e-6)


def test_num_d_steps_uses_one_minibatch_per_d_step():
  state, step = _tiny_state(num_d_steps=2)
  new_state, _ = jax.jit(step)(state, {'x': REAL}, jax.random.PRNGKey(1))
  theta, psi, c = 0.5, 0.3, -0.2
  # D step j takes rows j, j+2: first [1, -0.5], then [2, 0.25].
  psi, c = _hand_d_update(theta, psi, c, REAL[0::2, 0])
  psi, c = _hand_d_update(theta, psi, c, REAL[1::2, 0])
  np.testing.assert_allclose(new_state.d_params['psi'], psi, rtol=1e-6)
  np.testing.assert_allclose(new_state.d_params['c'], c, rtol=1e-6)
  np.testing.assert_allclose(new_state.g_params['theta'], _hand_g_update(theta, psi, c),
                             rtol=1e-6)


def test_penalties_enter_d_loss_with_their_weights():
  """For D(x) = psi x + c, |dD/dx| = |psi|: R1 adds gamma/2 psi^2, WGAN-GP (|psi| - 1)^2."""
  for kwargs, extra in [({'r1_gamma': 4.0}, 2.0 * 0.3**2),
                        ({'gradient_penalty_weight': 10.0}, 10.0 * (0.3 - 1)**2)]:
    state, plain = _tiny_state()
    _, with_penalty = _tiny_state(**kwargs)
    key = jax.random.PRNGKey(3)
    _, m0 = plain(state, {'x': REAL}, key)
    _, m1 = with_penalty(state, {'x': REAL}, key)
    np.testing.assert_allclose(m1['d_loss'] - m0['d_loss'], extra, rtol=1e-5)


def test_lazy_r1_enters_every_kth_step_k_times_heavier():
  """r1_every=3: on steps 0, 3, 6 D's loss has 3 * gamma/2 psi^2 (and equals R1 at 3 gamma);
  on the others none, the plain step exactly."""
  state, lazy = _tiny_state(r1_gamma=4.0, r1_every=3)
  _, plain = _tiny_state()
  _, heavy = _tiny_state(r1_gamma=12.0)
  key = jax.random.PRNGKey(3)
  for t in range(7):
    at_t = state.replace(step=jnp.asarray(t, state.step.dtype))
    new, m = jax.jit(lazy)(at_t, {'x': REAL}, key)
    ref, m_ref = (heavy if t % 3 == 0 else plain)(at_t, {'x': REAL}, key)
    assert_trees_all_close(new, ref, rtol=1e-6, atol=0)
    np.testing.assert_allclose(m['d_loss'], m_ref['d_loss'], rtol=1e-6)
  _, m_plain = plain(state, {'x': REAL}, key)
  np.testing.assert_allclose(m['d_loss'] - m_plain['d_loss'], 3 * 2.0 * 0.3**2, rtol=1e-5)


def test_weight_clip_bounds_d_params():
  state, step = _tiny_state(weight_clip=0.01)
  new_state, _ = step(state, {'x': REAL}, jax.random.PRNGKey(0))
  assert all(abs(float(v)) <= 0.01 for v in jax.tree.leaves(new_state.d_params))


def test_same_key_same_result_and_step_folds_key():
  g, d = models.MLPGenerator(hidden=(8,), data_shape=(2,)), models.MLPDiscriminator(hidden=(8,))
  tx = optax.adam(1e-3)
  state = train.init_state(jax.random.PRNGKey(0), generator=g, discriminator=d, g_optimizer=tx,
                           d_optimizer=tx, latent_dim=3, data_shape=(2,))
  step = jax.jit(gan.make_train_step(generator=g, discriminator=d, g_optimizer=tx,
                                       d_optimizer=tx, latent_dim=3))
  batch = {'x': jnp.ones((8, 2))}
  a, _ = step(state, batch, jax.random.PRNGKey(5))
  b, _ = step(state, batch, jax.random.PRNGKey(5))
  assert_trees_all_close(a, b, atol=0, rtol=0)
  c, _ = step(state.replace(step=state.step + 1), batch, jax.random.PRNGKey(5))
  assert not np.allclose(a.g_params['Dense_0']['kernel'], c.g_params['Dense_0']['kernel'])


@pytest.mark.parametrize('kwargs, match', [
    ({'update_rule': 'sequential'}, 'unknown update rule'),
    ({'num_d_steps': 0}, 'num_d_steps must be >= 1'),
    ({'update_rule': 'simultaneous', 'num_d_steps': 2}, 'num_d_steps'),
    ({'r1_gamma': 1.0, 'r1_every': 0}, 'r1_every must be >= 1'),
])
def test_bad_arguments_raise(kwargs, match):
  with pytest.raises(ValueError, match=match):
    _tiny_state(**kwargs)


def test_sample_latent_distributions():
  z = train.sample_latent(jax.random.PRNGKey(0), 20_000, 2, 'uniform')
  assert float(z.min()) >= -1 and float(z.max()) <= 1
  np.testing.assert_allclose(jnp.var(z), 1 / 3, rtol=0.03)  # Var U[-1, 1] = 1/3.
  np.testing.assert_allclose(jnp.var(train.sample_latent(jax.random.PRNGKey(0), 20_000, 2,
                                                         'normal')), 1.0, rtol=0.03)
  with pytest.raises(ValueError, match='unknown latent distribution'):
    train.sample_latent(jax.random.PRNGKey(0), 2, 2, 'cauchy')


# --- Data parallelism: 8 devices on B/8 examples each compute what one device computes on B.

def _models(kind):
  if kind == 'mlp':
    return (models.MLPGenerator(hidden=(16,), data_shape=(2,)),
            models.MLPDiscriminator(hidden=(16,)), (2,), 4)
  # DCGAN with synchronized batch norm: exercises batch statistics across devices.
  return (lambda axis: models.DCGANGenerator(image_shape=(28, 28, 1), features=4, axis_name=axis),
          lambda axis: models.DCGANDiscriminator(image_shape=(28, 28, 1), features=4,
                                                 axis_name=axis), (28, 28, 1), 8)


# The DCGAN (synchronized batch norm) is slow-marked but for alternating under shard_map: 8-27 s
# each on 2 cores; the MLP covers both update rules under both pmap and shard_map.
@pytest.mark.parametrize('kind, update, parallel', [
    pytest.param(kind, update, parallel, marks=pytest.mark.slow)
    if kind == 'dcgan' and (update, parallel) != ('alternating', 'shard_map')
    else (kind, update, parallel)
    for kind in ('mlp', 'dcgan') for update in ('alternating', 'simultaneous')
    for parallel in ('pmap', 'shard_map')])
def test_data_parallel_step_equals_single_device(parallel, update, kind):
  assert jax.device_count() == 8
  g, d, shape, latent_dim = _models(kind)
  make = lambda axis: (g(axis) if callable(g) and not isinstance(g, nn.Module) else g,
                       d(axis) if callable(d) and not isinstance(d, nn.Module) else d)
  tx = optax.adam(1e-2, b1=0.5)
  g1, d1 = make(None)
  state = train.init_state(jax.random.PRNGKey(0), generator=g1, discriminator=d1, g_optimizer=tx,
                           d_optimizer=tx, latent_dim=latent_dim, data_shape=shape)
  kwargs = dict(g_optimizer=tx, d_optimizer=tx, latent_dim=latent_dim, update_rule=update,
                latent_distribution='normal')
  single = train.parallelize(gan.make_train_step(generator=g1, discriminator=d1, **kwargs),
                             'none')
  gp, dp_ = make(train.AXIS_NAME)
  multi = train.parallelize(gan.make_train_step(generator=gp, discriminator=dp_,
                                                  axis_name=train.AXIS_NAME, **kwargs), parallel)
  assert multi.num_devices == 8
  batch = {'x': jax.random.normal(jax.random.PRNGKey(1), (16, *shape))}
  key = jax.random.PRNGKey(2)
  s1, s8 = single.put_state(state), multi.put_state(state)
  for _ in range(2):
    s1, m1 = single.step(s1, single.put_batch(batch), key)
    s8, m8 = multi.step(s8, multi.put_batch(batch), key)
  s8 = jax.device_get(multi.get_state(s8))
  assert_trees_all_close(jax.device_get(s1), s8, rtol=2e-4, atol=2e-5)
  m8 = train._scalars(m8)
  for name, value in train._scalars(m1).items():
    np.testing.assert_allclose(m8[name], value, rtol=2e-4, atol=1e-5, err_msg=name)


@pytest.mark.parametrize('parallel', ['pmap', 'shard_map'])
def test_batch_not_divisible_by_devices_is_a_clear_error(parallel):
  g, d = models.MLPGenerator(hidden=(4,), data_shape=(2,)), models.MLPDiscriminator(hidden=(4,))
  tx = optax.sgd(0.1)
  dp = train.parallelize(gan.make_train_step(generator=g, discriminator=d, g_optimizer=tx,
                                               d_optimizer=tx, latent_dim=2,
                                               axis_name=train.AXIS_NAME), parallel)
  with pytest.raises(ValueError, match='12 examples is not divisible by the 8 devices'):
    dp.put_batch({'x': np.zeros((12, 2), np.float32)})
