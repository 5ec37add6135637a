"""Writes the notebooks of ``colab/`` (without outputs): ``python colab/_build.py``.

The ``.ipynb`` files are what is committed and tested (``tests/test_notebooks.py``); this script
is their source, so that the cells shared by every notebook (install, parameters, backend) stay
identical. Edit here, run it, commit both.
"""

from __future__ import annotations

import os

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = os.path.dirname(os.path.abspath(__file__))


def md(text: str):
  return ('markdown', text.strip('\n'), ())


def code(text: str, *tags: str):
  return ('code', text.strip('\n'), tags)


# ------------------------------------------------------------------------------------------------
# Cells every notebook starts with (after its introduction).

INSTALL = code(r'''
# Install jaxgan, unless it already imports (a local checkout, a test run, a second run of this
# cell). JAXGAN_REPO is a PLACEHOLDER: on Colab, set it to the git URL of the jaxgan repository
# (replace <org>), or set the environment variable JAXGAN_REPO to a URL or a local checkout.
# By default it is the checkout this notebook sits in, when there is one.
import importlib.util
import os
import subprocess
import sys


def is_checkout(path):
  """A jaxgan source tree: the package and its configs/."""
  return (os.path.isfile(os.path.join(path, 'jaxgan', '__init__.py'))
          and os.path.isdir(os.path.join(path, 'configs')))


LOCAL_CHECKOUT = next((os.path.abspath(p) for p in ('..', '.') if is_checkout(p)), None)
JAXGAN_REPO = (os.environ.get('JAXGAN_REPO') or LOCAL_CHECKOUT
               or 'https://github.com/<org>/jaxgan')  # PLACEHOLDER: the repository's URL

try:
  import jaxgan
  installed_from = os.path.dirname(os.path.dirname(os.path.abspath(jaxgan.__file__)))
except ImportError:
  jaxgan, installed_from = None, None

# The configs/ directory is not part of the package: use a checkout, cloning one if needed.
REPO = next((os.path.abspath(p) for p in (JAXGAN_REPO, installed_from)
             if p and is_checkout(p)), None)
if REPO is None:
  if '<org>' in JAXGAN_REPO:
    raise ValueError(f'JAXGAN_REPO={JAXGAN_REPO!r} is a placeholder: set it to the git URL '
                     'of the jaxgan repository')
  REPO = os.path.abspath('jaxgan-src')
  if not is_checkout(REPO):
    subprocess.run(['git', 'clone', '--quiet', '--depth=1', JAXGAN_REPO, REPO], check=True)
if jaxgan is None:
  # If pip replaces a preinstalled jax here, restart the runtime and run the notebook again.
  subprocess.run([sys.executable, '-m', 'pip', 'install', '--quiet', REPO], check=True)
  import jaxgan


def load_config(name):
  """``configs/<name>.py`` of the checkout -> its ``get_config()``."""
  spec = importlib.util.spec_from_file_location(
      f'jaxgan_configs.{name}', os.path.join(REPO, 'configs', f'{name}.py'))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config()


print(f'jaxgan {jaxgan.__version__} from {os.path.dirname(jaxgan.__file__)}')
''')

PARAMETERS = code(r'''
# Parameters (papermill: this cell is tagged "parameters"). QUICK shrinks every run so the whole
# notebook executes on a CPU in well under a minute; the tests set JAXGAN_QUICK=1.
QUICK = os.environ.get('JAXGAN_QUICK', '0') == '1'
''', 'parameters')

BACKEND = code(r'''
# The backend and its devices. jaxgan's data-parallel step keeps one copy of the state on every
# device, splits each batch between them and averages the gradients ('pmap' or 'shard_map');
# with one device there is nothing to split ('none'). Batch sizes must divide evenly.
import jax

BACKEND = jax.default_backend()  # 'tpu', 'gpu' or 'cpu'
NUM_DEVICES = jax.local_device_count()
PARALLEL = 'shard_map' if NUM_DEVICES > 1 else 'none'  # 'pmap' works as well
AXIS_NAME = None if PARALLEL == 'none' else jaxgan.train.AXIS_NAME


def per_device(batch_size):
  """``batch_size`` rounded up to a multiple of the number of devices."""
  return -(-batch_size // NUM_DEVICES) * NUM_DEVICES


print(f'{BACKEND}: {NUM_DEVICES} x {jax.local_devices()[0].device_kind}, '
      f'parallel={PARALLEL!r}, QUICK={QUICK}')
''')

FIGURES = code(r'''
# Figures are shown as PNG images. jaxgan draws with matplotlib's Agg backend (files, no screen),
# so figures are not displayed by themselves; this works the same in Colab, Jupyter and tests.
import io

import matplotlib.pyplot as plt
from IPython.display import Image, display


def figure_png(fig):
  """The figure as an image to ``display`` (or to update a live display with)."""
  buffer = io.BytesIO()
  fig.savefig(buffer, format='png', dpi=80, bbox_inches='tight')
  return Image(data=buffer.getvalue())


def show_figure(fig):
  display(figure_png(fig))
  plt.close(fig)
''')

RESULT_NOTE = md('''
The last cell prints the numbers this run produced as JSON (the tests read them).
''')


# ------------------------------------------------------------------------------------------------
# 01: the bilinear game and the Dirac-GAN.

