"""pix2pix's U-Net and PatchGAN, CycleGAN's ResNet generator and history pool.

Shapes, ranges and parameter counts; the U-Net's skips and dropout noise; the PatchGAN's
receptive field measured by gradients; the pool against a pure-Python replay of the reference
``ImagePool.query`` loop driven by the same random draws.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan import cyclegan, pix2pix


def _images(seed, shape=(2, 28, 28, 1)) -> jax.Array:
  return jnp.asarray(np.random.default_rng(seed).uniform(-1, 1, shape), jnp.float32)


def _init(model, x, seed: int = 0) -> dict:
  """Random variables for ``model``, drawn by numpy in flax's shapes (kernels ~ N(0, 1/fan_in)).

  flax's truncated-normal initializer compiles once per kernel shape, about a second each on a
  CPU: most of this file's time. The tests are about the forward pass, not the initializer.
  """
  shapes = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), x, train=False))
  rng = np.random.default_rng(seed)

  def draw(path, leaf):
    noise = rng.standard_normal(leaf.shape).astype(np.float32)
    name = path[-1].key
    if name == 'kernel':
      return jnp.asarray(noise / math.sqrt(math.prod(leaf.shape[:-1])))
    return jnp.asarray((1.0 if name == 'scale' else 0.0) + 0.1 * noise)

  return jax.tree_util.tree_map_with_path(draw, shapes)


def _param_count(model, x) -> int:
  shapes = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), x, train=False))
  assert set(shapes) == {'params'}  # Stateless: no batch_stats.
  return sum(math.prod(p.shape) for p in jax.tree.leaves(shapes))


def _conv(k, c_in, c_out, bias=True):
  return k * k * c_in * c_out + (c_out if bias else 0)


# --- U-Net ---


@pytest.fixture(scope='module')
def unet():
  g = pix2pix.UNetGenerator(features=4)
  return g, _init(g, _images(0))


def test_unet_shapes_and_range(unet):
  g, variables = unet
  y = g.apply(variables, 5.0 * _images(0), train=False)  # Large inputs: tanh still bounds it.
  assert y.shape == (2, 28, 28, 1)
  assert float(jnp.max(jnp.abs(y))) <= 1.0
  rgb = pix2pix.UNetGenerator(out_channels=3, features=4)
  assert jax.eval_shape(lambda: rgb.init_with_output(
      jax.random.PRNGKey(0), _images(0, (2, 28, 28, 3)), train=False))[0].shape == (2, 28, 28, 3)


def test_unet_decoder_reads_the_skip_connections(unet):
  _, variables = unet
  params, f = variables['params'], 4
  # Input channels of each decoder kernel: its own input plus the mirrored encoder features.
  assert params['up2']['kernel'].shape == (3, 3, 4 * f, 2 * f)  # The bottleneck alone.
  assert params['up1']['kernel'].shape == (4, 4, 2 * f + 2 * f, f)  # [u2, e2]
  assert params['out']['kernel'].shape == (4, 4, f + f, 1)  # [u1, e1]
  assert 'down1_norm' not in params  # No norm on the first encoder layer.


def test_unet_default_parameter_count():
  count = _param_count(pix2pix.UNetGenerator(), jnp.zeros((1, 28, 28, 1)))
  norm = lambda c: 2 * c  # Instance norm's scale and bias.
  assert count == (_conv(4, 1, 64) + _conv(4, 64, 128, False) + norm(128)
                   + _conv(3, 128, 256, False) + norm(256) + _conv(3, 256, 128, False) + norm(128)
                   + _conv(4, 256, 64, False) + norm(64) + _conv(4, 128, 1))
  assert count == 987_329


def test_unet_dropout_is_the_noise(unet):
  g, variables = unet
  x = _images(1)
  apply = jax.jit(lambda key, train: g.apply(variables, x, train=train, rngs={'dropout': key}),
                  static_argnums=1)
  k1, k2 = jax.random.PRNGKey(1), jax.random.PRNGKey(2)
  a, b, a_again = apply(k1, True), apply(k2, True), apply(k1, True)
  assert float(jnp.max(jnp.abs(a - b))) > 1e-3  # Different keys, different samples.
  np.testing.assert_array_equal(a, a_again)
  # train=False: no dropout, the same output for any key (or none).
  np.testing.assert_array_equal(apply(k1, False), apply(k2, False))
  np.testing.assert_allclose(apply(k1, False), g.apply(variables, x, train=False), atol=1e-5)
  assert float(jnp.max(jnp.abs(a - apply(k1, False)))) > 1e-3
  # dropout_rate=0: training is deterministic too (instance norm keeps no statistics).
  plain = pix2pix.UNetGenerator(features=4, dropout_rate=0.0)
  np.testing.assert_array_equal(plain.apply(variables, x, train=True),
                                plain.apply(variables, x, train=False))


def test_generators_reject_sizes_not_divisible_by_4():
  for g in (pix2pix.UNetGenerator(features=2), cyclegan.ResnetGenerator(features=2)):
    with pytest.raises(ValueError, match='divisible by 4'):
      g.init(jax.random.PRNGKey(0), jnp.zeros((1, 30, 30, 1)), train=False)


# --- PatchGAN ---


def test_patch_discriminator_shapes_and_count():
  d = pix2pix.PatchDiscriminator(features=4)
  x = _images(3, (2, 28, 28, 2))  # concat([input, output], -1)
  variables = _init(d, x)
  assert d.apply(variables, x, train=False).shape == (2, 12, 12, 1)
  count = _param_count(pix2pix.PatchDiscriminator(), jnp.zeros((1, 28, 28, 2)))
  assert count == _conv(4, 2, 64) + _conv(4, 64, 128, False) + 2 * 128 + _conv(4, 128, 1)
  assert count == 135_489


def test_receptive_field_formula():
  assert pix2pix.RECEPTIVE_FIELD == pix2pix.patch_receptive_field(1) == 16
  assert pix2pix.patch_receptive_field(3) == 70  # The paper's 70x70 PatchGAN.
  with pytest.raises(ValueError, match='num_layers must be >= 1, got 0'):
    pix2pix.patch_receptive_field(0)


def _input_gradient(d, x, i, j):
  variables = _init(d, x)
  grad = jax.grad(lambda x: d.apply(variables, x, train=False)[0, i, j, 0])(x)
  return np.abs(np.asarray(grad[0])).sum(-1)


@pytest.mark.parametrize('num_layers, size', [(1, 28), (2, 64)])
def test_receptive_field_measured(num_layers, size):
  field = pix2pix.patch_receptive_field(num_layers)
  d = pix2pix.PatchDiscriminator(features=4, num_layers=num_layers, normalize=False)
  x = _images(4, (1, size, size, 2))
  out_size = d.apply(_init(d, x), x, train=False).shape[1]
  centre = out_size // 2
  grad = _input_gradient(d, x, centre, centre)
  rows, cols = np.nonzero(grad)
  top, left = rows.min(), cols.min()
  assert (rows.max() - top + 1, cols.max() - left + 1) == (field, field)
  assert np.all(grad[top:top + field, left:left + field] > 0)  # The whole window, nothing else.
  if num_layers == 1:  # As the docstring says: rows 2i - 5 .. 2i + 10.
    assert (top, left) == (2 * centre - 5, 2 * centre - 5)


def test_instance_norm_adds_a_global_dependence():
  d = pix2pix.PatchDiscriminator(features=4)
  grad = _input_gradient(d, _images(5, (1, 28, 28, 2)), 6, 6)
  window = np.zeros_like(grad, bool)
  window[7:23, 7:23] = True
  assert np.all(grad[window] > 0)
  assert grad[~window].max() < grad[window].max()


# --- ResNet generator ---


def test_resnet_shapes_and_range():
  g = cyclegan.ResnetGenerator(features=4, num_blocks=2)
  x = 5.0 * _images(6, (2, 28, 28, 1))
  variables = _init(g, x)
  y = g.apply(variables, x, train=True)
  assert y.shape == (2, 28, 28, 1)
  assert float(jnp.max(jnp.abs(y))) <= 1.0
  np.testing.assert_array_equal(y, g.apply(variables, x, train=False))  # train is unused.
  assert len([name for name in variables['params'] if name.startswith('ResnetBlock')]) == 2
  rgb = cyclegan.ResnetGenerator(out_channels=3, features=4, num_blocks=2)
  assert jax.eval_shape(lambda: rgb.init_with_output(
      jax.random.PRNGKey(0), _images(0, (2, 28, 28, 3)), train=False))[0].shape == (2, 28, 28, 3)


def test_resnet_default_parameter_count():
  count = _param_count(cyclegan.ResnetGenerator(), jnp.zeros((1, 28, 28, 1)))
  norm = lambda c: 2 * c
  block = 2 * (_conv(3, 256, 256, False) + norm(256))
  assert count == (_conv(7, 1, 64, False) + norm(64) + _conv(3, 64, 128, False) + norm(128)
                   + _conv(3, 128, 256, False) + norm(256) + 6 * block
                   + _conv(3, 256, 128, False) + norm(128) + _conv(3, 128, 64, False) + norm(64)
                   + _conv(7, 64, 1))
  assert count == 7_828_865


# --- History pool ---


def _reference_query(stored: list, pool_size: int, images: np.ndarray, key) -> np.ndarray:
  """``ImagePool.query`` of pytorch-CycleGAN-and-pix2pix, with pool_query's random draws."""
  out = []
  for image, image_key in zip(images, jax.random.split(key, len(images)), strict=True):
    k_coin, k_index = jax.random.split(image_key)
    if len(stored) < pool_size:
      stored.append(image)
      out.append(image)
    elif float(jax.random.uniform(k_coin)) > 0.5:
      slot = int(jax.random.randint(k_index, (), 0, pool_size))
      out.append(stored[slot])
      stored[slot] = image
    else:
      out.append(image)
  return np.stack(out)


