"""Image parts against references: PSNR and SSIM against scikit-image (and, for the
super-resolution convention, against a NumPy Y channel fed to scikit-image), pixel_shuffle
against a loop over its definition (and PyTorch where installed), and the cycle-consistency loss
against a hand-computed value."""

from __future__ import annotations

import doctest
import functools
import math
import re
import sys

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from jaxgan import layers, losses, metrics


def _pair(seed, shape, *, low=-1.0, high=1.0, noise=0.3):
  """Random images in [low, high] and a noisy, clipped copy, float32 (B, H, W, C)."""
  rng = np.random.default_rng(seed)
  x = rng.uniform(low, high, shape)
  y = np.clip(x + noise * (high - low) / 2 * rng.normal(size=shape), low, high)
  return x.astype(np.float32), y.astype(np.float32)


def _skimage_ssim(x, y, data_range):
  """Per-image reference: skimage with Wang et al.'s settings, channels averaged."""
  return np.array([
      structural_similarity(a.astype(np.float64), b.astype(np.float64), gaussian_weights=True,
                            sigma=1.5, use_sample_covariance=False, data_range=data_range,
                            channel_axis=-1) for a, b in zip(x, y, strict=True)])


def _skimage_psnr(x, y, data_range):
  return np.array([peak_signal_noise_ratio(a.astype(np.float64), b.astype(np.float64),
                                           data_range=data_range)
                   for a, b in zip(x, y, strict=True)])


def _numpy_y(images):
  """BT.601 Y on the 0-255 scale from [-1, 1] RGB, written from the formula."""
  rgb = (images.astype(np.float64) + 1) / 2
  return 16 + 65.481 * rgb[..., 0:1] + 128.553 * rgb[..., 1:2] + 24.966 * rgb[..., 2:3]


def _crop(images, border):
  return images[:, border:images.shape[1] - border, border:images.shape[2] - border]


class TestSSIM:

  @pytest.mark.parametrize('shape, data_range, low, high', [
      ((3, 28, 28, 1), 2.0, -1.0, 1.0),
      ((2, 32, 40, 3), 2.0, -1.0, 1.0),
      ((2, 11, 13, 2), 1.0, 0.0, 1.0),  # the smallest size, one interior row
      ((1, 20, 16, 3), 255.0, 0.0, 255.0),
  ])
  def test_matches_skimage(self, shape, data_range, low, high):
    x, y = _pair(shape[1] * shape[2], shape, low=low, high=high)
    got = metrics.ssim(x, y, data_range=data_range)
    chex.assert_shape(got, (shape[0],))
    expected = _skimage_ssim(x, y, data_range)
    assert np.all((expected > 0.2) & (expected < 0.9))  # a value that could be wrong
    np.testing.assert_allclose(got, expected, atol=1e-4)

  def test_constant_image_matches_skimage(self):
    x, y = _pair(1, (2, 24, 24, 3))
    x[0] = 0.25  # sigma_x = 0 everywhere: only C2 keeps the structure term finite
    y[1] = -0.5
    expected = _skimage_ssim(x, y, 2.0)
    np.testing.assert_allclose(metrics.ssim(x, y), expected, atol=1e-4)
    assert np.all(np.abs(expected) < 0.1)

  def test_data_range_changes_the_value(self):
    x, y = _pair(2, (1, 16, 16, 1))
    small, large = metrics.ssim(x, y, data_range=2.0), metrics.ssim(x, y, data_range=20.0)
    np.testing.assert_allclose(large, _skimage_ssim(x, y, 20.0), atol=1e-4)
    assert float(large[0]) > float(small[0]) + 0.05  # larger C1, C2: closer to 1

  def test_identical_images_give_one(self):
    x, _ = _pair(3, (2, 16, 16, 3))
    np.testing.assert_allclose(metrics.ssim(x, x), [1.0, 1.0], atol=1e-6)

  def test_symmetric_and_negated(self):
    x, y = _pair(4, (2, 16, 16, 1))
    np.testing.assert_allclose(metrics.ssim(x, y), metrics.ssim(y, x), atol=1e-6)
    # x against -x: negative luminance and structure terms, a positive product.
    np.testing.assert_allclose(metrics.ssim(x, -x), _skimage_ssim(x, -x, 2.0), atol=1e-4)


