"""KID and k-NN precision/recall against hand-computed sets and plain-loop reimplementations.

The references here are written independently of :mod:`jaxgan.metrics`: explicit Python loops
over pairs for the unbiased MMD^2, and sorted per-row distance lists for the k-NN radii.
"""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest

from jaxgan import metrics


def _kernel(a, b):
  """k(a, b) = (a^T b / d + 1)^3, one pair at a time."""
  return (sum(ai * bi for ai, bi in zip(a, b, strict=True)) / len(a) + 1)**3


def _loop_mmd2_unbiased(x, y):
  """The unbiased MMD^2 of two equal-sized sets by an explicit double loop over pairs."""
  m = len(x)
  assert len(y) == m
  within_x = sum(_kernel(x[i], x[j]) for i in range(m) for j in range(m) if i != j)
  within_y = sum(_kernel(y[i], y[j]) for i in range(m) for j in range(m) if i != j)
  cross = sum(_kernel(x[i], y[j]) for i in range(m) for j in range(m))
  return within_x / (m * (m - 1)) + within_y / (m * (m - 1)) - 2 * cross / (m * m)


def _brute_force_precision_recall(real, fake, k):
  """Kynkäänniemi et al.'s f(phi, Phi) with per-row sorted distance lists; no vectorization."""
  real, fake = [np.asarray(r, float) for r in real], [np.asarray(f, float) for f in fake]

  def radii(points):  # distance to the k-th nearest *other* point
    return [sorted(math.dist(p, q) for j, q in enumerate(points) if j != i)[k - 1]
            for i, p in enumerate(points)]

  def inside(point, points, point_radii):
    return any(math.dist(point, q) <= r for q, r in zip(points, point_radii, strict=True))

  real_radii, fake_radii = radii(real), radii(fake)
  precision = sum(inside(f, real, real_radii) for f in fake) / len(fake)
  recall = sum(inside(r, fake, fake_radii) for r in real) / len(real)
  return precision, recall


