"""Config files by path: `configs/dsh.py:quick,bits=12`, and overrides checked against their keys."""

from __future__ import annotations

import importlib.util
import os

import ml_collections as mlc


def _not_found(path: str) -> str:
  """Why `path` is no config file, and where the configs are: relative paths are read from the current
  directory, which need not be the repository (hashjax may be pip-installed and run from anywhere)."""
  where = f'{path!r} is not a file' + (
    '' if os.path.isabs(path) else f' (relative to the current directory {os.getcwd()})'
  )
  folder = os.path.join(os.path.dirname(path), '')
  here = (
    sorted(n for n in os.listdir(folder) if n.endswith('.py'))
    if os.path.dirname(path) and os.path.isdir(folder)
    else []
  )
  if here:
    return f'config file {where}; {folder} has {", ".join(here)}'
  return (
    f'config file {where}; give the path of a config file, e.g. the configs/<method>.py files of the '
    f'hashjax repository: --config /path/to/hashjax/configs/dsh.py:quick'
  )


def load_config_file(spec: str) -> mlc.ConfigDict:
  """'configs/dsh.py:quick,bits=12' -> that file's get_config('quick,bits=12'); `path` may be absolute or
  relative to the current directory. Raises FileNotFoundError naming the configs next to a mistyped name."""
  path, _, arg = spec.partition(':')
  if not os.path.isfile(path):
    raise FileNotFoundError(_not_found(path))
  module_spec = importlib.util.spec_from_file_location(os.path.basename(path)[:-3], path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return module.get_config(arg or None)


def check_override_keys(config: mlc.ConfigDict, argv: list[str], flag: str = 'config') -> None:
  """Fails on `--config.a.b=...` overrides whose key is not in the config, listing the valid keys."""
  prefix = f'--{flag}.'
  for arg in argv:
    if not arg.startswith(prefix):
      continue
    path = arg[len(prefix) :].split('=')[0].split('.')
    node = config
    for depth, key in enumerate(path):
      if not isinstance(node, mlc.ConfigDict) or key not in node:
        where = '.'.join(path[:depth]) or 'the top level'
        valid = ', '.join(sorted(node.keys())) if isinstance(node, mlc.ConfigDict) else '(not a group)'
        raise KeyError(f'unknown config key {".".join(path)!r} in {arg!r}: {where} has {valid}')
      node = node[key]
