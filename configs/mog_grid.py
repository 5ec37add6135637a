"""A 5x5 grid of Gaussians at {-4, -2, 0, 2, 4}^2, std 0.05 (PacGAN/VEEGAN, arXiv:1712.04086).

The vanilla MLP GAN of ``configs/mog_ring.py`` on the grid: G 2->128->128->2, D 2->128->128->1
(ReLU), non-saturating loss, Adam 1e-3.

    python -m jaxgan.main --config=configs/mog_grid.py --workdir=runs/mog_grid

Expected: mode collapse. In tuning runs of this recipe (2 seeds, batch 128, 5,000 steps) the
samples lay along rays through the origin (flax's zero bias init) and covered 15-16 of the 25
modes with 10-18 % high-quality samples (``jaxgan.metrics.mode_coverage``). The README's "Mode
collapse" table has the 10-seed benchmark of the vanilla GAN and of the fixes.
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