class TestKernelInceptionDistance:

  def test_one_dimensional_hand_value(self):
    # d = 1, k(a, b) = (ab + 1)^3. Real {0, 1, 2}: k(0,1) = k(0,2) = 1, k(1,2) = 27, so the
    # ordered pairs i != j sum to 58 and the within term is 58/6. Fake {-1, 0, 1}: k = 1, 0, 1,
    # sum 4, within 4/6. Cross: x=0 gives 1+1+1, x=1 gives 0+1+8, x=2 gives -1+1+27: 39/9.
    # MMD^2 = 58/6 + 4/6 - 2 * 39/9 = 31/3 - 26/3 = 5/3.
    real, fake = [[0.0], [1.0], [2.0]], [[-1.0], [0.0], [1.0]]
    assert _loop_mmd2_unbiased(real, fake) == pytest.approx(5 / 3, rel=1e-15)
    mean, std = metrics.kernel_inception_distance(real, fake, num_subsets=1)
    assert isinstance(mean, float) and isinstance(std, float)
    np.testing.assert_allclose(mean, 5 / 3, rtol=1e-14)
    assert std == 0.0

  def test_two_dimensional_hand_sets_against_loops(self):
    # d = 2, k(a, b) = (a^T b / 2 + 1)^3; 3 rows each.
    real = [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]
    fake = [[0.0, 0.0], [2.0, 0.0], [0.0, -2.0]]
    expected = _loop_mmd2_unbiased(real, fake)
    # By hand: within real k = 1, 1.5^3, 1.5^3 -> 2 (1 + 6.75) / 6 = 31/12; within fake
    # k = 1, 1, 1 -> 1; cross sum = 1 + 8 + 1 + 1 + 1 + 0 + 1 + 8 + 0 = 21 -> 21/9.
    assert expected == pytest.approx(31 / 12 + 1 - 2 * 21 / 9, rel=1e-14)
    mean, std = metrics.kernel_inception_distance(real, fake, num_subsets=1)
    np.testing.assert_allclose(mean, expected, rtol=1e-14)
    # Full-sized subsets are permutations of both sets: every subset gives the same MMD^2.
    mean, std = metrics.kernel_inception_distance(real, fake, num_subsets=20, seed=3)
    np.testing.assert_allclose(mean, expected, rtol=1e-14)
    assert std < 1e-14

  def test_full_sets_equal_the_double_loop(self):
    rng = np.random.default_rng(0)
    real = rng.normal(size=(30, 5))
    fake = rng.normal(size=(30, 5)) * 1.3 + 0.2
    mean, std = metrics.kernel_inception_distance(real, fake, num_subsets=1, subset_size=30)
    np.testing.assert_allclose(mean, _loop_mmd2_unbiased(real.tolist(), fake.tolist()),
                               rtol=1e-12)
    assert std == 0.0
    # subset_size above both sets' sizes is capped at 30: the same number.
    assert metrics.kernel_inception_distance(real, fake, num_subsets=1)[0] == mean

  def test_subsets_follow_the_documented_draws(self):
    # rng = default_rng(seed); per subset: choice(N_real, m, replace=False), then choice(N_fake,
    # m, replace=False). Different sizes, m = 12 < both.
    rng = np.random.default_rng(1)
    real, fake = rng.normal(size=(40, 3)), rng.normal(size=(25, 3)) + 0.5
    draws = np.random.default_rng(7)
    values = []
    for _ in range(4):
      real_rows = draws.choice(40, 12, replace=False)
      fake_rows = draws.choice(25, 12, replace=False)
      values.append(_loop_mmd2_unbiased(real[real_rows].tolist(), fake[fake_rows].tolist()))
    mean, std = metrics.kernel_inception_distance(real, fake, num_subsets=4, subset_size=12,
                                                  seed=7)
    np.testing.assert_allclose(mean, np.mean(values), rtol=1e-12)
    np.testing.assert_allclose(std, np.std(values), rtol=1e-10)
    assert std > 0
    # Deterministic in the seed; another seed draws other subsets.
    again = metrics.kernel_inception_distance(real, fake, num_subsets=4, subset_size=12, seed=7)
    assert again == (mean, std)
    assert metrics.kernel_inception_distance(real, fake, num_subsets=4, subset_size=12,
                                             seed=8)[0] != mean

  def test_same_distribution_is_about_zero_and_a_shift_is_positive(self):
    rng = np.random.default_rng(0)
    real, same = rng.normal(size=(500, 16)), rng.normal(size=(500, 16))
    shifted = rng.normal(size=(500, 16)) + 0.3
    mean, std = metrics.kernel_inception_distance(real, same, num_subsets=50, subset_size=100)
    # Measured: mean 0.0088, std 0.021. A biased (diagonal-including) estimate would be about
    # 2 (E k(x, x) - E k(x, x')) / m = 2 (8 - 1) / 100 = 0.14 here, far outside this bound.
    assert abs(mean) < std
    assert abs(mean) < 0.03
    assert 0.005 < std < 0.05
    shifted_mean, shifted_std = metrics.kernel_inception_distance(real, shifted, num_subsets=50,
                                                                  subset_size=100)
    # Measured: 0.314 +- 0.056.
    assert shifted_mean > 0.2
    assert shifted_mean > 4 * shifted_std

  def test_chunked_equals_unchunked(self, monkeypatch):
    rng = np.random.default_rng(2)
    real, fake = rng.normal(size=(45, 6)), rng.normal(size=(50, 6)) + 0.1
    whole = metrics.kernel_inception_distance(real, fake, num_subsets=3, subset_size=37)
    for block_elements in (1, 7 * 37, 36 * 37):  # 1, 7 and 36 rows per block (37 = 36 + 1)
      monkeypatch.setattr(metrics, '_BLOCK_ELEMENTS', block_elements)
      chunked = metrics.kernel_inception_distance(real, fake, num_subsets=3, subset_size=37)
      np.testing.assert_allclose(chunked, whole, rtol=1e-12)

  def test_chunks_split_the_rows(self, monkeypatch):
    monkeypatch.setattr(metrics, '_BLOCK_ELEMENTS', 7 * 37)
    blocks = list(metrics._row_blocks(37, 37))
    assert [(b.start, b.stop) for b in blocks] == [(0, 7), (7, 14), (14, 21), (21, 28),
                                                    (28, 35), (35, 37)]


