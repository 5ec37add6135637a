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

from jaxgan import data as data_lib
from jaxgan import game, losses, train, translation
from jaxgan.layers import AdjointConvTranspose
from jaxgan.pix2pix import PatchDiscriminator

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


# The game: G = (G_AB, G_BA) and D = (D_A, D_B) as two players of jaxgan.game, G updated first.


def _apply(model: nn.Module, params, x):
  return model.apply({'params': params}, x, train=True)


def generator_objective(generator: nn.Module, discriminator: nn.Module, *,
                        cycle_weight: float = 10.0, identity_weight: float = 0.5,
                        gan_weight: float = 1.0) -> game.Objective:
  r"""Both generators' objective (``g_params = {'a_to_b': G, 'b_to_a': F}``), paper eq. 3 + the
  identity loss of its section 5.2, as the reference code's ``backward_G``:

  .. math::
     \text{gan\_weight}\,[(D_B(G(a)) - 1)^2 + (D_A(F(b)) - 1)^2]
     + \lambda\,(|F(G(a)) - a| + |G(F(b)) - b|)
     + \lambda\,\lambda_{idt}\,(|G(b) - b| + |F(a) - a|)

  with ``lambda = cycle_weight``, ``lambda_idt = identity_weight`` and every term a mean over its
  elements (the least-squares G loss with the paper's unhalved squares, ``nn.MSELoss``). The
  ablations of the paper's Table 4: ``cycle_weight=0`` is "GAN alone" (and no identity term),
  ``gan_weight=0`` "cycle alone", ``identity_weight=0`` "GAN + cycle". ``batch`` is ``{'a',
  'b'}``. Metrics: ``g_gan``, ``cycle``, ``identity``.
  """

  def objective(g_params, state: game.GANState, batch, *, key, shared_key):
    a, b = batch['a'], batch['b']
    g = lambda name, x: _apply(generator, g_params[name], x)
    fake_b, fake_a = g('a_to_b', a), g('b_to_a', b)
    cycle = (losses.cycle_consistency_loss(a, g('b_to_a', fake_b))
             + losses.cycle_consistency_loss(b, g('a_to_b', fake_a)))
    adversarial = jnp.zeros(())
    if gan_weight:
      d = lambda name, x: _apply(discriminator, state.d_params[name], x)
      adversarial = 2 * (losses.least_squares_generator_loss(d('b', fake_b))
                         + losses.least_squares_generator_loss(d('a', fake_a)))
    identity = jnp.zeros(())
    if identity_weight and cycle_weight:
      identity = (jnp.mean(jnp.abs(g('a_to_b', b) - b)) + jnp.mean(jnp.abs(g('b_to_a', a) - a)))
    loss = (gan_weight * adversarial + cycle_weight * cycle
            + cycle_weight * identity_weight * identity)
    return loss, ({}, {'g_gan': adversarial, 'cycle': cycle, 'identity': identity})

  return objective


def discriminator_objective(generator: nn.Module, discriminator: nn.Module) -> game.Objective:
  """Both discriminators' objective (``d_params = {'a': D_A, 'b': D_B}``; ``D_B`` judges domain
  B): the least-squares D loss (:func:`jaxgan.losses.least_squares_discriminator_loss`, already
  halved as the reference's ``0.5 * (real + fake)``) on real images and on the history pools'
  answers (:func:`pool_query`) for the current fakes ``G(a)`` and ``F(b)``. The pools are D's
  model state, ``state.d_batch_stats = {'a': pool of F(b), 'b': pool of G(a)}``, updated here
  with randomness from ``key``. Metrics: ``d_real``, ``d_fake`` (mean raw outputs over both)."""

  def objective(d_params, state: game.GANState, batch, *, key, shared_key):
    a, b = batch['a'], batch['b']
    fakes = {'b': _apply(generator, state.g_params['a_to_b'], a),
             'a': _apply(generator, state.g_params['b_to_a'], b)}
    pools, loss, real_mean, fake_mean = {}, 0.0, 0.0, 0.0
    for i, name in enumerate(('a', 'b')):
      pools[name], fake = pool_query(state.d_batch_stats[name], fakes[name],
                                     jax.random.fold_in(key, i))
      real_out = _apply(discriminator, d_params[name], batch[name])
      fake_out = _apply(discriminator, d_params[name], lax.stop_gradient(fake))
      loss += losses.least_squares_discriminator_loss(real_out, fake_out)
      real_mean += jnp.mean(real_out) / 2
      fake_mean += jnp.mean(fake_out) / 2
    return loss, (pools, {'d_real': real_mean, 'd_fake': fake_mean})

  return objective


