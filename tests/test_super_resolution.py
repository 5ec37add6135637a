"""SRResNet and SRGAN (arXiv:1609.04802): the resampling against hand-built arrays, the networks'
shapes, the objectives against hand-computed values, one-line config errors, a tiny SRGAN
that resumes bit for bit under ``tfds.testing.mock_data``, and the photographs: the split, the
crops as a pure function of the step, the VGG content loss, and a tiny SRGAN on them."""

import json
import math
import os
import runpy

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tensorflow_datasets as tfds

from jaxgan import game, losses, vgg
from jaxgan import super_resolution as sr
from jaxgan.eval import classifier

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _config(name: str, **train):
  config = runpy.run_path(os.path.join(ROOT, 'configs', f'{name}.py'))['get_config']()
  config.model.update({'features': 4, 'num_blocks': 1, 'd_features': 4, 'd_stages': 1,
                       'd_dense': 8})
  config.train.update({'batch_size': 4, 'num_steps': 4, 'log_every': 1, 'sample_every': 2,
                       'checkpoint_every': 2, 'num_samples': 2, 'num_eval': 4, **train})
  return config


# --- Resampling ---


def test_downsample_box_by_hand():
  x = np.stack([np.arange(16.0).reshape(4, 4), 100 + np.arange(16.0).reshape(4, 4)], -1)[None]
  # Block means of [[0, 1], [4, 5]] = 2.5, [[2, 3], [6, 7]] = 4.5, ... per channel.
  want = np.array([[2.5, 4.5], [10.5, 12.5]])
  out = sr.downsample_box(jnp.asarray(x, jnp.float32), 2)
  assert out.shape == (1, 2, 2, 2)
  np.testing.assert_array_equal(out[0, :, :, 0], want)
  np.testing.assert_array_equal(out[0, :, :, 1], 100 + want)
  np.testing.assert_array_equal(sr.downsample_box(x, 4)[0, 0, 0], [7.5, 107.5])
  np.testing.assert_array_equal(sr.downsample_box(x, 1), x)
  with pytest.raises(ValueError, match=r'image size 4x4 is not divisible by factor=3'):
    sr.downsample_box(x, 3)


def test_upsample_nearest_is_a_repeat():
  x = np.arange(12.0, dtype=np.float32).reshape(1, 2, 3, 2)
  want = np.repeat(np.repeat(x, 4, axis=1), 4, axis=2)
  np.testing.assert_array_equal(sr.upsample_nearest(x, 4), want)
  # The box average of the upsampled image is the image.
  np.testing.assert_array_equal(sr.downsample_box(sr.upsample_nearest(x, 4), 4), x)


def test_bicubic_reproduces_constants_and_linear_ramps_away_from_borders():
  constant = jnp.full((1, 7, 7, 1), 0.3)
  np.testing.assert_allclose(sr.upsample_bicubic(constant, 4), 0.3, atol=1e-6)
  i, j = np.meshgrid(np.arange(8.0), np.arange(8.0), indexing='ij')
  ramp = jnp.asarray((0.05 * i - 0.1 * j)[None, :, :, None], jnp.float32)
  out = np.asarray(sr.upsample_bicubic(ramp, 4))[0, :, :, 0]
  assert out.shape == (32, 32)
  s = (np.arange(32) + 0.5) / 4 - 0.5  # Where output pixel p samples the input.
  want = 0.05 * s[:, None] - 0.1 * s[None, :]
  # All four taps inside the image: s in [1, 6), output pixels 6 .. 25.
  np.testing.assert_allclose(out[6:26, 6:26], want[6:26, 6:26], atol=1e-5)
  # At the border jax renormalizes the taps that remain: the ramp bends.
  assert abs(out[0, 0] - want[0, 0]) > 0.01


# --- Networks ---