class TestPrecisionRecall:

  # Real rows on the 3x3 grid {0, 1, 2}^2 with spacing 1. k = 1: every radius is 1. k = 3: the
  # corners' radius is sqrt(2) (third neighbour on the diagonal), edges' and centre's 1.
  GRID = [[float(i), float(j)] for i in range(3) for j in range(3)]

  def test_grid_precision_exact_fractions(self):
    # (0.5, 0.5): 0.71 from (0, 0), inside. (1, 3): exactly 1 from (1, 2), a tie: inside.
    # (-1, -1): sqrt(2) from the corner (0, 0): outside at k = 1, a tie (inside) at k = 3.
    # (5, 5): outside for both. (k = 3 needs at least 4 rows in each set.)
    fake = [[0.5, 0.5], [1.0, 3.0], [-1.0, -1.0], [5.0, 5.0]]
    assert metrics.precision_recall(self.GRID, fake, k=1)[0] == 2 / 4
    assert metrics.precision_recall(self.GRID, fake, k=3)[0] == 3 / 4
    assert metrics.precision_recall(self.GRID, fake[:3], k=1)[0] == 2 / 3
    # Moving the tie point out by 0.01 drops it: the tie, not slack, made it count.
    assert metrics.precision_recall(self.GRID, [[0.5, 0.5], [1.0, 3.01], [-1.0, -1.0]],
                                    k=1)[0] == 1 / 3

  def test_one_dimensional_precision_and_recall(self):
    # Real 0..4: radii 1 (k = 1), manifold [-1, 5]: fakes 0 and 0.5 inside, 10 and 10.5 not: 1/2.
    # Fake radii (k = 1): 0.5 each, balls [-0.5, 0.5], [0, 1], [9.5, 10.5], [10, 11]: real 0
    # inside, real 1 exactly on the edge of [0, 1] (a tie: inside), 2, 3, 4 outside: 2/5.
    real = [[0.0], [1.0], [2.0], [3.0], [4.0]]
    fake = [[0.0], [0.5], [10.0], [10.5]]
    assert metrics.precision_recall(real, fake, k=1) == (0.5, 0.4)
    nudged = [[0.0], [1.001], [2.0], [3.0], [4.0]]  # the tie point moved out by 0.001
    assert metrics.precision_recall(nudged, fake, k=1) == (0.5, 0.2)

  def test_duplicate_rows_count_as_other_rows(self):
    # Real {0, 0, 5}: the two zeros are each other's nearest other row (radius 0), 5's is 5. At
    # k = 1, fake 0 is inside (tie at radius 0) and fake 1 is inside 5's ball [0, 10]; fake 11
    # is outside: 2/3. At k = 2 the zeros' radius is 5: still 2/3.
    real, fake = [[0.0], [0.0], [5.0]], [[0.0], [1.0], [11.0]]
    assert metrics.precision_recall(real, fake, k=1)[0] == 2 / 3
    assert metrics.precision_recall(real, fake, k=2)[0] == 2 / 3
    assert metrics.precision_recall([[0.0], [0.0], [5.0]], [[0.0], [1.0], [4.0]], k=1) == (
        1.0, 1.0)

  def test_identical_sets_are_perfect(self):
    x = np.random.default_rng(0).normal(size=(50, 4))
    assert metrics.precision_recall(x, x) == (1.0, 1.0)

  @pytest.mark.parametrize('k', [1, 3, 5])
  def test_random_data_equals_brute_force(self, k):
    rng = np.random.default_rng(k)
    real = rng.normal(size=(60, 8))
    fake = rng.normal(size=(45, 8)) * 0.8 + 0.6
    got = metrics.precision_recall(real, fake, k=k)
    expected = _brute_force_precision_recall(real, fake, k)
    assert got == expected
    assert all(0 < v < 1 for v in got), got  # the shift leaves both numbers strictly inside

  def test_invariant_to_row_order_and_swapping_sets_swaps_the_numbers(self):
    rng = np.random.default_rng(4)
    real = rng.normal(size=(70, 5))
    fake = rng.normal(size=(55, 5)) * 1.5
    precision, recall = metrics.precision_recall(real, fake)
    assert precision != recall
    assert metrics.precision_recall(real[rng.permutation(70)], fake[rng.permutation(55)]) == (
        precision, recall)
    assert metrics.precision_recall(fake, real) == (recall, precision)

  def test_chunked_equals_unchunked(self, monkeypatch):
    rng = np.random.default_rng(5)
    real, fake = rng.normal(size=(41, 6)), rng.normal(size=(37, 6)) + 0.4
    whole = metrics.precision_recall(real, fake, k=2)
    assert 0 < whole[0] < 1 and 0 < whole[1] < 1
    for block_elements in (1, 5 * 41, 40 * 41):  # blocks of 1, 5 and 40 to 44 rows
      monkeypatch.setattr(metrics, '_BLOCK_ELEMENTS', block_elements)
      assert metrics.precision_recall(real, fake, k=2) == whole


