"""Progressive growing of GANs (arXiv:1710.10196) on MNIST zero-padded to 32x32.

:func:`jaxgan.style_train.base_config`: G and D grown 4 -> 8 -> 16 -> 32, each new resolution
faded in over 1,000 steps and then trained 1,000 stable steps (4x4 runs 1,000 stable steps; the
last 2,000 steps are at 32x32), the fade-in alpha a pure function of the step; pixel norm,
equalized learning rate, minibatch stddev; WGAN-GP (10) plus the drift term 1e-3 E[D(x)^2];
Adam (0.001, betas 0, 0.99) reset at every phase; G's moving average (0.999). Batch 32, 8,000
steps. ``samples/resolution_<r>.png`` holds the last samples at every resolution passed.

    python -m jaxgan.main --config=configs/pggan_mnist.py --workdir=runs/pggan_mnist \
        --config.data.data_dir=../shared/data/tensorflow_datasets

Measured (benchmarks/image_quality.py, 1,800 CPU s, README "Style-based and progressive
generators"): classifier FID 32.67 of 10,000 samples after 8,000 steps.
"""

from jaxgan import style_train


def get_config():
  return style_train.base_config('pggan', 'mnist')
