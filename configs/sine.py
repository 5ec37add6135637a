"""Lecture 002's toy exercise: a GAN learns the curve y = sin(x), x ~ U[-pi, pi], from 2-D noise.

"Imagine we want to optimize a sinus distribution; the generator draws random samples and tries
to optimize the function to resemble a sinus." The data are points ``(x, sin x)``
(:func:`jaxgan.data.sine`); G maps z ~ N(0, I_2) through 2->64->64->2 (ReLU), D is 2->64->64->1,
non-saturating loss, Adam 1e-3 (b1 0.5), batch 256, 5,000 steps.

    python -m jaxgan.main --config=configs/sine.py --workdir=runs/sine

writes scatter plots of real vs generated points every 1,000 steps. What it reaches, measured on
seeds 0-4 by

    python benchmarks/sine_toy.py --seeds=5 --out=benchmarks/results/sine_toy.json

is in the README ("Configs"): the mean distance |y - sin x| of 10,000 samples to the curve
(0.036 +- 0.011 over seeds 0-4), and how evenly they cover x in [-pi, pi] (the 1-Wasserstein
distance of their x to U[-pi, pi]: 0.038 +- 0.008, the data's own 10,000 points 0.025).
"""

from jaxgan.config import default_config


def get_config():
  config = default_config()
  config.data.name = 'sine'
  config.model.name = 'mlp'
  config.model.latent_dim = 2
  config.model.latent_distribution = 'normal'
  config.model.g_hidden = (64, 64)
  config.model.d_hidden = (64, 64)
  config.train.num_steps = 5000
  config.train.batch_size = 256
  config.train.g_lr = 1e-3
  config.train.d_lr = 1e-3
  config.train.sample_every = 1000
  config.train.checkpoint_every = 1000
  config.train.num_samples = 2000
  return config
