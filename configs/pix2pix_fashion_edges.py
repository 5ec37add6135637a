"""pix2pix (arXiv:1611.07004) on Fashion-MNIST, edges -> item: the "edges2shoes" of this data.

The input is :func:`jaxgan.translation.edges` of the item (a binary morphological gradient), the
target the item itself. U-Net G with dropout as its noise, a 16x16 PatchGAN D on
``concat(input, output)``, loss = cGAN + 100 L1, Adam 2e-4 / b1 0.5, batch 64. Channels are
halved from the paper's (``features=32``) to train on a CPU.

    python -m jaxgan.main --config=configs/pix2pix_fashion_edges.py \
        --workdir=runs/pix2pix_fashion_edges \
        --config.data.data_dir=../shared/data/tensorflow_datasets

Writes rows of test edges | G(edges) | item to ``samples/`` every 1,000 steps.
"""

from jaxgan import pix2pix


def get_config():
  return pix2pix.base_config('fashion_mnist', 'edges')
