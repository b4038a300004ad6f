"""The whole tree keeps one style: ruff's formatter and linter with the settings in pyproject.toml
(Google's 2-space Python). Fix with: .venv/bin/ruff format . && .venv/bin/ruff check --fix ."""

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
