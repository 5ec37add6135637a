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

from jaxgan import data, loop, train

ROOT = pathlib.Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location('mode_coverage_benchmark',
                                               ROOT / 'benchmarks' / 'mode_coverage.py')
bench = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = bench  # dataclasses look their module up there
_spec.loader.exec_module(bench)

TINY = bench.Method('tiny', g_hidden=(8,), d_hidden=(8,), batch_size=16, num_steps=6,
                    step={'pack': 2})


def _jitted_init(method, generator, discriminator, g_opt, d_opt):
  """``key -> train.init_state(key, ...)`` for one seed of ``method``, jitted (run eagerly, it
  compiles many small ops one by one)."""
  return jax.jit(lambda key: train.init_state(
      key, generator=generator, discriminator=discriminator, g_optimizer=g_opt,
      d_optimizer=d_opt, latent_dim=method.latent_dim, data_shape=(2,),
      pack=method.step.get('pack', 1), ema=bool(method.ema_decay)))


def test_seed_devices_is_the_most_devices_that_divide_the_seeds():
  devices = list(range(8))  # stand-ins: only the count and the order matter
  assert bench.seed_devices(10, devices) == [0, 1, 2, 3, 4]
  assert bench.seed_devices(10, devices[:2]) == [0, 1]
  assert bench.seed_devices(8, devices) == devices
  assert bench.seed_devices(7, devices) == devices[:7]
  assert bench.seed_devices(7, devices[:2]) == [0]
  assert bench.seed_devices(3, devices[:2]) == [0]


def test_seeds_source_draws_the_batches_of_each_seeds_toy_source():
  keys = jax.random.split(jax.random.PRNGKey(0), 2)
  many = loop.seeds_source('grid', keys, 5, scale=2.0)
  plan = many.plan(4, 3)  # steps 4, 5, 6 for both seeds, bit for bit as each alone
  for i in range(2):
    alone = loop.toy_source('grid', keys[i], 5, scale=2.0)
    alone_plan = alone.plan(4, 3)
    for j in range(3):
      np.testing.assert_array_equal(many.batch(many.data, plan[i][j])['x'],
                                    alone.batch(alone.data, alone_plan[j])['x'])
  assert not np.array_equal(plan[0], plan[1])


@pytest.fixture(scope='module')
def two_seeds():
  """TINY on the ring, seeds 3 and 5 at once on two of the 8 fake CPU devices (conftest)."""
  return bench.train_seeds(TINY, 'ring', [3, 5], chunk=3)


def _fingerprint(state, samples):
  """Sums of G's and D's parameters and of D's first-layer Adam second moments, and the
  samples' mean and std per coordinate, in float64."""
  total = lambda tree: sum(float(np.sum(np.asarray(x, np.float64))) for x in jax.tree.leaves(tree))
  samples = np.asarray(samples, np.float64)
  return [total(state.g_params), total(state.d_params),
          total(state.d_opt_state[0].nu['Dense_0']['kernel']),
          *samples.mean(axis=0), *samples.std(axis=0)]


# From the pre-port train_seeds (its own vmapped lax.scan) at commit b10e7f6, the program that
# produced the table's results (benchmarks/results/mode_coverage*.json), before it moved onto
# jaxgan.loop's chunk (loop.over_seeds). The port was bit-identical, on 8 and on 2 devices, for
# TINY, lazy R1, EMA, 'best' (10 seeds) and WGAN-GP; the tolerance is for other XLA builds.
GOLDEN = {
    3: [-4.147600392811, -1.6578111560083926, 0.0013477048140724257,
        -0.3910235054582241, 0.10120004886115948, 0.3650615069278481, 0.35372347721742986],
    5: [-4.669835029053502, 0.47208607103675604, 0.001273946770368184,
        -0.6831581652373075, 0.12268487331103534, 0.4642578311568991, 0.42142623940442886],
}


def test_two_seeds_reproduce_the_pre_port_golden_fingerprint(two_seeds):
  states, samples, _ = two_seeds
  assert int(states.step) == TINY.num_steps
  for i, seed in enumerate([3, 5]):
    np.testing.assert_allclose(_fingerprint(bench.seed_state(states, i), samples[i]),
                               GOLDEN[seed], rtol=1e-6, atol=0)


def test_vmap_over_seeds_equals_seeds_one_at_a_time(two_seeds):
  states, samples, timing = two_seeds
  assert timing['num_devices'] == 2
  assert len(states.g_params['Dense_0']['kernel'].sharding.device_set) == 2
  # Each seed alone through the driver's own chunk, not vmapped, on one device. A toy source's
  # batch function depends on the seed only through its data and plan (the chunk's arguments),
  # so one compiled chunk serves both seeds.
  generator, discriminator, step, g_opt, d_opt = bench.build(TINY, 'ring')
  scale = np.sqrt(0.5)  # the ring's per-coordinate std: the benchmark standardizes the data
  init, chunk = _jitted_init(TINY, generator, discriminator, g_opt, d_opt), None
  for i, seed in enumerate([3, 5]):
    init_key, step_key, data_key, eval_key = jax.random.split(jax.random.PRNGKey(seed), 4)
    source = loop.toy_source('ring', data_key, TINY.batch_size, scale=scale)
    chunk = chunk or jax.jit(loop.make_chunk(step, source.batch))
    state = init(init_key)
    for first, length in loop.chunk_ends(0, TINY.num_steps, 3):
      state, _ = chunk(state, source.data, source.plan(first, length), step_key)
    chex.assert_trees_all_close(bench.seed_state(states, i), state, rtol=1e-5, atol=1e-6)
    z = train.sample_latent(eval_key, bench.NUM_EVAL_SAMPLES, 2, 'normal')
    chex.assert_trees_all_close(samples[i], scale * generator.apply({'params': state.g_params}, z),
                                rtol=1e-5, atol=1e-5)
  assert not np.allclose(samples[0], samples[1])  # the seeds do differ


@pytest.mark.slow  # 20 s on 2 cores; tests/test_loop.py checks scanned = stepwise chunks.
def test_scanned_program_equals_a_plain_python_loop_of_train_steps():
  seed = 7
  states, samples, _ = bench.train_seeds(TINY, 'ring', [seed], chunk=2)
  generator, discriminator, step, g_opt, d_opt = bench.build(TINY, 'ring')
  init_key, step_key, data_key, eval_key = jax.random.split(jax.random.PRNGKey(seed), 4)
  state = _jitted_init(TINY, generator, discriminator, g_opt, d_opt)(init_key)
  step = jax.jit(step)  # one dispatch per step, as a plain training loop runs it
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
  state = _jitted_init(method, generator, discriminator, g_opt, d_opt)(init_key)
  step = jax.jit(step)
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
  assert ring.step == {'r1_gamma': 0.003} and grid.step == {'r1_gamma': 0.01}
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