NB01 = [
    md(r'''
# Why GAN training goes round in circles: the $x \cdot y$ game and the Dirac-GAN

A GAN is not one model minimizing one loss: two players pull the same number in opposite
directions. The smallest game that shows what can go wrong is $\min_x \max_y \; x y$. The
generator owns $x$ and wants $xy$ small, the discriminator owns $y$ and wants it large, and the
only point where neither wants to move is $(0, 0)$. Follow the signs: with $x, y > 0$ the
discriminator raises $y$ and the generator lowers $x$; once $x < 0$ the discriminator turns round
and lowers $y$; and so on through the four quadrants, back to where it started. Each player's
best move keeps pushing the other one round the equilibrium, so plain gradient play circles it
instead of settling there, the "stable orbit" of the lecture notes.

In this notebook you will see:

* **phase portraits** of six update rules on this game (`jaxgan.dynamics.simulate`): updating
  both players at once spirals *outwards*, alternating them (D first, then G, as GANs are
  usually trained) circles forever, and extragradient, optimistic, consensus and negative
  momentum spiral *inwards*;
* the **spectral radius** of each rule's one-step map, the number that predicts all of this
  (above 1: out, exactly 1: round, below 1: in), checked against the simulated runs and swept
  over step sizes;
* the **Dirac-GAN**: a generator that is a single point $\theta$, a linear discriminator
  $\psi \cdot v$ and data at 0, the same rotation hiding in a real GAN, and how the **R1**
  penalty on the discriminator's gradient adds the damping that makes it converge;
* the Dirac-GAN trained with jaxgan's data-parallel step on **every local device**, matching the
  single-device run.

Every method runs through jaxgan's own code; simultaneous, alternating and negative momentum run
its GAN train step itself (`jaxgan.gan.make_train_step` with SGD).
'''),
    INSTALL, PARAMETERS, BACKEND, FIGURES,
    code(r'''
import json

import jax.numpy as jnp
import numpy as np
import optax
from IPython.display import Markdown

from jaxgan import dynamics

LR = 0.1  # step size of both players
STEPS = 150 if QUICK else 400  # steps in the phase portraits
DIRAC_STEPS = 300 if QUICK else 1000
NUM_LRS = 8 if QUICK else 25  # step sizes in the sweep
'''),
    md(r'''
## Six ways to play $x \cdot y$

Every run starts at $(1, 1)$ with step size 0.1. The grey arrows are the direction gradient play
pushes: $(-y, x)$, a pure rotation around the star at $(0, 0)$. Consensus and negative momentum
take one more hyperparameter each (`dynamics.DEFAULT_HYPER`).
'''),
    code(r'''
run = jax.jit(dynamics.simulate, static_argnames=('method', 'steps'))


def label(method):
  hyper = dynamics.DEFAULT_HYPER.get(method, {})
  return method + ''.join(f' ({k}={v:g})' for k, v in hyper.items())


trajectories = {label(m): run(m, lr=LR, steps=STEPS, **dynamics.DEFAULT_HYPER.get(m, {}))
                for m in dynamics.METHODS}
fig = dynamics.plot_trajectories(trajectories, title=f'min_x max_y x*y, lr={LR}, {STEPS} steps')
show_figure(fig)
'''),
    md(r'''
## The spectral radius predicts it

On this game every rule is linear: one step multiplies the state by a fixed matrix $M$ (for
optimistic and negative momentum the state also holds the previous point). After $T$ steps the
distance to the equilibrium scales like $\rho(M)^T$, with $\rho$ the largest eigenvalue modulus.
The table compares $\rho$ (`dynamics.spectral_radius`) with the rate measured on the runs above,
$(\lVert z_T \rVert / \lVert z_0 \rVert)^{1/T}$.
'''),
    code(r'''
radii, rates = {}, {}
rows = ['| method | spectral radius | measured rate | verdict |', '| --- | ---: | ---: | --- |']
for method in dynamics.METHODS:
  z = np.asarray(trajectories[label(method)], np.float64)
  radii[method] = dynamics.spectral_radius(method, lr=LR, **dynamics.DEFAULT_HYPER.get(method, {}))
  rates[method] = float(np.exp(np.log(np.linalg.norm(z[-1]) / np.linalg.norm(z[0])) / STEPS))
  verdict = ('diverges' if radii[method] > 1 + 1e-9
             else 'orbits' if radii[method] > 1 - 1e-9 else 'converges')
  rows.append(f'| {label(method)} | {radii[method]:.6f} | {rates[method]:.6f} | {verdict} |')
display(Markdown('\n'.join(rows)))
'''),
    md(r'''
Now sweep the step size. `simulate` is a pure function, so `jax.vmap` runs one method at every
step size in one compiled call; the dots are measured rates, the lines spectral radii. Only the
rules below the dashed line converge, and only for some step sizes.
'''),
    code(r'''
lrs = np.linspace(0.02, 0.5, NUM_LRS)
fig, ax = plt.subplots(figsize=(7, 4))
for i, method in enumerate(dynamics.METHODS):
  hyper = dynamics.DEFAULT_HYPER.get(method, {})
  finals = jax.jit(jax.vmap(lambda lr, m=method, h=hyper: dynamics.simulate(
      m, lr=lr, steps=STEPS, **h)[-1]))(jnp.asarray(lrs, jnp.float32))
  measured = np.exp(np.log(np.linalg.norm(np.asarray(finals), axis=-1) / np.sqrt(2)) / STEPS)
  ax.plot(lrs, [dynamics.spectral_radius(method, lr=lr, **hyper) for lr in lrs], color=f'C{i}',
          label=label(method))
  ax.plot(lrs, measured, 'o', color=f'C{i}', ms=3)
ax.axhline(1.0, color='k', ls='--', lw=0.8)
ax.set_xlabel('step size')
ax.set_ylabel('spectral radius (lines), measured rate (dots)')
ax.legend(fontsize=7)
show_figure(fig)
'''),
    md(r'''
## The Dirac-GAN: the same rotation inside a GAN

Mescheder et al. (arXiv:1801.04406) strip a GAN down to two numbers: the generator always
outputs $\theta$, the discriminator's logit is $\psi \cdot v$, and the data is a point mass at 0.
Training it with jaxgan's losses and train step (`dynamics.simulate_dirac_gan`), the
non-saturating GAN circles $(0, 0)$ again. Far out it loses a little energy each turn and creeps
inwards, but at the equilibrium its field has the purely imaginary eigenvalues $\pm i/2$: the
closer it gets, the weaker the pull, and it never converges at a steady rate. The R1 penalty,
$\frac{\gamma}{2}$ times the squared gradient of D on real data, adds $-\gamma$ to the Jacobian
and moves the eigenvalues to $-\gamma/2 \pm \sqrt{\gamma^2/4 - 1/4}$: a damped spiral that
converges.
'''),
    code(r'''
GAMMA = 0.5
variants = {'non-saturating': 0.0, f'non-saturating + R1 (gamma={GAMMA})': GAMMA}
dirac = {name: dynamics.simulate_dirac_gan('non_saturating', lr=LR, steps=DIRAC_STEPS,
                                           r1_gamma=gamma) for name, gamma in variants.items()}
fields = {name: dynamics.dirac_gan_vector_field('non_saturating', r1_gamma=gamma)
          for name, gamma in variants.items()}
fig = dynamics.plot_trajectories(dirac, vector_field=fields, axis_labels=('theta', 'psi'),
                                 title=f'Dirac-GAN, alternating SGD, lr={LR}')
show_figure(fig)
eigenvalues = {name: np.linalg.eigvals(dynamics.dirac_gan_field_jacobian(
    'non_saturating', r1_gamma=gamma)) for name, gamma in variants.items()}
for name, ev in eigenvalues.items():
  print(f'{name:32s} eigenvalues at (0, 0): {np.round(ev, 4)}')
'''),
    md(r'''
## The same Dirac-GAN on every device

jaxgan's train step does not know about devices: built with an `axis_name`, it averages
gradients across them, and `jaxgan.train.parallelize` places it on all local devices. Here a
batch of real points (all at 0) is split across the devices and the R1 run above is repeated
step by step; the trajectories agree, because the losses are means over the batch.
'''),
    code(r'''
sgd = optax.sgd(LR)
step = jaxgan.gan.make_train_step(
    generator=dynamics.DiracGenerator(), discriminator=dynamics.LinearDiscriminator(),
    g_optimizer=sgd, d_optimizer=sgd, latent_dim=1, r1_gamma=GAMMA, axis_name=AXIS_NAME)
dp = jaxgan.parallelize(step, PARALLEL)
state = jaxgan.train.init_state(
    jax.random.PRNGKey(0), generator=dynamics.DiracGenerator(),
    discriminator=dynamics.LinearDiscriminator(), g_optimizer=sgd, d_optimizer=sgd, latent_dim=1,
    data_shape=(1,))
state = state.replace(g_params={'theta': jnp.array(1.0)}, d_params={'psi': jnp.array(1.0)})
real = dp.put_batch({'x': np.zeros((per_device(8), 1), np.float32)})  # the data: all at 0
dp_state, path = dp.put_state(state), [(1.0, 1.0)]
for _ in range(DIRAC_STEPS):
  dp_state, _ = dp.step(dp_state, real, jax.random.PRNGKey(0))
  s = dp.get_state(dp_state)
  path.append((float(s.g_params['theta']), float(s.d_params['psi'])))
single_device = np.asarray(dirac[f'non-saturating + R1 (gamma={GAMMA})'])
parallel_max_abs_diff = float(np.max(np.abs(np.asarray(path) - single_device)))
print(f'{NUM_DEVICES} device(s), parallel={PARALLEL!r}: final (theta, psi) = {path[-1]}, '
      f'largest difference from one device {parallel_max_abs_diff:.2e}')
'''),
    RESULT_NOTE,
    code(r'''
RESULT = {
    'backend': BACKEND, 'num_devices': NUM_DEVICES, 'parallel': PARALLEL, 'lr': LR,
    'steps': STEPS, 'spectral_radius': radii, 'measured_rate': rates,
    'dirac_steps': DIRAC_STEPS, 'r1_gamma': GAMMA,
    'dirac_final_norm': {name: float(np.linalg.norm(np.asarray(z[-1])))
                         for name, z in dirac.items()},
    'dirac_eigenvalues': {name: [[float(e.real), float(e.imag)] for e in ev]
                          for name, ev in eigenvalues.items()},
    'dirac_parallel_max_abs_diff': parallel_max_abs_diff,
}
print(json.dumps(RESULT))
'''),
]