class TestPSNR:

  def test_hand_value(self):
    x, y = jnp.zeros((2, 4, 5, 3)), jnp.full((2, 4, 5, 3), 0.1)
    np.testing.assert_allclose(metrics.psnr(x, y), [10 * math.log10(4 / 0.01)] * 2, rtol=1e-5)
    # data_range 1: 10 log10(1 / 0.01) = 20 dB exactly.
    np.testing.assert_allclose(metrics.psnr(x, y, data_range=1.0), [20.0, 20.0], rtol=1e-5)

  @pytest.mark.parametrize('shape, data_range', [((3, 8, 8, 1), 2.0), ((2, 32, 40, 3), 2.0),
                                                 ((2, 5, 7, 3), 255.0)])
  def test_matches_skimage(self, shape, data_range):
    x, y = _pair(5, shape, low=0.0 if data_range == 255.0 else -1.0,
                 high=255.0 if data_range == 255.0 else 1.0)
    got = metrics.psnr(x, y, data_range=data_range)
    chex.assert_shape(got, (shape[0],))
    np.testing.assert_allclose(got, _skimage_psnr(x, y, data_range), rtol=1e-5)

  def test_per_image_not_batch_mse(self):
    x = np.zeros((2, 4, 4, 1), np.float32)
    y = np.stack([np.full((4, 4, 1), 0.1), np.full((4, 4, 1), 0.2)]).astype(np.float32)
    np.testing.assert_allclose(metrics.psnr(x, y),
                               [10 * math.log10(4 / 0.01), 10 * math.log10(4 / 0.04)], rtol=1e-5)

  def test_identical_images_give_inf(self):
    x, _ = _pair(6, (2, 8, 8, 3))
    assert np.all(np.isposinf(np.asarray(metrics.psnr(x, x))))


class TestSuperResolutionConvention:

  def test_crop_border_matches_cropped_skimage(self):
    x, y = _pair(7, (2, 30, 26, 3))
    y[:, :4] = -x[:, :4]  # a damaged border that the crop must remove
    for border in (0, 4):
      np.testing.assert_allclose(metrics.ssim(x, y, crop_border=border),
                                 _skimage_ssim(_crop(x, border), _crop(y, border), 2.0),
                                 atol=1e-4)
      np.testing.assert_allclose(metrics.psnr(x, y, crop_border=border),
                                 _skimage_psnr(_crop(x, border), _crop(y, border), 2.0),
                                 rtol=1e-5)
    assert float(metrics.psnr(x, y, crop_border=4)[0]) > float(metrics.psnr(x, y)[0]) + 1

  def test_y_channel_matches_numpy_luma(self):
    x, y = _pair(8, (2, 24, 28, 3))
    y = np.clip(0.8 * y + 0.15, -1, 1).astype(np.float32)  # a brightness change: SSIM sees 16
    border = 3
    y_x, y_y = _numpy_y(_crop(x, border)), _numpy_y(_crop(y, border))
    expected_ssim = _skimage_ssim(y_x, y_y, 255.0)
    np.testing.assert_allclose(metrics.ssim(x, y, crop_border=border, y_channel=True),
                               expected_ssim, atol=1e-4)
    np.testing.assert_allclose(metrics.psnr(x, y, crop_border=border, y_channel=True),
                               _skimage_psnr(y_x, y_y, 255.0), rtol=1e-5)
    # The offset 16 matters to SSIM (the luminance term), so the reference above pins it.
    no_offset = _skimage_ssim(y_x - 16, y_y - 16, 255.0)
    assert np.all(np.abs(no_offset - expected_ssim) > 1e-3)

  def test_y_channel_psnr_hand_value(self):
    # R = G = B shift by 0.1 in [0, 1] (0.2 in [-1, 1]): Y moves by (65.481+128.553+24.966) * 0.1.
    x, y = jnp.zeros((1, 6, 6, 3)), jnp.full((1, 6, 6, 3), 0.2)
    np.testing.assert_allclose(metrics.psnr(x, y, y_channel=True),
                               [20 * math.log10(255 / 21.9)], rtol=1e-5)


