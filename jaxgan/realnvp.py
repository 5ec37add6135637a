r"""Real NVP (Dinh et al. 2016, arXiv:1605.08803): a normalizing flow with an exact likelihood.

An invertible map ``z = f(y)`` onto a standard normal gives the exact density (paper Section 3.1)

.. math::

   \log p_Y(y) = \log \mathcal{N}(f(y); 0, I)
                 + \log \left|\det \frac{\partial f(y)}{\partial y}\right|,

and sampling is ``y = f^{-1}(z)``, ``z ~ N(0, I)``. ``f`` is a composition of *affine coupling
layers* (paper Sections 3.2-3.4): with a binary mask ``b`` over the input,

.. math::

   f_c(y) = b \odot y + (1 - b) \odot \big(y \odot e^{s(b \odot y)} + t(b \odot y)\big),
   \qquad \log |\det \partial f_c / \partial y| = \textstyle\sum_{d} (1 - b_d)\, s(b \odot y)_d,

whose Jacobian is triangular for *any* networks ``s`` and ``t`` and whose inverse is
``y = b \odot f_c + (1 - b) \odot (f_c - t(b \odot f_c)) \odot e^{-s(b \odot f_c)}``. Masks are
spatial checkerboards (``b_{ij} = [(i + j) \bmod 2 = \text{parity}]``) or channel halves. The
multi-scale architecture (paper Section 3.6) at each scale but the last applies 3 checkerboard
couplings, a *squeeze* (2x2 space-to-depth, ``(H, W, C) -> (H/2, W/2, 4C)``), 3 channel
couplings, then factors out half the channels as latents and recurses on the other half; the
last scale is 4 checkerboard couplings. Consecutive couplings alternate the mask's parity so
every dimension is updated.

Data (paper Section 4.1): integer pixels ``v`` in ``{0, .., 255}`` are *dequantized*,
``u = v + \epsilon``, ``\epsilon ~ U[0, 1)^D``, so ``u`` in ``[0, 256)^D`` has a density whose
likelihood lower-bounds the discrete one, ``\log P(v) \ge E_\epsilon \log p_U(v + \epsilon)``;
then the flow models the *logit* ``y = logit(\alpha + (1 - 2\alpha) u / 256)``, ``\alpha = 0.05``,
which maps the bounded pixels onto the real line. (The paper writes ``\alpha + (1 - \alpha)
u/256``, whose upper end reaches 1 and an infinite logit; the symmetric form here, used by common
reimplementations, keeps both ends finite.) The likelihood reported must be the density of ``u``,
not of ``y``: see :func:`pixel_nll` and :func:`bits_per_dim`.

Simplifications against the paper: the ``s``/``t`` network is a small ReLU convnet (no ResNet,
batch or weight normalization, so the density of one example never depends on the batch and the
model has no state); ``s = scale * tanh(.)`` as in the paper; its last layer starts at zero, so the
flow starts as the identity. Images are NHWC floats.
"""

from __future__ import annotations

import functools
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxgan import game

# The logit transform's alpha (paper Section 4.1).
ALPHA = 0.05
# Levels of an 8-bit pixel.
NUM_LEVELS = 256
MASK_TYPES = ('checkerboard', 'channel')


# ------------------------------------------------------------------------- masks, squeeze


def checkerboard_mask(height: int, width: int, *, parity: int) -> np.ndarray:
  """``(H, W, 1)`` float32 mask ``b_ij = 1`` where ``(i + j) % 2 == parity``, else 0 (paper
  Figure 3, left). E.g. ``2x2`` with parity 0: ``[[1, 0], [0, 1]]``."""
  if parity not in (0, 1):
    raise ValueError(f'parity must be 0 or 1; got parity={parity!r}')
  i, j = np.meshgrid(np.arange(height), np.arange(width), indexing='ij')
  return ((i + j) % 2 == parity).astype(np.float32)[:, :, None]


def channel_mask(channels: int, *, parity: int) -> np.ndarray:
  """``(1, 1, C)`` float32 mask: ones on the first ``C/2`` channels for parity 0, on the last
  ``C/2`` for parity 1 (paper Figure 3, right). ``C`` must be even."""
  if parity not in (0, 1):
    raise ValueError(f'parity must be 0 or 1; got parity={parity!r}')
  if channels < 2 or channels % 2:
    raise ValueError(f'a channel mask needs an even number of channels; got {channels}')
  first = np.arange(channels) < channels // 2
  return (first if parity == 0 else ~first).astype(np.float32)[None, None, :]


