"""StyleGAN2 (arXiv:1912.04958) on Fashion-MNIST zero-padded to 32x32: ``stylegan2_mnist``'s
recipe on the other 28x28 dataset.

    python -m jaxgan.main --config=configs/stylegan2_fashion_mnist.py \
        --workdir=runs/stylegan2_fashion_mnist \
        --config.data.data_dir=../shared/data/tensorflow_datasets

Not yet measured.
"""

from jaxgan import style_train


def get_config():
  return style_train.base_config('stylegan2', 'fashion_mnist')
