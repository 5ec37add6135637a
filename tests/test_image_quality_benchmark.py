"""benchmarks/image_quality.py's training: ``train_and_evaluate`` under a CPU budget, on mock MNIST.

The budget is the driver's ``should_stop``, asked after each chunk: a budget that is never spent
trains ``num_steps`` (and the same state as ``train_and_evaluate`` with the config's own,
smaller intervals and so shorter chunks); a spent one stops at the first chunk's end.
"""

from __future__ import annotations

import importlib.util
import json
import os
import pathlib
import sys

import chex
import pytest
import tensorflow_datasets as tfds

from jaxgan import loop, train

ROOT = pathlib.Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location('image_quality_benchmark',
                                               ROOT / 'benchmarks' / 'image_quality.py')
bench = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = bench
_spec.loader.exec_module(bench)


def tiny_config(num_steps=6):
  config = bench.load_config('mlp_mnist')
  # A tiny MLP in place of the lecture's: the driver, not the model, is under test.
  config.model.name = 'mlp'
  config.model.g_hidden = config.model.d_hidden = (8,)
  config.model.output_activation = 'tanh'
  config.train.batch_size = 8
  config.train.num_samples = 4
  config.train.num_steps = num_steps
  # Chunks of one step for train_and_evaluate as configured; the benchmark's are log_every.
  config.train.log_every = 2
  config.train.sample_every = 1
  config.train.checkpoint_every = 3
  return config


def run_files(workdir):
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    logged = [json.loads(line)['step'] for line in f]
  samples = sorted(os.listdir(os.path.join(workdir, 'samples')))
  saved = sorted(int(d) for d in os.listdir(os.path.join(workdir, 'checkpoints')) if d.isdigit())
  return logged, samples, saved


def test_budget_config_acts_only_at_the_end_in_log_every_chunks():
  config = tiny_config(num_steps=7)
  config.train.eval_every = 3
  budget = bench.budget_config(config)
  t = budget.train
  assert (t.sample_every, t.checkpoint_every, t.eval_every) == (8, 8, 0)
  assert loop.chunk_length(budget) == 2 and loop.chunk_length(config) == 1
  assert loop.chunk_ends(0, 7, loop.chunk_length(budget))[-1] == (6, 1)
  assert (config.train.sample_every, config.train.eval_every) == (1, 3)  # The input is kept.


def test_a_run_to_resume_is_refused(tmp_path):
  (tmp_path / 'metrics.jsonl').write_text('')
  with pytest.raises(ValueError, match='would resume'):
    bench.train_for_budget(tiny_config(), 1e9, workdir=str(tmp_path))


def test_spent_budget_stops_at_the_first_chunk_end(monkeypatch):
  made, mkdtemp = [], bench.tempfile.mkdtemp

  def recording_mkdtemp(*args, **kwargs):
    path = mkdtemp(*args, **kwargs)
    if kwargs.get('prefix') == 'image_quality_':
      made.append(path)
    return path

  monkeypatch.setattr(bench.tempfile, 'mkdtemp', recording_mkdtemp)
  with tfds.testing.mock_data(num_examples=24):
    _, state, steps, wall_s, cpu_s = bench.train_for_budget(tiny_config(), 0.0)
  assert steps == int(state.step) == 2  # The first chunk: log_every steps, not 1 or 6.
  assert wall_s > 0 and cpu_s > 0
  assert len(made) == 1 and not os.path.exists(made[0])  # The temporary workdir is gone.


@pytest.mark.slow
def test_unspent_budget_trains_num_steps_like_train_and_evaluate(tmp_path):
  config = tiny_config()
  with tfds.testing.mock_data(num_examples=24):
    _, state, steps, _, _ = bench.train_for_budget(config, 1e9, workdir=str(tmp_path / 'bench'))
    expected = train.train_and_evaluate(config, str(tmp_path / 'direct'))
  assert steps == 6
  # Logged every chunk; sampled and checkpointed once, at the end.
  assert run_files(tmp_path / 'bench') == ([2, 4, 6], ['step_6.png'], [6])
  assert run_files(tmp_path / 'direct')[1:] == ([f'step_{i}.png' for i in range(1, 7)], [3, 6])
  chex.assert_trees_all_equal(state, expected)
