"""StyleGAN2 and PGGAN on the one driver (jaxgan.style_train): the lazy regularizers' Adam
correction by hand, PGGAN's schedule and optimizer reset, one-line config errors before anything
loads, tiny runs under ``tfds.testing.mock_data`` that resume bit for bit (PGGAN across a stage
boundary, with the untouched stage's parameters still at their initial values), and
``python -m jaxgan.sample --mode=style_mix --truncation=psi``.

The models' own exact tests are in tests/test_stylegan2.py and tests/test_pggan.py.
"""

import importlib.util
import json
import math
import os
import runpy
import shutil
from typing import NamedTuple

import jax
import jax.numpy as jnp
import matplotlib.image
import numpy as np
import optax
import pytest
import tensorflow_datasets as tfds
from chex import assert_trees_all_close

from jaxgan import checkpoint, game, pggan, sample, style_train, stylegan2

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = ('stylegan2_mnist', 'stylegan2_fashion_mnist', 'pggan_mnist', 'pggan_fashion_mnist')


def load_config(name):
  return runpy.run_path(os.path.join(ROOT, 'configs', f'{name}.py'))['get_config']()


def tiny_config(name, *, num_steps=4, every=2, resolution=8, **overrides):
  """``configs/<name>.py`` shrunk: widths 4, z/w of 8, a batch of 8, StyleGAN2's lazy terms
  every 2 steps (R1 with gamma 1), PGGAN's phases of 2 steps."""
  config = load_config(name)
  config.model.update({'resolution': resolution, 'channel_base': 32, 'channel_max': 4,
                       'latent_dim': 8})
  if config.trainer == 'stylegan2':
    config.model.mapping_depth = 1
    config.loss.update({'r1_every': 2, 'pl_every': 2, 'r1_gamma': 1.0})
  else:
    config.schedule.update({'fade_steps': 2, 'stable_steps': 2})
  config.train.update({'batch_size': 8, 'num_steps': num_steps, 'log_every': 1,
                       'sample_every': every, 'checkpoint_every': every, 'num_samples': 4})
  config.update_from_flattened_dict(overrides)
  return config


def _rows(workdir):
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    return [json.loads(line) for line in f]


def _timing_free(rows):
  return [{k: v for k, v in row.items() if k != 'steps_per_sec'} for row in rows]


# --- The lazy regularizers' optimizer correction (StyleGAN2, Appendix B) ---


def test_lazy_adam_hyperparameters_by_hand():
  # c = k / (k + 1): R1 every 16 steps, path length every 4; the paper's lr 0.002, betas (0, 0.99).
  d = style_train.lazy_adam_hyperparameters(learning_rate=0.002, b1=0.0, b2=0.99, every=16)
  assert d == pytest.approx({'c': 0.9411764705882353, 'learning_rate': 0.0018823529411764706,
                             'b1': 0.0, 'b2': 0.9905854573074332}, rel=1e-15)
  g = style_train.lazy_adam_hyperparameters(learning_rate=0.002, b1=0.5, b2=0.99, every=4)
  assert g == pytest.approx({'c': 0.8, 'learning_rate': 0.0016, 'b1': 0.5**0.8,
                             'b2': 0.9919919678228657}, rel=1e-15)
  assert style_train.lazy_adam_hyperparameters(learning_rate=0.002, b1=0.0, b2=0.99,
                                               every=1) == {'learning_rate': 0.002, 'b1': 0.0,
                                                            'b2': 0.99, 'c': 1.0}


