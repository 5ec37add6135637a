"""Config fields of the mode-collapse techniques: defaults, validation, one step per config."""

from __future__ import annotations

import dataclasses
import importlib.util
import pathlib
import sys

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxgan import config as config_lib
from jaxgan import data, experiment, gan, losses, mode_collapse, models, train

ROOT = pathlib.Path(__file__).resolve().parents[1]


def load_config(name):
  spec = importlib.util.spec_from_file_location(name, ROOT / 'configs' / f'{name}.py')
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config()


def small(config):
  config.model.g_hidden = (8,)
  config.model.d_hidden = (8,)
  config.train.batch_size = 8
  return config


def one_step(config):
  generator, discriminator = train.build_models(config)
  # The config's optimizers, shapes, packing and EMA (jaxgan.experiment.init_state).
  state = experiment.init_state(config, jax.random.key(0), generator, discriminator)
  step = train.build_train_step(config, generator, discriminator)
  batch = {'x': data.TOY_DATASETS[config.data.name](
      jax.random.key(1), config.train.batch_size * config.train.num_d_steps)}
  return jax.jit(step)(state, batch, jax.random.key(2))


def test_defaults_are_off():
  config = config_lib.default_config()
  assert config.model.minibatch_kernels == 0 and not config.model.minibatch_stddev
  assert not config.model.spectral_norm and not config.loss.feature_matching
  assert config.train.unrolled_steps == 0 and config.train.pack == 1
  assert config.train.instance_noise == 0.0
  generator, discriminator = train.build_models(config)
  assert type(discriminator) is models.MLPDiscriminator


def test_default_config_step_equals_the_step_without_the_new_arguments():
  config = small(config_lib.default_config())
  generator, discriminator = train.build_models(config)
  g_opt, d_opt = train.optimizers(config)
  state = train.init_state(jax.random.key(0), generator=generator, discriminator=discriminator,
                           g_optimizer=g_opt, d_optimizer=d_opt, latent_dim=2, data_shape=(2,))
  plain = gan.make_train_step(generator=generator, discriminator=discriminator,
                                g_optimizer=g_opt, d_optimizer=d_opt, latent_dim=2)
  batch = {'x': data.ring(jax.random.key(1), 8)}
  chex.assert_trees_all_close(one_step(config), jax.jit(plain)(state, batch, jax.random.key(2)))


def test_model_options_build_the_stabilized_discriminator():
  config = config_lib.default_config()
  config.model.minibatch_kernels = 5
  config.model.minibatch_kernel_dim = 3
  config.model.spectral_norm = True
  _, discriminator = train.build_models(config)
  assert isinstance(discriminator, mode_collapse.StabilizedMLPDiscriminator)
  assert (discriminator.minibatch_kernels, discriminator.minibatch_kernel_dim) == (5, 3)
  assert discriminator.spectral_norm and not discriminator.minibatch_stddev


@pytest.mark.parametrize('section, field, value, match', [
    ('train', 'pack', 3, 'pack=3 must divide'),
    ('train', 'pack', 0, 'pack=0'),
    ('train', 'unrolled_steps', -1, 'unrolled_steps'),
    ('train', 'instance_noise', -0.5, 'instance_noise'),
    ('model', 'minibatch_kernels', -2, 'minibatch_kernels'),
    ('model', 'minibatch_kernel_dim', 0, 'minibatch_kernel_dim'),
])
def test_validate_names_the_bad_field(section, field, value, match):
  config = config_lib.default_config()
  config[section][field] = value
  with pytest.raises(ValueError, match=match):
    config_lib.validate(config)


def test_pack_must_divide_the_per_device_batch():
  config = config_lib.default_config()
  config.train.batch_size = 12
  config.train.pack = 4
  config_lib.validate(config, num_devices=1)
  with pytest.raises(ValueError, match='per-device batch of 6'):
    config_lib.validate(config, num_devices=2)


def test_d_options_need_the_mlp_model():
  config = config_lib.default_config()
  config.data.name = 'mnist'
  config.model.name = 'dcgan'
  config.model.minibatch_stddev = True
  with pytest.raises(ValueError, match="model.name='mlp'"):
    config_lib.validate(config)


@pytest.mark.parametrize('section, field, value', [
    ('train', 'pack', 2), ('loss', 'feature_matching', True), ('train', 'unrolled_steps', 1),
    ('model', 'minibatch_stddev', True),
])
def test_mode_collapse_options_reject_a_conditional_gan(section, field, value):
  config = config_lib.default_config()
  config.data.name = 'mnist'
  config.model.name = 'mlp'
  config.model.num_classes = 10
  config_lib.validate(config)  # Conditional alone is fine.
  config[section][field] = value
  with pytest.raises(ValueError, match=f"num_classes=10.*'{section}.{field}': {value}"):
    config_lib.validate(config)