def test_upsampling_steps_and_generator_shapes():
  assert [sr.upsampling_steps(s) for s in (2, 4, 8)] == [1, 2, 3]
  for bad in (1, 3, 6, 0, 4.0, True):
    with pytest.raises(ValueError, match='must be a power of 2'):
      sr.upsampling_steps(bad)
  lr = jnp.zeros((2, 7, 7, 1))
  for scale, side in ((4, 28), (2, 14)):
    g = sr.SRResNet(channels=1, scale=scale, features=4, num_blocks=2)
    out, variables = jax.eval_shape(lambda g=g: g.init_with_output(
        jax.random.PRNGKey(0), lr, train=False))
    assert out.shape == (2, side, side, 1)
    params = variables['params']
    assert sorted(k for k in params if k.startswith('up') and 'prelu' not in k) == [
        f'up{i}' for i in range(int(math.log2(scale)))]
    assert params['up0']['kernel'].shape == (3, 3, 4, 16)  # 4F channels, then pixel_shuffle(2).
    assert params['head']['kernel'].shape == (9, 9, 1, 4)
    assert params['out']['kernel'].shape == (9, 9, 4, 1)
    assert params['block1_prelu']['negative_slope'].shape == (4,)  # One slope per channel.
    assert set(variables['batch_stats']) == {'block0_norm1', 'block0_norm2', 'block1_norm1',
                                             'block1_norm2', 'trunk_norm'}
  with pytest.raises(ValueError, match='power of 2.*got 3'):
    sr.SRResNet(channels=1, scale=3).init(jax.random.PRNGKey(0), lr, train=False)


def test_bicubic_residual_head_starts_at_bicubic_and_adds_the_linear_head():
  lr = jax.random.uniform(jax.random.PRNGKey(0), (2, 6, 5, 3), minval=-1, maxval=1)
  res = sr.SRResNet(channels=3, scale=4, features=4, num_blocks=1, output='bicubic_residual')
  variables = res.init(jax.random.PRNGKey(1), lr, train=False)
  bicubic = sr.upsample_bicubic(lr, 4)
  # The detail convolution starts at zero: G at initialization is bicubic, exactly.
  np.testing.assert_array_equal(res.apply(variables, lr, train=False), bicubic)
  # With any weights, the head is bicubic + the 'linear' head of the same parameters.
  params = jax.tree_util.tree_map(lambda p: p + 0.1, variables['params'])
  variables = {**variables, 'params': params}
  linear = sr.SRResNet(channels=3, scale=4, features=4, num_blocks=1, output='linear')
  np.testing.assert_allclose(res.apply(variables, lr, train=False),
                             bicubic + linear.apply(variables, lr, train=False), atol=1e-5)
  with pytest.raises(ValueError, match=r'needs an input of 1 channels.*\(2, 6, 5, 3\)'):
    sr.SRResNet(channels=1, features=4, num_blocks=1, output='bicubic_residual').init(
        jax.random.PRNGKey(0), lr, train=False)


def test_paper_discriminator_shapes():
  d = sr.SRGANDiscriminator()  # The paper's: 96x96 crops -> 6x6x512 -> 1024 -> 1.
  out, variables = jax.eval_shape(lambda: d.init_with_output(
      jax.random.PRNGKey(0), jnp.zeros((2, 96, 96, 3)), train=False))
  params = variables['params']
  assert out.shape == (2, 1)
  assert params['dense']['kernel'].shape == (6 * 6 * 512, 1024)
  assert [params[k]['kernel'].shape[-1] for k in ('conv0', 'conv0_down', 'conv1', 'conv1_down',
                                                  'conv3', 'conv3_down')] == [64, 64, 128, 128,
                                                                              512, 512]
  assert 'conv0_norm' not in variables['batch_stats']  # No batch norm on the first layer.
  small = sr.SRGANDiscriminator(features=4, num_stages=2, dense_features=8)
  params = jax.eval_shape(lambda: small.init(jax.random.PRNGKey(0), jnp.zeros((2, 28, 28, 1)),
                                             train=False))['params']
  assert params['dense']['kernel'].shape == (7 * 7 * 8, 8)  # 28 -> 14 -> 7.


def test_prelu_has_one_slope_per_channel():
  x = jnp.array([[-1.0, -1.0, 2.0]])
  y = sr.PReLU().apply({'params': {'negative_slope': jnp.array([0.5, 2.0, 3.0])}}, x)
  np.testing.assert_array_equal(y, [[-0.5, -2.0, 2.0]])
  assert float(sr.PReLU().init(jax.random.PRNGKey(0), x)['params']['negative_slope'][0]) == 0.25


# --- Objectives ---


class Scale(nn.Module):
  """``x -> w x`` with one parameter ``w`` (init 1): a generator whose outputs are known."""

  @nn.compact
  def __call__(self, x, *, train):
    return self.param('w', nn.initializers.ones, ()) * x