@pytest.mark.parametrize('call, message', [
    (lambda: metrics.kernel_inception_distance(np.zeros(5), np.zeros((5, 2))),
     r'real_features must have shape \(N, D\), got shape \(5,\)'),
    (lambda: metrics.kernel_inception_distance(np.zeros((5, 2)), np.zeros((5, 2, 1))),
     r'fake_features must have shape \(N, D\), got shape \(5, 2, 1\)'),
    (lambda: metrics.kernel_inception_distance(np.zeros((5, 2)), np.zeros((5, 3))),
     r'same feature dimension D, got shapes \(5, 2\) and \(5, 3\)'),
    (lambda: metrics.kernel_inception_distance(np.zeros((5, 2)), np.zeros((5, 2)),
                                               subset_size=1), 'subset_size=1'),
    (lambda: metrics.kernel_inception_distance(np.zeros((5, 2)), np.zeros((5, 2)),
                                               num_subsets=0), 'num_subsets=0'),
    (lambda: metrics.kernel_inception_distance(np.zeros((1, 2)), np.zeros((5, 2))),
     'at least 2 rows per set, got 1 real and 5 fake'),
    (lambda: metrics.kernel_inception_distance(np.full((3, 2), np.nan), np.zeros((3, 2))),
     'real_features has non-finite'),
    (lambda: metrics.precision_recall(np.zeros((5, 2, 2)), np.zeros((5, 2))),
     r'real_features must have shape \(N, D\)'),
    (lambda: metrics.precision_recall(np.zeros((5, 4)), np.zeros((5, 2))),
     r'got shapes \(5, 4\) and \(5, 2\)'),
    (lambda: metrics.precision_recall(np.zeros((5, 2)), np.zeros((5, 2)), k=0),
     'k=0 with 5 real and 5 fake rows'),
    (lambda: metrics.precision_recall(np.zeros((5, 2)), np.zeros((9, 2)), k=5),
     'k=5 with 5 real and 9 fake rows'),
    (lambda: metrics.precision_recall(np.zeros((9, 2)), np.zeros((3, 2)), k=3),
     'k=3 with 9 real and 3 fake rows'),
    (lambda: metrics.precision_recall(np.zeros((9, 2)), np.zeros((9, 2)), k=2.5), 'k=2.5'),
])
def test_bad_input_raises_one_line_value_error(call, message):
  with pytest.raises(ValueError, match=message) as info:
    call()
  assert '\n' not in str(info.value)


@pytest.mark.parametrize('fn', [metrics.kernel_inception_distance, metrics.precision_recall])
def test_docstring_example(fn):
  runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
  for test in doctest.DocTestFinder().find(fn, globs=vars(metrics).copy()):
    runner.run(test)
  assert runner.summarize(verbose=False).failed == 0
  assert runner.summarize(verbose=False).attempted > 0
