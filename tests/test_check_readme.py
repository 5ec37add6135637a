"""benchmarks/check_readme.py: README result tables against their results files (pure Python)."""

from __future__ import annotations

import importlib.util
import json
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location('check_readme',
                                               ROOT / 'benchmarks' / 'check_readme.py')
check_readme = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = check_readme  # dataclasses look their module up there
_spec.loader.exec_module(check_readme)

parse, matches = check_readme.parse_numbers, check_readme.matches


def test_readme_numbers_come_from_their_results_files():
  report = check_readme.check_readme(ROOT / 'README.md', ROOT)
  assert not report.problems, '\n'.join(f'README.md:{f.line}: {f.message}'
                                        for f in report.problems)


def test_every_unchecked_table_and_known_mismatch_says_why():
  for reasons in (check_readme.UNCHECKED_TABLES, check_readme.KNOWN_MISMATCHES):
    assert all(isinstance(r, str) and r.strip() for r in reasons.values())


def test_the_script_runs_without_jax():
  code = ('import runpy, sys; sys.argv = ["check_readme.py"]\n'
          'try:\n'
          f'  runpy.run_path({str(ROOT / "benchmarks" / "check_readme.py")!r}, '
          'run_name="__main__")\n'
          'except SystemExit as e:\n'
          '  assert "jax" not in sys.modules, "check_readme imported jax"\n'
          '  raise\n')
  result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                          cwd=ROOT, check=False)
  assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize('text, value', [
    ('7.80', 7.8034), ('0.13', 0.1312), ('98.8 %', 0.98834), ('98.8 %', 98.834),
    ('1,173 s', 1173.2), ('1.20x', 1.1998), ('4.5×', 4.46), ('-0.5', -0.5), ('−0.5', -0.5),
    ('1.849e-20', 1.849062e-20), ('61 min', 3639.7), ('23 ms', 0.0228), ('2 h', 7300.0),
    ('1.000000', 0.9999999999999998), ('0.125', 0.125), ('884', 884.4),
])
def test_a_number_matches_the_json_value_it_rounds_from(text, value):
  assert matches(text, [value])


@pytest.mark.parametrize('text, value', [
    ('0.856', 0.8549), ('7.80', 7.806), ('-0.5', 0.5), ('1.849e-20', 1.85e-20),
    ('61', 3639.7), ('98.8', 0.98834), ('1,173', 1174.0),
])
def test_a_number_does_not_match_other_values(text, value):
  assert not matches(text, [value])


def test_mean_and_error_are_matched_one_by_one():
  numbers = parse('**7.80 ± 0.13**')
  assert [n.text for n in numbers] == ['7.80', '0.13']
  assert matches(numbers[0], [0.1312, 7.8034]) and matches(numbers[1], [0.1312, 7.8034])
  assert not matches(numbers[1], [7.8034])


def test_parse_skips_code_words_and_labels():
  assert [n.value for n in parse('`cgan_mnist_32ch_input_3000.json` 3000')] == [3000]
  assert parse('R1 PacGAN2 30k `arXiv:1606.03498`') == []
  assert [n.value for n in parse('28x28x1')] == [28, 28, 1]
  assert [(n.value, n.unit) for n in parse('1,173 s (19.6 min), 40%')] == [
      (1173, 's'), (19.6, 'min'), (40, '%')]
  assert [n.value for n in parse('1.585 ± 0.242 (2 seeds inf)')] == [1.585, 0.242, 2]


def _write(root: pathlib.Path, name: str, obj) -> None:
  (root / name).parent.mkdir(parents=True, exist_ok=True)
  (root / name).write_text(json.dumps(obj))


