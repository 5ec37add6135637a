r"""Train-step throughput of jaxgan against the same GANs in PyTorch, measured side by side.

Times the full alternating train step (one D update on a real minibatch and fresh fakes, then one
G update with fresh latents against the updated D; Adam 2e-4 / b1 0.5; non-saturating losses)
of the MLP GAN (``models.mnist_mlp_models``, lecture 004 "Example 2") and DCGAN (arXiv:1511.06434)
in jaxgan (``train.make_train_step`` jitted by ``train.parallelize(..., 'none')``, state donated)
and in PyTorch (``benchmarks/torch_reference.py``: identical layer shapes, losses, optimizer and
algorithm), twice: ``torch`` is PyTorch at its fastest (fused Adam; D's weights frozen in the G
step, since ``jax.grad`` with respect to G's parameters never computes their gradients either),
``torch_textbook`` the loop as usually written (default Adam, D's gradients computed and dropped).

Every measurement runs in a fresh subprocess, so compile time is a cold compile and the peak
resident memory (``getrusage`` max RSS; device peak bytes on GPU) belongs to one framework and
one model. Measurements are interleaved jaxgan, torch, torch_textbook, jaxgan, ... for
``--rounds`` rounds. Within a process: compile, ``--warmup`` steps, then ``--chunks`` chunks of
``--steps`` steps, each timed to completion; steps/s is ``steps / median(chunk time)``. The
table reports the median over rounds and the median of the per-round ratios. Beside wall-clock
time, each chunk records the process's CPU time (user + system, all threads): on a machine that
other jobs share it is the steadier measure of the work a step costs.

FLOP/s: ``model FLOPs`` counts the multiply-adds of every dense and convolution layer in the
forward and backward passes the algorithm needs (see :func:`step_flops`), the same for both
frameworks and independent of how a layer is computed; it is compared with the fastest of a
large float32 matrix product in XLA and in PyTorch on the same machine (``--peak_size``). XLA's own
count of the compiled step (``cost_analysis``, which also counts elementwise work) is in the JSON.

CPU (default here, batch 64, 28x28x1)::

    python benchmarks/throughput.py --out=runs/throughput_cpu.json

GPU (when JAX and torch both see one; DCGAN at 64x64x3 and batch 128 unless told otherwise;
TF32 on for PyTorch as XLA uses it by default; cuDNN autotuning on)::

    python benchmarks/throughput.py --out=runs/throughput_gpu.json

Needs the ``bench`` extra (``pip install -e .[bench]``: torch).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = ('mnist_mlp', 'dcgan')
# 'torch': the PyTorch reference at its fastest (fused Adam, D frozen in the G step);
# 'torch_textbook': the same loop as usually written (for-loop Adam, D's gradients computed and
# discarded in the G step), e.g. pytorch/examples' dcgan.
FRAMEWORKS = ('jaxgan', 'torch', 'torch_textbook')
LATENT_DIM = 100
DCGAN_FEATURES = 64


def _dense_macs(batch: int, widths) -> list[int]:
  return [batch * a * b for a, b in zip(widths[:-1], widths[1:], strict=True)]


def layer_macs(model: str, *, batch: int, image_shape) -> tuple[list[int], list[int]]:
  """Multiply-adds of one forward pass, per layer in order: (generator, discriminator).

  Dense ``a -> b``: ``B a b``. Convolution 4x4 / stride 2 to ``H' x W'``: ``B H' W' 16 C_in
  C_out``. Transposed convolution 4x4 / stride 2 from ``H x W``: ``B H W 16 C_in C_out``
  (every output pixel sums ``(4/2)^2 C_in`` products).
  """
  pixels = math.prod(image_shape)
  if model == 'mnist_mlp':
    return (_dense_macs(batch, (LATENT_DIM, 256, 512, 1024, pixels)),
            _dense_macs(batch, (pixels, 1024, 512, 256, 1)))
  if model != 'dcgan':
    raise ValueError(f'unknown model {model!r}; expected one of {list(MODELS)}')
  size = image_shape[0]
  start = next(s for s in (4, 7) if size % s == 0 and math.log2(size / s).is_integer()
               and size // s >= 2)
  depth = int(math.log2(size // start))
  channels = [DCGAN_FEATURES * 2**(depth - 1 - i) for i in range(depth)] + [image_shape[-1]]
  g = [batch * LATENT_DIM * start * start * channels[0]]
  for i in range(depth):
    side = start * 2**i
    g.append(batch * side * side * 16 * channels[i] * channels[i + 1])
  d_channels = [image_shape[-1]] + [DCGAN_FEATURES * 2**i for i in range(depth)]
  d = []
  for i in range(depth):
    side = size // 2**(i + 1)
    d.append(batch * side * side * 16 * d_channels[i] * d_channels[i + 1])
  d.append(batch * start * start * d_channels[-1])
  return g, d


def step_flops(model: str, *, batch: int, image_shape) -> int:
  """Model FLOPs (2 per multiply-add) of one alternating step, dense and conv layers only.

  D step: G forward (no gradient), D forward on the real and on the fake batch, D's weight
  gradients for both, D's input gradients for both except at its first layer (the data needs no
  gradient). G step: G forward, D forward, D's input gradients at every layer (they flow into
  G), G's weight gradients, G's input gradients except at its first layer (``z``). With ``g, d``
  the forward costs and ``g0, d0`` their first layers: ``4 g - g0 + 8 d - 2 d0``.
  """
  g_layers, d_layers = layer_macs(model, batch=batch, image_shape=image_shape)
  g, d = sum(g_layers), sum(d_layers)
  return 2 * (4 * g - g_layers[0] + 8 * d - 2 * d_layers[0])


# ----------------------------------------------------------------------------------------------
# Workers: one framework, one model, one process.


def _max_rss_mib() -> float:
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux.


def _time_chunks(run_steps, *, warmup: int, chunks: int, steps: int
                 ) -> tuple[list[float], list[float]]:
  """Wall-clock and process CPU (user + system, all threads) seconds of each chunk."""
  run_steps(warmup)
  times, cpu = [], []
  for _ in range(chunks):
    start, start_cpu = time.perf_counter(), os.times()
    run_steps(steps)
    end_cpu = os.times()
    times.append(time.perf_counter() - start)
    cpu.append(end_cpu.user + end_cpu.system - start_cpu.user - start_cpu.system)
  return times, cpu


def _pin(cores: int) -> None:
  """Restricts this process (and the thread pools it will create) to the first ``cores`` CPUs."""
  if cores:
    os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:cores])


def jaxgan_worker(args) -> dict:
  """Compiles and times ``make_train_step`` for ``args.model``; returns the measurements."""
  _pin(args.cores)
  sys.path.insert(0, REPO)
  import jax
  import jax.numpy as jnp
  import numpy as np
  import optax

  from jaxgan import gan, losses, models, train
  rss_import = _max_rss_mib()
  image_shape = tuple(args.image_shape)
  if args.model == 'mnist_mlp':
    generator, discriminator = models.mnist_mlp_models()
    distribution = 'uniform'
  else:
    generator = models.DCGANGenerator(image_shape=image_shape, features=DCGAN_FEATURES)
    discriminator = models.DCGANDiscriminator(image_shape=image_shape, features=DCGAN_FEATURES)
    distribution = 'normal'
  optimizer = optax.adam(2e-4, b1=0.5, b2=0.999)
  state = train.init_state(jax.random.PRNGKey(0), generator=generator,
                           discriminator=discriminator, g_optimizer=optimizer,
                           d_optimizer=optimizer, latent_dim=LATENT_DIM, data_shape=image_shape)
  d_loss_fn, g_loss_fn = losses.get_loss_pair('non_saturating')
  step = gan.make_train_step(
      generator=generator, discriminator=discriminator, g_optimizer=optimizer,
      d_optimizer=optimizer, d_loss_fn=d_loss_fn, g_loss_fn=g_loss_fn, latent_dim=LATENT_DIM,
      latent_distribution=distribution, update_rule='alternating')
  dp = train.parallelize(step, 'none')
  real = np.random.default_rng(0).uniform(-1, 1, (args.batch_size, *image_shape))
  batch = {'x': jax.device_put(jnp.asarray(real, jnp.float32))}
  key = jax.random.PRNGKey(1)
  state = dp.put_state(state)

  start = time.perf_counter()
  compiled = dp.step.lower(state, batch, key).compile()
  compile_s = time.perf_counter() - start
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, list) else cost
  xla_flops = float(cost.get('flops', float('nan'))) if cost else float('nan')
  holder = {'state': state}

  def run_steps(n):
    s = holder['state']
    for _ in range(n):
      s, metrics = compiled(s, batch, key)
    jax.block_until_ready((s, metrics))
    holder['state'] = s

  start = time.perf_counter()
  run_steps(1)
  first_step_s = time.perf_counter() - start
  times, cpu = _time_chunks(run_steps, warmup=args.warmup, chunks=args.chunks, steps=args.steps)
  device = jax.devices()[0]
  stats = device.memory_stats() if device.platform != 'cpu' else None
  return {'compile_s': compile_s, 'first_step_s': first_step_s, 'chunk_s': times,
          'chunk_cpu_s': cpu,
          'xla_flops_per_step': xla_flops, 'rss_after_import_mib': rss_import,
          'peak_rss_mib': _max_rss_mib(),
          'device_peak_mib': (stats or {}).get('peak_bytes_in_use', 0) / 2**20 or None,
          'device': f'{device.platform}: {device.device_kind}',
          'version': f'jax {jax.__version__}'}


def torch_worker(args) -> dict:
  """Times ``torch_reference.make_train_step`` for ``args.model``; returns the measurements."""
  textbook = args.worker == 'torch_textbook'
  _pin(args.cores)
  import torch
  rss_import = _max_rss_mib()
  if args.cores:
    torch.set_num_threads(args.cores)
  sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
  import torch_reference

  cuda = args.device == 'gpu'
  device = torch.device('cuda' if cuda else 'cpu')
  if cuda:
    # TF32 for convolutions and matrix products: what XLA does with float32 on GPUs by default.
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    torch.backends.cudnn.benchmark = True
  torch.manual_seed(0)
  image_shape = tuple(args.image_shape)
  generator, discriminator, sample = torch_reference.build(
      args.model, image_shape=image_shape, latent_dim=LATENT_DIM, features=DCGAN_FEATURES)
  generator, discriminator = generator.to(device), discriminator.to(device)
  step = torch_reference.make_train_step(
      generator, discriminator, lambda n: sample(n).to(device, non_blocking=True),
      fused_adam=not textbook, freeze_d=not textbook)
  height, width, channels = image_shape
  real = (torch.rand(args.batch_size, channels, height, width) * 2 - 1).to(device)
  if args.torch_channels_last and len(image_shape) == 3:
    generator.to(memory_format=torch.channels_last)
    discriminator.to(memory_format=torch.channels_last)
    real = real.contiguous(memory_format=torch.channels_last)
  sync = torch.cuda.synchronize if cuda else (lambda: None)

  def run_steps(n):
    for _ in range(n):
      metrics = step(real)
    float(metrics['g_loss'])  # Waits for the last step.
    sync()

  start = time.perf_counter()
  run_steps(1)
  first_step_s = time.perf_counter() - start
  times, cpu = _time_chunks(run_steps, warmup=args.warmup, chunks=args.chunks, steps=args.steps)
  return {'compile_s': 0.0, 'first_step_s': first_step_s, 'chunk_s': times, 'chunk_cpu_s': cpu,
          'rss_after_import_mib': rss_import, 'peak_rss_mib': _max_rss_mib(),
          'device_peak_mib': torch.cuda.max_memory_allocated() / 2**20 if cuda else None,
          'device': (f'cuda: {torch.cuda.get_device_name()}' if cuda
                     else f'cpu: {torch.get_num_threads()} threads, OMP_WAIT_POLICY='
                     f"{os.environ.get('OMP_WAIT_POLICY', 'unset')}"),
          'version': f'torch {torch.__version__}' + (' (textbook loop)' if textbook else '')}


def peak_worker(args) -> dict:
  """GFLOP/s of the fastest ``n x n`` float32 matrix product in XLA and PyTorch."""
  _pin(args.cores)
  n = args.peak_size
  results = {}
  if args.framework in ('jaxgan', 'both'):
    import jax
    import jax.numpy as jnp
    a = jax.random.normal(jax.random.PRNGKey(0), (n, n), jnp.float32)
    matmul = jax.jit(lambda x, y: x @ y)
    matmul(a, a).block_until_ready()
    best = float('inf')
    for _ in range(args.peak_repeats):
      start = time.perf_counter()
      matmul(a, a).block_until_ready()
      best = min(best, time.perf_counter() - start)
    results['xla_gflops'] = 2 * n**3 / best / 1e9
  if args.framework in ('torch', 'both'):
    import torch
    cuda = args.device == 'gpu'
    if args.cores:
      torch.set_num_threads(args.cores)
    if cuda:
      torch.backends.cuda.matmul.allow_tf32 = True
    a = torch.randn(n, n, device='cuda' if cuda else 'cpu')
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    a @ a
    sync()
    best = float('inf')
    for _ in range(args.peak_repeats):
      start = time.perf_counter()
      a @ a
      sync()
      best = min(best, time.perf_counter() - start)
    results['torch_gflops'] = 2 * n**3 / best / 1e9
  return results


# ----------------------------------------------------------------------------------------------
# Driver.


def _run_worker(argv: list[str], env: dict[str, str] | None = None) -> dict:
  out = subprocess.run([sys.executable, os.path.abspath(__file__), *argv], capture_output=True,
                       text=True, cwd=REPO, check=False, env={**os.environ, **(env or {})})
  if out.returncode:
    raise RuntimeError(f'worker {argv} failed:\n{out.stderr[-4000:]}')
  return json.loads(out.stdout.strip().splitlines()[-1])


def _detect_device() -> str:
  """'gpu' when both JAX and torch see a GPU, else 'cpu' (probed in a subprocess)."""
  probe = ('import jax, torch; '
           'print("gpu" if jax.default_backend() == "gpu" and torch.cuda.is_available() '
           'else "cpu")')
  out = subprocess.run([sys.executable, '-c', probe], capture_output=True, text=True, check=False)
  return out.stdout.strip().splitlines()[-1] if out.returncode == 0 else 'cpu'


def _settings(args, model: str) -> tuple[int, tuple[int, ...]]:
  """(batch size, image shape) of ``model`` on ``args.device``."""
  gpu = args.device == 'gpu'
  if model == 'mnist_mlp':
    return args.batch_size or 64, (28, 28, 1)
  shape = tuple(args.dcgan_shape) if args.dcgan_shape else ((64, 64, 3) if gpu else (28, 28, 1))
  return args.batch_size or (128 if gpu else 64), shape


def _summarize(runs: list[dict], model: str, batch: int, image_shape, peak_gflops: float
               ) -> dict:
  flops = step_flops(model, batch=batch, image_shape=image_shape)
  summary = {'model': model, 'batch_size': batch, 'image_shape': list(image_shape),
             'model_flops_per_step': flops}
  ratios = []
  by_framework = {f: [r for r in runs if r['framework'] == f] for f in FRAMEWORKS}
  for framework, results in by_framework.items():
    if not results:
      continue
    rates = [r['steps'] / statistics.median(r['chunk_s']) for r in results]
    rate = statistics.median(rates)
    cpu_ms = [1e3 * statistics.median(r['chunk_cpu_s']) / r['steps'] for r in results]
    entry = {'steps_per_s': rate, 'steps_per_s_rounds': rates, 'images_per_s': rate * batch,
             'cpu_ms_per_step': statistics.median(cpu_ms), 'cpu_ms_per_step_rounds': cpu_ms,
             'load_before_rounds': [r['load_before'] for r in results],
             'compile_s': statistics.median(r['compile_s'] for r in results),
             'first_step_s': statistics.median(r['first_step_s'] for r in results),
             'peak_rss_mib': max(r['peak_rss_mib'] for r in results),
             'rss_after_import_mib': max(r['rss_after_import_mib'] for r in results),
             'device_peak_mib': results[0]['device_peak_mib'],
             'model_gflops_per_s': rate * flops / 1e9,
             'fraction_of_matmul_peak': rate * flops / 1e9 / peak_gflops,
             'device': results[0]['device'], 'version': results[0]['version']}
    if framework == 'jaxgan':
      entry['xla_flops_per_step'] = results[0]['xla_flops_per_step']
      entry['xla_gflops_per_s'] = rate * results[0]['xla_flops_per_step'] / 1e9
    summary[framework] = entry
  rate = lambda r: r['steps'] / statistics.median(r['chunk_s'])
  for reference, key in (('torch', 'ratio'), ('torch_textbook', 'ratio_textbook')):
    if by_framework['jaxgan'] and by_framework[reference]:
      ratios = [rate(j) / rate(t) for j, t in zip(by_framework['jaxgan'], by_framework[reference],
                                                  strict=True)]
      summary[f'{key}_rounds'] = ratios
      summary[key] = statistics.median(ratios)
  return summary


def _table(summaries: list[dict], peak: dict) -> str:
  head = ('| model | batch | image | jaxgan steps/s | PyTorch steps/s | jaxgan / PyTorch '
          '(per round) | PyTorch textbook steps/s | jaxgan / textbook | jaxgan images/s | '
          'jaxgan compile s | peak RSS MiB jaxgan / PyTorch | CPU ms/step jaxgan / PyTorch | '
          'model GFLOP/s jaxgan / PyTorch (% of matmul peak) |')
  lines = [head, '|' + ' --- |' * 13]
  best_peak = max(peak.values())
  fmt = lambda e, key, spec: format(e[key], spec) if e else '-'
  for s in summaries:
    j, t, tb = s.get('jaxgan'), s.get('torch'), s.get('torch_textbook')

    def ratio(key, summary=s):
      if key not in summary:
        return '-'
      rounds = ', '.join(f'{r:.2f}' for r in summary[f'{key}_rounds'])
      return f'**{summary[key]:.2f}x** ({rounds})'

    flops = ' / '.join(f"{e['model_gflops_per_s']:.0f} "
                       f"({100 * e['model_gflops_per_s'] / best_peak:.0f}%)" if e else '-'
                       for e in (j, t))
    lines.append(
        f"| {s['model']} | {s['batch_size']} | {'x'.join(map(str, s['image_shape']))} | "
        f"{fmt(j, 'steps_per_s', '.1f')} | {fmt(t, 'steps_per_s', '.1f')} | {ratio('ratio')} | "
        f"{fmt(tb, 'steps_per_s', '.1f')} | {ratio('ratio_textbook')} | "
        f"{fmt(j, 'images_per_s', '.0f')} | {fmt(j, 'compile_s', '.1f')} | "
        f"{fmt(j, 'peak_rss_mib', '.0f')} / {fmt(t, 'peak_rss_mib', '.0f')} | "
        f"{fmt(j, 'cpu_ms_per_step', '.0f')} / {fmt(t, 'cpu_ms_per_step', '.0f')} | {flops} |")
  return '\n'.join(lines)


def main(argv=None) -> dict:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--models', default=','.join(MODELS),
                      help=f'comma-separated subset of {MODELS}')
  parser.add_argument('--frameworks', default=','.join(FRAMEWORKS))
  parser.add_argument('--device', default='auto', choices=('auto', 'cpu', 'gpu'))
  parser.add_argument('--batch_size', type=int, default=0,
                      help='0: 64 (DCGAN on GPU: 128)')
  parser.add_argument('--dcgan_shape', type=lambda s: [int(v) for v in s.split(',')],
                      default=None, help='H,W,C of DCGAN images; default 28,28,1 (GPU 64,64,3)')
  parser.add_argument('--rounds', type=int, default=3)
  parser.add_argument('--warmup', type=int, default=5)
  parser.add_argument('--chunks', type=int, default=5)
  parser.add_argument('--steps', type=int, default=0,
                      help='steps per chunk; 0 picks about 1 s per chunk from the first step')
  parser.add_argument('--peak_size', type=int, default=2048)
  parser.add_argument('--peak_repeats', type=int, default=10)
  parser.add_argument('--torch_channels_last', type=int, default=0)
  parser.add_argument('--torch_omp_wait_policy', default='', choices=('', 'PASSIVE', 'ACTIVE'),
                      help="OMP_WAIT_POLICY for PyTorch's OpenMP threads ('': unset, the "
                           'default). PASSIVE keeps them from spinning on a busy machine')
  parser.add_argument('--cores', type=int, default=0,
                      help='pin every worker to the first N CPUs (torch gets N threads); 0: all')
  parser.add_argument('--out', default='', help='write the JSON results here')
  parser.add_argument('--worker', default='', choices=('', *FRAMEWORKS, 'peak'))
  parser.add_argument('--framework', default='both')
  parser.add_argument('--model', default='')
  parser.add_argument('--image_shape', type=lambda s: [int(v) for v in s.split(',')])
  args = parser.parse_args(argv)

  if args.worker:
    worker = {'jaxgan': jaxgan_worker, 'torch': torch_worker, 'torch_textbook': torch_worker,
              'peak': peak_worker}[args.worker]
    result = worker(args)
    if args.worker != 'peak':
      result['steps'] = args.steps
    print(json.dumps(result))
    return result

  models = [m for m in args.models.split(',') if m]
  frameworks = [f for f in args.frameworks.split(',') if f]
  for name, given, allowed in (('--models', models, MODELS),
                               ('--frameworks', frameworks, FRAMEWORKS)):
    bad = sorted(set(given) - set(allowed))
    if bad:
      raise ValueError(f'{name} has unknown entries {bad}; expected a subset of {list(allowed)}')
  if args.device == 'auto':
    args.device = _detect_device()
  common = ['--device', args.device, '--warmup', str(args.warmup), '--chunks', str(args.chunks),
            '--cores', str(args.cores), '--torch_channels_last', str(args.torch_channels_last)]
  peak = _run_worker(['--worker', 'peak', '--framework', 'both', '--peak_size',
                      str(args.peak_size), '--peak_repeats', str(args.peak_repeats), *common])
  print(f'float32 {args.peak_size}^3 matmul peak: ' +
        ', '.join(f'{k} {v:.0f}' for k, v in peak.items()), flush=True)

  steps = {}
  runs = []
  start = time.time()
  for round_ in range(args.rounds):
    for model in models:
      batch, shape = _settings(args, model)
      for framework in frameworks:
        worker_args = ['--worker', framework, '--model', model, '--batch_size', str(batch),
                       '--image_shape', ','.join(map(str, shape)), *common]
        env = ({'OMP_WAIT_POLICY': args.torch_omp_wait_policy}
               if framework != 'jaxgan' and args.torch_omp_wait_policy else None)
        if (model, framework) not in steps:
          steps[model, framework] = args.steps or _calibrate(worker_args, env)
        load = os.getloadavg()[0]
        result = _run_worker([*worker_args, '--steps', str(steps[model, framework])], env)
        result.update(framework=framework, model=model, round=round_, load_before=load)
        runs.append(result)
        rate = result['steps'] / statistics.median(result['chunk_s'])
        cpu_ms = 1e3 * statistics.median(result['chunk_cpu_s']) / result['steps']
        print(f'round {round_} {model:9s} {framework:14s} {rate:7.2f} steps/s  CPU {cpu_ms:6.1f} '
              f"ms/step  compile {result['compile_s']:.1f} s  peak RSS "
              f"{result['peak_rss_mib']:.0f} MiB  load {load:.1f}", flush=True)

  summaries = []
  for model in models:
    batch, shape = _settings(args, model)
    summaries.append(_summarize([r for r in runs if r['model'] == model], model, batch, shape,
                                max(peak.values())))
  table = _table(summaries, peak)
  print(table)
  results = {'summaries': summaries, 'runs': runs, 'matmul_peak_gflops': peak,
             'table_markdown': table, 'argv': sys.argv, 'wall_s': time.time() - start,
             'machine': {'platform': platform.platform(), 'processor': platform.processor(),
                         'cpus': os.cpu_count(), 'device': args.device}}
  if args.out:
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, 'w') as f:
      json.dump(results, f, indent=2)
  return results


def _calibrate(worker_args: list[str], env: dict[str, str] | None) -> int:
  """Steps per chunk so that a chunk takes about one second (at least 3)."""
  probe = _run_worker([*worker_args, '--warmup', '2', '--chunks', '1', '--steps', '3'], env)
  per_step = probe['chunk_s'][0] / 3
  return max(3, int(round(1.0 / per_step)))


if __name__ == '__main__':
  main()
