"""The VGG19 feature network: torchvision's layout, the kernel transposition against a direct
convolution, the receptive field, the normalization, the converter's errors, and (where
torchvision is installed) the port against ``torchvision.models.vgg19().features`` with random
weights, through ``torch.save`` and the converter."""

import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan import vgg

MEAN, STD = np.array(vgg.IMAGENET_MEAN), np.array(vgg.IMAGENET_STD)


def _random_params(layer, seed=0):
  """He-scaled random HWIO kernels and biases up to ``layer``, from numpy (a flax init of these
  convolutions takes seconds to compile on a CPU)."""
  rng = np.random.default_rng(seed)
  return {name: {'kernel': (rng.normal(size=(3, 3, c_in, c_out)) * np.sqrt(2 / (9 * c_in))
                            ).astype(np.float32),
                 'bias': rng.normal(size=(c_out,)).astype(np.float32) * 0.1}
          for name in vgg.convs_up_to(layer) for _, c_in, c_out in [vgg.CONVS[name]]}


def test_layers_are_torchvisions_configuration_e():
  assert len(vgg.CONVS) == 16 and len([n for n in vgg.LAYERS if n.startswith('pool')]) == 5
  assert vgg.LAYERS[:6] == ('conv1_1', 'relu1_1', 'conv1_2', 'relu1_2', 'pool1', 'conv2_1')
  # features[:9] ends at relu2_2, features[:36] at relu5_4; 37 modules in all.
  assert (vgg.TORCH_INDEX['relu2_2'], vgg.TORCH_INDEX['relu5_4'], vgg.TORCH_INDEX['pool5']) == (
      8, 35, 36)
  assert vgg.CONVS['conv1_1'] == (0, 3, 64) and vgg.CONVS['conv3_1'] == (10, 128, 256)
  assert vgg.CONVS['conv5_4'] == (34, 512, 512)
  assert vgg.convs_up_to('relu2_2') == ('conv1_1', 'conv1_2', 'conv2_1', 'conv2_2')
  with pytest.raises(ValueError, match="unknown VGG19 layer 'relu6_1'"):
    vgg.convs_up_to('relu6_1')


def test_shapes_and_parameter_count():
  x = jnp.zeros((2, 96, 96, 3))
  shape = lambda layer: jax.eval_shape(lambda: vgg.VGG19(layer).init_with_output(
      jax.random.PRNGKey(0), x))
  out, variables = shape('pool5')
  assert out.shape == (2, 3, 3, 512)
  # torchvision's vgg19().features has 20,024,384 parameters.
  assert sum(a.size for a in jax.tree.leaves(variables)) == 20_024_384
  assert shape('relu2_2')[0].shape == (2, 48, 48, 128)  # VGG22: H/2.
  out, variables = shape('relu5_4')
  assert out.shape == (2, 6, 6, 512)  # VGG54: H/16.
  assert set(variables['params']) == set(vgg.CONVS)  # Everything but nothing after conv5_4.
  params = shape('relu2_2')[1]['params']
  assert set(params) == set(vgg.convs_up_to('relu2_2'))
  assert params['conv2_2']['kernel'].shape == (3, 3, 128, 128)


def test_relu2_2_has_a_receptive_field_of_14_pixels():
  # relu2_2 at k reads input rows 2k - 6 .. 2k + 7: a change at pixel (0, 0) reaches k <= 3 only.
  x = np.repeat(np.random.default_rng(1).uniform(-1, 1, (1, 24, 24, 3)), 2, axis=0)
  x[1, 0, 0] = -x[0, 0, 0]  # Two images that differ in pixel (0, 0) alone.
  x = x.astype(np.float32)
  out = np.asarray(jax.jit(vgg.features(_random_params('relu2_2'), layer='relu2_2'))(x))
  moved = out[1:] - out[:1]
  assert moved.shape == (1, 12, 12, 128)
  assert not np.any(moved[:, 4:]) and not np.any(moved[:, :, 4:])
  assert np.any(moved[:, 3, :4]) and np.any(moved[:, :4, 3])


def test_imagenet_normalization_and_greyscale():
  np.testing.assert_allclose(vgg.imagenet_normalize(-jnp.ones((1, 1, 1, 3)))[0, 0, 0],
                             -MEAN / STD, rtol=1e-6)
  np.testing.assert_allclose(vgg.imagenet_normalize(jnp.zeros((1, 1, 1, 3)))[0, 0, 0],
                             (0.5 - MEAN) / STD, rtol=1e-6)
  phi = jax.jit(vgg.features(_random_params('relu1_2'), layer='relu1_2'))
  grey = np.random.default_rng(0).uniform(-1, 1, (1, 6, 6, 1)).astype(np.float32)
  np.testing.assert_array_equal(phi(grey), phi(np.repeat(grey, 3, axis=-1)))
  with pytest.raises(ValueError, match=r'images must be \(B, H, W, 3\)'):
    phi(np.zeros((1, 6, 6, 2), np.float32))


def _conv1_1_state(rng):
  return {'features.0.weight': rng.normal(size=(64, 3, 3, 3)).astype(np.float32),  # OIHW.
          'features.0.bias': rng.normal(size=(64,)).astype(np.float32),
          'classifier.0.weight': np.zeros((2, 2), np.float32)}


