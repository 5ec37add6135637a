"""Lecture 004, "Example 2": an MLP GAN on MNIST from 100-d z ~ U(-1, 1).

G 100->256->512->1024->784 (ReLU, tanh output), D 784->1024->512->256->1 (ReLU), non-saturating
loss, Adam 2e-4 / b1 0.5, batch 64.

    python -m jaxgan.main --config=configs/mlp_mnist.py --workdir=runs/mlp_mnist \
        --config.data.data_dir=../shared/data/tensorflow_datasets

Writes an 8x8 sample grid every 1,000 steps; digit-like strokes appear after a few thousand steps.
"""

from jaxgan.config import default_config


def get_config():
  config = default_config()
  config.data.name = 'mnist'
  config.model.name = 'mnist_mlp'
  config.model.latent_dim = 100
  config.train.num_steps = 20_000
  config.train.batch_size = 64
  config.train.sample_every = 1000
  config.train.checkpoint_every = 2000
  return config
