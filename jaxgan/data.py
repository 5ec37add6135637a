"""Data: toy distributions sampled from a key, and TFDS image datasets.

Toy samplers are pure functions ``sample(key, n) -> (n, dim)`` arrays; the trainer draws batch
``t`` from ``fold_in(data_key, t)``, so the data stream needs no state and resumes exactly.

Image datasets come from ``tensorflow_datasets``, whole: :func:`load_images` keeps the uint8
pixels (the driver keeps them on the device, :mod:`jaxgan.loop`), :func:`batch_indices` makes
batch ``t`` a function of ``(key, t)``, and :func:`image_arrays` gives a split in [-1, 1] for
evaluation. TensorFlow is imported lazily (only image runs pay for it) and never sees a GPU.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax


def gaussian_1d(key: jax.Array, n: int, *, mean: float = 1.0, std: float = 1.0) -> jax.Array:
  """The seed's Example 1 data (lecture 004): N(mean, std^2), shape ``(n, 1)``."""
  return mean + std * jax.random.normal(key, (n, 1))


def sine(key: jax.Array, n: int, *, x_range: float = math.pi) -> jax.Array:
  """Points on the curve y = sin(x), x ~ U[-x_range, x_range] (lecture 002); shape ``(n, 2)``."""
  x = jax.random.uniform(key, (n,), minval=-x_range, maxval=x_range)
  return jnp.stack([x, jnp.sin(x)], axis=-1)


def ring_centers(num_modes: int = 8, radius: float = 1.0) -> jax.Array:
  """Ring centers: angles 2*pi*k/num_modes on a circle of ``radius``, shape ``(num_modes, 2)``."""
  angles = 2 * jnp.pi * jnp.arange(num_modes) / num_modes
  return radius * jnp.stack([jnp.cos(angles), jnp.sin(angles)], axis=-1)


def grid_centers(side: int = 5, spacing: float = 2.0) -> jax.Array:
  """Grid centers: ``{-4, -2, 0, 2, 4}^2`` for the defaults, shape ``(side^2, 2)``."""
  coords = spacing * (jnp.arange(side) - (side - 1) / 2)
  xx, yy = jnp.meshgrid(coords, coords, indexing='ij')
  return jnp.stack([xx.ravel(), yy.ravel()], axis=-1)


def mixture(key: jax.Array, n: int, centers: jax.Array, std: float) -> jax.Array:
  """Equal-weight isotropic Gaussian mixture: ``centers[k] + std * N(0, I)``, shape ``(n, dim)``."""
  k_mode, k_noise = jax.random.split(key)
  modes = jax.random.randint(k_mode, (n,), 0, centers.shape[0])
  return centers[modes] + std * jax.random.normal(k_noise, (n, centers.shape[1]))


def ring(key: jax.Array, n: int, *, std: float = 0.01) -> jax.Array:
  """8 Gaussians on the unit circle, std 0.01 (the PacGAN/VEEGAN ring, arXiv:1712.04086)."""
  return mixture(key, n, ring_centers(), std)


def grid(key: jax.Array, n: int, *, std: float = 0.05) -> jax.Array:
  """25 Gaussians at ``{-4, -2, 0, 2, 4}^2``, std 0.05 (the PacGAN/VEEGAN grid)."""
  return mixture(key, n, grid_centers(), std)


TOY_DATASETS: dict[str, Callable[[jax.Array, int], jax.Array]] = {
    'gaussian_1d': gaussian_1d,
    'sine': sine,
    'ring': ring,
    'grid': grid,
}
# Per-coordinate standard deviation of each toy mixture, what config.data.standardize divides
# by: ring coordinates cos(2 pi k / 8) have variance 1/2, grid coordinates in {-4, ..., 4}
# variance 8 (the components' own std adds under 0.3 %: the benchmark's convention).
TOY_SCALES = {'ring': math.sqrt(0.5), 'grid': math.sqrt(8.0)}
TOY_SHAPES = {'gaussian_1d': (1,), 'sine': (2,), 'ring': (2,), 'grid': (2,)}
IMAGE_SHAPES = {'mnist': (28, 28, 1), 'fashion_mnist': (28, 28, 1), 'cifar10': (32, 32, 3)}
NUM_CLASSES = {'mnist': 10, 'fashion_mnist': 10, 'cifar10': 10}
DATASETS = sorted([*TOY_DATASETS, *IMAGE_SHAPES])


def data_shape(name: str) -> tuple[int, ...]:
  """Shape of one example of dataset ``name``."""
  if name in TOY_SHAPES:
    return TOY_SHAPES[name]
  if name in IMAGE_SHAPES:
    return IMAGE_SHAPES[name]
  raise ValueError(f'unknown dataset {name!r}; expected one of {DATASETS}')


def toy_batch(name: str, key: jax.Array, step, batch_size: int, *, scale: float = 1.0
              ) -> jax.Array:
  """Batch ``step`` (0-based) of toy dataset ``name``: ``sample(fold_in(key, step), batch_size)``.

  A pure, jittable function of ``(key, step)``; divided by ``scale`` unless it is 1. The driver
  (:mod:`jaxgan.loop`) draws it on the device inside its scanned chunks.
  """
  x = TOY_DATASETS[name](jax.random.fold_in(key, step), batch_size)
  return x if scale == 1.0 else x / scale


