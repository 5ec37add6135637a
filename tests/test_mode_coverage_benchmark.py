"""benchmarks/mode_coverage.py: the vmapped, scanned program equals seeds trained one at a time."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import pathlib
import sys

import chex
import jax
import numpy as np
import pytest

from jaxgan import data, train

ROOT = pathlib.Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location('mode_coverage_benchmark',
                                               ROOT / 'benchmarks' / 'mode_coverage.py')
bench = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = bench  # dataclasses look their module up there
_spec.loader.exec_module(bench)

TINY = bench.Method('tiny', g_hidden=(8,), d_hidden=(8,), batch_size=16, num_steps=6,
                    step={'pack': 2})


def test_seed_devices_is_the_most_devices_that_divide_the_seeds():
  devices = list(range(8))  # stand-ins: only the count and the order matter
  assert bench.seed_devices(10, devices) == [0, 1, 2, 3, 4]
  assert bench.seed_devices(10, devices[:2]) == [0, 1]
  assert bench.seed_devices(8, devices) == devices
  assert bench.seed_devices(7, devices) == devices[:7]
  assert bench.seed_devices(7, devices[:2]) == [0]
  assert bench.seed_devices(3, devices[:2]) == [0]


def test_vmap_over_seeds_equals_seeds_one_at_a_time():
  # Two seeds on two of the 8 fake CPU devices (conftest), each alone on one device.
  states, samples, timing = bench.train_seeds(TINY, 'ring', [3, 5], chunk=3)
  assert timing['num_devices'] == 2
  assert len(states.g_params['Dense_0']['kernel'].sharding.device_set) == 2
  for i, seed in enumerate([3, 5]):
    alone_states, alone_samples, _ = bench.train_seeds(TINY, 'ring', [seed], chunk=3)
    chex.assert_trees_all_close(bench.seed_state(states, i),
                                bench.seed_state(alone_states, 0), rtol=1e-5, atol=1e-6)
    chex.assert_trees_all_close(samples[i], alone_samples[0], rtol=1e-5, atol=1e-6)
  assert not np.allclose(samples[0], samples[1])  # the seeds do differ


def test_scanned_program_equals_a_plain_python_loop_of_train_steps():
  seed = 7
  states, samples, _ = bench.train_seeds(TINY, 'ring', [seed], chunk=2)
  generator, discriminator, step, g_opt, d_opt = bench.build(TINY, 'ring')
  init_key, step_key, data_key, eval_key = jax.random.split(jax.random.PRNGKey(seed), 4)
  state = train.init_state(init_key, generator=generator, discriminator=discriminator,
                           g_optimizer=g_opt, d_optimizer=d_opt, latent_dim=2, data_shape=(2,),
                           pack=2)
  scale = np.sqrt(0.5)  # the ring's per-coordinate std: the benchmark standardizes the data
  for t in range(TINY.num_steps):
    x = data.ring(jax.random.fold_in(data_key, t), 16) / scale
    state, _ = step(state, {'x': x}, step_key)
  chex.assert_trees_all_close(bench.seed_state(states, 0), state, rtol=1e-5, atol=1e-6)
  z = train.sample_latent(eval_key, bench.NUM_EVAL_SAMPLES, 2, 'normal')
  chex.assert_trees_all_close(samples[0], scale * generator.apply({'params': state.g_params}, z),
                              rtol=1e-5, atol=1e-5)


def test_ema_method_is_scored_on_the_hand_computed_average_of_g_weights():
  method = dataclasses.replace(TINY, ema_decay=0.5)
  seed = 4
  states, samples, _ = bench.train_seeds(method, 'ring', [seed], chunk=3)
  generator, discriminator, step, g_opt, d_opt = bench.build(method, 'ring')
  init_key, step_key, data_key, eval_key = jax.random.split(jax.random.PRNGKey(seed), 4)
  state = train.init_state(init_key, generator=generator, discriminator=discriminator,
                           g_optimizer=g_opt, d_optimizer=d_opt, latent_dim=2, data_shape=(2,),
                           pack=2, ema=True)
  ema = state.g_params
  for t in range(method.num_steps):
    x = data.ring(jax.random.fold_in(data_key, t), 16) / np.sqrt(0.5)
    state, _ = step(state, {'x': x}, step_key)
    d = min(0.5, (1 + t) / (10 + t))  # the warm-up: 1/10, 2/11, ... all below 0.5 here
    ema = jax.tree.map(lambda e, p, d=d: d * e + (1 - d) * p, ema, state.g_params)
  chex.assert_trees_all_close(bench.seed_state(states, 0).ema_g_params, ema,
                              rtol=1e-5, atol=1e-6)
  z = train.sample_latent(eval_key, bench.NUM_EVAL_SAMPLES, 2, 'normal')
  chex.assert_trees_all_close(samples[0], np.sqrt(0.5) * generator.apply({'params': ema}, z),
                              rtol=1e-5, atol=1e-5)
  raw = np.sqrt(0.5) * generator.apply({'params': state.g_params}, z)
  assert not np.allclose(samples[0], raw, atol=1e-4)  # the average, not the last weights


def test_best_recipe_is_per_dataset_and_table_has_the_issues_methods():
  best = bench.METHODS['best']
  ring, grid = best.for_dataset('ring'), best.for_dataset('grid')
  # A per-dataset entry replaces the whole field: the ring's step options are its own.
  assert ring.step == {'r1_gamma': 0.001} and grid.step == {'r1_gamma': 0.01}
  assert dataclasses.replace(ring, step=grid.step) == grid  # nothing else differs
  assert ring.per_dataset == grid.per_dataset == {}
  # The ablation is best without R1, and nothing else.
  assert dataclasses.replace(bench.METHODS['best_without_r1'], label=best.label, step={}) == (
      dataclasses.replace(grid, step={}))
  assert set(bench.TABLE) == {'best', 'vanilla', 'minimax', 'feature_matching',
                              'minibatch_discrimination', 'pacgan2', 'r1', 'unrolled', 'wgan_gp'}


@pytest.mark.parametrize('dataset', ['ring', 'grid'])
def test_cli_best_configs_are_the_benchmarks_best_recipe(dataset):
  spec = importlib.util.spec_from_file_location('best_config',
                                                ROOT / 'configs' / f'mog_{dataset}_best.py')
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  c, m = module.get_config(), bench.METHODS['best'].for_dataset(dataset)
  assert (c.data.name, c.data.standardize) == (dataset, m.standardize)
  assert (tuple(c.model.g_hidden), tuple(c.model.d_hidden)) == (m.g_hidden, m.d_hidden)
  assert (c.model.latent_dim, c.model.latent_distribution) == (m.latent_dim,
                                                               m.latent_distribution)
  assert (c.model.bias_scale, c.loss.name, c.loss.r1_gamma) == (m.bias_scale, m.loss,
                                                                m.step['r1_gamma'])
  assert (c.train.num_steps, c.train.batch_size) == (m.num_steps, m.batch_size)
  assert (c.train.g_lr, c.train.d_lr, c.train.b1, c.train.b2) == (m.g_lr, m.d_lr, m.b1, m.b2)
  assert c.model.activation == m.g_activation == m.d_activation
  assert (c.train.lr_final_fraction, c.train.ema_decay) == (m.final_lr_fraction, m.ema_decay)


def test_summary_is_mean_and_standard_error():
  s = bench.summarize([1.0, 2.0, 3.0, 6.0])  # mean 3, sample std sqrt(14/3), se = that / 2
  np.testing.assert_allclose(s['mean'], 3.0)
  np.testing.assert_allclose(s['se'], np.sqrt(14 / 3) / 2)
  assert s['num_infinite'] == 0
  s = bench.summarize([1.0, np.inf, 3.0])  # a seed without high-quality samples
  assert (s['mean'], s['num_infinite']) == (2.0, 1)


@pytest.mark.slow
def test_main_writes_json_and_plots(tmp_path):
  out = tmp_path / 'r.json'
  bench.main(['--methods=vanilla', '--datasets=ring', '--seeds=2', '--num_steps=20',
              f'--out={out}', f'--plots={tmp_path}'])
  result = json.loads(out.read_text())
  row = result['methods']['vanilla']['ring']
  assert len(row['per_seed']['modes']) == 2 and 0 <= row['modes']['mean'] <= 8
  assert (tmp_path / 'vanilla.png').stat().st_size < 200_000
