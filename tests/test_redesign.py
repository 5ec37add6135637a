"""Issue 16: the redesigned core (one game step, parts in their modules, no import cycles) and a
test per bug the audit found: the caller's state survives a donated step, every technique gives
the same result on 8 devices as on one, config options said once, the averaged G's standing
statistics, G's batch norm updated once per step, raw critic values, lazy R1's Adam correction
and the lazy package."""

from __future__ import annotations

import ast
import functools
import importlib.util
import inspect
import json
import os
import subprocess
import sys

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.sharding import PartitionSpec as P

from jaxgan import (
  conditional,
  experiment,
  game,
  gan,
  losses,
  mode_collapse,
  models,
  parallel,
  penalties,
  semi_supervised,
  semi_supervised_train,
)
from jaxgan import config as config_lib

LATENT = 3
K = 3  # classes
PACKAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'jaxgan')


class BNGenerator(nn.Module):
  """z -> Dense(4) -> BatchNorm -> ReLU -> Dense(2): the BN input is ``z @ W + b`` by hand."""

  @nn.compact
  def __call__(self, z, train: bool = False):
    h = nn.Dense(4)(z)
    h = nn.BatchNorm(use_running_average=not train, momentum=0.9)(h)
    return nn.Dense(2)(nn.relu(h))


class ConditionalACGANDiscriminator(nn.Module):
  """A tiny conditional AC-GAN D: sees ``x`` and the one-hot label (zeros without labels) and
  returns ``(logits (B,), class_logits (B, K))`` from one hidden layer."""

  @nn.compact
  def __call__(self, x, labels=None, train: bool = False):
    del train
    code = (jnp.zeros((x.shape[0], K)) if labels is None else jax.nn.one_hot(labels, K))
    h = nn.relu(nn.Dense(16)(jnp.concatenate([x.reshape((x.shape[0], -1)), code], -1)))
    return nn.Dense(1)(h)[:, 0], nn.Dense(K)(h)


def _mlp():
  return models.MLPGenerator(hidden=(16,), data_shape=(2,)), models.MLPDiscriminator(hidden=(16,))


def _init(g, d, tx=None, **kwargs):
  tx = tx or optax.adam(1e-2, b1=0.5)
  return gan.init_state(jax.random.PRNGKey(0), generator=g, discriminator=d, g_optimizer=tx,
                        d_optimizer=tx, latent_dim=LATENT, data_shape=(2,), **kwargs)


def _step(g, d, tx=None, **kwargs):
  tx = tx or optax.adam(1e-2, b1=0.5)
  return gan.make_train_step(generator=g, discriminator=d, g_optimizer=tx, d_optimizer=tx,
                             latent_dim=LATENT, **kwargs)


def _batch(n, seed=1):
  kx, ky = jax.random.split(jax.random.PRNGKey(seed))
  return {'x': jax.random.normal(kx, (n, 2)), 'label': jax.random.randint(ky, (n,), 0, K)}


def _keys(key, step=0):
  """``(k_shared, k_d, k_g)`` of a game step (the layout of :mod:`jaxgan.game`'s docstring)."""
  return jax.random.split(jax.random.fold_in(key, step), 3)


def _conditional_acgan():
  g = conditional.ConditionalGenerator(models.MLPGenerator(hidden=(16,), data_shape=(2,)), K)
  return g, ConditionalACGANDiscriminator()


# Techniques are combined (each case compiles three steps, seconds each); the tests of
# gradient_penalty and add_instance_noise below check those two parts alone. The conditional
# case has labels in the batch (D's input, AC-GAN's real targets) and drawn fake labels.
CASES = {
    'wgan_gp_2_critic_steps': (_mlp, dict(d_loss_fn=losses.wasserstein_discriminator_loss,
                                          g_loss_fn=losses.wasserstein_generator_loss,
                                          gradient_penalty_weight=10.0, num_d_steps=2)),
    'lazy_r1_instance_noise': (_mlp, dict(r1_gamma=1.0, r1_every=2, instance_noise=0.3)),
    'conditional_acgan': (_conditional_acgan, dict(num_classes=K,
                                                   auxiliary_classifier_weight=1.0)),
}
SGD = optax.sgd(0.02)  # Compiles faster than Adam.
NUM_STEPS = 3  # lazy R1: on at steps 0 and 2, off at 1.


