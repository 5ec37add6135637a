"""The best mode-collapse recipe of ``benchmarks/mode_coverage.py`` ("best"), on the ring.

``configs/mog_grid_best.py`` on the ring of 8 Gaussians (radius 1, std 0.01), with the ring's
own R1 weight: gamma 0.001 instead of the grid's 0.01 (tuned over 10 seeds; README, "Mode
collapse"). Non-saturating GAN + R1 (arXiv:1801.04406), Adam(3e-3, b1=0.5) cosine-decayed to 1%
over 30,000 steps, batch 512, PyTorch-style bias init, N(0, I) 2-D latents, G 2->96->96->2,
D 2->96->96->1, ReLU, samples from the moving average of G's weights (decay 0.999).

    python -m jaxgan.main --config=configs/mog_ring_best.py --workdir=runs/mog_ring_best

The benchmark (``python benchmarks/mode_coverage.py --methods=best``) trains this recipe for 10
seeds on *standardized* coordinates (divided by the ring's per-coordinate std, sqrt(1/2)) and
scales the samples back; the CLI trains on raw coordinates, which the config system does not
rescale, so a run of this config is the same recipe up to that input scaling.
"""

from jaxgan.config import default_config


def get_config():
  config = default_config()
  config.data.name = 'ring'
  config.model.name = 'mlp'
  config.model.latent_dim = 2
  config.model.latent_distribution = 'normal'
  config.model.g_hidden = (96, 96)
  config.model.d_hidden = (96, 96)
  config.model.bias_scale = 1.0
  config.loss.name = 'non_saturating'
  config.loss.r1_gamma = 0.001
  config.train.num_steps = 30_000
  config.train.batch_size = 512
  config.train.g_lr = 3e-3
  config.train.d_lr = 3e-3
  config.train.b1 = 0.5
  config.train.lr_final_fraction = 0.01
  config.train.ema_decay = 0.999  # samples come from the moving average of G's weights
  config.train.log_every = 500
  config.train.sample_every = 5000
  config.train.checkpoint_every = 5000
  config.train.num_samples = 2500
  return config
