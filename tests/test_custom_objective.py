"""The README's user-written GAN: relativistic average objectives on jaxgan.game.make_train_step.

The objectives below are the README tour's, verbatim apart from the models; the tests check one
SGD step against the relativistic average GAN's formulas (arXiv:1807.00734, Eq. 11-12)
differentiated by hand-written code that does not go through jaxgan.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxgan import game, gan, losses, models

LR = 0.1
g, d = models.MLPGenerator(hidden=(8,), data_shape=(2,)), models.MLPDiscriminator(hidden=(8,))
tx = optax.sgd(LR)

# --- The README's example (latent_dim 3 instead of 100). ---
generate = gan.make_generate(g, latent_dim=3)      # ((fakes, g_stats), labels) from a key


def logits(d_params, state, x, fake):                # C(x) - mean C(fake), C(fake) - mean C(x)
  real_c = gan.apply_model(d, d_params, state.d_batch_stats, x, train=True)[0]
  fake_c = gan.apply_model(d, d_params, state.d_batch_stats, fake, train=True)[0]
  return real_c - fake_c.mean(), fake_c - real_c.mean()


def d_objective(d_params, state, batch, *, key, shared_key):
  (fake, _), _ = generate(state.g_params, state.g_batch_stats, shared_key, len(batch['x']))
  real_rel, fake_rel = logits(d_params, state, batch['x'], jax.lax.stop_gradient(fake))
  return losses.minimax_discriminator_loss(real_rel, fake_rel), ({}, {})


def g_objective(g_params, state, batch, *, key, shared_key):
  (fake, g_stats), _ = generate(g_params, state.g_batch_stats, shared_key, len(batch['x']))
  real_rel, fake_rel = logits(state.d_params, state, batch['x'], fake)
  return losses.minimax_discriminator_loss(fake_rel, real_rel), (g_stats, {})


step = game.make_train_step(g_objective=g_objective, d_objective=d_objective,
                            g_optimizer=tx, d_optimizer=tx, update_rule='alternating')
# --- End of the example. ---


def _ragan_loss(d_params, g_params, x, z, *, generator: bool):
  """D's loss -E log sigmoid(C(x) - E C(G(z))) - E log(1 - sigmoid(C(G(z)) - E C(x))) (Eq. 11),
  or G's, the same with real and fake swapped (Eq. 12); written from scratch."""
  c = lambda v: d.apply({'params': d_params}, v)
  real_c, fake_c = c(x), c(g.apply({'params': g_params}, z))
  if generator:
    real_c, fake_c = fake_c, real_c
  a, b = real_c - jnp.mean(fake_c), fake_c - jnp.mean(real_c)
  return -jnp.mean(jnp.log(jax.nn.sigmoid(a))) - jnp.mean(jnp.log(1 - jax.nn.sigmoid(b)))


def test_one_step_is_sgd_on_the_relativistic_losses():
  state = gan.init_state(jax.random.PRNGKey(0), generator=g, discriminator=d, g_optimizer=tx,
                         d_optimizer=tx, latent_dim=3, data_shape=(2,))
  x = jax.random.normal(jax.random.PRNGKey(1), (16, 2))
  key = jax.random.PRNGKey(2)
  new, metrics = jax.jit(step)(state, {'x': x}, key)
  # The step's keys (jaxgan.game): D draws its fakes from fold_in(k_shared, 0), G from k_g.
  k_shared, _, k_g = jax.random.split(jax.random.fold_in(key, 0), 3)
  uniform = lambda k: jax.random.uniform(k, (16, 3), minval=-1.0, maxval=1.0)
  z_d, z_g = uniform(jax.random.fold_in(k_shared, 0)), uniform(k_g)
  d_loss, d_grads = jax.value_and_grad(_ragan_loss)(state.d_params, state.g_params, x, z_d,
                                                    generator=False)
  d_params = jax.tree.map(lambda p, gr: p - LR * gr, state.d_params, d_grads)
  g_loss, g_grads = jax.value_and_grad(
      lambda gp: _ragan_loss(d_params, gp, x, z_g, generator=True))(state.g_params)
  g_params = jax.tree.map(lambda p, gr: p - LR * gr, state.g_params, g_grads)
  np.testing.assert_allclose(metrics['d_loss'], d_loss, rtol=1e-5)
  np.testing.assert_allclose(metrics['g_loss'], g_loss, rtol=1e-5)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6),
               new.d_params, d_params)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6),
               new.g_params, g_params)
  assert int(new.step) == 1
