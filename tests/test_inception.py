"""FID's Inception-v3 port, without torch and without the real weights: the converter's layout
against hand-computed convolutions, the patched pools and batch norm against hand values, the
resize against torch's formula and ``jax.image.resize``, the weight-file checks and their
messages, the cached reference statistics against a closed-form Fréchet distance.

The port itself is checked against pytorch-fid's network by ``benchmarks/verify_inception.py``
(:func:`test_verification_against_pytorch_fid`, slow, where torch and pytorch-fid import)."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan import metrics
from jaxgan.eval import inception, reference

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope='module')
def names():
  return inception.torch_names()


def _zero_state(names, **overrides):
  """A pytorch-fid-shaped state dict (torch layouts, numpy arrays): zeros but ``overrides``."""
  state = {key: np.zeros(inception._torch_shape(shape), np.float32)
           for key, (_, _, shape) in names.items()}
  state.update(overrides)
  return state


# Random torch-layout entries that the converter tests follow through: a strided 3x3, a 1x7
# (along the width), a 7x1 (along the height), a batch-norm variance and the fc layer.
_RNG = np.random.default_rng(0)
RANDOM_ENTRIES = {
    'Conv2d_1a_3x3.conv.weight': _RNG.normal(size=(32, 3, 3, 3)).astype(np.float32),
    'Mixed_6b.branch7x7_2.conv.weight': _RNG.normal(size=(128, 128, 1, 7)).astype(np.float32),
    'Mixed_6b.branch7x7_3.conv.weight': _RNG.normal(size=(192, 128, 7, 1)).astype(np.float32),
    'Conv2d_1a_3x3.bn.running_var': _RNG.uniform(0.5, 2, size=(32,)).astype(np.float32),
    'fc.weight': _RNG.normal(size=(1008, 2048)).astype(np.float32),
    'fc.bias': _RNG.normal(size=(1008,)).astype(np.float32),
}


@pytest.fixture(scope='module')
def converted(names):
  """``convert_state_dict`` of a zero state dict with :data:`RANDOM_ENTRIES` (converted once:
  24M numbers)."""
  return inception.convert_state_dict(_zero_state(names, **RANDOM_ENTRIES))


@pytest.fixture(scope='module')
def converted_npz(converted, tmp_path_factory):
  """:func:`converted` as an ``.npz`` that says it came from pytorch-fid's file."""
  path = str(tmp_path_factory.mktemp('weights') / 'converted.npz')
  np.savez(path, **converted, **{inception.SOURCE_DIGEST_KEY: np.array(
      inception.FID_WEIGHTS_SHA256)})
  return path


# --- Layout: the network's variables are pytorch-fid's state dict --------------------------------


def test_variables_are_pytorch_fids_state_dict(names):
  # fid_inception_v3().state_dict() has 566 entries: 472 float ones + 94 num_batches_tracked.
  assert len(names) == 472
  assert sum(1 for k in names if k.endswith('running_var')) == 94
  assert names['Conv2d_1a_3x3.conv.weight'] == ('params', ('Conv2d_1a_3x3', 'conv', 'kernel'),
                                                (3, 3, 3, 32))
  assert names['Mixed_6b.branch7x7_2.conv.weight'][2] == (1, 7, 128, 128)
  assert names['Mixed_6b.branch7x7_3.conv.weight'][2] == (7, 1, 128, 192)
  assert names['Mixed_7c.branch_pool.conv.weight'][2] == (1, 1, 2048, 192)
  assert names['Mixed_7c.branch3x3dbl_1.bn.running_var'] == (
      'batch_stats', ('Mixed_7c', 'branch3x3dbl_1', 'bn', 'var'), (448,))
  assert names['fc.weight'][2] == (2048, 1008) and names['fc.bias'][2] == (1008,)
  assert not any('AuxLogits' in k for k in names)  # aux_logits=False.
  variables = inception.abstract_variables()
  assert inception.count(variables['params']) == inception.NUM_PARAMETERS == 23_850_960
  assert inception.count(variables['batch_stats']) == inception.NUM_BATCH_STATS == 34_432
  assert inception._torch_shape((3, 5, 7, 11)) == (11, 7, 3, 5)  # HWIO -> OIHW.


