"""TFDS images and the driver's image batches under ``tfds.testing.mock_data`` (never the
shared data folder)."""

from __future__ import annotations

import jax
import numpy as np
import pytest
import tensorflow_datasets as tfds

from jaxgan import data, loop


def _take(n, *, seed=0, start_step=0, loader='device'):
  """Batches ``start_step, ...`` of the driver's source for mock MNIST (batch 8)."""
  images = data.load_images('mnist', split='train', data_dir=None, download=False)
  source = loop.image_source(images, jax.random.PRNGKey(seed), 8, loader=loader)
  batch = jax.jit(source.batch)
  xs = source.plan(start_step, n)
  return [jax.device_get(batch(source.data, jax.tree.map(lambda a, i=i: a[i], xs)))
          for i in range(n)]


@pytest.fixture(autouse=True)
def mock():
  with tfds.testing.mock_data(num_examples=40):
    yield


def test_images_scaled_to_minus_one_one_with_labels():
  batch = _take(1)[0]
  assert batch['x'].shape == (8, 28, 28, 1) and batch['x'].dtype == np.float32
  assert batch['label'].shape == (8,) and batch['label'].dtype == np.int32
  assert batch['x'].min() >= -1.0 and batch['x'].max() <= 1.0
  # x = pixel / 127.5 - 1 for integer pixels in [0, 255].
  pixels = (batch['x'] + 1) * 127.5
  np.testing.assert_allclose(pixels, np.round(pixels), atol=1e-3)
  assert set(np.unique(batch['label'])) <= set(range(10))


def test_labels_stay_with_their_images():
  split = data.image_arrays('mnist', split='train', data_dir=None, download=False)
  by_image = {split['x'][i].tobytes(): split['label'][i] for i in range(len(split['x']))}
  for batch in _take(6):  # 48 examples: the 40 of the split and a reshuffled start
    for x, label in zip(batch['x'], batch['label'], strict=True):
      assert by_image[x.tobytes()] == label


def test_deterministic_for_a_seed_and_resumable():
  first, again, other = _take(7), _take(7), _take(7, seed=1)
  for a, b in zip(first, again, strict=True):
    np.testing.assert_array_equal(a['x'], b['x'])
    np.testing.assert_array_equal(a['label'], b['label'])
  assert any(not np.array_equal(a['x'], b['x']) for a, b in zip(first, other, strict=True))
  # Restarting at step 5 sees what an uninterrupted run sees at steps 5 and 6 (second epoch).
  resumed = _take(2, start_step=5)
  np.testing.assert_array_equal(resumed[0]['x'], first[5]['x'])
  np.testing.assert_array_equal(resumed[1]['label'], first[6]['label'])


def test_epochs_are_reshuffled():
  # 40 examples = 5 batches per epoch: the epochs visit the same examples in different orders.
  batches = _take(10)
  epoch1 = np.concatenate([b['x'] for b in batches[:5]])
  epoch2 = np.concatenate([b['x'] for b in batches[5:]])
  assert not np.array_equal(epoch1, epoch2)
  key = lambda xs: sorted(x.tobytes() for x in xs)
  assert key(epoch1) == key(epoch2)


def test_host_loader_gives_the_device_loaders_batches():
  for a, b in zip(_take(7), _take(7, loader='host'), strict=True):
    np.testing.assert_array_equal(a['x'], b['x'])
    np.testing.assert_array_equal(a['label'], b['label'])


def test_load_images_keeps_uint8_pixels_in_file_order():
  images = data.load_images('mnist', split='train', data_dir=None, download=False)
  assert images['image'].dtype == np.uint8 and images['image'].shape == (40, 28, 28, 1)
  split = data.image_arrays('mnist', split='train', data_dir=None, download=False)
  np.testing.assert_array_equal(images['image'] / np.float32(127.5) - np.float32(1), split['x'])
  np.testing.assert_array_equal(images['label'], split['label'])


def test_image_arrays_max_examples_and_shard():
  arrays = data.image_arrays('mnist', split='test', data_dir=None, download=False,
                             max_examples=12)
  assert arrays['x'].shape == (12, 28, 28, 1) and arrays['label'].shape == (12,)
  sharded = data.shard(arrays, 4)
  assert sharded['x'].shape == (4, 3, 28, 28, 1) and sharded['label'].shape == (4, 3)
  np.testing.assert_array_equal(sharded['label'].reshape(-1), arrays['label'])
  with pytest.raises(ValueError, match='max_examples'):
    data.image_arrays('mnist', split='test', data_dir=None, download=False, max_examples=0)
