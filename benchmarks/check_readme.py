"""Checks that every number in README.md's result tables comes from the results file it names.

The convention. Right above a table of measured numbers, README.md names its results files in an
HTML comment (GitHub does not render it; blank lines between it and the table are allowed):

    <!-- results: benchmarks/results/throughput_cpu.json -->
    | model | batch | image | jaxgan steps/s | ...

Paths are relative to the repository root; several files are separated by spaces. Every
number in that table's body must equal a number stored in one of those JSON files, rounded to
the number of decimals the README shows. What counts:

* Only body rows: not the header row, not the delimiter row, and not the first column, which
  holds the row's label ('seed 0, D itself', 'R1 (gamma 0.1)', 'seeds 0–1').
* Nothing inside backticks (config names, flags, file names) and no digits inside words
  ('R1', 'PacGAN2', '30k', 'arXiv:1606.03498' in backticks).
* A cell with a `†` is from a paper, not measured, and is skipped; a `†` in the first cell
  skips its whole row.
* If a row names one or more of the table's results files by their file name (as the image
  GAN tables do in their last column), that row is checked against those files only.
* If a row names, in backticks, a key of its JSON files (`best`, `vanilla`, `loss_unl`), the
  row is checked against the numbers under that key only (every occurrence of the key, at any
  depth), so that `best`'s row cannot match another method's numbers.

A number is a token such as `7.80`, `-0.5`, `1,173` (thousands separators), `1.849e-20`, or
`1.20x` / `4.5×` (a ratio; the suffix is ignored); `28x28x1` is three numbers. `±` is just a
separator: `7.80 ± 0.13` is two numbers, each matched on its own. The displayed number `v` with
`d` decimals matches a JSON number `x` when `|x - v| <= 0.5 * 10**-d` (rounding either way at a
tie; in scientific notation `d` counts the mantissa's decimals). A unit after the number widens
what `x` may be: `%` also accepts `100 * x` (a fraction 0.9883 shown as `98.83 %`), `min` also
`x / 60`, `h` also `x / 3600` and `ms` also `1000 * x` (seconds in the JSON); `s` is taken
as it stands. The JSON numbers are every int and float anywhere in the file (booleans, and
digits inside strings such as a stored markdown table or a `command`, do not count). A match
says that the number occurs in the file, not that it is the right field: a small integer such
as `2` occurs in most files, which is why rows are narrowed by file name and by key above.

Every table without a marker whose body has a number must be listed in `UNCHECKED_TABLES` (by
its header row) with the reason it is not checked, so a new results table cannot go unchecked
silently. Known mismatches that are still open are listed in `KNOWN_MISMATCHES`, each with its
reason; they are reported but do not fail the check, and an entry that no longer matches a
mismatch fails it (so the list stays current). `--strict` fails on them too.

Commands: for every command line in README.md that starts with `python` and writes `--out=X`
where X is a JSON file that records its own `command` (a string) or `argv` (a list), the
script and the multiset of arguments must equal the recorded ones, apart from the interpreter
and the `--out` value (results are often written elsewhere and copied in). A README command
whose `--out` names a missing file under `benchmarks/results/` is reported too.

    python benchmarks/check_readme.py            # README.md of this checkout; exit 1 on a problem
    python benchmarks/check_readme.py --strict   # also fail on KNOWN_MISMATCHES

Pure Python and json: it never imports jax.
"""

from __future__ import annotations

import argparse
import bisect
import dataclasses
import json
import math
import pathlib
import re
import shlex
import sys
from collections.abc import Iterable, Sequence

ROOT = pathlib.Path(__file__).resolve().parents[1]

