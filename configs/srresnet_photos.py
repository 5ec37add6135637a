"""SRResNet (arXiv:1609.04802) on photographs: x4 super-resolution of 24x24 crops, MSE.

Training data: random 96x96 crops (the paper's size; inputs their exact 4x4 box averages, 24x24)
of the 14 photographs scikit-image bundles besides Set3 (``data.train_images``, greyscale ones
repeated to RGB; nothing is downloaded); test: the whole held-out Set3 photographs astronaut,
coffee and chelsea (``data.test_images``), cropped to a multiple of 4, PSNR/SSIM on the Y channel
with a 4-pixel border crop every ``eval_every`` steps. The paper's loss (pixel MSE), optimizer
(beta1 0.9) and batch (16), but CPU-sized: G has 32 features and 4 residual blocks (the paper's 64
and 16), 3,000 steps (the paper's 10^6), about 0.4 s a step on 2 CPU cores. Two departures for that
budget, chosen before any run (not tuned on Set3): G's output is bicubic upsampling plus a learned
detail that starts at zero (``model.output='bicubic_residual'``, VDSR's global residual), so G
starts at the bicubic baseline instead of below it, and Adam's rate is 5e-4 (the paper's 1e-4).
Needs scikit-image (``pip install -e '.[photos]'``).

    python -m jaxgan.main --config=configs/srresnet_photos.py --workdir=runs/srresnet_photos
"""

from jaxgan import super_resolution


def get_config():
  config = super_resolution.base_config('srresnet', 'photos')
  # CPU-sized: the paper's G is features=64, num_blocks=16, trained for 10^6 steps.
  config.model.update({'features': 32, 'num_blocks': 4, 'output': 'bicubic_residual'})
  config.train.g_lr = 5e-4
  config.train.update({'num_steps': 3000, 'log_every': 50, 'sample_every': 1000,
                       'checkpoint_every': 1000, 'eval_every': 1000, 'num_samples': 3})
  return config
