r"""The Inception-v3 network of FID (pytorch-fid's port of TF's 2015-12-05 graph), in flax.

FID (Heusel et al. 2017, arXiv:1706.08500), the Inception score (Salimans et al. 2016,
arXiv:1606.03498) and KID (arXiv:1801.01401) are defined on one network: the Inception-v3 graph
TensorFlow published on 2015-12-05 (``inception-2015-12-05.tgz``), which TTUR's reference FID
code loads. pytorch-fid ports it to PyTorch as ``fid_inception_v3()``: torchvision's
``inception_v3(num_classes=1008, aux_logits=False)`` with four patched block types, and this
module is that network, layer for layer, with the same parameter names:

* ``FIDInceptionA`` / ``FIDInceptionC`` / ``FIDInceptionE_1`` (``Mixed_5b..5d``, ``Mixed_6b..6e``,
  ``Mixed_7b``): the pool branch is a 3x3 average pool, stride 1, padding 1, that does *not* count
  the padded zeros (TF's ``avg_pool``; ``count_include_pad=False``);
* ``FIDInceptionE_2`` (``Mixed_7c``): a 3x3 *max* pool there instead (a quirk of the TF graph);
* every convolution is bias-free and followed by batch norm with ``eps = 1e-3`` and ReLU, batch
  norm in inference mode (its running statistics), always;
* ``pool``: the 2048-d global average of ``Mixed_7c`` (pytorch-fid's block 3, FID's features);
  ``logits``: the 1008-way ``fc`` layer on it (TF's ``softmax/logits``).

Parameters: 23,850,960 (of which ``fc`` 2,065,392), plus 34,432 batch-norm running statistics:
23,885,392 numbers, the float entries of pytorch-fid's state dict (566 entries with the 94
``num_batches_tracked`` counters).

Input, as pytorch-fid's ``InceptionV3(resize_input=True, normalize_input=True)`` feeds it:
images ``(B, H, W, C)`` in [-1, 1] (jaxgan's convention; pytorch-fid takes [0, 1] and maps
``2x - 1``, the same numbers), ``C = 1`` repeated to three channels (as ``PIL.convert('RGB')``
does for pytorch-fid's grey files), resized to 299x299 by :func:`resize_bilinear`, torch's
``F.interpolate(mode='bilinear', align_corners=False)`` without antialiasing. (Bilinear
interpolation commutes with the affine map ``2x - 1``, so resizing before or after it agrees.)

The Inception score uses ``softmax(pool @ fc.kernel)``, the logits *without* ``fc``'s bias, as
Salimans et al.'s ``inception_score`` code does (``tf.matmul(pool3, w)`` of the ``softmax/logits``
MatMul) and torch-fidelity's ``logits_unbiased``; :func:`extractor` gives those probabilities.

Weights (not shipped): pytorch-fid's ``pt_inception-2015-12-05-6726825d.pth`` from its GitHub
release (:data:`FID_WEIGHTS_URL`), 95,628,359 bytes, SHA-256 :data:`FID_WEIGHTS_SHA256`.
pytorch-fid itself checks no digest (``load_state_dict_from_url`` with ``check_hash=False``);
the file name carries the first 8 hex digits (torch.hub's convention), and the full digest is the
one several evaluation codebases pin for this file (e.g. mmgeneration / genforce's
``tf_inception_v3`` entry). :func:`convert_torch_weights` checks it, reads the file with
``torch.load(weights_only=True)`` (no pickled code runs; torch is imported there only, in
:func:`jaxgan.torch_weights.read_state_dict`) and writes an ``.npz``; :func:`load_variables`
reads that with ``allow_pickle=False``::

    python -m jaxgan.eval.inception --torch_weights=pt_inception-2015-12-05-6726825d.pth

What was checked: ``benchmarks/verify_inception.py`` (results in
``benchmarks/results/verify_inception.json``) builds pytorch-fid 0.3.0's own network with
random weights and randomized batch-norm statistics, saves it with ``torch.save``, converts it
with :func:`convert_torch_weights` and compares pool features and logits: in float64 they agree
to 2.8e-15 relative (random images resized up, unresized, resized down, and MNIST digits), in
float32 to 3.1e-6; the real weights' outputs were not available to check.
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Mapping, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxgan import torch_weights
from jaxgan.eval import classifier, reference

FID_WEIGHTS_FILENAME = 'pt_inception-2015-12-05-6726825d.pth'
FID_WEIGHTS_URL = ('https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/'
                   + FID_WEIGHTS_FILENAME)
FID_WEIGHTS_SHA256 = '6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2'
FID_WEIGHTS_BYTES = 95_628_359

INPUT_SIZE = 299  # pytorch-fid's (and TF's) input resolution.
MIN_INPUT_SIZE = 75  # The smallest input the strided layers take (without the resize).
NUM_FEATURES = 2048
NUM_CLASSES = 1008
BN_EPSILON = 1e-3
NUM_PARAMETERS = 23_850_960  # Trainable: kernels, batch-norm scales and offsets, fc.
NUM_BATCH_STATS = 34_432  # Batch-norm running means and variances.

# The key of the .npz entry recording the SHA-256 of the .pth it was converted from.
SOURCE_DIGEST_KEY = 'source_sha256'


def _weights_help() -> str:
  return (f"download pytorch-fid's {FID_WEIGHTS_FILENAME} from {FID_WEIGHTS_URL} and convert it "
          f'with python -m jaxgan.eval.inception --torch_weights=PATH (needs torch)')


# --- The network --------------------------------------------------------------------------------


class BasicConv2d(nn.Module):
  """torchvision's ``BasicConv2d``: bias-free convolution, batch norm (eps 1e-3), ReLU."""

  features: int
  kernel_size: tuple[int, int]
  strides: int = 1
  padding: tuple[int, int] = (0, 0)

  @nn.compact
  def __call__(self, x):
    (ph, pw) = self.padding
    x = nn.Conv(self.features, self.kernel_size, strides=self.strides,
                padding=((ph, ph), (pw, pw)), use_bias=False, precision='highest',
                name='conv')(x)
    x = nn.BatchNorm(use_running_average=True, epsilon=BN_EPSILON, name='bn')(x)
    return nn.relu(x)


