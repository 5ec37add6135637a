"""One training step of every image config added by the image-GAN issue, under mock MNIST /
Fashion-MNIST / CIFAR-10, through the same ``train_and_evaluate`` the CLI runs; then the sample
CLI on the conditional run."""

from __future__ import annotations

import importlib.util
import json
import os

import chex
import jax
import jax.numpy as jnp
import matplotlib.image
import numpy as np
import pytest
import scipy.special
import tensorflow_datasets as tfds

from jaxgan import checkpoint, conditional, data, experiment, gan, sample, train
from jaxgan import config as train_config
from jaxgan.eval import classifier, evaluator

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


# What train_and_evaluate read, read again: the mock examples depend only on the split.


def first_batch(config):
  """Batch 0 by the documented rule: the first B examples of the permutation of epoch 0 drawn
  from ``fold_in(data_key, 0)``, scaled by ``x / 127.5 - 1``."""
  with tfds.testing.mock_data(num_examples=24):
    images = data.load_images(config.data.name, split='train', data_dir=config.data.data_dir,
                              download=False)
  data_key = jax.random.split(jax.random.PRNGKey(config.seed), 4)[2]
  size = config.train.batch_size * config.train.num_d_steps
  idx = np.asarray(jax.random.permutation(jax.random.fold_in(data_key, 0), 24))[:size]
  return {'x': images['image'][idx].astype(np.float32) / np.float32(127.5) - np.float32(1),
          'label': images['label'][idx]}


def first_train_images(config, num):
  with tfds.testing.mock_data(num_examples=24):
    return data.image_arrays(config.data.name, split='train', data_dir=config.data.data_dir,
                             download=False, max_examples=num)['x']


def check_first_step(config, state, line):
  """The logged first step against numbers computed here from the initial state.

  The driver's keys: ``init, step, data, sample = split(PRNGKey(seed), 4)``.
  """
  generator, discriminator = train.build_models(config)
  init_key = jax.random.split(jax.random.PRNGKey(config.seed), 4)[0]
  initial = experiment.init_state(config, init_key, generator, discriminator)
  # D's first loss is taken at its initial weights on the first batch, in training mode.
  batch = first_batch(config)
  labels = batch['label'] if config.model.num_classes else None
  out, _ = gan.apply_model(discriminator, initial.d_params, initial.d_batch_stats, batch['x'],
                           train=True, labels=labels)
  real_logits, class_logits = conditional.split_logits(out)
  np.testing.assert_allclose(line['d_real'], np.mean(jax.nn.sigmoid(real_logits)), rtol=1e-5)
  if class_logits is not None:
    assert line['d_class_accuracy'] == np.mean(np.argmax(class_logits, -1) == batch['label'])
  # EMA warm-up at step 0: decay min(0.999, 1 / 10), so ema = 0.1 init + 0.9 new.
  assert config.train.ema_decay > 0
  chex.assert_trees_all_close(
      state.ema_g_params,
      jax.tree.map(lambda a, b: 0.1 * a + 0.9 * b, initial.g_params, state.g_params),
      rtol=1e-6, atol=1e-7)


