"""Metrics against closed forms: Gaussians for the Fréchet distance, extreme predictions for the
Inception score, shifts for the sliced Wasserstein distance, hand-computed kernel sums for MMD and
a discrete uniform distribution of known size for the birthday-paradox estimate."""

from __future__ import annotations

import math

import chex
import jax
import numpy as np
import pytest

from jaxgan import metrics


def _random_spd(rng, d):
  a = rng.normal(size=(d, d))
  return a @ a.T + 0.1 * np.eye(d)


class TestFrechetDistance:

  def test_diagonal_covariances_closed_form(self):
    # Diagonal covariances commute: FD = ||mu1 - mu2||^2 + sum_i (sqrt(s1_i) - sqrt(s2_i))^2.
    mu1, mu2 = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.5])
    s1, s2 = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    expected = (1 + 0 + 6.25) + ((1 - 3)**2 + (2 - 1)**2 + 0)  # 7.25 + 5 = 12.25
    got = metrics.frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2))
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert expected == 12.25

  def test_two_by_two_non_commuting_closed_form(self):
    # 2x2 M with eigenvalues l1, l2: tr sqrt(M) = sqrt(l1) + sqrt(l2) = sqrt(tr M + 2 sqrt(det M)).
    # So tr (s1 s2)^(1/2) = sqrt(tr(s1 s2) + 2 sqrt(det s1 det s2)), with no matrix square root.
    s1 = np.array([[2.0, 1.0], [1.0, 3.0]])
    s2 = np.array([[1.0, 0.3], [0.3, 0.5]])
    assert not np.allclose(s1 @ s2, s2 @ s1)
    mu1, mu2 = np.array([1.0, 2.0]), np.array([0.0, 0.0])
    trace_sqrt = math.sqrt(np.trace(s1 @ s2) + 2 * math.sqrt(np.linalg.det(s1) * np.linalg.det(s2)))
    expected = 5.0 + np.trace(s1) + np.trace(s2) - 2 * trace_sqrt
    np.testing.assert_allclose(metrics.frechet_distance(mu1, s1, mu2, s2), expected, rtol=1e-12)

  def test_zero_for_equal_gaussians_and_symmetric(self):
    rng = np.random.default_rng(0)
    mu, s1, s2 = rng.normal(size=8), _random_spd(rng, 8), _random_spd(rng, 8)
    assert abs(metrics.frechet_distance(mu, s1, mu, s1)) < 1e-9
    np.testing.assert_allclose(metrics.frechet_distance(mu, s1, 0 * mu, s2),
                               metrics.frechet_distance(0 * mu, s2, mu, s1), rtol=1e-10)

  def test_scaled_identity_covariances(self):
    # N(0, a^2 I_d) vs N(0, b^2 I_d): FD = d (a - b)^2.
    d = 16
    got = metrics.frechet_distance(np.zeros(d), 4.0 * np.eye(d), np.zeros(d), 0.25 * np.eye(d))
    np.testing.assert_allclose(got, d * (2.0 - 0.5)**2, rtol=1e-12)

  def test_gaussian_statistics_hand_values(self):
    features = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 4.0], [2.0, 4.0]])
    mu, sigma = metrics.gaussian_statistics(features)
    np.testing.assert_allclose(mu, [1.0, 2.0])
    # Unbiased: var_x = 4 * 1 / 3, var_y = 4 * 4 / 3, independent columns -> cov 0.
    np.testing.assert_allclose(sigma, [[4 / 3, 0.0], [0.0, 16 / 3]], atol=1e-12)

  def test_feature_frechet_distance_matches_statistics(self):
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(200, 3)), 2 + rng.normal(size=(300, 3))
    np.testing.assert_allclose(
        metrics.feature_frechet_distance(a, b),
        metrics.frechet_distance(*metrics.gaussian_statistics(a), *metrics.gaussian_statistics(b)))
    # A shift of 2 in each of 3 dims dominates: FD close to 12.
    assert 10 < metrics.feature_frechet_distance(a, b) < 14

  def test_bad_shapes_raise(self):
    with pytest.raises(ValueError, match='shapes do not match'):
      metrics.frechet_distance(np.zeros(2), np.eye(3), np.zeros(2), np.eye(2))
    with pytest.raises(ValueError, match='at least 2'):
      metrics.gaussian_statistics(np.zeros((1, 3)))


class TestInceptionScore:

  def test_uniform_predictions_score_one(self):
    assert metrics.inception_score(np.full((50, 10), 0.1)) == pytest.approx(1.0, abs=1e-9)

  def test_confident_equally_used_classes_score_k(self):
    k = 7
    probs = np.eye(k)[np.arange(70) % k]
    assert metrics.inception_score(probs) == pytest.approx(k, rel=1e-9)

  def test_one_class_only_scores_one(self):
    probs = np.eye(10)[np.zeros(30, int)]
    assert metrics.inception_score(probs) == pytest.approx(1.0, abs=1e-9)

  def test_hand_computed(self):
    # p(y) = (0.75, 0.25); KL1 = ln(4/3), KL2 = 0.5 ln(2/3) + 0.5 ln 2; exp(mean) = 1.2408064788.
    probs = np.array([[1.0, 0.0], [0.5, 0.5]])
    assert metrics.inception_score(probs) == pytest.approx(1.2408064788027995, rel=1e-9)

  def test_splits_average(self):
    # First half one-hot on 2 classes (score 2), second half uniform (score 1): mean 1.5.
    probs = np.concatenate([np.eye(2)[[0, 1, 0, 1]], np.full((4, 2), 0.5)])
    assert metrics.inception_score(probs, num_splits=2) == pytest.approx(1.5, rel=1e-9)
    with pytest.raises(ValueError, match='num_splits'):
      metrics.inception_score(probs, num_splits=0)