def _avg_pool_3x3(x):
  """TF's 3x3 ``avg_pool``, stride 1, 'SAME': padded zeros are not counted."""
  return nn.avg_pool(x, (3, 3), strides=(1, 1), padding=((1, 1), (1, 1)), count_include_pad=False)


def _max_pool_3x3(x, stride: int, padding: int):
  return nn.max_pool(x, (3, 3), strides=(stride, stride),
                     padding=((padding, padding), (padding, padding)))


class InceptionA(nn.Module):
  """``FIDInceptionA``: 1x1 | 1x1-5x5 | 1x1-3x3-3x3 | avg-pool (no pad count)-1x1."""

  pool_features: int

  @nn.compact
  def __call__(self, x):
    b1 = BasicConv2d(64, (1, 1), name='branch1x1')(x)
    b5 = BasicConv2d(48, (1, 1), name='branch5x5_1')(x)
    b5 = BasicConv2d(64, (5, 5), padding=(2, 2), name='branch5x5_2')(b5)
    b3 = BasicConv2d(64, (1, 1), name='branch3x3dbl_1')(x)
    b3 = BasicConv2d(96, (3, 3), padding=(1, 1), name='branch3x3dbl_2')(b3)
    b3 = BasicConv2d(96, (3, 3), padding=(1, 1), name='branch3x3dbl_3')(b3)
    bp = BasicConv2d(self.pool_features, (1, 1), name='branch_pool')(_avg_pool_3x3(x))
    return jnp.concatenate([b1, b5, b3, bp], axis=-1)


