"""pix2pix on MNIST halves: the bottom half of a digit from its top half (lecture 001's "blur
effect").

The input is :func:`jaxgan.translation.top_half` of the digit (rows 14-27 zeroed), the target
the whole digit. Many bottoms fit one top: L1 alone (``--config.loss.gan_weight=0``) predicts
their blurry median, L1 + cGAN (this config) a sharp, plausible one. Otherwise as
``configs/pix2pix_fashion_edges.py``.

    python -m jaxgan.main --config=configs/pix2pix_mnist_halves.py \
        --workdir=runs/pix2pix_mnist_halves \
        --config.data.data_dir=../shared/data/tensorflow_datasets
"""

from jaxgan.translation import base_config


def get_config():
  config = base_config('pix2pix')
  config.data.name = 'mnist'
  config.task.transform = 'top_half'
  config.task.direction = 'from_transformed'
  config.model.features = 32
  config.model.dropout_rate = 0.5
  config.model.d_features = 32
  config.model.d_layers = 1
  config.loss.name = 'non_saturating'
  config.loss.l1_weight = 100.0
  config.loss.gan_weight = 1.0
  config.train.num_steps = 3000
  return config