# ------------------------------------------------------------------------------------------------
# 02: the 1-D Gaussian, then mode collapse on the ring.

NB02 = [
    md(r'''
# A GAN learns a bell curve, and then forgets most of a ring

**Part 1** is Example 1 of the lecture notes. The generator gets one number drawn uniformly from
$[-1, 1]$ and has to bend it into samples of a Gaussian with mean 1 and standard deviation 1.
Both networks are tiny: G is 1 → 5 → 5 → 1 with tanh, D is 1 → 10 → 10 → 1 with tanh
(`configs/gaussian_1d.py`). You will watch the histogram of 10,000 generated points move, every
couple of thousand steps, from wherever the untrained generator puts them onto the target
curve: in the lecture's words not perfect, but close. Then the training curves: at the GAN
equilibrium D can no longer tell real from fake and outputs about 1/2 on both.

**Part 2** is mode collapse. Suppose the discriminator were frozen: the generator's best reply
would be to send *every* sample to the single point D likes most. D then learns that point is
fake and the generator jumps to another one; diversity is lost along the way. On a ring of eight
tight Gaussians (`configs/mog_ring.py`) you will see a plain GAN pile its samples onto one or two
modes and hop between them for a long time, and the R1 penalty spread them over all eight. We
count the modes covered the way the PacGAN paper does: a mode counts when generated points land
within three standard deviations of its centre.

Both parts run the same short training loop, written out below: jaxgan's pure train step,
placed on every device by `jaxgan.train.parallelize`, called once per batch, with a look at the
generator every few steps.
'''),
    INSTALL, PARAMETERS, BACKEND, FIGURES,
    code(r'''
import json

import numpy as np

from jaxgan import data, experiment, faults, loop, parallel, train

STEPS_1D = 500 if QUICK else 10_000
SNAPSHOTS = 5  # histograms drawn during training, after the one at step 0
NUM_SAMPLES = 10_000  # points per histogram, as in the lecture
STEPS_RING = 300 if QUICK else 3000
COUNT_EVERY = STEPS_RING // 12  # steps between two counts of the modes covered
'''),
    md(r'''
## The training loop

Everything here is jaxgan's: the models and the train step that the config names
(`build_models`, `build_train_step`: losses, penalties, optimizers, update rule), the state
(`init_state`), the data stream (`data.toy_batches`), and `parallelize`, which replicates the
state on every device and splits each batch between them. The loop only feeds batches and hands
the state to `watch` every `every` steps.
'''),
    code(r'''
def fit(config, num_steps, every, watch):
  """Trains the GAN of ``config`` for ``num_steps`` steps on all local devices.

  The driver's pieces (jaxgan.loop): ``every`` steps run as one jitted chunk, the data drawn on
  the device. Calls ``watch(step, state, metrics)`` at step 0 (``metrics`` None) and after every
  chunk (``metrics``: its last step's); returns the final state.
  """
  config.train.batch_size = per_device(config.train.batch_size)
  generator, discriminator = train.build_models(config, axis_name=AXIS_NAME)
  step = train.build_train_step(config, generator, discriminator, axis_name=AXIS_NAME)
  init_key, step_key, data_key, _ = jax.random.split(jax.random.PRNGKey(config.seed), 4)
  state = experiment.init_state(config, init_key, generator, discriminator)
  source = loop.toy_source(config.data.name, data_key,
                           config.train.batch_size * config.train.num_d_steps)
  dp = parallel.parallelize_chunk(
      loop.make_chunk(step, source.batch, axis_name=AXIS_NAME), PARALLEL)
  monitor = faults.NonFiniteMonitor('stop')  # A NaN step raises, naming the step and player.
  watch(0, state, None)
  dp_state, device_data = dp.put_state(state), dp.put_batch(source.data)
  for first, length in loop.chunk_ends(0, num_steps, every):
    dp_state, out = dp.step(dp_state, device_data, source.plan(first, length), step_key)
    monitor.check_chunk(first + 1, out['watched'])
    watch(first + length, dp.get_state(dp_state), out['last'])
  return dp.get_state(dp_state)


def sampler(config, num, seed=3):
  """A jitted ``state -> (num, *data_shape)`` samples of the generator of ``config``."""
  generator, _ = train.build_models(config)
  key = jax.random.PRNGKey(seed)
  return jax.jit(lambda state: train.sample(config, generator, state, key, num))
'''),
    md(r'''
## Part 1: N(1, 1) from U[-1, 1], trained live
'''),
    code(r'''
config_1d = load_config('gaussian_1d')
draw = sampler(config_1d, NUM_SAMPLES)
real = np.asarray(data.gaussian_1d(jax.random.PRNGKey(1), NUM_SAMPLES))[:, 0]
noise = np.asarray(train.sample_latent(jax.random.PRNGKey(2), NUM_SAMPLES, 1))[:, 0]
bins = np.linspace(-3, 5, 81)
snapshots, history = {}, []
fig, ax = plt.subplots(figsize=(6, 3.5))
live = display(figure_png(fig), display_id=True)


def watch_1d(step, state, metrics):
  if metrics is not None:
    history.append({'step': step, **{k: float(np.mean(v)) for k, v in metrics.items()}})
  if step % (STEPS_1D // SNAPSHOTS) == 0:
    snapshots[step] = np.asarray(draw(state))[:, 0]
    ax.clear()
    ax.hist(real, bins=bins, density=True, alpha=0.4, label='real: N(1, 1)')
    ax.hist(snapshots[step], bins=bins, density=True, alpha=0.6, label='generated')
    ax.set_title(f'step {step}: generated mean {snapshots[step].mean():.2f}, '
                 f'std {snapshots[step].std():.2f}')
    ax.legend(loc='upper left')
    live.update(figure_png(fig))


fit(config_1d, STEPS_1D, 50, watch_1d)
plt.close(fig)
'''),
    md(r'''
The whole story in one row: the noise the generator is fed, then its samples over time.
'''),
    code(r'''
fig, axes = plt.subplots(1, len(snapshots) + 1, figsize=(2.6 * (len(snapshots) + 1), 2.4),
                         sharey=True)
axes[0].hist(noise, bins=bins, density=True, color='0.5')
axes[0].set_title('input z ~ U[-1, 1]', fontsize=9)
for ax, (step, samples) in zip(axes[1:], snapshots.items(), strict=True):
  ax.hist(real, bins=bins, density=True, alpha=0.4)
  ax.hist(samples, bins=bins, density=True, alpha=0.6)
  ax.set_title(f'step {step}', fontsize=9)
show_figure(fig)

fig, (ax_loss, ax_d) = plt.subplots(1, 2, figsize=(10, 3))
steps = [h['step'] for h in history]
ax_loss.plot(steps, [h['d_loss'] for h in history], label='D loss')
ax_loss.plot(steps, [h['g_loss'] for h in history], label='G loss')
ax_loss.legend()
ax_d.plot(steps, [h['d_real'] for h in history], label='mean D(x)')
ax_d.plot(steps, [h['d_fake'] for h in history], label='mean D(G(z))')
ax_d.axhline(0.5, color='k', ls='--', lw=0.8)
ax_d.legend()
ax_loss.set_xlabel('step')
ax_d.set_xlabel('step')
show_figure(fig)
final_1d = snapshots[STEPS_1D]
print(f'generated: mean {final_1d.mean():.3f}, std {final_1d.std():.3f} (target 1, 1)')
'''),
    md(r'''
## Part 2: mode collapse on a ring of eight Gaussians

Both runs use `configs/mog_ring.py` with one change: a 64-dimensional Gaussian latent instead of
the config's 2-dimensional uniform one, which on this toy happens to find all eight modes early
on. The fix is the R1 penalty (arXiv:1801.04406, as in the Dirac-GAN of notebook 01): it
penalizes the discriminator's gradient on real data, so D cannot build the steep walls that
chase the generator from one mode to the next.

We picked it in a quick experiment with these settings, four seeds each, counting modes at
steps 750, 1,500, 2,250 and 3,000. The plain GAN covered 0 or 1 of the 8 modes at step 750 on
every seed, and 0 to 6 at step 1,500; it spread out over 5 to 8 only by step 3,000. R1 with
gamma = 0.1 covered 6 at step 750 and all 8 from step 1,500 on, on every seed. WGAN-GP also
reached 8, more slowly; five D steps per G step made the collapse worse (on the one seed we
tried).

A sample is *high quality* when it lies within three standard deviations (0.03) of the nearest
centre; a mode is *covered* when at least one high-quality sample lands on it.
`jaxgan.metrics.mode_coverage` counts this when your jaxgan has it; otherwise a small count
below does the same. A diffuse cloud can touch a mode by luck, so look at the share of
high-quality samples (HQ) too.
'''),
    code(r'''
try:
  from jaxgan.metrics import mode_coverage
except ImportError:  # jaxgan versions without jaxgan.metrics.mode_coverage
  mode_coverage = None

CENTERS, STD = np.asarray(data.ring_centers()), 0.01


def coverage(samples):
  """(modes covered, fraction of high-quality samples) of ``samples`` on the ring."""
  if mode_coverage is not None:
    scores = mode_coverage(samples, CENTERS, STD)
    return int(scores['modes']), float(scores['high_quality'])
  distance = np.linalg.norm(samples[:, None, :] - CENTERS[None], axis=-1)  # (N, 8)
  high_quality = distance.min(axis=1) < 3 * STD
  return len(np.unique(distance.argmin(axis=1)[high_quality])), float(high_quality.mean())


def ring_config(**loss):
  config = load_config('mog_ring')
  config.model.latent_distribution = 'normal'
  config.model.latent_dim = 64
  config.loss.update(loss)
  return config


RUNS = {'vanilla': ring_config(), 'R1 (gamma=0.1)': ring_config(r1_gamma=0.1)}
SCATTER_AT = [STEPS_RING // 4 * i for i in range(1, 5)]
curves, scatters, ring_samples = {}, {}, {}
for name, config_ring in RUNS.items():
  draw_ring = sampler(config_ring, 2500)
  curves[name], scatters[name] = [], {}

  def watch_ring(step, state, metrics, name=name, draw_ring=draw_ring):
    samples = np.asarray(draw_ring(state))
    curves[name].append((step, *coverage(samples)))
    if step in SCATTER_AT:
      scatters[name][step] = samples

  fit(config_ring, STEPS_RING, COUNT_EVERY, watch_ring)
  ring_samples[name] = scatters[name][STEPS_RING]
  print(f'{name}: modes covered every {COUNT_EVERY} steps: {[c[1] for c in curves[name]]}')
'''),
    md(r'''
Modes covered over training, and where the samples are at four points (crosses: the centres).
'''),
    code(r'''
fig, ax = plt.subplots(figsize=(6, 3))
for name, curve in curves.items():
  ax.plot([c[0] for c in curve], [c[1] for c in curve], 'o-', ms=3, label=name)
ax.set_xlabel('step')
ax.set_ylabel('modes covered (of 8)')
ax.set_ylim(-0.3, 8.3)
ax.legend()
show_figure(fig)

fig, axes = plt.subplots(len(RUNS), len(SCATTER_AT), figsize=(2.6 * len(SCATTER_AT),
                                                              2.7 * len(RUNS)), squeeze=False)
for row, name in zip(axes, RUNS, strict=True):
  for ax, step in zip(row, SCATTER_AT, strict=True):
    samples = scatters[name][step]
    modes, high_quality = coverage(samples)
    ax.scatter(*samples.T, s=1, alpha=0.3)
    ax.scatter(*CENTERS.T, marker='x', color='k', s=20)
    ax.set(xlim=(-1.6, 1.6), ylim=(-1.6, 1.6), aspect='equal', xticks=[], yticks=[])
    ax.set_title(f'{name}, step {step}\n{modes}/8 modes, {100 * high_quality:.0f}% HQ',
                 fontsize=8)
show_figure(fig)
os.makedirs('runs', exist_ok=True)
np.savez('runs/ring_samples.npz', **{name.split()[0].lower(): s for name, s in
                                     ring_samples.items()})
'''),
    RESULT_NOTE,
    code(r'''
RESULT = {
    'backend': BACKEND, 'num_devices': NUM_DEVICES, 'parallel': PARALLEL,
    'gaussian_1d': {'steps': STEPS_1D, 'initial_mean': float(snapshots[0].mean()),
                    'initial_std': float(snapshots[0].std()), 'mean': float(final_1d.mean()),
                    'std': float(final_1d.std()), 'snapshot_steps': sorted(snapshots)},
    'ring': {'steps': STEPS_RING, 'std': STD, 'used_jaxgan_metrics': mode_coverage is not None,
             'samples': os.path.abspath('runs/ring_samples.npz'),
             'modes_over_training': {name.split()[0].lower(): [c[:2] for c in curve]
                                     for name, curve in curves.items()},
             'coverage': {name.split()[0].lower(): dict(zip(('modes', 'high_quality'),
                                                            curve[-1][1:], strict=True))
                          for name, curve in curves.items()}},
}
print(json.dumps(RESULT))
'''),
]


