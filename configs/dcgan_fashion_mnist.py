"""DCGAN (arXiv:1511.06434) on Fashion-MNIST 28x28: the MNIST DCGAN on clothes instead of digits.

Same networks and optimizer as ``configs/dcgan_mnist.py`` (7x7x128 -> 14x14x64 -> 28x28x1, Adam
2e-4 / b1 0.5, batch 64, z ~ N(0, I) of 100 dimensions), with the moving average of G's weights
for samples and a classifier-FID evaluation (jaxgan's Fashion-MNIST classifier) every 2,000 steps.

    python -m jaxgan.main --config=configs/dcgan_fashion_mnist.py \
        --workdir=runs/dcgan_fashion_mnist --config.data.data_dir=../shared/data/tensorflow_datasets

Writes an 8x8 sample grid every 1,000 steps; shirts, trousers, shoes and bags are recognizable
after a few thousand steps.
"""

from jaxgan.config import default_config


def get_config():
  config = default_config()
  config.data.name = 'fashion_mnist'
  config.model.name = 'dcgan'
  config.model.latent_dim = 100
  config.model.latent_distribution = 'normal'
  config.model.features = 64
  config.train.num_steps = 10_000
  config.train.batch_size = 64
  config.train.ema_decay = 0.999
  config.train.sample_every = 1000
  config.train.checkpoint_every = 2000
  config.train.eval_every = 2000
  return config