class Mean(nn.Module):
  """``x -> v mean(x)`` per image, ``(B, 1)``: a discriminator whose logits are known."""

  @nn.compact
  def __call__(self, x, *, train):
    return self.param('v', nn.initializers.ones, ()) * jnp.mean(x, axis=(1, 2, 3))[:, None]


def _state(g_params, d_params):
  return game.GANState(step=jnp.zeros((), jnp.int32), g_params=g_params, d_params=d_params,
                       g_opt_state={}, d_opt_state={}, g_batch_stats={}, d_batch_stats={})


def _softplus(t):
  return np.log1p(np.exp(t))


# G doubles its input; lr = 0.5 -> G(lr) = 1 against hr = 0.25 (the objectives do not care that
# the stand-in G keeps the size).
BATCH = {'lr': jnp.full((2, 4, 4, 1), 0.5), 'hr': jnp.full((2, 4, 4, 1), 0.25)}


def test_generator_objective_is_content_plus_1e3_adversarial():
  g, d = {'w': jnp.asarray(2.0)}, {'v': jnp.asarray(2.0)}
  objective = sr.generator_objective(Scale(), Mean())
  loss, (_, metrics) = objective(g, _state(g, d), BATCH, key=None, shared_key=None)
  content = 0.75**2  # (1 - 0.25)^2
  adversarial = _softplus(-2.0)  # D(G(lr)) = 2 * mean(1) = 2: -log sigmoid(2).
  np.testing.assert_allclose(metrics['content'], content, rtol=1e-6)
  np.testing.assert_allclose(metrics['g_gan'], adversarial, rtol=1e-6)
  np.testing.assert_allclose(loss, content + 1e-3 * adversarial, rtol=1e-6)
  np.testing.assert_allclose(metrics['psnr'], 10 * np.log10(4 / content), rtol=1e-6)
  # The gradient reaches G through both terms: d/dw [(0.5 w - 0.25)^2 + 1e-3 softplus(-v w / 2)].
  grad = jax.grad(lambda gp: objective(gp, _state(gp, d), BATCH, key=None, shared_key=None)[0])(g)
  want = 2 * 0.75 * 0.5 - 1e-3 * (1 / (1 + np.exp(2.0))) * 1.0
  np.testing.assert_allclose(grad['w'], want, rtol=1e-5)
  # SRResNet: no D at all, the loss is the content alone.
  mse_only = sr.generator_objective(Scale(), None, adversarial_weight=0.0)
  loss, (_, metrics) = mse_only(g, _state(g, {}), BATCH, key=None, shared_key=None)
  np.testing.assert_allclose(loss, content, rtol=1e-6)
  assert float(metrics['g_gan']) == 0.0
  with pytest.raises(ValueError, match='needs a discriminator'):
    sr.generator_objective(Scale(), None)


def test_content_losses_take_any_feature_function():
  sr_images, hr_images = BATCH['lr'], BATCH['hr']
  np.testing.assert_allclose(sr.pixel_mse(sr_images, hr_images), 0.0625, rtol=1e-6)
  # phi = 3 * per-image mean: (3 * 0.5 - 3 * 0.25)^2 = 0.5625.
  phi = lambda x: 3 * jnp.mean(x, axis=(1, 2, 3))
  np.testing.assert_allclose(sr.feature_mse(phi)(sr_images, hr_images), 0.5625, rtol=1e-6)
  objective = sr.generator_objective(Scale(), Mean(), content_loss=sr.feature_mse(phi),
                                     adversarial_weight=0.5)
  g, d = {'w': jnp.asarray(1.0)}, {'v': jnp.asarray(-4.0)}
  loss, _ = objective(g, _state(g, d), BATCH, key=None, shared_key=None)
  np.testing.assert_allclose(loss, 0.5625 + 0.5 * _softplus(2.0), rtol=1e-6)  # logit -4 * 0.5


