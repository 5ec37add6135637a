"""Every config trains end to end, writes its outputs, and a second run resumes."""

import glob
import importlib.util
import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest
import tensorflow_datasets as tfds
from chex import assert_trees_all_close

from jaxgan import checkpoint, train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _trainer(path):
  spec = importlib.util.spec_from_file_location('config_module', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config().get('trainer')


# Configs with a `trainer` of their own (ssgan_*, pix2pix_*, cyclegan_*, sr*_...) have their own
# end-to-end tests (tests/test_semi_supervised.py, tests/test_translation_train.py,
# tests/test_super_resolution.py, ...); these run on jaxgan.train.train_and_evaluate.
CONFIGS = sorted(p for p in glob.glob(os.path.join(ROOT, 'configs', '*.py')) if not _trainer(p))
# 25-50 s each on 2 cores (their compilations); tests/test_image_configs.py trains one step of
# each in the default run, and dcgan_mnist keeps an image config here.
SLOW_CONFIGS = ('acgan_mnist', 'cgan_mnist', 'dcgan_cifar10', 'dcgan_fashion_mnist',
                # 10-18 s each. The default run keeps this test's toy path (sine; mog_ring_best
                # with standardize, R1, EMA and the cosine schedule) and image path (dcgan_mnist);
                # each of these configs trains in another default-run test: mlp_mnist in
                # tests/test_eval_cli.py (tiny_run), gaussian_1d in tests/test_faults.py (the
                # reference run), mog_ring in test_resumed_run_equals_uninterrupted_run below,
                # mog_grid and mog_grid_best in tests/test_mode_collapse_config.py
                # (test_configs_validate_and_take_a_step).
                'mlp_mnist', 'gaussian_1d', 'mog_ring', 'mog_grid', 'mog_grid_best')
CONFIG_PARAMS = [pytest.param(p, marks=pytest.mark.slow)
                 if os.path.basename(p)[:-3] in SLOW_CONFIGS else p for p in CONFIGS]


def load_config(path, num_steps=1):
  spec = importlib.util.spec_from_file_location('config_module', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config()
  t = config.train
  t.num_steps, t.batch_size, t.num_samples = num_steps, 8, 16
  t.log_every = t.sample_every = t.checkpoint_every = 1
  return config


def _metrics(workdir):
  """The training rows of metrics.jsonl (evaluation rows, which carry no g_loss, left out)."""
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    return [row for row in map(json.loads, f) if 'g_loss' in row]


@pytest.mark.parametrize('path', CONFIG_PARAMS, ids=lambda p: os.path.basename(p)[:-3])
def test_config_trains_one_step_and_resumes(path, tmp_path):
  workdir = str(tmp_path)
  with tfds.testing.mock_data(num_examples=64):
    state = train.train_and_evaluate(load_config(path, num_steps=1), workdir)
    assert int(state.step) == 1
    [line] = _metrics(workdir)
    assert line['step'] == 1 and np.isfinite([line['d_loss'], line['g_loss']]).all()
    assert os.path.exists(os.path.join(workdir, 'samples', 'step_1.png'))
    assert os.path.exists(os.path.join(workdir, 'checkpoints', '1'))
    assert glob.glob(os.path.join(workdir, 'tensorboard', 'events.out.tfevents.*'))
    state = train.train_and_evaluate(load_config(path, num_steps=2), workdir)
  assert int(state.step) == 2
  assert [m['step'] for m in _metrics(workdir)] == [1, 2]


def test_resumed_run_equals_uninterrupted_run(tmp_path):
  path = os.path.join(ROOT, 'configs', 'mog_ring.py')
  straight = train.train_and_evaluate(load_config(path, num_steps=4), str(tmp_path / 'a'))
  train.train_and_evaluate(load_config(path, num_steps=2), str(tmp_path / 'b'))
  resumed = train.train_and_evaluate(load_config(path, num_steps=4), str(tmp_path / 'b'))
  assert_trees_all_close(straight, resumed, atol=0, rtol=0)
  # The checkpoint on disk is that state.
  mgr = checkpoint.manager(str(tmp_path / 'b'), keep=3)
  assert mgr.latest_step() == 4
  assert_trees_all_close(checkpoint.restore_latest(mgr, straight), straight, atol=0, rtol=0)
  # An abstract template (shapes and dtypes only, nothing computed) restores the same arrays.
  abstract = jax.tree.map(lambda a: jax.ShapeDtypeStruct(np.shape(a), np.asarray(a).dtype),
                          straight)
  assert_trees_all_close(checkpoint.restore_latest(mgr, abstract), straight, atol=0, rtol=0)


def test_command_line_trains_and_resumes(tmp_path):
  command = [sys.executable, '-m', 'jaxgan.main', f'--config={ROOT}/configs/gaussian_1d.py',
             f'--workdir={tmp_path}', '--config.train.num_steps=20', '--config.train.log_every=10']
  env = {**os.environ, 'JAX_PLATFORMS': 'cpu'}
  first = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
  assert first.returncode == 0, first.stderr[-3000:]
  assert 'step 20/20' in first.stderr
  command[-2] = '--config.train.num_steps=30'
  second = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
  assert second.returncode == 0, second.stderr[-3000:]
  assert 'Resuming from the checkpoint of step 20' in second.stderr
  assert [m['step'] for m in _metrics(str(tmp_path))] == [10, 20, 30]
  assert not any('orbax' in line for line in second.stderr.splitlines()
                 if line.startswith('I'))  # Orbax's per-write INFO lines are filtered.


def test_unknown_names_fail_before_compiling(tmp_path):
  config = load_config(os.path.join(ROOT, 'configs', 'mog_ring.py'))
  config.loss.name = 'wassersteen'
  with pytest.raises(ValueError, match="config.loss.name='wassersteen' is not allowed"):
    train.train_and_evaluate(config, str(tmp_path))
  assert not os.path.exists(os.path.join(tmp_path, 'checkpoints'))