def test_output_shapes_and_resize_to_299():
  model = inception.FIDInceptionV3()
  variables = inception.abstract_variables()
  for shape in ((2, 28, 28, 1), (1, 400, 360, 3)):
    pool, logits = jax.eval_shape(model.apply, variables, jax.ShapeDtypeStruct(shape, jnp.float32))
    assert pool.shape == (shape[0], 2048) and logits.shape == (shape[0], 1008)
  with pytest.raises(ValueError, match=r'at least 75x75 images, got shape \(1, 74, 74, 3\)'):
    jax.eval_shape(inception.FIDInceptionV3(resize=False).apply, variables,
                   jax.ShapeDtypeStruct((1, 74, 74, 3), jnp.float32))
  with pytest.raises(ValueError, match=r'got shape \(2, 28, 28, 2\)'):
    jax.eval_shape(model.apply, variables, jax.ShapeDtypeStruct((2, 28, 28, 2), jnp.float32))
  with pytest.raises(ValueError, match=r'got shape \(28, 28, 1\)'):
    jax.eval_shape(model.apply, variables, jax.ShapeDtypeStruct((28, 28, 1), jnp.float32))


# --- The converter: torch's OIHW / (out, in) layouts to flax's -----------------------------------


def _torch_conv2d(x, w, stride, padding):
  """torch's ``F.conv2d`` by loops: ``x (C, H, W)``, ``w (O, C, kh, kw)`` -> ``(O, H', W')``:
  ``out[o, i, j] = sum_{c, u, v} w[o, c, u, v] * x_padded[c, s i + u, s j + v]`` (a
  cross-correlation, as torch and flax both compute)."""
  (ph, pw), (o, _, kh, kw) = padding, w.shape
  xp = np.pad(x, ((0, 0), (ph, ph), (pw, pw)))
  ho, wo = (xp.shape[1] - kh) // stride + 1, (xp.shape[2] - kw) // stride + 1
  out = np.zeros((o, ho, wo))
  for i in range(ho):
    for j in range(wo):
      patch = xp[:, stride * i:stride * i + kh, stride * j:stride * j + kw]
      out[:, i, j] = np.tensordot(w, patch, axes=([1, 2, 3], [0, 1, 2]))
  return out