def frozen_unrolled_setup():
  """An unrolled config (K = 2) with d_lr = 0 and a dead hidden unit in D.

  Adam's sqrt(v) has an infinite derivative at v = 0, where a D parameter's gradient is exactly
  zero; optimizers() sets eps_root for this. Hidden unit 0 of D is made dead (zero weights, bias
  -1: relu(-1) = 0 for every input), so its weights get zero gradients.
  """
  config = small(config_lib.default_config())
  config.train.unrolled_steps = 2
  config.train.d_lr = 0.0
  generator, discriminator = train.build_models(config)
  g_opt, d_opt = train.optimizers(config)
  state = train.init_state(jax.random.key(0), generator=generator, discriminator=discriminator,
                           g_optimizer=g_opt, d_optimizer=d_opt, latent_dim=2, data_shape=(2,))
  d_params = state.d_params
  dead = {'kernel': d_params['Dense_0']['kernel'].at[:, 0].set(0.0),
          'bias': d_params['Dense_0']['bias'].at[0].set(-1.0)}
  state = state.replace(d_params={**d_params, 'Dense_0': dead})
  return config, generator, discriminator, state, {'x': data.ring(jax.random.key(1), 8)}


def test_unrolled_config_differentiates_through_adam_at_a_zero_gradient():
  # With d_lr = 0 the look-ahead D is D itself, so G's loss is the plain non-saturating loss of D
  # and G's update is Adam's first, -g_lr * g / (|g| + 1e-8), both computed here without it.
  config, generator, discriminator, state, batch = frozen_unrolled_setup()
  key = jax.random.key(2)
  new_state, metrics = jax.jit(train.build_train_step(config, generator, discriminator))(
      state, batch, key)
  # G's fakes come from its key, the third of split(fold_in(key, step), 3) (jaxgan.game).
  z = train.sample_latent(jax.random.split(jax.random.fold_in(key, 0), 3)[2], 8, 2)

  @jax.jit
  def g_loss_and_adam_step(g_params):
    def g_loss(g_params):
      fake = generator.apply({'params': g_params}, z)
      return losses.non_saturating_generator_loss(
          discriminator.apply({'params': state.d_params}, fake))

    value, grads = jax.value_and_grad(g_loss)(g_params)
    lr = config.train.g_lr
    return value, optax.tree.norm(grads), jax.tree.map(
        lambda p, g: p - lr * g / (jnp.abs(g) + 1e-8), g_params, grads)

  g_loss, g_grad_norm, g_params = g_loss_and_adam_step(state.g_params)
  np.testing.assert_allclose(float(metrics['g_loss']), float(g_loss), rtol=1e-5)
  np.testing.assert_allclose(float(metrics['g_grad_norm']), float(g_grad_norm), rtol=1e-5)
  chex.assert_trees_all_close(new_state.g_params, g_params, rtol=1e-5, atol=1e-7)


@pytest.mark.slow
def test_unrolled_without_eps_root_is_nan_at_a_zero_gradient():
  # The premise of the test above: the same look-ahead through an Adam without eps_root gives
  # 0 * inf in the backward pass.
  _, generator, discriminator, state, batch = frozen_unrolled_setup()
  step = gan.make_train_step(generator=generator, discriminator=discriminator,
                             g_optimizer=optax.adam(1e-3), d_optimizer=optax.adam(0.0),
                             latent_dim=2, unrolled_steps=2)
  _, metrics = jax.jit(step)(state, batch, jax.random.key(2))
  assert np.isnan(float(metrics['g_grad_norm'])) and float(metrics['g_nonfinite']) == 1.0


@pytest.mark.parametrize('name', ['mog_grid', 'mog_grid_best', 'mog_ring_best'])
def test_configs_validate_and_take_a_step(name):
  config = small(load_config(name))
  config_lib.validate(config)
  generator, discriminator = train.build_models(config)
  # The config's optimizers, shapes, packing and EMA (jaxgan.experiment.init_state).
  state = experiment.init_state(config, jax.random.key(0), generator, discriminator)
  new_state, _ = one_step(config)  # from the same init key as `state`
  assert int(new_state.step) == 1
  # Adam's first update is -lr * g / (|g| + 1e-8) (m_hat = g, v_hat = g^2): every parameter
  # moves by the config's lr (the cosine schedule starts at its peak), as every gradient here is
  # far above 1e-8. rtol 1e-3: float32 rounding of p - lr * u for |p| <= 2 is 2.4e-7 = 2.4e-4 lr.
  for player, lr in (('g', config.train.g_lr), ('d', config.train.d_lr)):
    for before, after in zip(jax.tree.leaves(getattr(state, f'{player}_params')),
                             jax.tree.leaves(getattr(new_state, f'{player}_params')), strict=True):
      np.testing.assert_allclose(np.abs(after - before), lr, rtol=1e-3)
  if config.train.ema_decay:
    # EMA warm-up at step 0: decay min(0.999, 1 / 10), so ema = 0.1 init + 0.9 new.
    expected = jax.tree.map(lambda a, b: 0.1 * a + 0.9 * b, state.g_params, new_state.g_params)
    chex.assert_trees_all_close(new_state.ema_g_params, expected, rtol=1e-6, atol=1e-6)