def test_discriminator_objective_is_the_standard_gan_loss():
  g, d = {'w': jnp.asarray(2.0)}, {'v': jnp.asarray(2.0)}
  loss, (_, metrics) = sr.discriminator_objective(Scale(), Mean())(
      d, _state(g, d), BATCH, key=None, shared_key=None)
  # Real logit 2 * 0.25 = 0.5, fake logit 2 * 1 = 2: softplus(-0.5) + softplus(2).
  np.testing.assert_allclose(loss, _softplus(-0.5) + _softplus(2.0), rtol=1e-6)
  np.testing.assert_allclose(metrics['d_real'], 1 / (1 + np.exp(-0.5)), rtol=1e-6)
  np.testing.assert_allclose(metrics['d_fake'], 1 / (1 + np.exp(-2.0)), rtol=1e-6)
  lsgan, _ = sr.discriminator_objective(Scale(), Mean(),
                                        d_loss_fn=losses.least_squares_discriminator_loss)(
      d, _state(g, d), BATCH, key=None, shared_key=None)
  np.testing.assert_allclose(lsgan, 0.5 * ((0.5 - 1)**2 + 2.0**2), rtol=1e-6)
  loss, (model_state, metrics) = sr.no_discriminator_objective(
      {}, _state(g, {}), BATCH, key=None, shared_key=None)
  assert float(loss) == 0.0 and model_state == {} and metrics == {}


def test_classifier_features_are_the_shipped_extractors():
  x = np.random.default_rng(0).uniform(-1, 1, (3, 28, 28, 1)).astype(np.float32)
  phi = sr.classifier_features('mnist', layer='features')
  np.testing.assert_allclose(phi(jnp.asarray(x)),
                             classifier.shipped_extractor('mnist').features(x), atol=1e-5)
  assert jax.eval_shape(sr.classifier_features('mnist', layer='conv2'),
                        jnp.zeros((3, 28, 28, 1))).shape == (3, 14, 14, 64)
  with pytest.raises(ValueError, match="unknown classifier layer 'fc'"):
    sr.classifier_features('mnist', layer='fc')


# --- Configs and the driver ---


@pytest.mark.parametrize('change, message', [
    (lambda c: c.task.update(scale=3), r'config.task.scale=3: the scale factor must be a power '
                                       r'of 2'),
    (lambda c: c.task.update(scale=8), r'config.task.scale=8: the 28x28 images of .mnist. are '
                                       r'not divisible by it'),
    (lambda c: c.task.update(lr_size=6), r'config.task.lr_size=6 times config.task.scale=4 is '
                                         r'24, not the 28x28 target'),
    (lambda c: c.loss.update(adversarial_weight=-1e-3),
     r'config.loss.adversarial_weight=-0.001 must be >= 0'),
    (lambda c: c.loss.update(content='vgg16'),
     r"unknown content loss config.loss.content='vgg16'"),
    (lambda c: c.loss.update(content='vgg', vgg_weights='/nonexistent/vgg19.npz'),
     r"config.loss.content='vgg': no VGG19 weights at config.loss.vgg_weights='/nonexistent/"
     r"vgg19.npz'; convert torchvision's vgg19-dcbb9e9d.pth with python -m jaxgan.vgg "
     r"--torch_weights="),
    (lambda c: c.loss.update(content='vgg', vgg_layer='relu6_1'),
     r"config.loss.vgg_layer='relu6_1' is not a VGG19 layer"),
    (lambda c: c.update(trainer='srresnet'), r'SRResNet trains on the content loss alone'),
    (lambda c: c.loss.update(content='classifier', classifier_layer='fc'),
     r"classifier_layer='fc' is not a layer"),
    (lambda c: c.model.update(output='sigmoid'), r"config.model.output='sigmoid'"),
    (lambda c: c.train.update(init_g_from='/nonexistent'), r'holds no checkpoints/'),
])
def test_bad_config_fails_in_one_line(change, message):
  config = _config('srgan_mnist')
  change(config)
  with pytest.raises(ValueError, match=message) as e:
    sr.validate(config)
  assert '\n' not in str(e.value)


def test_classifier_content_loss_without_shipped_weights_fails_in_one_line(monkeypatch, tmp_path):
  monkeypatch.setattr(sr.classifier, 'weights_dir', lambda name: str(tmp_path / name))
  config = _config('srgan_mnist')
  config.data.name, config.loss.content = 'fashion_mnist', 'classifier'
  with pytest.raises(ValueError, match=r"jaxgan ships no classifier for 'fashion_mnist'") as e:
    sr.validate(config)
  assert '\n' not in str(e.value)


def test_configs_validate_and_fail_before_anything_is_written(tmp_path):
  for name in ('srresnet_mnist', 'srgan_mnist'):
    sr.validate(_config(name))
  assert sr.base_config('srgan').loss.adversarial_weight == 1e-3
  assert sr.base_config('srresnet').loss.adversarial_weight == 0.0
  config = _config('srresnet_mnist')
  config.task.scale = 6
  with pytest.raises(ValueError, match='power of 2'):
    sr.train_and_evaluate(config, str(tmp_path))
  assert not os.path.exists(tmp_path / 'checkpoints')