# Tables with numbers and no results marker, by header row (cells joined by ' | '): why each is
# not checked.
UNCHECKED_TABLES: dict[str, str] = {
    'path | what': 'describes the files a run writes (1-D, 2-D); no measurements',
    'config | what': 'describes the configs (layer widths, N(1, 1), lecture numbers); no '
                     'measurements',
    'module | one job': 'describes the modules (K+1 classes, [-1, 1]); no measurements',
    'method | paper | one step | closed form (tested)': 'update rules, closed forms and arXiv '
                                                        'ids; no measurements',
    'What went wrong | What jaxgan does': 'describes behaviour (flags 1.0/0.0, [-1, 1]); no '
                                          'measurements',
    'notebook | what you see': 'describes the notebooks (N(1, 1), 8 Gaussians); no measurements',
    'technique | API | config field': 'lists techniques (arXiv ids, K+1); no measurements',
}

# Open mismatches, by (row label, column header, number as shown) or ('command', results file,
# ''): why each is still there. Reported, not failed (unless --strict); a stale entry fails.
KNOWN_MISMATCHES: dict[tuple[str, str, str], str] = {}

_MARKER = re.compile(r'^\s*<!--\s*results:\s*(?P<files>.*?)\s*-->\s*$')
_DELIMITER = re.compile(r'^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$')
_NUMBER = re.compile(
    r"""
    (?<![\w.,])                        # not inside a word or another number
    (?P<sign>[-−])?
    (?P<int>\d{1,3}(?:,\d{3})+|\d+)    # 1,173 or 1173
    (?P<frac>\.\d+)?
    (?:[eE](?P<exp>[-+]?\d+))?
    (?:\s*(?P<unit>%|ms|min|s|h|x|×)(?!\w)|(?!\w))
    """, re.VERBOSE)
_BETWEEN_DIMENSIONS = re.compile(r'(?<=\d)[x×](?=\d)')  # 28x28x1
_BACKTICKS = re.compile(r'`[^`]*`')
_LINK_TARGET = re.compile(r'\]\([^)]*\)')
_PAPER = '†'

# A JSON number x matches a number shown with this unit if one of these maps of x rounds to it.
_UNIT_SCALES = {'%': (1.0, 100.0), 'min': (1.0, 1 / 60), 'h': (1.0, 1 / 3600),
                'ms': (1.0, 1000.0)}


@dataclasses.dataclass(frozen=True)
class Number:
  """A number as README.md shows it: `text`, its value, and the half-width of its rounding."""
  text: str
  value: float
  tolerance: float
  unit: str | None


def parse_numbers(text: str) -> list[Number]:
  """The numbers in a table cell's text, by the rules of the module docstring."""
  text = _LINK_TARGET.sub(']', _BACKTICKS.sub(' ', text))
  text = _BETWEEN_DIMENSIONS.sub(' ', text)
  numbers = []
  for m in _NUMBER.finditer(text):
    digits = m['int'].replace(',', '') + (m['frac'] or '')
    decimals = len(m['frac']) - 1 if m['frac'] else 0
    exponent = int(m['exp']) if m['exp'] else 0
    value = float(digits) * 10.0**exponent * (-1 if m['sign'] else 1)
    tolerance = 0.5 * 10.0**(exponent - decimals)
    numbers.append(Number(m.group(0).strip(), value, tolerance, m['unit']))
  return numbers


def json_numbers(obj) -> list[float]:
  """Every finite int and float in a parsed JSON document (not booleans, not strings), sorted."""
  found = []

  def walk(o):
    if isinstance(o, bool):
      return
    if isinstance(o, int | float):
      if math.isfinite(o):
        found.append(float(o))
    elif isinstance(o, dict):
      for v in o.values():
        walk(v)
    elif isinstance(o, list):
      for v in o:
        walk(v)

  walk(obj)
  return sorted(found)


def subtrees(obj, keys: set[str]) -> list:
  """The values of every object member, at any depth, whose name is in `keys`."""
  found = []
  if isinstance(obj, dict):
    for k, v in obj.items():
      if k in keys:
        found.append(v)
      else:
        found.extend(subtrees(v, keys))
  elif isinstance(obj, list):
    for v in obj:
      found.extend(subtrees(v, keys))
  return found