@functools.cache
def _parallel(case, mode):
  """``(DataParallel, g, d)`` of a case, built once: its compiled step is shared by tests."""
  make, kwargs = CASES[case]
  g, d = make()
  axis = None if mode == 'none' else parallel.AXIS_NAME
  return parallel.parallelize(_step(g, d, SGD, axis_name=axis, **kwargs), mode), g, d


def _run(case, mode):
  dp, g, d = _parallel(case, mode)
  state = dp.put_state(_init(g, d, SGD))
  batch = dp.put_batch(_batch(16 * CASES[case][1].get('num_d_steps', 1)))
  for _ in range(NUM_STEPS):
    state, metrics = dp.step(state, batch, jax.random.PRNGKey(2))
  return (jax.device_get(dp.get_state(state)),
          {k: np.asarray(v).reshape(-1)[0] for k, v in jax.device_get(metrics).items()})


@functools.cache
def _single_device(case):
  return _run(case, 'none')


# --- Bug 1: put_state copies; a donated step never deletes the caller's buffers.

@pytest.mark.parametrize('mode', ['none', 'pmap', 'shard_map'])
def test_put_state_copies_so_a_donated_step_leaves_the_callers_state(mode):
  dp, g, d = _parallel('lazy_r1_instance_noise', mode)
  state = _init(g, d, SGD)
  # A copy made on the device: reading the state to the host first would hide the aliasing
  # (device_put then uploads the host copy).
  before = jax.tree.map(jnp.copy, state)
  batch, key = dp.put_batch(_batch(16)), jax.random.PRNGKey(2)
  dp_state = dp.put_state(state)
  new, _ = dp.step(dp_state, batch, key)
  jax.block_until_ready(new)
  leaves = jax.tree.leaves(state)
  assert len(leaves) >= 9
  assert not any(x.is_deleted() for x in leaves)
  chex.assert_trees_all_equal(jax.device_get(state), jax.device_get(before))
  # The caller's state still steps, to the result of the first step.
  again, _ = dp.step(dp.put_state(state), batch, key)
  chex.assert_trees_all_equal(jax.device_get(dp.get_state(again)),
                              jax.device_get(dp.get_state(new)))
  assert int(dp.get_state(new).step) == 1


# --- Bug 2: every technique gives on 8 devices what it gives on one.

@pytest.mark.parametrize('mode', ['pmap', 'shard_map'])
@pytest.mark.parametrize('case', sorted(CASES))
def test_eight_devices_equal_one(case, mode):
  assert jax.device_count() == 8
  one, m_one = _single_device(case)
  eight, m_eight = _run(case, mode)
  assert int(eight.step) == NUM_STEPS
  chex.assert_trees_all_close(eight, one, rtol=1e-5, atol=1e-6)
  assert set(m_eight) == set(m_one)
  for name, value in m_one.items():
    np.testing.assert_allclose(m_eight[name], value, rtol=1e-5, atol=1e-6, err_msg=name)


def _d_fn(x):
  w = jnp.array([1.5, -0.7])
  return jnp.sum(jnp.sin(3.0 * x * w), axis=-1)  # Non-linear: the norm depends on epsilon.


def _over_devices(f, *arrays):
  """``f`` under ``shard_map`` on the 8 devices' row blocks of each array (axis ``'batch'``);
  each device's output gets a leading axis, and the outputs are concatenated."""
  mesh = jax.sharding.Mesh(np.array(jax.devices()), ('batch',))
  per_device = lambda *a: jnp.expand_dims(f(*a), 0)
  return jax.jit(jax.shard_map(per_device, mesh=mesh, in_specs=(P('batch'),) * len(arrays),
                               out_specs=P('batch'), check_vma=False))(*arrays)


