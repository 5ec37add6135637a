"""DCGAN (arXiv:1511.06434) on MNIST 28x28: 7x7x128 -> 14x14x64 -> 28x28x1.

Batch norm and ReLU in G, LeakyReLU(0.2) in D, no pooling, tanh output, Adam 2e-4 / b1 0.5,
batch 64, z ~ N(0, I) of 100 dimensions.

    python -m jaxgan.main --config=configs/dcgan_mnist.py --workdir=runs/dcgan_mnist \
        --config.data.data_dir=../shared/data/tensorflow_datasets

Writes an 8x8 sample grid every 1,000 steps; recognizable digits after about 2,000 steps.
"""

from jaxgan.config import default_config


def get_config():
  config = default_config()
  config.data.name = 'mnist'
  config.model.name = 'dcgan'
  config.model.latent_dim = 100
  config.model.latent_distribution = 'normal'
  config.model.features = 64
  config.train.num_steps = 10_000
  config.train.batch_size = 64
  config.train.sample_every = 1000
  config.train.checkpoint_every = 2000
  return config
