"""Data: toy distributions have the stated moments and modes; TFDS batches are in [-1, 1]."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan import data

KEY = jax.random.PRNGKey(0)


def test_gaussian_1d_is_the_seed_distribution():
  x = data.gaussian_1d(KEY, 50_000)
  assert x.shape == (50_000, 1)
  np.testing.assert_allclose([jnp.mean(x), jnp.std(x)], [1.0, 1.0], atol=0.02)


def test_sine_points_lie_on_the_curve():
  x = data.sine(KEY, 100)
  np.testing.assert_allclose(x[:, 1], np.sin(x[:, 0]), atol=1e-6)
  assert float(jnp.max(jnp.abs(x[:, 0]))) <= np.pi


def test_ring_and_grid_centers():
  ring = data.ring_centers()
  np.testing.assert_allclose(jnp.linalg.norm(ring, axis=1), 1.0, atol=1e-6)
  np.testing.assert_allclose(ring[2], [0.0, 1.0], atol=1e-6)  # Angle 2*pi*2/8 = pi/2.
  grid = data.grid_centers()
  assert grid.shape == (25, 2)
  assert sorted(set(np.asarray(grid[:, 0]).tolist())) == [-4.0, -2.0, 0.0, 2.0, 4.0]


@pytest.mark.parametrize('name, centers, std', [
    ('ring', data.ring_centers(), 0.01), ('grid', data.grid_centers(), 0.05)])
def test_mixtures_have_every_mode_equally_and_the_stated_std(name, centers, std):
  x = data.TOY_DATASETS[name](KEY, 40_000)
  distances = jnp.linalg.norm(x[:, None] - centers[None], axis=-1)
  nearest = jnp.argmin(distances, axis=1)
  counts = np.bincount(np.asarray(nearest), minlength=len(centers))
  np.testing.assert_allclose(counts / len(x), 1 / len(centers), atol=0.01)
  offsets = x - centers[nearest]
  np.testing.assert_allclose(jnp.std(offsets, axis=0), [std, std], rtol=0.05)


def test_toy_batches_are_a_pure_function_of_key_and_step():
  stream = data.toy_batches('ring', KEY, 16)
  first, second = next(stream)['x'], next(stream)['x']
  resumed = next(data.toy_batches('ring', KEY, 16, start_step=1))['x']
  np.testing.assert_array_equal(second, resumed)
  assert not np.array_equal(first, second)


def test_unknown_dataset_is_a_clear_error():
  with pytest.raises(ValueError, match="unknown dataset 'imagenet'"):
    data.data_shape('imagenet')


def test_shard_splits_the_leading_axis():
  batch = {'x': np.arange(24).reshape(8, 3)}
  sharded = data.shard(batch, 4)
  assert sharded['x'].shape == (4, 2, 3)
  np.testing.assert_array_equal(sharded['x'][1], [[6, 7, 8], [9, 10, 11]])
