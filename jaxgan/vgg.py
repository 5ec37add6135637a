r"""VGG19's convolutional features (Simonyan & Zisserman 2014, arXiv:1409.1556), for the VGG
content losses of SRGAN (arXiv:1609.04802, eq. 5), with torchvision's weights.

:class:`VGG19` is torchvision's ``vgg19().features`` (configuration 'E'): five blocks of 3x3
convolutions (stride 1, padding 1) with ReLU, each block ending in a 2x2 max-pool (stride 2)::

  block 1: conv1_1, conv1_2 (64)                          -> pool1   H/2
  block 2: conv2_1, conv2_2 (128)                         -> pool2   H/4
  block 3: conv3_1 .. conv3_4 (256)                       -> pool3   H/8
  block 4: conv4_1 .. conv4_4 (512)                       -> pool4   H/16
  block 5: conv5_1 .. conv5_4 (512)                       -> pool5   H/32

16 convolutions, 20,024,384 parameters. The network stops at ``layer`` and returns its
activation: ``'conv<b>_<i>'`` (before the ReLU), ``'relu<b>_<i>'`` (after it) or ``'pool<b>'``
(:data:`LAYERS`). SRGAN's :math:`\phi_{i,j}`, "the feature map obtained by the j-th convolution
(after activation) before the i-th max-pooling layer", is ``'relu<i>_<j>'``: VGG22 is
``'relu2_2'`` (``H/2 x W/2 x 128``, receptive field 14 pixels) and VGG54 ``'relu5_4'``
(``H/16 x W/16 x 512``, receptive field 252 pixels). ``'relu<b>_<i>'`` is the output of
torchvision's ``features[:TORCH_INDEX[layer] + 1]`` (:data:`TORCH_INDEX`: ``relu2_2`` is
``features[:9]``, ``relu5_4`` ``features[:36]``).

Input convention: NHWC images in [-1, 1], as everywhere in jaxgan. The network maps them to
[0, 1] and normalizes them with the ImageNet statistics torchvision's weights were trained with
(:func:`imagenet_normalize`); any channel count other than 3 is refused, except 1 (greyscale),
which is repeated to 3.

Weights: torchvision's ``vgg19-dcbb9e9d.pth`` (``torchvision.models.VGG19_Weights.IMAGENET1K_V1``)
is a PyTorch state dict. :func:`convert_torch_weights` reads it with
``torch.load(path, weights_only=True)`` (tensors only; no pickled code runs;
:func:`jaxgan.torch_weights.read_state_dict`) and writes an ``.npz`` of plain arrays, the
``features.<i>.weight`` kernels transposed from PyTorch's OIHW to flax's HWIO;
:func:`load_params` reads that ``.npz`` (``allow_pickle=False``) into flax params. PyTorch is
needed for the conversion only, and imported there (in :mod:`jaxgan.torch_weights`)::

    python -m jaxgan.vgg --torch_weights=vgg19-dcbb9e9d.pth --out=vgg19_features.npz

What was checked (``tests/test_vgg.py``): with torchvision's random initialization saved by
``torch.save``, converted and loaded, :class:`VGG19` equals ``vgg19(weights=None).features[:k]``
on the same normalized images at ``relu2_2`` and ``relu5_4`` (largest difference 2e-6 on
features of order 1, torch 2.14.1 / torchvision 0.29.1 on a CPU; asserted to 1e-4; skipped where
torchvision is not installed); without torch, the kernel layout against a direct convolution,
the shapes, parameter count and receptive field, and the normalization. The pretrained file
itself was not available here.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxgan import torch_weights

# torchvision's cfgs['E']: output channels of each convolution, 'M' a 2x2 max-pool.
CONFIG_E = (64, 64, 'M', 128, 128, 'M', 256, 256, 256, 256, 'M', 512, 512, 512, 512, 'M',
            512, 512, 512, 512, 'M')

# torchvision's ImageNet statistics of [0, 1] RGB images (transforms.Normalize of its weights).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _layout():
  """``(layers, torch_index, convs)``: every layer name in order, its index in torchvision's
  ``features`` Sequential, and ``{conv name: (features index, in channels, out channels)}``."""
  names, index, convs = [], {}, {}
  block, conv, channels, i = 1, 1, 3, 0
  for item in CONFIG_E:
    if item == 'M':
      names.append(f'pool{block}')
      index[names[-1]] = i
      i, block, conv = i + 1, block + 1, 1
      continue
    name = f'{block}_{conv}'
    convs[f'conv{name}'] = (i, channels, item)
    for prefix, offset in (('conv', 0), ('relu', 1)):
      names.append(f'{prefix}{name}')
      index[names[-1]] = i + offset
    i, conv, channels = i + 2, conv + 1, item
  return tuple(names), index, convs


LAYERS, TORCH_INDEX, CONVS = _layout()
"""Layer names in order (``conv1_1, relu1_1, conv1_2, relu1_2, pool1, conv2_1, ...``), their
indices in torchvision's ``vgg19().features``, and each convolution's ``(index, C_in, C_out)``."""


def _check_layer(layer: str) -> str:
  if layer not in LAYERS:
    raise ValueError(f'unknown VGG19 layer {layer!r}; expected one of {list(LAYERS)}')
  return layer


def convs_up_to(layer: str) -> tuple[str, ...]:
  """The convolutions whose weights the features at ``layer`` depend on, in order."""
  stop = TORCH_INDEX[_check_layer(layer)]
  return tuple(name for name, (i, _, _) in CONVS.items() if i <= stop)


def imagenet_normalize(x: jax.Array) -> jax.Array:
  """``[-1, 1]`` images -> torchvision's input: ``((x + 1) / 2 - mean) / std`` per RGB channel
  (:data:`IMAGENET_MEAN`, :data:`IMAGENET_STD`), NHWC."""
  mean = jnp.asarray(IMAGENET_MEAN, x.dtype)
  std = jnp.asarray(IMAGENET_STD, x.dtype)
  return ((x + 1) / 2 - mean) / std


class VGG19(nn.Module):
  """torchvision's ``vgg19().features`` up to ``layer`` (see the module docstring).

  ``(B, H, W, 3)`` (or ``(B, H, W, 1)``, repeated to RGB) images in [-1, 1] -> the activation
  at ``layer``, e.g. ``(B, H/16, W/16, 512)`` at ``'relu5_4'``. Parameters: ``{'conv1_1':
  {'kernel': (3, 3, 3, 64), 'bias': (64,)}, ...}``, only the convolutions up to ``layer``
  (:func:`convs_up_to`). Convolutions use ``precision='highest'`` (float32 on accelerators too).

  Attributes:
    layer: where to stop, one of :data:`LAYERS`.
  """

  layer: str = 'relu5_4'

  @nn.compact
  def __call__(self, x):
    _check_layer(self.layer)
    if x.ndim != 4 or x.shape[-1] not in (1, 3):
      raise ValueError(f'VGG19: images must be (B, H, W, 3) or (B, H, W, 1), got shape '
                       f'{x.shape}')
    if x.shape[-1] == 1:
      x = jnp.repeat(x, 3, axis=-1)
    h = imagenet_normalize(x)
    for name in LAYERS:
      if name.startswith('conv'):
        h = nn.Conv(CONVS[name][2], (3, 3), padding=((1, 1), (1, 1)), precision='highest',
                    name=name)(h)
      elif name.startswith('relu'):
        h = nn.relu(h)
      else:
        h = nn.max_pool(h, (2, 2), strides=(2, 2), padding='VALID')
      if name == self.layer:
        return h
    raise AssertionError('unreachable')


# Weights: torchvision's state dict -> .npz -> flax params.


def convert_state_dict(state: Mapping[str, object]) -> dict[str, np.ndarray]:
  """torchvision VGG19 state-dict entries -> the ``.npz`` arrays :func:`load_params` reads.

  Keeps the ``features.<i>.weight`` / ``features.<i>.bias`` entries of VGG19's convolutions
  (the classifier's are dropped), as float32 numpy arrays, each kernel transposed from
  PyTorch's ``(O, I, kh, kw)`` to flax's ``(kh, kw, I, O)``; biases unchanged. The values may be
  numpy arrays or tensors (anything ``np.asarray`` takes). Not every convolution has to be there
  (a truncated network's features are enough for the layers before it); those that are must
  have VGG19's shapes.

  Raises:
    ValueError: if no VGG19 convolution is there, or one has the wrong shape.
  """
  out = {}
  for name, (i, c_in, c_out) in CONVS.items():
    for part, want in (('weight', (c_out, c_in, 3, 3)), ('bias', (c_out,))):
      key = f'features.{i}.{part}'
      if key not in state:
        continue
      value = np.asarray(state[key], dtype=np.float32)
      if value.shape != want:
        raise ValueError(f'{key} ({name}) has shape {value.shape}, expected {want}: not '
                         f"torchvision's VGG19")
      out[key] = np.ascontiguousarray(value.transpose(2, 3, 1, 0)) if part == 'weight' else value
  if not out:
    raise ValueError(f"no VGG19 convolution (features.<i>.weight) among the {len(state)} "
                     f"entries: not torchvision's VGG19 state dict")
  return out


def convert_torch_weights(torch_path: str, out_path: str) -> list[str]:
  """Converts torchvision's VGG19 weight file (``vgg19-dcbb9e9d.pth``) to an ``.npz``.

  The file is read with ``torch.load(torch_path, map_location='cpu', weights_only=True)``
  (:func:`jaxgan.torch_weights.read_state_dict`): PyTorch's restricted unpickler, which builds
  tensors and plain containers and runs no code from the file. :func:`convert_state_dict` then
  keeps and transposes the convolutions, and ``np.savez`` writes them. PyTorch is imported
  there, in :mod:`jaxgan.torch_weights`, and nowhere else in jaxgan.

  Returns:
    The convolution names written (``['conv1_1', ..., 'conv5_4']`` for the full network).

  Raises:
    ImportError: without PyTorch. ValueError: for a file that is not VGG19's state dict.
  """
  arrays = convert_state_dict(torch_weights.read_state_dict(
      torch_path, purpose='converting torchvision weights'))
  os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
  np.savez(out_path, **arrays)
  return [name for name, (i, _, _) in CONVS.items() if f'features.{i}.weight' in arrays]


def load_params(path: str, *, layer: str = 'relu5_4') -> dict:
  """The flax params of :class:`VGG19` ``(layer=layer)`` from a converted ``.npz``
  (:func:`convert_torch_weights`), read with ``allow_pickle=False``.

  Returns:
    ``{'conv1_1': {'kernel': (3, 3, 3, 64), 'bias': (64,)}, ...}`` float32 numpy arrays, the
    convolutions :func:`convs_up_to` ``(layer)``.

  Raises:
    FileNotFoundError: no file at ``path`` (the message says how to make one).
    ValueError: an unknown layer, or a file missing one of the needed arrays or with a wrong
      shape.
  """
  _check_layer(layer)
  if not os.path.exists(path):
    raise FileNotFoundError(f'no VGG19 weights at {path!r}; convert torchvision\'s '
                            f'vgg19-dcbb9e9d.pth with python -m jaxgan.vgg '
                            f'--torch_weights=vgg19-dcbb9e9d.pth --out={path} (needs torch)')
  params = {}
  with np.load(path, allow_pickle=False) as f:
    for name in convs_up_to(layer):
      i, c_in, c_out = CONVS[name]
      entry = {}
      for part, key, want in (('kernel', 'weight', (3, 3, c_in, c_out)),
                              ('bias', 'bias', (c_out,))):
        full = f'features.{i}.{key}'
        if full not in f:
          raise ValueError(f'{path} has no {full} ({name}), needed for layer {layer!r}')
        if f[full].shape != want:
          raise ValueError(f'{path}: {full} ({name}) has shape {f[full].shape}, expected {want}')
        entry[part] = np.asarray(f[full], np.float32)
      params[name] = entry
  return params


def features(params: dict, *, layer: str = 'relu5_4') -> Callable[[jax.Array], jax.Array]:
  """``phi(x) = VGG19(layer).apply({'params': params}, x)``: a jax feature function for
  :func:`jaxgan.super_resolution.feature_mse`, the weights constants of it (no gradient reaches
  them). ``params`` may hold more convolutions than ``layer`` needs."""
  needed = convs_up_to(layer)
  missing = [name for name in needed if name not in params]
  if missing:
    raise ValueError(f'VGG19 params lack {missing} for layer {layer!r}')
  params = jax.tree.map(jnp.asarray, {name: params[name] for name in needed})
  model = VGG19(layer=layer)
  return lambda x: model.apply({'params': params}, x)


def _define_flags() -> None:
  """The CLI's flags; defined only when run as a program, so importing defines none."""
  from absl import flags

  flags.DEFINE_string('torch_weights', None, "torchvision's VGG19 state dict, e.g. "
                      'vgg19-dcbb9e9d.pth.', required=True)
  flags.DEFINE_string('out', None, 'The .npz to write.', required=True)


def main(argv):
  from absl import flags

  del argv
  FLAGS = flags.FLAGS
  names = convert_torch_weights(FLAGS.torch_weights, FLAGS.out)
  print(f'wrote {len(names)} convolutions ({names[0]} .. {names[-1]}) to {FLAGS.out}')


if __name__ == '__main__':
  from absl import app

  _define_flags()
  app.run(main)
