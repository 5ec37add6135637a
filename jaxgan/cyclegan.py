r"""CycleGAN (Zhu et al. 2017, arXiv:1703.10593): unpaired translation between domains A and B.

Two generators, ``G: A -> B`` and ``F: B -> A``, and two discriminators, ``D_B`` (real B vs
``G(a)``) and ``D_A`` (real A vs ``F(b)``). With no pairs to compare against, the cycle-consistency
loss ties the two maps together (paper eqs. 2-3),

.. math::

   \mathcal{L} = \mathcal{L}_{GAN}(G, D_B) + \mathcal{L}_{GAN}(F, D_A) + \lambda\,
   \big(\mathbb{E}_a \lVert F(G(a)) - a \rVert_1 + \mathbb{E}_b \lVert G(F(b)) - b \rVert_1\big),

with :math:`\lambda = 10` and the least-squares GAN loss (section 4). The discriminators are
pix2pix's PatchGAN (:class:`jaxgan.pix2pix.PatchDiscriminator`, here on one image, not a pair) and
are updated on a *history* of generated images (:func:`pool_query`), not only the latest.

This module holds the generator and the history pool, scaled to 28x28; images are NHWC floats in
[-1, 1]. Everything is stateless: instance norm keeps only params, and the pool is a pytree of
arrays meant to live in the train state, so a resumed run continues exactly.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from jaxgan.layers import AdjointConvTranspose

# PyTorch's InstanceNorm2d epsilon (the reference implementation's).
NORM_EPSILON = 1e-5


def _reflect_pad(x, width: int):
  """Reflection padding of H and W (``d c b | a b c d | c b a``), PyTorch's ReflectionPad2d."""
  return jnp.pad(x, ((0, 0), (width, width), (width, width), (0, 0)), mode='reflect')


class ResnetBlock(nn.Module):
  """``x + IN(Conv3x3(pad(ReLU(IN(Conv3x3(pad(x)))))))``, reflection padding (paper appendix 7.2).

  Attributes:
    features: channels of ``x`` and of both convolutions.
  """

  features: int

  @nn.compact
  def __call__(self, x):
    h = nn.Conv(self.features, (3, 3), padding='VALID', use_bias=False)(_reflect_pad(x, 1))
    h = nn.relu(nn.InstanceNorm(epsilon=NORM_EPSILON)(h))
    h = nn.Conv(self.features, (3, 3), padding='VALID', use_bias=False)(_reflect_pad(h, 1))
    return x + nn.InstanceNorm(epsilon=NORM_EPSILON)(h)


class ResnetGenerator(nn.Module):
  """CycleGAN's ResNet generator (paper appendix 7.2; Johnson et al. 2016, arXiv:1603.08155).

  The paper's ``c7s1-64, d128, d256, R256 x 6, u128, u64, c7s1-3`` (its 128x128 version), for
  28x28 with ``F = features`` (shapes at 28x28)::

    c7s1-F   reflect pad 3, Conv 7x7/1 (F),  IN, ReLU      28x28xF
    d2F      Conv 3x3/2 (2F), pad 1, IN, ReLU              14x14x2F
    d4F      Conv 3x3/2 (4F), pad 1, IN, ReLU              7x7x4F
    R4F x num_blocks  (:class:`ResnetBlock`)               7x7x4F
    u2F      ConvT 3x3/2 (2F), IN, ReLU                    14x14x2F
    uF       ConvT 3x3/2 (F),  IN, ReLU                    28x28xF
    c7s1-C   reflect pad 3, Conv 7x7/1 (C_out), tanh       28x28xC_out

  Instance norm throughout, as in the paper; convolutions followed by it have no bias (its shift
  replaces it). Padding is the reference code's (junyanz/pytorch-CycleGAN-and-pix2pix
  ``ResnetGenerator``): zeros for the stride-2 convolutions (``padding=1``), and for the
  transposed ones the geometry of ``ConvTranspose2d(k=3, s=2, padding=1, output_padding=1)``,
  i.e. ``(1, 2)`` zeros around the stride-dilated input. Any input size divisible by 4 works.

  Attributes:
    out_channels: channels ``C_out`` of the output image, values in [-1, 1] (tanh).
    features: channels ``F`` of the first layer (the paper's 64).
    num_blocks: residual blocks at the bottleneck (6 as the paper's 128x128 generator).
  """

  out_channels: int = 1
  features: int = 64
  num_blocks: int = 6

  @nn.compact
  def __call__(self, x, *, train: bool):
    """``(B, H, W, C_in)`` in [-1, 1] -> ``(B, H, W, out_channels)`` in [-1, 1]. ``train`` is
    unused (no dropout, no statistics); it keeps the models' signature."""
    del train
    if x.shape[1] % 4 or x.shape[2] % 4:
      raise ValueError(f'ResnetGenerator needs H and W divisible by 4, got input {x.shape}')
    f = self.features
    norm_relu = lambda h: nn.relu(nn.InstanceNorm(epsilon=NORM_EPSILON)(h))
    h = nn.Conv(f, (7, 7), padding='VALID', use_bias=False)(_reflect_pad(x, 3))
    h = norm_relu(h)
    for channels in (2 * f, 4 * f):
      h = norm_relu(nn.Conv(channels, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)),
                            use_bias=False)(h))
    for _ in range(self.num_blocks):
      h = ResnetBlock(4 * f)(h)
    for channels in (2 * f, f):
      h = norm_relu(AdjointConvTranspose(channels, (3, 3), strides=(2, 2),
                                         padding=((1, 2), (1, 2)), use_bias=False)(h))
    h = nn.Conv(self.out_channels, (7, 7), padding='VALID')(_reflect_pad(h, 3))
    return jnp.tanh(h)


