"""A 5x5 grid of Gaussians at {-4, -2, 0, 2, 4}^2, std 0.05 (PacGAN/VEEGAN, arXiv:1712.04086).

The vanilla MLP GAN of ``configs/mog_ring.py`` on the grid: G 2->128->128->2, D 2->128->128->1
(ReLU), non-saturating loss, Adam 1e-3.

    python -m jaxgan.main --config=configs/mog_grid.py --workdir=runs/mog_grid

Expected: mode collapse. ``benchmarks/mode_coverage.py`` trains this recipe ("GAN
(non-saturating)", with N(0, I) latents) for 10 seeds and scores it with
``jaxgan.metrics.mode_coverage``: see the README's "Mode collapse" table for the numbers; the
samples lie along a few rays through the origin and miss modes.
"""

from jaxgan.config import default_config


def get_config():
  config = default_config()
  config.data.name = 'grid'
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