class InceptionB(nn.Module):
  """torchvision's ``InceptionB`` (``Mixed_6a``, unpatched): the grid 35 -> 17 reduction."""

  @nn.compact
  def __call__(self, x):
    b3 = BasicConv2d(384, (3, 3), strides=2, name='branch3x3')(x)
    bd = BasicConv2d(64, (1, 1), name='branch3x3dbl_1')(x)
    bd = BasicConv2d(96, (3, 3), padding=(1, 1), name='branch3x3dbl_2')(bd)
    bd = BasicConv2d(96, (3, 3), strides=2, name='branch3x3dbl_3')(bd)
    return jnp.concatenate([b3, bd, _max_pool_3x3(x, 2, 0)], axis=-1)


class InceptionC(nn.Module):
  """``FIDInceptionC``: factorized 7x7 branches, avg-pool (no pad count)-1x1."""

  channels_7x7: int

  @nn.compact
  def __call__(self, x):
    c7 = self.channels_7x7
    b1 = BasicConv2d(192, (1, 1), name='branch1x1')(x)
    b7 = BasicConv2d(c7, (1, 1), name='branch7x7_1')(x)
    b7 = BasicConv2d(c7, (1, 7), padding=(0, 3), name='branch7x7_2')(b7)
    b7 = BasicConv2d(192, (7, 1), padding=(3, 0), name='branch7x7_3')(b7)
    bd = BasicConv2d(c7, (1, 1), name='branch7x7dbl_1')(x)
    bd = BasicConv2d(c7, (7, 1), padding=(3, 0), name='branch7x7dbl_2')(bd)
    bd = BasicConv2d(c7, (1, 7), padding=(0, 3), name='branch7x7dbl_3')(bd)
    bd = BasicConv2d(c7, (7, 1), padding=(3, 0), name='branch7x7dbl_4')(bd)
    bd = BasicConv2d(192, (1, 7), padding=(0, 3), name='branch7x7dbl_5')(bd)
    bp = BasicConv2d(192, (1, 1), name='branch_pool')(_avg_pool_3x3(x))
    return jnp.concatenate([b1, b7, bd, bp], axis=-1)


class InceptionD(nn.Module):
  """torchvision's ``InceptionD`` (``Mixed_7a``, unpatched): the grid 17 -> 8 reduction."""

  @nn.compact
  def __call__(self, x):
    b3 = BasicConv2d(192, (1, 1), name='branch3x3_1')(x)
    b3 = BasicConv2d(320, (3, 3), strides=2, name='branch3x3_2')(b3)
    b7 = BasicConv2d(192, (1, 1), name='branch7x7x3_1')(x)
    b7 = BasicConv2d(192, (1, 7), padding=(0, 3), name='branch7x7x3_2')(b7)
    b7 = BasicConv2d(192, (7, 1), padding=(3, 0), name='branch7x7x3_3')(b7)
    b7 = BasicConv2d(192, (3, 3), strides=2, name='branch7x7x3_4')(b7)
    return jnp.concatenate([b3, b7, _max_pool_3x3(x, 2, 0)], axis=-1)


class InceptionE(nn.Module):
  """``FIDInceptionE_1`` (``pool='avg'``, no pad count) or ``FIDInceptionE_2`` (``pool='max'``)."""

  pool: str = 'avg'

  @nn.compact
  def __call__(self, x):
    b1 = BasicConv2d(320, (1, 1), name='branch1x1')(x)
    b3 = BasicConv2d(384, (1, 1), name='branch3x3_1')(x)
    b3 = jnp.concatenate([BasicConv2d(384, (1, 3), padding=(0, 1), name='branch3x3_2a')(b3),
                          BasicConv2d(384, (3, 1), padding=(1, 0), name='branch3x3_2b')(b3)],
                         axis=-1)
    bd = BasicConv2d(448, (1, 1), name='branch3x3dbl_1')(x)
    bd = BasicConv2d(384, (3, 3), padding=(1, 1), name='branch3x3dbl_2')(bd)
    bd = jnp.concatenate([BasicConv2d(384, (1, 3), padding=(0, 1), name='branch3x3dbl_3a')(bd),
                          BasicConv2d(384, (3, 1), padding=(1, 0), name='branch3x3dbl_3b')(bd)],
                         axis=-1)
    pooled = _avg_pool_3x3(x) if self.pool == 'avg' else _max_pool_3x3(x, 1, 1)
    bp = BasicConv2d(192, (1, 1), name='branch_pool')(pooled)
    return jnp.concatenate([b1, b3, bd, bp], axis=-1)


