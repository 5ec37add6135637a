"""Reading PyTorch state dicts (:func:`jaxgan.torch_weights.read_state_dict`), and the two weight
converters that use it: without PyTorch the ImportError says what needed it; with a stand-in
``torch`` module the call ``torch.load`` gets, the entries kept and the error for a file that is
not a mapping; with the real PyTorch (where installed) a ``torch.save`` round trip and the
refusal of a pickled function."""

import re
import sys
import types

import numpy as np
import pytest

from jaxgan import torch_weights, vgg
from jaxgan.eval import inception


class _FakeTensor:
  """What :func:`read_state_dict` uses of a ``torch.Tensor``: ``detach().cpu().numpy()``."""

  def __init__(self, array):
    self.array = array

  def detach(self):
    return self

  def cpu(self):
    return self

  def numpy(self):
    return self.array


def _fake_torch(monkeypatch, loaded):
  """Installs a ``torch`` whose ``load`` returns ``loaded``; returns the list of its calls."""
  calls = []

  def load(path, **kwargs):
    calls.append((path, kwargs))
    return loaded

  monkeypatch.setitem(sys.modules, 'torch', types.SimpleNamespace(load=load))
  return calls


@pytest.fixture
def pth(tmp_path):
  path = tmp_path / 'weights.pth'
  path.write_bytes(b'not read by the stand-in torch')
  return str(path)


def test_without_torch_the_error_says_what_needs_it(monkeypatch, pth, tmp_path):
  monkeypatch.setitem(sys.modules, 'torch', None)  # `import torch` now raises ImportError.
  tail = r'needs PyTorch \(pip install torch\); the converted \.npz then loads without it$'
  with pytest.raises(ImportError, match='^reading a test file ' + tail):
    torch_weights.read_state_dict(pth, purpose='reading a test file')
  with pytest.raises(ImportError, match='^converting torchvision weights ' + tail):
    vgg.convert_torch_weights(pth, str(tmp_path / 'vgg.npz'))
  with pytest.raises(ImportError, match='^converting the Inception weights ' + tail):
    inception.convert_torch_weights(pth, str(tmp_path / 'inception.npz'), expected_sha256=None)
  assert sorted(p.name for p in tmp_path.iterdir()) == ['weights.pth']  # Nothing written.


def test_restricted_load_on_the_cpu_keeps_the_tensors(monkeypatch, pth):
  weight = np.arange(6, dtype=np.float32).reshape(2, 3)
  count = np.array(7, dtype=np.int64)
  calls = _fake_torch(monkeypatch, {'w': _FakeTensor(weight), 'n': _FakeTensor(count),
                                    'note': 'dropped', 'step': 3})
  state = torch_weights.read_state_dict(pth, purpose='unused')
  assert calls == [(pth, {'map_location': 'cpu', 'weights_only': True})]
  assert list(state) == ['w', 'n']  # The file's order; entries that are no tensors dropped.
  np.testing.assert_array_equal(state['w'], [[0, 1, 2], [3, 4, 5]])
  assert state['w'].dtype == np.float32 and state['n'].dtype == np.int64 and state['n'] == 7


@pytest.mark.parametrize('loaded, type_name',
                         [([1, 2], 'list'), (_FakeTensor(None), '_FakeTensor')])
def test_a_file_that_holds_no_mapping_is_refused(monkeypatch, pth, tmp_path, loaded, type_name):
  _fake_torch(monkeypatch, loaded)
  message = f'^{re.escape(pth)} holds a {type_name}, not a state dict$'
  with pytest.raises(ValueError, match=message):
    torch_weights.read_state_dict(pth, purpose='unused')
  with pytest.raises(ValueError, match=message):
    vgg.convert_torch_weights(pth, str(tmp_path / 'vgg.npz'))
  with pytest.raises(ValueError, match=message):
    inception.convert_torch_weights(pth, str(tmp_path / 'inception.npz'), expected_sha256=None)


def test_vgg_converter_writes_what_the_file_held(monkeypatch, pth, tmp_path):
  rng = np.random.default_rng(0)
  weight = rng.normal(size=(64, 3, 3, 3)).astype(np.float32)  # OIHW, torch's layout.
  bias = rng.normal(size=(64,)).astype(np.float32)
  _fake_torch(monkeypatch, {'features.0.weight': _FakeTensor(weight),
                            'features.0.bias': _FakeTensor(bias)})
  out = str(tmp_path / 'vgg.npz')
  assert vgg.convert_torch_weights(pth, out) == ['conv1_1']
  with np.load(out, allow_pickle=False) as arrays:
    assert sorted(arrays) == ['features.0.bias', 'features.0.weight']
    np.testing.assert_array_equal(arrays['features.0.weight'], weight.transpose(2, 3, 1, 0))
    np.testing.assert_array_equal(arrays['features.0.bias'], bias)


def test_real_torch_round_trip_and_no_pickled_code(tmp_path):
  torch = pytest.importorskip('torch')
  weight = np.arange(12, dtype=np.float32).reshape(3, 4)
  torch.save({'w': torch.from_numpy(weight), 'n': torch.tensor(5), 'step': 3},
             tmp_path / 'state.pth')
  state = torch_weights.read_state_dict(str(tmp_path / 'state.pth'), purpose='unused')
  assert list(state) == ['w', 'n']
  np.testing.assert_array_equal(state['w'], weight)
  assert state['n'].dtype == np.int64 and state['n'] == 5
  torch.save([torch.zeros(2)], tmp_path / 'list.pth')
  with pytest.raises(ValueError, match=r'list\.pth holds a list, not a state dict$'):
    torch_weights.read_state_dict(str(tmp_path / 'list.pth'), purpose='unused')
  torch.save({'w': torch.zeros(2), 'code': print}, tmp_path / 'pickled.pth')
  with pytest.raises(Exception, match='(?i)weights_only|unsupported global'):
    torch_weights.read_state_dict(str(tmp_path / 'pickled.pth'), purpose='unused')
