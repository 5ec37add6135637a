"""Progressive growing of GANs (arXiv:1710.10196) on Fashion-MNIST zero-padded to 32x32:
``pggan_mnist``'s recipe on the other 28x28 dataset.

    python -m jaxgan.main --config=configs/pggan_fashion_mnist.py \
        --workdir=runs/pggan_fashion_mnist \
        --config.data.data_dir=../shared/data/tensorflow_datasets

Not yet measured.
"""

from jaxgan import style_train


def get_config():
  return style_train.base_config('pggan', 'fashion_mnist')