def _interpolation_matrix(in_size: int, out_size: int) -> np.ndarray:
  """``(out_size, in_size)`` float64 weights of torch's 1-D linear ``align_corners=False`` resize.

  For output index ``i``: ``src = max((i + 0.5) * in_size / out_size - 0.5, 0)``, ``i0 =
  floor(src)``, ``i1 = min(i0 + 1, in_size - 1)``, weights ``1 - (src - i0)`` and ``src - i0``
  (ATen's ``area_pixel_compute_source_index`` and ``upsample_bilinear2d``, no antialiasing).
  """
  scale = in_size / out_size
  src = np.maximum((np.arange(out_size) + 0.5) * scale - 0.5, 0.0)
  i0 = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
  i1 = np.minimum(i0 + 1, in_size - 1)
  lam = src - i0
  matrix = np.zeros((out_size, in_size))
  rows = np.arange(out_size)
  np.add.at(matrix, (rows, i0), 1.0 - lam)
  np.add.at(matrix, (rows, i1), lam)
  return matrix


def resize_bilinear(images: jax.Array, size: int | tuple[int, int] = INPUT_SIZE) -> jax.Array:
  """``(B, H, W, C) -> (B, h, w, C)`` as ``F.interpolate(mode='bilinear', align_corners=False)``.

  Separable: ``out = R_h @ x @ R_w^T`` per channel, with :func:`_interpolation_matrix`'s rows
  (each sums to 1, so a constant image stays that constant). No antialiasing on downsampling,
  like torch's default (and unlike ``jax.image.resize``). Computed in the images' dtype at
  ``precision='highest'``.
  """
  h, w = (size, size) if isinstance(size, int) else size
  rh = jnp.asarray(_interpolation_matrix(images.shape[1], h), images.dtype)
  rw = jnp.asarray(_interpolation_matrix(images.shape[2], w), images.dtype)
  out = jnp.einsum('oh,bhwc->bowc', rh, images, precision='highest')
  return jnp.einsum('pw,bowc->bopc', rw, out, precision='highest')


def _check_images(images) -> None:
  if images.ndim != 4 or images.shape[-1] not in (1, 3):
    raise ValueError(f'Inception: images must be (B, H, W, 3) or (B, H, W, 1), got shape '
                     f'{tuple(images.shape)}')