@pytest.mark.parametrize('player,every', [('d', 16), ('g', 4)])
def test_stylegan2_optimizers_take_the_corrected_adam_steps(player, every):
  """Two Adam steps on one scalar with gradients 1 then 2 (beta_1 = 0): ``-lr' g / sqrt(nu_hat)``
  with ``nu_hat_1 = 1`` and ``nu_hat_2 = (b2' + 4) / (1 + b2')``, ``lr' = c lr``, ``b2' =
  b2^c``."""
  g_tx, d_tx = style_train.optimizers(load_config('stylegan2_mnist'))
  tx = {'g': g_tx, 'd': d_tx}[player]
  c = every / (every + 1)
  lr, b2 = 0.002 * c, 0.99**c
  params = {'w': jnp.zeros(())}
  state = tx.init(params)
  first, state = tx.update({'w': jnp.ones(())}, state, params)
  second, _ = tx.update({'w': 2 * jnp.ones(())}, state, params)
  np.testing.assert_allclose(first['w'], -lr / (1 + 1e-8), rtol=1e-5)
  np.testing.assert_allclose(second['w'], -lr * 2 / (math.sqrt((b2 + 4) / (1 + b2)) + 1e-8),
                             rtol=1e-5)  # b2 vs b2^c: 3e-4 apart.
  # Without the regularizer the player's Adam is the plain one.
  config = load_config('stylegan2_mnist')
  config.loss.update({'r1_gamma': 0.0, 'pl_weight': 0.0})
  plain = style_train.optimizers(config)[0 if player == 'g' else 1]
  plain_first, _ = plain.update({'w': jnp.ones(())}, plain.init(params), params)
  np.testing.assert_allclose(plain_first['w'], -0.002 / (1 + 1e-8), rtol=1e-5)


# --- PGGAN's schedule and optimizer reset ---


def test_phase_starts_and_step_variants_by_hand():
  """PGGAN's step variant is its stage; StyleGAN2's the lazy terms of the step (path length
  every 4 steps, R1 every 16, from step 0)."""
  config = tiny_config('pggan_mnist', resolution=32, **{'schedule.fade_steps': 3})
  generator, discriminator = style_train.build_models(config)
  variant = style_train.build_train_step(config, generator, discriminator).variant
  # Stage 0: steps 0-1; stage k >= 1 from 2 + 5 (k - 1) (3 fade steps, 2 stable).
  assert [variant(t) for t in range(19)] == [0] * 2 + [1] * 5 + [2] * 5 + [3] * 7
  config = load_config('stylegan2_mnist')
  assert (config.loss.pl_every, config.loss.r1_every) == (4, 16)
  terms = [style_train.lazy_terms(config, t) for t in range(33)]
  assert [t for t, (pl, _) in enumerate(terms) if pl] == [0, 4, 8, 12, 16, 20, 24, 28, 32]
  assert [t for t, (_, r1) in enumerate(terms) if r1] == [0, 16, 32]
  config.loss.update({'r1_gamma': 0.0, 'pl_weight': 0.0})
  assert {style_train.lazy_terms(config, t) for t in range(33)} == {(False, False)}
  config = tiny_config('pggan_mnist', resolution=32, **{'schedule.fade_steps': 3})
  # Stage 0: steps 0-1; stage k >= 1 fades from 2 + 5 (k - 1) for 3 steps, then 2 stable.
  assert style_train.phase_starts(config) == (2, 5, 7, 10, 12, 15)


def test_reset_at_restarts_the_inner_optimizer():
  inner = optax.adam(0.1, b1=0.9, b2=0.99)
  tx = style_train.reset_at(inner, (2,))
  params = {'w': jnp.ones(3)}
  state = tx.init(params)
  grads = [{'w': jnp.array([1.0, -2.0, 3.0]) * (i + 1)} for i in range(3)]
  for g in grads[:2]:
    _, state = tx.update(g, state, params)
  updates, state = tx.update(grads[2], state, params)
  # Update number 2 is the first update of a fresh Adam.
  fresh, fresh_state = inner.update(grads[2], inner.init(params), params)
  np.testing.assert_array_equal(updates['w'], fresh['w'])
  assert int(state.count) == 3 and int(state.inner[0].count) == 1 == int(fresh_state[0].count)


# --- Bad input: one line, before anything loads or compiles ---


