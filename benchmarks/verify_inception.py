"""jaxgan's FID Inception against pytorch-fid's own network, with random weights.

    /tmp/tvenv/bin/python benchmarks/verify_inception.py \
        --out=benchmarks/results/verify_inception.json

Runs where torch, torchvision, pytorch-fid 0.3.0 and jaxgan are importable together. Here:
``python3 -m venv /tmp/tvenv``, then ``/tmp/tvenv/bin/pip install torch==2.14.1
torchvision==0.29.1 pytorch-fid==0.3.0`` (the package index's default builds, ``+cu130``, which
run on a CPU; torchvision's ops import beside that torch), ``pip install jax==0.10.2
flax==0.12.8`` and ``pip install --no-deps -e .`` (jaxgan's other requirements are not needed;
the first three are pyproject's ``bench_inception`` extra).
The real weights are not needed:

1. pytorch-fid's ``fid_inception_v3()`` is built as pytorch-fid builds it, its weight download
   replaced by the network's own (random) state dict; its batch-norm statistics are set from a
   train-mode pass over random images (so activations stay of order 1 through 94 layers) and then
   randomized (means shifted, variances scaled by U(0.5, 2)), and the affine parameters
   randomized too. The state dict is written with ``torch.save`` (float32, like the real file).
2. jaxgan's :func:`jaxgan.eval.inception.convert_torch_weights` converts that file (digest check
   off: it is not the real file) and :func:`~jaxgan.eval.inception.load_variables` loads it.
3. pytorch-fid's ``InceptionV3([3], resize_input=True, normalize_input=True,
   use_fid_inception=True)``, built on the same state dict and cast to float64, gives the pool
   features of images in [0, 1] (jaxgan's [-1, 1] images ``(x + 1) / 2``, grey ones repeated to
   three channels, NCHW); ``fc`` on them gives the logits. jaxgan's network gives both in float64
   (``jax.enable_x64``) from the [-1, 1] NHWC images, and in float32 beside torch's float32.
4. Inputs: random images at 32x32x3 (resized up), at 299x299x3 (no resize) and at 400x360x3
   (resized down, no antialiasing), and real MNIST digits from ``tests/data/mnist_test_slice.npz``
   (28x28x1: grey, resized up).
5. Also the resize alone against ``F.interpolate(mode='bilinear', align_corners=False)``, and
   :func:`jaxgan.metrics.frechet_distance` against pytorch-fid's ``calculate_frechet_distance``
   on random full-rank statistics of 2048 and of 64 dimensions.

Differences: ``max_abs`` = max |jax - torch| over all entries, ``rel`` = ``max_abs / max |torch|``
(relative to the output's scale; entries near 0 make elementwise ratios meaningless).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MNIST_SLICE = os.path.join(ROOT, 'tests', 'data', 'mnist_test_slice.npz')


def build_torch_network(seed: int = 0):
  """pytorch-fid's ``fid_inception_v3()`` with random weights and batch-norm statistics."""
  import torch
  from pytorch_fid import inception as pfi

  torch.manual_seed(seed)
  made = {}
  build = pfi._inception_v3

  def record(*args, **kwargs):
    made['net'] = build(*args, **kwargs)
    return made['net']

  # fid_inception_v3() builds torchvision's network, patches its blocks, then loads the
  # downloaded state dict: load the network's own (random) one instead.
  saved = pfi._inception_v3, pfi.load_state_dict_from_url
  pfi._inception_v3 = record
  pfi.load_state_dict_from_url = lambda *args, **kwargs: made['net'].state_dict()
  try:
    net = pfi.fid_inception_v3()
  finally:
    pfi._inception_v3, pfi.load_state_dict_from_url = saved
  blocks = torch.nn.Sequential(  # pytorch-fid's blocks 0-3, as InceptionV3 chains them.
      net.Conv2d_1a_3x3, net.Conv2d_2a_3x3, net.Conv2d_2b_3x3, torch.nn.MaxPool2d(3, 2),
      net.Conv2d_3b_1x1, net.Conv2d_4a_3x3, torch.nn.MaxPool2d(3, 2),
      net.Mixed_5b, net.Mixed_5c, net.Mixed_5d, net.Mixed_6a, net.Mixed_6b, net.Mixed_6c,
      net.Mixed_6d, net.Mixed_6e, net.Mixed_7a, net.Mixed_7b, net.Mixed_7c)
  generator = torch.Generator().manual_seed(seed + 1)
  with torch.no_grad():
    for module in net.modules():  # Cumulative averages of one train-mode pass.
      if isinstance(module, torch.nn.BatchNorm2d):
        module.reset_running_stats()
        module.momentum = None
    net.train()
    blocks(2 * torch.rand(4, 3, 299, 299, generator=generator) - 1)
    net.eval()
    for module in net.modules():
      if isinstance(module, torch.nn.BatchNorm2d):
        c = module.num_features
        std = module.running_var.sqrt()
        module.running_mean += 0.2 * std * torch.randn(c, generator=generator)
        module.running_var *= 0.5 + 1.5 * torch.rand(c, generator=generator)
        module.weight.copy_(0.5 + torch.rand(c, generator=generator))
        module.bias.copy_(0.1 * torch.randn(c, generator=generator))
    net.fc.bias.copy_(torch.randn(net.fc.bias.shape, generator=generator))
  return net