def build_models(config) -> tuple[ResnetGenerator, nn.Module]:
  """One generator architecture for both maps, one PatchGAN for both discriminators
  (``config.model``: ``features``, ``num_blocks``, ``d_features``, ``d_layers``)."""
  channels = data_lib.data_shape(config.data.name)[-1]
  m = config.model
  return (ResnetGenerator(out_channels=channels, features=m.features, num_blocks=m.num_blocks),
          PatchDiscriminator(features=m.d_features, num_layers=m.d_layers))


def init_state(config, key: jax.Array, generator: nn.Module, discriminator: nn.Module
               ) -> game.GANState:
  """G, F, D_A, D_B at step 0 from four keys, one Adam per player, and empty pools of
  ``config.model.pool_size`` images (the paper's 50)."""
  shape = data_lib.data_shape(config.data.name)
  x = jnp.zeros((1, *shape))
  keys = dict(zip(('a_to_b', 'b_to_a', 'a', 'b'), jax.random.split(key, 4), strict=True))
  g_params = {k: generator.init(keys[k], x, train=False)['params'] for k in ('a_to_b', 'b_to_a')}
  d_params = {k: discriminator.init(keys[k], x, train=False)['params'] for k in ('a', 'b')}
  g_opt, d_opt = translation.adam_pair(config)
  pools = {k: pool_init(config.model.pool_size, shape) for k in ('a', 'b')}
  return game.GANState(step=jnp.zeros((), jnp.int32), g_params=g_params, d_params=d_params,
                       g_opt_state=g_opt.init(g_params), d_opt_state=d_opt.init(d_params),
                       g_batch_stats={}, d_batch_stats=pools)


def build_train_step(config, generator: nn.Module, discriminator: nn.Module, *,
                     axis_name: str | None = None, skip_nonfinite: bool | None = None):
  """G first, then D against the updated G (``update_rule='g_first'``, the reference code's
  ``optimize_parameters``), with ``config.loss``'s ``cycle_weight``, ``identity_weight`` and
  ``gan_weight``."""
  if skip_nonfinite is None:
    skip_nonfinite = config.train.on_nonfinite == 'skip'
  g_opt, d_opt = translation.adam_pair(config)
  loss = config.loss
  return game.make_train_step(
      g_objective=generator_objective(generator, discriminator, cycle_weight=loss.cycle_weight,
                                      identity_weight=loss.identity_weight,
                                      gan_weight=loss.gan_weight),
      d_objective=discriminator_objective(generator, discriminator),
      g_optimizer=g_opt, d_optimizer=d_opt, update_rule='g_first', axis_name=axis_name,
      skip_nonfinite=skip_nonfinite)


def train_and_evaluate(config, workdir: str, *, should_stop=None) -> game.GANState:
  """Trains the CycleGAN of ``config`` (``configs/cyclegan_*.py``) on unpaired domains
  (:func:`jaxgan.translation.unpaired`) with the one driver (:func:`jaxgan.train.drive`).
  ``samples/step_<N>.png``: rows of test ``a`` | ``G(a)`` | truth ``T(a)`` | ``F(G(a))``."""
  translation.validate(config)
  axis_name = None if config.train.parallel == 'none' else train.AXIS_NAME
  generator, discriminator = build_models(config)
  init_key, step_key, data_key = jax.random.split(jax.random.PRNGKey(config.seed), 3)
  g = jax.jit(lambda params, x: _apply(generator, params, x))

  def strips(state, a, truth):
    fake = g(state.g_params['a_to_b'], a)
    return [a, fake, truth, g(state.g_params['b_to_a'], fake)]

  return translation.drive(
      config, workdir, state=init_state(config, init_key, generator, discriminator),
      train_step=build_train_step(config, generator, discriminator, axis_name=axis_name),
      strips=strips, data_key=data_key, step_key=step_key, paired=False, axis_name=axis_name,
      should_stop=should_stop)
