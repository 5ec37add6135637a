"""SRGAN (arXiv:1609.04802) on MNIST: x4 super-resolution of 7x7 digits, MSE + 1e-3 adversarial.

The G of ``configs/srresnet_mnist.py`` trained with the perceptual loss of the paper's eq. 3,
content + 1e-3 * (-log D(G(x))), against the paper's VGG-style D scaled to 28x28
(:class:`jaxgan.super_resolution.SRGANDiscriminator`: 3x3 convolutions with strides 1, 2, 1, 2
and 32, 32, 64, 64 features, batch norm, LeakyReLU 0.2, dense 256, dense 1). The content loss is
the pixel MSE (the paper's SRGAN-MSE); ``--config.loss.content=classifier`` uses the features of
jaxgan's shipped MNIST classifier instead (``loss.classifier_layer``, default ``'conv2'``, the
analogue of VGG54; the classifier FID of the outputs is then measured with the network G was
trained against). Where the MSE predicts a blurred mean, the adversarial term picks one sharp,
plausible digit: a lower PSNR, a sharper image. Adam 1e-4 (beta1 0.9) for both, batch 64, 3,000
steps.

The paper starts SRGAN from the trained SRResNet: run ``configs/srresnet_mnist.py`` first and
pass its workdir (without it, G starts from random weights):

    python -m jaxgan.main --config=configs/srgan_mnist.py --workdir=runs/srgan_mnist \
        --config.data.data_dir=../shared/data/tensorflow_datasets \
        --config.train.init_g_from=runs/srresnet_mnist
"""

from jaxgan import super_resolution


def get_config():
  return super_resolution.base_config('srgan', 'mnist')
