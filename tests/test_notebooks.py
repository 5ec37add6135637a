"""Executes every notebook in ``colab/`` in quick mode and checks the numbers it prints.

Each notebook runs in a fresh kernel on this interpreter (``sys.executable``, whatever kernelspecs
are installed), with its working directory a temporary directory, ``JAXGAN_QUICK=1``, the
repository on ``PYTHONPATH`` (so its install cell finds jaxgan and skips pip) and a set number
of CPU devices: 1 runs the single-device path (``parallel='none'``), 2 the data-parallel one.
The last cell of every notebook prints a JSON object, ``RESULT``, that the checks read.
"""

import json
import math
import os
import re
import subprocess
import sys

import nbformat
import numpy as np
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

from jaxgan import data, dynamics

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLAB = os.path.join(REPO, 'colab')
NOTEBOOKS = sorted(n for n in os.listdir(COLAB) if n.endswith('.ipynb'))


def _kernel_manager(tmp_path) -> KernelManager:
  """A kernel manager whose only kernel is ipykernel on ``sys.executable``."""
  kernel_dir = tmp_path / 'kernels' / 'jaxgan-test'
  kernel_dir.mkdir(parents=True)
  (kernel_dir / 'kernel.json').write_text(json.dumps({
      'argv': [sys.executable, '-m', 'ipykernel_launcher', '-f', '{connection_file}'],
      'display_name': 'jaxgan test', 'language': 'python'}))
  specs = KernelSpecManager(kernel_dirs=[str(tmp_path / 'kernels')], ensure_native_kernel=False)
  return KernelManager(kernel_name='jaxgan-test', kernel_spec_manager=specs)


def _environment(num_devices: int) -> dict[str, str]:
  env = dict(os.environ)
  # conftest's chex.set_n_cpu_devices(8) left its flag in XLA_FLAGS: replace it.
  flags = re.sub(r'--xla_force_host_platform_device_count=\S+', '', env.get('XLA_FLAGS', ''))
  env.update(JAXGAN_QUICK='1', JAXGAN_REPO=REPO, JAX_PLATFORMS='cpu', TF_CPP_MIN_LOG_LEVEL='2',
             PYTHONPATH=os.pathsep.join([REPO, env.get('PYTHONPATH', '')]).rstrip(os.pathsep),
             XLA_FLAGS=f'{flags} --xla_force_host_platform_device_count={num_devices}'.strip())
  env.pop('MPLBACKEND', None)  # The kernel's own default, as in Colab.
  return env


def _git_status() -> str | None:
  try:
    return subprocess.run(['git', 'status', '--porcelain', '--untracked-files=all'], cwd=REPO,
                          capture_output=True, text=True, check=True).stdout
  except (OSError, subprocess.CalledProcessError):
    return None


def execute(name: str, tmp_path, *, num_devices: int, min_images: int) -> dict:
  """Runs ``colab/<name>`` in quick mode in ``tmp_path``; returns its printed ``RESULT``.

  Also checks that the notebook showed at least ``min_images`` PNG images (figures included).
  """
  with open(os.path.join(COLAB, name)) as f:
    nb = nbformat.read(f, as_version=4)
  workdir = tmp_path / 'cwd'
  workdir.mkdir()
  before = _git_status()
  client = NotebookClient(nb, km=_kernel_manager(tmp_path), timeout=600,
                          resources={'metadata': {'path': str(workdir)}})
  client.execute(env=_environment(num_devices))  # Raises CellExecutionError on any error.
  assert _git_status() == before, 'the notebook wrote into the repository'
  stdout = ''.join(o.get('text', '') for o in nb.cells[-1].outputs if o.get('name') == 'stdout')
  result = json.loads(stdout.strip().splitlines()[-1])
  assert result['num_devices'] == num_devices
  assert result['parallel'] == ('none' if num_devices == 1 else 'shard_map')
  assert result['backend'] == 'cpu'
  images = sum('image/png' in o.get('data', {}) for c in nb.cells for o in c.get('outputs', []))
  assert images >= min_images, f'{name} showed {images} images, expected {min_images}'
  return result


def test_notebooks_are_small_and_saved_without_outputs():
  assert NOTEBOOKS == ['01_bilinear_dynamics.ipynb', '02_gan_1d_and_mode_collapse.ipynb',
                       '03_dcgan_mnist_tpu.ipynb']
  for name in NOTEBOOKS:
    path = os.path.join(COLAB, name)
    assert os.path.getsize(path) < 1_000_000
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == 'code']
    assert all(not c.outputs and c.execution_count is None for c in code), name
    assert nb.cells[0].cell_type == 'markdown' and 'JAXGAN_REPO' in code[0].source, name
    assert sum('parameters' in c.metadata.get('tags', []) for c in code) == 1, name