@pytest.mark.parametrize('key, stride, padding', [
    ('Conv2d_1a_3x3.conv.weight', 2, (0, 0)),        # (32, 3, 3, 3), stride 2
    ('Mixed_6b.branch7x7_2.conv.weight', 1, (0, 3)),  # (128, 128, 1, 7): along the width
    ('Mixed_6b.branch7x7_3.conv.weight', 1, (3, 0)),  # (192, 128, 7, 1): along the height
])
def test_converted_kernel_convolves_as_torch(names, converted, key, stride, padding):
  rng = np.random.default_rng(0)
  w = RANDOM_ENTRIES[key]
  shape = w.shape
  kernel = converted[key]
  assert kernel.shape == names[key][2] and kernel.flags['C_CONTIGUOUS']
  x = rng.normal(size=(shape[1], 7, 9))  # (C, H, W), torch's layout.
  expected = _torch_conv2d(x, w.astype(np.float64), stride, padding)
  with jax.enable_x64(True):
    ours = jax.lax.conv_general_dilated(
        jnp.asarray(x.transpose(1, 2, 0)[None]), jnp.asarray(kernel, jnp.float64), (stride,) * 2,
        [(padding[0],) * 2, (padding[1],) * 2], dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
  np.testing.assert_allclose(np.asarray(ours)[0].transpose(2, 0, 1), expected, rtol=1e-12,
                             atol=1e-12)


def test_converted_fc_is_torch_linear(converted):
  w, b, out = RANDOM_ENTRIES['fc.weight'], RANDOM_ENTRIES['fc.bias'], converted
  pool = np.random.default_rng(1).normal(size=(3, 2048))
  # torch's Linear: pool @ W^T + b.
  np.testing.assert_allclose(pool @ out['fc.weight'] + out['fc.bias'], pool @ w.T + b,
                             rtol=1e-12)
  np.testing.assert_array_equal(out['fc.bias'], b)


def test_converter_errors_name_the_entry(names):
  state = _zero_state(names)
  del state['Mixed_5b.branch1x1.conv.weight']
  state['AuxLogits.fc.weight'] = np.zeros((1000, 768), np.float32)
  state['Mixed_5b.branch1x1.bn.num_batches_tracked'] = np.zeros((), np.int64)  # Dropped silently.
  with pytest.raises(ValueError, match=r"1 entries missing \(e.g. \['Mixed_5b.branch1x1.conv."
                                       r"weight'\]\), 1 unexpected \(e.g. \['AuxLogits.fc"):
    inception.convert_state_dict(state)
  # A kernel left in flax's layout is named with both shapes.
  state = _zero_state(names, **{'Conv2d_1a_3x3.conv.weight': np.zeros((3, 3, 3, 32))})
  with pytest.raises(ValueError, match=r'Conv2d_1a_3x3.conv.weight has shape \(3, 3, 3, 32\), '
                                       r'expected \(32, 3, 3, 3\)'):
    inception.convert_state_dict(state)


# --- The layers pytorch-fid patches --------------------------------------------------------------


def test_avg_pool_does_not_count_the_padding():
  x = np.arange(1.0, 13.0).reshape(1, 3, 4, 1)  # rows [1 2 3 4], [5 6 7 8], [9 10 11 12]
  out = np.asarray(inception._avg_pool_3x3(jnp.asarray(x)))[0, :, :, 0]
  assert out[0, 0] == (1 + 2 + 5 + 6) / 4  # a corner: 4 pixels, not 9 (count_include_pad=False)
  assert out[0, 1] == (1 + 2 + 3 + 5 + 6 + 7) / 6  # an edge: 6
  assert out[1, 1] == (1 + 2 + 3 + 5 + 6 + 7 + 9 + 10 + 11) / 9  # inside: 9
  assert out[2, 3] == (7 + 8 + 11 + 12) / 4


def test_mixed_7c_max_pool_pads_with_minus_infinity():
  x = -np.arange(1.0, 10.0).reshape(1, 3, 3, 1)  # all negative: a zero padding would win
  out = np.asarray(inception._max_pool_3x3(jnp.asarray(x), 1, 1))[0, :, :, 0]
  np.testing.assert_array_equal(out, [[-1, -1, -2], [-1, -1, -2], [-4, -4, -5]])
  assert inception.InceptionE('max').pool == 'max'
  # The reductions (Mixed_6a, Mixed_7a, the stem) pool 3x3, stride 2, no padding: 7 -> 3.
  assert inception._max_pool_3x3(jnp.zeros((1, 7, 7, 1)), 2, 0).shape == (1, 3, 3, 1)


def test_basic_conv_is_conv_then_batch_norm_eps_1e3_then_relu():
  x = np.array([[[[1.0, -2.0]]]])  # (1, 1, 1, 2)
  kernel = np.array([[[[2.0, 0.0, 1.0], [1.0, 1.0, -1.0]]]])  # (1, 1, 2, 3): conv = [0, -2, 3]
  variables = {'params': {'conv': {'kernel': kernel},
                          'bn': {'scale': np.array([1.0, 2.0, 1.0]),
                                 'bias': np.array([0.0, 0.5, -10.0])}},
               'batch_stats': {'bn': {'mean': np.array([-0.5, -1.0, 0.0]),
                                      'var': np.array([1.0, 3.0, 0.0])}}}
  with jax.enable_x64(True):
    out = inception.BasicConv2d(3, (1, 1)).apply(jax.tree.map(jnp.asarray, variables),
                                                 jnp.asarray(x))
  # (conv - mean) / sqrt(var + 1e-3) * scale + bias, then ReLU:
  # 0.5 / sqrt(1.001); 2 (-1) / sqrt(3.001) + 0.5 < 0 -> 0; 3 / sqrt(0.001) - 10 (eps decides it).
  expected = [0.5 / np.sqrt(1.001), 0.0, 3 / np.sqrt(1e-3) - 10]
  np.testing.assert_allclose(np.asarray(out)[0, 0, 0], expected, rtol=1e-14)
  assert expected[2] == pytest.approx(84.8683, abs=1e-4)  # eps 1e-5 would give 938.7


# --- The resize ----------------------------------------------------------------------------------


def test_resize_matches_torch_bilinear_by_hand():
  # torch's F.interpolate(mode='bilinear', align_corners=False), 2 -> 4: sources
  # (i + 0.5) / 2 - 0.5 = -0.25 (clamped to 0), 0.25, 0.75, 1.25 (i1 clamped to the last pixel).
  np.testing.assert_allclose(inception._interpolation_matrix(2, 4),
                             [[1, 0], [0.75, 0.25], [0.25, 0.75], [0, 1]], rtol=0, atol=0)
  # 4 -> 2 without antialiasing: sources 0.5 and 2.5, the means of neighbouring pairs.
  np.testing.assert_allclose(inception._interpolation_matrix(4, 2),
                             [[0.5, 0.5, 0, 0], [0, 0, 0.5, 0.5]], rtol=0, atol=0)
  image = np.array([[0.0, 1.0], [2.0, 3.0]]).reshape(1, 2, 2, 1)
  out = np.asarray(inception.resize_bilinear(jnp.asarray(image), (4, 4)))[0, :, :, 0]
  # R image R^T with R the 2 -> 4 matrix above: columns first [0, 1] -> [0, .25, .75, 1], ...
  np.testing.assert_allclose(out, [[0, 0.25, 0.75, 1], [0.5, 0.75, 1.25, 1.5],
                                   [1.5, 1.75, 2.25, 2.5], [2, 2.25, 2.75, 3]], rtol=1e-7)
  matrix = inception._interpolation_matrix(28, 299)
  np.testing.assert_allclose(matrix.sum(axis=1), 1.0, rtol=1e-15)  # constants stay constant


@pytest.mark.parametrize('shape', [(2, 28, 28, 1), (1, 32, 20, 3), (1, 400, 360, 3)])
def test_resize_equals_jax_image_resize_without_antialiasing(shape):
  x = np.random.default_rng(2).uniform(-1, 1, shape)
  with jax.enable_x64(True):
    x = jnp.asarray(x)
    ours = np.asarray(inception.resize_bilinear(x, 299))
    plain = np.asarray(jax.image.resize(x, (shape[0], 299, 299, shape[3]), 'linear',
                                        antialias=False))
    smooth = np.asarray(jax.image.resize(x, (shape[0], 299, 299, shape[3]), 'linear'))
  assert ours.shape == (shape[0], 299, 299, shape[3])
  np.testing.assert_allclose(ours, plain, rtol=0, atol=1e-12)
  if shape[1] > 299:  # jax's default antialiases a downsampling, torch's does not.
    assert np.max(np.abs(ours - smooth)) > 0.1
  else:
    np.testing.assert_allclose(ours, smooth, rtol=0, atol=1e-12)


# --- The weight file and its checks --------------------------------------------------------------


def test_weights_file_digest_and_missing_file(tmp_path):
  path = tmp_path / inception.FID_WEIGHTS_FILENAME
  path.write_bytes(b'not the weights')
  digest = hashlib.sha256(b'not the weights').hexdigest()
  assert inception.file_sha256(str(path)) == digest
  assert inception.check_weights_file(str(path), expected_sha256=digest) == digest
  with pytest.raises(ValueError) as error:
    inception.check_weights_file(str(path))
  message = str(error.value)
  assert '\n' not in message
  assert f'SHA-256 {digest}, not {inception.FID_WEIGHTS_SHA256}' in message
  assert '(15 bytes; expected 95628359)' in message
  with pytest.raises(FileNotFoundError, match=r"no Inception weights at '.*nowhere.pth': "
                                              r'download pytorch-fid'):
    inception.check_weights_file(str(tmp_path / 'nowhere.pth'))
  with pytest.raises(ValueError, match=r'SHA-256 [0-9a-f]{64}, not'):
    inception.convert_torch_weights(str(path), str(tmp_path / 'out.npz'))  # before any torch
  assert inception.FID_WEIGHTS_SHA256.startswith('6726825d')  # the digest the name carries


def test_load_variables_round_trip_and_errors(tmp_path, converted, converted_npz):
  w = RANDOM_ENTRIES['Conv2d_1a_3x3.conv.weight']
  var = RANDOM_ENTRIES['Conv2d_1a_3x3.bn.running_var']
  variables, digest = inception.load_variables(converted_npz)
  assert digest == inception.FID_WEIGHTS_SHA256
  np.testing.assert_array_equal(variables['params']['Conv2d_1a_3x3']['conv']['kernel'],
                                w.transpose(2, 3, 1, 0))
  np.testing.assert_array_equal(variables['batch_stats']['Conv2d_1a_3x3']['bn']['var'], var)
  assert jax.tree.structure(variables) == jax.tree.structure(
      jax.tree.map(lambda _: 0, inception.abstract_variables()))
  assert inception.count(variables) == inception.NUM_PARAMETERS + inception.NUM_BATCH_STATS

  other = str(tmp_path / 'other.npz')
  np.savez(other, **{inception.SOURCE_DIGEST_KEY: np.array('ab' * 32)})
  with pytest.raises(ValueError, match=f'converted from a file with SHA-256 {"ab" * 32}, not '
                                       f'{inception.FID_WEIGHTS_SHA256}'):
    inception.load_variables(other)
  with pytest.raises(ValueError, match='has no Conv2d_1a_3x3.bn.running_mean'):
    inception.load_variables(other, expected_sha256=None)
  np.savez(other, **{k: v for k, v in converted.items() if 'Mixed' not in k})
  with pytest.raises(ValueError, match='has no source_sha256 entry'):
    inception.load_variables(other)
  with pytest.raises(FileNotFoundError, match=r"no converted Inception weights at '.*none.npz'"):
    inception.load_variables(str(tmp_path / 'none.npz'))
  with pytest.raises(ValueError, match=r'is a PyTorch file; convert it first'):
    inception.load_variables(str(tmp_path / inception.FID_WEIGHTS_FILENAME))


def test_check_images_names_the_bad_value():
  ok = np.zeros((2, 8, 8, 1), np.float32)
  ok[0, 0, 0, 0], ok[1, 0, 0, 0] = -1.0, 1.0
  assert inception.check_images(ok) is not None
  with pytest.raises(ValueError, match=r'must lie in \[-1, 1\].*got values in \[0, 255\]'):
    inception.check_images(np.full((1, 8, 8, 3), 255.0) * (np.arange(8)[:, None, None] > 0))
  with pytest.raises(ValueError, match=r'got values in \[-1.5, 1.5\]'):
    inception.check_images(np.concatenate([ok, 1.5 * ok]))
  inception.check_images(ok * (1 + 1e-4))  # round-off outside [-1, 1] passes (atol 1e-3)
  with pytest.raises(ValueError, match=r'fake must have shape .*got shape \(8, 8, 3\)'):
    inception.check_images(np.zeros((8, 8, 3)), name='fake')
  with pytest.raises(ValueError, match=r'got shape \(2, 8, 8, 4\)'):
    inception.check_images(np.zeros((2, 8, 8, 4)))
  with pytest.raises(ValueError, match='non-finite'):
    inception.check_images(np.full((1, 8, 8, 1), np.nan))
  with pytest.raises(ValueError, match=r'empty \(shape \(0, 8, 8, 1\)\)'):
    inception.check_images(np.zeros((0, 8, 8, 1)))
  # The extractor checks before it runs anything.
  extract = inception.extractor({'params': {}, 'batch_stats': {}})
  with pytest.raises(ValueError, match=r'got values in \[0, 2\]'):
    extract.features(np.full((1, 28, 28, 1), 2.0) * (np.arange(28)[:, None, None] > 0))


# --- Reference statistics ------------------------------------------------------------------------


def _factorial_features(half_widths, mean):
  """All ``2^d`` sign patterns ``mean + (+-a_1, ..., +-a_d)``: mean ``mean`` and unbiased
  covariance ``diag(a^2) n / (n - 1)`` exactly (the columns are orthogonal +-1 contrasts)."""
  d = len(half_widths)
  signs = np.array(np.meshgrid(*[[-1.0, 1.0]] * d, indexing='ij')).reshape(d, -1).T
  return mean + signs * np.asarray(half_widths)


def test_reference_statistics_give_the_closed_form_frechet_distance(tmp_path):
  """Two cached references with exactly known statistics: FD = |m1 - m2|^2 +
  n / (n - 1) sum_j (a_j - b_j)^2 (diagonal covariances commute)."""
  a, m1 = np.array([0.1, 0.2, 0.3, 0.4]), np.array([0.0, 0.1, -0.1, 0.2])
  b, m2 = np.array([0.3, 0.2, 0.1, 0.25]), np.array([0.2, 0.1, 0.1, -0.3])
  identity = inception.classifier.FeatureExtractor(
      features=lambda x: np.asarray(x).reshape(len(x), -1), probs=None)
  refs = []
  for name, half, mean in (('one', a, m1), ('two', b, m2)):
    images = _factorial_features(half, mean).reshape(16, 2, 2, 1)
    refs.append(reference.reference_features(
        name, extractor=identity, extractor_name='identity', weights_digest='0' * 64,
        image_shape=(2, 2, 1), num_examples=16, load_images=lambda images=images: images,
        cache_dir=str(tmp_path)))
  n = 16
  for ref, half, mean in zip(refs, (a, b), (m1, m2), strict=True):
    assert not ref.cached and ref.features.shape == (16, 4)
    np.testing.assert_allclose(ref.mu, mean, atol=1e-7)
    np.testing.assert_allclose(ref.sigma, np.diag(half**2) * n / (n - 1), atol=1e-7)
  closed = np.sum((m1 - m2)**2) + n / (n - 1) * np.sum((a - b)**2)
  assert closed == pytest.approx(0.33 + 16 / 15 * 0.1025, abs=1e-12)  # 0.439333...
  fd = metrics.frechet_distance(refs[0].mu, refs[0].sigma, refs[1].mu, refs[1].sigma)
  assert fd == pytest.approx(closed, rel=1e-6)


def test_reference_cache_hits_and_misses(tmp_path):
  calls = []

  def load():
    calls.append(1)
    return np.random.default_rng(4).uniform(-1, 1, (10, 2, 2, 1))

  flat = inception.classifier.FeatureExtractor(
      features=lambda x: np.asarray(x).reshape(len(x), -1) * 2, probs=None)
  kwargs = dict(extractor=flat, extractor_name='flat', split='test', num_examples=10,
                image_shape=(2, 2, 1), load_images=load, cache_dir=str(tmp_path))
  first = reference.reference_features('toy', weights_digest='a' * 64, **kwargs)
  again = reference.reference_features('toy', weights_digest='a' * 64, **kwargs)
  assert (first.cached, again.cached, len(calls)) == (False, True, 1)
  assert again.path == first.path and os.path.basename(first.path).startswith('toy-test-flat-')
  np.testing.assert_array_equal(again.features, (load().reshape(10, 4) * 2).astype(np.float32))
  np.testing.assert_array_equal(again.sigma, first.sigma)
  other = reference.reference_features('toy', weights_digest='b' * 64, **kwargs)
  assert not other.cached and other.path != first.path and len(calls) == 3
  with np.load(first.path) as f:
    assert json.loads(str(f['key']))['weights_digest'] == 'a' * 64
  # A file under the right name with another key inside is a miss, not a hit.
  os.replace(other.path, first.path)
  assert not reference.reference_features('toy', weights_digest='a' * 64, **kwargs).cached
  with pytest.raises(ValueError, match=r'asked for 10 reference images .* got 3'):
    reference.reference_features('toy', weights_digest='c' * 64,
                                 **{**kwargs, 'load_images': lambda: load()[:3]})
  with pytest.raises(ValueError, match=r'have shape \(10, 4, 1, 1\), expected \(N, 2, 2, 1\)'):
    reference.reference_features('toy', weights_digest='d' * 64,
                                 **{**kwargs, 'load_images': lambda: load().reshape(10, 4, 1, 1)})


def test_params_digest_sees_every_value_and_not_the_key_order():
  tree = {'a': np.arange(3.0), 'b': {'c': np.ones((2, 2), np.float32)}}
  same = {'b': {'c': np.ones((2, 2), np.float32)}, 'a': np.arange(3.0)}
  assert reference.params_digest(tree) == reference.params_digest(same)
  changed = {'a': np.arange(3.0), 'b': {'c': np.ones((2, 2), np.float32)}}
  changed['b']['c'][1, 1] = np.nextafter(np.float32(1), np.float32(2))
  assert reference.params_digest(changed) != reference.params_digest(tree)
  cast = {'a': np.arange(3.0).astype(np.float32), 'b': tree['b']}
  assert reference.params_digest(cast) != reference.params_digest(tree)


def test_cache_root_follows_the_environment(monkeypatch, tmp_path):
  monkeypatch.setenv(reference.CACHE_ENV, str(tmp_path))
  assert reference.cache_root() == str(tmp_path)
  assert inception.default_weights_path() == str(
      tmp_path / 'inception' / 'pt_inception-2015-12-05-6726825d.npz')
  monkeypatch.delenv(reference.CACHE_ENV)
  monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path / 'xdg'))
  assert reference.cache_root() == str(tmp_path / 'xdg' / 'jaxgan')