def load_torch(state_path: str, dtype):
  """``(wrapper, fc)``: pytorch-fid's ``InceptionV3([3])`` on the saved state dict, and ``fc``."""
  import torch
  from pytorch_fid import inception as pfi

  state = torch.load(state_path, map_location='cpu', weights_only=True)
  saved = pfi.load_state_dict_from_url
  pfi.load_state_dict_from_url = lambda *args, **kwargs: state
  try:
    wrapper = pfi.InceptionV3([3], resize_input=True, normalize_input=True,
                              use_fid_inception=True)
    full = pfi.fid_inception_v3()
  finally:
    pfi.load_state_dict_from_url = saved
  return wrapper.eval().to(dtype), full.fc.eval().to(dtype)


def torch_outputs(wrapper, fc, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Pool features and ``fc`` logits of [-1, 1] NHWC images, as pytorch-fid feeds them."""
  import torch

  dtype = fc.weight.dtype
  x = torch.from_numpy((np.asarray(images, np.float64) + 1) / 2).permute(0, 3, 1, 2)
  if x.shape[1] == 1:
    x = x.repeat(1, 3, 1, 1)
  with torch.no_grad():
    pool = wrapper(x.to(dtype).contiguous())[0].flatten(1)
    logits = fc(pool)
  return pool.double().numpy(), logits.double().numpy()


def difference(a: np.ndarray, b: np.ndarray) -> dict:
  """``{'max_abs', 'max_abs_reference', 'rel'}`` of ``a`` against the reference ``b``."""
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  if a.shape != b.shape:
    raise ValueError(f'shapes differ: {a.shape} and {b.shape}')
  max_abs = float(np.max(np.abs(a - b)))
  scale = float(np.max(np.abs(b)))
  return {'max_abs': max_abs, 'max_abs_reference': scale, 'rel': max_abs / scale}


def inputs(seed: int = 0, *, num_random: int = 2, num_digits: int = 3) -> dict[str, np.ndarray]:
  """The test images, ``{name: (N, H, W, C) float32 in [-1, 1]}``."""
  rng = np.random.default_rng(seed)
  out = {
      'random_32x32x3': rng.uniform(-1, 1, (num_random, 32, 32, 3)),
      'random_299x299x3': rng.uniform(-1, 1, (1, 299, 299, 3)),
      'random_400x360x3': rng.uniform(-1, 1, (1, 400, 360, 3)),
  }
  if num_digits and os.path.exists(MNIST_SLICE):
    with np.load(MNIST_SLICE) as f:
      out['mnist_28x28x1'] = f['image'][:num_digits].astype(np.float32) / 127.5 - 1
  return {k: v.astype(np.float32) for k, v in out.items()}


def verify(workdir: str, *, seed: int = 0, num_random: int = 2, num_digits: int = 3,
           float32: bool = True, frechet_dim: int = 2048) -> dict:
  """Runs the whole comparison; returns the results (see the module docstring)."""
  import jax
  import jax.numpy as jnp
  import pytorch_fid
  import torch
  import torch.nn.functional as F
  import torchvision
  from pytorch_fid.fid_score import calculate_frechet_distance

  from jaxgan import metrics
  from jaxgan.eval import inception

  torch.set_num_threads(max(1, os.cpu_count() or 1))
  start = time.perf_counter()
  net = build_torch_network(seed)
  torch_state = {k: v for k, v in net.state_dict().items()}
  pth = os.path.join(workdir, 'random_fid_inception.pth')
  torch.save(torch_state, pth)
  npz = os.path.join(workdir, 'random_fid_inception.npz')
  digest = inception.convert_torch_weights(pth, npz, expected_sha256=None)
  results = {'state_dict_entries': len(torch_state),
             'state_dict_float_numbers': int(sum(v.numel() for k, v in torch_state.items()
                                                 if v.is_floating_point())),
             'torch_parameters': int(sum(p.numel() for p in net.parameters())),
             'jax_parameters': inception.count(inception.abstract_variables()['params']),
             'jax_batch_stats': inception.count(inception.abstract_variables()['batch_stats']),
             'random_pth_sha256': digest, 'per_input': {}}

  images = inputs(seed, num_random=num_random, num_digits=num_digits)
  torch64 = load_torch(pth, torch.float64)
  with jax.enable_x64(True):
    variables64, _ = inception.load_variables(npz, expected_sha256=None, dtype=np.float64)
    variables64 = jax.tree.map(jnp.asarray, variables64)
    apply = inception.make_apply()
    for name, x in images.items():
      t0 = time.perf_counter()
      pool_t, logits_t = torch_outputs(*torch64, x)
      t1 = time.perf_counter()
      pool_j, logits_j, _ = apply(variables64, jnp.asarray(x, jnp.float64))
      pool_j, logits_j = np.asarray(pool_j), np.asarray(logits_j)
      t2 = time.perf_counter()
      entry = {'shape': list(x.shape), 'float64': {'pool': difference(pool_j, pool_t),
                                                   'logits': difference(logits_j, logits_t)},
               'torch_seconds': round(t1 - t0, 1), 'jax_seconds_with_compile': round(t2 - t1, 1)}
      results['per_input'][name] = entry
      print(name, json.dumps(entry['float64']), flush=True)
  if float32:
    variables32, _ = inception.load_variables(npz, expected_sha256=None)
    extractor = inception.extractor(variables32, batch_size=8)
    torch32 = load_torch(pth, torch.float32)
    for name, x in images.items():
      pool_t, _ = torch_outputs(*torch32, x)
      pool_j = extractor.features(x)
      results['per_input'][name]['float32'] = {'pool': difference(pool_j, pool_t)}
      print(name, 'float32', json.dumps(results['per_input'][name]['float32']), flush=True)

  # The resize alone, in float64.
  rng = np.random.default_rng(seed + 2)
  resize = {}
  with jax.enable_x64(True):
    for h, w, c in ((28, 28, 1), (32, 32, 3), (64, 40, 3), (400, 360, 3), (299, 299, 3)):
      x = rng.uniform(-1, 1, (2, h, w, c))
      ours = np.asarray(inception.resize_bilinear(jnp.asarray(x), 299))
      theirs = F.interpolate(torch.from_numpy(x).permute(0, 3, 1, 2), size=(299, 299),
                             mode='bilinear', align_corners=False).permute(0, 2, 3, 1).numpy()
      resize[f'{h}x{w}x{c}'] = difference(ours, theirs)['max_abs']
  results['resize_max_abs'] = resize

  # The Fréchet distance on random statistics of full rank (more rows than dimensions): at FID's
  # 2048 dimensions and at the classifier's 64. (pytorch-fid's scipy sqrtm fails on the
  # singular covariances of a few images' features, "Imaginary component", so none are used.)
  def stats(n, d, shift):
    a = rng.normal(size=(n, d)) @ (rng.normal(size=(d, d)) / np.sqrt(d)) + shift
    return a.mean(0), np.cov(a, rowvar=False)

  results['frechet'] = {}
  for d in (frechet_dim, 64):
    mu1, s1 = stats(2 * d, d, 0.0)
    mu2, s2 = stats(2 * d, d, 0.1)
    ours, theirs = metrics.frechet_distance(mu1, s1, mu2, s2), float(
        calculate_frechet_distance(mu1, s1, mu2, s2))
    results['frechet'][f'random_statistics_{d}d'] = {
        'dim': d, 'rows': 2 * d, 'jaxgan': ours, 'pytorch_fid': theirs,
        'rel': abs(ours - theirs) / abs(theirs)}
  per = results['per_input'].values()
  results['max_rel_float64'] = {
      'pool': max(e['float64']['pool']['rel'] for e in per),
      'logits': max(e['float64']['logits']['rel'] for e in per)}
  if float32:
    results['max_rel_float32_pool'] = max(e['float32']['pool']['rel'] for e in per)
  results['versions'] = {'torch': torch.__version__, 'torchvision': torchvision.__version__,
                         'pytorch_fid': pytorch_fid.__version__, 'jax': jax.__version__,
                         'numpy': np.__version__, 'python': platform.python_version()}
  results['seconds'] = round(time.perf_counter() - start, 1)
  return results


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--out', default=os.path.join(ROOT, 'benchmarks', 'results',
                                                    'verify_inception.json'))
  parser.add_argument('--seed', type=int, default=0)
  parser.add_argument('--num_random', type=int, default=2, help='random 32x32 images')
  parser.add_argument('--num_digits', type=int, default=3, help='MNIST digits')
  args = parser.parse_args()
  with tempfile.TemporaryDirectory() as workdir:
    results = verify(workdir, seed=args.seed, num_random=args.num_random,
                     num_digits=args.num_digits)
  results['command'] = ' '.join(['python', os.path.relpath(sys.argv[0], ROOT), *sys.argv[1:]])
  results['machine'] = {'platform': platform.platform(), 'cpus': os.cpu_count()}
  os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
  with open(args.out, 'w') as f:
    json.dump(results, f, indent=2)
  print(json.dumps({k: results[k] for k in ('max_rel_float64', 'resize_max_abs', 'frechet')},
                   indent=2))
  print(f'wrote {args.out}')


if __name__ == '__main__':
  main()
