"""Class-conditional models: conditional GAN and AC-GAN.

* Conditional GAN (Mirza & Osindero 2014, arXiv:1411.1784; seeds 000/004): the label ``y`` is
  appended, one-hot, to G's latent ``z`` and to D's input. D then judges whether ``x`` comes from
  ``p_data(x | y)``. :class:`ConditionalGenerator` and :class:`ConditionalDiscriminator` wrap any
  unconditional jaxgan model; images get the label as ``K`` constant feature maps (channels),
  flat inputs as ``K`` extra features.
* AC-GAN (Odena et al. 2016, arXiv:1610.09585): G is conditioned as above, but D is not told the
  label; it predicts it. :class:`ACGANDiscriminator` returns ``(logits, class_logits)`` and
  :func:`discriminator_class_loss` / :func:`generator_class_loss` add the cross-entropy of the
  class head to both players' objectives (:func:`jaxgan.gan.make_train_step`,
  ``auxiliary_classifier_weight > 0``).

Every model here is called as ``model(x_or_z, labels=None, train=False)`` with integer ``labels``
of shape ``(B,)``. ``labels=None`` feeds an all-zero code ("no class"); it exists so that the
unconditional ``init_state`` can initialize these models, and is not meant for sampling.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from jaxgan import models

LABEL_INPUTS = ('maps', 'flat')


def one_hot_code(labels: jax.Array | None, batch: int, num_classes: int) -> jax.Array:
  """``(B, K)`` one-hot rows of ``labels``; zeros when ``labels`` is None."""
  if labels is None:
    return jnp.zeros((batch, num_classes), jnp.float32)
  if labels.shape != (batch,):
    raise ValueError(f'labels must have shape ({batch},), got {labels.shape}')
  return jax.nn.one_hot(labels, num_classes, dtype=jnp.float32)


class ConditionalGenerator(nn.Module):
  """``G(z, y) = generator(concat(z, one_hot(y)))`` (Mirza & Osindero 2014).

  Attributes:
    generator: any unconditional jaxgan generator; its latent grows by ``num_classes``.
    num_classes: number of classes ``K``.
  """

  generator: nn.Module
  num_classes: int

  def __call__(self, z, labels=None, train: bool = False):
    code = one_hot_code(labels, z.shape[0], self.num_classes)
    return self.generator(jnp.concatenate([z, code], axis=-1), train=train)


class ConditionalDiscriminator(nn.Module):
  """``D(x, y) = discriminator(x with one_hot(y) appended)`` (Mirza & Osindero 2014).

  Attributes:
    discriminator: any unconditional jaxgan discriminator.
    num_classes: number of classes ``K``.
    label_input: ``'maps'`` appends ``K`` constant ``H x W`` channels to ``(B, H, W, C)`` images
      (for convolutional D); ``'flat'`` flattens ``x`` and appends ``K`` features (for MLP D).
  """

  discriminator: nn.Module
  num_classes: int
  label_input: str = 'maps'

  def __call__(self, x, labels=None, train: bool = False):
    code = one_hot_code(labels, x.shape[0], self.num_classes)
    if self.label_input == 'maps':
      if x.ndim != 4:
        raise ValueError(f"label_input='maps' needs (B, H, W, C) images, got shape {x.shape}")
      maps = jnp.broadcast_to(code[:, None, None, :], (*x.shape[:3], self.num_classes))
      return self.discriminator(jnp.concatenate([x, maps], axis=-1), train=train)
    if self.label_input == 'flat':
      flat = x.reshape((x.shape[0], -1))
      return self.discriminator(jnp.concatenate([flat, code], axis=-1), train=train)
    raise ValueError(f'unknown label_input {self.label_input!r}; expected one of '
                     f'{list(LABEL_INPUTS)}')


def _dcgan_trunk(x, *, features: int, depth: int, train: bool, axis_name: str | None,
                 code: jax.Array | None = None) -> jax.Array:
  """:class:`jaxgan.models.DCGANDiscriminator`'s layers up to the flattened features ``(B, F)``.

  ``Conv 4x4/2 -> LReLU -> [Conv 4x4/2 -> BN -> LReLU] x (depth - 1) -> flatten``. With ``code``
  (``(B, K)`` one-hot labels), ``K`` constant label maps are appended to the input of every
  convolution. Called inside a compact ``__call__``: the layers belong to the caller.
  """
  def with_maps(h):
    if code is None:
      return h
    maps = jnp.broadcast_to(code[:, None, None, :], (*h.shape[:3], code.shape[-1]))
    return jnp.concatenate([h, maps], axis=-1)

  h = nn.Conv(features, (4, 4), strides=(2, 2), padding='SAME')(with_maps(x))
  h = nn.leaky_relu(h, 0.2)
  for stage in range(1, depth):
    h = nn.Conv(features * 2**stage, (4, 4), strides=(2, 2), padding='SAME',
                use_bias=False)(with_maps(h))
    h = nn.BatchNorm(use_running_average=not train, momentum=0.9,
                     axis_name=axis_name if train else None)(h)
    h = nn.leaky_relu(h, 0.2)
  return h.reshape((h.shape[0], -1))


class ConditionalDCGANDiscriminator(nn.Module):
  """A DCGAN discriminator that uses the label inside the network, not only at its input.

  ``label_conditioning``:

  * ``'every_layer'``: the ``K`` one-hot label maps are appended to the input of *every*
    convolution (the usual conditional DCGAN; Mirza & Osindero's "append y" at each layer).
  * ``'projection'``: label maps at the input, and ``<embed(y), phi(x)>`` added to the logit,
    ``phi`` the flattened features (projection discriminator, Miyato & Koyama 2018,
    arXiv:1802.05637): a direct class-feature interaction at the top of D.

  Attributes:
    image_shape: ``(H, W, C)`` of the input images.
    num_classes: ``K``.
    features: channels of the first convolution.
    label_conditioning: ``'every_layer'`` or ``'projection'``.
    axis_name: device axis for synchronized batch norm.
  """

  image_shape: Sequence[int] = (28, 28, 1)
  num_classes: int = 10
  features: int = 64
  label_conditioning: str = 'every_layer'
  axis_name: str | None = None

  @nn.compact
  def __call__(self, x, labels=None, train: bool = False):
    if self.label_conditioning not in ('every_layer', 'projection'):
      raise ValueError(f'unknown label_conditioning {self.label_conditioning!r}; expected '
                       f"'every_layer' or 'projection'")
    code = one_hot_code(labels, x.shape[0], self.num_classes)
    depth = models.dcgan_depth(self.image_shape)
    if self.label_conditioning == 'every_layer':
      h = _dcgan_trunk(x, features=self.features, depth=depth, train=train,
                       axis_name=self.axis_name, code=code)
      self.sow('intermediates', 'features', h)
      return nn.Dense(1)(h)[:, 0]
    maps = jnp.broadcast_to(code[:, None, None, :], (*x.shape[:3], self.num_classes))
    h = _dcgan_trunk(jnp.concatenate([x, maps], axis=-1), features=self.features, depth=depth,
                     train=train, axis_name=self.axis_name)
    self.sow('intermediates', 'features', h)
    embedding = nn.Dense(h.shape[-1], use_bias=False, name='label_embedding')(code)
    return nn.Dense(1)(h)[:, 0] + jnp.sum(embedding * h, axis=-1)


class ACGANDiscriminator(nn.Module):
  """AC-GAN discriminator (arXiv:1610.09585): a DCGAN trunk with a source head and a class head.

  The trunk is :class:`jaxgan.models.DCGANDiscriminator`'s (``Conv 4x4/2 -> LReLU -> [Conv 4x4/2
  -> BN -> LReLU] x (n-1) -> flatten``); then ``Dense(1)`` gives the real/fake logit and
  ``Dense(K)`` the class logits.

  Attributes:
    image_shape: ``(H, W, C)`` of the input images.
    num_classes: ``K``.
    features: channels of the first convolution.
    axis_name: device axis for synchronized batch norm.
  """

  image_shape: Sequence[int] = (28, 28, 1)
  num_classes: int = 10
  features: int = 64
  axis_name: str | None = None

  @nn.compact
  def __call__(self, x, labels=None, train: bool = False):
    """Returns ``(logits (B,), class_logits (B, K))``; ``labels`` is unused (D predicts it)."""
    del labels
    h = _dcgan_trunk(x, features=self.features, depth=models.dcgan_depth(self.image_shape),
                     train=train, axis_name=self.axis_name)
    self.sow('intermediates', 'features', h)
    return nn.Dense(1)(h)[:, 0], nn.Dense(self.num_classes)(h)


def split_logits(outputs) -> tuple[jax.Array, jax.Array | None]:
  """A discriminator's output as ``(logits, class_logits)``; no class head gives None."""
  if isinstance(outputs, tuple):
    return outputs
  return outputs, None


