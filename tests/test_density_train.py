"""The density models' configs train on the GANs' driver, write a run's files and resume exactly.

Each config runs shrunk (tiny models, a batch of 8, mock MNIST) through
``jaxgan.density_train.train_and_evaluate``; the models' own exact tests are in
tests/test_{vae,pixelcnn,realnvp,rbm}.py.
"""

import glob
import importlib.util
import json
import math
import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tensorflow_datasets as tfds
from chex import assert_trees_all_close

from jaxgan import density_train, game, rbm

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = ('vae_mnist', 'pixelcnn_mnist', 'realnvp_mnist', 'rbm_mnist')
# Each family's model at a size that compiles and runs in about a second.
TINY = {
    'vae_mnist': {'model.hidden': (8,), 'model.latent_dim': 2, 'eval.iwae_k': 3,
                  'eval.iwae_chunk_size': 2},
    'pixelcnn_mnist': {'model.features': 4, 'model.num_blocks': 1, 'model.hidden_features': 4,
                       'model.first_kernel_size': 3},
    'realnvp_mnist': {'model.hidden_features': 4, 'model.num_hidden_layers': 1},
    'rbm_mnist': {'model.num_hidden': 8, 'model.num_gibbs_steps': 2, 'model.num_chains': 8,
                  'eval.ais_num_chains': 4, 'eval.ais_num_betas': 5,
                  'eval.final_ais_num_betas': 9, 'eval.sample_gibbs_steps': 3},
}
# The test metrics of each family's last evaluation (the final ones included).
FINAL_METRICS = {
    'vae_mnist': ('test_elbo', 'test_iwae'),
    'pixelcnn_mnist': ('test_nll', 'test_bits_per_dim'),
    'realnvp_mnist': ('test_nll', 'test_bits_per_dim'),
    'rbm_mnist': ('test_log_likelihood', 'log_z', 'log_z_std_error'),
}


def load_config(name):
  spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, 'configs', f'{name}.py'))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config()


def tiny_config(name, *, num_steps=2, every=2, **overrides):
  """``configs/<name>.py`` with TINY's model, a batch of 8 and everything every ``every`` steps."""
  config = load_config(name)
  config.update_from_flattened_dict({
      **TINY[name], 'train.num_steps': num_steps, 'train.batch_size': 8,
      'train.log_every': every, 'train.sample_every': every, 'train.checkpoint_every': every,
      'train.eval_every': every, 'train.num_samples': 4, 'eval.num_examples': 16,
      'eval.batch_size': 8, **overrides})
  return config


def _rows(workdir):
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    return [json.loads(line) for line in f]


# 4-8 s each on 2 cores (their compilations); the RBM's killed-and-resumed run below keeps the
# trainer, its files and its resume in the default run.
SLOW = pytest.mark.slow


@SLOW
@pytest.mark.parametrize('name', CONFIGS)
def test_config_trains_one_chunk_and_writes_the_run(name, tmp_path):
  """One chunk of two steps from the config: the state, one metrics row with the family's
  loss and its test metrics (the final ones too: the last step is num_steps), a sample grid, a
  checkpoint, TensorBoard events and config.json."""
  workdir = str(tmp_path)
  config = tiny_config(name)
  assert config.trainer in density_train.FAMILIES
  with tfds.testing.mock_data(num_examples=64):
    state = density_train.train_and_evaluate(config, workdir)
  assert isinstance(state, game.GANState) and int(state.step) == 2
  assert state.d_params == {}
  [row] = _rows(workdir)
  assert row['step'] == 2 and row['d_loss'] == 0.0
  assert np.isfinite([row['g_loss'], row['g_grad_norm']]).all()
  assert np.isfinite([row[k] for k in FINAL_METRICS[name]]).all(), row
  assert os.path.exists(os.path.join(workdir, 'samples', 'step_2.png'))
  assert os.path.exists(os.path.join(workdir, 'checkpoints', '2'))
  assert glob.glob(os.path.join(workdir, 'tensorboard', 'events.out.tfevents.*'))
  assert json.load(open(os.path.join(workdir, 'config.json')))['trainer'] == config.trainer


