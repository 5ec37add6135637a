"""The evaluation classifier and evaluator: batching, orbax round trip, a plugged-in feature
extractor with known answers, and classifier training on mock MNIST."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tensorflow_datasets as tfds

from jaxgan import data, metrics
from jaxgan.eval import classifier, evaluator, train_classifier


@pytest.fixture(scope='module')
def lenet():
  model = classifier.LeNet()
  params = model.init(jax.random.PRNGKey(0), jnp.zeros((1, 28, 28, 1)))['params']
  return model, params


def test_lenet_shapes_and_size(lenet):
  model, params = lenet
  features, logits = model.apply({'params': params}, jnp.zeros((3, 28, 28, 1)))
  chex.assert_shape([features, logits], [(3, 64), (3, 10)])
  num_params = sum(x.size for x in jax.tree.leaves(params))
  # 5*5*32+32 + 5*5*32*64+64 + 7*7*64*64+64 + 64*10+10
  assert num_params == 832 + 51_264 + 200_768 + 650


def test_extractor_batches_match_one_pass(lenet):
  model, params = lenet
  images = jax.random.uniform(jax.random.PRNGKey(1), (7, 28, 28, 1), minval=-1, maxval=1)
  features, logits = model.apply({'params': params}, images)
  small = classifier.extractor(model, params, batch_size=3)  # 3 + 3 + 1 (padded)
  np.testing.assert_allclose(small.features(images), features, rtol=1e-5, atol=1e-6)
  probs = small.probs(images)
  np.testing.assert_allclose(probs, jax.nn.softmax(logits), rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-12)
  with pytest.raises(ValueError, match='28, 28, 1'):
    small.features(np.zeros((2, 32, 32, 3)))


def test_save_load_round_trip(lenet, tmp_path):
  model, params = lenet
  classifier.save(str(tmp_path / 'clf'), params, {'num_classes': 10, 'num_features': 64,
                                                  'test_accuracy': 0.5})
  loaded_model, loaded, info = classifier.load(str(tmp_path / 'clf'))
  chex.assert_trees_all_equal(loaded, params)
  assert loaded_model == model and info['test_accuracy'] == 0.5
  with pytest.raises(ValueError, match='no classifier'):
    classifier.load(str(tmp_path / 'nothing'))


def _label_painting_extractor():
  """A plugged-in 'network': pixel (0, 0) holds label / 10, the features are the first 3 pixels."""
  def probs(images):
    return np.eye(10)[np.rint(np.asarray(images)[:, 0, 0, 0] * 10).astype(int)]
  return classifier.FeatureExtractor(
      features=lambda images: np.asarray(images).reshape(len(images), -1)[:, :3], probs=probs)


def test_image_metrics_with_a_plugged_in_extractor():
  rng = np.random.default_rng(0)
  labels = np.arange(50) % 10
  images = rng.uniform(-1, 1, size=(50, 4, 4, 1))
  images[:, 0, 0, 0] = labels / 10
  extractor = _label_painting_extractor()
  reference = metrics.gaussian_statistics(extractor.features(images))
  out = evaluator.image_metrics(images, extractor=extractor, reference_stats=reference,
                                labels=labels, real=images, key=jax.random.PRNGKey(0))
  assert abs(out['classifier_fid']) < 1e-9  # the same images: FD 0
  assert out['classifier_score'] == pytest.approx(10.0)  # one-hot, 10 classes used equally
  assert out['label_accuracy'] == 1.0
  assert out['sliced_wasserstein'] == pytest.approx(0.0, abs=1e-6)
  wrong = evaluator.image_metrics(images, extractor=extractor, labels=(labels + 1) % 10)
  assert wrong['label_accuracy'] == 0.0 and 'classifier_fid' not in wrong


def test_train_classifier_memorizes_mock_data():
  with tfds.testing.mock_data(num_examples=64):
    model, params, info = train_classifier.train('mnist', data_dir=None, epochs=40,
                                                 batch_size=32, learning_rate=3e-3)
    train_split = data.image_arrays('mnist', split='train', data_dir=None, download=False)
    test_split = data.image_arrays('mnist', split='test', data_dir=None, download=False)
  assert info['num_steps'] == 80 and info['num_classes'] == 10
  # 64 random images with random labels: chance is 10%. After 40 epochs most are memorized
  # (100% on one machine, 73% in a clean CI venv): require at least 5x chance.
  extractor = classifier.extractor(model, params)
  probs = extractor.probs(train_split['x'])
  assert metrics.label_accuracy(probs, train_split['label']) >= 0.5
  # The reported test accuracy is the returned classifier's on the test split, recounted here.
  assert info['num_test_examples'] == len(test_split['label']) == 64
  test_predictions = np.argmax(extractor.probs(test_split['x']), axis=-1)
  assert info['test_accuracy'] == np.count_nonzero(test_predictions == test_split['label']) / 64
  with pytest.raises(ValueError, match='28x28x1'):
    train_classifier.train('cifar10', data_dir=None)
