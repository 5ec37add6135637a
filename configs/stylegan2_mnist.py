"""StyleGAN2 (arXiv:1912.04958) on MNIST zero-padded to 32x32, at CPU scale.

:func:`jaxgan.style_train.base_config`: a 2-layer mapping network (w_dim 64, lr multiplier
0.01), the skip generator from a learned 4x4 constant with modulated/demodulated convolutions
and per-pixel noise, the residual D with minibatch stddev; non-saturating loss, lazy R1 (every
16 steps) and lazy path-length regularization (weight 2, every 4 steps, decay 0.01) with the
paper's Adam correction (lr and betas by c = k / (k + 1)), style mixing 0.9, the running average
of w, and G's moving average (0.999) for the samples. Batch 32, 10,000 steps.

    python -m jaxgan.main --config=configs/stylegan2_mnist.py --workdir=runs/stylegan2_mnist \
        --config.data.data_dir=../shared/data/tensorflow_datasets
    python -m jaxgan.sample --workdir=runs/stylegan2_mnist --mode=style_mix --truncation=0.7

Measured (benchmarks/image_quality.py, 1,800 CPU s, README "Style-based and progressive
generators"): collapsed to one digit at this scale (classifier FID 1671.89); not yet a result.
"""

from jaxgan import style_train


def get_config():
  return style_train.base_config('stylegan2', 'mnist')