def test_bias_scale_and_lr_decay_fields():
  config = small(config_lib.default_config())
  config.model.bias_scale = 1.0
  config.train.lr_final_fraction = 0.01
  config.train.num_steps = 100
  _, discriminator = train.build_models(config)
  assert discriminator.bias_scale == 1.0
  g_opt, _ = train.optimizers(config)
  # Cosine decay: Adam's first update of a parameter with gradient 1 is -lr(0) = -peak; after
  # num_steps it is -peak * final. Read the learning rate off a one-parameter update.
  update = jax.jit(g_opt.update)
  state = g_opt.init({'w': np.zeros(())})
  steps = []
  for _ in range(config.train.num_steps + 1):
    updates, state = update({'w': np.ones(())}, state)
    steps.append(float(updates['w']))
  np.testing.assert_allclose(steps[0], -config.train.g_lr, rtol=1e-3)
  np.testing.assert_allclose(steps[50], -config.train.g_lr * (0.01 + 0.99 * 0.5), rtol=1e-3)
  np.testing.assert_allclose(steps[-1], -config.train.g_lr * 0.01, rtol=1e-3)
  config.train.lr_final_fraction = 1.5
  with pytest.raises(ValueError, match='lr_final_fraction=1.5'):
    config_lib.validate(config)


def load_benchmark():
  spec = importlib.util.spec_from_file_location('mode_coverage_benchmark',
                                                ROOT / 'benchmarks' / 'mode_coverage.py')
  if spec.name not in sys.modules:
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
  return sys.modules[spec.name]


# grid is slow-marked (23 s on 2 cores): ring runs the same code path.
@pytest.mark.parametrize('dataset', [pytest.param('grid', marks=pytest.mark.slow), 'ring'])
def test_cli_best_config_trains_the_benchmarks_parameters(dataset):
  # configs/mog_<dataset>_best.py through the command line's path (train_and_evaluate's keys,
  # builders and batches) and METHODS['best'] through benchmarks/mode_coverage.py, 3 steps each.
  bench = load_benchmark()
  num_steps = 3
  config = load_config(f'mog_{dataset}_best')
  config.train.num_steps = num_steps  # the cosine schedule's length: the same on both sides
  method = dataclasses.replace(bench.METHODS['best'].for_dataset(dataset), num_steps=num_steps)
  states, _, _ = bench.train_seeds(method, dataset, [config.seed], num_steps=num_steps,
                                   chunk=num_steps)
  benchmark_state = bench.seed_state(states, 0)

  generator, discriminator = experiment.build_models(config)
  train_step = experiment.build_train_step(config, generator, discriminator)
  step = jax.jit(train_step)
  init_key, step_key, data_key, _ = jax.random.split(jax.random.PRNGKey(config.seed), 4)
  state = experiment.init_state(config, init_key, generator, discriminator)
  batches = data.toy_batches(config.data.name, data_key, config.train.batch_size,
                             scale=experiment.data_scale(config))
  for t in range(num_steps):
    batch = next(batches)
    if t == 0:  # The benchmark's train step is the command line's program: the same jaxpr (run
      # on one state and batch, the two are bit-identical).
      assert (str(jax.make_jaxpr(bench.build(method, dataset)[2])(state, batch, step_key))
              == str(jax.make_jaxpr(train_step)(state, batch, step_key)))
    state, _ = step(state, batch, step_key)
  # The benchmark's run vmaps that step over the seeds, which XLA compiles to other float32
  # roundings (a Python loop of the vmapped step differs as much; lax.scan and drawing the data
  # inside it do not): not bit-identical. Max abs difference after 3 steps, with the tests' 8
  # fake CPU devices: 3.0e-6 on the grid, 1.2e-7 on the ring (an Adam step moves a weight by
  # up to the learning rate, 3e-3).
  chex.assert_trees_all_close(benchmark_state, state, rtol=1e-6, atol=1e-5)
