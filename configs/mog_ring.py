"""A ring of 8 Gaussians (radius 1, std 0.01), the standard mode-collapse toy (arXiv:1712.04086).

An MLP GAN (G 2->128->128->2, D 2->128->128->1, ReLU), non-saturating loss, Adam 1e-3.

    python -m jaxgan.main --config=configs/mog_ring.py --workdir=runs/mog_ring

Writes a scatter plot of real vs generated points every 1,000 steps; a vanilla GAN like this one
typically covers only some of the 8 modes and hops between them (mode collapse).
"""

from jaxgan.config import default_config


def get_config():
  config = default_config()
  config.data.name = 'ring'
  config.model.name = 'mlp'
  config.model.latent_dim = 2
  config.model.g_hidden = (128, 128)
  config.model.d_hidden = (128, 128)
  config.train.num_steps = 5000
  config.train.batch_size = 256
  config.train.g_lr = 1e-3
  config.train.d_lr = 1e-3
  config.train.sample_every = 1000
  config.train.checkpoint_every = 1000
  config.train.num_samples = 2500
  return config