# ------------------------------------------------------------------------------------------------
# 03: DCGAN on MNIST over all devices; latent walks; a conditional GAN.

NB03 = [
    md(r'''
# DCGAN on MNIST on every TPU core: samples, latent walks and a class grid

DCGAN (arXiv:1511.06434) is the recipe that made convolutional GANs train reliably: the
generator grows a 7×7 map into a 28×28 digit with transposed ("fractionally strided")
convolutions, batch norm keeps each layer's responses centred, ReLU in the generator and
LeakyReLU in the discriminator, no pooling and no dense hidden layers, and Adam with learning
rate 2e-4 and $\beta_1 = 0.5$ (0.9 made training oscillate). `configs/dcgan_mnist.py` holds
these choices.

You will see:

* training with `jaxgan.train_and_evaluate` on **every local device**: on a Colab TPU the batch
  of 64 is split over its cores, gradients are averaged and batch-norm statistics synchronized
  across them; the run goes in chunks, and after each chunk the sample grids written during
  training appear (`workdir/samples/step_<N>.png`);
* a **walk through the latent space**: points on the path between two latent vectors,
  $m z_1 + (1 - m) z_2$. If the digits morph smoothly, the generator has learned a continuous
  map rather than memorized a few training images;
* **latent arithmetic**: averages of latent vectors behave like concepts, in the spirit of
  "man with glasses − man + woman = woman with glasses";
* a **conditional GAN**, which takes the digit's label as an extra input, drawing each class on
  request: one row per digit.

On Colab choose *Runtime → Change runtime type → TPU* (a GPU or the CPU work too, only slower).
'''),
    INSTALL,
    code(r'''
# Parameters (papermill: this cell is tagged "parameters"). QUICK shrinks every run so the whole
# notebook executes on a CPU in well under a minute, on TFDS mock data (no download); the tests
# set JAXGAN_QUICK=1. DATA_DIR: where TFDS finds (or downloads) MNIST; None is TFDS's default.
# NUM_STEPS: generator updates (recognizable digits after about 2,000).
QUICK = os.environ.get('JAXGAN_QUICK', '0') == '1'
DATA_DIR = os.environ.get('JAXGAN_DATA_DIR') or None
NUM_STEPS = 2 if QUICK else 3000
''', 'parameters'),
    BACKEND, FIGURES,
    code(r'''
import contextlib
import glob
import json

import jax.numpy as jnp
import numpy as np
import tensorflow_datasets as tfds
from IPython.display import Markdown

from jaxgan import checkpoint, train, visualize

WORKDIR = os.path.abspath('runs/dcgan_mnist')
config = load_config('dcgan_mnist')
config.train.parallel = PARALLEL
config.data.download = True  # Colab: TFDS downloads MNIST (about 11 MB) on first use
config.data.data_dir = DATA_DIR
if QUICK:  # a small DCGAN on random "MNIST" images, in one chunk
  config.model.features = 8
  config.train.batch_size = per_device(16)
  CHUNK = NUM_STEPS
else:  # three chunks
  config.train.batch_size = per_device(config.train.batch_size)
  CHUNK = -(-NUM_STEPS // 3)
config.train.sample_every = config.train.checkpoint_every = max(CHUNK // 2, 1)
config.train.log_every = max(CHUNK // 10, 1)


def data_source():
  """Real MNIST, or in QUICK mode TFDS's mock data (random images, nothing downloaded)."""
  return tfds.testing.mock_data(num_examples=64) if QUICK else contextlib.nullcontext()
'''),
    md(r'''
## Training, chunk by chunk

Each call to `train_and_evaluate` resumes from the latest checkpoint in the workdir and trains
until `config.train.num_steps`; in between we look at the sample grids it wrote.
'''),
    code(r'''
shown = set()
for target in range(CHUNK, NUM_STEPS + CHUNK, CHUNK):
  target = min(target, NUM_STEPS)
  config.train.num_steps = target
  with data_source():
    final_state = jaxgan.train_and_evaluate(config, WORKDIR)
  with open(os.path.join(WORKDIR, 'metrics.jsonl')) as f:
    last = json.loads(f.readlines()[-1])
  print(f"step {last['step']}: D loss {last['d_loss']:.3f}, G loss {last['g_loss']:.3f}, "
        f"{last['steps_per_sec']:.1f} steps/s on {NUM_DEVICES} {BACKEND} device(s)")
  pngs = sorted(glob.glob(os.path.join(WORKDIR, 'samples', 'step_*.png')),
                key=lambda p: int(os.path.basename(p)[5:-4]))
  for png in pngs:
    if png not in shown:
      shown.add(png)
      display(Markdown(f'`{os.path.basename(png)}`'), Image(filename=png, width=240))
'''),
    code(r'''
with open(os.path.join(WORKDIR, 'metrics.jsonl')) as f:
  metrics_log = [json.loads(line) for line in f]
fig, ax = plt.subplots(figsize=(6, 3))
ax.plot([m['step'] for m in metrics_log], [m['d_loss'] for m in metrics_log], '.-', label='D')
ax.plot([m['step'] for m in metrics_log], [m['g_loss'] for m in metrics_log], '.-', label='G')
ax.set_xlabel('step')
ax.set_ylabel('loss')
ax.legend()
show_figure(fig)
'''),
    md(r'''
## The trained generator, restored from its checkpoint

`jaxgan.train.build_models` rebuilds the networks from the config and
`jaxgan.checkpoint.restore_latest` loads the latest checkpoint into the structure of a state
initialized from the config (`jax.eval_shape`: its shapes and dtypes, nothing computed).
Sampling runs batch norm in inference mode, on one device.
'''),
    code(r'''
generator, discriminator = train.build_models(config)
g_optimizer, d_optimizer = train.optimizers(config)
# eval_shape: the state's structure, shapes and dtypes, traced but neither compiled nor computed.
template = jax.eval_shape(lambda key: train.init_state(
    key, generator=generator, discriminator=discriminator, g_optimizer=g_optimizer,
    d_optimizer=d_optimizer, latent_dim=config.model.latent_dim,
    data_shape=jaxgan.data.data_shape(config.data.name)), jax.random.PRNGKey(0))
manager = checkpoint.manager(WORKDIR, keep=config.train.keep_checkpoints)
state = checkpoint.restore_latest(manager, template)
manager.close()
LATENT_DIM, LATENT = config.model.latent_dim, config.model.latent_distribution


@jax.jit
def _generate(state, z):
  return train.apply_model(generator, state.g_params, state.g_batch_stats, z, train=False)[0]


def generate(z, state=state):
  """Images ``(N, 28, 28, 1)`` in [-1, 1] for latents ``z`` of shape ``(N, LATENT_DIM)``."""
  return np.asarray(_generate(state, jnp.asarray(z)))


def show_images(images, columns, title=None, width=6):
  grid = visualize.image_grid(images, columns=columns)
  rows = -(-len(images) // columns)
  fig, ax = plt.subplots(figsize=(width, width * rows / columns))
  ax.imshow(grid[..., 0], cmap='gray', vmin=0, vmax=1)
  ax.axis('off')
  if title:
    ax.set_title(title)
  show_figure(fig)


z_check = train.sample_latent(jax.random.PRNGKey(10), 8, LATENT_DIM, LATENT)
restored_max_abs_diff = float(np.max(np.abs(generate(z_check) - generate(z_check, final_state))))
print(f'restored step {int(state.step)}; samples differ from the trained state by at most '
      f'{restored_max_abs_diff:.1e}')
show_images(generate(train.sample_latent(jax.random.PRNGKey(11), 64, LATENT_DIM, LATENT)), 8,
     f'samples after {int(state.step)} steps')
'''),
    md(r'''
## Walking on the manifold

Each row starts at one random latent vector and ends at another. `jaxgan.latent` (when your
jaxgan has it) walks along the sphere (*slerp*), where Gaussian latents of 100 dimensions
concentrate; without it this cell draws the straight line $m z_1 + (1 - m) z_2$ of the lecture
notes. Smooth transitions mean nearby latents give nearby digits.
'''),
    code(r'''
try:
  from jaxgan import latent as latent_lib  # lerp, slerp, interpolate, latent_arithmetic
except ImportError:  # jaxgan versions without jaxgan.latent
  latent_lib = None

ROWS, COLUMNS = 4, 10
ends = train.sample_latent(jax.random.PRNGKey(12), 2 * ROWS, LATENT_DIM, LATENT)
ends = ends.reshape((ROWS, 2, LATENT_DIM))
if latent_lib is not None:
  path = jax.vmap(lambda e: latent_lib.interpolate(e[0], e[1], COLUMNS, method='slerp'))(ends)
else:
  m = jnp.linspace(0.0, 1.0, COLUMNS)[None, :, None]
  path = (1 - m) * ends[:, :1] + m * ends[:, 1:]
path = path.reshape((ROWS * COLUMNS, LATENT_DIM))
show_images(generate(path), COLUMNS, 'slerp' if latent_lib is not None else 'linear interpolation')
'''),
    md(r'''
## Latent arithmetic

Below are 24 numbered samples. Pick three groups of them by eye, for example A = thick digits
leaning right, B = thin digits leaning right, C = thin digits leaning left, and edit the indices.
DCGAN averages three latents per concept, because single vectors give unstable results; the
last image is generated from $\bar z_A - \bar z_B + \bar z_C$ (thick, leaning left, if it works).
'''),
    code(r'''
pool = train.sample_latent(jax.random.PRNGKey(13), 24, LATENT_DIM, LATENT)
show_images(generate(pool), 12, 'samples 0-11 (top), 12-23 (bottom)', width=9)
A, B, C = [0, 1, 2], [3, 4, 5], [6, 7, 8]  # edit: three samples per concept
groups = [pool[jnp.array(indices)] for indices in (A, B, C)]
means = [group.mean(axis=0) for group in groups]
if latent_lib is not None:
  z_result = latent_lib.latent_arithmetic(*groups)
else:
  z_result = means[0] - means[1] + means[2]
show_images(generate(jnp.stack([*means, z_result])), 4, 'mean A, mean B, mean C, A - B + C',
            width=5)
arithmetic_error = float(jnp.max(jnp.abs(z_result - (means[0] - means[1] + means[2]))))
'''),
    md(r'''
## A conditional GAN: draw me a 7

A conditional GAN (Mirza and Osindero, arXiv:1411.1784) gives both players the label: the
generator gets it next to $z$, the discriminator judges whether an image is a real example *of
that class*. Then you can ask for any digit. In the grid each row is one class and each column
one latent vector, so a column shows every digit in the same "handwriting".

This needs `configs/cgan_mnist.py` and `jaxgan.sample`; if your jaxgan does not have them yet,
the cell says so and skips.
'''),
    code(r'''
try:
  from jaxgan import sample as sample_lib  # load_run, class_grid_images, write
except ImportError:  # jaxgan versions without jaxgan.sample
  sample_lib = None
HAS_CONDITIONAL = sample_lib is not None and os.path.exists(
    os.path.join(REPO, 'configs', 'cgan_mnist.py'))
if HAS_CONDITIONAL:
  CGAN_WORKDIR = os.path.abspath('runs/cgan_mnist')
  config_cgan = load_config('cgan_mnist')
  config_cgan.train.parallel = PARALLEL
  config_cgan.data.download = True
  config_cgan.data.data_dir = DATA_DIR
  if QUICK:
    config_cgan.model.features = 8
    config_cgan.train.batch_size = per_device(16)
    config_cgan.train.num_steps = 2
  else:
    config_cgan.train.batch_size = per_device(config_cgan.train.batch_size)
  config_cgan.train.sample_every = config_cgan.train.checkpoint_every = (
      config_cgan.train.num_steps)
  if 'eval_every' in config_cgan.train:  # sample-quality evaluation: not needed here
    config_cgan.train.eval_every = 0
  with data_source():
    jaxgan.train_and_evaluate(config_cgan, CGAN_WORKDIR)
  class_grid = sample_lib.write(CGAN_WORKDIR, 'class_grid', columns=10)
  display(Image(filename=class_grid, width=400))
else:
  display(Markdown('*This jaxgan has no conditional models (`configs/cgan_mnist.py`, '
                   '`jaxgan.sample`) yet: skipped.*'))
'''),
    RESULT_NOTE,
    code(r'''
RESULT = {
    'backend': BACKEND, 'num_devices': NUM_DEVICES, 'parallel': PARALLEL,
    'batch_size': config.train.batch_size, 'steps': int(state.step),
    'logged_steps': [m['step'] for m in metrics_log],
    'sample_pngs': sorted(os.path.basename(p) for p in shown),
    'restored_max_abs_diff': restored_max_abs_diff,
    'interpolation_shape': list(path.shape), 'used_jaxgan_latent': latent_lib is not None,
    'arithmetic_error': arithmetic_error, 'conditional': HAS_CONDITIONAL,
    'workdir': WORKDIR,
}
print(json.dumps(RESULT))
'''),
]