class TestJitAndErrors:

  def test_jit_matches_eager(self):
    x, y = _pair(9, (2, 20, 20, 3))
    for fn in (metrics.psnr, metrics.ssim):
      np.testing.assert_allclose(jax.jit(fn)(x, y), fn(x, y), rtol=1e-6)
      sr = functools.partial(fn, crop_border=2, y_channel=True)
      np.testing.assert_allclose(jax.jit(sr)(x, y), sr(x, y), rtol=1e-6)

  @pytest.mark.parametrize('fn', [metrics.psnr, metrics.ssim])
  @pytest.mark.parametrize('x_shape, y_shape, kwargs, message', [
      ((16, 16, 3), (16, 16, 3), {}, '(16, 16, 3)'),
      ((1, 16, 16, 3), (1, 16, 15, 3), {}, '(1, 16, 15, 3)'),
      ((1, 16, 16, 3), (1, 16, 16, 3), {'data_range': 0.0}, 'data_range=0.0'),
      ((1, 16, 16, 3), (1, 16, 16, 3), {'data_range': -1.0}, 'data_range=-1.0'),
      ((1, 16, 16, 3), (1, 16, 16, 3), {'crop_border': 8}, 'crop_border=8'),
      ((1, 16, 16, 3), (1, 16, 16, 3), {'crop_border': -1}, 'crop_border=-1'),
      ((1, 16, 16, 1), (1, 16, 16, 1), {'y_channel': True}, 'C = 1'),
      ((1, 16, 16, 3), (1, 16, 16, 3), {'y_channel': True, 'data_range': 1.0}, 'data_range=1.0'),
  ])
  def test_bad_inputs(self, fn, x_shape, y_shape, kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
      fn(jnp.zeros(x_shape), jnp.zeros(y_shape), **kwargs)

  def test_ssim_window_too_large(self):
    with pytest.raises(ValueError, match='10x12'):
      metrics.ssim(jnp.zeros((1, 10, 12, 1)), jnp.zeros((1, 10, 12, 1)))
    with pytest.raises(ValueError, match='10x10'):  # 14x14 cropped by 2
      metrics.ssim(jnp.zeros((1, 14, 14, 1)), jnp.zeros((1, 14, 14, 1)), crop_border=2)
    assert np.isfinite(float(metrics.psnr(jnp.zeros((1, 10, 12, 1)), jnp.ones((1, 10, 12, 1)))[0]))


def _pixel_shuffle_loops(x, r):
  b, h, w, channels = x.shape
  out = np.zeros((b, h * r, w * r, channels // (r * r)), x.dtype)
  for bi in range(b):
    for hi in range(h):
      for wi in range(w):
        for c in range(channels // (r * r)):
          for i in range(r):
            for j in range(r):
              out[bi, hi * r + i, wi * r + j, c] = x[bi, hi, wi, c * r * r + i * r + j]
  return out


class TestPixelShuffle:

  @pytest.mark.parametrize('shape, factor', [((2, 3, 4, 8), 2), ((1, 2, 3, 18), 3),
                                             ((2, 2, 2, 5), 1)])
  def test_matches_definition(self, shape, factor):
    x = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    got = layers.pixel_shuffle(jnp.asarray(x), factor)
    chex.assert_shape(got, (shape[0], shape[1] * factor, shape[2] * factor,
                            shape[3] // factor**2))
    np.testing.assert_array_equal(got, _pixel_shuffle_loops(x, factor))

  def test_first_block(self):
    # One pixel, 2 output channels, r = 2: channel c's block is x[4c:4c+4] row by row.
    got = layers.pixel_shuffle(jnp.arange(8).reshape(1, 1, 1, 8), 2)
    np.testing.assert_array_equal(got[0, :, :, 0], [[0, 1], [2, 3]])
    np.testing.assert_array_equal(got[0, :, :, 1], [[4, 5], [6, 7]])

  def test_jit_and_numpy_int_factor(self):
    x = jnp.arange(2 * 3 * 3 * 12, dtype=jnp.float32).reshape(2, 3, 3, 12)
    np.testing.assert_array_equal(jax.jit(layers.pixel_shuffle, static_argnums=1)(x, 2),
                                  layers.pixel_shuffle(x, np.int64(2)))

  def test_matches_torch(self):
    torch = pytest.importorskip('torch')
    x = np.random.default_rng(0).normal(size=(2, 3, 5, 12)).astype(np.float32)
    expected = torch.nn.functional.pixel_shuffle(torch.from_numpy(x.transpose(0, 3, 1, 2)), 2)
    np.testing.assert_array_equal(layers.pixel_shuffle(jnp.asarray(x), 2),
                                  expected.numpy().transpose(0, 2, 3, 1))

  @pytest.mark.parametrize('shape, factor, message', [
      ((3, 4, 8), 2, '(3, 4, 8)'),
      ((1, 3, 4, 8), 0, 'factor=0'),
      ((1, 3, 4, 8), 2.0, 'factor=2.0'),
      ((1, 3, 4, 8), True, 'factor=True'),
      ((1, 3, 4, 8), 3, 'channels=8'),
  ])
  def test_bad_inputs(self, shape, factor, message):
    with pytest.raises(ValueError, match=re.escape(message)):
      layers.pixel_shuffle(jnp.zeros(shape), factor)


class TestCycleConsistencyLoss:

  def test_hand_value(self):
    real = jnp.array([[[0.0, 1.0], [-1.0, 0.5]]])
    reconstructed = jnp.array([[[0.5, 0.0], [-1.0, -0.5]]])
    # |-0.5| + |1| + 0 + |1| over 4 elements.
    np.testing.assert_allclose(losses.cycle_consistency_loss(real, reconstructed), 0.625,
                               rtol=1e-6)
    np.testing.assert_allclose(jax.jit(losses.cycle_consistency_loss)(reconstructed, real),
                               0.625, rtol=1e-6)

  def test_gradient_is_mean_sign(self):
    real, reconstructed = jnp.array([0.0, 1.0, 2.0, 3.0]), jnp.array([1.0, 0.0, 2.5, 2.0])
    grad = jax.grad(losses.cycle_consistency_loss, argnums=1)(real, reconstructed)
    np.testing.assert_allclose(grad, [0.25, -0.25, 0.25, -0.25])

  def test_shape_mismatch(self):
    with pytest.raises(ValueError, match=re.escape('(2, 3)')):
      losses.cycle_consistency_loss(jnp.zeros((2, 3)), jnp.zeros((3, 2)))


@pytest.mark.parametrize('fn', [metrics.psnr, metrics.ssim, layers.pixel_shuffle,
                                losses.cycle_consistency_loss])
def test_docstring_example(fn):
  runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
  for test in doctest.DocTestFinder().find(fn, globs=vars(sys.modules[fn.__module__]).copy()):
    runner.run(test)
  assert runner.summarize(verbose=False).failed == 0
  assert runner.summarize(verbose=False).attempted > 0