def test_gradient_penalty_does_not_depend_on_the_device_count():
  kr, kf = jax.random.split(jax.random.PRNGKey(0))
  real, fake = jax.random.normal(kr, (16, 2)), jax.random.normal(kf, (16, 2))
  key = jax.random.PRNGKey(7)
  expected = penalties.gradient_penalty(_d_fn, real, fake, key)
  local = _over_devices(
      lambda r, f: penalties.gradient_penalty(_d_fn, r, f, key, axis_name='batch'), real, fake)
  chex.assert_shape(local, (8,))
  # Equal local batches: the mean of the devices' means is the global mean.
  np.testing.assert_allclose(jnp.mean(local), expected, rtol=1e-5)
  # The penalty's own randomness matters: another key gives another value.
  assert abs(float(penalties.gradient_penalty(_d_fn, real, fake, jax.random.PRNGKey(8))
                   - expected)) > 1e-3


def test_instance_noise_does_not_depend_on_the_device_count():
  x = jax.random.normal(jax.random.PRNGKey(0), (16, 3))
  key = jax.random.PRNGKey(5)
  expected = mode_collapse.add_instance_noise(key, x, std=0.5)
  noisy = _over_devices(
      lambda xs: mode_collapse.add_instance_noise(key, xs, std=0.5, axis_name='batch'), x)
  noisy = noisy.reshape((16, 3))
  np.testing.assert_allclose(noisy, expected, rtol=1e-6, atol=1e-6)
  assert float(jnp.std(noisy - x)) > 0.3  # The noise is there, std 0.5.


# --- Bug 3: each option is said once and checked before anything is built.

def _toy_config(**loss):
  config = config_lib.default_config()
  config.data.name = 'ring'
  config.model.g_hidden = (16,)
  config.model.d_hidden = (16,)
  config.model.latent_dim = LATENT
  config.train.batch_size = 8
  for name, value in loss.items():
    config.loss[name] = value
  return config


def test_validate_rejects_label_smoothing_for_a_loss_without_it():
  config = _toy_config(name='wasserstein', label_smoothing=0.1)
  with pytest.raises(ValueError, match='label_smoothing'):
    config_lib.validate(config)
  config_lib.validate(_toy_config(name='non_saturating', label_smoothing=0.1))  # Smooths.


def test_weight_clip_zero_is_off():
  config = _toy_config(weight_clip=0.0)
  config_lib.validate(config)
  g, d = experiment.build_models(config)
  state = experiment.init_state(config, jax.random.PRNGKey(0), g, d)
  batch = {'x': jax.random.normal(jax.random.PRNGKey(1), (8, 2))}
  new, metrics = experiment.build_train_step(config, g, d)(state, batch, jax.random.PRNGKey(2))
  assert int(new.step) == 1 and np.isfinite(float(metrics['d_loss']))
  # Not clipped to [0, 0]: D's weights keep their size.
  assert max(float(jnp.max(jnp.abs(w))) for w in jax.tree.leaves(new.d_params)) > 0.1
  # gan.make_train_step reads weight_clip=0.0 as None (the same computation), 0.01 clips.
  g, d = _mlp()
  args = (_init(g, d), _batch(8), jax.random.PRNGKey(2))
  trace = lambda clip: str(jax.make_jaxpr(_step(g, d, weight_clip=clip))(*args))
  assert trace(0.0) == trace(None) != trace(0.01)


def test_pack_mismatch_is_a_clear_error_at_trace_time():
  g, d = _mlp()
  step = _step(g, d, pack=2)
  with pytest.raises(ValueError, match='pack=2'):
    jax.eval_shape(step, _init(g, d, pack=1), _batch(8), jax.random.PRNGKey(0))
  # The matching state traces.
  new, _ = jax.eval_shape(step, _init(g, d, pack=2), _batch(8), jax.random.PRNGKey(0))
  assert new.d_params['Dense_0']['kernel'].shape == (4, 16)