def test_label_accuracy():
  logits = np.array([[2.0, 1.0, 0.0], [0.0, 0.0, 5.0], [1.0, 3.0, 2.0], [0.0, 1.0, 0.0]])
  assert metrics.label_accuracy(logits, np.array([0, 2, 0, 1])) == 0.75
  with pytest.raises(ValueError, match='labels of shape'):
    metrics.label_accuracy(logits, np.array([0, 1]))


class TestSlicedWasserstein:

  @pytest.mark.parametrize('p', [1.0, 2.0])
  def test_one_dimensional_shift_is_exact(self, p):
    x = jax.random.normal(jax.random.PRNGKey(0), (500, 1))
    got = metrics.sliced_wasserstein_distance(jax.random.PRNGKey(1), x, x + 0.75, p=p,
                                              num_projections=8)
    # Every direction is +-1: the projected samples differ by exactly 0.75 after sorting.
    np.testing.assert_allclose(got, 0.75, rtol=1e-5)

  def test_zero_for_a_permutation_of_the_same_sample(self):
    x = jax.random.normal(jax.random.PRNGKey(0), (300, 5))
    y = x[jax.random.permutation(jax.random.PRNGKey(1), 300)]
    chex.assert_trees_all_close(
        metrics.sliced_wasserstein_distance(jax.random.PRNGKey(2), x, y), 0.0, atol=1e-6)

  def test_shift_in_d_dimensions(self):
    # y = x + c: every projection shifts by <theta, c>, and E <theta, c>^2 = |c|^2 / d.
    d, c = 4, np.array([2.0, 0.0, 0.0, 0.0])
    x = jax.random.normal(jax.random.PRNGKey(0), (100, d))
    got = metrics.sliced_wasserstein_distance(jax.random.PRNGKey(3), x, x + c,
                                              num_projections=20_000)
    np.testing.assert_allclose(got, 2.0 / math.sqrt(d), rtol=0.03)

  def test_unequal_sizes_raise(self):
    with pytest.raises(ValueError, match='same number'):
      metrics.sliced_wasserstein_distance(jax.random.PRNGKey(0), np.zeros((3, 2)),
                                          np.zeros((4, 2)))


class TestSquaredMMD:

  def test_identical_sets_zero(self):
    x = jax.random.normal(jax.random.PRNGKey(0), (64, 3))
    chex.assert_trees_all_close(metrics.squared_mmd(x, x, bandwidths=(0.5, 2.0)), 0.0,
                                atol=1e-5)

  def test_single_points_closed_form(self):
    # MMD^2 = k(a,a) + k(b,b) - 2 k(a,b) = 2 - 2 exp(-|a-b|^2 / 2) for one unit bandwidth.
    got = metrics.squared_mmd(np.array([[0.0, 0.0]]), np.array([[3.0, 4.0]]))
    np.testing.assert_allclose(got, 2 - 2 * math.exp(-12.5), rtol=1e-6)

  def test_two_points_each_hand_computed(self):
    x, y = np.array([[0.0], [1.0]]), np.array([[0.0], [3.0]])
    # Biased: (2 + 2e^-.5 + 2 + 2e^-4.5 - 2(1 + e^-4.5 + e^-.5 + e^-2)) / 4 = (1 - e^-2) / 2.
    np.testing.assert_allclose(metrics.squared_mmd(x, y), (1 - math.exp(-2)) / 2, rtol=1e-6)
    # Unbiased: e^-.5 + e^-4.5 - (1 + e^-4.5 + e^-.5 + e^-2) / 2.
    e = math.exp
    np.testing.assert_allclose(metrics.squared_mmd(x, y, unbiased=True),
                               (e(-.5) + e(-4.5) - 1 - e(-2)) / 2, rtol=1e-5)

  def test_bad_bandwidth_raises(self):
    with pytest.raises(ValueError, match='bandwidths'):
      metrics.squared_mmd(np.zeros((2, 1)), np.zeros((2, 1)), bandwidths=(0.0,))


class TestBirthday:

  def test_collisions_hand_counted(self):
    samples = np.array([1, 1, 2, 2, 2, 3], np.float64)[:, None]
    # One pair of 1s and three pairs of 2s.
    assert metrics.count_near_duplicates(samples) == 4
    assert metrics.birthday_support_size(samples) == pytest.approx(15 / 4)

  def test_threshold(self):
    samples = np.array([[0.0, 0.0], [0.3, 0.4], [3.0, 0.0]])  # distances 0.5, 3, 2.77
    assert metrics.count_near_duplicates(samples, threshold=0.49) == 0
    assert metrics.count_near_duplicates(samples, threshold=0.51) == 1
    assert metrics.count_near_duplicates(samples, threshold=3.01) == 3

  def test_block_size_does_not_matter(self):
    samples = np.random.default_rng(0).integers(0, 30, size=(200, 1))
    assert (metrics.count_near_duplicates(samples, block_size=7)
            == metrics.count_near_duplicates(samples, block_size=1000))

  def test_uniform_support_recovered(self):
    # Uniform on N = 1000 items, s = 2000 draws: E collisions = C(2000, 2) / 1000 = 1999.5, std
    # about 45, so the estimate is within a few percent of 1000.
    rng = np.random.default_rng(0)
    items = rng.normal(size=(1000, 16))
    samples = items[rng.integers(0, 1000, size=2000)]
    assert metrics.birthday_support_size(samples) == pytest.approx(1000, rel=0.1)

  def test_no_collision_is_infinite(self):
    assert metrics.birthday_support_size(np.arange(10.0)[:, None]) == math.inf