class FIDInceptionV3(nn.Module):
  """pytorch-fid's ``fid_inception_v3()`` through ``fc``; ``__call__(x) -> (pool, logits)``.

  ``x``: ``(B, H, W, 3)`` or ``(B, H, W, 1)`` images in [-1, 1]; ``pool``: ``(B, 2048)`` (FID's
  features, pytorch-fid's ``InceptionV3([3])`` output flattened); ``logits``: ``(B, 1008)``,
  ``pool @ fc.kernel + fc.bias``. Batch norm always uses its running statistics (variables
  ``{'params': ..., 'batch_stats': ...}``).

  Attributes:
    resize: resize to 299x299 first (:func:`resize_bilinear`), as pytorch-fid does; without it
      the input must be at least 75x75 (the features then differ from FID's).
  """

  resize: bool = True

  @nn.compact
  def __call__(self, x):
    _check_images(x)
    if x.shape[-1] == 1:
      x = jnp.repeat(x, 3, axis=-1)
    if self.resize:
      x = resize_bilinear(x, INPUT_SIZE)
    elif min(x.shape[1:3]) < MIN_INPUT_SIZE:
      raise ValueError(f'Inception without resize needs at least {MIN_INPUT_SIZE}x'
                       f'{MIN_INPUT_SIZE} images, got shape {tuple(x.shape)}')
    x = BasicConv2d(32, (3, 3), strides=2, name='Conv2d_1a_3x3')(x)
    x = BasicConv2d(32, (3, 3), name='Conv2d_2a_3x3')(x)
    x = BasicConv2d(64, (3, 3), padding=(1, 1), name='Conv2d_2b_3x3')(x)
    x = _max_pool_3x3(x, 2, 0)
    x = BasicConv2d(80, (1, 1), name='Conv2d_3b_1x1')(x)
    x = BasicConv2d(192, (3, 3), name='Conv2d_4a_3x3')(x)
    x = _max_pool_3x3(x, 2, 0)
    x = InceptionA(32, name='Mixed_5b')(x)
    x = InceptionA(64, name='Mixed_5c')(x)
    x = InceptionA(64, name='Mixed_5d')(x)
    x = InceptionB(name='Mixed_6a')(x)
    for name, c7 in (('Mixed_6b', 128), ('Mixed_6c', 160), ('Mixed_6d', 160), ('Mixed_6e', 192)):
      x = InceptionC(c7, name=name)(x)
    x = InceptionD(name='Mixed_7a')(x)
    x = InceptionE('avg', name='Mixed_7b')(x)
    x = InceptionE('max', name='Mixed_7c')(x)
    pool = jnp.mean(x, axis=(1, 2))  # AdaptiveAvgPool2d((1, 1)).
    logits = nn.Dense(NUM_CLASSES, precision='highest', name='fc')(pool)
    return pool, logits


def abstract_variables(dtype=jnp.float32) -> dict:
  """The variables' structure, shapes and dtypes (``jax.eval_shape``: traced once, not run)."""
  return jax.tree.map(lambda s: s, _abstract_variables(jnp.dtype(dtype)))  # A fresh dict.


@functools.cache
def _abstract_variables(dtype) -> dict:
  x = jax.ShapeDtypeStruct((1, MIN_INPUT_SIZE, MIN_INPUT_SIZE, 3), dtype)
  return jax.eval_shape(lambda x: FIDInceptionV3(resize=False).init(jax.random.PRNGKey(0), x), x)


# --- Weights: pytorch-fid's state dict -> .npz -> flax variables --------------------------------

_LEAF_TO_TORCH = {('params', 'kernel'): 'weight', ('params', 'scale'): 'weight',
                  ('params', 'bias'): 'bias', ('batch_stats', 'mean'): 'running_mean',
                  ('batch_stats', 'var'): 'running_var'}


def torch_names() -> dict[str, tuple[str, tuple[str, ...], tuple[int, ...]]]:
  """``{torch state-dict key: (collection, flax path, flax shape)}`` for every variable.

  ``Mixed_5b.branch1x1.conv.weight`` is ``params/Mixed_5b/branch1x1/conv/kernel``,
  ``...bn.running_var`` is ``batch_stats/.../bn/var``, ``fc.weight`` is ``params/fc/kernel``.
  """
  out = {}
  for collection, tree in abstract_variables().items():
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
      keys = tuple(p.key for p in path)
      name = '.'.join(keys[:-1] + (_LEAF_TO_TORCH[collection, keys[-1]],))
      out[name] = (collection, keys, tuple(leaf.shape))
  return out


def _torch_shape(flax_shape: tuple[int, ...]) -> tuple[int, ...]:
  if len(flax_shape) == 4:  # HWIO -> OIHW
    return (flax_shape[3], flax_shape[2], flax_shape[0], flax_shape[1])
  if len(flax_shape) == 2:  # (in, out) -> (out, in)
    return (flax_shape[1], flax_shape[0])
  return flax_shape