def test_bilinear_dynamics(tmp_path):
  result = execute('01_bilinear_dynamics.ipynb', tmp_path, num_devices=2, min_images=3)
  lr, radius, rate = result['lr'], result['spectral_radius'], result['measured_rate']
  # Closed forms (jaxgan.dynamics.simulate's docstring) and the library's own numbers.
  assert radius['simultaneous'] == pytest.approx(math.sqrt(1 + lr**2), abs=1e-12)
  assert radius['alternating'] == pytest.approx(1.0, abs=1e-12)
  assert radius['extragradient'] == pytest.approx(math.sqrt(1 - lr**2 + lr**4), abs=1e-12)
  gamma = dynamics.DEFAULT_HYPER['consensus']['gamma']
  assert radius['consensus'] == pytest.approx(math.sqrt((1 - lr * gamma)**2 + lr**2), abs=1e-12)
  for method in dynamics.METHODS:
    hyper = dynamics.DEFAULT_HYPER.get(method, {})
    assert radius[method] == pytest.approx(dynamics.spectral_radius(method, lr=lr, **hyper))
  # Scaled rotations shrink or grow the norm by exactly the radius each step.
  for method in ('simultaneous', 'extragradient', 'consensus'):
    assert rate[method] == pytest.approx(radius[method], abs=1e-5), method
  assert rate['alternating'] == pytest.approx(1.0, abs=2e-3)  # an ellipse, not a circle
  assert rate['optimistic'] < 1 and rate['negative_momentum'] < 1
  # Dirac-GAN: eigenvalues +-i/2 without R1; -gamma/2 +- sqrt(gamma^2/4 - 1/4) with it.
  plain, r1 = (np.sort_complex([complex(*e) for e in ev])
                for ev in result['dirac_eigenvalues'].values())
  np.testing.assert_allclose(plain, [-0.5j, 0.5j], atol=1e-6)
  g = result['r1_gamma']
  im = math.sqrt(1 / 4 - g**2 / 4)
  np.testing.assert_allclose(r1, [-g / 2 - im * 1j, -g / 2 + im * 1j], atol=1e-6)
  [plain_norm, r1_norm] = result['dirac_final_norm'].values()
  assert r1_norm < 0.01 < 0.1 < plain_norm
  # The data-parallel step on 2 devices follows the single-device trajectory.
  assert result['dirac_parallel_max_abs_diff'] < 1e-5


def _coverage(samples, centers, std):
  """Modes with a sample within 3 std of their centre: the PacGAN count, written out again."""
  covered = set()
  for point in samples:
    distances = np.sqrt(((centers - point) ** 2).sum(axis=1))
    if distances.min() < 3 * std:
      covered.add(int(distances.argmin()))
  return len(covered)


@pytest.mark.slow  # 36 s on 2 cores; test_bilinear_dynamics runs a notebook in the default run.
def test_gan_1d_and_mode_collapse(tmp_path):
  result = execute('02_gan_1d_and_mode_collapse.ipynb', tmp_path, num_devices=1,
                   min_images=5)
  g1 = result['gaussian_1d']
  assert g1['snapshot_steps'] == [0, *range(g1['steps'] // 5, g1['steps'] + 1, g1['steps'] // 5)]
  # Training moves the generated distribution towards N(1, 1).
  assert abs(g1['mean'] - 1) < abs(g1['initial_mean'] - 1)
  assert abs(g1['mean'] - 1) < 0.5
  ring = result['ring']
  assert ring['samples'].startswith(str(tmp_path))
  samples = np.load(ring['samples'])
  centers = np.asarray(data.ring_centers())
  assert set(samples) == set(ring['coverage']) == {'vanilla', 'r1'}
  curves = ring['modes_over_training']
  for curve in curves.values():
    assert [step for step, _ in curve] == list(range(0, ring['steps'] + 1, ring['steps'] // 12))
  # Step 0 is before any update: both runs start from the same seed's G and draw the same
  # latents, so they cover the same modes (R1 changes only D's loss).
  assert curves['vanilla'][0] == curves['r1'][0]
  for name, coverage in ring['coverage'].items():
    assert samples[name].shape == (2500, 2)
    # The saved samples are the ones counted last: the curve ends at their count, recounted here.
    assert curves[name][-1][1] == coverage['modes'] == _coverage(samples[name], centers,
                                                                 ring['std'])
    distances = np.sqrt(((samples[name][:, None] - centers[None]) ** 2).sum(-1)).min(1)
    assert coverage['high_quality'] == pytest.approx(np.mean(distances < 3 * ring['std']))


@pytest.mark.slow  # A minute on 2 cores; the notebook's code paths are the dcgan_mnist config's.
def test_dcgan_mnist(tmp_path):
  result = execute('03_dcgan_mnist_tpu.ipynb', tmp_path, num_devices=2, min_images=7)
  assert result['workdir'].startswith(str(tmp_path))
  assert result['batch_size'] % 2 == 0
  assert result['steps'] == 2
  assert result['logged_steps'] == [1, 2]
  assert result['sample_pngs'] == ['step_1.png', 'step_2.png']
  assert result['restored_max_abs_diff'] == 0.0
  assert result['interpolation_shape'] == [40, 100]
  assert result['arithmetic_error'] < 1e-6
