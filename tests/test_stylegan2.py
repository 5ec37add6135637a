"""StyleGAN2's parts against their closed forms and invariants (arXiv:1912.04958, 1812.04948).

Parameters are filled from numpy (``_params``: shapes from ``jax.eval_shape``, no XLA-compiled
random numbers, which cost seconds on a CPU) with every bias, noise strength and ``w_avg``
non-zero, so that every term matters. Widths are tiny: each test compiles a few small programs.
"""

from __future__ import annotations

import math

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax import lax

from jaxgan import stylegan2 as sg

W_DIM = 8
TINY = dict(w_dim=W_DIM, channel_base=64, channel_max=8)


def _normal(seed: int, shape) -> np.ndarray:
  return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _params(module, *args, seed: int = 0, **kwargs):
  """All of ``module``'s variables filled with N(0, 1) from numpy; the mapping network's stored
  kernels with its init std ``1 / lr_multiplier`` = 100, so ``w`` depends visibly on ``z``."""
  shapes = jax.eval_shape(lambda: module.init(jax.random.key(0), *args, **kwargs))
  rng = np.random.default_rng(seed)

  def fill(path, s):
    names = [getattr(p, 'key', '') for p in path]
    std = 100.0 if 'mapping' in names and names[-1] == 'kernel' else 1.0
    return (std * rng.standard_normal(s.shape)).astype(s.dtype)
  return jax.tree_util.tree_map_with_path(fill, shapes)


@pytest.fixture(scope='module')
def generator():
  """A 8x8 generator (4 style inputs), its variables and a jitted apply."""
  g = sg.Generator(resolution=8, mapping_depth=2, style_mixing_probability=1.0, **TINY)
  z = jnp.zeros((4, W_DIM))
  variables = _params(g, z)
  return g, variables


# --- Equalized learning rate, pixel norm ---------------------------------------------------------

