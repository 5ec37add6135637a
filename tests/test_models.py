"""Models: the seeds' exact architectures, DCGAN shapes, logits (not probabilities) out."""

import math

import jax
import jax.numpy as jnp
import pytest

from jaxgan import models


def _param_count(model, x):
  variables = model.init(jax.random.PRNGKey(0), x)
  return sum(math.prod(p.shape) for p in jax.tree.leaves(variables['params']))


def _dense(n_in, n_out):
  return n_in * n_out + n_out


def test_seed_example_1_architecture():
  g, d = models.gaussian_1d_models()
  # G 1 -> 5 -> 5 -> 1, D 1 -> 10 -> 10 -> 1 (lecture 004, Example 1).
  assert _param_count(g, jnp.zeros((1, 1))) == _dense(1, 5) + _dense(5, 5) + _dense(5, 1)
  assert _param_count(d, jnp.zeros((1, 1))) == _dense(1, 10) + _dense(10, 10) + _dense(10, 1)
  z = jnp.linspace(-1, 1, 7)[:, None]
  assert g.apply(g.init(jax.random.PRNGKey(0), z), z).shape == (7, 1)


def test_seed_example_2_architecture():
  g, d = models.mnist_mlp_models()
  assert _param_count(g, jnp.zeros((1, 100))) == (
      _dense(100, 256) + _dense(256, 512) + _dense(512, 1024) + _dense(1024, 784))
  assert _param_count(d, jnp.zeros((1, 28, 28, 1))) == (
      _dense(784, 1024) + _dense(1024, 512) + _dense(512, 256) + _dense(256, 1))
  z = jax.random.uniform(jax.random.PRNGKey(1), (3, 100), minval=-1, maxval=1)
  images = g.apply(g.init(jax.random.PRNGKey(0), z), z)
  assert images.shape == (3, 28, 28, 1)
  assert float(jnp.max(jnp.abs(images))) <= 1.0  # tanh output.


def test_discriminator_returns_unbounded_logits():
  d = models.MLPDiscriminator(hidden=(4,))
  x = 100.0 * jnp.ones((2, 3))
  params = d.init(jax.random.PRNGKey(0), x)
  params = jax.tree.map(lambda p: jnp.full_like(p, 1.0), params)
  # With all weights 1: h = relu(300 + 1) = 301 per unit, logit = 4 * 301 + 1 = 1205.
  assert jnp.allclose(d.apply(params, x), 1205.0)


@pytest.mark.parametrize('image_shape, hidden', [
    ((28, 28, 1), [(7, 7, 128), (14, 14, 64)]),
    ((32, 32, 3), [(4, 4, 256), (8, 8, 128), (16, 16, 64)]),
    # 10 s on 2 cores (eager, full width); 32x32 checks the same 4x4 seed with one stage less.
    pytest.param((64, 64, 3), [(4, 4, 512), (8, 8, 256), (16, 16, 128), (32, 32, 64)],
                 marks=pytest.mark.slow),
])
def test_dcgan_shapes(image_shape, hidden):
  g = models.DCGANGenerator(image_shape=image_shape)
  d = models.DCGANDiscriminator(image_shape=image_shape)
  z = jax.random.normal(jax.random.PRNGKey(0), (2, 100))
  g_vars = g.init(jax.random.PRNGKey(1), z)
  images, state = g.apply(g_vars, z, train=True, mutable=['batch_stats'])
  assert images.shape == (2, *image_shape)
  assert float(jnp.max(jnp.abs(images))) <= 1.0
  # Batch-norm scales record the channel widths of G's hidden stages.
  widths = [
      v['mean'].shape[0] for v in g_vars['batch_stats'].values()]
  assert widths == [c for _, _, c in hidden]
  logits = d.apply(d.init(jax.random.PRNGKey(2), images), images)
  assert logits.shape == (2,)
  assert set(state) == {'batch_stats'}


def test_dcgan_first_d_layer_has_no_batch_norm_and_bn_layers_no_bias():
  d = models.DCGANDiscriminator(image_shape=(28, 28, 1))
  params = d.init(jax.random.PRNGKey(0), jnp.zeros((1, 28, 28, 1)))['params']
  assert 'bias' in params['Conv_0'] and 'bias' not in params['Conv_1']
  assert list(params) == ['Conv_0', 'Conv_1', 'BatchNorm_0', 'Dense_0']


@pytest.mark.parametrize('shape', [(30, 30, 1), (28, 32, 1)])
def test_dcgan_rejects_sizes_it_cannot_make(shape):
  with pytest.raises(ValueError, match='image'):
    models.DCGANGenerator(image_shape=shape).init(jax.random.PRNGKey(0), jnp.zeros((1, 8)))


def test_unknown_activation_is_a_clear_error():
  g = models.MLPGenerator(hidden=(4,), data_shape=(2,), activation='swishy')
  with pytest.raises(ValueError, match="unknown activation 'swishy'"):
    g.init(jax.random.PRNGKey(0), jnp.zeros((1, 2)))
