"""Reference features of real data, computed once and cached on disk.

FID, KID and precision/recall compare generated samples with the features of real images. Those
cost an extractor pass over a whole split (minutes to hours for Inception on a CPU), so
:func:`reference_features` computes them once per

    (dataset, split, number of examples, image shape, extractor name, extractor weights digest)

and stores ``features`` (float32), their ``mu`` and ``sigma`` (float64,
:func:`jaxgan.metrics.gaussian_statistics`) and that key in one ``.npz`` under
:func:`cache_root` ``/reference``. The file name carries the first 16 hex digits of the key's
SHA-256 and the file holds the whole key, which is compared on every load: statistics of other
weights, another split or another resolution are never reused silently, they are a miss (and are
computed anew).

The weights digest says which network made the features: :func:`params_digest` hashes a pytree
of arrays (the evaluation classifier's params); for Inception it is the SHA-256 of the ``.pth``
the weights were converted from (:func:`jaxgan.eval.inception.load_variables`).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from typing import NamedTuple

import jax
import numpy as np

from jaxgan import data as data_lib
from jaxgan import metrics
from jaxgan.eval import classifier

CACHE_ENV = 'JAXGAN_CACHE_DIR'
# Bumped when the way features are computed from a split changes (not the weights: those are
# the digest), so that files of the old way miss.
FORMAT_VERSION = 1


def cache_root() -> str:
  """``$JAXGAN_CACHE_DIR``, else ``$XDG_CACHE_HOME/jaxgan``, else ``~/.cache/jaxgan``."""
  if os.environ.get(CACHE_ENV):
    return os.path.expanduser(os.environ[CACHE_ENV])
  base = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
  return os.path.join(base, 'jaxgan')


def params_digest(tree) -> str:
  """SHA-256 of a pytree of arrays: every leaf's path, dtype, shape and bytes, in path order."""
  digest = hashlib.sha256()
  leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
  for path, leaf in sorted(leaves, key=lambda item: jax.tree_util.keystr(item[0])):
    leaf = np.ascontiguousarray(np.asarray(leaf))
    digest.update(f'{jax.tree_util.keystr(path)}|{leaf.dtype.str}|{leaf.shape}|'.encode())
    digest.update(leaf.tobytes())
  return digest.hexdigest()


class Reference(NamedTuple):
  """Real data's features and statistics, and where they came from.

  Attributes:
    features: ``(N, D)`` float32 features.
    mu, sigma: their mean ``(D,)`` and covariance ``(D, D)``, float64.
    key: the cache key (see the module docstring), a dict of JSON values.
    path: the cache file.
    cached: whether they were read from the cache (False: computed by this call).
  """

  features: np.ndarray
  mu: np.ndarray
  sigma: np.ndarray
  key: dict
  path: str
  cached: bool


def reference_key(*, dataset: str, split: str, num_examples: int | None,
                  image_shape: tuple[int, ...], extractor: str, weights_digest: str) -> dict:
  """The dict that identifies a reference set (its SHA-256 names the cache file)."""
  return {'format_version': FORMAT_VERSION, 'dataset': dataset, 'split': split,
          'num_examples': num_examples, 'image_shape': [int(s) for s in image_shape],
          'extractor': extractor, 'weights_digest': weights_digest}


def cache_path(key: dict, cache_dir: str | None = None) -> str:
  """``<cache_dir or cache_root()/reference>/<dataset>-<split>-<extractor>-<digest16>.npz``."""
  text = json.dumps(key, sort_keys=True)
  digest = hashlib.sha256(text.encode()).hexdigest()[:16]
  folder = cache_dir or os.path.join(cache_root(), 'reference')
  return os.path.join(folder, f'{key["dataset"]}-{key["split"]}-{key["extractor"]}-{digest}.npz')


def _read(path: str, key: dict) -> Reference | None:
  if not os.path.isfile(path):
    return None
  with np.load(path, allow_pickle=False) as f:
    if json.loads(str(f['key'])) != key:  # A 64-bit name collision, or a hand-copied file.
      return None
    return Reference(np.asarray(f['features']), np.asarray(f['mu']), np.asarray(f['sigma']),
                     key, path, True)


def reference_features(dataset: str, *, extractor: classifier.FeatureExtractor,
                       extractor_name: str, weights_digest: str, split: str = 'train',
                       num_examples: int | None = None,
                       image_shape: tuple[int, ...] | None = None,
                       load_images: Callable[[], np.ndarray] | None = None,
                       data_dir: str | None = None, download: bool = False,
                       cache_dir: str | None = None) -> Reference:
  """The features of ``dataset``'s ``split`` (its first ``num_examples``), cached.

  On a hit the cached file is returned without loading any images. On a miss the images come
  from ``load_images()`` (default: :func:`jaxgan.data.image_arrays` of ``dataset``, ``split``,
  ``max_examples=num_examples``), must have ``image_shape`` (default: the dataset's) and, when
  ``num_examples`` is given, that many rows; their ``extractor.features`` are computed and
  written (atomically: a temporary file, then a rename).

  Args:
    dataset, split, num_examples, image_shape: what the features are of.
    extractor: computes the features.
    extractor_name, weights_digest: what computes them (e.g. ``'inception'`` and the ``.pth``'s
      SHA-256; ``'classifier'`` and :func:`params_digest` of its params).
    load_images: the real images, ``(N, H, W, C)`` in [-1, 1] (for tests and other sources).
    data_dir, download: for the default TFDS loader.
    cache_dir: the folder of the cache files (default ``cache_root()/reference``).

  Raises:
    ValueError: images of another shape or number than the key says.
  """
  if image_shape is None:
    image_shape = data_lib.data_shape(dataset)
  key = reference_key(dataset=dataset, split=split, num_examples=num_examples,
                      image_shape=tuple(image_shape), extractor=extractor_name,
                      weights_digest=weights_digest)
  path = cache_path(key, cache_dir)
  hit = _read(path, key)
  if hit is not None:
    return hit
  if load_images is None:

    def load_images():
      return data_lib.image_arrays(dataset, split=split, data_dir=data_dir, download=download,
                                   max_examples=num_examples)['x']

  images = np.asarray(load_images())
  if images.shape[1:] != tuple(image_shape):
    raise ValueError(f'reference images of {dataset!r}/{split!r} have shape {images.shape}, '
                     f'expected (N, {", ".join(map(str, image_shape))})')
  if num_examples is not None and images.shape[0] != num_examples:
    raise ValueError(f'asked for {num_examples} reference images of {dataset!r}/{split!r}, got '
                     f'{images.shape[0]}')
  features = np.asarray(extractor.features(images), np.float32)
  mu, sigma = metrics.gaussian_statistics(features)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  fd, tmp = tempfile.mkstemp(suffix='.npz', dir=os.path.dirname(path))
  os.close(fd)
  try:
    np.savez(tmp, features=features, mu=mu, sigma=sigma,
             key=np.array(json.dumps(key, sort_keys=True)))
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)
  return Reference(features, mu, sigma, key, path, False)