@pytest.mark.parametrize('name,overrides,message', [
    ('stylegan2_mnist', {'model.resolution': 12},
     r'config.model.resolution must be a power of two >= 4 \(4, 8, 16, 32, ...\), got 12'),
    ('pggan_mnist', {'model.resolution': 2},
     r'config.model.resolution must be a power of two >= 4 .* got 2'),
    ('pggan_mnist', {'model.resolution': 64}, r'resolution=64: the 28x28 data are padded to 32x32'),
    ('stylegan2_mnist', {'model.style_mixing_probability': 1.5},
     r'config.model.style_mixing_probability=1.5 must be in \[0, 1\]'),
    ('stylegan2_mnist', {'model.style_mixing_probability': -0.1},
     r'style_mixing_probability=-0.1 must be in \[0, 1\]'),
    ('stylegan2_mnist', {'train.truncation_psi': -0.5},
     r'config.train.truncation_psi=-0.5 must be >= 0'),
    ('stylegan2_mnist', {'model.mapping_depth': 0},
     r'config.model.mapping_depth=0 must be an integer >= 1'),
    ('stylegan2_fashion_mnist', {'loss.r1_every': 0}, r'config.loss.r1_every=0, .* must be >= 1'),
    ('pggan_mnist', {'schedule.fade_steps': 0},
     r'config.schedule.fade_steps=0 and .* must be >= 1'),
    ('pggan_fashion_mnist', {'train.parallel': 'pmap'}, r'trains on one device here'),
    ('pggan_mnist', {'data.name': 'cifar10'}, r"config.data.name='cifar10': expected one of"),
], ids=['sg2_res12', 'pg_res2', 'pg_res64', 'mix_high', 'mix_low', 'psi', 'mapping', 'r1_every',
        'fade', 'parallel', 'dataset'])
def test_bad_configs_fail_in_one_line_before_loading(name, overrides, message, tmp_path):
  config = load_config(name)
  config.update_from_flattened_dict(overrides)
  # No mock data: a config that passed would try to load the real dataset (and fail otherwise).
  with pytest.raises(ValueError, match=message) as info:
    style_train.train_and_evaluate(config, str(tmp_path))
  assert '\n' not in str(info.value)
  assert not os.listdir(tmp_path)


def test_configs_are_the_papers_recipes():
  for name in CONFIGS:
    config = load_config(name)
    style_train.validate(config)
    assert config.trainer in style_train.SYSTEMS and config.model.resolution == 32
  sg2 = load_config('stylegan2_mnist').loss
  assert (sg2.r1_every, sg2.pl_every, sg2.pl_weight, sg2.pl_decay) == (16, 4, 2.0, 0.01)
  assert load_config('stylegan2_mnist').model.style_mixing_probability == 0.9
  pg = load_config('pggan_mnist')
  assert (pg.loss.gradient_penalty_weight, pg.loss.drift_epsilon) == (10.0, 1e-3)
  # 4x4 stable, then fade + stable at 8, 16 and 32, then 1,000 more steps at 32x32.
  assert pggan.stage_at(pg.train.num_steps - 1, fade_steps=1000, stable_steps=1000,
                        num_stages=4) == 3
  assert pg.schedule.stable_steps + 3 * (pg.schedule.fade_steps + pg.schedule.stable_steps) == 7000


# --- Tiny runs that resume bit for bit ---


def _killed_and_resumed(config, tmp_path, *, keep: int):
  """The straight run, and a copy "killed" after checkpoint ``keep`` (later checkpoints gone,
  its metrics rows left behind) run again."""
  straight, killed = tmp_path / 'straight', tmp_path / 'killed'
  with tfds.testing.mock_data(num_examples=32):
    expected = style_train.train_and_evaluate(config, str(straight))
    shutil.copytree(straight, killed)
    for step in os.listdir(killed / 'checkpoints'):
      if int(step) > keep:
        shutil.rmtree(killed / 'checkpoints' / step)
    assert os.listdir(killed / 'checkpoints') == [str(keep)]  # It resumes from step `keep`.
    resumed = style_train.train_and_evaluate(config, str(killed))
  return straight, killed, expected, resumed