def squeeze(x: jax.Array) -> jax.Array:
  """2x2 space-to-depth (paper Figure 3): ``(B, H, W, C) -> (B, H/2, W/2, 4C)``.

  Output channel ``(2 di + dj) C + c`` at ``(i, j)`` holds input ``(2i + di, 2j + dj, c)``; a
  permutation, so its log-determinant is 0.

  Raises:
    ValueError: if ``H`` or ``W`` is odd.
  """
  b, h, w, c = x.shape
  if h % 2 or w % 2:
    raise ValueError(f'squeeze needs even height and width; got an input of shape {x.shape}')
  x = x.reshape((b, h // 2, 2, w // 2, 2, c)).transpose((0, 1, 3, 2, 4, 5))
  return x.reshape((b, h // 2, w // 2, 4 * c))


def unsqueeze(x: jax.Array) -> jax.Array:
  """The inverse of :func:`squeeze`: ``(B, H, W, 4C) -> (B, 2H, 2W, C)``."""
  b, h, w, c4 = x.shape
  if c4 % 4:
    raise ValueError(f'unsqueeze needs channels divisible by 4; got an input of shape {x.shape}')
  c = c4 // 4
  x = x.reshape((b, h, w, 2, 2, c)).transpose((0, 1, 3, 2, 4, 5))
  return x.reshape((b, 2 * h, 2 * w, c))


# ---------------------------------------------------------------------------- the flow


class AffineCoupling(nn.Module):
  r"""One affine coupling layer (paper Sections 3.2-3.4) with a checkerboard or channel mask.

  ``s, t = net(b * y)``: ``num_hidden_layers`` 3x3 convolutions of ``hidden_features`` with ReLU,
  then a 3x3 convolution to ``2C`` channels (zero-initialized), split into ``s_raw, t``;
  ``s = scale * tanh(s_raw)`` with a learned per-channel ``scale`` (initialized to 1). Both are
  multiplied by ``1 - b`` so the conditioning half passes through unchanged.

  Attributes:
    mask_type: ``'checkerboard'`` or ``'channel'``.
    parity: 0 or 1, which half the mask keeps (:func:`checkerboard_mask`, :func:`channel_mask`).
    hidden_features: channels of the hidden convolutions.
    num_hidden_layers: number of hidden convolutions.
  """

  mask_type: str
  parity: int
  hidden_features: int = 64
  num_hidden_layers: int = 2

  @nn.compact
  def __call__(self, y: jax.Array, *, inverse: bool = False) -> tuple[jax.Array, jax.Array]:
    """``(B, H, W, C)`` -> (the output, same shape; ``(B,)`` log|det| of this direction's
    Jacobian: ``sum (1 - b) s`` forward, ``-sum (1 - b) s`` inverse)."""
    _, height, width, channels = y.shape
    if self.mask_type == 'checkerboard':
      b = checkerboard_mask(height, width, parity=self.parity)
    elif self.mask_type == 'channel':
      b = channel_mask(channels, parity=self.parity)
    else:
      raise ValueError(f'mask_type must be one of {MASK_TYPES}; got {self.mask_type!r}')
    h = y * b  # b * y == b * f_c(y): the same s, t in both directions
    for i in range(self.num_hidden_layers):
      h = nn.relu(nn.Conv(self.hidden_features, (3, 3), padding='SAME', name=f'hidden_{i}')(h))
    out = nn.Conv(2 * channels, (3, 3), padding='SAME', kernel_init=nn.initializers.zeros_init(),
                  name='out')(h)
    s_raw, t = jnp.split(out, 2, axis=-1)
    scale = self.param('scale', nn.initializers.ones_init(), (channels,))
    s = (1.0 - b) * scale * jnp.tanh(s_raw)
    t = (1.0 - b) * t
    log_det = jnp.sum(s, axis=(1, 2, 3))
    if inverse:
      return (y - t) * jnp.exp(-s), -log_det
    return y * jnp.exp(s) + t, log_det


class RealNVP(nn.Module):
  r"""The multi-scale Real NVP flow ``z = f(y)`` (paper Section 3.6), ``z`` shaped like ``y``.

  Scale ``k < num_scales - 1`` on ``(H, W, C)``: checkerboard couplings of parities 0, 1, 0;
  :func:`squeeze` to ``(H/2, W/2, 4C)``; channel couplings of parities 0, 1, 0; the first ``2C``
  channels are factored out as latents and scale ``k + 1`` models the other ``2C``; the two halves
  are concatenated and unsqueezed, so ``z`` has ``y``'s shape and layout. The last scale is
  checkerboard couplings of parities 0, 1, 0, 1. ``num_scales=1`` is a single-scale flow of 4
  couplings; 28x28 images allow up to 3 scales (28 -> 14 -> 7), 32x32 up to 6.

  ``apply(variables, y)`` returns ``(z, log|det dz/dy|)``; ``apply(variables, z, inverse=True)``
  returns ``(y, log|det dy/dz|)`` (the negative of the forward one at that point).

  Attributes:
    num_scales: number of scales (>= 1).
    hidden_features: channels of every coupling's hidden convolutions.
    num_hidden_layers: hidden convolutions per coupling.
  """

  num_scales: int = 2
  hidden_features: int = 64
  num_hidden_layers: int = 2

  def _coupling(self, name: str, mask_type: str, parity: int) -> AffineCoupling:
    return AffineCoupling(mask_type, parity, self.hidden_features, self.num_hidden_layers,
                          name=name)

  @nn.compact
  def __call__(self, x: jax.Array, *, inverse: bool = False) -> tuple[jax.Array, jax.Array]:
    if self.num_scales < 1:
      raise ValueError(f'num_scales must be >= 1; got num_scales={self.num_scales}')
    return self._scale(x, 0, inverse)

  def _scale(self, x: jax.Array, level: int, inverse: bool) -> tuple[jax.Array, jax.Array]:
    log_det = jnp.zeros(x.shape[:1], x.dtype)
    if level == self.num_scales - 1:
      layers = [self._coupling(f'final_checkerboard_{j}', 'checkerboard', j % 2)
                for j in range(4)]
      for layer in (reversed(layers) if inverse else layers):
        x, ld = layer(x, inverse=inverse)
        log_det += ld
      return x, log_det
    checker = [self._coupling(f'scale_{level}_checkerboard_{j}', 'checkerboard', j % 2)
               for j in range(3)]
    channel = [self._coupling(f'scale_{level}_channel_{j}', 'channel', j % 2) for j in range(3)]
    if not inverse:
      for layer in checker:
        x, ld = layer(x)
        log_det += ld
      x = squeeze(x)
      for layer in channel:
        x, ld = layer(x)
        log_det += ld
      z_out, rest = jnp.split(x, 2, axis=-1)
      z_rest, ld = self._scale(rest, level + 1, inverse)
      return unsqueeze(jnp.concatenate([z_out, z_rest], axis=-1)), log_det + ld
    z_out, z_rest = jnp.split(squeeze(x), 2, axis=-1)
    rest, ld = self._scale(z_rest, level + 1, inverse)
    log_det += ld
    x = jnp.concatenate([z_out, rest], axis=-1)
    for layer in reversed(channel):
      x, ld = layer(x, inverse=True)
      log_det += ld
    x = unsqueeze(x)
    for layer in reversed(checker):
      x, ld = layer(x, inverse=True)
      log_det += ld
    return x, log_det


def flow_nll(model: RealNVP, params, y: jax.Array) -> jax.Array:
  r"""``-log p_Y(y)`` in nats, ``(B,)``, for real-valued ``y`` of shape ``(B, H, W, C)``:

  .. math::

     -\log p_Y(y) = \tfrac12 \lVert f(y) \rVert^2 + \tfrac{D}{2} \log 2\pi
                    - \log \left|\det \partial f / \partial y\right|, \qquad D = H W C.

  This is the density of whatever the flow is given; for images that is the logit space, which is
  *not* what to report (:func:`pixel_nll`).
  """
  z, log_det = model.apply({'params': params}, y)
  num_dims = math.prod(y.shape[1:])
  sq_norm = jnp.sum(jnp.square(z).reshape((z.shape[0], -1)), axis=-1)
  return 0.5 * sq_norm + 0.5 * num_dims * math.log(2 * math.pi) - log_det


# -------------------------------------------------------------- pixels <-> logit space


def check_pixels(images) -> None:
  """Raises ``ValueError`` unless ``images`` hold integer levels in ``{0, ..., 255}``. Only
  concrete arrays are checked (under ``jax.jit`` it is a no-op)."""
  if isinstance(images, jax.core.Tracer):
    return
  values = np.asarray(images)
  if values.size and not (np.all(values == np.round(values)) and values.min() >= 0
                          and values.max() <= NUM_LEVELS - 1):
    raise ValueError('Real NVP dequantizes integer pixel levels in {0, ..., 255}; got values in '
                     f'[{float(values.min()):g}, {float(values.max()):g}]'
                     + ('' if np.all(values == np.round(values)) else ', not all integers'))


def dequantize(images: jax.Array, key: jax.Array) -> jax.Array:
  """Uniform dequantization ``u = v + eps``, ``eps ~ U[0, 1)`` per dimension: integer levels
  ``v`` in ``{0, .., 255}`` to ``u`` in ``[0, 256)`` (paper Section 4.1). Raises ``ValueError``
  for concrete non-level input (:func:`check_pixels`)."""
  check_pixels(images)
  return images + jax.random.uniform(key, images.shape, jnp.float32)


def logit_transform(pixels: jax.Array, *, alpha: float = ALPHA) -> tuple[jax.Array, jax.Array]:
  r"""Dequantized pixels to logit space, with the log-determinant of the map.

  .. math::

     p = \alpha + (1 - 2\alpha)\, \frac{u}{256}, \qquad y = \operatorname{logit}(p)
       = \log p - \log(1 - p),

     \log\left|\det \frac{\partial y}{\partial u}\right|
       = \sum_{d=1}^{D} \Big[\log(1 - 2\alpha) - \log 256 - \log p_d - \log(1 - p_d)\Big],

  since ``dy/dp = 1 / (p (1 - p))``, ``dp/du = (1 - 2 alpha) / 256`` and the map is elementwise.

  Args:
    pixels: ``(B, H, W, C)`` dequantized pixels ``u`` in ``[0, 256)``.
    alpha: the boundary margin, in ``(0, 1/2)``.

  Returns:
    ``y`` of the same shape, and ``(B,)`` log-determinants ``log|det dy/du|``.

  Example:
    >>> import jax.numpy as jnp
    >>> # u = 128: p = 1/2, y = 0; log|dy/du| = log(0.9 * 4 / 256) per dimension
    >>> y, log_det = logit_transform(jnp.full((1, 1, 1, 1), 128.0))
    >>> print(f'{float(y[0, 0, 0, 0]):.1f} {float(log_det[0]):.4f}')
    0.0 -4.2642
  """
  if not 0.0 < alpha < 0.5:
    raise ValueError(f'alpha must be in (0, 1/2); got alpha={alpha!r}')
  p = alpha + (1.0 - 2.0 * alpha) * pixels / NUM_LEVELS
  log_p, log_1mp = jnp.log(p), jnp.log1p(-p)
  per_dim = math.log(1.0 - 2.0 * alpha) - math.log(NUM_LEVELS) - log_p - log_1mp
  return log_p - log_1mp, jnp.sum(per_dim.reshape((per_dim.shape[0], -1)), axis=-1)


def inverse_logit_transform(y: jax.Array, *, alpha: float = ALPHA) -> jax.Array:
  """``u = 256 (sigmoid(y) - alpha) / (1 - 2 alpha)``, the inverse of :func:`logit_transform`
  (values outside ``[0, 256)`` where ``y`` lies beyond ``logit(alpha)`` or ``logit(1 - alpha)``)."""
  return NUM_LEVELS * (jax.nn.sigmoid(y) - alpha) / (1.0 - 2.0 * alpha)


def pixel_nll(model: RealNVP, params, pixels: jax.Array, *, alpha: float = ALPHA) -> jax.Array:
  r"""``-log p_U(u)`` in nats, ``(B,)``: the density of the dequantized pixels ``u`` in
  ``[0, 256)^D``, by the change of variables through :func:`logit_transform`:

  .. math::

     -\log p_U(u) = \underbrace{-\log p_Y(y)}_{\text{flow NLL in logit space}}
                    - \underbrace{\log\left|\det \partial y / \partial u\right|}_{\text{logit
                    transform}}, \qquad y = \operatorname{logit}(\alpha + (1 - 2\alpha) u / 256).

  The second term carries ``+ D log 256`` (from ``du/256``) and the sigmoid's derivative; leaving
  it out reports the logit-space density, a number in different units that can even be negative.
  """
  y, log_det = logit_transform(pixels, alpha=alpha)
  return flow_nll(model, params, y) - log_det


def bits_per_dim(model: RealNVP, params, pixels: jax.Array, *, alpha: float = ALPHA
                 ) -> jax.Array:
  r"""Bits per dimension of dequantized pixels ``u`` in ``[0, 256)^D``, ``(B,)``:

  .. math::

     \text{bpd} = \frac{-\log p_U(u)}{D \log 2}
       = \frac{\text{NLL}_{\text{logit}}(y) - \sum_d \big[\log(1 - 2\alpha) - \log p_d
         - \log(1 - p_d)\big] + D \log 256}{D \log 2},

  with ``NLL_logit(y) = -log p_Y(y)`` the flow's NLL of ``y = logit(p)``, ``p = alpha + (1 - 2
  alpha) u / 256``, the sum the log-determinant of ``y(x)`` for ``x = u / 256`` in ``[0, 1)``,
  and ``D log 256`` the log-determinant of ``x = u / 256``. A density uniform on ``[0, 256)^D``
  scores exactly 8; averaged over the dequantization noise, bpd upper-bounds the discrete model's
  ``-log2 P(v) / D``. This is the number of the paper's Table 1 and of FFJORD's Table 2 (1.06 on
  MNIST).
  """
  num_dims = math.prod(pixels.shape[1:])
  return pixel_nll(model, params, pixels, alpha=alpha) / (num_dims * math.log(2.0))


# ------------------------------------------------------------------------------ sampling


@functools.partial(jax.jit, static_argnames=('model', 'num_samples', 'shape'))
def sample_flow(model: RealNVP, params, key: jax.Array, *, num_samples: int,
                shape: tuple[int, int, int]) -> jax.Array:
  """``y = f^{-1}(z)``, ``z ~ N(0, I)``: ``(N, *shape)`` samples of the flow's own space (logit
  space for images, the data space for continuous data)."""
  z = jax.random.normal(key, (num_samples, *shape), jnp.float32)
  y, _ = model.apply({'params': params}, z, inverse=True)
  return y


def sample(model: RealNVP, params, key: jax.Array, *, num_samples: int,
           image_shape: tuple[int, int, int], alpha: float = ALPHA) -> jax.Array:
  """Pixel samples: :func:`sample_flow`, then :func:`inverse_logit_transform`, then quantized,
  ``v = floor(u)`` clipped to ``{0, .., 255}`` (the discrete image whose dequantization cell
  ``[v, v + 1)`` holds ``u``). Returns ``(N, H, W, C)`` float32 levels."""
  y = sample_flow(model, params, key, num_samples=num_samples, shape=tuple(image_shape))
  u = inverse_logit_transform(y, alpha=alpha)
  return jnp.clip(jnp.floor(u), 0, NUM_LEVELS - 1)


# ------------------------------------------------------------------------------ training


def init_params(key: jax.Array, model: RealNVP, *, shape: tuple[int, int, int]):
  """The flow's parameters for inputs of shape ``shape = (H, W, C)`` (each coupling's output
  convolution zero: the flow starts as the identity)."""
  return model.init(key, jnp.zeros((1, *shape), jnp.float32))['params']


def objective(model: RealNVP, *, alpha: float = ALPHA, continuous: bool = False
              ) -> game.Objective:
  """The flow as the one player of :func:`jaxgan.game.make_train_step`: minimize the NLL.

  ``objective(params, state, batch, *, key, shared_key) -> (loss, ({}, metrics))``.
  ``continuous=False`` (images): ``batch['x']`` holds integer levels ``(B, H, W, C)``; they are
  dequantized with ``key`` (:func:`dequantize`; the step folds its step number into the key, so
  every step draws new noise) and ``loss`` is the mean :func:`pixel_nll` (nats per image in
  pixel space). ``continuous=True``: ``batch['x']`` is real-valued data, modelled directly by
  :func:`flow_nll` (``key`` unused). The paper's L2 penalty (5e-5) belongs in the optimizer
  (e.g. ``optax.add_decayed_weights``). Metrics: ``nll`` (nats per example), ``bits_per_dim``
  (``nll / (D ln 2)``; for images, :func:`bits_per_dim`); the step adds ``g_loss`` and
  ``g_grad_norm``.
  """

  def loss_fn(params, state, batch, *, key, shared_key):
    del state, shared_key
    x = batch['x']
    if continuous:
      loss = jnp.mean(flow_nll(model, params, x))
    else:
      loss = jnp.mean(pixel_nll(model, params, dequantize(x, key), alpha=alpha))
    num_dims = math.prod(x.shape[1:])
    return loss, ({}, {'nll': loss, 'bits_per_dim': loss / (num_dims * math.log(2.0))})

  return loss_fn
