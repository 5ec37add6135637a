"""Strided convolutions rewritten as stride-1 convolutions, computed as matrix products.

Each layer here computes exactly what a `flax.linen` layer computes (same parameters, same
initializers, outputs and gradients equal up to float summation order) in a form that XLA:CPU
runs several times faster:

* :class:`PhaseConvTranspose` is ``nn.ConvTranspose(features, kernel_size, strides,
  padding='SAME')`` in its "phase" (sub-pixel) form: a stride-``s`` transposed convolution is
  ``s*s`` stride-1 convolutions with the sub-kernels ``w[a::s, b::s]``, one per output phase
  ``(y mod s, x mod s)``, interleaved (Shi et al. 2016, arXiv:1609.05158; Dumoulin & Visin 2016,
  arXiv:1603.07285, section 4).
* :class:`SpaceToDepthConv` is ``nn.Conv(features, kernel_size, strides, padding='SAME')``: a
  stride-``s`` convolution is a stride-1 convolution over the space-to-depth rearranged input
  (every ``s x s`` block of pixels becomes ``s*s*C`` channels) with the rearranged kernel.

Why: XLA:CPU compiles the weight gradient of a transposed convolution into a convolution with
rhs dilation and reversal (about 30x slower than the same arithmetic as a matrix product), and
the input gradient of a strided convolution into an input-dilated convolution that runs on a slow
generic path. After the rewrite every convolution has stride 1 and no dilation; it is then computed
as ``patches @ kernel`` (``implementation='matmul'``, "im2col": the ``t*t`` shifted views of the
input side by side in the channel axis, one ``dot_general``), whose gradients are matrix products
too, or by ``lax.conv_general_dilated`` (``implementation='conv'``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax.linen.dtypes import promote_dtype
from jax import lax

IMPLEMENTATIONS = ('matmul', 'conv')
default_kernel_init = nn.initializers.lecun_normal()


def conv_valid(x: jax.Array, kernel: jax.Array, *, implementation: str = 'matmul',
               precision: lax.Precision | None = None) -> jax.Array:
  """Stride-1 ``'VALID'`` cross-correlation: NHWC ``x``, HWIO ``kernel`` -> NHWC.

  ``y[b, i, j, f] = sum_{p, q, c} x[b, i + p, j + q, c] * kernel[p, q, c, f]`` for
  ``0 <= i <= H - kh``, ``0 <= j <= W - kw``. With ``implementation='matmul'`` it is
  ``patches @ kernel.reshape(kh * kw * C, F)``, the patches being the ``kh * kw`` shifted views of
  ``x`` concatenated along channels in ``(p, q, c)`` order.
  """
  if implementation not in IMPLEMENTATIONS:
    raise ValueError(f'unknown implementation {implementation!r}; expected one of '
                     f'{list(IMPLEMENTATIONS)}')
  kh, kw, channels, features = kernel.shape
  if implementation == 'conv':
    return lax.conv_general_dilated(x, kernel, (1, 1), 'VALID',
                                    dimension_numbers=('NHWC', 'HWIO', 'NHWC'),
                                    precision=precision)
  out_h, out_w = x.shape[1] - kh + 1, x.shape[2] - kw + 1
  views = [x[:, p:p + out_h, q:q + out_w] for p in range(kh) for q in range(kw)]
  patches = views[0] if len(views) == 1 else jnp.concatenate(views, axis=-1)
  return lax.dot_general(patches, kernel.reshape(kh * kw * channels, features),
                         (((3,), (0,)), ((), ())), precision=precision)


def _check_2d(name: str, kernel_size, strides, padding) -> tuple[tuple[int, int], tuple[int, int]]:
  kernel_size, strides = tuple(kernel_size), tuple(strides)
  if len(kernel_size) != 2 or len(strides) != 2:
    raise ValueError(f'{name} is 2-D: got kernel_size={kernel_size}, strides={strides}')
  if min(strides) < 1 or any(k % s for k, s in zip(kernel_size, strides, strict=True)):
    raise ValueError(f'{name}: kernel_size={kernel_size} must be a multiple of '
                     f'strides={strides} (>= 1)')
  if padding != 'SAME':
    raise ValueError(f"{name} supports padding='SAME' only, got padding={padding!r}")
  return kernel_size, strides


def _transpose_same_padding_before(kernel: int, stride: int) -> int:
  """Zeros ``lax.conv_transpose(..., 'SAME')`` puts before the stride-dilated input."""
  if stride > kernel - 1:
    return kernel - 1
  return -(-(kernel + stride - 2) // 2)


def _phase_plan(kernel: int, stride: int) -> tuple[list[int], list[int], int, int]:
  """Per output phase ``a``: the first tap ``j0[a]`` and the crop start; the input pads (L, R).

  ``nn.ConvTranspose`` ('SAME', kernel not flipped) computes, per spatial dimension,
  ``y[o] = sum_j w[j] x[(o + j - p) / s]`` over the taps ``j`` with ``o + j - p`` divisible by
  ``s``, where ``p`` is :func:`_transpose_same_padding_before`. For ``o = s*m + a`` those taps are
  ``j = j0 + s*t`` with ``j0 = (p - a) mod s``, ``t = 0 .. k/s - 1``, reading
  ``x[m + off_a + t]`` with ``off_a = (a + j0 - p) / s``. A stride-1 convolution with the taps
  ``w[j0::s]`` over ``x`` padded by ``L = -min(off)`` computes this at position ``m + off_a + L``.
  """
  pad = _transpose_same_padding_before(kernel, stride)
  taps = kernel // stride
  first = [(pad - a) % stride for a in range(stride)]
  offsets = [(a + j0 - pad) // stride for a, j0 in enumerate(first)]
  left = max(0, -min(offsets))
  right = max(0, max(offsets) + taps - 1)
  return first, [o + left for o in offsets], left, right


class PhaseConvTranspose(nn.Module):
  r"""``nn.ConvTranspose(features, kernel_size, strides, padding='SAME')`` in its phase form.

  With stride ``s``, kernel ``k`` (``k % s == 0``) and input ``x`` of shape ``(B, H, W, C_in)``,
  the output ``y`` of shape ``(B, s*H, s*W, C_out)`` is, for every phase ``(a, b)``,

  .. math::
    y[:, s m + a, s n + b, :] = \big(\mathrm{pad}(x) \star w[j_a :: s,\ j_b :: s]\big)
                                [:, m + c_a, n + c_b, :] + \mathrm{bias}

  where :math:`\star` is a stride-1 VALID cross-correlation and ``j``, ``c`` the first tap and
  crop of each phase (for ``k=4, s=2``: the input padded by 1 on each side; taps ``w[0::2]`` with
  crop 0 for even outputs, ``w[1::2]`` with crop 1 for odd ones). All ``s*s`` sub-kernels are
  stacked along the output channels, so the layer is ONE convolution producing ``s*s*C_out``
  channels, a crop per phase and an interleave.

  The parameters are exactly those of ``nn.ConvTranspose`` (``transpose_kernel=False``):
  ``kernel`` of shape ``(kh, kw, C_in, C_out)`` with the same default initializer, and ``bias``
  ``(C_out,)``; a checkpoint of either layer loads into the other.

  Attributes:
    features: output channels ``C_out``.
    kernel_size: ``(kh, kw)``; each a multiple of its stride.
    strides: ``(sh, sw)``.
    padding: only ``'SAME'`` (what DCGAN uses).
    use_bias: add a learned bias.
    kernel_init, bias_init: initializers (defaults as ``nn.ConvTranspose``).
    implementation: ``'matmul'`` (im2col + one matrix product, fastest on CPU) or ``'conv'``
      (``lax.conv_general_dilated``); see :func:`conv_valid`.
    dtype: the computation dtype (None: promoted from the inputs and parameters, as flax does).
    param_dtype: the parameters' dtype.
    precision: ``lax`` precision of the product.
  """

  features: int
  kernel_size: Sequence[int] = (4, 4)
  strides: Sequence[int] = (2, 2)
  padding: str = 'SAME'
  use_bias: bool = True
  kernel_init: Callable = default_kernel_init
  bias_init: Callable = nn.initializers.zeros_init()
  implementation: str = 'matmul'
  dtype: Any = None
  param_dtype: Any = jnp.float32
  precision: lax.Precision | None = None

  @nn.compact
  def __call__(self, x):
    (kh, kw), (sh, sw) = _check_2d('PhaseConvTranspose', self.kernel_size, self.strides,
                                   self.padding)
    if x.ndim != 4:
      raise ValueError(f'expected inputs of shape (B, H, W, C), got shape {x.shape}')
    batch, height, width, in_features = x.shape
    kernel = self.param('kernel', self.kernel_init, (kh, kw, in_features, self.features),
                        self.param_dtype)
    bias = (self.param('bias', self.bias_init, (self.features,), self.param_dtype)
            if self.use_bias else None)
    x, kernel, bias = promote_dtype(x, kernel, bias, dtype=self.dtype)
    first_h, crop_h, left_h, right_h = _phase_plan(kh, sh)
    first_w, crop_w, left_w, right_w = _phase_plan(kw, sw)
    # (kh/sh, kw/sw, C_in, sh*sw*C_out), output channels ordered (a, b, c_out).
    phase_kernel = jnp.concatenate(
        [kernel[ja::sh, jb::sw] for ja in first_h for jb in first_w], axis=-1)
    x = jnp.pad(x, ((0, 0), (left_h, right_h), (left_w, right_w), (0, 0)))
    y = conv_valid(x, phase_kernel, implementation=self.implementation, precision=self.precision)
    y = y.reshape((*y.shape[:3], sh * sw, self.features))
    phases = [y[:, ch:ch + height, cw:cw + width, a * sw + b]
              for a, ch in enumerate(crop_h) for b, cw in enumerate(crop_w)]
    # (B, H, W, sh, sw, C) -> (B, H, sh, W, sw, C) -> (B, sh*H, sw*W, C).
    y = jnp.stack(phases, axis=3).reshape((batch, height, width, sh, sw, self.features))
    y = y.transpose((0, 1, 3, 2, 4, 5)).reshape((batch, sh * height, sw * width, self.features))
    if bias is not None:
      y = y + bias
    return y


class SpaceToDepthConv(nn.Module):
  r"""``nn.Conv(features, kernel_size, strides, padding='SAME')`` as a stride-1 convolution.

  ``'SAME'`` pads ``x`` of shape ``(B, H, W, C)`` to ``(B, s*(H' + t - 1), ...)`` with
  ``H' = ceil(H / s)``, ``t = k / s`` (``total = (H' - 1) s + k - H`` zeros, ``total // 2``
  before), exactly as ``nn.Conv``. Writing ``i = s u + a`` for every padded pixel and tap,

  .. math::
    y[:, m, n, :] = \sum_{u, v < t} \sum_{a, b < s} x_p[:, s(m+u) + a, s(n+v) + b, :]\,
                    w[s u + a, s v + b] = \big(\mathrm{s2d}(x_p) \star \tilde w\big)[:, m, n, :]

  where ``s2d`` moves each ``s x s`` block into the channels (order ``(a, b, c)``) and
  ``w~[u, v] = w[s u:s u + s, s v:s v + s]`` flattened the same way: a stride-1 VALID
  cross-correlation with ``t x t`` taps and ``s*s*C`` input channels. The parameters are exactly
  those of ``nn.Conv``: ``kernel`` ``(kh, kw, C, features)`` and ``bias`` ``(features,)``.

  Attributes:
    features: output channels.
    kernel_size: ``(kh, kw)``; each a multiple of its stride.
    strides: ``(sh, sw)``.
    padding: only ``'SAME'``.
    use_bias: add a learned bias.
    kernel_init, bias_init: initializers (defaults as ``nn.Conv``).
    implementation: ``'matmul'`` or ``'conv'`` (see :func:`conv_valid`).
    dtype: the computation dtype (None: promoted from the inputs and parameters, as flax does).
    param_dtype: the parameters' dtype.
    precision: ``lax`` precision of the product.
  """

  features: int
  kernel_size: Sequence[int] = (4, 4)
  strides: Sequence[int] = (2, 2)
  padding: str = 'SAME'
  use_bias: bool = True
  kernel_init: Callable = default_kernel_init
  bias_init: Callable = nn.initializers.zeros_init()
  implementation: str = 'matmul'
  dtype: Any = None
  param_dtype: Any = jnp.float32
  precision: lax.Precision | None = None

  @nn.compact
  def __call__(self, x):
    (kh, kw), (sh, sw) = _check_2d('SpaceToDepthConv', self.kernel_size, self.strides,
                                   self.padding)
    if x.ndim != 4:
      raise ValueError(f'expected inputs of shape (B, H, W, C), got shape {x.shape}')
    batch, height, width, channels = x.shape
    kernel = self.param('kernel', self.kernel_init, (kh, kw, channels, self.features),
                        self.param_dtype)
    bias = (self.param('bias', self.bias_init, (self.features,), self.param_dtype)
            if self.use_bias else None)
    x, kernel, bias = promote_dtype(x, kernel, bias, dtype=self.dtype)
    pads = []
    for size, k, s in ((height, kh, sh), (width, kw, sw)):
      total = max((-(-size // s) - 1) * s + k - size, 0)
      pads.append((total // 2, total - total // 2))
    x = jnp.pad(x, ((0, 0), *pads, (0, 0)))
    blocks_h, blocks_w = x.shape[1] // sh, x.shape[2] // sw
    x = x.reshape((batch, blocks_h, sh, blocks_w, sw, channels)).transpose((0, 1, 3, 2, 4, 5))
    x = x.reshape((batch, blocks_h, blocks_w, sh * sw * channels))
    th, tw = kh // sh, kw // sw
    kernel = kernel.reshape((th, sh, tw, sw, channels, self.features))
    kernel = kernel.transpose((0, 2, 1, 3, 4, 5)).reshape((th, tw, sh * sw * channels,
                                                           self.features))
    y = conv_valid(x, kernel, implementation=self.implementation, precision=self.precision)
    if bias is not None:
      y = y + bias
    return y


def _conv_transpose(x, kernel, strides, precision):
  return lax.conv_transpose(x, kernel, strides, 'SAME', precision=precision)


def _conv_transpose_kernel_grad(x, dy, kernel_shape, strides, precision):
  """dL/dkernel of ``_conv_transpose`` as the weight gradient of a strided convolution."""
  pads = []
  for k, s in zip(kernel_shape[:2], strides, strict=True):
    left = k - 1 - _transpose_same_padding_before(k, s)
    pads.append((left, k - s - left))
  kh, kw, c_in, c_out = kernel_shape
  conv = lambda k: lax.conv_general_dilated(dy, k, strides, pads,
                                            dimension_numbers=('NHWC', 'HWOI', 'NHWC'),
                                            precision=precision)
  (dk,) = jax.linear_transpose(conv, jax.ShapeDtypeStruct(kernel_shape, dy.dtype))(x)
  return dk[::-1, ::-1]


@functools.partial(jax.custom_jvp, nondiff_argnums=(2, 3))
def adjoint_conv_transpose(x, kernel, strides, precision=None):
  return _conv_transpose(x, kernel, strides, precision)


@adjoint_conv_transpose.defjvp
def _adjoint_conv_transpose_jvp(strides, precision, primals, tangents):
  x, kernel = primals
  dx, dkernel = tangents
  y = _conv_transpose(x, kernel, strides, precision)
  kernel_grad = lambda dy: _conv_transpose_kernel_grad(x, dy, kernel.shape, strides, precision)
  (dy_kernel,) = jax.linear_transpose(kernel_grad, jax.ShapeDtypeStruct(y.shape, y.dtype))(
      dkernel)
  return y, _conv_transpose(dx, kernel, strides, precision) + dy_kernel


class AdjointConvTranspose(nn.Module):
  features: int
  kernel_size: Sequence[int] = (4, 4)
  strides: Sequence[int] = (2, 2)
  padding: str = 'SAME'
  use_bias: bool = True
  kernel_init: Callable = default_kernel_init
  bias_init: Callable = nn.initializers.zeros_init()
  dtype: Any = None
  param_dtype: Any = jnp.float32
  precision: lax.Precision | None = None

  @nn.compact
  def __call__(self, x):
    (kh, kw), strides = _check_2d('AdjointConvTranspose', self.kernel_size, self.strides,
                                  self.padding)
    kernel = self.param('kernel', self.kernel_init, (kh, kw, x.shape[-1], self.features),
                        self.param_dtype)
    bias = (self.param('bias', self.bias_init, (self.features,), self.param_dtype)
            if self.use_bias else None)
    x, kernel, bias = promote_dtype(x, kernel, bias, dtype=self.dtype)
    y = adjoint_conv_transpose(x, kernel, strides, self.precision)
    if bias is not None:
      y = y + bias
    return y
