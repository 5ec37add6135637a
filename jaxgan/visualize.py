"""PNG pictures of samples: image grids, 1-D histograms and 2-D scatter plots (matplotlib)."""

from __future__ import annotations

import math
import os

import matplotlib

matplotlib.use('Agg')  # Files only; works without a display.
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def image_grid(images: np.ndarray, *, columns: int | None = None, pad: int = 1) -> np.ndarray:
  """Tiles ``(N, H, W, C)`` images in [-1, 1] into one ``(H', W', C)`` image in [0, 1]."""
  images = np.asarray(images, np.float32)
  if images.ndim != 4:
    raise ValueError(f'image_grid takes (N, H, W, C) images, got shape {images.shape}')
  n, h, w, c = images.shape
  columns = columns or math.ceil(math.sqrt(n))
  rows = math.ceil(n / columns)
  grid = np.ones((rows * (h + pad) + pad, columns * (w + pad) + pad, c), np.float32)
  for i, image in enumerate(np.clip((images + 1) / 2, 0, 1)):
    r, col = divmod(i, columns)
    grid[pad + r * (h + pad):pad + r * (h + pad) + h,
         pad + col * (w + pad):pad + col * (w + pad) + w] = image
  return grid


def save_image_grid(path: str, images: np.ndarray, *, columns: int | None = None) -> None:
  """Writes :func:`image_grid` of ``images`` as a PNG."""
  grid = image_grid(images, columns=columns)
  os.makedirs(os.path.dirname(path) or '.', exist_ok=True)
  if grid.shape[-1] == 1:
    plt.imsave(path, grid[..., 0], cmap='gray', vmin=0, vmax=1)
  else:
    plt.imsave(path, grid)


def save_samples(path: str, real: np.ndarray, fake: np.ndarray, *, title: str = '') -> None:
  """Real vs generated: overlaid histograms for 1-D data, a scatter plot for 2-D, else a grid."""
  real, fake = np.asarray(real), np.asarray(fake)
  if fake.ndim == 4:
    save_image_grid(path, fake)
    return
  os.makedirs(os.path.dirname(path) or '.', exist_ok=True)
  fig, ax = plt.subplots(figsize=(5, 4))
  if fake.shape[-1] == 1:
    bins = np.linspace(min(real.min(), fake.min()), max(real.max(), fake.max()), 60)
    ax.hist(real[:, 0], bins=bins, alpha=0.5, density=True, label='real')
    ax.hist(fake[:, 0], bins=bins, alpha=0.5, density=True, label='generated')
  elif fake.shape[-1] == 2:
    ax.scatter(real[:, 0], real[:, 1], s=2, alpha=0.3, label='real')
    ax.scatter(fake[:, 0], fake[:, 1], s=2, alpha=0.3, label='generated')
    ax.set_aspect('equal')
  else:
    plt.close(fig)
    raise ValueError(f'save_samples draws 1-D, 2-D or image data, got shape {fake.shape}')
  ax.legend(loc='upper right')
  ax.set_title(title)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def save_strips(path: str, columns: list[np.ndarray]) -> None:
  """One row per example, one column per array: e.g. ``[input, output, truth]``, each
  ``(N, H, W, C)`` in [-1, 1], written as an ``N x len(columns)`` grid (:func:`image_grid`)."""
  shapes = {np.shape(c) for c in columns}
  if len(shapes) != 1:
    raise ValueError(f'save_strips needs columns of one shape, got {sorted(shapes)}')
  stacked = np.stack([np.asarray(c) for c in columns], axis=1)
  save_image_grid(path, stacked.reshape((-1, *stacked.shape[2:])), columns=len(columns))
