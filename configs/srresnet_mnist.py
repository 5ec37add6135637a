"""SRResNet (arXiv:1609.04802) on MNIST: x4 super-resolution of 7x7 box-averaged digits, MSE.

G (:class:`jaxgan.super_resolution.SRResNet`, 32 features, 4 residual blocks, two x2
sub-pixel upsampling blocks, tanh) maps the exact 4x4 box average of a digit (7x7) back to its
28x28 original, trained with the pixel MSE alone and no discriminator (the paper's SRResNet-MSE).
Many 28x28 digits share one 7x7 average: the MSE's answer is their mean, a blurred digit, which
``configs/srgan_mnist.py`` sharpens. Adam 1e-4 (beta1 0.9), batch 64, 3,000 steps;
``samples/step_<N>.png`` shows test rows input (nearest-upsampled) | G(input) | truth, and
``--config.train.eval_every=1000`` logs the test PSNR/SSIM (border crop 4).
``--config.data.name=fashion_mnist`` runs it on Fashion-MNIST.

    python -m jaxgan.main --config=configs/srresnet_mnist.py --workdir=runs/srresnet_mnist \
        --config.data.data_dir=../shared/data/tensorflow_datasets
"""

from jaxgan import super_resolution


def get_config():
  return super_resolution.base_config('srresnet', 'mnist')
