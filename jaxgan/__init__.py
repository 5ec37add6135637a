"""jaxgan: Generative Adversarial Networks in JAX/Flax.

Modules, one concept each: :mod:`jaxgan.losses` (pure GAN losses on logits),
:mod:`jaxgan.penalties` (gradient penalties on a discriminator function), :mod:`jaxgan.models`
(flax.linen generators and discriminators), :mod:`jaxgan.train` (state, the pure train step,
data parallelism, ``train_and_evaluate``), :mod:`jaxgan.data` (toy and TFDS data),
:mod:`jaxgan.config` (default config and validation), :mod:`jaxgan.checkpoint` (orbax) and
:mod:`jaxgan.visualize` (PNG pictures). Image GANs: :mod:`jaxgan.conditional` (cGAN, AC-GAN),
:mod:`jaxgan.latent` (interpolation, latent arithmetic), :mod:`jaxgan.metrics` (FID, scores,
sample distances, mode coverage), :mod:`jaxgan.eval` (the evaluation classifier) and
``python -m jaxgan.sample``. Against mode collapse: :mod:`jaxgan.mode_collapse` (feature matching,
minibatch discrimination and stddev, unrolling, packing, instance noise).
"""

from jaxgan import (
    checkpoint,
    conditional,
    config,
    data,
    latent,
    losses,
    metrics,
    mode_collapse,
    models,
    penalties,
    train,
    visualize,
)
from jaxgan.train import GANState, make_train_step, parallelize, train_and_evaluate

__version__ = '0.1.0'

__all__ = [
    'GANState', 'checkpoint', 'config', 'data', 'losses', 'make_train_step', 'models',
    'parallelize', 'penalties', 'train', 'train_and_evaluate', 'visualize',
    'conditional', 'latent', 'metrics', 'mode_collapse',
]