def _rows(workdir):
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    return [json.loads(line) for line in f]


@pytest.mark.slow  # 40 s on 2 cores; SRResNet's run below keeps the trainer's resume in CI.
def test_srgan_trains_from_config_and_resumes_exactly(tmp_path):
  with tfds.testing.mock_data(num_examples=16):
    straight = sr.train_and_evaluate(_config('srgan_mnist'), str(tmp_path / 'a'))
    sr.train_and_evaluate(_config('srgan_mnist', num_steps=2), str(tmp_path / 'b'))
    resumed = sr.train_and_evaluate(_config('srgan_mnist'), str(tmp_path / 'b'))
  assert int(straight.step) == 4
  chex.assert_trees_all_equal(straight, resumed)
  rows = _rows(tmp_path / 'b')
  assert [r['step'] for r in rows] == [1, 2, 3, 4]
  assert all(np.isfinite([r[k] for k in ('d_loss', 'g_loss', 'content', 'g_gan', 'd_real')]).all()
             for r in rows)
  for r in rows:  # G's loss is content + 1e-3 adversarial.
    np.testing.assert_allclose(r['g_loss'], r['content'] + 1e-3 * r['g_gan'], rtol=1e-5)
  assert os.path.exists(tmp_path / 'b' / 'samples' / 'step_4.png')
  assert resumed.d_batch_stats  # D's batch norm statistics are part of the state.
  # A run started from that workdir's G (as SRGAN from SRResNet's): its weights and statistics,
  # a fresh optimizer.
  config = _config('srgan_mnist', init_g_from=str(tmp_path / 'b'))
  init = sr.init_state(config, jax.random.PRNGKey(1), *sr.build_models(config))
  chex.assert_trees_all_equal(init.g_params, resumed.g_params)
  chex.assert_trees_all_equal(init.g_batch_stats, resumed.g_batch_stats)
  assert int(init.g_opt_state[0].count) == 0
  config.model.features = 8
  with pytest.raises(ValueError, match="differs from this config's"):
    sr.init_state(config, jax.random.PRNGKey(1), *sr.build_models(config))


def test_source_makes_lr_from_hr_on_the_device():
  images = np.random.default_rng(0).integers(0, 256, (8, 28, 28, 1), dtype=np.uint8)
  source = sr.source(images, jax.random.PRNGKey(0), 4, factor=4)
  idx = np.asarray(source.plan(0, 2))
  assert sorted(idx.ravel()) == list(range(8))  # Two batches: one epoch.
  batch = jax.jit(source.batch)(source.data, idx[1])
  hr = images[idx[1]].astype(np.float32) / np.float32(127.5) - np.float32(1)
  np.testing.assert_array_equal(batch['hr'], hr)
  np.testing.assert_allclose(batch['lr'], hr.reshape(4, 7, 4, 7, 4, 1).mean(axis=(2, 4)),
                             atol=1e-6)
  sr.check_batch(batch, 1, batch_size=4, hr_shape=(28, 28, 1), factor=4)
  with pytest.raises(ValueError, match=r"batch\['lr'\] at step 1 has shape \(4, 14, 14, 1\)"):
    sr.check_batch({**batch, 'lr': jnp.zeros((4, 14, 14, 1))}, 1, batch_size=4,
                   hr_shape=(28, 28, 1), factor=4)


class Nearest(nn.Module):
  """``x -> w * upsample_nearest(x, 4)``: a x4 generator whose outputs are known."""

  @nn.compact
  def __call__(self, x, *, train):
    return self.param('w', nn.initializers.ones, ()) * sr.upsample_nearest(x, 4)


