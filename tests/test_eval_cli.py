"""``python -m jaxgan.eval`` on a tiny MNIST run (TFDS mock data, offline): what it writes equals
the metrics computed directly, outside :mod:`jaxgan.eval.run`, from the same samples' features."""

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

from jaxgan import data as data_lib
from jaxgan import experiment, gan, metrics, sample, train
from jaxgan.eval import classifier, run

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