def convert_state_dict(state: Mapping[str, object]) -> dict[str, np.ndarray]:
  """pytorch-fid's Inception state dict -> the ``.npz`` arrays :func:`load_variables` reads.

  Every float entry of ``fid_inception_v3().state_dict()`` (the ``num_batches_tracked`` counters
  are dropped), as float32 arrays keyed by the torch names, convolution kernels transposed from
  ``(O, I, kh, kw)`` to flax's ``(kh, kw, I, O)`` and ``fc.weight`` from ``(1008, 2048)`` to
  ``(2048, 1008)``. The values may be arrays or tensors (anything ``np.asarray`` takes).

  Raises:
    ValueError: an entry missing, of the wrong shape, or one the network does not have.
  """
  names = torch_names()
  extra = sorted(k for k in state if k not in names and not k.endswith('num_batches_tracked'))
  missing = sorted(k for k in names if k not in state)
  if missing or extra:
    raise ValueError(f"not pytorch-fid's FID Inception state dict: {len(missing)} entries missing "
                     f'(e.g. {missing[:3]}), {len(extra)} unexpected (e.g. {extra[:3]})')
  out = {}
  for key, (_, _, flax_shape) in names.items():
    value = np.asarray(state[key], dtype=np.float32)
    if value.shape != _torch_shape(flax_shape):
      raise ValueError(f'{key} has shape {value.shape}, expected {_torch_shape(flax_shape)}')
    if value.ndim == 4:
      value = value.transpose(2, 3, 1, 0)
    elif value.ndim == 2:
      value = value.T
    out[key] = np.ascontiguousarray(value)
  return out


def file_sha256(path: str) -> str:
  """The hex SHA-256 of the file's bytes, read in 1 MiB chunks."""
  digest = hashlib.sha256()
  with open(path, 'rb') as f:
    for chunk in iter(lambda: f.read(1 << 20), b''):
      digest.update(chunk)
  return digest.hexdigest()


def check_weights_file(torch_path: str, *, expected_sha256: str | None = FID_WEIGHTS_SHA256
                       ) -> str:
  """The file's SHA-256, after checking that it exists and (unless None) equals the expected one.

  Raises:
    FileNotFoundError: no file at ``torch_path``. ValueError: another digest.
  """
  if not os.path.isfile(torch_path):
    raise FileNotFoundError(f'no Inception weights at {torch_path!r}: {_weights_help()}')
  digest = file_sha256(torch_path)
  if expected_sha256 is not None and digest != expected_sha256:
    raise ValueError(f'{torch_path} has SHA-256 {digest}, not {expected_sha256} of pytorch-fid\'s '
                     f'{FID_WEIGHTS_FILENAME} ({os.path.getsize(torch_path)} bytes; expected '
                     f'{FID_WEIGHTS_BYTES}): another or a damaged file')
  return digest


def convert_torch_weights(torch_path: str, out_path: str, *,
                          expected_sha256: str | None = FID_WEIGHTS_SHA256) -> str:
  """Converts pytorch-fid's ``pt_inception-2015-12-05-6726825d.pth`` to an ``.npz``.

  Checks the file's SHA-256 first (:func:`check_weights_file`; ``expected_sha256=None`` accepts
  any file, e.g. a random-weight network saved for a test), then reads it with
  ``torch.load(torch_path, map_location='cpu', weights_only=True)`` (PyTorch's restricted
  unpickler: tensors and plain containers, no code from the file runs;
  :func:`jaxgan.torch_weights.read_state_dict`, shared with :mod:`jaxgan.vgg`'s converter and
  the only place PyTorch is imported), converts it with :func:`convert_state_dict` and writes
  ``np.savez`` arrays plus :data:`SOURCE_DIGEST_KEY`, the digest of the ``.pth``.

  Returns:
    The SHA-256 of the ``.pth``.

  Raises:
    FileNotFoundError, ValueError: see :func:`check_weights_file`,
      :func:`jaxgan.torch_weights.read_state_dict` (a file that holds no state dict) and
      :func:`convert_state_dict`. ImportError: without PyTorch.
  """
  digest = check_weights_file(torch_path, expected_sha256=expected_sha256)
  arrays = convert_state_dict(torch_weights.read_state_dict(
      torch_path, purpose='converting the Inception weights'))
  os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
  np.savez(out_path, **arrays, **{SOURCE_DIGEST_KEY: np.array(digest)})
  return digest


