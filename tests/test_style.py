"""The whole tree keeps one style: ruff's formatter and linter with the settings in pyproject.toml
(Google's 2-space Python). Fix with: .venv/bin/ruff format . && .venv/bin/ruff check --fix ."""

import ast
import os
import subprocess
import sys

import pytest

from tests import helpers

RUFF = os.path.join(os.path.dirname(sys.executable), 'ruff')


@pytest.mark.parametrize('args', [['format', '--check'], ['check']])
def test_ruff(args):
  assert os.path.exists(RUFF), f'ruff is not installed beside {sys.executable}: pip install -r requirements.txt'
  out = subprocess.run([RUFF, *args, '.'], cwd=helpers.ROOT, capture_output=True, text=True)
  assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]


def test_no_library_module_imports_a_command():
  """The layout's rule (README, "Layout"): hashjax/*.py are the commands; the packages below never
  import them (a command imports libraries, not the other way round)."""
  package = os.path.join(helpers.ROOT, 'hashjax')
  commands = {n[:-3] for n in os.listdir(package) if n.endswith('.py') and n != '__init__.py'}
  assert {'main', 'evaluate', 'extract_features'} <= commands
  offenders = []
  for root, _, files in os.walk(package):
    if root == package:
      continue
    for name in files:
      if not name.endswith('.py'):
        continue
      path = os.path.join(root, name)
      for node in ast.walk(ast.parse(open(path).read())):
        if isinstance(node, ast.ImportFrom) and node.module == 'hashjax':
          imported = {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
          imported = {node.module.removeprefix('hashjax.')} if node.module.startswith('hashjax.') else set()
        elif isinstance(node, ast.Import):
          imported = {a.name.removeprefix('hashjax.') for a in node.names if a.name.startswith('hashjax.')}
        else:
          continue
        offenders += [f'{os.path.relpath(path, helpers.ROOT)} imports hashjax.{m}' for m in imported & commands]
  assert not offenders, offenders