def toy_batches(name: str, key: jax.Array, batch_size: int, *, start_step: int = 0,
                scale: float = 1.0) -> Iterator[dict[str, np.ndarray]]:
  """Infinite stream of ``{'x': (batch_size, dim)}`` host batches of :func:`toy_batch`."""
  sample = jax.jit(lambda k, t: toy_batch(name, k, t, batch_size, scale=scale))
  step = start_step
  while True:
    yield {'x': np.asarray(sample(key, step))}
    step += 1


def _hide_gpus_from_tensorflow():
  import tensorflow as tf
  tf.config.set_visible_devices([], 'GPU')  # JAX owns the accelerators.


def image_arrays(name: str, *, split: str, data_dir: str | None, download: bool,
                 max_examples: int | None = None) -> dict[str, np.ndarray]:
  """A whole split (or its first ``max_examples``) in file order, for evaluation.

  Returns:
    ``{'x': (N, H, W, C) float32 in [-1, 1], 'label': (N,) int32}``.
  """
  import tensorflow as tf
  import tensorflow_datasets as tfds
  _hide_gpus_from_tensorflow()
  if max_examples is not None and max_examples < 1:
    raise ValueError(f'max_examples must be >= 1, got {max_examples}')
  ds = tfds.load(name, split=split, data_dir=data_dir, download=download, shuffle_files=False)
  if max_examples is not None:
    ds = ds.take(max_examples)
  ds = ds.map(lambda ex: {'x': tf.cast(ex['image'], tf.float32) / 127.5 - 1.0,
                          'label': tf.cast(ex['label'], tf.int32)}).batch(4096)
  parts = list(tfds.as_numpy(ds))
  return {key: np.concatenate([p[key] for p in parts]) for key in ('x', 'label')}


def load_images(name: str, *, split: str, data_dir: str | None, download: bool
                ) -> dict[str, np.ndarray]:
  """A whole split as stored: ``{'image': (N, H, W, C) uint8, 'label': (N,) int32}``.

  Kept as uint8 (a quarter of float32: MNIST is 47 MB), so that it fits on the device; the
  driver scales each batch with :func:`to_unit_range`.
  """
  import tensorflow_datasets as tfds
  _hide_gpus_from_tensorflow()
  ds = tfds.load(name, split=split, data_dir=data_dir, download=download, shuffle_files=False)
  parts = list(tfds.as_numpy(ds.batch(10_000)))  # (batch_size=-1 aborts under mock_data.)
  return {'image': np.concatenate([p['image'] for p in parts]).astype(np.uint8),
          'label': np.concatenate([p['label'] for p in parts]).astype(np.int32)}


# x / 127.5 - 1 for every uint8 value, rounded once as numpy and tf.data round it. (Computed
# by XLA, the division by a constant becomes a multiplication and can differ in the last bit.)
_UNIT_RANGE = (np.arange(256, dtype=np.float32) / np.float32(127.5) - np.float32(1.0))


def to_unit_range(image: jax.Array) -> jax.Array:
  """uint8 pixels -> float32 in [-1, 1]: ``x / 127.5 - 1`` (the TFDS pipelines' scaling), bit
  for bit, by table lookup."""
  return jnp.asarray(_UNIT_RANGE)[image]


def steps_per_epoch(num_examples: int, batch_size: int) -> int:
  """Whole batches per epoch; the last ``num_examples % batch_size`` examples of each shuffle
  sit the epoch out."""
  if num_examples < batch_size:
    raise ValueError(f'the dataset has {num_examples} examples, fewer than one batch of '
                     f'{batch_size}')
  return num_examples // batch_size


def batch_indices(key: jax.Array, start, length: int, *, num_examples: int,
                  batch_size: int) -> jax.Array:
  """Example indices of batches ``start, ..., start + length - 1``: ``(length, batch_size)`` int32.

  Epoch ``e`` is the permutation ``jax.random.permutation(fold_in(key, e), num_examples)``, cut
  into ``steps_per_epoch`` batches; batch ``t`` is batch ``t % steps_per_epoch`` of epoch
  ``t // steps_per_epoch``. Every batch is a pure function of ``(key, t)``, so a run resumed at
  any step finds its batches in O(1), and an epoch holds each example at most once. ``start``
  may be traced; ``length`` is static (it bounds how many epochs a call can touch).
  """
  per_epoch = steps_per_epoch(num_examples, batch_size)
  first = start // per_epoch
  num_epochs = length // per_epoch + 2  # Enough for any start: the rows below stay in range.
  perms = jax.vmap(lambda e: jax.random.permutation(jax.random.fold_in(key, e), num_examples))(
      first + jnp.arange(num_epochs))
  rows = perms[:, :per_epoch * batch_size].reshape(num_epochs * per_epoch, batch_size)
  return lax.dynamic_slice_in_dim(rows, start - first * per_epoch, length).astype(jnp.int32)


def shard(batch: dict[str, np.ndarray], num_devices: int) -> dict[str, np.ndarray]:
  """Reshape a global batch ``(B, ...)`` to ``(num_devices, B // num_devices, ...)`` for pmap."""
  def split(x):
    if x.shape[0] % num_devices:
      raise ValueError(f'global batch of {x.shape[0]} examples is not divisible by the '
                       f'{num_devices} devices')
    return x.reshape((num_devices, x.shape[0] // num_devices, *x.shape[1:]))
  return jax.tree.map(split, batch)
