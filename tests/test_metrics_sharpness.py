"""metrics.gradient_magnitude against hand-computed values and its closed form on ramps."""

import chex
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan import metrics


def test_hand_computed_two_by_two():
  # One 2x2 window: dh = 3 - 1 = 2 (down), dw = 2 - 1 = 1 (right): sqrt(5) at the only pixel.
  x = jnp.array([[1.0, 2.0], [3.0, 7.0]])[None, :, :, None]
  chex.assert_trees_all_close(metrics.gradient_magnitude(x), jnp.array([np.sqrt(5.0)]),
                              rtol=1e-6)


def test_ramp_closed_form_and_channel_mean():
  # x[h, w] = a h + b w: every forward difference is (a, b), so G = sqrt(a^2 + b^2) exactly;
  # channel 1 is constant (G = 0), so the channel mean halves it.
  h, w = np.meshgrid(np.arange(9.0), np.arange(7.0), indexing='ij')
  ramp = 0.3 * h - 0.4 * w
  x = np.stack([ramp, np.full_like(ramp, 5.0)], axis=-1)[None]
  chex.assert_trees_all_close(metrics.gradient_magnitude(x), jnp.array([0.25]), rtol=1e-5)


def test_blur_lowers_it_and_crop_border():
  rng = np.random.default_rng(0)
  x = rng.uniform(-1, 1, (2, 12, 12, 1)).astype(np.float32)
  blurred = (x + np.roll(x, 1, 1) + np.roll(x, 1, 2) + np.roll(x, (1, 1), (1, 2))) / 4
  assert np.all(metrics.gradient_magnitude(blurred) < metrics.gradient_magnitude(x))
  chex.assert_trees_all_close(metrics.gradient_magnitude(x, crop_border=3),
                              metrics.gradient_magnitude(x[:, 3:9, 3:9]))


@pytest.mark.parametrize('x, crop, match', [
    (np.zeros((4, 4, 1)), 0, r'\(B, H, W, C\)'),
    (np.zeros((1, 4, 4, 1)), 2, 'crop_border=2 leaves 0x0'),
    (np.zeros((1, 4, 4, 1)), -1, 'crop_border must be an int'),
])
def test_bad_input(x, crop, match):
  with pytest.raises(ValueError, match=match):
    metrics.gradient_magnitude(x, crop_border=crop)