@pytest.mark.parametrize('name,overrides', [
    # PCD's chains, in the checkpointed state; dynamic binarization from (seed, step).
    ('rbm_mnist', {'model.persistent': True}),
    # The ELBO's noise and the binarization, drawn in the objective from (seed, step).
    pytest.param('vae_mnist', {}, marks=SLOW),
    # Dequantization noise; convolutions run stepwise on a CPU.
    pytest.param('realnvp_mnist', {}, marks=SLOW),
], ids=['rbm_pcd', 'vae', 'realnvp'])
def test_killed_run_resumes_to_the_uninterrupted_run(name, overrides, tmp_path):
  """A run of four steps, checkpointed at 2 and 4, writes a run's files; the same run "killed"
  after step 3 (its checkpoint of step 4 gone, metrics rows past 2 left behind) and run again
  resumes from step 2 to the same state bit for bit and the same metrics rows."""
  config = tiny_config(name, num_steps=4, **{'train.eval_every': 0, **overrides})
  straight, killed = tmp_path / 'straight', tmp_path / 'killed'
  with tfds.testing.mock_data(num_examples=64):
    expected = density_train.train_and_evaluate(config, str(straight))
    assert sorted(os.listdir(straight / 'checkpoints')) == ['2', '4']
    assert sorted(os.listdir(straight / 'samples')) == ['step_2.png', 'step_4.png']
    assert glob.glob(str(straight / 'tensorboard' / 'events.out.tfevents.*'))
    assert json.load(open(straight / 'config.json'))['trainer'] == config.trainer
    shutil.copytree(straight, killed)
    shutil.rmtree(killed / 'checkpoints' / '4')
    resumed = density_train.train_and_evaluate(config, str(killed))
  assert isinstance(resumed, game.GANState) and int(resumed.step) == 4
  assert_trees_all_close(expected, resumed, atol=0, rtol=0)
  if overrides.get('model.persistent'):
    assert expected.g_batch_stats['chains'].shape == (8, 784)
  timing = lambda row: {k: v for k, v in row.items() if k != 'steps_per_sec'}
  assert [timing(r) for r in _rows(straight)] == [timing(r) for r in _rows(killed)]
  assert [r['step'] for r in _rows(killed)] == [2, 4]
  assert all(r['d_loss'] == 0.0 and np.isfinite(r['g_loss']) for r in _rows(killed))


@pytest.mark.parametrize('overrides,message', [
    ({'trainer': 'gan'}, r"config.trainer='gan' is not a density model"),
    ({'eval.iwae_k': 0}, r'config.eval.iwae_k=0: the IWAE bound needs k >= 1'),
    ({'trainer': 'realnvp', 'model.num_scales': 4},
     r'num_scales=4 squeezes the images 3 times, so their sides must be divisible by 8; '
     r'28x28 are not \(use num_scales <= 3\)'),
    ({'trainer': 'pixelcnn', 'model.kernel_size': 4}, r'kernel_size=4: .* odd kernel'),
    ({'data.binarize': 'sometimes'}, r"config.data.binarize='sometimes' is not allowed"),
    ({'train.parallel': 'pmap'}, r'train on one device'),
    ({'trainer': 'rbm', 'eval.ais_num_chains': 1}, r'ais_num_chains=1 must be >= 2'),
], ids=['family', 'iwae_k', 'squeeze', 'kernel', 'binarize', 'parallel', 'ais'])
def test_bad_configs_fail_before_loading_anything(overrides, message, tmp_path):
  family = overrides.get('trainer', 'vae')
  name = f'{family}_mnist' if family in density_train.FAMILIES else 'vae_mnist'
  config = load_config(name)
  config.update_from_flattened_dict(overrides)
  with pytest.raises(ValueError, match=message):  # No data: nothing was loaded.
    density_train.train_and_evaluate(config, str(tmp_path))
  assert not os.path.exists(os.path.join(tmp_path, 'checkpoints'))


@pytest.mark.parametrize('name', ['vae_mnist', 'rbm_mnist'])
def test_non_binary_data_for_a_bernoulli_model_fails_before_compiling(name, tmp_path):
  """``data.binarize='none'`` takes MNIST's grey levels as they are: the first batch is named,
  and the fix."""
  config = tiny_config(name, **{'data.binarize': 'none'})
  with tfds.testing.mock_data(num_examples=64):
    with pytest.raises(ValueError, match=r"(?s)must be binary.*binarize='none' takes the data "
                                         r"as given; 'dynamic' or 'static' binarizes them"):
      density_train.train_and_evaluate(config, str(tmp_path))


def test_rbm_evaluation_agrees_with_the_exact_log_likelihood():
  """The evaluator's AIS log-likelihood (from the base-rate model) of an RBM small enough to
  enumerate (8 hidden units) is the exact one within 4 of its standard errors (about 0.02
  nats), and its free-energy term is exact."""
  config = tiny_config('rbm_mnist', **{'eval.ais_num_chains': 100, 'eval.ais_num_betas': 201})
  x = np.asarray(jax.random.bernoulli(jax.random.PRNGKey(1), 0.3, (16, 28, 28, 1)), np.float32)
  bias = rbm.base_rate_visible_bias(x)
  params = rbm.init_params(jax.random.PRNGKey(0), 784, 8, weight_scale=0.05, visible_bias=bias)
  evaluate = density_train.make_evaluator(config, None, x, key=jax.random.PRNGKey(2),
                                          base_visible_bias=bias)
  out = evaluate(density_train.init_state(params, optimizer=density_train.optimizer(config)))
  exact_log_z = float(rbm.log_partition_exact(params))
  exact = float(jnp.mean(rbm.log_likelihood(params, x, exact_log_z)))
  assert 0 < out['log_z_std_error'] < 0.05
  assert abs(out['log_z'] - exact_log_z) < 4 * out['log_z_std_error'], (out, exact_log_z)
  assert math.isclose(out['test_log_likelihood'] + out['log_z'], exact + exact_log_z,
                      rel_tol=1e-6)