def test_ema_without_ema_params_is_a_clear_error():
  g, d = _mlp()
  step = _step(g, d, ema_decay=0.9)
  with pytest.raises(ValueError, match=r'ema=True'):
    jax.eval_shape(step, _init(g, d), _batch(8), jax.random.PRNGKey(0))
  new, _ = jax.eval_shape(step, _init(g, d, ema=True), _batch(8), jax.random.PRNGKey(0))
  chex.assert_trees_all_equal_shapes(new.ema_g_params, new.g_params)


# --- Bug 4: the averaged G's standing batch-norm statistics.

def _bn_params(scale=4.0, shift=3.0):
  """BNGenerator's parameters with a BN input far from the initial statistics (0, 1)."""
  g = BNGenerator()
  variables = g.init(jax.random.PRNGKey(0), jnp.zeros((1, LATENT)))
  params = jax.tree.map(lambda x: x, variables['params'])
  dense = params['Dense_0']
  params['Dense_0'] = {'kernel': scale * dense['kernel'], 'bias': dense['bias'] + shift}
  return g, params, variables['batch_stats']


@functools.cache
def _ema_sampling():
  """A state whose moving average of G differs from G, and ``experiment.sampling_variables``."""
  g, params, stats = _bn_params()
  config = _toy_config()
  config.train.ema_decay = 0.99
  state = game.GANState(step=jnp.asarray(7, jnp.int32),
                        g_params=jax.tree.map(lambda x: -x, params), d_params={}, g_opt_state={},
                        d_opt_state={}, g_batch_stats=stats, d_batch_stats={},
                        ema_g_params=params)
  return g, config, state, experiment.sampling_variables(config, g, state)