NOTEBOOKS = {
    '01_bilinear_dynamics.ipynb': (NB01, None),
    '02_gan_1d_and_mode_collapse.ipynb': (NB02, None),
    '03_dcgan_mnist_tpu.ipynb': (NB03, 'TPU'),
}


def build(cells, accelerator: str | None, stem: str):
  nb = new_notebook()
  for i, (kind, source, tags) in enumerate(cells):
    cell = new_markdown_cell(source) if kind == 'markdown' else new_code_cell(source)
    cell['id'] = f'{stem}-{i:02d}'  # stable ids: rebuilding changes nothing
    if tags:
      cell['metadata']['tags'] = list(tags)
    nb.cells.append(cell)
  nb.metadata['kernelspec'] = {'name': 'python3', 'display_name': 'Python 3',
                               'language': 'python'}
  nb.metadata['language_info'] = {'name': 'python'}
  nb.metadata['colab'] = {'provenance': [], 'toc_visible': True}
  if accelerator:
    nb.metadata['accelerator'] = accelerator
  nbformat.validate(nb)
  return nb


def main():
  for name, (cells, accelerator) in NOTEBOOKS.items():
    nb = build(cells, accelerator, name[:2])
    with open(os.path.join(HERE, name), 'w') as f:
      nbformat.write(nb, f)
    print(os.path.join(HERE, name))


if __name__ == '__main__':
  main()
