"""CycleGAN (arXiv:1703.10593), MNIST <-> thick MNIST, unpaired.

Domain A is MNIST's ``train[:30000]``, domain B the 3x3 grey dilation of ``train[30000:]``
(:func:`jaxgan.translation.unpaired`): no pair exists in training, while on the test split the
true pairs ``(x, T(x))`` are known. ResNet-block generators, 16x16 PatchGANs, least-squares GAN
loss, cycle loss 10 both ways, identity loss 0.5 x 10, a history pool of 50 fakes, Adam 2e-4 /
b1 0.5, G updated before D. Scaled for a CPU: ``features=16``, 3 residual blocks, batch 16
(three times faster per step than 32 on two cores, 0.19 against 0.62 CPU s).
Other transforms: ``--config.task.transform=invert`` or ``=rotate90`` (the paper's documented
failure: a geometric change). Ablations (the paper's Table 4): ``--config.loss.cycle_weight=0``
(GAN alone), ``--config.loss.gan_weight=0`` (cycle alone), ``--config.loss.identity_weight=0``.

    python -m jaxgan.main --config=configs/cyclegan_mnist_thick.py \
        --workdir=runs/cyclegan_mnist_thick \
        --config.data.data_dir=../shared/data/tensorflow_datasets

Writes rows of test a | G(a) | T(a) | F(G(a)) to ``samples/`` every 1,000 steps.
"""

from jaxgan.translation import base_config


def get_config():
  config = base_config('cyclegan')
  config.data.name = 'mnist'
  config.task.transform = 'dilate'
  config.task.split = 30_000
  config.model.features = 16
  config.model.num_blocks = 3
  config.model.d_features = 32
  config.model.d_layers = 1
  config.model.pool_size = 50
  config.loss.cycle_weight = 10.0
  config.loss.identity_weight = 0.5
  config.loss.gan_weight = 1.0
  config.train.batch_size = 16
  config.train.num_steps = 4000
  return config
