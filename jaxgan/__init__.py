"""jaxgan: Generative Adversarial Networks in JAX/Flax.

Modules, one concept each: :mod:`jaxgan.game` (a two-player game's state and its one train
step), :mod:`jaxgan.gan` (the GAN's objectives, assembled from parts), :mod:`jaxgan.losses` (pure
GAN losses on logits), :mod:`jaxgan.penalties` (gradient penalties on a discriminator function),
:mod:`jaxgan.models` (flax.linen generators and discriminators), :mod:`jaxgan.parallel` (pmap and
shard_map at the call site), :mod:`jaxgan.experiment` (builders from a config),
:mod:`jaxgan.train` (``train_and_evaluate``), :mod:`jaxgan.loop` (its jitted chunks of steps),
:mod:`jaxgan.data` (toy and TFDS data), :mod:`jaxgan.distributed` (several processes, preemption),
:mod:`jaxgan.config` (default config and validation), :mod:`jaxgan.checkpoint` (orbax) and
:mod:`jaxgan.visualize` (PNG pictures). Image GANs: :mod:`jaxgan.conditional` (cGAN, AC-GAN),
:mod:`jaxgan.latent` (interpolation, latent arithmetic), :mod:`jaxgan.metrics` (FID, scores,
sample distances, mode coverage), :mod:`jaxgan.eval` (the evaluation classifier) and
``python -m jaxgan.sample``. Against mode collapse: :mod:`jaxgan.mode_collapse`. Dynamics of the
game: :mod:`jaxgan.dynamics`. Semi-supervised: :mod:`jaxgan.semi_supervised`. Image-to-image
translation: :mod:`jaxgan.translation` (tasks, data), :mod:`jaxgan.pix2pix`, :mod:`jaxgan.cyclegan`.
Super-resolution: :mod:`jaxgan.super_resolution` (SRResNet, SRGAN), :mod:`jaxgan.vgg` (VGG19
features). Reading PyTorch weight files (VGG19's, Inception's): :mod:`jaxgan.torch_weights`.
Style-based and progressive generators: :mod:`jaxgan.stylegan2`, :mod:`jaxgan.pggan` (models
and their parts), trained by :mod:`jaxgan.style_train`. The other
generative families, as baselines: :mod:`jaxgan.vae`, :mod:`jaxgan.pixelcnn`, :mod:`jaxgan.realnvp`,
:mod:`jaxgan.rbm`, trained by :mod:`jaxgan.density_train`.

Submodules load on first use (``jaxgan.dynamics`` works without importing it first), so that
``import jaxgan`` does not pay for orbax, TensorFlow or matplotlib.
"""

import importlib

__version__ = '0.1.0'

_MODULES = (
    'checkpoint', 'conditional', 'config', 'cyclegan', 'data', 'density_train', 'distributed',
    'dynamics', 'eval', 'experiment', 'faults', 'game', 'gan', 'latent', 'layers', 'loop',
    'losses', 'main', 'metrics',
    'mode_collapse', 'models', 'parallel', 'penalties', 'pggan', 'pix2pix', 'pixelcnn', 'rbm',
    'realnvp', 'rng', 'sample', 'semi_supervised', 'semi_supervised_train', 'style_train',
    'stylegan2', 'super_resolution', 'torch_weights', 'train', 'translation', 'vae', 'vgg',
    'visualize',
)
# Names re-exported at the top level, and the module each comes from.
_NAMES = {'GANState': 'game', 'make_train_step': 'game', 'parallelize': 'parallel',
          'train_and_evaluate': 'train'}

__all__ = [*_MODULES, *_NAMES]


def __getattr__(name: str):
  if name in _MODULES:
    return importlib.import_module(f'jaxgan.{name}')
  if name in _NAMES:
    return getattr(importlib.import_module(f'jaxgan.{_NAMES[name]}'), name)
  raise AttributeError(f'module {__name__!r} has no attribute {name!r}')


def __dir__():
  return sorted([*globals(), *__all__])
