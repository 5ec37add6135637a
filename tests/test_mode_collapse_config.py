"""Config fields of the mode-collapse techniques: defaults, validation, one step per config."""

from __future__ import annotations

import dataclasses
import importlib.util
import pathlib
import sys

import chex
import jax
import numpy as np
import pytest

from jaxgan import config as config_lib
from jaxgan import data, experiment, gan, mode_collapse, models, train

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
  g_opt, d_opt = train.optimizers(config)
  state = train.init_state(jax.random.key(0), generator=generator, discriminator=discriminator,
                           g_optimizer=g_opt, d_optimizer=d_opt,
                           latent_dim=config.model.latent_dim,
                           data_shape=data.data_shape(config.data.name), pack=config.train.pack,
                           ema=bool(config.train.ema_decay))
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


def test_unrolled_config_gets_finite_generator_gradients():
  # Adam's sqrt(v) has an infinite derivative at v = 0; optimizers() sets eps_root for this.
  config = small(config_lib.default_config())
  config.train.unrolled_steps = 2
  _, metrics = one_step(config)
  chex.assert_tree_all_finite(metrics)


@pytest.mark.parametrize('name', ['mog_grid', 'mog_grid_best', 'mog_ring_best'])
def test_configs_validate_and_take_a_step(name):
  config = small(load_config(name))
  config_lib.validate(config)
  new_state, metrics = one_step(config)
  chex.assert_tree_all_finite(metrics)
  assert int(new_state.step) == 1
  assert np.isfinite(float(metrics['g_loss']))


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


@pytest.mark.parametrize('dataset', ['grid', 'ring'])
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