def peer_evaluation(config, state):
  """The end-of-run evaluation of ``state``, each metric recomputed in numpy/scipy.

  The evaluator's keys are ``_, fake, projections = split(fold_in(sample, 1), 3)``; its real
  images are the first ``eval_num_samples`` of the train split. FID's trace term is the sum of
  sqrt of the eigenvalues of sigma1 sigma2 (general eigvals, not jaxgan's symmetric eigh route).
  """
  num = config.train.eval_num_samples
  sample_key = jax.random.split(jax.random.PRNGKey(config.seed), 4)[3]
  _, k_fake, k_proj = jax.random.split(jax.random.fold_in(sample_key, 1), 3)
  fake, labels = evaluator.make_generate(config, train.build_models(config)[0])(
      state, k_fake, num)
  real = first_train_images(config, num)
  x, y = (np.asarray(a, np.float64).reshape(num, -1) for a in (fake, real))
  directions = np.asarray(jax.random.normal(k_proj, (x.shape[1], 128)), np.float64)
  directions /= np.linalg.norm(directions, axis=0)
  projected = np.sort(x @ directions, axis=0) - np.sort(y @ directions, axis=0)
  out = {'sliced_wasserstein': np.sqrt(np.mean(projected**2))}
  extractor = classifier.shipped_extractor(config.data.name)
  if extractor is not None:
    f_fake, f_real = (np.asarray(extractor.features(a), np.float64) for a in (fake, real))
    s_fake, s_real = np.cov(f_fake, rowvar=False), np.cov(f_real, rowvar=False)
    eigenvalues = np.clip(np.linalg.eigvals(s_fake @ s_real).real, 0, None)
    out['classifier_fid'] = (np.sum((f_fake.mean(0) - f_real.mean(0))**2) + np.trace(s_fake)
                             + np.trace(s_real) - 2 * np.sum(np.sqrt(eigenvalues)))
    probs = np.asarray(extractor.probs(fake), np.float64)
    kl = scipy.special.rel_entr(probs, probs.mean(0, keepdims=True)).sum(1)
    out['classifier_score'] = np.exp(kl.mean())
    if labels is not None:
      np.testing.assert_array_equal(labels, np.arange(num) % config.model.num_classes)
      out['label_accuracy'] = np.mean(np.argmax(probs, -1) == labels)
  return out


def check_evaluation(config, state, line):
  expected = peer_evaluation(config, state)
  assert set(expected) <= set(line)
  for name, value in expected.items():
    # sliced Wasserstein: float32 projections in jaxgan; FID: rank-deficient covariances (24
    # samples, 64 features), whose near-zero eigenvalues each algorithm rounds its own way.
    np.testing.assert_allclose(line[name], value, rtol=1e-4, atol=1e-6, err_msg=name)


@pytest.fixture(scope='module')
def cgan_run(tmp_path_factory):
  workdir = tmp_path_factory.mktemp('cgan')
  return workdir, *run_one_step('cgan_mnist', workdir)


@pytest.mark.parametrize('name', [
    # dcgan_mnist's model and code path on another dataset of the same shape: slow-marked.
    # dcgan_cifar10 (46 s on 2 cores) and acgan_mnist (34 s) too: their models' shapes and losses
    # have fast tests (tests/test_models.py, tests/test_conditional.py).
    pytest.param('dcgan_fashion_mnist', marks=pytest.mark.slow),
    pytest.param('dcgan_cifar10', marks=pytest.mark.slow),
    pytest.param('acgan_mnist', marks=pytest.mark.slow)])
def test_one_step(name, tmp_path):
  config, state, lines = run_one_step(name, tmp_path)
  assert int(state.step) == 1 and lines[0]['step'] == 1
  check_first_step(config, state, lines[0])
  # The end-of-run evaluation line.
  assert lines[-1]['step'] == 1
  check_evaluation(config, state, lines[-1])
  assert ('classifier_fid' in lines[-1]) == (name == 'acgan_mnist' and MNIST_CLASSIFIER)
  image = matplotlib.image.imread(os.path.join(tmp_path, 'samples', 'step_1.png'))
  side = 28 if 'mnist' in name else 32  # 12 samples -> 4 columns x 3 rows, 1-pixel borders
  assert image.shape[:2] == (3 * (side + 1) + 1, 4 * (side + 1) + 1)


def test_cgan_one_step_and_evaluation(cgan_run):
  workdir, config, state, lines = cgan_run
  assert int(state.step) == 1 and config.model.num_classes == 10
  check_first_step(config, state, lines[0])
  # The conditional D's first convolution sees the image and 10 label maps.
  assert state.d_params['discriminator']['Conv_0']['kernel'].shape[2] == 1 + 10
  check_evaluation(config, state, lines[-1])
  assert ('label_accuracy' in lines[-1]) == MNIST_CLASSIFIER
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