def matches(number: Number | str, values: Sequence[float]) -> bool:
  """Whether some JSON value in sorted `values` rounds to `number` (a Number or a cell's text).

  >>> matches('7.80', [7.8034])
  True
  """
  if isinstance(number, str):
    (number,) = parse_numbers(number)
  # Relative slack for binary floating point at an exact tie (0.125 shown as 0.13 or 0.12).
  tolerance = number.tolerance * (1 + 1e-9) + 1e-12 * abs(number.value)
  for scale in _UNIT_SCALES.get(number.unit, (1.0,)):
    lo, hi = sorted(((number.value - tolerance) / scale, (number.value + tolerance) / scale))
    i = bisect.bisect_left(values, lo)
    if i < len(values) and values[i] <= hi:
      return True
  return False


@dataclasses.dataclass
class Table:
  header_line: int  # 1-based line number of the header row
  header: list[str]
  rows: list[tuple[int, str, list[str]]]  # (line number, raw line, cells)
  files: list[str] | None  # from the results marker; None without one

  @property
  def name(self) -> str:
    return ' | '.join(self.header)


@dataclasses.dataclass(frozen=True)
class Finding:
  line: int
  key: tuple[str, str, str] | str
  message: str


def split_cells(line: str) -> list[str]:
  """A markdown table row's cells; a `|` inside backticks or escaped as `\\|` stays in its cell."""
  cells, cell, in_code, i = [], '', False, 0
  line = line.strip()
  while i < len(line):
    c = line[i]
    if c == '\\' and i + 1 < len(line) and line[i + 1] == '|':
      cell += '|'
      i += 2
      continue
    if c == '`':
      in_code = not in_code
    if c == '|' and not in_code:
      cells.append(cell)
      cell = ''
    else:
      cell += c
    i += 1
  cells.append(cell)
  if line.startswith('|'):
    cells = cells[1:]
  if line.endswith('|') and cells:
    cells = cells[:-1]
  return [c.strip() for c in cells]


def find_tables(lines: Sequence[str]) -> tuple[list[Table], list[Finding]]:
  """The README's tables, each with the files of the results marker right above it."""
  tables, findings, used_markers = [], [], set()
  in_fence, i = False, 0
  while i < len(lines):
    line = lines[i]
    if line.lstrip().startswith('```'):
      in_fence = not in_fence
    if (not in_fence and line.lstrip().startswith('|') and i + 1 < len(lines)
        and _DELIMITER.match(lines[i + 1])):
      j = i - 1
      while j >= 0 and not lines[j].strip():
        j -= 1
      marker = _MARKER.match(lines[j]) if j >= 0 else None
      files = marker['files'].split() if marker else None
      if marker:
        used_markers.add(j)
      rows, k = [], i + 2
      while k < len(lines) and lines[k].lstrip().startswith('|'):
        rows.append((k + 1, lines[k], split_cells(lines[k])))
        k += 1
      tables.append(Table(i + 1, split_cells(line), rows, files))
      i = k
      continue
    i += 1
  for j, line in enumerate(lines):
    if _MARKER.match(line) and j not in used_markers:
      findings.append(Finding(j + 1, f'marker:{j + 1}',
                              'results marker is not right above a table'))
  return tables, findings


def _label(cell: str) -> str:
  return cell.replace('**', '').strip()


def _numbers_to_check(table: Table):
  """(line, raw row, row label, column header, Number) for each checked number of the body."""
  for line_no, raw, cells in table.rows:
    if not cells or _PAPER in cells[0]:
      continue
    for col, cell in enumerate(cells[1:], start=1):
      if _PAPER in cell:
        continue
      column = table.header[col] if col < len(table.header) else f'column {col + 1}'
      for number in parse_numbers(cell):
        yield line_no, raw, _label(cells[0]), column, number