def _numbered(start, num, shape=(2, 2, 1)) -> np.ndarray:
  """Images whose pixels all equal their serial number: identity is visible in the output."""
  return np.arange(start, start + num, dtype=np.float32).reshape(-1, 1, 1, 1) * np.ones(shape)


def test_pool_matches_the_reference_loop():
  pool_size, batch = 3, 4
  pool = cyclegan.pool_init(pool_size, (2, 2, 1))
  query = jax.jit(cyclegan.pool_query)
  stored, swaps, passes = [], 0, 0
  for t in range(6):
    images = _numbered(1 + batch * t, batch)
    key = jax.random.fold_in(jax.random.PRNGKey(0), t)
    pool, out = query(pool, jnp.asarray(images), key)
    expected = _reference_query(stored, pool_size, images, key)
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(pool['images'], np.stack(stored))
    assert int(pool['count']) == len(stored)
    passes += int(np.sum(np.all(expected == images, axis=(1, 2, 3))))
    swaps += int(np.sum(np.any(expected != images, axis=(1, 2, 3))))
  assert swaps > 2 and passes > 2 + pool_size  # Both branches ran.


def test_pool_filling_phase():
  pool = cyclegan.pool_init(5, (2, 2, 1))
  first = _numbered(1, 3)
  pool, out = cyclegan.pool_query(pool, jnp.asarray(first), jax.random.PRNGKey(0))
  np.testing.assert_array_equal(out, first)  # Stored and returned as they are.
  assert int(pool['count']) == 3
  np.testing.assert_array_equal(pool['images'][:3], first)
  assert not np.any(pool['images'][3:])
  second = _numbered(4, 2)
  pool, out = cyclegan.pool_query(pool, jnp.asarray(second), jax.random.PRNGKey(1))
  np.testing.assert_array_equal(out, second)  # Fills the last two slots.
  assert int(pool['count']) == 5
  np.testing.assert_array_equal(pool['images'], _numbered(1, 5))
  # The next image meets a full pool: returned as it is, or swapped for a stored one.
  full, out = cyclegan.pool_query(pool, jnp.asarray(_numbered(6, 1)), jax.random.PRNGKey(2))
  returned = int(out[0, 0, 0, 0])
  if returned == 6:
    np.testing.assert_array_equal(full['images'], pool['images'])
  else:
    np.testing.assert_array_equal(full['images'][returned - 1], _numbered(6, 1)[0])
  assert int(full['count']) == 5


def test_pool_size_zero_is_the_identity():
  pool = cyclegan.pool_init(0, (2, 2, 1))
  images = jnp.asarray(_numbered(1, 4))
  new_pool, out = jax.jit(cyclegan.pool_query)(pool, images, jax.random.PRNGKey(0))
  np.testing.assert_array_equal(out, images)
  assert new_pool['images'].shape == (0, 2, 2, 1) and int(new_pool['count']) == 0


def test_pool_init_validates_and_outputs_carry_no_gradient():
  with pytest.raises(ValueError, match='pool_size must be >= 0, got -1'):
    cyclegan.pool_init(-1, (28, 28, 1))
  pool = cyclegan.pool_init(2, (2, 2, 1))
  grad = jax.grad(lambda x: cyclegan.pool_query(pool, x, jax.random.PRNGKey(0))[1].sum())(
      jnp.ones((3, 2, 2, 1)))
  assert not np.any(grad)