def test_standing_statistics_are_the_mean_batch_statistics():
  """``sampling_variables``: the average's weights, and for its BN the mean over 16 batches of
  64 latents (from the documented key) of each batch's mean and (biased) variance."""
  g, _, state, (params, got) = _ema_sampling()
  chex.assert_trees_all_equal(params, state.ema_g_params)
  key = jax.random.fold_in(jax.random.PRNGKey(experiment.STANDING_STATISTICS_KEY), 7)
  means, variances = [], []
  for k in jax.random.split(key, 16):
    h = gan.sample_latent(k, 64, LATENT) @ params['Dense_0']['kernel'] + params['Dense_0']['bias']
    means.append(np.mean(np.asarray(h, np.float64), axis=0))
    variances.append(np.var(np.asarray(h, np.float64), axis=0))
  np.testing.assert_allclose(got['BatchNorm_0']['mean'], np.mean(means, 0), rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(got['BatchNorm_0']['var'], np.mean(variances, 0), rtol=1e-4,
                             atol=1e-5)
  assert gan.standing_statistics(g, params, {}, key, latent_dim=LATENT) == {}


def test_ema_sampler_is_self_consistent():
  """Inference with the standing statistics ~ training mode on a big batch; with the raw G's
  statistics (here the initial ones) it is far off. Without EMA: G and its own statistics."""
  g, config, state, (params, standing) = _ema_sampling()
  z = gan.sample_latent(jax.random.PRNGKey(9), 8192, LATENT)
  train_out, _ = gan.apply_model(g, params, state.g_batch_stats, z, train=True)
  out = gan.apply_model(g, params, standing, z, train=False)[0]
  raw = gan.apply_model(g, params, state.g_batch_stats, z, train=False)[0]
  scale = float(jnp.std(train_out))
  err = float(jnp.mean(jnp.abs(out - train_out))) / scale  # 0.02: 1024 latents' statistics
  raw_err = float(jnp.mean(jnp.abs(raw - train_out))) / scale  # 2.6
  assert err < 0.05, err
  assert raw_err > 20 * err, (raw_err, err)
  samples = experiment.sample(config, g, state, None, 8192, z=z,
                              variables=(params, standing))
  chex.assert_trees_all_close(samples, out)
  config = config.copy_and_resolve_references()
  config.train.ema_decay = 0.0
  got = experiment.sampling_variables(config, g, state)
  chex.assert_trees_all_equal(got, (state.g_params, state.g_batch_stats))


# --- Bug 5: G's batch-norm statistics are updated once per step, by the G update.

@pytest.mark.parametrize('update, num_d_steps', [('alternating', 3), ('g_first', 2)])
def test_g_batch_stats_updated_once_per_step(update, num_d_steps):
  g, d = BNGenerator(), models.MLPDiscriminator(hidden=(8,))
  state = _init(g, d)
  m = 8  # minibatch per update
  key = jax.random.PRNGKey(6)
  new, _ = _step(g, d, update_rule=update, num_d_steps=num_d_steps)(state, _batch(m * num_d_steps),
                                                                key)
  # The G update's fakes: latents from k_g, G at its parameters before the step.
  z = gan.sample_latent(_keys(key)[2], m, LATENT)
  dense = state.g_params['Dense_0']
  h = np.asarray(z @ dense['kernel'] + dense['bias'], np.float64)
  old = state.g_batch_stats['BatchNorm_0']
  got = new.g_batch_stats['BatchNorm_0']
  np.testing.assert_allclose(got['mean'], 0.9 * old['mean'] + 0.1 * h.mean(0), rtol=1e-5,
                             atol=1e-6)
  np.testing.assert_allclose(got['var'], 0.9 * old['var'] + 0.1 * h.var(0), rtol=1e-5, atol=1e-6)
  # The same as flax's own update on those latents.
  _, flax_stats = gan.apply_model(g, state.g_params, state.g_batch_stats, z, train=True)
  chex.assert_trees_all_close(new.g_batch_stats, flax_stats, rtol=1e-6, atol=1e-7)


# --- Bug 6: d_real / d_fake are raw critic values unless D's loss reads probabilities.

@pytest.mark.parametrize('loss, smoothing, probabilities', [
    ('wasserstein', 0.0, False), ('hinge', 0.0, False), ('least_squares', 0.0, False),
    ('non_saturating', 0.0, True), ('minimax', 0.0, True), ('non_saturating', 0.1, True)])
def test_d_real_and_d_fake(loss, smoothing, probabilities):
  d_loss_fn, g_loss_fn = losses.get_loss_pair(loss)
  if smoothing:
    d_loss_fn = functools.partial(d_loss_fn, label_smoothing=smoothing)
  assert gan.reports_probabilities(d_loss_fn) == probabilities
  g, d = _mlp()
  state, batch, key = _init(g, d), _batch(8), jax.random.PRNGKey(4)
  _, metrics = _step(g, d, d_loss_fn=d_loss_fn, g_loss_fn=g_loss_fn)(state, batch, key)
  # D's (first) update: fakes from fold_in(k_shared, 0), both players at their initial params.
  z = gan.sample_latent(jax.random.fold_in(_keys(key)[0], 0), 8, LATENT)
  fake = g.apply({'params': state.g_params}, z)
  real_out = d.apply({'params': state.d_params}, batch['x'])
  fake_out = d.apply({'params': state.d_params}, fake)
  show = jax.nn.sigmoid if probabilities else (lambda t: t)
  np.testing.assert_allclose(metrics['d_real'], jnp.mean(show(real_out)), rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(metrics['d_fake'], jnp.mean(show(fake_out)), rtol=1e-5, atol=1e-6)
  # The two readings differ here, so the test tells them apart.
  assert abs(float(jnp.mean(jax.nn.sigmoid(real_out)) - jnp.mean(real_out))) > 1e-2


# --- Bug 8: StyleGAN2's Adam correction for lazy R1.

def _updates(tx, grads):
  params = {'w': jnp.zeros(3), 'b': jnp.zeros(())}
  opt_state, out = tx.init(params), []
  for g in grads:
    u, opt_state = tx.update(g, opt_state, params)
    params = optax.apply_updates(params, u)
    out.append(u)
  return out


def test_lazy_r1_corrects_ds_adam():
  key = jax.random.PRNGKey(0)
  grads = [{'w': jax.random.normal(jax.random.fold_in(key, i), (3,)),
            'b': jax.random.normal(jax.random.fold_in(key, 100 + i), ())} for i in range(6)]
  config = _toy_config(r1_gamma=1.0, r1_every=4)
  t = config.train
  t.d_lr, t.g_lr, t.b1, t.b2 = 1e-2, 3e-3, 0.5, 0.9
  plain_d = optax.adam(1e-2, b1=0.5, b2=0.9)
  c = 0.8
  g_tx, d_tx = experiment.optimizers(config)
  corrected = _updates(optax.adam(1e-2 * c, b1=0.5**c, b2=0.9**c), grads)
  chex.assert_trees_all_close(_updates(d_tx, grads), corrected, rtol=1e-6, atol=1e-9)
  assert not np.allclose(corrected[-1]['w'], _updates(plain_d, grads)[-1]['w'], rtol=1e-3)
  chex.assert_trees_all_close(_updates(g_tx, grads),
                              _updates(optax.adam(3e-3, b1=0.5, b2=0.9), grads), rtol=1e-6)
  assert penalties.lazy_regularization_correction(4) == pytest.approx(0.8)
  # Eager R1, or lazy "R1" with gamma 0: D's Adam as configured.
  for r1_gamma, r1_every in [(1.0, 1), (0.0, 4)]:
    config.loss.r1_gamma, config.loss.r1_every = r1_gamma, r1_every
    chex.assert_trees_all_close(_updates(experiment.optimizers(config)[1], grads),
                                _updates(plain_d, grads), rtol=1e-6, atol=1e-9)


# --- Bug 9: the lazy package.

def test_import_jaxgan_is_lazy_and_complete():
  code = (
      'import json, sys\n'
      'import jaxgan\n'
      'heavy = sorted({m.split(".")[0] for m in sys.modules} & {"orbax", "matplotlib", '
      '"tensorflow"})\n'
      'ok = callable(jaxgan.dynamics.simulate) and callable(jaxgan.train_and_evaluate)\n'
      'print(json.dumps({"heavy": heavy, "ok": ok, "all": jaxgan.__all__}))\n')
  env = {**os.environ, 'JAX_PLATFORMS': 'cpu'}
  out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True,
                       cwd=os.path.dirname(PACKAGE), env=env)
  result = json.loads(out.stdout.strip().splitlines()[-1])
  assert result['heavy'] == []
  assert result['ok']
  modules = {name[:-3] for name in os.listdir(PACKAGE)
             if name.endswith('.py') and name != '__init__.py'}
  modules |= {name for name in os.listdir(PACKAGE)
              if os.path.isfile(os.path.join(PACKAGE, name, '__init__.py'))}
  assert modules <= set(result['all']), modules - set(result['all'])
  assert {'GANState', 'make_train_step', 'parallelize', 'train_and_evaluate'} <= set(
      result['all'])


def test_one_meaning_per_name_across_the_trainers():
  # Before: semi_supervised_train had its own sample_latent (U[0, 1) vs U[-1, 1]),
  # semi_supervised its own feature_matching_loss (mean vs sum), train.ema_decay meant D's
  # average there and G's everywhere else, and its init_state / train_and_evaluate returned an
  # SSGANState / a dict.
  assert not hasattr(semi_supervised_train, 'sample_latent')
  assert not hasattr(semi_supervised, 'feature_matching_loss')
  assert not hasattr(semi_supervised_train, 'SSGANState')
  spec = importlib.util.spec_from_file_location(
      'ssgan_mnist', os.path.join(os.path.dirname(PACKAGE), 'configs', 'ssgan_mnist.py'))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  ssgan = module.get_config()
  assert 'ema_decay' not in ssgan.train and ssgan.train.d_ema_decay == 0.9999
  for fn in (semi_supervised_train.init_state, semi_supervised_train.train_and_evaluate):
    assert inspect.signature(fn).return_annotation in ('GANState', game.GANState), fn


# --- No import cycle, and no jaxgan import inside a function.

def _module_files():
  files = {}
  for root, _, names in os.walk(PACKAGE):
    for name in names:
      if name.endswith('.py'):
        path = os.path.join(root, name)
        parts = os.path.relpath(path, os.path.dirname(PACKAGE))[:-3].split(os.sep)
        if parts[-1] == '__init__':
          parts = parts[:-1]
        files['.'.join(parts)] = path
  return files


def _imports(tree, modules):
  """``[(imported jaxgan module, inside a function?)]`` of a parsed file, at any depth."""
  found = []

  def visit(node, in_function):
    for child in ast.iter_child_nodes(node):
      inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                ast.Lambda))
      if isinstance(child, ast.Import):
        found.extend((a.name, inner) for a in child.names if a.name.split('.')[0] == 'jaxgan')
      elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module and (
          child.module.split('.')[0] == 'jaxgan'):
        for a in child.names:
          sub = f'{child.module}.{a.name}'
          found.append((sub if sub in modules else child.module, inner))
      visit(child, inner)

  visit(tree, False)
  return found