def test_a_marked_table_reports_each_unmatched_number(tmp_path):
  _write(tmp_path, 'r/a.json', {'best': {'fid': 11.2757, 'acc': 0.9777},
                                'other': {'fid': 7.5}, 'note': 'fid 99.9'})
  _write(tmp_path, 'r/b.json', {'fid': 3.0})
  lines = [
      'Text 1.5 outside tables is not checked.',
      '<!-- results: r/a.json r/b.json -->',
      '| run (seed 12) | FID 5 | accuracy |',
      '| --- | ---: | ---: |',
      '| `best` | 11.3 | 97.8 % |',     # matches under "best"
      '| `best` again | 7.5 | 0.978 |',  # 7.5 is another key's number: not under "best"
      '| any | 99.9 | 3.0 † |',         # 99.9 only inside a string; a paper cell
      '| paper † | 1234 | 5 |',          # a paper row
      '| file `b.json` | 7.5 | 3.0 |',    # this row names b.json: checked against it only
  ]
  findings = check_readme.check_tables(lines, tmp_path, unchecked={})
  assert [(f.line, f.key) for f in findings] == [
      (6, ('`best` again', 'FID 5', '7.5')),
      (7, ('any', 'FID 5', '99.9')),
      (9, ('file `b.json`', 'FID 5', '7.5')),
  ]


def test_tables_without_a_marker_must_be_listed(tmp_path):
  lines = ['| label | value |', '| --- | --- |', '| a | 12 |', '',
           '| word | text |', '| --- | --- |', '| a | `3` R1 |',
           '<!-- results: missing.json -->', '| x | y |', '| - | - |', '| a | 1 |']
  keys = [f.key for f in check_readme.check_tables(lines, tmp_path, unchecked={})]
  assert keys == ['label | value', 'missing:missing.json']  # 'word | text' has no number
  keys = [f.key for f in check_readme.check_tables(
      lines, tmp_path, unchecked={'label | value': 'prose', 'gone | table': 'stale'})]
  assert keys == ['missing:missing.json', 'stale-unchecked:gone | table']


def test_a_marker_must_be_right_above_a_table(tmp_path):
  _write(tmp_path, 'a.json', {'x': 1})
  lines = ['<!-- results: a.json -->', 'A paragraph.', '', '| a | b |', '| --- | --- |']
  findings = check_readme.check_tables(lines, tmp_path, unchecked={})
  assert [f.line for f in findings] == [1]


def test_commands_are_compared_with_the_recorded_command(tmp_path):
  _write(tmp_path, 'benchmarks/results/a.json',
         {'command': 'benchmarks/run.py --seeds=2 --lr=1e-3 --out=/tmp/a.json'})
  _write(tmp_path, 'benchmarks/results/b.json', {'argv': ['benchmarks/run.py', '--seeds=2']})
  _write(tmp_path, 'benchmarks/results/c.json', {'no': 'command'})
  lines = ['```bash',
           'python benchmarks/run.py --lr=1e-3 \\',
           '    --seeds=2 --out=benchmarks/results/a.json',       # same, --out differs
           'python benchmarks/run.py --out=benchmarks/results/b.json --seeds=3',
           'python benchmarks/run.py --out=benchmarks/results/c.json',
           'python benchmarks/run.py --out=benchmarks/results/gone.json',
           '```']
  findings = check_readme.check_commands(lines, tmp_path)
  assert [(f.line, f.key[1]) for f in findings] == [(4, 'benchmarks/results/b.json'),
                                                    (6, 'benchmarks/results/gone.json')]
  assert "only in README ['--seeds=3']" in findings[0].message


def test_known_mismatches_are_reported_and_must_still_occur(tmp_path):
  _write(tmp_path, 'a.json', {'x': 1.0})
  readme = tmp_path / 'README.md'
  readme.write_text('<!-- results: a.json -->\n| r | v |\n| - | - |\n| row | 2.0 |\n')
  key = ('row', 'v', '2.0')
  report = check_readme.check_readme(readme, tmp_path, unchecked={}, known={key: 'why'})
  assert not report.problems and [f.key for f, _ in report.known] == [key]
  report = check_readme.check_readme(readme, tmp_path, unchecked={}, known={key: 'why'},
                                     strict=True)
  assert [f.key for f in report.problems] == [key]
  stale = ('row', 'v', '9.9')
  report = check_readme.check_readme(readme, tmp_path, unchecked={},
                                     known={key: 'why', stale: 'fixed'})
  assert [f.key for f in report.problems] == [stale]
