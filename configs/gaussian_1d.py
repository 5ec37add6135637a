"""Lecture 004, "Example 1": a GAN learns N(1, 1) from 1-D noise z ~ U[-1, 1].

G 1->5->5->1 (tanh), D 1->10->10->1 (tanh), non-saturating loss, Adam.

    python -m jaxgan.main --config=configs/gaussian_1d.py --workdir=runs/gaussian_1d

Trains 10,000 steps in well under a minute on a laptop CPU and writes
``samples/step_<N>.png`` (histograms of real vs generated: the generated histogram moves onto
N(1, 1), "not perfect, but somehow similar", as the seed puts it), ``metrics.jsonl`` and
``checkpoints/``.
"""

from jaxgan.config import default_config


def get_config():
  config = default_config()
  config.data.name = 'gaussian_1d'
  config.model.name = 'gaussian_1d_mlp'
  config.model.latent_dim = 1
  config.train.num_steps = 10_000
  config.train.batch_size = 128
  config.train.g_lr = 1e-3
  config.train.d_lr = 1e-3
  config.train.log_every = 100
  config.train.sample_every = 2500
  config.train.checkpoint_every = 2500
  config.train.num_samples = 10_000
  return config