def check_tables(lines: Sequence[str], root: pathlib.Path, *,
                 unchecked: dict[str, str] = UNCHECKED_TABLES) -> list[Finding]:
  """Findings for every table: unmatched numbers, missing files, unlisted tables without markers.

  `unchecked` maps the header rows of tables that have numbers but no marker to their reasons.
  """
  tables, findings = find_tables(lines)
  seen = set()
  for table in tables:
    seen.add(table.name)
    numbers = list(_numbers_to_check(table))
    if table.files is None:
      if numbers and table.name not in unchecked:
        findings.append(Finding(
            table.header_line, table.name,
            f'table "{table.name}" has numbers but no results marker and is not in '
            'UNCHECKED_TABLES'))
      continue
    if table.name in unchecked:
      findings.append(Finding(table.header_line, table.name,
                              'table has a results marker and is also in UNCHECKED_TABLES'))
    documents, missing = {}, False
    for name in table.files:
      path = root / name
      if not path.is_file():
        findings.append(Finding(table.header_line - 1, f'missing:{name}',
                                f'results marker names {name}, which does not exist'))
        missing = True
        continue
      documents[name] = json.loads(path.read_text())
    if missing:
      continue
    if not table.files:
      findings.append(Finding(table.header_line - 1, f'empty:{table.header_line}',
                              'results marker names no file'))
      continue
    pools = {}  # the sorted numbers a row is checked against, by (files, keys)
    for line_no, raw, label, column, number in numbers:
      files = tuple(f for f in table.files
                    if re.search(r'(?<![\w-])' + re.escape(pathlib.PurePosixPath(f).name)
                                 + r'(?!\w)', raw)) or tuple(table.files)
      keys = frozenset(span.strip("`'\" ") for span in _BACKTICKS.findall(raw))
      if (files, keys) not in pools:
        scoped = [subtrees(documents[f], keys) for f in files]
        pools[files, keys] = json_numbers(scoped if any(scoped) else
                                          [documents[f] for f in files])
      if not matches(number, pools[files, keys]):
        where = ', '.join(files)
        named = sorted(k for k in keys if any(subtrees(documents[f], {k}) for f in files))
        if named:
          where += ' under ' + ', '.join(f'"{k}"' for k in named)
        findings.append(Finding(
            line_no, (label, column, number.text),
            f'{number.text} (row "{label}", column "{column}") is in none of {where}'))
  for name in unchecked:
    if name not in seen:
      findings.append(Finding(0, f'stale-unchecked:{name}',
                              f'UNCHECKED_TABLES lists "{name}", which is not a README table'))
  return findings


def _commands(lines: Sequence[str]) -> Iterable[tuple[int, str]]:
  """(line number, command) for each README line that starts with `python`, continuations joined."""
  i = 0
  while i < len(lines):
    start, text = i + 1, lines[i].strip()
    if re.match(r'python3? ', text):
      while text.endswith('\\') and i + 1 < len(lines):
        i += 1
        text = text[:-1] + ' ' + lines[i].strip()
      yield start, text
    i += 1


def _normalized(tokens: Sequence[str]) -> tuple[str, list[str]]:
  tokens = list(tokens)
  if tokens and pathlib.PurePosixPath(tokens[0]).name.startswith('python'):
    tokens = tokens[1:]
  if not tokens:
    return '', []
  return tokens[0], sorted(t for t in tokens[1:] if not t.startswith('--out='))