def class_cross_entropy(class_logits: jax.Array, labels: jax.Array) -> jax.Array:
  """Mean softmax cross-entropy of ``(B, K)`` class logits against ``(B,)`` integer labels."""
  return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(class_logits, labels))


def discriminator_class_loss(real_class, fake_class, real_labels, fake_labels, *,
                             fake_weight: float = 1.0) -> tuple[jax.Array, dict]:
  """AC-GAN's class term of D's loss, before its weight: ``CE(real) + w_fake CE(fake)``.

  ``L_C = E[log P(C = c | x_real)] + E[log P(C = c | x_fake)]`` of arXiv:1610.09585 (Eq. 3), as
  a cross-entropy to minimize, with ``fake_weight = 1``. ``fake_weight = 0`` trains D's class
  head on real images only, so that it stays a classifier of real digits and G cannot satisfy
  it with fakes that only D's head recognizes (the README's AC-GAN study measures both).
  Returns ``(loss, {'d_class_loss', 'd_class_accuracy'})``, the accuracy of D's class head on the
  real labels.
  """
  loss = class_cross_entropy(real_class, real_labels) + fake_weight * class_cross_entropy(
      fake_class, fake_labels)
  accuracy = jnp.mean(jnp.argmax(real_class, -1) == real_labels)
  return loss, {'d_class_loss': loss, 'd_class_accuracy': accuracy}


def generator_class_loss(fake_class, fake_labels) -> tuple[jax.Array, dict]:
  """AC-GAN's class term of G's loss, before its weight: ``CE(fake)``; ``(loss, metrics)``."""
  loss = class_cross_entropy(fake_class, fake_labels)
  return loss, {'g_class_loss': loss}
