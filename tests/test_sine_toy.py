"""The scores of ``benchmarks/sine_toy.py`` on constructed point sets with known values."""

import importlib.util
import math
import pathlib

import numpy as np
import pytest

_spec = importlib.util.spec_from_file_location(
    'sine_toy', pathlib.Path(__file__).resolve().parents[1] / 'benchmarks' / 'sine_toy.py')
sine_toy = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sine_toy)


def test_scores_closed_forms():
  n = 1000
  x = -math.pi + 2 * math.pi * (np.arange(n) + 0.5) / n  # Exactly the quantiles of U[-pi, pi].
  on_curve = np.stack([x, np.sin(x)], -1)
  s = sine_toy.scores(on_curve)
  assert s == {'curve_distance': pytest.approx(0.0, abs=1e-12),
               'x_wasserstein': pytest.approx(0.0, abs=1e-12), 'x_outside': 0.0}
  # Shifted up by 0.25: every point 0.25 off the curve; x unchanged.
  assert sine_toy.scores(on_curve + [0.0, 0.25])['curve_distance'] == pytest.approx(0.25)
  # Everything at x = 0 (y = 0, on the curve): W1 to U[-pi, pi] is E|U| = pi / 2.
  collapsed = np.zeros((n, 2))
  s = sine_toy.scores(collapsed)
  assert s['curve_distance'] == 0.0
  assert s['x_wasserstein'] == pytest.approx(math.pi / 2, rel=1e-6)
  # A quarter of the points moved to x = 4 > pi.
  moved = on_curve.copy()
  moved[::4, 0] = 4.0
  assert sine_toy.scores(moved)['x_outside'] == 0.25
