"""Conditional GAN, AC-GAN and EMA: what the models feed to their base networks, how the train
step uses labels (device-count invariance of the fake labels, the AC-GAN loss decomposition) and
the moving average's closed form."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxgan import conditional, gan, models, train

K = 3  # classes
LATENT = 4


def _mlp_cgan():
  g = conditional.ConditionalGenerator(
      models.MLPGenerator(hidden=(16,), data_shape=(2, 2, 1), output_activation='tanh'), K)
  d = conditional.ConditionalDiscriminator(models.MLPDiscriminator(hidden=(16,)), K, 'flat')
  return g, d


def _init(g, d, *, ema=False, data_shape=(2, 2, 1)):
  return train.init_state(jax.random.PRNGKey(0), generator=g, discriminator=d,
                          g_optimizer=optax.adam(1e-2), d_optimizer=optax.adam(1e-2),
                          latent_dim=LATENT, data_shape=data_shape, ema=ema)


def _batch(n, shape=(2, 2, 1), seed=1):
  kx, ky = jax.random.split(jax.random.PRNGKey(seed))
  return {'x': jax.random.uniform(kx, (n, *shape), minval=-1, maxval=1),
          'label': jax.random.randint(ky, (n,), 0, K)}


class TestModels:

  def test_generator_feeds_z_and_one_hot(self):
    base = models.MLPGenerator(hidden=(8,), data_shape=(3,))
    g = conditional.ConditionalGenerator(base, K)
    z = jax.random.normal(jax.random.PRNGKey(0), (5, LATENT))
    labels = jnp.array([0, 1, 2, 1, 0])
    params = g.init(jax.random.PRNGKey(1), z, labels=labels)['params']
    expected = base.apply({'params': params['generator']},
                          jnp.concatenate([z, jax.nn.one_hot(labels, K)], axis=-1))
    chex.assert_trees_all_close(g.apply({'params': params}, z, labels=labels), expected)
    # No labels: an all-zero code (used by init_state).
    chex.assert_trees_all_close(
        g.apply({'params': params}, z),
        base.apply({'params': params['generator']}, jnp.concatenate([z, jnp.zeros((5, K))], -1)))

  def test_discriminator_label_maps(self):
    base = models.DCGANDiscriminator(image_shape=(16, 16, 1), features=4)
    d = conditional.ConditionalDiscriminator(base, K, 'maps')
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 16, 16, 1))
    labels = jnp.array([2, 0])
    variables = d.init(jax.random.PRNGKey(1), x, labels=labels)
    maps = jnp.broadcast_to(jax.nn.one_hot(labels, K)[:, None, None, :], (2, 16, 16, K))
    inner = {'params': variables['params']['discriminator'],
             'batch_stats': variables['batch_stats']['discriminator']}
    expected = base.apply(inner, jnp.concatenate([x, maps], axis=-1))
    chex.assert_trees_all_close(d.apply(variables, x, labels=labels), expected)
    # The first convolution sees 1 + K channels.
    chex.assert_shape(variables['params']['discriminator']['Conv_0']['kernel'], (4, 4, 1 + K, 4))

  def test_discriminator_flat(self):
    base = models.MLPDiscriminator(hidden=(8,))
    d = conditional.ConditionalDiscriminator(base, K, 'flat')
    x = jax.random.normal(jax.random.PRNGKey(0), (4, 2, 2, 1))
    labels = jnp.array([0, 1, 2, 2])
    params = d.init(jax.random.PRNGKey(1), x, labels=labels)['params']
    expected = base.apply({'params': params['discriminator']},
                          jnp.concatenate([x.reshape(4, -1), jax.nn.one_hot(labels, K)], -1))
    chex.assert_trees_all_close(d.apply({'params': params}, x, labels=labels), expected)

  def test_bad_labels_and_inputs_raise(self):
    g, d = _mlp_cgan()
    with pytest.raises(ValueError, match=r'labels must have shape \(2,\)'):
      g.init(jax.random.PRNGKey(0), jnp.zeros((2, LATENT)), labels=jnp.zeros((3,), jnp.int32))
    maps = conditional.ConditionalDiscriminator(models.MLPDiscriminator(hidden=(4,)), K, 'maps')
    with pytest.raises(ValueError, match='needs \\(B, H, W, C\\) images'):
      maps.init(jax.random.PRNGKey(0), jnp.zeros((2, 3)))

  def test_projection_logit_is_linear_plus_embedding_dot_features(self):
    d = conditional.ConditionalDCGANDiscriminator(image_shape=(16, 16, 1), num_classes=K,
                                                  features=4, label_conditioning='projection')
    x = jax.random.normal(jax.random.PRNGKey(0), (3, 16, 16, 1))
    labels = jnp.array([0, 2, 1])
    variables = d.init(jax.random.PRNGKey(1), x, labels=labels)
    logits, inter = d.apply(variables, x, labels=labels, mutable=['intermediates'])
    h = inter['intermediates']['features'][0]
    p = variables['params']
    expected = (h @ p['Dense_0']['kernel'][:, 0] + p['Dense_0']['bias'][0]
                + jnp.sum(p['label_embedding']['kernel'][labels] * h, axis=-1))
    chex.assert_trees_all_close(logits, expected, rtol=1e-5, atol=1e-5)
    # Label maps at the input only: 1 + K channels, then the plain trunk.
    chex.assert_shape([p['Conv_0']['kernel'], p['Conv_1']['kernel']],
                      [(4, 4, 1 + K, 4), (4, 4, 4, 8)])

  def test_every_layer_appends_label_maps_to_each_convolution(self):
    d = conditional.ConditionalDCGANDiscriminator(image_shape=(16, 16, 1), num_classes=K,
                                                  features=4, label_conditioning='every_layer')
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 16, 16, 1))
    variables = d.init(jax.random.PRNGKey(1), x, labels=jnp.array([0, 1]))
    p = variables['params']
    chex.assert_shape([p['Conv_0']['kernel'], p['Conv_1']['kernel']],
                      [(4, 4, 1 + K, 4), (4, 4, 4 + K, 8)])
    # The label reaches the second convolution directly: with the input maps' weights zeroed,
    # the output still depends on the label.
    kernel = p['Conv_0']['kernel'].at[:, :, 1:, :].set(0.0)
    zeroed = {**variables, 'params': {**p, 'Conv_0': {**p['Conv_0'], 'kernel': kernel}}}
    a = d.apply(zeroed, x, labels=jnp.array([0, 0]))
    b = d.apply(zeroed, x, labels=jnp.array([2, 2]))
    assert float(jnp.max(jnp.abs(a - b))) > 1e-4
    with pytest.raises(ValueError, match='unknown label_conditioning'):
      conditional.ConditionalDCGANDiscriminator(image_shape=(16, 16, 1), num_classes=K,
                                                label_conditioning='late').init(
                                                    jax.random.PRNGKey(0), x)

  def test_acgan_discriminator_heads(self):
    # The source head is DCGANDiscriminator itself (same trunk, Dense_0): the plain DCGAN D with
    # the AC-GAN's weights is a peer for the logit; the class head is Dense_1 on the same
    # features, computed here by hand.
    d = conditional.ACGANDiscriminator(image_shape=(8, 8, 1), num_classes=K, features=4)
    x = jax.random.normal(jax.random.PRNGKey(1), (5, 8, 8, 1))
    variables = d.init(jax.random.PRNGKey(0), x)
    (logits, class_logits), inter = d.apply(variables, x, mutable=['intermediates'])
    chex.assert_shape([logits, class_logits], [(5,), (5, K)])
    p = variables['params']
    trunk = {k: v for k, v in p.items() if k != 'Dense_1'}
    peer = models.DCGANDiscriminator(image_shape=(8, 8, 1), features=4).apply(
        {**variables, 'params': trunk}, x)
    chex.assert_trees_all_close(logits, peer, rtol=1e-5, atol=1e-6)
    h = inter['intermediates']['features'][0]
    chex.assert_trees_all_close(class_logits, h @ p['Dense_1']['kernel'] + p['Dense_1']['bias'],
                                rtol=1e-5, atol=1e-6)


def test_sample_labels_uniform():
  labels = np.asarray(train.sample_labels(jax.random.PRNGKey(0), 30_000, 10))
  counts = np.bincount(labels, minlength=10)
  assert labels.min() == 0 and labels.max() == 9
  # Binomial(30000, 0.1): std 52; allow 5 std.
  np.testing.assert_array_less(np.abs(counts - 3000), 5 * 52)


class TestTrainStep:

  def test_unconditional_step_ignores_labels(self):
    g = models.MLPGenerator(hidden=(8,), data_shape=(2, 2, 1))
    d = models.MLPDiscriminator(hidden=(8,))
    step = jax.jit(gan.make_train_step(generator=g, discriminator=d,
                                         g_optimizer=optax.adam(1e-2),
                                         d_optimizer=optax.adam(1e-2), latent_dim=LATENT))
    state = _init(g, d)
    batch = _batch(8)
    with_labels, m1 = step(state, batch, jax.random.PRNGKey(2))
    without, m2 = step(state, {'x': batch['x']}, jax.random.PRNGKey(2))
    chex.assert_trees_all_close(with_labels, without)
    chex.assert_trees_all_close(m1, m2)

  # alternating-2 is slow-marked (20 s on 2 cores); tests/test_redesign.py's eight-devices test
  # covers the conditional alternating step too.
  @pytest.mark.parametrize('update,num_d_steps', [
      pytest.param('alternating', 2, marks=pytest.mark.slow), ('simultaneous', 1)])
  def test_conditional_step_independent_of_device_count(self, update, num_d_steps):
    # Two "devices" (a named vmap axis) on half the batch each compute what one computes on all.
    g, d = _mlp_cgan()
    kwargs = dict(generator=g, discriminator=d, g_optimizer=optax.adam(1e-2),
                  d_optimizer=optax.adam(1e-2), latent_dim=LATENT, update_rule=update,
                  num_d_steps=num_d_steps, num_classes=K)
    state = _init(g, d)
    batch = _batch(8 * num_d_steps)
    key = jax.random.PRNGKey(3)
    one, m_one = jax.jit(gan.make_train_step(**kwargs))(state, batch, key)
    step2 = gan.make_train_step(**kwargs, axis_name='batch')
    split = jax.tree.map(lambda x: x.reshape((2, -1, *x.shape[1:])), batch)
    two, m_two = jax.vmap(step2, in_axes=(None, 0, None), axis_name='batch')(state, split, key)
    chex.assert_trees_all_close(jax.tree.map(lambda x: x[0], two), one, atol=1e-5)
    chex.assert_trees_all_close(jax.tree.map(lambda x: x[0], m_two), m_one, atol=1e-5)

  def test_conditional_step_uses_the_labels(self):
    g, d = _mlp_cgan()
    step = jax.jit(gan.make_train_step(generator=g, discriminator=d,
                                         g_optimizer=optax.adam(1e-2),
                                         d_optimizer=optax.adam(1e-2), latent_dim=LATENT,
                                         num_classes=K))
    state = _init(g, d)
    batch = _batch(8)
    _, m1 = step(state, batch, jax.random.PRNGKey(2))
    _, m2 = step(state, {**batch, 'label': (batch['label'] + 1) % K}, jax.random.PRNGKey(2))
    assert abs(float(m1['d_real']) - float(m2['d_real'])) > 1e-6
    with pytest.raises(ValueError, match='needs labelled batches'):
      step(state, {'x': batch['x']}, jax.random.PRNGKey(2))

  def test_acgan_loss_decomposition_and_real_accuracy(self):
    g = conditional.ConditionalGenerator(
        models.DCGANGenerator(image_shape=(8, 8, 1), features=4), K)
    d = conditional.ACGANDiscriminator(image_shape=(8, 8, 1), num_classes=K, features=4)
    state = _init(g, d, data_shape=(8, 8, 1))
    batch = _batch(6, shape=(8, 8, 1))
    key = jax.random.PRNGKey(4)

    def metrics_for(weight, fake_weight=1.0):
      step = jax.jit(gan.make_train_step(
          generator=g, discriminator=d, g_optimizer=optax.adam(1e-3),
          d_optimizer=optax.adam(1e-3), latent_dim=LATENT, num_classes=K,
          auxiliary_classifier_weight=weight, auxiliary_classifier_fake_weight=fake_weight,
          update_rule='simultaneous'))
      return step(state, batch, key)[1]

    m1, m2 = metrics_for(1.0), metrics_for(2.0)
    # Loss = adversarial + weight * class cross-entropy; with simultaneous updates both losses
    # are taken at the initial state, so doubling the weight adds exactly one cross-entropy.
    np.testing.assert_allclose(m2['d_loss'] - m1['d_loss'], m1['d_class_loss'], rtol=1e-4)
    np.testing.assert_allclose(m1['d_class_loss'], m2['d_class_loss'], rtol=1e-5)
    np.testing.assert_allclose(m2['g_loss'] - m1['g_loss'], m2['g_class_loss'], rtol=1e-4)
    # D's class accuracy on real data, by hand: D in training mode (batch statistics).
    (_, class_logits), _ = d.apply({'params': state.d_params, 'batch_stats': state.d_batch_stats},
                                   batch['x'], train=True, mutable=['batch_stats'])
    expected = np.mean(np.argmax(class_logits, -1) == np.asarray(batch['label']))
    np.testing.assert_allclose(m1['d_class_accuracy'], expected, atol=1e-6)
    # Without the fakes' term, D's class loss is the real images' cross-entropy, by hand.
    log_p = jax.nn.log_softmax(class_logits)
    ce_real = -np.mean(np.asarray(log_p)[np.arange(6), np.asarray(batch['label'])])
    m0 = metrics_for(1.0, fake_weight=0.0)
    np.testing.assert_allclose(m0['d_class_loss'], ce_real, rtol=1e-5)
    assert float(m1['d_class_loss']) > float(m0['d_class_loss'])  # CE(fake) > 0 was in it.
    np.testing.assert_allclose(m0['g_class_loss'], m1['g_class_loss'], rtol=1e-6)  # G's: same.

  def test_bad_options_raise(self):
    g, d = _mlp_cgan()
    common = dict(generator=g, discriminator=d, g_optimizer=optax.adam(1e-2),
                  d_optimizer=optax.adam(1e-2), latent_dim=LATENT)
    with pytest.raises(ValueError, match='needs num_classes > 0'):
      gan.make_train_step(**common, auxiliary_classifier_weight=1.0)
    with pytest.raises(ValueError, match='ema_decay'):
      gan.make_train_step(**common, ema_decay=1.0)


class TestEMA:

  def test_update_closed_form(self):
    ema, params = {'w': jnp.array([0.0, 10.0])}, {'w': jnp.array([1.0, 0.0])}
    # step 100: d = min(0.9, 101 / 110) = 0.9 -> 0.9 ema + 0.1 params.
    chex.assert_trees_all_close(train.update_ema(ema, params, decay=0.9, step=100),
                                {'w': jnp.array([0.1, 9.0])}, atol=1e-6)
    # step 0: warm-up d = min(0.999, 1 / 10) = 0.1 -> mostly the new params.
    chex.assert_trees_all_close(train.update_ema(ema, params, decay=0.999, step=0),
                                {'w': jnp.array([0.9, 1.0])}, atol=1e-6)

  def test_step_tracks_generator(self):
    g, d = _mlp_cgan()
    step = jax.jit(gan.make_train_step(generator=g, discriminator=d,
                                         g_optimizer=optax.adam(1e-2),
                                         d_optimizer=optax.adam(1e-2), latent_dim=LATENT,
                                         num_classes=K, ema_decay=0.999))
    state = _init(g, d, ema=True)
    chex.assert_trees_all_close(state.ema_g_params, state.g_params)
    new, _ = step(state, _batch(8), jax.random.PRNGKey(0))
    expected = jax.tree.map(lambda e, p: 0.1 * e + 0.9 * p, state.g_params, new.g_params)
    chex.assert_trees_all_close(new.ema_g_params, expected, atol=1e-6)
    with pytest.raises(ValueError, match='init_state'):
      step(_init(g, d), _batch(8), jax.random.PRNGKey(0))
