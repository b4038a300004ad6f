"""Errors caused by the config, the data or the workdir rather than by a bug.

Every command prints such an error as one line (the cause and the fix) and keeps the traceback for
`--verbosity=0` (hashjax/cli/command.py). This module imports nothing heavy, so light commands can name the
errors without importing JAX or Orbax.
"""

from __future__ import annotations


class UserError(Exception):
  """Raised with a message that names the problem and what to do about it."""


class CheckpointError(UserError):
  """A checkpoint that cannot be used (unreadable, failing its checksum, of another run, ...)."""


class NonFiniteError(UserError, FloatingPointError):
  """Training produced NaN or Inf; nothing after the last finite checkpoint was saved."""


class WorkdirInUseError(UserError):
  """Another run holds the workdir's lock."""


class ConfigMismatchError(CheckpointError):
  """The workdir's checkpoint was written by a run with other settings than this one."""


# What commands report as one line. OSError covers a missing file, a full disk and a denied
# permission, which are about the machine, not the code.
USER_ERRORS = (UserError, ValueError, KeyError, OSError, EOFError)


def first_line(error: BaseException, limit: int = 300) -> str:
  """`TypeName: first line of the message`, at most `limit` characters: for wrapping a library's
  error (Orbax appends whole TensorStore specs) into one line of ours."""
  text = str(error.args[0] if isinstance(error, KeyError) and error.args else error).strip()
  line = text.splitlines()[0].split(' See full TensorStore details')[0] if text else ''
  line = line if len(line) <= limit else line[: limit - 3] + '...'
  return f'{type(error).__name__}: {line}' if line else type(error).__name__
