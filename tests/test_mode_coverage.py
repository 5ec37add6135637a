"""jaxgan.metrics.mode_coverage on constructed samples whose answers are known by hand."""

from __future__ import annotations

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan import data, metrics

RING = np.asarray(data.ring_centers())
GRID = np.asarray(data.grid_centers())


def test_samples_on_three_ring_centers():
  # 10 samples exactly on each of modes 0, 3, 5: 3 modes, all high quality, p = 1/3 each:
  # KL = sum 1/3 log(8/3) = log(8/3).
  samples = np.repeat(RING[[0, 3, 5]], 10, axis=0)
  m = metrics.mode_coverage(samples, RING, 0.01)
  assert float(m['modes']) == 3.0
  assert float(m['high_quality']) == 1.0
  np.testing.assert_allclose(float(m['reverse_kl']), math.log(8 / 3), rtol=1e-6)
  np.testing.assert_array_equal(m['counts'], [10, 0, 0, 10, 0, 10, 0, 0])


def test_uniform_histogram_has_zero_reverse_kl():
  samples = np.tile(GRID, (4, 1)) + 0.01  # 4 per mode, each 0.014 < 0.15 from its center
  m = metrics.mode_coverage(samples, GRID, 0.05)
  assert float(m['modes']) == 25.0 and float(m['high_quality']) == 1.0
  np.testing.assert_allclose(float(m['reverse_kl']), 0.0, atol=1e-7)


def test_unbalanced_histogram_hand_value():
  # Two modes with 3 and 1 high-quality samples: p = (3/4, 1/4) against u = (1/2, 1/2):
  # KL = 3/4 log(3/2) + 1/4 log(1/2).
  centers = np.array([[0.0, 0.0], [10.0, 0.0]])
  samples = np.array([[0.0, 0.0], [0.1, 0.0], [0.0, -0.1], [10.0, 0.1]])
  m = metrics.mode_coverage(samples, centers, 0.1)
  expected = 0.75 * math.log(1.5) + 0.25 * math.log(0.5)
  np.testing.assert_allclose(float(m['reverse_kl']), expected, rtol=1e-6)
  assert float(m['modes']) == 2.0


def test_threshold_is_three_std_of_the_nearest_mode():
  # Along x from mode 0 at (1, 0): 2.9 std is high quality, 3.1 std is not.
  std = 0.01
  inside = RING[0] + np.array([2.9 * std, 0.0])
  outside = RING[0] + np.array([3.1 * std, 0.0])
  m = metrics.mode_coverage(np.stack([inside, outside]), RING, std)
  assert float(m['high_quality']) == 0.5
  assert float(m['modes']) == 1.0
  # A looser threshold admits both.
  m = metrics.mode_coverage(np.stack([inside, outside]), RING, std, threshold=4.0)
  assert float(m['high_quality']) == 1.0


def test_low_quality_samples_do_not_cover_or_enter_the_histogram():
  # 5 samples at mode 0; 95 samples halfway between modes 1 and 2 (nearest: one of them, but far).
  between = (RING[1] + RING[2]) / 2
  samples = np.concatenate([np.repeat(RING[:1], 5, axis=0), np.repeat(between[None], 95, axis=0)])
  m = metrics.mode_coverage(samples, RING, 0.01)
  assert float(m['modes']) == 1.0
  np.testing.assert_allclose(float(m['high_quality']), 0.05, rtol=1e-6)
  # The histogram holds only the 5 high-quality samples, all in one mode: KL = log 8.
  np.testing.assert_allclose(float(m['reverse_kl']), math.log(8), rtol=1e-6)
  assert int(m['counts'].sum()) == 5


def test_no_high_quality_sample_gives_infinite_reverse_kl():
  m = metrics.mode_coverage(np.full((7, 2), 3.0), RING, 0.01)
  assert float(m['modes']) == 0.0 and float(m['high_quality']) == 0.0
  assert float(m['reverse_kl']) == np.inf


def test_data_itself_scores_like_a_gaussian():
  # Real grid data: every mode covered, and the fraction within 3 std of an isotropic 2-D
  # Gaussian is the chi-squared(2) CDF at 9: 1 - exp(-9/2) = 0.98889.
  samples = data.grid(jax.random.key(0), 100_000)
  m = metrics.mode_coverage(samples, GRID, 0.05)
  assert float(m['modes']) == 25.0
  np.testing.assert_allclose(float(m['high_quality']), 1 - math.exp(-4.5), atol=2e-3)
  assert float(m['reverse_kl']) < 1e-3


def test_jit_and_vmap_hand_values():
  # Two constructed sample sets of 30 points, vmapped (as over seeds) under jit:
  #   0: 10 points on each of ring modes 0, 3, 5: 3 modes, all high quality, KL = log(8/3);
  #   1: 15 points on mode 2 and 15 at (3, 3), far from every mode: 1 mode, half high quality,
  #      a one-mode histogram, KL = log 8.
  first = np.repeat(RING[[0, 3, 5]], 10, axis=0)
  second = np.concatenate([np.repeat(RING[2:3], 15, axis=0), np.full((15, 2), 3.0)])
  coverage = jax.jit(jax.vmap(lambda s: metrics.mode_coverage(s, RING, 0.01)))
  m = coverage(jnp.asarray(np.stack([first, second]), jnp.float32))
  chex.assert_trees_all_close(m['modes'], jnp.array([3.0, 1.0]))
  chex.assert_trees_all_close(m['high_quality'], jnp.array([1.0, 0.5]))
  chex.assert_trees_all_close(m['reverse_kl'], jnp.array([math.log(8 / 3), math.log(8)]),
                              rtol=1e-6)
  np.testing.assert_array_equal(m['counts'], [[10, 0, 0, 10, 0, 10, 0, 0],
                                              [0, 0, 15, 0, 0, 0, 0, 0]])


@pytest.mark.parametrize('samples, centers, std', [
    (np.zeros((4, 3)), RING, 0.01),
    (np.zeros((4,)), RING, 0.01),
    (np.zeros((4, 2)), RING, 0.0),
])
def test_bad_input_raises(samples, centers, std):
  with pytest.raises(ValueError, match='shapes|std'):
    metrics.mode_coverage(samples, centers, std)
