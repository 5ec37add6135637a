"""Transposed convolutions with the outputs and gradients of ``nn.ConvTranspose``, but fast on CPU.

A DCGAN generator is a stack of stride-2 transposed convolutions. ``lax.conv_transpose`` (what
``nn.ConvTranspose`` calls, with ``transpose_kernel=False``) is a convolution of the
stride-dilated input; its kernel gradient, as JAX derives it, is a convolution with rhs
(window) dilation and reversal, which XLA:CPU runs on a slow generic path: for DCGAN's
128 -> 64 channel, 7x7 -> 14x14 layer at batch 64 it takes about 360 ms on one core, against
about 7 ms for the forward pass and about 10 ms for PyTorch's whole backward pass. Two exact
rewrites avoid it; both keep the parameters of ``nn.ConvTranspose`` (``kernel`` of shape
``(kh, kw, C_in, C_out)`` with the same initializer, ``bias`` ``(C_out,)``), so a checkpoint of
either loads into the other:

* :class:`AdjointConvTranspose` (used by :class:`jaxgan.models.DCGANGenerator`): the forward pass
  IS ``lax.conv_transpose``; only the derivative is rewritten (:func:`conv_transpose`, a
  ``jax.custom_jvp``). The kernel gradient of ``y = x (*)^T w`` is a bilinear form in ``x`` and
  ``dy``, and it equals the kernel gradient of an ordinary *strided* convolution that reads the
  padded ``dy`` and whose output cotangent is ``x``: the adjoint identity
  ``<dy, ConvT(x, w)> = <Conv_s(dy, w'), x>`` with ``w'`` the spatially reversed, in/out swapped
  kernel (Dumoulin & Visin 2016, "A guide to convolution arithmetic for deep learning",
  arXiv:1603.07285, section 4). XLA runs that in about 10 ms. The input gradient is JAX's own (a
  strided convolution, already fast). Forward and reverse mode, to any order, work.
* :class:`PhaseConvTranspose`: the "phase" (sub-pixel) form, where a stride-``s`` transposed
  convolution is ``s*s`` stride-1 convolutions with the sub-kernels ``w[a::s, b::s]``, one per
  output phase ``(y mod s, x mod s)``, computed as one convolution with ``s*s*C_out`` output
  channels, a crop per phase and an interleave (Shi et al. 2016, arXiv:1609.05158). Plain JAX, no
  custom derivative; its gradients take about 36 ms on the layer above.

Measured on one core of the benchmark machine (``benchmarks/throughput.py`` has the full step):
forward + backward of that layer, ``nn.ConvTranspose`` ~370 ms, ``PhaseConvTranspose`` ~43 ms,
``AdjointConvTranspose`` ~26 ms, PyTorch's ``ConvTranspose2d`` ~18 ms.

:func:`pixel_shuffle` is the sub-pixel rearrangement ``(B, H, W, C r^2) -> (B, H r, W r, C)``
(PyTorch's channel order) that turns a stride-1 convolution into an upsampling layer.
"""

from __future__ import annotations

import functools
import numbers
from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax.linen.dtypes import promote_dtype
from jax import lax

default_kernel_init = nn.initializers.lecun_normal()
_DIMENSIONS = ('NHWC', 'HWIO', 'NHWC')

Padding = str | Sequence[tuple[int, int]]


