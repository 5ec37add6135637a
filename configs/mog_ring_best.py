"""Placeholder: replaced by the best recipe once tuned."""

from jaxgan.config import default_config


def get_config():
  config = default_config()
  config.train.pack = 2
  config.loss.r1_gamma = 0.1
  return config