@pytest.mark.slow  # About 40 s on 2 busy cores: the double backward of path length compiles.
def test_stylegan2_trains_and_resumes_bit_for_bit(tmp_path):
  """Four steps with R1 and path length every 2 steps, checkpointed at 2 and 4; resumed from 2
  it ends in the same state, bit for bit, with the same metrics rows. The lazy terms act on
  steps 0 and 2 only (rows 1 and 3), and ``a`` moves only there."""
  config = tiny_config('stylegan2_mnist')
  straight, killed, expected, resumed = _killed_and_resumed(config, tmp_path, keep=2)
  assert int(resumed.step) == 4
  assert_trees_all_close(expected, resumed, atol=0, rtol=0)
  assert _timing_free(_rows(straight)) == _timing_free(_rows(killed))
  rows = _rows(straight)
  assert [r['step'] for r in rows] == [1, 2, 3, 4]
  assert [r['r1_penalty'] > 0 for r in rows] == [True, False, True, False]
  assert [r['path_length_penalty'] > 0 for r in rows] == [True, False, True, False]
  means = [r['path_length_mean'] for r in rows]
  assert means[0] > 0 and means[1] == means[0] and means[2] != means[1] and means[3] == means[2]
  assert set(expected.g_batch_stats) == {'w_avg', 'path_length_mean'}
  assert float(expected.g_batch_stats['path_length_mean']) == pytest.approx(means[-1])
  assert np.abs(np.asarray(expected.g_batch_stats['w_avg'])).max() > 0  # w's average moved.
  assert sorted(os.listdir(straight / 'samples')) == ['step_2.png', 'step_4.png']
  assert matplotlib.image.imread(str(straight / 'samples' / 'step_4.png')).shape[:2] == (19, 19)


@pytest.mark.slow  # About 25 s on 2 busy cores.
def test_pggan_resumes_across_a_stage_boundary_bit_for_bit(tmp_path):
  """8x8 PGGAN with phases of 2 steps: steps 0-1 at 4x4, 2-3 fading in 8x8 (alpha 0, 1/2), 4-5
  at 8x8. Checkpointed at 2, 4 and 6; killed after the boundary checkpoint (2) it resumes into
  the fade to the same state bit for bit. The 8x8 layers had zero gradients at 4x4 and Adam's
  beta_1 = 0 left them at their initial values; Adam was reset at steps 2 and 4. A config of
  other widths is still refused."""
  config = tiny_config('pggan_mnist', num_steps=6, **{'train.keep_checkpoints': 3})
  straight, killed, expected, resumed = _killed_and_resumed(config, tmp_path, keep=2)
  assert int(resumed.step) == 6
  assert_trees_all_close(expected, resumed, atol=0, rtol=0)
  rows = _rows(straight)
  assert _timing_free(rows) == _timing_free(_rows(killed))
  assert [r['alpha'] for r in rows] == [1.0, 1.0, 0.0, 0.5, 1.0, 1.0]
  assert [r['resolution'] for r in rows] == [4, 4, 8, 8, 8, 8]
  assert [r['step'] for r in _rows(killed)] == [1, 2, 3, 4, 5, 6]
  # The boundary checkpoint: the 8x8 layers exactly as initialized.
  generator, discriminator = style_train.build_models(config)
  init_key = jax.random.split(jax.random.PRNGKey(config.seed), 4)[0]
  initial = style_train.init_state(config, init_key, generator, discriminator)
  _, at_boundary = checkpoint.load(str(straight), step=2)
  for player, names in (('g_params', ('block_8', 'to_rgb_8')), ('d_params', ('from_rgb_8',
                                                                            'block_8'))):
    for name in names:
      assert_trees_all_close(at_boundary[player][name], getattr(initial, player)[name],
                             atol=0, rtol=0)
    trained = jax.tree.leaves(at_boundary[player]['block_4'])
    assert not any(np.array_equal(a, b) for a, b in zip(
        trained, jax.tree.leaves(getattr(initial, player)['block_4']), strict=True))
  # Resets at the phase starts 2 (fade) and 4 (stable): 2 updates since the last.
  assert int(expected.g_opt_state.count) == 6 and int(expected.g_opt_state.inner[0].count) == 2
  assert sorted(os.listdir(straight / 'samples')) == [
      'resolution_4.png', 'resolution_8.png', 'step_2.png', 'step_4.png', 'step_6.png']
  # 4 samples of 4x4 in a 2x2 grid (1-pixel borders): 11 pixels; of 8x8: 19.
  assert matplotlib.image.imread(str(straight / 'samples' / 'resolution_4.png')).shape[:2] == (
      11, 11)
  assert matplotlib.image.imread(str(straight / 'samples' / 'step_6.png')).shape[:2] == (19, 19)
  # A real mismatch (other widths) still raises, naming the arrays.
  other = tiny_config('pggan_mnist', num_steps=8, **{'model.channel_max': 8})
  with tfds.testing.mock_data(num_examples=32):
    with pytest.raises(checkpoint.CheckpointMismatchError, match=r'written by a different '
                                                                 r'config: .*block_'):
      style_train.train_and_evaluate(other, str(killed))