def test_srresnet_step_trains_g_alone_and_evaluator_uses_the_sr_convention():
  config = _config('srresnet_mnist')
  generator, discriminator = sr.build_models(config)
  assert discriminator is None
  state = sr.init_state(config, jax.random.PRNGKey(0), generator, discriminator)
  assert state.d_params == {} and state.d_batch_stats == {}
  images = np.random.default_rng(1).integers(0, 256, (4, 28, 28, 1), dtype=np.uint8)
  source = sr.source(images, jax.random.PRNGKey(0), 4, factor=4)
  batch = source.batch(source.data, source.plan(0, 1)[0])
  new, metrics = jax.jit(sr.build_train_step(config, generator, None))(
      state, batch, jax.random.PRNGKey(0))
  assert float(metrics['d_loss']) == 0.0 and float(metrics['d_grad_norm']) == 0.0
  np.testing.assert_allclose(metrics['g_loss'], metrics['content'])
  assert new.d_params == {} and new.d_opt_state == state.d_opt_state  # Nothing for D.
  assert not np.allclose(new.g_params['out']['kernel'], state.g_params['out']['kernel'])
  assert not np.allclose(new.g_batch_stats['trunk_norm']['mean'],
                         state.g_batch_stats['trunk_norm']['mean'])
  # The evaluator: test PSNR/SSIM with a 4-pixel border crop, here of nearest upsampling.
  g_state = _state({'w': jnp.asarray(1.0)}, {})
  scores = sr.make_evaluator(config, Nearest(), images, batch_size=3)(g_state)
  hr = images.astype(np.float32) / np.float32(127.5) - np.float32(1)
  up = sr.upsample_nearest(sr.downsample_box(hr, 4), 4)
  mse = np.mean(np.square(np.asarray(up) - hr)[:, 4:24, 4:24], axis=(1, 2, 3))
  np.testing.assert_allclose(scores['psnr'], np.mean(10 * np.log10(4 / mse)), rtol=1e-5)
  assert 0 < scores['ssim'] < 1


@pytest.mark.slow  # Three more driver runs (the one-player game): about 15 s on 2 cores.
def test_srresnet_trains_from_config_and_resumes_exactly(tmp_path):
  with tfds.testing.mock_data(num_examples=16):
    straight = sr.train_and_evaluate(_config('srresnet_mnist', eval_every=2),
                                     str(tmp_path / 'a'))
    sr.train_and_evaluate(_config('srresnet_mnist', num_steps=2, eval_every=2),
                          str(tmp_path / 'b'))
    resumed = sr.train_and_evaluate(_config('srresnet_mnist', eval_every=2), str(tmp_path / 'b'))
  chex.assert_trees_all_equal(straight, resumed)
  assert resumed.d_params == {} and resumed.d_batch_stats == {}
  rows = _rows(tmp_path / 'b')
  assert [r['d_loss'] for r in rows] == [0.0] * 4 and rows[-1]['d_grad_norm'] == 0.0
  np.testing.assert_allclose([r['g_loss'] for r in rows], [r['content'] for r in rows])
  # The test set's scores (mock images are noise: SSIM near 0, of either sign).
  assert -1 <= rows[-1]['ssim'] <= 1 and np.isfinite(rows[-1]['psnr'])


# --- Photographs ---


def _photo_config(name='srgan_photos', **train):
  config = _config(name, **train)
  config.task.update({'crop_size': 32, 'lr_size': 8})
  config.train.batch_size = 2
  return config


@pytest.mark.parametrize('change, message', [
    (lambda c: c.data.update(train_images=('camera', 'eagle')),
     r"config.data.train_images: \['eagle'\] are not photographs scikit-image ships"),
    (lambda c: c.data.update(train_images=('camera', 'astronaut')),
     r"\['astronaut'\] are in both config.data.train_images and config.data.test_images"),
    (lambda c: c.data.update(test_images=()), r'config.data.test_images=\S+ must be a non-empty'),
    (lambda c: c.task.update(lr_size=20), r'config.task.lr_size=20 times config.task.scale=4 is '
                                          r'80, not the 96x96 training crops'),
    (lambda c: c.task.update(crop_size=90), r'config.task.scale=4: the 90x90 training crops '
                                            r'\(config.task.crop_size=90\) are not divisible'),
    (lambda c: c.loss.update(content='classifier'), r"jaxgan ships no classifier for 'photos'"),
])
def test_bad_photo_config_fails_in_one_line(change, message):
  config = _config('srgan_photos')
  change(config)
  with pytest.raises(ValueError, match=message) as e:
    sr.validate(config)
  assert '\n' not in str(e.value)


