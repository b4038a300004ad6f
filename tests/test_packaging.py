"""pyproject.toml agrees with requirements.txt (the pins CI installs) and ships what an installed copy needs;
a config path that is not a file fails naming the current directory (hashjax may run from anywhere)."""

import fnmatch
import os
import re
import tomllib

import pytest

from hashjax.config import files as config_files
from hashjax.retrieval import native
from tests import helpers


def _pins(path: str) -> dict[str, str]:
  pins = {}
  with open(os.path.join(helpers.ROOT, path)) as f:
    for line in f:
      line = line.split('#')[0].strip()
      if line:
        name, version = line.split('==')
        pins[name.lower()] = version
  return pins


def _project() -> dict:
  with open(os.path.join(helpers.ROOT, 'pyproject.toml'), 'rb') as f:
    return tomllib.load(f)


def _version(v: str) -> tuple[int, ...]:
  return tuple(int(p) for p in v.split('.'))


def _range(spec: str) -> tuple[str, str, str]:
  """'jax>=0.12.0.1,<0.13' -> ('jax', '0.12.0.1', '0.13')."""
  m = re.fullmatch(r'([A-Za-z0-9_.-]+)>=([0-9.]+),<([0-9.]+)', spec)
  assert m, f'{spec!r}: write runtime dependencies as name>=pinned,<next'
  return m.group(1).lower(), m.group(2), m.group(3)


def test_dependency_ranges_start_at_the_pins_ci_tests():
  pins = _pins('requirements.txt')
  project = _project()['project']
  ranges = {name: (low, high) for name, low, high in map(_range, project['dependencies'])}
  extras = project['optional-dependencies']
  test_tools = {s.split('==')[0].lower(): s.split('==')[1] for s in extras['test']}
  # Every pin is either a runtime dependency or a test tool, and nothing is declared that CI does not install.
  assert set(ranges) | set(test_tools) == set(pins)
  for name, (low, high) in ranges.items():
    assert low == pins[name], f'{name}: the range starts at {low}, requirements.txt pins {pins[name]}'
    assert _version(pins[name]) < _version(high), f'{name}: {pins[name]} is outside <{high}'
  assert test_tools == {name: pins[name] for name in test_tools}
  for extra in ('cuda12', 'tpu'):
    assert extras[extra] == [f'jax[{extra}]=={pins["jax"]}']
  bench = _pins('benchmarks/requirements.txt')
  assert extras['bench'] == [f'{name}=={version}' for name, version in bench.items()]
  assert 'torch' not in str(extras)  # a multi-GB CUDA build: users install it themselves if needed


def test_wheel_ships_the_native_kernel_sources():
  """native.py compiles these on first use, from the installed package's folder."""
  globs = _project()['tool']['setuptools']['package-data']['hashjax.retrieval.kernels']
  present = sorted(os.listdir(native.KERNELS))
  assert set(native.SOURCES + native.HEADERS) <= set(present)
  for name in present:
    assert any(fnmatch.fnmatch(name, g) for g in globs), f'{name} would be left out of the wheel'


@pytest.mark.parametrize('relative', (True, False))
def test_missing_config_file_says_where_it_looked(tmp_path, monkeypatch, relative):
  (tmp_path / 'configs').mkdir()
  (tmp_path / 'configs' / 'dsh.py').write_text('')
  monkeypatch.chdir(tmp_path)
  if relative:  # not the repository: the path is read from here, and the message says so
    with pytest.raises(
      FileNotFoundError,
      match=re.escape(f"'configs/dhs.py' is not a file (relative to the current directory {tmp_path}); ")
      + '.*has dsh.py',
    ):
      config_files.load_config_file('configs/dhs.py:quick')
    with pytest.raises(FileNotFoundError, match='e.g. the configs/<method>.py files of the hashjax repository'):
      config_files.load_config_file('dsh.py')
  else:
    path = os.path.join(helpers.ROOT, 'configs', 'dhs.py')
    with pytest.raises(FileNotFoundError, match=re.escape(f"'{path}' is not a file; ") + '.*configs/ has .*dsh.py'):
      config_files.load_config_file(path)
    assert config_files.load_config_file(os.path.join(helpers.ROOT, 'configs', 'dsh.py:quick')).method == 'dsh'
