"""The shipped MNIST classifier, rescored on real MNIST test images that ship with the tests.

``tests/data/mnist_test_slice.npz`` holds the first 2,000 examples of TFDS ``'mnist'``, split
``'test'``, in file order (uint8 pixels and labels), written by
``python tests/data/make_mnist_test_slice.py --data_dir=../shared/data/tensorflow_datasets``.
Nothing here reads TFDS or downloads anything.
"""

from __future__ import annotations

import hashlib
import json
import math
import os

import numpy as np
import pytest

from jaxgan.eval import classifier

SLICE = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'data', 'mnist_test_slice.npz')
# Printed by make_mnist_test_slice.py: sha256(image bytes + label bytes) of the shipped slice.
SLICE_SHA256 = 'fb2bd0db2b1fa9f6f285597c330c226ec386a1683a3749f8884a31c8c4f1c71e'
SLICE_LABEL_COUNTS = [203, 219, 222, 196, 183, 180, 195, 208, 203, 191]
# Golden value, measured once (2026-12-02, CPU, float32) by this file's scoring of the slice with
# the shipped jaxgan/eval/weights/mnist: 16 errors in 2,000 (accuracy 0.9920), at indices 33, 98,
# 392, 501, 510, 533, 588, 659, 850, 871, 941, 1132, 1220, 1599, 1764, 1945. The same weights make
# 78 errors on the whole test split through jaxgan.data.image_arrays, the 0.9922 of info.json.
# A changed weight file, preprocessing or slice changes it.
GOLDEN_ERRORS = 16
GOLDEN_ERROR_INDICES = [33, 98, 392, 501, 510, 533, 588, 659, 850, 871, 941, 1132, 1220, 1599,
                        1764, 1945]


@pytest.fixture(scope='module')
def mnist_slice():
  with np.load(SLICE) as f:
    return f['image'], f['label']


@pytest.fixture(scope='module')
def scored(mnist_slice):
  """``(predicted classes, labels, info)``: the shipped classifier loaded as the library does."""
  images, labels = mnist_slice
  model, params, info = classifier.load(classifier.weights_dir('mnist'))
  # jaxgan.data.image_arrays feeds the classifier tf.cast(image, float32) / 127.5 - 1 (in [-1, 1]);
  # make_mnist_test_slice.py checked that this is the same array, bit for bit.
  x = images.astype(np.float32) / 127.5 - 1.0
  probs = classifier.extractor(model, params).probs(x)
  return np.argmax(probs, axis=-1), labels.astype(np.int64), info


def test_slice_is_the_shipped_real_mnist(mnist_slice):
  images, labels = mnist_slice
  assert images.dtype == np.uint8 and images.shape == (2000, 28, 28, 1)
  assert labels.dtype == np.uint8 and labels.shape == (2000,)
  assert hashlib.sha256(images.tobytes() + labels.tobytes()).hexdigest() == SLICE_SHA256
  assert np.bincount(labels, minlength=10).tolist() == SLICE_LABEL_COUNTS
  assert images.min() == 0 and images.max() == 255
  # TFDS's file order is not the IDX order (whose test set starts 7, 2, 1, 0, 4).
  assert labels[:5].tolist() == [2, 0, 4, 8, 7]


def test_info_json_is_what_load_returns(scored):
  _, _, info = scored
  with open(os.path.join(classifier.weights_dir('mnist'), 'info.json')) as f:
    assert json.load(f) == info
  assert info['dataset'] == 'mnist' and info['num_test_examples'] == 10_000


def test_slice_accuracy_consistent_with_info_json(scored):
  predicted, labels, info = scored
  n = labels.shape[0]
  accuracy = float(np.mean(predicted == labels))
  p = info['test_accuracy']  # 0.9922 on all N = 10,000 test images
  big_n = info['num_test_examples']
  # The slice is n of those N images, taken in TFDS's shuffled file order: its error count is
  # hypergeometric, with the binomial standard error sqrt(p (1 - p) / n) times the finite
  # population correction sqrt((N - n) / (N - 1)). For n = 2000, p = 0.9922, N = 10000:
  # sqrt(0.9922 * 0.0078 / 2000) * sqrt(8000 / 9999) = 0.00176, so 4 SE = 0.0070, and the
  # accepted accuracies [0.9852, 0.9992] are 2 to 29 errors (0 or 1 errors fail as well as 30+).
  se = math.sqrt(p * (1 - p) / n) * math.sqrt((big_n - n) / (big_n - 1))
  assert se == pytest.approx(0.00176, abs=1e-5)
  assert abs(accuracy - p) <= 4 * se, (accuracy, p, se)


def test_slice_error_count_is_golden(scored):
  predicted, labels, _ = scored
  errors = np.flatnonzero(predicted != labels)
  assert errors.size == GOLDEN_ERRORS
  assert errors.tolist() == GOLDEN_ERROR_INDICES