def default_weights_path() -> str:
  """Where the converter writes and the evaluation looks by default:
  ``<jaxgan cache>/inception/pt_inception-2015-12-05-6726825d.npz``."""
  return os.path.join(reference.cache_root(), 'inception',
                      FID_WEIGHTS_FILENAME.replace('.pth', '.npz'))


def load_variables(path: str, *, expected_sha256: str | None = FID_WEIGHTS_SHA256,
                   dtype=np.float32) -> tuple[dict, str]:
  """``(variables, source_sha256)`` from an ``.npz`` of :func:`convert_torch_weights`.

  ``variables`` is ``{'params': ..., 'batch_stats': ...}`` of :class:`FIDInceptionV3` as numpy
  arrays of ``dtype``, read with ``allow_pickle=False``; ``source_sha256`` the digest of the
  ``.pth`` it came from, which must equal ``expected_sha256`` unless that is None.

  Raises:
    FileNotFoundError: no file (the message says how to make one). ValueError: a ``.pth`` given
      (convert it first), a source digest that is not the expected one, a missing or misshapen
      array.
  """
  if path.endswith('.pth'):
    raise ValueError(f'{path} is a PyTorch file; convert it first with python -m '
                     f'jaxgan.eval.inception --torch_weights={path} --out=WEIGHTS.npz')
  if not os.path.isfile(path):
    raise FileNotFoundError(f'no converted Inception weights at {path!r}: {_weights_help()}')
  variables: dict = {'params': {}, 'batch_stats': {}}
  with np.load(path, allow_pickle=False) as f:
    if SOURCE_DIGEST_KEY not in f:
      raise ValueError(f'{path} has no {SOURCE_DIGEST_KEY} entry: not written by '
                       f'jaxgan.eval.inception.convert_torch_weights')
    digest = str(f[SOURCE_DIGEST_KEY])
    if expected_sha256 is not None and digest != expected_sha256:
      raise ValueError(f'{path} was converted from a file with SHA-256 {digest}, not '
                       f"{expected_sha256} of pytorch-fid's {FID_WEIGHTS_FILENAME}")
    for key, (collection, keys, shape) in torch_names().items():
      if key not in f:
        raise ValueError(f'{path} has no {key}')
      value = f[key]
      if value.shape != shape:
        raise ValueError(f'{path}: {key} has shape {value.shape}, expected {shape}')
      node = variables[collection]
      for k in keys[:-1]:
        node = node.setdefault(k, {})
      node[keys[-1]] = np.asarray(value, dtype)
  return variables, digest


# --- Feature extraction ---------------------------------------------------------------------------


def check_images(images, *, name: str = 'images', atol: float = 1e-3) -> np.ndarray:
  """``images`` as a float array after checking they are ``(N, H, W, 1 or 3)`` in [-1, 1].

  ``atol`` allows round-off outside the interval (e.g. from a tanh in float32 it is none).

  Raises:
    ValueError: naming the shape, or the offending minimum/maximum or non-finite values.
  """
  images = np.asarray(images)
  if images.ndim != 4 or images.shape[-1] not in (1, 3):
    raise ValueError(f'{name} must have shape (N, H, W, 1) or (N, H, W, 3), got shape '
                     f'{images.shape}')
  if images.shape[0] == 0:
    raise ValueError(f'{name} is empty (shape {images.shape})')
  if not np.all(np.isfinite(images)):
    raise ValueError(f'{name} has non-finite values (NaN or inf)')
  lo, hi = float(images.min()), float(images.max())
  if lo < -1 - atol or hi > 1 + atol:
    raise ValueError(f'{name} must lie in [-1, 1] (jaxgan\'s image range), got values in '
                     f'[{lo:.4g}, {hi:.4g}]')
  return images


