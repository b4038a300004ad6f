"""Config files by path: `configs/dsh.py:quick,bits=12`, and overrides checked against their keys."""

from __future__ import annotations

import importlib.util
import os

import ml_collections as mlc


def load_config_file(spec: str) -> mlc.ConfigDict:
  """'configs/dsh.py:quick,bits=12' -> that file's get_config('quick,bits=12')."""
  path, _, arg = spec.partition(':')
  if not os.path.isfile(path):
    raise FileNotFoundError(
      f'config file {path!r} not found (configs are in configs/: '
      f'{", ".join(sorted(n for n in os.listdir("configs") if n.endswith(".py"))) if os.path.isdir("configs") else "?"})'
    )
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