def pool_init(pool_size: int, image_shape, dtype=jnp.float32) -> dict[str, jax.Array]:
  """An empty history pool: ``{'images': zeros((pool_size, *image_shape)), 'count': int32 0}``.

  ``count`` is how many slots are filled (at most ``pool_size``). The paper's pool holds 50
  images; ``pool_size=0`` is no pool (:func:`pool_query` returns its input).
  """
  if pool_size < 0:
    raise ValueError(f'pool_size must be >= 0, got {pool_size}')
  return {'images': jnp.zeros((pool_size, *image_shape), dtype),
          'count': jnp.zeros((), jnp.int32)}


def pool_query(pool: dict[str, jax.Array], images: jax.Array, key: jax.Array
               ) -> tuple[dict[str, jax.Array], jax.Array]:
  """Passes a batch of generated images through the history pool; returns ``(new_pool, out)``.

  Shrivastava et al. 2017 (arXiv:1612.07828, section 2.3), as CycleGAN's code runs it
  (``util/image_pool.py``, ``ImagePool.query``), image by image in batch order (a ``lax.scan``,
  so later images of a batch can draw earlier ones):

  * while the pool holds fewer than ``pool_size`` images, store the image and return it;
  * once full, with probability 1/2 return a uniformly chosen stored image and store the new one
    in its slot, else return the new image (the pool unchanged).

  Randomness, so that a test can replay it: image ``n`` uses ``k_n = split(key, B)[n]``,
  ``k_coin, k_index = split(k_n)``; it swaps when ``uniform(k_coin) > 0.5`` (the reference's
  ``p > 0.5``), with slot ``randint(k_index, (), 0, pool_size)``. Both are drawn in the filling
  phase too, and unused there. Outputs and stored images carry no gradient (the reference stores
  ``image.data``): the pool feeds only D's update. Jittable; ``pool_size`` is static, the
  leading size of ``pool['images']``.

  Args:
    pool: from :func:`pool_init` or a previous call.
    images: ``(B, *image_shape)``.
    key: a PRNG key.

  Returns:
    ``(new_pool, out)`` with ``out`` of the shape and dtype of ``pool['images'][0]``, ``B`` rows.
  """
  pool_size = pool['images'].shape[0]
  if pool_size == 0:
    return pool, images
  images = lax.stop_gradient(images).astype(pool['images'].dtype)

  def step(state, inputs):
    stored, count = state
    image, image_key = inputs
    k_coin, k_index = jax.random.split(image_key)
    filling = count < pool_size
    swap = jnp.logical_and(~filling, jax.random.uniform(k_coin) > 0.5)
    slot = jnp.where(filling, count, jax.random.randint(k_index, (), 0, pool_size))
    old = stored[slot]
    out = jnp.where(swap, old, image)
    stored = stored.at[slot].set(jnp.where(filling | swap, image, old))
    return (stored, jnp.where(filling, count + 1, count)), out

  keys = jax.random.split(key, images.shape[0])
  (stored, count), out = lax.scan(step, (pool['images'], pool['count']), (images, keys))
  return {'images': stored, 'count': count}, out