def test_photo_split_and_loading():
  skimage_data = pytest.importorskip('skimage.data')
  for name in ('srresnet_photos', 'srgan_photos'):
    config = _config(name)
    sr.validate(config)
    assert tuple(config.data.test_images) == sr.SET3 == ('astronaut', 'coffee', 'chelsea')
    assert set(config.data.train_images) | set(sr.SET3) == set(sr.PHOTOS)
    assert not set(config.data.train_images) & set(sr.SET3)
    assert (config.task.crop_size, config.task.lr_size, config.task.scale) == (96, 24, 4)
    assert sr.target_shape(config) == (96, 96, 3)
  photos = sr.load_photos(('camera', 'coffee'))
  assert list(photos) == ['camera', 'coffee']
  np.testing.assert_array_equal(photos['coffee'], skimage_data.coffee())
  camera = photos['camera']  # Greyscale, repeated to RGB.
  assert camera.shape == (512, 512, 3) and camera.dtype == np.uint8
  for c in range(3):
    np.testing.assert_array_equal(camera[:, :, c], skimage_data.camera())
  assert sr.crop_to_multiple(np.zeros((300, 451, 3)), 4).shape == (300, 448, 3)  # chelsea
  with pytest.raises(ValueError, match=r"\['eagle'\] are not photographs scikit-image ships"):
    sr.load_photos(('eagle',))


def test_photo_crops_are_a_pure_function_of_the_step():
  rng = np.random.default_rng(0)
  photos = {'a': rng.integers(0, 256, (40, 50, 3), dtype=np.uint8),
            'b': rng.integers(0, 256, (33, 70, 3), dtype=np.uint8)}
  make = lambda key: sr.photo_source(photos, jax.random.PRNGKey(key), 8, crop_size=32, factor=4)
  source = make(0)
  plan = np.asarray(source.plan(0, 4))
  assert plan.shape == (4, 8, 3) and plan.dtype == np.int32
  # The same batches again, from a fresh source and from a later start (a resumed run).
  np.testing.assert_array_equal(np.asarray(make(0).plan(0, 4)), plan)
  np.testing.assert_array_equal(np.asarray(source.plan(2, 2)), plan[2:])
  assert not np.array_equal(np.asarray(make(1).plan(0, 4)), plan)
  i, y, x = plan.reshape(-1, 3).T
  assert set(i) == {0, 1}
  heights, widths = np.array([40, 33]), np.array([50, 70])
  assert (y >= 0).all() and (y <= heights[i] - 32).all()
  assert (x >= 0).all() and (x <= widths[i] - 32).all()
  batch = jax.jit(source.batch)(source.data, plan[3])
  assert batch['hr'].shape == (8, 32, 32, 3) and batch['lr'].shape == (8, 8, 8, 3)
  for row, (k, top, left) in enumerate(plan[3]):
    crop = list(photos.values())[k][top:top + 32, left:left + 32]
    np.testing.assert_array_equal(batch['hr'][row], crop / np.float32(127.5) - np.float32(1))
  np.testing.assert_array_equal(batch['lr'], sr.downsample_box(batch['hr'], 4))
  sr.check_batch(batch, 1, batch_size=8, hr_shape=(32, 32, 3), factor=4)


def test_photo_smaller_than_crop_fails_in_one_line(tmp_path):
  with pytest.raises(ValueError, match=r"photo 'tiny' is 20x40, smaller than the 32x32 crop "
                                       r"\(config.task.crop_size=32\)"):
    sr.photo_source({'ok': np.zeros((32, 32, 3), np.uint8), 'tiny': np.zeros((20, 40, 3),
                                                                              np.uint8)},
                    jax.random.PRNGKey(0), 2, crop_size=32, factor=4)
  pytest.importorskip('skimage')
  config = _photo_config('srresnet_photos')
  config.data.train_images = ('coins', 'page')
  config.task.update({'crop_size': 256, 'lr_size': 64})
  with pytest.raises(ValueError, match=r"photo 'page' is 191x384, smaller than the 256x256 "
                                       r"crop") as e:
    sr.train_and_evaluate(config, str(tmp_path))
  assert '\n' not in str(e.value)
  assert not os.path.exists(tmp_path / 'checkpoints')


