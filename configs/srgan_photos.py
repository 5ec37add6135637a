"""SRGAN (arXiv:1609.04802) on photographs: x4 super-resolution of 24x24 crops, content + 1e-3
adversarial.

The data, G and evaluation of ``configs/srresnet_photos.py`` (96x96 training crops of
scikit-image's bundled photographs, Set3 held out whole), trained with the paper's eq. 3,
content + 1e-3 * (-log D(G(x))), against the paper's VGG-style D
(:class:`jaxgan.super_resolution.SRGANDiscriminator`: eight 3x3 convolutions, strides 1, 2, ...,
four stride-2 stages, 96 -> 6, batch norm, LeakyReLU 0.2) but CPU-sized: 32 to 256 features and
a 256-wide dense layer (the paper's 64 to 512 and 1024), and G with 32 features and 4 residual
blocks (the paper's 64 and 16) with ``configs/srresnet_photos.py``'s bicubic-residual output;
500 steps (the paper's 2 x 10^5), about 2 s a step on two CPU cores. Adam 1e-4 (beta1 0.9) for
both, batch 16.

The content loss is the pixel MSE (the paper's SRGAN-MSE). The paper's SRGAN-VGG54 uses the
features of VGG19's relu5_4; with torchvision's weights converted (PyTorch needed for that step
only):

    python -m jaxgan.vgg --torch_weights=vgg19-dcbb9e9d.pth --out=vgg19.npz

add ``--config.loss.content=vgg --config.loss.vgg_weights=vgg19.npz`` (``loss.vgg_layer``:
``relu5_4`` VGG54, ``relu2_2`` VGG22; ``loss.vgg_scale`` multiplies the features). The paper
starts SRGAN from the trained SRResNet: run ``configs/srresnet_photos.py`` first and pass its
workdir (without it, G starts from random weights):

    python -m jaxgan.main --config=configs/srgan_photos.py --workdir=runs/srgan_photos \\
        --config.train.init_g_from=runs/srresnet_photos
"""

from jaxgan import super_resolution


def get_config():
  config = super_resolution.base_config('srgan', 'photos')
  # CPU-sized: the paper's G is features=64, num_blocks=16; its D d_features=64, d_dense=1024.
  config.model.update({'features': 32, 'num_blocks': 4, 'output': 'bicubic_residual',
                       'd_features': 32, 'd_stages': 4, 'd_dense': 256})
  config.train.update({'num_steps': 500, 'log_every': 50, 'sample_every': 250,
                       'checkpoint_every': 250, 'eval_every': 250, 'num_samples': 3})
  return config