@pytest.mark.slow  # About 30 s on 2 busy cores (the driver's compilations).
def test_pggan_4x4_trains_one_chunk_and_resumes(tmp_path):
  """A 4x4 PGGAN (one stage), two steps checkpointed at 1, resumed from 1 to the same state
  bit for bit."""
  config = tiny_config('pggan_mnist', num_steps=2, every=1, resolution=4)
  straight, killed, expected, resumed = _killed_and_resumed(config, tmp_path, keep=1)
  assert isinstance(resumed, game.GANState) and int(resumed.step) == 2
  assert_trees_all_close(expected, resumed, atol=0, rtol=0)
  assert _timing_free(_rows(straight)) == _timing_free(_rows(killed))
  assert all(np.isfinite(r['d_loss']) and r['resolution'] == 4 for r in _rows(straight))


def test_pggan_first_step_drift_and_schedule_by_hand():
  """The default run's check of a step: one jitted PGGAN step at 4x4 from the initial state on a
  hand-made batch; its drift metric is ``1e-3 mean(D(x)^2)`` of the initial D on the batch, its
  alpha 1 and resolution 4, and the state advanced to step 1 with G's moving average moved."""
  config = tiny_config('pggan_mnist', resolution=4)
  generator, discriminator = style_train.build_models(config)
  state = style_train.init_state(config, jax.random.PRNGKey(0), generator, discriminator)
  x = jnp.linspace(-1.0, 1.0, 8 * 16).reshape((8, 4, 4, 1))
  steps = style_train.build_train_step(config, generator, discriminator)
  step = jax.jit(steps.train_step(steps.variant(0)))
  new, m = step(state, {'x': x}, jax.random.PRNGKey(1))
  real_logits = discriminator.apply({'params': state.d_params}, x)
  np.testing.assert_allclose(m['drift'], 1e-3 * np.mean(np.square(real_logits)), rtol=1e-5)
  np.testing.assert_allclose(m['d_real'], np.mean(real_logits), rtol=1e-5)
  assert (float(m['alpha']), float(m['resolution']), int(new.step)) == (1.0, 4.0, 1)
  assert np.isfinite([m['d_loss'], m['g_loss'], m['gradient_penalty']]).all()
  assert not np.array_equal(new.ema_g_params['block_4']['conv1']['kernel'],
                            state.ema_g_params['block_4']['conv1']['kernel'])


def test_stylegan2_lazy_r1_step_adds_its_weighted_term_by_hand():
  """StyleGAN2's step with lazy R1 (``r1_every = 2``, ``gamma = 1``) and the plain step, each a
  compiled step of its own (no conditional), from the same state and batch: the R1 step's D
  loss is the plain one plus ``every * gamma / 2 * mean ||grad_x D(x)||^2``, that term computed
  here by hand from the initial D; the plain step reports 0."""
  config = tiny_config('stylegan2_mnist', **{'loss.pl_weight': 0.0})
  generator, discriminator = style_train.build_models(config)
  state = style_train.init_state(config, jax.random.PRNGKey(0), generator, discriminator)
  steps = style_train.build_train_step(config, generator, discriminator)
  assert steps.variant(0) == (False, True) and steps.variant(1) == (False, False)
  x = jnp.linspace(-1.0, 1.0, 8 * 64).reshape((8, 8, 8, 1))
  key = jax.random.PRNGKey(1)
  _, lazy = jax.jit(steps.train_step((False, True)))(state, {'x': x}, key)
  _, plain = jax.jit(steps.train_step((False, False)))(state, {'x': x}, key)
  d_sum = lambda x: jnp.sum(discriminator.apply({'params': state.d_params}, x))
  grads = np.asarray(jax.grad(d_sum)(x)).reshape(8, -1)
  by_hand = 2 * 1.0 / 2 * np.mean(np.sum(grads**2, axis=1))
  assert by_hand > 0 and float(plain['r1_penalty']) == 0.0
  np.testing.assert_allclose(lazy['r1_penalty'], by_hand, rtol=1e-4)
  np.testing.assert_allclose(lazy['d_loss'] - plain['d_loss'], by_hand, rtol=1e-3)
  np.testing.assert_allclose(lazy['d_real'], plain['d_real'], rtol=1e-6)  # Same D, same x.