def test_equalized_dense_effective_weight_variance_and_output():
  fan_in, features, lr_mul, gain = 256, 512, 0.01, math.sqrt(2.0)
  layer = sg.EqualizedDense(features, gain=gain, lr_multiplier=lr_mul, bias_init=0.5)
  x = _normal(0, (3, fan_in))
  params = jax.jit(layer.init)(jax.random.key(0), x)['params']
  kernel, bias = np.asarray(params['kernel']), np.asarray(params['bias'])
  n = kernel.size  # 131072 draws: the variance's relative standard error is sqrt(2/n) = 0.4%.
  assert np.var(kernel) == pytest.approx(1 / lr_mul**2, rel=0.02)  # stored N(0, 1 / lambda^2)
  c = gain * lr_mul / math.sqrt(fan_in)
  # The effective weight has He's variance gain^2 / fan_in, whatever lambda is.
  assert np.var(c * kernel) == pytest.approx(gain**2 / fan_in, rel=0.02)
  assert abs(np.mean(c * kernel)) < 5 * math.sqrt(gain**2 / fan_in / n)
  np.testing.assert_allclose(bias * lr_mul, 0.5, rtol=1e-6)  # the effective bias starts at 0.5
  y = layer.apply({'params': params}, x)
  np.testing.assert_allclose(y, x @ (kernel * c) + bias * lr_mul, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('layer, x_shape, fan_in', [
    (sg.EqualizedDense(6, lr_multiplier=0.01), (5, 40), 40),
    (sg.EqualizedDense(6, gain=math.sqrt(2.0)), (5, 10), 10),
    (sg.EqualizedConv(4, 3, lr_multiplier=0.1), (2, 5, 5, 7), 63),
])
def test_adam_moves_every_effective_weight_by_lr_times_c(layer, x_shape, fan_in):
  """The point of equalized lr: Adam's first step (eps = 0) is lr * sign(g) on the stored weight,
  so the effective weight moves by exactly lr * c, c = gain * lambda / sqrt(fan_in)."""
  x = _normal(1, x_shape)
  params = _params(layer, x)['params']
  target = _normal(2, layer.apply({'params': params}, x).shape)
  loss = lambda p: jnp.sum((layer.apply({'params': p}, x) - target) ** 2)
  lr = 1e-3
  tx = optax.adam(lr, eps=0.0)
  updates, _ = tx.update(jax.grad(loss)(params), tx.init(params), params)
  c = layer.gain * layer.lr_multiplier / math.sqrt(fan_in)
  np.testing.assert_allclose(np.abs(c * updates['kernel']), lr * c, rtol=1e-4)
  # Relative to the effective weight's scale gain / sqrt(fan_in): lr * lambda in every layer.
  scale = layer.gain / math.sqrt(fan_in)
  np.testing.assert_allclose(np.abs(c * updates['kernel']) / scale, lr * layer.lr_multiplier,
                             rtol=1e-4)


def test_pixel_norm_gives_unit_mean_square_and_is_scale_invariant():
  x = _normal(3, (2, 3, 3, 16))
  y = sg.pixel_norm(x)
  np.testing.assert_allclose(np.mean(np.square(y), axis=-1), 1.0, rtol=1e-5)
  scale = np.abs(_normal(4, (2, 3, 3, 1))) + 0.1
  np.testing.assert_allclose(sg.pixel_norm(scale * x), y, rtol=1e-4, atol=1e-5)


# --- Modulated convolution ---------------------------------------------------------------------

def test_demodulated_kernels_have_unit_norm_per_output_channel():
  kernel = _normal(5, (3, 3, 6, 4))
  styles = _normal(6, (5, 6)) * np.array([[0.01], [0.1], [1.0], [10.0], [100.0]], np.float32)
  weights = np.asarray(sg.modulate_kernel(kernel, styles), np.float64)
  norms = np.sqrt(np.sum(weights**2, axis=(1, 2, 3)))  # (B, C_out)
  np.testing.assert_allclose(norms, 1.0, atol=1e-5)
  # Demodulation undoes any positive rescaling of an example's styles.
  np.testing.assert_allclose(sg.modulate_kernel(kernel, 7.0 * styles), weights, atol=1e-6)
  # The unfused form's factors are the reciprocal norms of the merely modulated kernels.
  modulated = np.asarray(sg.modulate_kernel(kernel, styles, demodulate=False), np.float64)
  np.testing.assert_allclose(sg.demodulation_factors(kernel, styles),
                             1 / np.sqrt(np.sum(modulated**2, axis=(1, 2, 3)) + 1e-8),
                             rtol=1e-5)


def _reference_modulated_conv(x, kernel, styles, demodulate):
  """One ordinary convolution per example with its own kernel w''_b (the definition)."""
  weights = sg.modulate_kernel(kernel, styles, demodulate=demodulate)
  return jnp.stack([lax.conv_general_dilated(x[b:b + 1], weights[b], (1, 1), 'SAME',
                                             dimension_numbers=('NHWC', 'HWIO', 'NHWC'),
                                             precision='highest')[0]
                    for b in range(x.shape[0])])


@pytest.mark.parametrize('kernel_size, demodulate', [(3, True), (3, False), (1, False)])
def test_fused_and_unfused_modulated_conv_agree(kernel_size, demodulate):
  x = _normal(7, (3, 6, 6, 5))
  kernel = _normal(8, (kernel_size, kernel_size, 5, 4)) / math.sqrt(kernel_size**2 * 5)
  styles = 1.0 + 0.5 * _normal(9, (3, 5))
  fused, unfused, reference = jax.jit(lambda x, k, s: (
      sg.modulated_conv_fused(x, k, s, demodulate=demodulate, precision='highest'),
      sg.modulated_conv_unfused(x, k, s, demodulate=demodulate, precision='highest'),
      _reference_modulated_conv(x, k, s, demodulate)))(x, kernel, styles)
  assert fused.shape == (3, 6, 6, 4)
  assert np.max(np.abs(reference)) > 0.5  # values of order 1: the tolerance is meaningful
  np.testing.assert_allclose(fused, reference, atol=1e-5)
  np.testing.assert_allclose(unfused, reference, atol=1e-5)
  np.testing.assert_allclose(fused, unfused, atol=1e-5)


@pytest.mark.slow  # 6 s; the op-level fused/unfused test above runs by default.
def test_fused_and_unfused_synthesis_networks_agree(generator):
  g, variables = generator
  ws = jnp.asarray(_normal(10, (3, g.num_ws, W_DIM)))
  synth = lambda fused: sg.SynthesisNetwork(resolution=8, fused_modconv=fused, **TINY)
  params = {'params': variables['params']['synthesis']}
  key = jax.random.key(3)
  fused, unfused = jax.jit(lambda p, ws: (synth(True).apply(p, ws, noise_key=key),
                                          synth(False).apply(p, ws, noise_key=key)))(params, ws)
  assert fused.shape == (3, 8, 8, 1)
  scale = np.max(np.abs(fused))
  np.testing.assert_allclose(fused / scale, unfused / scale, atol=1e-5)


# --- w: running average, truncation, mixing ----------------------------------------------------

def test_psi_zero_maps_every_z_to_w_avg(generator):
  g, variables = generator
  w_avg = np.asarray(variables['batch_stats']['w_avg'])
  assert np.all(w_avg != 0)
  z = _normal(11, (4, W_DIM))
  run = jax.jit(lambda z, psi: (
      g.apply(variables, z, psi=psi, method=sg.Generator.mapping), g.apply(variables, z, psi=psi)),
      static_argnums=1)
  ws, images = run(z, 0.0)
  np.testing.assert_allclose(ws, np.broadcast_to(w_avg, ws.shape), rtol=0, atol=0)
  np.testing.assert_array_equal(images, np.broadcast_to(images[:1], images.shape))
  full, _ = run(z, 1.0)
  assert np.min(np.abs(full[0, 0] - full[1, 0])) > 0  # without truncation z does matter
  half, _ = run(z, 0.5)
  np.testing.assert_allclose(half, w_avg + 0.5 * (full - w_avg), rtol=1e-6, atol=1e-5)
  # Only the first `cutoff` layers are truncated.
  cut = sg.truncate(full, w_avg, 0.0, cutoff=2)
  np.testing.assert_array_equal(cut[:, :2], np.broadcast_to(w_avg, cut[:, :2].shape))
  np.testing.assert_array_equal(cut[:, 2:], full[:, 2:])


def test_style_mix_at_cutoff_zero_or_past_the_last_layer_is_no_mixing(generator):
  """Convention: layers [0, c) from z_1, [c, L) from z_2; c = L is G(z_1), c = 0 is G(z_2)."""
  g, variables = generator
  L = g.num_ws
  z_1, z_2 = _normal(12, (4, W_DIM)), _normal(13, (4, W_DIM))
  mapping = jax.jit(lambda z: g.apply(variables, z, method=sg.Generator.mapping))
  synth = jax.jit(lambda ws: g.apply(variables, ws, method=sg.Generator.synthesize))
  ws_1, ws_2 = mapping(z_1), mapping(z_2)
  np.testing.assert_array_equal(synth(sg.style_mix(ws_1, ws_2, L)), synth(ws_1))
  np.testing.assert_array_equal(synth(sg.style_mix(ws_1, ws_2, 0)), synth(ws_2))
  # The whole G (another program: equal up to rounding) is synthesis of its mapping.
  np.testing.assert_allclose(synth(ws_1), jax.jit(g.apply)(variables, z_1), atol=1e-5)
  mixed = synth(sg.style_mix(ws_1, ws_2, jnp.array([1, 2, 3, 2])))
  for image in (synth(ws_1), synth(ws_2)):
    assert np.all(np.max(np.abs(mixed - image), axis=(1, 2, 3)) > 1e-4)


def test_mixing_cutoffs_distribution():
  L, n = 8, 4000
  key = jax.random.key(4)
  np.testing.assert_array_equal(sg.mixing_cutoffs(key, n, L, 0.0), L)
  always = np.asarray(sg.mixing_cutoffs(key, n, L, 1.0))
  assert always.min() == 1 and always.max() == L - 1
  assert set(always.tolist()) == set(range(1, L))
  mixed = np.mean(np.asarray(sg.mixing_cutoffs(key, n, L, 0.9)) < L)
  assert abs(mixed - 0.9) < 4 * math.sqrt(0.9 * 0.1 / n)


def test_training_mapping_mixes_updates_w_avg_with_the_documented_keys(generator):
  g, variables = generator
  z = _normal(14, (4, W_DIM))
  key = jax.random.key(5)
  ws, updates = jax.jit(lambda z: g.apply(variables, z, key=key, train=True,
                                          method=sg.Generator.mapping,
                                          mutable=['batch_stats']))(z)
  mapping = jax.jit(lambda z: g.apply(variables, z, method=sg.Generator.mapping)[:, 0])
  w_1 = mapping(z)
  k_mix = jax.random.split(key)[0]
  w_2 = mapping(jax.random.normal(jax.random.fold_in(k_mix, 0), z.shape))
  cutoffs = sg.mixing_cutoffs(jax.random.fold_in(k_mix, 1), 4, g.num_ws, 1.0)
  for b, c in enumerate(np.asarray(cutoffs)):
    np.testing.assert_allclose(ws[b, :c], np.broadcast_to(w_1[b], ws[b, :c].shape), atol=1e-6)
    np.testing.assert_allclose(ws[b, c:], np.broadcast_to(w_2[b], ws[b, c:].shape), atol=1e-6)
  old = variables['batch_stats']['w_avg']
  np.testing.assert_allclose(updates['batch_stats']['w_avg'],
                             0.995 * old + 0.005 * np.mean(w_1, axis=0), rtol=1e-6, atol=1e-6)
  np.testing.assert_allclose(sg.update_w_avg(old, w_1, decay=0.9),
                             0.9 * old + 0.1 * np.mean(w_1, axis=0), rtol=1e-6)


def test_noise_comes_from_the_key_scaled_by_learned_strengths(generator):
  g, variables = generator
  z = _normal(15, (2, W_DIM))
  run = jax.jit(lambda v, key: g.apply(v, z, key=key))
  a, b, c = (run(variables, jax.random.key(i)) for i in (1, 1, 2))
  np.testing.assert_array_equal(a, b)
  assert np.max(np.abs(a - c)) > 1e-3
  silent = flax.traverse_util.unflatten_dict({
      k: (np.zeros_like(v) if k[-1] == 'noise_strength' else v)
      for k, v in flax.traverse_util.flatten_dict(variables).items()})
  np.testing.assert_allclose(run(silent, jax.random.key(1)), run(silent, jax.random.key(2)),
                             rtol=0, atol=1e-6)
  no_key = jax.jit(lambda v: g.apply(v, z))(silent)
  np.testing.assert_allclose(run(silent, jax.random.key(1)), no_key, atol=1e-5)


# --- Path-length regularization ----------------------------------------------------------------

H, W, C, L, D = 4, 4, 2, 2, 3


def _linear_synthesis(seed=16):
  """``g(w)_b = sum_l A_l w_{b,l}`` reshaped to (H, W, C): J_{w_l} = A_l, an (HWC x D) matrix."""
  a = _normal(seed, (L, D, H * W * C)) / 3
  fn = lambda ws: jnp.einsum('bld,ldm->bm', ws, a, precision='highest').reshape(
      (ws.shape[0], H, W, C))
  # E[l^2] = E[y^T K y] with K = (1/L) sum_l A_l A_l^T and y ~ N(0, I / (HW)):
  # tr(K) / (HW), variance 2 tr(K^2) / (HW)^2.
  k = np.einsum('ldm,ldn->mn', a.astype(np.float64), a.astype(np.float64)) / L
  return fn, a, np.trace(k) / (H * W), 2 * np.trace(k @ k) / (H * W) ** 2


def test_path_lengths_are_the_vjp_norms():
  fn, a, _, _ = _linear_synthesis()
  ws, y = _normal(17, (5, L, D)), _normal(18, (5, H, W, C))
  grads = np.einsum('ldm,bm->bld', a, y.reshape((5, -1)))  # J_{w_l}^T y = A_l^T y
  np.testing.assert_allclose(sg.path_lengths(fn, ws, y),
                             np.sqrt(np.mean(np.sum(grads**2, axis=2), axis=1)), rtol=1e-5)


def test_path_length_expectation_is_trace_over_hw():
  """E||J_w^T y||^2 = tr(J J^T) / (HW) for y ~ N(0, I) / sqrt(HW), against Monte Carlo.

  With ``decay = 1`` the running mean becomes the batch mean of the lengths, so the penalty is
  their variance and ``penalty + a'^2`` their mean square: the estimate from the function's own
  draw of ``y`` (its 1/sqrt(HW) scaling is what is tested, not that of H W C).
  """
  fn, _, expected, variance = _linear_synthesis()
  n = 20_000
  ws = jnp.zeros((n, L, D))  # a linear map's Jacobian does not depend on w
  penalty, mean = jax.jit(lambda ws: sg.path_length_penalty(fn, ws, jax.random.key(6), 0.0,
                                                            decay=1.0))(ws)
  estimate = float(penalty) + float(mean) ** 2
  assert abs(estimate - expected) < 4.5 * math.sqrt(variance / n), (estimate, expected)
  # Scaling y by 1/sqrt(HWC) instead would give expected / C: far outside the tolerance.
  assert abs(expected / C - expected) > 20 * math.sqrt(variance / n)


def test_path_length_running_mean_and_penalty():
  fn, _, _, _ = _linear_synthesis()
  ws = jnp.asarray(_normal(19, (64, L, D)))
  key, a = jax.random.key(7), 0.7
  penalty = jax.jit(lambda a, decay: sg.path_length_penalty(fn, ws, key, a, decay=decay),
                    static_argnums=1)
  var, batch_mean = penalty(a, 1.0)  # the same key: the same y, the same lengths
  pl, new_mean = penalty(a, 0.01)
  np.testing.assert_allclose(new_mean, a + 0.01 * (batch_mean - a), rtol=1e-6)
  # mean((l - a')^2) = var(l) + (mean(l) - a')^2.
  np.testing.assert_allclose(pl, var + (batch_mean - new_mean) ** 2, rtol=1e-5)


def test_path_length_penalty_differentiates_through_the_vjp():
  """For g(w) = t * A w the lengths scale by t: d/dt mean((t l - a')^2) = 2 mean((t l - a') l)."""
  fn, _, _, _ = _linear_synthesis()
  ws, key = jnp.asarray(_normal(20, (32, L, D))), jax.random.key(8)
  penalty = lambda t: sg.path_length_penalty(lambda ws: t * fn(ws), ws, key, 0.5)
  t = 1.3
  grad, (_, new_mean) = jax.jit(lambda t: (jax.grad(lambda t: penalty(t)[0])(t), penalty(t)))(t)
  y = jax.random.normal(key, (32, H, W, C)) / math.sqrt(H * W)  # the penalty's draw
  lengths = jax.jit(sg.path_lengths, static_argnums=0)(fn, ws, y)
  np.testing.assert_allclose(grad, 2 * np.mean((t * lengths - new_mean) * lengths), rtol=1e-4)


# --- Whole networks ------------------------------------------------------------------------------

def test_synthesis_layout_for_32x32():
  g = sg.Generator(resolution=32, mapping_depth=3, **TINY)
  assert g.num_ws == sg.num_ws(32) == 8
  shapes = jax.eval_shape(lambda: g.init(jax.random.key(0), jnp.zeros((2, W_DIM))))
  synthesis = shapes['params']['synthesis']
  assert sorted(synthesis) == sorted(
      ['const', 'b4_conv1', 'b4_torgb'] + [f'b{r}_{n}' for r in (8, 16, 32)
                                          for n in ('conv0', 'conv1', 'torgb')])
  assert sorted(shapes['params']['mapping']) == ['dense_0', 'dense_1', 'dense_2']
  images = jax.eval_shape(lambda v: g.apply(v, jnp.zeros((2, W_DIM))), shapes)
  assert images.shape == (2, 32, 32, 1)


def test_discriminator_sees_other_examples_only_through_its_minibatch_stddev_group():
  d = sg.Discriminator(resolution=8, channel_base=64, channel_max=8, mbstd_group_size=4)
  x = _normal(21, (8, 8, 8, 1))
  variables = _params(d, x)
  run = jax.jit(d.apply)
  logits = run(variables, x)
  assert logits.shape == (8,)
  other_group = x.copy()
  other_group[4:] = _normal(22, (4, 8, 8, 1))
  np.testing.assert_array_equal(run(variables, other_group)[:4], logits[:4])
  same_group = x.copy()
  same_group[1] = _normal(23, (8, 8, 1))
  assert abs(run(variables, same_group)[0] - logits[0]) > 1e-6


# --- Bad input ----------------------------------------------------------------------------------

@pytest.mark.parametrize('make, match', [
    (lambda: sg.Generator(resolution=12), 'power of two >= 4'),
    (lambda: sg.Generator(resolution=2), 'power of two >= 4'),
    (lambda: sg.SynthesisNetwork(resolution=48), 'power of two >= 4'),
    (lambda: sg.Discriminator(resolution=0), 'power of two >= 4'),
    (lambda: sg.Generator(style_mixing_probability=1.5), r'mixing probability must be in \[0, 1\]'),
    (lambda: sg.Generator(style_mixing_probability=-0.1), r'must be in \[0, 1\]'),
    (lambda: sg.mixing_cutoffs(jax.random.key(0), 2, 4, 2.0), r'must be in \[0, 1\]'),
    (lambda: sg.Generator(mapping_depth=0), 'mapping depth must be an integer >= 1'),
    (lambda: sg.MappingNetwork(depth=0), 'mapping depth must be an integer >= 1'),
    (lambda: sg.truncate(jnp.zeros((1, 2)), jnp.zeros(2), -0.5), 'psi must be >= 0'),
    (lambda: sg.EqualizedDense(3, lr_multiplier=0.0), 'lr_multiplier must be > 0'),
])
def test_bad_input_raises_one_line_value_errors(make, match):
  with pytest.raises(ValueError, match=match) as error:
    make()
  assert '\n' not in str(error.value)


def test_negative_psi_raises_before_compiling(generator):
  g, variables = generator
  with pytest.raises(ValueError, match='psi must be >= 0, got -1'):
    g.apply(variables, jnp.zeros((1, W_DIM)), psi=-1.0)