# --- Slow: a whole forward pass, and the verification against pytorch-fid ------------------------


@pytest.mark.slow
def test_extractor_batches_and_unbiased_probabilities():
  """The extractor in batches of 2 (the last one padded) equals one forward pass of all 3
  images, and its probabilities are ``softmax(pool @ fc.kernel)``: logits without fc's bias."""
  x = np.random.default_rng(5).uniform(-1, 1, (3, 28, 28, 1)).astype(np.float32)
  variables = inception.FIDInceptionV3(resize=False).init(
      jax.random.PRNGKey(0), np.zeros((1, 75, 75, 3), np.float32))
  variables['params']['fc']['bias'] = jnp.arange(1008.0) / 100
  pool, logits, unbiased = inception.make_apply()(variables, x)
  np.testing.assert_allclose(logits - unbiased, np.broadcast_to(np.arange(1008.0) / 100,
                                                                 (3, 1008)), atol=1e-4)
  extract = inception.extractor(variables, batch_size=2)
  np.testing.assert_allclose(extract.features(x), pool, rtol=1e-5, atol=1e-6)
  expected = np.exp(unbiased - unbiased.max(-1, keepdims=True))
  np.testing.assert_allclose(extract.probs(x), expected / expected.sum(-1, keepdims=True),
                             rtol=1e-4, atol=1e-9)
  # Grey images are the same images repeated to three channels.
  np.testing.assert_array_equal(extract.features(np.repeat(x, 3, -1)), extract.features(x))


@pytest.mark.slow
@pytest.mark.skipif(not all(importlib.util.find_spec(m) for m in ('torch', 'pytorch_fid')),
                    reason='needs torch, torchvision and pytorch-fid (the bench extra)')
def test_verification_against_pytorch_fid(tmp_path):
  """benchmarks/verify_inception.py on fewer images: pool features and logits agree with
  pytorch-fid's network (random weights) to 1e-5 relative in float64."""
  out = tmp_path / 'verify.json'
  subprocess.run([sys.executable, os.path.join(ROOT, 'benchmarks', 'verify_inception.py'),
                  f'--out={out}', '--num_random=1', '--num_digits=1'], check=True, cwd=ROOT)
  with open(out) as f:
    results = json.load(f)
  assert results['max_rel_float64']['pool'] <= 1e-5
  assert results['max_rel_float64']['logits'] <= 1e-5
  assert max(results['resize_max_abs'].values()) <= 1e-12
  assert max(f['rel'] for f in results['frechet'].values()) <= 1e-8
  assert results['state_dict_float_numbers'] == (inception.NUM_PARAMETERS
                                                 + inception.NUM_BATCH_STATS)
