"""Writes ``tests/data/<dataset>_test_slice.npz``, the slices of real test images the tests ship.

    python tests/data/make_mnist_test_slice.py --data_dir=../shared/data/tensorflow_datasets
    python tests/data/make_mnist_test_slice.py --data_dir=../shared/data/tensorflow_datasets \
        --dataset=fashion_mnist --num=500

Reads the first ``--num`` (2000) examples of TFDS ``--dataset`` (``'mnist'``), split ``'test'``,
in file order
(``shuffle_files=False``, no download; TFDS's prepared file, version 3.0.1, holds the test set in
the order TFDS's builder wrote it, which is a fixed pseudo-random permutation of the original IDX
order, not the IDX order itself). Saves them with ``np.savez_compressed`` as

* ``image``: ``(N, 28, 28, 1) uint8``, the raw pixels;
* ``label``: ``(N,) uint8``;

and checks that ``x / 127.5 - 1`` of them equals what :func:`jaxgan.data.image_arrays` feeds the
evaluation classifier for the same examples, so the tests can rebuild that input exactly. Run
once by hand; the tests only read the ``.npz`` (no TFDS, no download, no ``data_dir``).
"""

from __future__ import annotations

import argparse
import hashlib
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DATASETS = ('mnist', 'fashion_mnist')


def read_slice(data_dir: str, num: int, dataset: str = 'mnist') -> tuple[np.ndarray, np.ndarray]:
  """``(images (num, 28, 28, 1) uint8, labels (num,) uint8)``: the first ``num`` test examples."""
  import tensorflow_datasets as tfds
  ds = tfds.load(dataset, split='test', data_dir=data_dir, download=False, shuffle_files=False)
  images, labels = [], []
  for ex in tfds.as_numpy(ds.take(num)):
    images.append(ex['image'])
    labels.append(ex['label'])
  images = np.stack(images).astype(np.uint8)
  labels = np.asarray(labels).astype(np.uint8)
  if images.shape != (num, 28, 28, 1):
    raise ValueError(f'expected {num} images of 28x28x1, got {images.shape}')
  return images, labels


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--data_dir', default='../shared/data/tensorflow_datasets',
                      help='TFDS data_dir holding the prepared dataset.')
  parser.add_argument('--dataset', default='mnist', choices=DATASETS)
  parser.add_argument('--num', type=int, default=2000, help='How many test examples.')
  parser.add_argument('--out', default=None,
                      help='The .npz to write (default tests/data/<dataset>_test_slice.npz).')
  args = parser.parse_args()
  args.out = args.out or os.path.join(HERE, f'{args.dataset}_test_slice.npz')

  images, labels = read_slice(args.data_dir, args.num, args.dataset)

  # The library's own preprocessing of the same examples must be x / 127.5 - 1, bit for bit.
  from jaxgan import data as data_lib
  ref = data_lib.image_arrays(args.dataset, split='test', data_dir=args.data_dir, download=False,
                              max_examples=args.num)
  np.testing.assert_array_equal(images.astype(np.float32) / 127.5 - 1.0, ref['x'])
  np.testing.assert_array_equal(labels.astype(np.int32), ref['label'])

  np.savez_compressed(args.out, image=images, label=labels)
  # The zip's timestamps differ between runs; the arrays do not. Their digest identifies them.
  digest = hashlib.sha256(images.tobytes() + labels.tobytes()).hexdigest()
  print(f'wrote {args.out}: {args.num} examples, {os.path.getsize(args.out)} bytes, '
        f'label counts {np.bincount(labels, minlength=10).tolist()}, '
        f'sha256(image bytes + label bytes) {digest}')


if __name__ == '__main__':
  main()