def test_vgg_content_loss_reads_the_converted_weights(tmp_path):
  rng = np.random.default_rng(0)
  state = {f'features.{i}.{part}': rng.normal(size=shape).astype(np.float32) * 0.1
           for i, c_in, c_out in (vgg.CONVS['conv1_1'], vgg.CONVS['conv1_2'])
           for part, shape in (('weight', (c_out, c_in, 3, 3)), ('bias', (c_out,)))}
  np.savez(tmp_path / 'vgg.npz', **vgg.convert_state_dict(state))
  config = _config('srgan_photos')
  config.loss.update({'content': 'vgg', 'vgg_weights': str(tmp_path / 'vgg.npz'),
                      'vgg_layer': 'relu1_2', 'vgg_scale': 0.5})
  sr.validate(config)
  images = rng.uniform(-1, 1, (4, 8, 8, 3)).astype(np.float32)
  phi = vgg.features(vgg.load_params(str(tmp_path / 'vgg.npz'), layer='relu1_2'),
                     layer='relu1_2')
  features = np.asarray(jax.jit(phi)(images))
  want = np.mean(np.square(0.5 * features[:2] - 0.5 * features[2:]))
  np.testing.assert_allclose(jax.jit(sr.content_loss(config))(images[:2], images[2:]), want,
                             rtol=1e-5)
  config.loss.vgg_layer = 'relu2_2'  # Past the convolutions the file holds.
  with pytest.raises(ValueError, match=r'has no features.5.weight \(conv2_1\)'):
    sr.content_loss(config)


def test_srgan_step_on_photo_crops_and_evaluator_on_whole_images():
  # The step traced on the crops (compiling it and the inits would take ~20 s here; the digit
  # tests run the same step, and the slow test below trains on photos through the driver).
  rng = np.random.default_rng(0)
  config = _photo_config()
  generator, discriminator = sr.build_models(config)
  state = jax.eval_shape(lambda key: sr.init_state(config, key, generator, discriminator),
                         jax.random.PRNGKey(0))
  assert state.d_params['dense']['kernel'].shape == (16 * 16 * 4, 8)  # D on 32x32 crops.
  assert state.g_params['head']['kernel'].shape == (9, 9, 3, 4)
  photos = {'a': rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)}
  source = sr.photo_source(photos, jax.random.PRNGKey(0), 2, crop_size=32, factor=4)
  batch = jax.eval_shape(source.batch, source.data, source.plan(0, 1)[0])
  assert batch['hr'].shape == (2, 32, 32, 3) and batch['lr'].shape == (2, 8, 8, 3)
  new, metrics = jax.eval_shape(sr.build_train_step(config, generator, discriminator), state,
                                batch, jax.random.PRNGKey(0))
  chex.assert_trees_all_equal_shapes_and_dtypes(new, state)
  assert all(metrics[k].shape == () for k in ('d_loss', 'g_loss', 'content', 'g_gan', 'psnr'))
  # Whole test images of two sizes, each cropped to a multiple of 4 (37x45 -> 36x44), scored on
  # the Y channel with a 4-pixel border; the mean is over images.
  images = [rng.integers(0, 256, (37, 45, 3), dtype=np.uint8),
            rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)]
  scores = sr.make_evaluator(config, Nearest(), images)(_state({'w': jnp.asarray(1.0)}, {}))
  luma = lambda im: (16 + ((im + 1) / 2) @ np.array([65.481, 128.553, 24.966])) / 255
  want = []
  for image in (images[0][:36, :44], images[1]):  # In numpy: BT.601 Y, peak 1, border 4.
    hr = image / 127.5 - 1
    h, w = hr.shape[:2]
    up = np.repeat(np.repeat(hr.reshape(h // 4, 4, w // 4, 4, 3).mean(axis=(1, 3)), 4, 0), 4, 1)
    want.append(10 * np.log10(1 / np.mean(np.square(luma(up) - luma(hr))[4:-4, 4:-4])))
  np.testing.assert_allclose(scores['psnr'], np.mean(want), rtol=1e-4)
  assert 0 < scores['ssim'] < 1


@pytest.mark.slow  # A driver run and three whole-photo evaluations to compile: 30-60 s here.
def test_srgan_trains_on_photos_and_evaluates_whole_images(tmp_path):
  pytest.importorskip('skimage')
  config = _photo_config(num_steps=2, eval_every=2)
  config.data.train_images = ('camera', 'coins')
  state = sr.train_and_evaluate(config, str(tmp_path))
  assert int(state.step) == 2 and state.d_params
  rows = _rows(tmp_path)
  assert [r['step'] for r in rows if 'g_loss' in r] == [1, 2]
  assert all(np.isfinite([r['g_loss'], r['d_loss'], r['content']]).all() for r in rows
             if 'g_loss' in r)
  # The test scores: the three whole Set3 photographs, Y channel, border 4.
  scores = [r for r in rows if 'ssim' in r][-1]
  assert np.isfinite(scores['psnr']) and -1 <= scores['ssim'] <= 1
  assert os.path.exists(tmp_path / 'samples' / 'step_2.png')