# --- Sampling: the style-mixing grid and truncation ---


def _stylegan2_workdir(tmp_path, **overrides):
  """A StyleGAN2 "run" without training: config.json and the checkpoint of the initial state
  (random weights, ``w_avg = 0``, noise strengths 0)."""
  config = tiny_config('stylegan2_mnist', **overrides)
  generator, discriminator = style_train.build_models(config)
  state = style_train.init_state(config, jax.random.PRNGKey(0), generator, discriminator)
  workdir = str(tmp_path / 'run')
  os.makedirs(workdir)
  with open(os.path.join(workdir, 'config.json'), 'w') as f:
    f.write(config.to_json_best_effort())
  manager = checkpoint.manager(workdir, keep=1)
  manager.save(0, args=checkpoint.save_args(state))
  manager.wait_until_finished()
  manager.close()
  return workdir, config, generator, state


@pytest.mark.slow  # About 35 s on 2 busy cores (the jitted mapping and synthesis compile).
def test_style_mix_cells_are_the_mixed_styles():
  """Cell ``(i + 1, j + 1)`` of the grid is the synthesis of ``style_mix(w_j, w_i, cutoff)``;
  cutoff ``L`` repeats the coarse sources and 0 the fine ones; ``psi = 0`` draws ``w_avg`` for
  every latent (identical images: the initial noise strengths are 0), ``psi = 1`` does not."""
  config = tiny_config('stylegan2_mnist')
  generator, discriminator = style_train.build_models(config)
  state = style_train.init_state(config, jax.random.PRNGKey(0), generator, discriminator)
  key = jax.random.PRNGKey(3)
  images = sample.style_mix_images(config, generator, state, key, rows=2, columns=3)
  assert images.shape == (12, 8, 8, 1)
  np.testing.assert_array_equal(images[0], np.ones((8, 8, 1)))
  variables = {'params': state.ema_g_params,
               'batch_stats': {'w_avg': state.g_batch_stats['w_avg']}}
  ws = generator.apply(variables, jax.random.normal(key, (5, 8)),
                       method=stylegan2.Generator.mapping)
  num_ws = generator.num_ws
  assert num_ws == 4
  for i in range(2):
    for j in range(3):
      mixed = stylegan2.style_mix(ws[j:j + 1], ws[3 + i:4 + i], num_ws // 2)
      want = generator.apply(variables, mixed, method=stylegan2.Generator.synthesize)[0]
      np.testing.assert_allclose(images[4 * (i + 1) + j + 1], want, atol=1e-5)
  top = sample.style_mix_images(config, generator, state, key, rows=2, columns=3, cutoff=num_ws)
  np.testing.assert_allclose(top[5:8], top[1:4], atol=1e-5)
  np.testing.assert_allclose(top[9:12], top[1:4], atol=1e-5)
  left = sample.style_mix_images(config, generator, state, key, rows=2, columns=3, cutoff=0)
  for i in range(2):
    np.testing.assert_allclose(left[4 * (i + 1) + 1:4 * (i + 2)],
                               np.repeat(left[4 * (i + 1)][None], 3, axis=0), atol=1e-5)
  draw = style_train.make_sampler(config, generator)
  flat = draw(state, key, 6, psi=0.0)
  np.testing.assert_array_equal(flat, np.repeat(flat[:1], 6, axis=0))
  varied = draw(state, key, 6)
  assert np.abs(varied - varied[:1]).max() > 1e-3


def test_sample_rejects_a_negative_truncation_before_loading(tmp_path):
  with pytest.raises(ValueError, match=r'^truncation psi must be >= 0, got -1.0$'):
    sample.write(str(tmp_path), 'grid', truncation=-1.0)  # No run there: nothing was read.


@pytest.mark.slow  # About 30 s on 2 busy cores.
def test_sample_cli_writes_style_mix_and_truncated_grids(tmp_path):
  """``jaxgan.sample.write`` on a StyleGAN2 run: the style-mixing grid and a truncated grid of
  the right sizes; modes a StyleGAN2 run does not draw and a cutoff past the last style input
  fail in one line."""
  workdir, *_ = _stylegan2_workdir(tmp_path)
  path = sample.write(workdir, 'style_mix', rows=2, columns=3, truncation=0.5)
  # 3 rows and 4 columns of 8x8 cells with 1-pixel borders.
  assert matplotlib.image.imread(path).shape[:2] == (3 * 9 + 1, 4 * 9 + 1)
  path = sample.write(workdir, 'grid', rows=2, columns=3, truncation=0.0)
  assert matplotlib.image.imread(path).shape[:2] == (2 * 9 + 1, 3 * 9 + 1)
  with pytest.raises(ValueError, match=r"mode 'interpolate' is not drawn for "
                                       r"config.trainer='stylegan2'"):
    sample.write(workdir, 'interpolate')
  with pytest.raises(ValueError, match=r'mix cutoff must be in \[0, 4\]'):
    sample.write(workdir, 'style_mix', mix_cutoff=5)


# --- benchmarks/image_quality.py's StyleGAN2/PGGAN rows ---


def _benchmark():
  spec = importlib.util.spec_from_file_location('image_quality_benchmark',
                                                os.path.join(ROOT, 'benchmarks',
                                                             'image_quality.py'))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


class _Extractor(NamedTuple):
  """A stand-in for the shipped classifier: features are the 28x28 pixels' 4x4 block means,
  "digits" the argmax of 10 fixed linear functions of them."""

  features: object
  probs: object


def _fake_extractor():
  weights = np.asarray(jax.random.normal(jax.random.PRNGKey(7), (49, 10)))
  features = lambda x: np.asarray(x).reshape((-1, 7, 4, 7, 4)).mean(axis=(2, 4)).reshape(-1, 49)
  probs = lambda x: np.asarray(jax.nn.softmax(features(x) @ weights))
  return _Extractor(features, probs)


@pytest.mark.slow  # About 35 s on 2 busy cores.
def test_benchmark_mixing_fractions_and_path_lengths():
  """A cutoff past the last style input makes every mixed image its coarse source (fraction 1
  exactly), a cutoff of 0 its fine source; constant features have path length 0; on a random G
  both path lengths are finite and positive."""
  bench = _benchmark()
  config = tiny_config('stylegan2_mnist')
  generator, discriminator = style_train.build_models(config)
  state = style_train.init_state(config, jax.random.PRNGKey(0), generator, discriminator)
  extractor, key = _fake_extractor(), jax.random.PRNGKey(5)
  coarse = bench.mixing_fractions(extractor, generator, state, key, 16, latent_dim=8,
                                  cutoff=generator.num_ws)
  fine = bench.mixing_fractions(extractor, generator, state, key, 16, latent_dim=8, cutoff=0)
  assert coarse['mix_coarse_fraction'] == 1.0 and fine['mix_fine_fraction'] == 1.0
  flat = _Extractor(lambda x: np.zeros((len(x), 3)), extractor.probs)
  assert bench.perceptual_path_length(flat, generator, state, key, 16, latent_dim=8,
                                      space='w') == 0.0
  for space in ('z', 'w'):
    ppl = bench.perceptual_path_length(extractor, generator, state, key, 64, latent_dim=8,
                                       space=space)
    assert np.isfinite(ppl) and ppl > 0, (space, ppl)


@pytest.mark.slow  # About 30 s on 2 busy cores.
def test_benchmark_trains_a_style_config_for_its_budget():
  """A spent budget stops PGGAN (4x4) at the first chunk's end (``log_every`` steps), trained by
  style_train; its samples come back as the classifier's 28x28 inputs."""
  bench = _benchmark()
  config = tiny_config('pggan_mnist', num_steps=6, resolution=4, **{'train.log_every': 2})
  with tfds.testing.mock_data(num_examples=32):
    generator, state, steps, _, _ = bench.train_for_budget(config, 0.0)
  assert steps == int(state.step) == 2 and isinstance(generator, pggan.ProgressiveGenerator)
  images = bench.style_samples(config, generator, state, jax.random.PRNGKey(0), 3)
  assert images.shape == (3, 28, 28, 1) and np.isfinite(images).all()