def _transpose_padding(kernel: int, stride: int, padding) -> tuple[int, int]:
  """Zeros before and after the stride-dilated input, as ``lax.conv_transpose`` pads.

  ``'SAME'`` gives an output of ``stride * n``; ``'VALID'`` of ``stride * (n - 1) + max(kernel,
  stride)``; a pair ``(lo, hi)`` is used as given (flax's convention for explicit padding).
  """
  if padding == 'SAME':
    total = kernel + stride - 2
    before = kernel - 1 if stride > kernel - 1 else -(-total // 2)
  elif padding == 'VALID':
    total = kernel + stride - 2 + max(kernel - stride, 0)
    before = kernel - 1
  else:
    before, after = padding
    return int(before), int(after)
  return before, total - before


def _canonical_padding(padding: Padding, kernel_size, strides) -> tuple[tuple[int, int], ...]:
  if isinstance(padding, str):
    if padding not in ('SAME', 'VALID'):
      raise ValueError(f"padding must be 'SAME', 'VALID' or ((lo, hi), (lo, hi)), got "
                       f'{padding!r}')
    return tuple(_transpose_padding(k, s, padding)
                 for k, s in zip(kernel_size, strides, strict=True))
  pairs = tuple(tuple(p) for p in padding)
  if len(pairs) != len(kernel_size) or any(len(p) != 2 for p in pairs):
    raise ValueError(f"padding must be 'SAME', 'VALID' or ((lo, hi), (lo, hi)), got {padding!r}")
  return pairs


def _conv_transpose(x, kernel, strides, padding, precision):
  """``lax.conv_transpose(x, kernel, strides, padding)`` with padding already resolved."""
  return lax.conv_general_dilated(x, kernel, (1,) * len(strides), padding, lhs_dilation=strides,
                                  dimension_numbers=_DIMENSIONS, precision=precision)


def _kernel_gradient(x, dy, kernel_shape, strides, padding, precision):
  """The kernel gradient of :func:`_conv_transpose` at ``x`` for the output cotangent ``dy``.

  Per spatial dimension, with ``p`` zeros before the dilated input, the forward pass is
  ``y[o] = sum_j w[j] x[i]`` over ``o = s i + j - p``, so
  ``dw[j] = sum_i x[i] dy[s i + p - j] = sum_i x[i] dy_pad[s i + r]`` with ``r = k - 1 - j`` and
  ``dy`` padded by ``k - 1 - p`` zeros before: the kernel gradient of the stride-``s`` VALID
  convolution ``x' = Conv_s(dy_pad, w')`` at output cotangent ``x``, with ``w'[r] = w[k-1-r]``
  and the channel axes swapped (``'HWOI'``). Computed by transposing that convolution, which is
  what XLA compiles to a fast kernel-gradient convolution.
  """
  conv_pads, crops = [], []
  for k, s, (before, _), n, m in zip(kernel_shape[:2], strides, padding, x.shape[1:3],
                                     dy.shape[1:3], strict=True):
    lo = k - 1 - before
    hi = s * (n - 1) + k - m - lo
    conv_pads.append((max(lo, 0), max(hi, 0)))
    crops.append((max(-lo, 0), m - max(-hi, 0)))
  dy = dy[:, crops[0][0]:crops[0][1], crops[1][0]:crops[1][1]]
  conv = lambda w: lax.conv_general_dilated(dy, w, strides, conv_pads,
                                            dimension_numbers=('NHWC', 'HWOI', 'NHWC'),
                                            precision=precision)
  (reversed_gradient,) = jax.linear_transpose(
      conv, jax.ShapeDtypeStruct(kernel_shape, dy.dtype))(x)
  return reversed_gradient[::-1, ::-1]


@functools.partial(jax.custom_jvp, nondiff_argnums=(2, 3, 4))
def conv_transpose(x: jax.Array, kernel: jax.Array, strides: tuple[int, int],
                   padding: tuple[tuple[int, int], ...], precision=None) -> jax.Array:
  """``lax.conv_transpose(x, kernel, strides, padding)`` (NHWC, HWIO) with a fast derivative.

  The value is computed by the same XLA convolution as ``lax.conv_transpose``. The derivative
  (a ``jax.custom_jvp``) is linear in the tangents: ``conv_transpose(dx, kernel) + T(dkernel)``,
  where ``T`` is built as the transpose of :func:`_kernel_gradient`, so reverse mode (which
  transposes ``T`` back) evaluates the kernel gradient as a strided convolution. ``padding`` is
  the resolved ``((lo, hi), (lo, hi))`` of the dilated input (see :func:`_transpose_padding`).
  """
  return _conv_transpose(x, kernel, strides, padding, precision)


@conv_transpose.defjvp
def _conv_transpose_jvp(strides, padding, precision, primals, tangents):
  x, kernel = primals
  dx, dkernel = tangents
  y = _conv_transpose(x, kernel, strides, padding, precision)
  kernel_gradient = lambda dy: _kernel_gradient(x, dy, kernel.shape, strides, padding, precision)
  (dy_from_kernel,) = jax.linear_transpose(
      kernel_gradient, jax.ShapeDtypeStruct(y.shape, y.dtype))(dkernel)
  return y, _conv_transpose(dx, kernel, strides, padding, precision) + dy_from_kernel


def _check_2d(name: str, kernel_size, strides) -> tuple[tuple[int, int], tuple[int, int]]:
  kernel_size, strides = tuple(kernel_size), tuple(strides)
  if len(kernel_size) != 2 or len(strides) != 2:
    raise ValueError(f'{name} is 2-D: got kernel_size={kernel_size}, strides={strides}')
  if min(strides) < 1 or min(kernel_size) < 1:
    raise ValueError(f'{name}: kernel_size={kernel_size} and strides={strides} must be >= 1')
  return kernel_size, strides


class _ConvTransposeParams(nn.Module):
  """The attributes and parameters ``nn.ConvTranspose`` has (``transpose_kernel=False``)."""

  features: int
  kernel_size: Sequence[int] = (4, 4)
  strides: Sequence[int] = (2, 2)
  padding: Padding = 'SAME'
  use_bias: bool = True
  kernel_init: Callable = default_kernel_init
  bias_init: Callable = nn.initializers.zeros_init()
  dtype: Any = None
  param_dtype: Any = jnp.float32
  precision: lax.Precision | None = None

  def _params(self, x):
    """``(x, kernel, bias)`` promoted to the computation dtype, as flax does."""
    if x.ndim != 4:
      raise ValueError(f'{type(self).__name__} expects inputs of shape (B, H, W, C), got '
                       f'shape {x.shape}')
    kh, kw = self.kernel_size
    kernel = self.param('kernel', self.kernel_init, (kh, kw, x.shape[-1], self.features),
                        self.param_dtype)
    bias = (self.param('bias', self.bias_init, (self.features,), self.param_dtype)
            if self.use_bias else None)
    return promote_dtype(x, kernel, bias, dtype=self.dtype)


class AdjointConvTranspose(_ConvTransposeParams):
  """``nn.ConvTranspose`` whose gradients run as strided convolutions (see :func:`conv_transpose`).

  Same attributes, parameters, initializers and outputs as ``nn.ConvTranspose`` for 2-D NHWC
  inputs, ``padding`` ``'SAME'``, ``'VALID'`` or explicit pairs, no kernel dilation; gradients
  equal up to float summation order.

  Attributes:
    features: output channels ``C_out``.
    kernel_size: ``(kh, kw)``.
    strides: ``(sh, sw)``; ``'SAME'`` maps ``(B, H, W, C_in)`` to ``(B, sh*H, sw*W, C_out)``.
    padding: ``'SAME'``, ``'VALID'`` or ``((lo, hi), (lo, hi))`` as in ``nn.ConvTranspose``.
    use_bias, kernel_init, bias_init, dtype, param_dtype, precision: as in ``nn.ConvTranspose``.
  """

  @nn.compact
  def __call__(self, x):
    kernel_size, strides = _check_2d(type(self).__name__, self.kernel_size, self.strides)
    padding = _canonical_padding(self.padding, kernel_size, strides)
    x, kernel, bias = self._params(x)
    y = conv_transpose(x, kernel, strides, padding, self.precision)
    return y if bias is None else y + bias


def _phase_plan(kernel: int, stride: int) -> tuple[list[int], list[int], int, int]:
  """Per output phase ``a``: the first tap ``j0[a]`` and the crop start; the input pads (L, R).

  With ``p`` zeros before the dilated input (``'SAME'``), ``y[o] = sum_j w[j] x[(o + j - p) / s]``
  over the taps with ``o + j - p`` divisible by ``s``. For ``o = s m + a`` those are
  ``j = j0 + s t`` with ``j0 = (p - a) mod s``, ``t < k/s``, reading ``x[m + off_a + t]`` with
  ``off_a = (a + j0 - p) / s``: a stride-1 convolution with the taps ``w[j0::s]`` over ``x``
  padded by ``L = -min(off)`` evaluated at ``m + off_a + L``.
  """
  pad = _transpose_padding(kernel, stride, 'SAME')[0]
  taps = kernel // stride
  first = [(pad - a) % stride for a in range(stride)]
  offsets = [(a + j0 - pad) // stride for a, j0 in enumerate(first)]
  left = max(0, -min(offsets))
  right = max(0, max(offsets) + taps - 1)
  return first, [o + left for o in offsets], left, right


class PhaseConvTranspose(_ConvTransposeParams):
  r"""``nn.ConvTranspose(padding='SAME')`` in its phase form (kernel a multiple of the stride).

  With stride ``s``, kernel ``k`` (``k % s == 0``) and input ``x`` of shape ``(B, H, W, C_in)``,
  the output ``y`` of shape ``(B, s*H, s*W, C_out)`` is, for every phase ``(a, b)``,

  .. math::
    y[:, s m + a, s n + b, :] = \big(\mathrm{pad}(x) \star w[j_a :: s,\ j_b :: s]\big)
                                [:, m + c_a, n + c_b, :] + \mathrm{bias}

  where :math:`\star` is a stride-1 VALID cross-correlation and ``j``, ``c`` the first tap and
  the crop of each phase (:func:`_phase_plan`; for ``k=4, s=2``: the input padded by 1 on each
  side, taps ``w[0::2]`` with crop 0 for even outputs and ``w[1::2]`` with crop 1 for odd ones).
  The ``s*s`` sub-kernels are stacked along the output channels: one convolution producing
  ``s*s*C_out`` channels, then a crop per phase and an interleave. Outputs and gradients equal
  ``nn.ConvTranspose``'s up to float summation order; plain JAX (no custom derivative).

  Attributes:
    features, kernel_size, strides, use_bias, kernel_init, bias_init, dtype, param_dtype,
    precision: as in ``nn.ConvTranspose``.
    padding: only ``'SAME'``.
  """

  @nn.compact
  def __call__(self, x):
    (kh, kw), (sh, sw) = _check_2d(type(self).__name__, self.kernel_size, self.strides)
    if kh % sh or kw % sw:
      raise ValueError(f'PhaseConvTranspose: kernel_size={(kh, kw)} must be a multiple of '
                       f'strides={(sh, sw)}')
    if self.padding != 'SAME':
      raise ValueError(f"PhaseConvTranspose supports padding='SAME' only, got {self.padding!r}")
    x, kernel, bias = self._params(x)
    batch, height, width, _ = x.shape
    first_h, crop_h, left_h, right_h = _phase_plan(kh, sh)
    first_w, crop_w, left_w, right_w = _phase_plan(kw, sw)
    # (kh/sh, kw/sw, C_in, sh*sw*C_out), output channels ordered (a, b, c_out).
    phase_kernel = jnp.concatenate(
        [kernel[ja::sh, jb::sw] for ja in first_h for jb in first_w], axis=-1)
    x = jnp.pad(x, ((0, 0), (left_h, right_h), (left_w, right_w), (0, 0)))
    y = lax.conv_general_dilated(x, phase_kernel, (1, 1), 'VALID',
                                 dimension_numbers=_DIMENSIONS, precision=self.precision)
    y = y.reshape((*y.shape[:3], sh * sw, self.features))
    phases = [y[:, ch:ch + height, cw:cw + width, a * sw + b]
              for a, ch in enumerate(crop_h) for b, cw in enumerate(crop_w)]
    # (B, H, W, sh, sw, C) -> (B, H, sh, W, sw, C) -> (B, sh*H, sw*W, C).
    y = jnp.stack(phases, axis=3).reshape((batch, height, width, sh, sw, self.features))
    y = y.transpose((0, 1, 3, 2, 4, 5)).reshape((batch, sh * height, sw * width, self.features))
    return y if bias is None else y + bias


def pixel_shuffle(x: jax.Array, factor: int) -> jax.Array:
  r"""The sub-pixel convolution's rearrangement: ``(B, H, W, C r^2) -> (B, H r, W r, C)``, NHWC.

  .. math::
    \text{out}[b,\ h r + i,\ w r + j,\ c] = x[b,\ h,\ w,\ c r^2 + i r + j],
    \qquad 0 \le i, j < r

  i.e. input channel ``c r^2 + i r + j`` becomes output channel ``c`` at row offset ``i`` and
  column offset ``j`` within each ``r x r`` block. This is PyTorch's
  ``torch.nn.functional.pixel_shuffle`` (and ``nn.PixelShuffle``) on the NCHW transpose, so
  weights of a PyTorch ``Conv2d`` followed by ``PixelShuffle`` keep their channel order; it is
  not ``tf.nn.depth_to_space``, whose channel index is ``(i r + j) C + c``. A stride-1
  convolution to ``C r^2`` channels followed by it is the efficient sub-pixel convolution layer
  (ESPCN) of Shi et al. 2016, arXiv:1609.05158. A pure reshape/transpose: exact, any dtype.

  Args:
    x: ``(B, H, W, C * factor**2)``.
    factor: the upscaling factor ``r``, an int ``>= 1`` (1 returns ``x``).

  Returns:
    ``(B, H * factor, W * factor, C)``.

  Raises:
    ValueError: for an input that is not 4-D, a ``factor`` that is not an int ``>= 1``, or
      channels not divisible by ``factor**2``.

  Example:
    >>> import jax.numpy as jnp
    >>> pixel_shuffle(jnp.arange(4).reshape(1, 1, 1, 4), 2)[0, :, :, 0]
    Array([[0, 1],
           [2, 3]], dtype=int32)
  """
  x = jnp.asarray(x)
  if x.ndim != 4:
    raise ValueError(f'pixel_shuffle: x must have shape (B, H, W, C), got shape {x.shape}')
  if isinstance(factor, bool) or not isinstance(factor, numbers.Integral) or factor < 1:
    raise ValueError(f'pixel_shuffle: factor must be an int >= 1, got factor={factor!r}')
  r = int(factor)
  batch, height, width, channels = x.shape
  if channels % (r * r):
    raise ValueError(f'pixel_shuffle: channels={channels} are not divisible by '
                     f'factor**2={r * r}')
  out_channels = channels // (r * r)
  # (B, H, W, C, i, j) -> (B, H, i, W, j, C) -> (B, H r, W r, C).
  x = x.reshape((batch, height, width, out_channels, r, r)).transpose((0, 1, 4, 2, 5, 3))
  return x.reshape((batch, height * r, width * r, out_channels))
