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

from jaxgan.translation import base_config


def get_config():
  config = base_config('pix2pix')
  config.data.name = 'fashion_mnist'
  config.task.transform = 'edges'
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
