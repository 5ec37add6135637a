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

from jaxgan import pix2pix


def get_config():
  return pix2pix.base_config('mnist', 'top_half')
