"""The shipped classifiers, rescored on real test images that ship with the tests.

``tests/data/<dataset>_test_slice.npz`` holds the first examples of TFDS ``<dataset>``, split
``'test'``, in file order (uint8 pixels and labels): 2,000 of ``'mnist'`` and 500 of
``'fashion_mnist'``, written by ``python tests/data/make_mnist_test_slice.py
--data_dir=../shared/data/tensorflow_datasets [--dataset=fashion_mnist --num=500]``.
Nothing here reads TFDS or downloads anything.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from typing import NamedTuple

import numpy as np
import pytest

from jaxgan.eval import classifier

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'data')


class Slice(NamedTuple):
  """What is known of a shipped slice and of its shipped classifier's scoring of it.

  ``sha256``: printed by make_mnist_test_slice.py, sha256(image bytes + label bytes).
  ``errors``: golden, measured once by this file's scoring (CPU, float32) with the shipped
  weights; a changed weight file, preprocessing or slice changes them.
  ``se``: the standard error of the slice's accuracy (see the accuracy test), by hand.
  """

  num: int
  sha256: str
  label_counts: list
  first_labels: list
  errors: list
  se: float


SLICES = {
    # 16 errors in 2,000 (0.9920), measured 2026-12-02; the same weights make 78 errors on the
    # whole test split through jaxgan.data.image_arrays, the 0.9922 of info.json.
    'mnist': Slice(
        2000, 'fb2bd0db2b1fa9f6f285597c330c226ec386a1683a3749f8884a31c8c4f1c71e',
        [203, 219, 222, 196, 183, 180, 195, 208, 203, 191], [2, 0, 4, 8, 7],
        [33, 98, 392, 501, 510, 533, 588, 659, 850, 871, 941, 1132, 1220, 1599, 1764, 1945],
        0.00176),
    # 46 errors in 500 (0.908), measured 2026-12-03, against info.json's 0.9221 on all 10,000:
    # 1.2 standard errors below it.
    'fashion_mnist': Slice(
        500, '7a7c423dcfff8520bdb94642983e52452b7485034c2e0dd6672bce54c27b0d67',
        [47, 52, 60, 54, 54, 50, 40, 59, 35, 49], [4, 4, 9, 7, 5],
        [24, 65, 67, 68, 71, 76, 77, 79, 103, 104, 111, 112, 115, 131, 146, 147, 156, 174, 182,
         192, 200, 201, 216, 220, 238, 240, 250, 285, 288, 304, 320, 343, 366, 386, 388, 403, 404,
         418, 420, 436, 447, 463, 468, 474, 488, 495],
        0.01168),
}


@pytest.fixture(scope='module', params=sorted(SLICES))
def dataset(request):
  return request.param


@pytest.fixture(scope='module')
def test_slice(dataset):
  with np.load(os.path.join(DATA, f'{dataset}_test_slice.npz')) as f:
    return f['image'], f['label']


@pytest.fixture(scope='module')
def scored(dataset, test_slice):
  """``(predicted classes, labels, info)``: the shipped classifier loaded as the library does."""
  images, labels = test_slice
  model, params, info = classifier.load(classifier.weights_dir(dataset))
  # jaxgan.data.image_arrays feeds the classifier tf.cast(image, float32) / 127.5 - 1 (in [-1, 1]);
  # make_mnist_test_slice.py checked that this is the same array, bit for bit.
  x = images.astype(np.float32) / 127.5 - 1.0
  probs = classifier.extractor(model, params).probs(x)
  return np.argmax(probs, axis=-1), labels.astype(np.int64), info


def test_slice_is_the_shipped_real_data(dataset, test_slice):
  images, labels = test_slice
  known = SLICES[dataset]
  assert images.dtype == np.uint8 and images.shape == (known.num, 28, 28, 1)
  assert labels.dtype == np.uint8 and labels.shape == (known.num,)
  assert hashlib.sha256(images.tobytes() + labels.tobytes()).hexdigest() == known.sha256
  assert np.bincount(labels, minlength=10).tolist() == known.label_counts
  assert images.min() == 0 and images.max() == 255
  # TFDS's file order is not the IDX order (MNIST's test set starts 7, 2, 1, 0, 4 there).
  assert labels[:5].tolist() == known.first_labels


def test_info_json_is_what_load_returns(dataset, scored):
  _, _, info = scored
  with open(os.path.join(classifier.weights_dir(dataset), 'info.json')) as f:
    assert json.load(f) == info
  assert info['dataset'] == dataset and info['num_test_examples'] == 10_000


def test_slice_accuracy_consistent_with_info_json(dataset, scored):
  predicted, labels, info = scored
  n = labels.shape[0]
  accuracy = float(np.mean(predicted == labels))
  p = info['test_accuracy']  # on all N = 10,000 test images
  big_n = info['num_test_examples']
  # The slice is n of those N images, taken in TFDS's shuffled file order: its error count is
  # hypergeometric, with the binomial standard error sqrt(p (1 - p) / n) times the finite
  # population correction sqrt((N - n) / (N - 1)). MNIST, n = 2000, p = 0.9922:
  # sqrt(0.9922 * 0.0078 / 2000) * sqrt(8000 / 9999) = 0.00176, so 4 SE accepts [0.9852, 0.9992]
  # (2 to 29 errors). Fashion-MNIST, n = 500, p = 0.9221: sqrt(0.9221 * 0.0779 / 500) *
  # sqrt(9500 / 9999) = 0.01168, so 4 SE accepts [0.8754, 0.9688] (16 to 62 errors).
  se = math.sqrt(p * (1 - p) / n) * math.sqrt((big_n - n) / (big_n - 1))
  assert se == pytest.approx(SLICES[dataset].se, abs=1e-5)
  assert abs(accuracy - p) <= 4 * se, (accuracy, p, se)


def test_slice_errors_are_golden(dataset, scored):
  predicted, labels, _ = scored
  errors = np.flatnonzero(predicted != labels)
  assert errors.tolist() == SLICES[dataset].errors