def check_commands(lines: Sequence[str], root: pathlib.Path,
                   notes: list[str] | None = None) -> list[Finding]:
  """Findings for README commands that differ from the `command`/`argv` their results record.

  Appends a line per command with a JSON `--out` to `notes`: compared, or why not.
  """
  findings, notes = [], notes if notes is not None else []
  for line_no, command in _commands(lines):
    try:
      tokens = shlex.split(command, comments=True)
    except ValueError:
      continue
    outs = [t.split('=', 1)[1] for t in tokens if t.startswith('--out=')]
    if not outs or not outs[0].endswith('.json'):
      continue
    out = outs[0]
    path = root / out
    if not path.is_file():
      notes.append(f'line {line_no}: the command writes {out}, which is not in the checkout')
      if out.startswith('benchmarks/results/'):
        findings.append(Finding(line_no, ('command', out, ''),
                                f'the command writes {out}, which does not exist'))
      continue
    record = json.loads(path.read_text())
    if isinstance(record, dict) and isinstance(record.get('command'), str):
      recorded = shlex.split(record['command'])
    elif isinstance(record, dict) and isinstance(record.get('argv'), list):
      recorded = [str(a) for a in record['argv']]
    else:
      notes.append(f'line {line_no}: {out} records no command; not compared')
      continue
    notes.append(f'line {line_no}: compared with the command {out} records')
    (script, flags), (rec_script, rec_flags) = _normalized(tokens), _normalized(recorded)
    if (script, flags) != (rec_script, rec_flags):
      only_readme = [f for f in flags if f not in rec_flags]
      only_json = [f for f in rec_flags if f not in flags]
      if script != rec_script:
        only_readme, only_json = [script, *only_readme], [rec_script, *only_json]
      findings.append(Finding(
          line_no, ('command', out, ''),
          f'the command for {out} differs from the one it recorded: only in README '
          f'{only_readme}, only in the JSON {only_json} (--out and the interpreter ignored)'))
  return findings


@dataclasses.dataclass
class Report:
  problems: list[Finding]  # fail the check
  known: list[tuple[Finding, str]]  # open mismatches from KNOWN_MISMATCHES, with their reasons
  notes: list[str]  # which commands were compared


def check_readme(readme: pathlib.Path = ROOT / 'README.md', root: pathlib.Path = ROOT, *,
                 strict: bool = False, unchecked: dict[str, str] = UNCHECKED_TABLES,
                 known: dict[tuple[str, str, str], str] = KNOWN_MISMATCHES) -> Report:
  """Checks `readme`'s result tables and commands against the results files under `root`.

  The check passes when `Report.problems` is empty. With `strict`, the `known` mismatches are
  problems too; without it, a `known` entry that no longer occurs is one.
  """
  lines = readme.read_text().splitlines()
  notes = []
  findings = (check_tables(lines, root, unchecked=unchecked)
              + check_commands(lines, root, notes))
  problems, open_known, used = [], [], set()
  for finding in findings:
    if finding.key in known and not strict:
      open_known.append((finding, known[finding.key]))
      used.add(finding.key)
    else:
      problems.append(finding)
  if not strict:
    for key in known:
      if key not in used:
        problems.append(Finding(0, key, f'KNOWN_MISMATCHES lists {key}, which now matches '
                                '(or is gone): remove the entry'))
  return Report(problems, open_known, notes)


def main(argv: Sequence[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--root', type=pathlib.Path, default=ROOT,
                      help='the checkout whose results files the paths are relative to')
  parser.add_argument('--readme', type=pathlib.Path, default=None,
                      help='the README to check (default: ROOT/README.md)')
  parser.add_argument('--strict', action='store_true',
                      help='also fail on the open mismatches of KNOWN_MISMATCHES')
  args = parser.parse_args(argv)
  readme = args.readme or args.root / 'README.md'
  report = check_readme(readme, args.root, strict=args.strict)
  name = readme.name
  for finding, reason in report.known:
    print(f'{name}:{finding.line}: known: {finding.message} [{reason}]')
  for finding in report.problems:
    print(f'{name}:{finding.line}: {finding.message}')
  for table, reason in UNCHECKED_TABLES.items():
    print(f'unchecked table "{table}": {reason}')
  for note in report.notes:
    print(f'command, {note}')
  print(f'{len(report.problems)} problem(s), {len(report.known)} known mismatch(es), '
        f'{len(UNCHECKED_TABLES)} unchecked table(s)')
  return 1 if report.problems else 0


if __name__ == '__main__':
  sys.exit(main())