def test_no_import_cycles_and_no_function_level_imports():
  files = _module_files()
  assert {'jaxgan.game', 'jaxgan.gan', 'jaxgan.train', 'jaxgan.eval.evaluator'} <= set(files)
  graph, in_functions = {}, []
  for name, path in files.items():
    with open(path) as f:
      tree = ast.parse(f.read(), path)
    assert not any(isinstance(n, ast.ImportFrom) and n.level for n in ast.walk(tree)), name
    if name == 'jaxgan':
      continue  # The package loads its modules on first use (__getattr__).
    edges = set()
    for target, inner in _imports(tree, files):
      if inner:
        in_functions.append(f'{name} imports {target} inside a function')
      # Importing jaxgan.a.b runs jaxgan/a/__init__.py too; jaxgan/__init__.py imports nothing.
      parts = target.split('.')
      edges |= {'.'.join(parts[:i]) for i in range(2, len(parts) + 1)} - {name}
    graph[name] = edges
  assert not in_functions, in_functions
  assert graph['jaxgan.gan'] >= {'jaxgan.game', 'jaxgan.penalties'}  # The walk sees imports.

  state, path = {}, []

  def visit(node):  # Depth-first search; a grey node reached again closes a cycle.
    state[node] = 'grey'
    path.append(node)
    for nxt in sorted(graph.get(node, ())):
      if state.get(nxt) == 'grey':
        cycle = path[path.index(nxt):] + [nxt]
        pytest.fail('import cycle: ' + ' -> '.join(cycle))
      if nxt not in state:
        visit(nxt)
    path.pop()
    state[node] = 'black'

  for node in sorted(graph):
    if node not in state:
      visit(node)


