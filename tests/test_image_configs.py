"""One training step of every image config added by the image-GAN issue, under mock MNIST /
Fashion-MNIST / CIFAR-10, through the same ``train_and_evaluate`` the CLI runs; then the sample
CLI on the conditional run."""

from __future__ import annotations

import importlib.util
import json
import math
import os

import jax
import jax.numpy as jnp
import matplotlib.image
import numpy as np
import pytest
import tensorflow_datasets as tfds

from jaxgan import checkpoint, sample, train
from jaxgan import config as train_config
from jaxgan.eval import classifier

CONFIG_DIR = os.path.join(os.path.dirname(__file__), '..', 'configs')
MNIST_CLASSIFIER = os.path.exists(os.path.join(classifier.weights_dir('mnist'), 'info.json'))


def load_config(name):
  spec = importlib.util.spec_from_file_location(name, os.path.join(CONFIG_DIR, f'{name}.py'))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config()


def run_one_step(name, workdir):
  config = load_config(name)
  config.train.num_steps = 1
  config.train.batch_size = 8
  config.train.num_samples = 12
  config.train.eval_num_samples = 24
  config.model.features = 8
  with tfds.testing.mock_data(num_examples=24):
    state = train.train_and_evaluate(config, str(workdir))
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    lines = [json.loads(line) for line in f]
  return config, state, lines


@pytest.fixture(scope='module')
def cgan_run(tmp_path_factory):
  workdir = tmp_path_factory.mktemp('cgan')
  return workdir, *run_one_step('cgan_mnist', workdir)


@pytest.mark.parametrize('name', ['dcgan_fashion_mnist', 'dcgan_cifar10', 'acgan_mnist'])
def test_one_step(name, tmp_path):
  config, state, lines = run_one_step(name, tmp_path)
  assert int(state.step) == 1
  assert lines[0]['step'] == 1 and math.isfinite(lines[0]['d_loss'])
  assert math.isfinite(lines[0]['g_loss'])
  # EMA after one step is 0.1 * init + 0.9 * new (warm-up): same structure, not the new weights.
  assert config.train.ema_decay > 0
  assert jax.tree.structure(state.ema_g_params) == jax.tree.structure(state.g_params)
  assert not all(jax.tree.leaves(jax.tree.map(np.array_equal, state.ema_g_params,
                                              state.g_params)))
  # The end-of-run evaluation line.
  assert lines[-1]['step'] == 1 and lines[-1]['sliced_wasserstein'] > 0
  image = matplotlib.image.imread(os.path.join(tmp_path, 'samples', 'step_1.png'))
  side = 28 if 'mnist' in name else 32  # 12 samples -> 4 columns x 3 rows, 1-pixel borders
  assert image.shape[:2] == (3 * (side + 1) + 1, 4 * (side + 1) + 1)
  if name == 'acgan_mnist':
    assert 0 <= lines[0]['d_class_accuracy'] <= 1 and lines[0]['d_class_loss'] > 0
    if MNIST_CLASSIFIER:
      assert 0 <= lines[-1]['label_accuracy'] <= 1


def test_cgan_one_step_and_evaluation(cgan_run):
  workdir, config, state, lines = cgan_run
  assert int(state.step) == 1 and config.model.num_classes == 10
  assert math.isfinite(lines[0]['d_loss'])
  # The conditional D's first convolution sees the image and 10 label maps.
  assert state.d_params['discriminator']['Conv_0']['kernel'].shape[2] == 1 + 10
  evaluation = lines[-1]
  if MNIST_CLASSIFIER:
    assert evaluation['classifier_fid'] >= 0
    assert 1 <= evaluation['classifier_score'] <= 10
    # Accuracy over 24 samples is a multiple of 1/24.
    assert round(evaluation['label_accuracy'] * 24, 6) == round(evaluation['label_accuracy'] * 24)
  restored = checkpoint.restore_latest(checkpoint.manager(str(workdir), keep=3), state)
  assert int(restored.step) == 1


class TestSampleCLI:

  def test_grid_and_class_grid(self, cgan_run):
    workdir = cgan_run[0]
    path = sample.write(str(workdir), 'grid', rows=3, columns=5)
    assert matplotlib.image.imread(path).shape[:2] == (3 * 29 + 1, 5 * 29 + 1)
    path = sample.write(str(workdir), 'class_grid', columns=4)
    assert matplotlib.image.imread(path).shape[:2] == (10 * 29 + 1, 4 * 29 + 1)

  def test_interpolation_ends_are_the_endpoint_samples(self, cgan_run):
    config, generator, state = sample.load_run(str(cgan_run[0]))
    key = jax.random.PRNGKey(7)
    images = sample.interpolation_images(config, generator, state, key, rows=2, columns=5)
    assert images.shape == (10, 28, 28, 1)
    ends = train.sample_latent(key, 4, config.model.latent_dim,
                               config.model.latent_distribution).reshape((2, 2, -1))
    for row in range(2):
      expected = train.sample(config, generator, state, None, 2, z=ends[row],
                              labels=jnp.full((2,), row))
      np.testing.assert_allclose(images[row * 5], expected[0], atol=1e-4)
      np.testing.assert_allclose(images[row * 5 + 4], expected[1], atol=1e-4)
    path = sample.write(str(cgan_run[0]), 'interpolate', rows=2, columns=6, method='linear')
    assert matplotlib.image.imread(path).shape[:2] == (2 * 29 + 1, 6 * 29 + 1)

  def test_class_grid_columns_share_a_latent(self, cgan_run):
    config, generator, state = sample.load_run(str(cgan_run[0]))
    images = sample.class_grid_images(config, generator, state, jax.random.PRNGKey(1), columns=3)
    z = train.sample_latent(jax.random.PRNGKey(1), 3, config.model.latent_dim,
                            config.model.latent_distribution)
    expected = train.sample(config, generator, state, None, 3, z=z, labels=jnp.full((3,), 4))
    np.testing.assert_allclose(images[4 * 3:5 * 3], expected, atol=1e-4)

  def test_errors(self, cgan_run, tmp_path):
    with pytest.raises(ValueError, match='no config.json'):
      sample.load_run(str(tmp_path))
    with pytest.raises(ValueError, match='unknown mode'):
      sample.write(str(cgan_run[0]), 'video')


@pytest.mark.parametrize('field,value,match', [
    ('model.num_classes', -1, 'model.num_classes=-1 must be >= 0'),
    ('model.num_classes', 7, 'has 10 classes'),
    ('train.ema_decay', 1.0, r'ema_decay=1.0 must be in \[0, 1\)'),
    ('train.eval_every', -5, 'eval_every=-5'),
    ('loss.r1_every', 0, 'loss.r1_every=0 must be > 0'),
])
def test_validate_names_the_bad_field(field, value, match):
  config = load_config('cgan_mnist')
  section, name = field.split('.')
  config[section][name] = value
  with pytest.raises(ValueError, match=match):
    train_config.validate(config)


def test_validate_conditional_combinations():
  config = load_config('acgan_mnist')
  config.model.name = 'mnist_mlp'
  with pytest.raises(ValueError, match="AC-GAN\\) needs config.model.name='dcgan'"):
    train_config.validate(config)
  config = load_config('mlp_mnist')
  config.loss.auxiliary_classifier_weight = 1.0
  with pytest.raises(ValueError, match='needs config.model.num_classes > 0'):
    train_config.validate(config)
  config = load_config('cgan_mnist')
  config.data.name = 'ring'
  config.model.name = 'mlp'
  with pytest.raises(ValueError, match='needs labelled data'):
    train_config.validate(config)
