"""DCGAN (arXiv:1511.06434) on CIFAR-10 32x32x3: 4x4x256 -> 8x8x128 -> 16x16x64 -> 32x32x3.

Batch norm and ReLU in G, LeakyReLU(0.2) in D, tanh output, Adam 2e-4 / b1 0.5, batch 64,
z ~ N(0, I) of 100 dimensions, moving average of G's weights for samples. CIFAR-10 is not
prepared on this machine; with internet, set ``--config.data.download=True`` (TFDS fetches it),
or point ``data_dir`` to a prepared copy. Evaluation (every 5,000 steps) reports the pixel-space
sliced Wasserstein distance; jaxgan ships no CIFAR-10 classifier (plug in Inception for FID via
``jaxgan.eval.evaluator.make_evaluator(..., extractor=...)``).

    python -m jaxgan.main --config=configs/dcgan_cifar10.py --workdir=runs/dcgan_cifar10 \
        --config.data.download=True

A GPU run; blurry object-like colour blobs after ~5,000 steps, sharper by 30,000.
"""

from jaxgan.config import default_config


def get_config():
  config = default_config()
  config.data.name = 'cifar10'
  config.model.name = 'dcgan'
  config.model.latent_dim = 100
  config.model.latent_distribution = 'normal'
  config.model.features = 64
  config.train.num_steps = 30_000
  config.train.batch_size = 64
  config.train.ema_decay = 0.999
  config.train.sample_every = 1000
  config.train.checkpoint_every = 5000
  config.train.eval_every = 5000
  return config
