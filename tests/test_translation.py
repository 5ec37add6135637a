"""Translation tasks: each transform on hand-computed arrays, involutions, pairs and domains."""

import numpy as np
import pytest

from jaxgan import translation


def _image(rows) -> np.ndarray:
  """One (1, H, W, 1) uint8 image from a nested list of pixel values."""
  return np.asarray(rows, np.uint8)[None, :, :, None]


def _random_images(seed, shape=(4, 28, 28, 1)) -> np.ndarray:
  return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def test_dilate_single_pixel_becomes_3x3_block():
  x = np.zeros((1, 6, 6, 1), np.uint8)
  x[0, 2, 3, 0] = 200
  expected = np.zeros_like(x)
  expected[0, 1:4, 2:5, 0] = 200
  np.testing.assert_array_equal(translation.dilate(x), expected)


def test_dilate_borders_repeat_the_edge():
  # A lit corner pixel: 'reflect' (symmetric) padding repeats it, so the block is cut at 2x2.
  x = np.zeros((1, 4, 4, 1), np.uint8)
  x[0, 0, 0, 0] = 7
  expected = np.zeros_like(x)
  expected[0, :2, :2, 0] = 7
  np.testing.assert_array_equal(translation.dilate(x), expected)


def test_dilate_grey_values_take_the_neighbourhood_max():
  x = _image([[1, 2, 3],
              [4, 5, 6],
              [7, 8, 9]])
  np.testing.assert_array_equal(translation.dilate(x), _image([[5, 6, 6],
                                                               [8, 9, 9],
                                                               [8, 9, 9]]))


def test_dilate_equals_scipy_grey_dilation():
  ndimage = pytest.importorskip('scipy.ndimage')
  x = _random_images(0, (3, 28, 28, 2))
  np.testing.assert_array_equal(translation.dilate(x),
                                ndimage.grey_dilation(x, size=(1, 3, 3, 1)))
  np.testing.assert_array_equal(translation.erode(x), ndimage.grey_erosion(x, size=(1, 3, 3, 1)))


def test_invert():
  x = _image([[0, 1], [128, 255]])
  np.testing.assert_array_equal(translation.invert(x), _image([[255, 254], [127, 0]]))
  y = _random_images(1)
  np.testing.assert_array_equal(translation.invert(translation.invert(y)), y)


def test_rotate90_is_counter_clockwise():
  x = _image([[1, 2],
              [3, 4]])
  # The top-right pixel (2) moves to the top-left.
  np.testing.assert_array_equal(translation.rotate90(x), _image([[2, 4],
                                                                 [1, 3]]))


def test_rotate90_four_times_is_the_identity():
  x = _random_images(2)
  y = x
  for _ in range(4):
    y = translation.rotate90(y)
    assert y.shape == x.shape
  np.testing.assert_array_equal(y, x)
  assert not np.array_equal(translation.rotate90(x), x)


def test_edges_of_a_filled_square_is_a_ring_two_pixels_wide():
  x = np.zeros((1, 12, 12, 1), np.uint8)
  x[0, 3:9, 3:9, 0] = 255  # A 6x6 square.
  expected = np.zeros_like(x)
  expected[0, 2:10, 2:10, 0] = 255  # Out to the ring just outside the square ...
  expected[0, 4:8, 4:8, 0] = 0  # ... in to the square's own outermost ring.
  np.testing.assert_array_equal(translation.edges(x), expected)


def test_edges_threshold():
  # Gradient 64 is not an edge, 65 is (T = 255 where dilate - erode > 64).
  for value, edge in ((64, 0), (65, 255)):
    x = np.zeros((1, 5, 5, 1), np.uint8)
    x[0, 2, 2, 0] = value
    out = translation.edges(x)
    assert set(np.unique(out)) <= {0, 255}
    np.testing.assert_array_equal(out[0, 1:4, 1:4, 0], np.full((3, 3), edge))
    assert out.sum() == 9 * edge


def test_top_half_blacks_out_rows_14_to_27():
  x = _random_images(3)
  out = translation.top_half(x)
  np.testing.assert_array_equal(out[:, :14], x[:, :14])
  assert not out[:, 14:].any()
  assert x[:, 14:].any()  # The input was not modified in place.


@pytest.mark.parametrize('name', sorted(translation.TRANSFORMS))
def test_transforms_keep_shape_and_dtype(name):
  x = _random_images(4)
  out = translation.get_transform(name)(x)
  assert out.shape == x.shape and out.dtype == np.uint8
  np.testing.assert_array_equal(out, translation.TRANSFORMS[name](x))  # Deterministic.


def test_errors():
  with pytest.raises(ValueError, match="unknown transform 'blur'.*'dilate'"):
    translation.get_transform('blur')
  with pytest.raises(ValueError, match='uint8'):
    translation.invert(np.zeros((1, 28, 28, 1), np.float32))
  with pytest.raises(ValueError, match=r'shape \(N, H, W, C\)'):
    translation.invert(np.zeros((28, 28, 1), np.uint8))
  with pytest.raises(ValueError, match='square'):
    translation.rotate90(np.zeros((1, 28, 20, 1), np.uint8))
  with pytest.raises(ValueError, match='unknown direction'):
    translation.pairs(_random_images(0), 'invert', direction='forward')


def test_pairs_directions():
  x = _random_images(5)
  forward = translation.pairs(x, 'invert', direction='to_transformed')
  np.testing.assert_array_equal(forward['x'], x)
  np.testing.assert_array_equal(forward['y'], 255 - x)
  backward = translation.pairs(x, translation.top_half, direction='from_transformed')
  np.testing.assert_array_equal(backward['x'], translation.top_half(x))
  np.testing.assert_array_equal(backward['y'], x)


def test_unpaired_domains_come_from_disjoint_rows():
  x = _random_images(6, (10, 28, 28, 1))
  domains = translation.unpaired(x, 'rotate90', split=4)
  np.testing.assert_array_equal(domains['a'], x[:4])
  np.testing.assert_array_equal(domains['b'], translation.rotate90(x[4:]))
  assert domains['a'].shape[0] + domains['b'].shape[0] == 10


@pytest.mark.parametrize('split', [0, 10, -1, 11])
def test_unpaired_split_out_of_range(split):
  with pytest.raises(ValueError, match=rf'split must be in \[1, 9\] for 10 images, got {split}'):
    translation.unpaired(_random_images(7, (10, 28, 28, 1)), 'invert', split=split)