# --- The update rules on the bilinear game V(x, y) = x y (x minimizes, y maximizes).

def _bilinear_step(update, lr, x0, y0):
  tx = optax.sgd(lr)

  def x_objective(x, state, batch, *, key, shared_key):
    return x * state.d_params, ({}, {})

  def y_objective(y, state, batch, *, key, shared_key):
    return -state.g_params * y, ({}, {})

  step = game.make_train_step(g_objective=x_objective, d_objective=y_objective, g_optimizer=tx,
                              d_optimizer=tx, update_rule=update)
  x0, y0 = jnp.asarray(x0), jnp.asarray(y0)
  state = game.GANState(step=jnp.zeros((), jnp.int32), g_params=x0, d_params=y0,
                        g_opt_state=tx.init(x0), d_opt_state=tx.init(y0), g_batch_stats={},
                        d_batch_stats={})
  new, _ = jax.jit(step)(state, {}, jax.random.PRNGKey(0))
  return float(new.g_params), float(new.d_params)


@pytest.mark.parametrize('update', ['g_first', 'alternating', 'simultaneous'])
def test_update_rules_on_the_bilinear_game(update):
  lr, x, y = 0.3, 0.7, -0.4
  if update == 'g_first':  # x first, then y against the new x.
    x1 = x - lr * y
    expected = (x1, y + lr * x1)
  elif update == 'alternating':  # y first, then x against the new y.
    y1 = y + lr * x
    expected = (x - lr * y1, y1)
  else:
    expected = (x - lr * y, y + lr * x)
  np.testing.assert_allclose(_bilinear_step(update, lr, x, y), expected, rtol=1e-6)