def make_apply(*, resize: bool = True):
  """``apply(variables, images) -> (pool, logits, unbiased_logits)``, jit-compiled."""
  model = FIDInceptionV3(resize=resize)

  @jax.jit
  def apply(variables, images):
    pool, logits = model.apply(variables, images)
    return pool, logits, logits - variables['params']['fc']['bias']

  return apply


def extractor(variables: Mapping, *, batch_size: int = 50,
              dtype=jnp.float32) -> classifier.FeatureExtractor:
  """A :class:`~jaxgan.eval.classifier.FeatureExtractor` of FID's Inception.

  ``features(images)``: the ``(N, 2048)`` pool features; ``probs(images)``: ``(N, 1008)``
  ``softmax(pool @ fc.kernel)`` (the Inception score's, without ``fc``'s bias). Images ``(N, H,
  W, 1 or 3)`` in [-1, 1] (:func:`check_images`), run in batches of ``batch_size`` (the last one
  padded, so one compilation per image shape). The two functions share one forward pass for the
  same array object called back to back (``features(x)`` then ``probs(x)`` runs the network once).
  """
  variables = jax.tree.map(lambda a: jnp.asarray(a, dtype), dict(variables))
  apply = make_apply()
  last: dict = {}

  def run(images) -> tuple[np.ndarray, np.ndarray]:
    if last.get('images') is images:
      return last['out']
    x = check_images(images).astype(dtype)
    pools, probs = [], []
    for start in range(0, x.shape[0], batch_size):
      chunk = x[start:start + batch_size]
      pad = batch_size - chunk.shape[0] if x.shape[0] > batch_size else 0
      padded = np.concatenate([chunk, np.zeros((pad, *chunk.shape[1:]), chunk.dtype)]) \
          if pad else chunk
      pool, _, unbiased = apply(variables, padded)
      pools.append(np.asarray(pool[:chunk.shape[0]]))
      probs.append(classifier.softmax(np.asarray(unbiased[:chunk.shape[0]])))
    last.clear()
    last.update(images=images, out=(np.concatenate(pools), np.concatenate(probs)))
    return last['out']

  return classifier.FeatureExtractor(features=lambda images: run(images)[0],
                                     probs=lambda images: run(images)[1])


def load_extractor(path: str | None = None, *, expected_sha256: str | None = FID_WEIGHTS_SHA256,
                   batch_size: int = 50) -> tuple[classifier.FeatureExtractor, str]:
  """``(extractor, source_sha256)`` from converted weights (default
  :func:`default_weights_path`)."""
  variables, digest = load_variables(path or default_weights_path(),
                                     expected_sha256=expected_sha256)
  return extractor(variables, batch_size=batch_size), digest


def count(tree) -> int:
  """Number of scalars in a pytree of arrays (or shape structs)."""
  return int(sum(np.prod(leaf.shape, dtype=np.int64) for leaf in jax.tree.leaves(tree)))


def _define_flags() -> None:
  """The CLI's flags; defined only when run as a program, so importing defines none."""
  from absl import flags

  flags.DEFINE_string('torch_weights', None, f"pytorch-fid's {FID_WEIGHTS_FILENAME}.",
                      required=True)
  flags.DEFINE_string('out', None, 'The .npz to write (default: jaxgan\'s cache, where '
                      'python -m jaxgan.eval looks).')


def main(argv: Sequence[str]):
  from absl import flags

  del argv
  FLAGS = flags.FLAGS
  out = FLAGS.out or default_weights_path()
  digest = convert_torch_weights(FLAGS.torch_weights, out)
  print(f'SHA-256 {digest} checked; wrote {out}')


if __name__ == '__main__':
  from absl import app

  _define_flags()
  app.run(main)