def test_converted_kernels_match_a_direct_convolution(tmp_path):
  rng = np.random.default_rng(0)
  state = _conv1_1_state(rng)
  arrays = vgg.convert_state_dict(state)
  assert sorted(arrays) == ['features.0.bias', 'features.0.weight']  # The classifier is dropped.
  assert arrays['features.0.weight'].shape == (3, 3, 3, 64)  # HWIO.
  np.savez(tmp_path / 'vgg.npz', **arrays)
  params = vgg.load_params(str(tmp_path / 'vgg.npz'), layer='conv1_1')
  x = rng.uniform(-1, 1, (2, 5, 6, 3)).astype(np.float32)
  got = vgg.VGG19('conv1_1').apply({'params': params}, x)
  # PyTorch's cross-correlation, padding 1: out[o] = b[o] + sum_{c,i,j} w[o,c,i,j] in[c,y+i,x+j].
  padded = np.pad(((x + 1) / 2 - MEAN) / STD, ((0, 0), (1, 1), (1, 1), (0, 0)))
  w, b = state['features.0.weight'], state['features.0.bias']
  want = b + sum(np.einsum('nhwc,oc->nhwo', padded[:, i:i + 5, j:j + 6], w[:, :, i, j])
                 for i in range(3) for j in range(3))
  np.testing.assert_allclose(got, want, atol=1e-4)
  relu = vgg.features(params, layer='relu1_1')(jnp.asarray(x))
  np.testing.assert_allclose(relu, np.maximum(want, 0), atol=1e-4)


def test_converter_and_loader_errors(tmp_path):
  rng = np.random.default_rng(0)
  with pytest.raises(ValueError, match=r'features.0.weight \(conv1_1\) has shape \(64, 3, 3\)'):
    vgg.convert_state_dict({'features.0.weight': np.zeros((64, 3, 3))})
  with pytest.raises(ValueError, match="no VGG19 convolution"):
    vgg.convert_state_dict({'fc.weight': np.zeros(3)})
  path = str(tmp_path / 'missing.npz')
  with pytest.raises(FileNotFoundError, match=r'no VGG19 weights at .*missing.npz.*python -m '
                                              r'jaxgan.vgg --torch_weights='):
    vgg.load_params(path)
  np.savez(tmp_path / 'short.npz', **vgg.convert_state_dict(_conv1_1_state(rng)))
  with pytest.raises(ValueError, match=r"has no features.2.weight \(conv1_2\), needed for layer "
                                       r"'relu2_2'"):
    vgg.load_params(str(tmp_path / 'short.npz'), layer='relu2_2')
  with pytest.raises(ValueError, match=r"lack \['conv1_2'\]"):
    vgg.features(vgg.load_params(str(tmp_path / 'short.npz'), layer='relu1_1'), layer='relu1_2')


def test_torch_file_converts_without_pickled_code(tmp_path):
  torch = pytest.importorskip('torch')
  state = _conv1_1_state(np.random.default_rng(0))
  torch.save({k: torch.from_numpy(v) for k, v in state.items()}, tmp_path / 'vgg.pth')
  names = vgg.convert_torch_weights(str(tmp_path / 'vgg.pth'), str(tmp_path / 'vgg.npz'))
  assert names == ['conv1_1']
  # The command line writes the same file.
  command = [sys.executable, '-m', 'jaxgan.vgg', f'--torch_weights={tmp_path}/vgg.pth',
             f'--out={tmp_path}/cli.npz']
  result = subprocess.run(command, capture_output=True, text=True, check=False)
  assert result.returncode == 0, result.stderr
  assert 'wrote 1 convolutions (conv1_1 .. conv1_1)' in result.stdout
  with np.load(tmp_path / 'cli.npz') as cli, np.load(tmp_path / 'vgg.npz') as direct:
    assert sorted(cli) == sorted(direct)
    np.testing.assert_array_equal(cli['features.0.weight'], direct['features.0.weight'])
  params = vgg.load_params(str(tmp_path / 'vgg.npz'), layer='relu1_1')
  np.testing.assert_array_equal(params['conv1_1']['kernel'],
                                state['features.0.weight'].transpose(2, 3, 1, 0))
  np.testing.assert_array_equal(params['conv1_1']['bias'], state['features.0.bias'])
  torch.save({'weights': torch.zeros(2), 'code': print}, tmp_path / 'pickled.pth')
  with pytest.raises(Exception, match='(?i)weights_only|unsupported global'):
    vgg.convert_torch_weights(str(tmp_path / 'pickled.pth'), str(tmp_path / 'x.npz'))


def test_matches_torchvision_with_random_weights(tmp_path):
  torch = pytest.importorskip('torch')
  torchvision = pytest.importorskip('torchvision')
  torch.manual_seed(0)
  features = torchvision.models.vgg19(weights=None).features.eval()
  # The state dict as vgg19().state_dict() names it; the classifier's 120M weights left out.
  torch.save({f'features.{k}': v for k, v in features.state_dict().items()},
             tmp_path / 'vgg19.pth')
  vgg.convert_torch_weights(str(tmp_path / 'vgg19.pth'), str(tmp_path / 'vgg19.npz'))
  x = np.random.default_rng(0).uniform(-1, 1, (2, 64, 64, 3)).astype(np.float32)
  normalized = ((x + 1) / 2 - MEAN) / STD
  with torch.no_grad():
    torch_in = torch.from_numpy(normalized.transpose(0, 3, 1, 2).astype(np.float32))
    for layer in ('relu2_2', 'relu5_4'):
      want = features[:vgg.TORCH_INDEX[layer] + 1](torch_in).numpy().transpose(0, 2, 3, 1)
      params = vgg.load_params(str(tmp_path / 'vgg19.npz'), layer=layer)
      got = np.asarray(vgg.features(params, layer=layer)(jnp.asarray(x)))
      assert got.shape == want.shape
      assert np.abs(want).max() > 1e-2  # Not a vacuous comparison of zeros.
      np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-4)
