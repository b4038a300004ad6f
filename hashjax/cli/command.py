"""What every command shares: a user error is one line on stderr, library noise stays off the terminal.

    sys.exit(cli.run(lambda: work(args), verbose=args.verbosity is not None))

A user error (hashjax.errors.USER_ERRORS: bad config, data or workdir, a full disk) prints
`error: <cause and fix>` and exits with status 2; `--verbosity=0` (every command has it) raises it
with its traceback instead. Without it, Orbax's and TensorStore's own reports of a failure that
hashjax turns into its one line are dropped: a failed write is otherwise reported again by every
background thread and asyncio task (hundreds of lines of TensorStore specs and 'Event loop is
closed' tracebacks around the one line that matters).
"""

from __future__ import annotations

from collections.abc import Callable
import errno
import logging
import os
import sys

from hashjax.cli import errors
from hashjax.config import files as config_files

VERBOSITY_HELP = 'any value (e.g. 0): full tracebacks and library logs instead of one line per error'
_quiet = False  # quiet_library_noise() has run in this process
_LIBRARY_DIRS = tuple(f'{os.sep}{name}{os.sep}' for name in ('orbax', 'tensorstore', 'asyncio'))


def _from_library(path: str | None) -> bool:
  return bool(path) and any(d in path for d in _LIBRARY_DIRS)


class _DropLibraryRecords(logging.Filter):
  """Log records emitted from Orbax, TensorStore or asyncio code (below CRITICAL)."""

  def filter(self, record):
    return record.levelno >= logging.CRITICAL or not _from_library(record.pathname)


def _innermost_file(tb) -> str | None:
  path = None
  while tb is not None:
    path, tb = tb.tb_frame.f_code.co_filename, tb.tb_next
  return path


def quiet_library_noise() -> None:
  """Drops the reports Orbax's background work makes of a failure it also raises to hashjax.

  Three channels: log records from those libraries (absl and asyncio loggers), 'Exception ignored'
  reports of their abandoned coroutines (sys.unraisablehook), and the 'Event loop is closed'
  tracebacks TensorStore's callbacks print after Orbax has shut its loop (sys.excepthook). Anything
  else, including every exception raised in hashjax's own code, prints as before.
  """
  global _quiet
  if _quiet:
    return
  _quiet = True
  for name in ('absl', 'asyncio', ''):
    logging.getLogger(name).addFilter(_DropLibraryRecords())
  if 'absl' in sys.modules:  # absl's handler is attached to the root logger: filter it too
    for handler in logging.getLogger().handlers:
      handler.addFilter(_DropLibraryRecords())

  default_unraisable = sys.unraisablehook

  def unraisable(info):
    code = getattr(info.object, 'cr_code', None)  # an abandoned coroutine
    if _from_library(_innermost_file(info.exc_traceback)) or (code is not None and _from_library(code.co_filename)):
      return
    default_unraisable(info)

  default_except = sys.excepthook

  def excepthook(kind, value, tb):
    if kind is RuntimeError and str(value) == 'Event loop is closed':
      return
    default_except(kind, value, tb)

  sys.unraisablehook, sys.excepthook = unraisable, excepthook


def describe(error: BaseException) -> str:
  """The one line a user sees for `error`."""
  if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
    where = f' writing {error.filename}' if error.filename else ''
    return (
      f'disk full{where}: free some space and rerun the same command (a training run resumes '
      f'from its last complete checkpoint)'
    )
  if isinstance(error, KeyError) and error.args:
    return str(error.args[0])
  lines = [line.strip() for line in str(error).splitlines() if line.strip()]
  if not lines:
    return type(error).__name__
  joined = ' '.join(lines)
  # Our messages are one line; a library's long multi-line message keeps its first line.
  return joined if len(joined) <= 1000 else lines[0]


def run(fn: Callable[[], int | None], *, verbose: bool) -> int:
  """Runs a command's body; returns its exit status (0, its own, or 2 after a user error)."""
  if not verbose:
    quiet_library_noise()
  try:
    return fn() or 0
  except errors.USER_ERRORS as e:
    if verbose:
      raise
    print(f'error: {describe(e)} (traceback: --verbosity=0)', file=sys.stderr, flush=True)
    return 2


def check_config_overrides(argv: list[str]) -> None:
  """Catches a mistyped `--config.key` before absl does (whose message lists no valid keys): one
  line naming the valid keys, exit status 2. For the commands that take `--config` (main,
  extract_features); call it on sys.argv before app.run."""
  specs = [a.split('=', 1)[1] for a in argv if a.startswith('--config=')]
  specs += [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == '--config']
  if specs:
    try:
      config_files.check_override_keys(config_files.load_config_file(specs[-1]), argv)
    except (KeyError, ValueError, FileNotFoundError) as e:
      print(f'error: {describe(e)}', file=sys.stderr)
      sys.exit(2)
