"""The benchmark's PyTorch reference: jaxgan's MLP GAN and DCGAN and its alternating step, in torch.

Same layer shapes, initial-scale-free (timing only), losses, optimizer and algorithm as
``jaxgan.gan.make_train_step(update_rule='alternating', num_d_steps=1)`` with
``losses.non_saturating_*``:

1. ``fake = G(z1)`` in training mode (G's batch-norm running averages update), no gradient;
2. D's loss ``BCE(D(real), 1) + BCE(D(fake), 0)`` with D run in training mode SEPARATELY on the
   real and on the fake batch (batch-norm statistics per call, exactly as jaxgan does), one Adam
   step on D;
3. ``G(z2)`` with fresh latents against the UPDATED D, loss ``BCE(D(G(z2)), 1)`` (non-saturating),
   gradients for G only (D's parameters are frozen for this backward pass, as ``jax.grad`` with
   respect to ``g_params`` only computes G's), one Adam step on G;
4. the same metrics: both losses, mean D(x), mean D(G(z)), both gradient global norms.

Modules are NCHW (PyTorch's native layout) with the same channel counts, kernel sizes, strides
and padding as :mod:`jaxgan.models` (flax ``'SAME'`` with 4x4 / stride 2 is torch ``padding=1``);
batch norm with torch ``momentum = 1 - flax momentum = 0.1`` and ``eps = 1e-5``; Adam(2e-4,
b1=0.5, b2=0.999, eps=1e-8). torch is a benchmark-only dependency (the ``bench`` extra).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


class MLPGenerator(nn.Module):
  """``z -> 256 -> 512 -> 1024 -> 784`` (ReLU, tanh), reshaped to ``(B, 1, 28, 28)``."""

  def __init__(self, latent_dim: int = 100, hidden=(256, 512, 1024), image_shape=(28, 28, 1)):
    super().__init__()
    widths = (latent_dim, *hidden)
    self.hidden = nn.ModuleList(
        nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:], strict=True))
    self.out = nn.Linear(widths[-1], math.prod(image_shape))
    self.image_shape = image_shape

  def forward(self, z):
    h = z
    for layer in self.hidden:
      h = F.relu(layer(h))
    height, width, channels = self.image_shape
    return torch.tanh(self.out(h)).reshape(z.shape[0], channels, height, width)


class MLPDiscriminator(nn.Module):
  """Flattened image ``-> 1024 -> 512 -> 256 -> 1`` (ReLU), one logit per example."""

  def __init__(self, hidden=(1024, 512, 256), image_shape=(28, 28, 1)):
    super().__init__()
    widths = (math.prod(image_shape), *hidden)
    self.hidden = nn.ModuleList(
        nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:], strict=True))
    self.out = nn.Linear(widths[-1], 1)

  def forward(self, x):
    h = x.reshape(x.shape[0], -1)
    for layer in self.hidden:
      h = F.relu(layer(h))
    return self.out(h)[:, 0]


def _dcgan_plan(image_shape) -> tuple[int, int]:
  """(seed size s, number of doublings n), as ``jaxgan.models.dcgan_depth``."""
  height = image_shape[0]
  for start in (4, 7):
    depth = math.log2(height / start)
    if depth >= 1 and depth.is_integer():
      return start, int(depth)
  raise ValueError(f'DCGAN needs an image size of 4*2^k or 7*2^k, got {tuple(image_shape)}')


class DCGANGenerator(nn.Module):
  """``z -> Dense(s*s*F*2^(n-1)) -> BN -> ReLU -> [ConvT 4x4/2 -> BN -> ReLU] x (n-1) ->
  ConvT 4x4/2 -> tanh``, as ``jaxgan.models.DCGANGenerator`` (no bias before batch norm)."""

  def __init__(self, latent_dim: int = 100, image_shape=(28, 28, 1), features: int = 64):
    super().__init__()
    self.size, depth = _dcgan_plan(image_shape)
    self.channels = features * 2**(depth - 1)
    self.project = nn.Linear(latent_dim, self.size * self.size * self.channels, bias=False)
    self.project_norm = nn.BatchNorm2d(self.channels, momentum=0.1, eps=1e-5)
    layers, channels = [], self.channels
    for stage in range(depth - 1):
      out = features * 2**(depth - 2 - stage)
      layers += [nn.ConvTranspose2d(channels, out, 4, stride=2, padding=1, bias=False),
                 nn.BatchNorm2d(out, momentum=0.1, eps=1e-5), nn.ReLU()]
      channels = out
    layers += [nn.ConvTranspose2d(channels, image_shape[-1], 4, stride=2, padding=1), nn.Tanh()]
    self.body = nn.Sequential(*layers)

  def forward(self, z):
    # jaxgan reshapes to NHWC (B, s, s, C); channel order differs, shapes and FLOPs do not.
    h = self.project(z).reshape(z.shape[0], self.channels, self.size, self.size)
    return self.body(F.relu(self.project_norm(h)))


class DCGANDiscriminator(nn.Module):
  """``x -> Conv 4x4/2 -> LReLU(0.2) -> [Conv 4x4/2 -> BN -> LReLU] x (n-1) -> Dense(1)``."""

  def __init__(self, image_shape=(28, 28, 1), features: int = 64):
    super().__init__()
    size, depth = _dcgan_plan(image_shape)
    layers = [nn.Conv2d(image_shape[-1], features, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
    for stage in range(1, depth):
      layers += [nn.Conv2d(features * 2**(stage - 1), features * 2**stage, 4, stride=2, padding=1,
                           bias=False),
                 nn.BatchNorm2d(features * 2**stage, momentum=0.1, eps=1e-5), nn.LeakyReLU(0.2)]
    self.body = nn.Sequential(*layers)
    self.out = nn.Linear(size * size * features * 2**(depth - 1), 1)

  def forward(self, x):
    return self.out(self.body(x).flatten(1))[:, 0]


def build(model: str, *, image_shape=(28, 28, 1), latent_dim: int = 100, features: int = 64):
  """(generator, discriminator, latent sampler) for ``'mnist_mlp'`` or ``'dcgan'``.

  The latent distributions follow jaxgan's configs: U[-1, 1] for the MLP GAN
  (``configs/mlp_mnist.py``), N(0, I) for DCGAN (``configs/dcgan_mnist.py``).
  """
  if model == 'mnist_mlp':
    def sample(n):
      return torch.rand(n, latent_dim) * 2 - 1
    return MLPGenerator(latent_dim, image_shape=image_shape), MLPDiscriminator(
        image_shape=image_shape), sample
  if model == 'dcgan':
    def sample(n):
      return torch.randn(n, latent_dim)
    return (DCGANGenerator(latent_dim, image_shape, features),
            DCGANDiscriminator(image_shape, features), sample)
  raise ValueError(f"unknown model {model!r}; expected 'mnist_mlp' or 'dcgan'")


def _global_norm(params) -> torch.Tensor:
  return torch.sqrt(sum(torch.sum(p.grad * p.grad) for p in params))


def make_train_step(generator: nn.Module, discriminator: nn.Module, sample_z, *,
                    lr: float = 2e-4, b1: float = 0.5, b2: float = 0.999,
                    fused_adam: bool = True, freeze_d: bool = True):
  """Returns ``train_step(real) -> metrics`` (tensors) that updates both players in place.

  The defaults give PyTorch its fastest form of the same computation: ``fused_adam`` (one kernel
  per parameter group instead of torch's default per-tensor loop on CPU) and ``freeze_d`` (no
  gradients for D's weights in the G step, which ``jax.grad`` with respect to G's parameters
  never computes either). ``False`` for both is the textbook loop (e.g. pytorch/examples dcgan).
  """
  g_params, d_params = list(generator.parameters()), list(discriminator.parameters())
  fused = True if fused_adam else None
  g_opt = torch.optim.Adam(g_params, lr=lr, betas=(b1, b2), eps=1e-8, fused=fused)
  d_opt = torch.optim.Adam(d_params, lr=lr, betas=(b1, b2), eps=1e-8, fused=fused)
  generator.train()
  discriminator.train()

  def train_step(real: torch.Tensor) -> dict[str, torch.Tensor]:
    m = real.shape[0]
    # D step: fresh fakes, no gradient into G.
    with torch.no_grad():
      fake = generator(sample_z(m))
    d_opt.zero_grad(set_to_none=True)
    real_logits = discriminator(real)
    fake_logits = discriminator(fake)
    d_loss = (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
              + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))
    d_loss.backward()
    d_grad_norm = _global_norm(d_params)
    d_opt.step()
    # G step: fresh latents against the updated D; only G's gradients.
    if freeze_d:
      for p in d_params:
        p.requires_grad_(False)
    g_opt.zero_grad(set_to_none=True)
    g_logits = discriminator(generator(sample_z(m)))
    g_loss = F.binary_cross_entropy_with_logits(g_logits, torch.ones_like(g_logits))
    g_loss.backward()
    g_grad_norm = _global_norm(g_params)
    g_opt.step()
    if freeze_d:
      for p in d_params:
        p.requires_grad_(True)
    return {'d_loss': d_loss.detach(), 'g_loss': g_loss.detach(),
            'd_real': torch.sigmoid(real_logits.detach()).mean(),
            'd_fake': torch.sigmoid(fake_logits.detach()).mean(),
            'd_grad_norm': d_grad_norm, 'g_grad_norm': g_grad_norm}

  return train_step
