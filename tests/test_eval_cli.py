"""``python -m jaxgan.eval`` on tiny MNIST runs (TFDS mock data, offline): what it writes equals
the metrics computed directly, outside :mod:`jaxgan.eval.run`, from the same samples' features;
periodic evaluation during training logs what the command's scoring gives for its samples;
StyleGAN2/PGGAN runs are scored on their samples cropped back to 28x28, other trainers refused."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest
import tensorflow_datasets as tfds
from test_style_train import tiny_config  # StyleGAN2/PGGAN configs shrunk to widths 4.

from jaxgan import data as data_lib
from jaxgan import experiment, gan, metrics, sample, style_train, train
from jaxgan.eval import classifier, evaluator, reference, run

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NUM = 40  # generated and real images


def _config():
  spec = importlib.util.spec_from_file_location('mlp_mnist', os.path.join(ROOT, 'configs',
                                                                          'mlp_mnist.py'))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config()
  t = config.train
  t.num_steps, t.batch_size, t.num_samples = 3, 8, 16
  t.log_every = t.sample_every = t.checkpoint_every = 3
  t.ema_decay = 0.5  # so that the EMA weights differ from G's after 3 steps
  t.eval_every, t.eval_num_samples = 3, NUM  # periodic evaluation at the last step
  return config


@pytest.fixture(scope='module')
def tiny_run(tmp_path_factory):
  """``(workdir, cache_dir, results)``: a 3-step MLP GAN on mock MNIST, evaluated once."""
  workdir = str(tmp_path_factory.mktemp('run'))
  cache_dir = str(tmp_path_factory.mktemp('cache'))
  with tfds.testing.mock_data(num_examples=64):
    train.train_and_evaluate(_config(), workdir)
    results = run.evaluate_run(workdir, num_samples=NUM, cache_dir=cache_dir)
    real = data_lib.image_arrays('mnist', split='train', data_dir=None, download=False,
                                 max_examples=NUM)['x']
  return workdir, cache_dir, results, real


def _direct_features(workdir, real, *, ema=True):
  """The classifier's features of the run's samples (drawn here with jaxgan.experiment, EMA
  weights or G's own) and of ``real``; and the samples' probabilities."""
  config, generator, state = sample.load_run(workdir)
  z = gan.sample_latent(jax.random.PRNGKey(0), NUM, config.model.latent_dim,
                        config.model.latent_distribution)
  variables = (experiment.sampling_variables(config, generator, state) if ema
               else (state.g_params, state.g_batch_stats))
  fake = np.asarray(experiment.sample(config, generator, state, None, NUM, z=z,
                                      variables=variables))
  extractor = classifier.shipped_extractor('mnist')
  return extractor.features(fake), extractor.features(real), extractor.probs(fake)


def test_eval_json_equals_metrics_of_the_same_features(tiny_run):
  workdir, _, results, real = tiny_run
  with open(os.path.join(workdir, 'eval.json')) as f:
    assert json.load(f) == results
  assert os.path.exists(os.path.join(workdir, 'metrics.jsonl'))  # eval.json sits beside it
  assert results['step'] == 3 and results['ema'] and results['num_samples'] == NUM
  assert results['reference']['num_examples'] == NUM and not results['reference']['cached']
  fake_f, real_f, probs = _direct_features(workdir, real)
  assert fake_f.shape == (NUM, 64)
  m = results['metrics']
  assert set(m) == {'fid', 'kid', 'kid_std', 'is', 'precision', 'recall'}
  fid = metrics.frechet_distance(*metrics.gaussian_statistics(fake_f),
                                 *metrics.gaussian_statistics(real_f))
  assert m['fid'] == pytest.approx(fid, rel=1e-6) and m['fid'] > 0
  kid, kid_std = metrics.kernel_inception_distance(real_f, fake_f)
  assert (m['kid'], m['kid_std']) == pytest.approx((kid, kid_std), rel=1e-5, abs=1e-9)
  assert (m['precision'], m['recall']) == pytest.approx(metrics.precision_recall(real_f, fake_f))
  assert m['is'] == pytest.approx(metrics.inception_score(probs), rel=1e-9)
  # The EMA weights were used: G's own weights give another FID.
  raw_f, _, _ = _direct_features(workdir, real, ema=False)
  raw_fid = metrics.frechet_distance(*metrics.gaussian_statistics(raw_f),
                                     *metrics.gaussian_statistics(real_f))
  assert abs(raw_fid - m['fid']) > 1e-3 * m['fid']


def test_periodic_evaluation_logs_the_commands_scores_of_its_samples(tiny_run):
  """metrics.jsonl's classifier_fid / classifier_score (train.py's evaluate callback) equal the
  command's fid / is of the same samples: its extractor (run.load_extractor), the reference it
  cached for this run (read back from the cache) and run.score; bit for bit."""
  workdir, cache_dir, _, _ = tiny_run
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    logged = [row for row in map(json.loads, f) if 'classifier_fid' in row]
  assert [row['step'] for row in logged] == [3]
  config, generator, state = sample.load_run(workdir)
  # train.py's keys: sample = split(PRNGKey(seed), 4)[3]; the evaluator's latents come from
  # split(fold_in(sample, 1), 3)[1]. The command draws with the same make_generate.
  sample_key = jax.random.split(jax.random.PRNGKey(config.seed), 4)[3]
  k_fake = jax.random.split(jax.random.fold_in(sample_key, 1), 3)[1]
  fake, labels = evaluator.make_generate(config, generator)(state, k_fake, NUM)
  assert labels is None
  extractor, digest = run.load_extractor('classifier', 'mnist')
  real = reference.reference_features('mnist', extractor=extractor, extractor_name='classifier',
                                      weights_digest=digest, split='train', num_examples=NUM,
                                      load_images=lambda: pytest.fail('not cached'),
                                      cache_dir=cache_dir)
  assert real.cached
  scores = run.score(extractor.features(fake), real, names=('fid', 'is'),
                     probs=extractor.probs(fake))
  assert logged[0]['classifier_fid'] == scores['fid'] > 0
  assert logged[0]['classifier_score'] == scores['is']


# About 13 s (a subprocess); the metrics it writes are checked in the default run by
# test_eval_json_equals_metrics_of_the_same_features.
@pytest.mark.slow
def test_command_line_prints_the_table_and_reuses_the_cache(tiny_run):
  workdir, cache_dir, results, _ = tiny_run
  os.remove(os.path.join(workdir, 'eval.json'))
  code = ('import runpy, sys, tensorflow_datasets as tfds\n'
          'with tfds.testing.mock_data(num_examples=64):\n'
          "  runpy.run_module('jaxgan.eval', run_name='__main__')\n")
  out = subprocess.run(
      [sys.executable, '-c', code, f'--workdir={workdir}', f'--num_samples={NUM}',
       '--metrics=fid,kid'], capture_output=True, text=True, cwd=ROOT,
      env={**os.environ, 'JAXGAN_CACHE_DIR': os.path.dirname(cache_dir) + '/cli_cache',
           'TF_CPP_MIN_LOG_LEVEL': '2'})
  assert out.returncode == 0, out.stderr[-2000:]
  with open(os.path.join(workdir, 'eval.json')) as f:
    written = json.load(f)
  assert set(written['metrics']) == {'fid', 'kid', 'kid_std'}
  assert written['metrics']['fid'] == pytest.approx(results['metrics']['fid'], rel=1e-6)
  assert written['metrics']['kid'] == pytest.approx(results['metrics']['kid'], rel=1e-5)
  assert f"| fid | {written['metrics']['fid']:.6g} |" in out.stdout
  assert '| metric | value |' in out.stdout and 'step 3, 40 samples' in out.stdout
  # In process again, the reference now comes from the cache and gives the same numbers.
  with tfds.testing.mock_data(num_examples=64):
    again = run.evaluate_run(workdir, num_samples=NUM, cache_dir=cache_dir, write=False,
                             metric_names=('fid',))
  assert again['reference']['cached'] and again['metrics']['fid'] == results['metrics']['fid']


def test_bad_arguments_name_the_value(tiny_run):
  workdir = tiny_run[0]
  with pytest.raises(ValueError, match=r"unknown metrics \['fidd'\]"):
    run.evaluate_run(workdir, metric_names=('fid', 'fidd'))
  with pytest.raises(ValueError, match='num_samples must be >= 4.*got 3'):
    run.evaluate_run(workdir, num_samples=3)
  with pytest.raises(ValueError, match="unknown extractor 'vgg'"):
    run.load_extractor('vgg', 'mnist')
  with pytest.raises(ValueError, match="no classifier for dataset 'cifar10'"):
    run.load_extractor('classifier', 'cifar10')
  with pytest.raises(FileNotFoundError, match='no converted Inception weights'):
    run.load_extractor('inception', 'mnist', inception_weights='/nonexistent/w.npz')
  with pytest.raises(ValueError, match='no config.json'):
    run.evaluate_run(os.path.dirname(workdir))


# --- StyleGAN2 / PGGAN runs (jaxgan.style_train): their own sampler, cropped back to 28x28 ---


def _crop_by_hand(images):
  """r x r samples -> 32x32 (each pixel a 32/r x 32/r block) -> the central 28x28."""
  f = 32 // images.shape[1]
  return np.repeat(np.repeat(np.asarray(images), f, axis=1), f, axis=2)[:, 2:30, 2:30]


@pytest.mark.parametrize('name,resolution', [
    ('pggan_mnist', 4),  # About 18 s on 2 busy cores (4x4: one stage to compile).
    pytest.param('stylegan2_mnist', 8, marks=pytest.mark.slow),  # About 45 s: path length's
])                                                               # double backward compiles.
def test_style_run_fid_equals_frechet_distance_of_its_cropped_samples(name, resolution,
                                                                      tmp_path):
  workdir, cache_dir = str(tmp_path / 'run'), str(tmp_path / 'cache')
  with tfds.testing.mock_data(num_examples=64):
    config = tiny_config(name, num_steps=1, every=1, resolution=resolution)
    style_train.train_and_evaluate(config, workdir)
    results = run.evaluate_run(workdir, num_samples=NUM, cache_dir=cache_dir,
                               metric_names=('fid', 'kid'))
    real = data_lib.image_arrays('mnist', split='train', data_dir=None, download=False,
                                 max_examples=NUM)['x']
  with open(os.path.join(workdir, 'eval.json')) as f:
    assert json.load(f) == results
  assert results['step'] == 1 and results['ema'] and set(results['metrics']) == {
      'fid', 'kid', 'kid_std'}
  config, generator, state = sample.load_run(workdir)
  # One batch (NUM <= 500), from fold_in(PRNGKey(seed), 0); r x r samples of the padded digits.
  drawn = style_train.make_sampler(config, generator)(
      state, jax.random.fold_in(jax.random.PRNGKey(0), 0), NUM)
  assert drawn.shape == (NUM, resolution, resolution, 1)
  extractor = classifier.shipped_extractor('mnist')
  fake_f, real_f = extractor.features(_crop_by_hand(drawn)), extractor.features(real)
  fid = metrics.frechet_distance(*metrics.gaussian_statistics(fake_f),
                                 *metrics.gaussian_statistics(real_f))
  assert results['metrics']['fid'] == pytest.approx(fid, rel=1e-6) and fid > 0
  kid, _ = metrics.kernel_inception_distance(real_f, fake_f)
  assert results['metrics']['kid'] == pytest.approx(kid, rel=1e-5, abs=1e-9)


def test_to_data_size_crops_the_padding_and_names_bad_shapes():
  x = np.arange(2 * 32 * 32, dtype=np.float32).reshape((2, 32, 32, 1))
  np.testing.assert_array_equal(style_train.to_data_size(x), x[:, 2:30, 2:30])
  small = np.arange(3 * 8 * 8, dtype=np.float32).reshape((3, 8, 8, 1))
  np.testing.assert_array_equal(style_train.to_data_size(small), _crop_by_hand(small))
  with pytest.raises(ValueError, match=r'got shape \(2, 28, 28, 1\)'):
    style_train.to_data_size(np.zeros((2, 28, 28, 1)))


@pytest.mark.parametrize('trainer', ['pix2pix', 'cyclegan', 'srgan', 'vae', 'semi_supervised'])
def test_other_trainers_are_refused_naming_the_trainer(trainer, tmp_path):
  with open(tmp_path / 'config.json', 'w') as f:
    json.dump({'trainer': trainer, 'data': {'name': 'mnist'}}, f)
  with pytest.raises(ValueError, match=f"config.trainer='{trainer}' is not supported"):
    run.evaluate_run(str(tmp_path))
