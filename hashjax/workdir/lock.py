"""One writer per workdir: a lock a training run holds from its start to its exit.

`workdir/lock.json` names the holder (host, pid, start time, command). The holder also keeps an
exclusive `flock` on the file, which the kernel drops when the process dies however it dies
(SIGKILL included), so on one host a lock is never stale: a run that finds the file unlocked but
still naming another process of this host takes it over with a note. A file naming a process of
another host cannot be checked from here (flock does not reach across hosts on every shared file
system): that run may still be writing, and taking it over needs `force=True` (`--force_unlock`).
The file is removed when its holder exits normally.

With several processes only process 0 takes the lock; `train.py` shares its verdict with the others.
"""

from __future__ import annotations

import datetime
import fcntl
import json
import os
import socket
import sys

from hashjax.cli import errors

LOCK_FILE = 'lock.json'


def _command() -> str:
  """This process's command line, as `python -m hashjax.main ...` when run as a module."""
  spec = getattr(sys.modules.get('__main__'), '__spec__', None)
  head = [f'python -m {spec.name}'] if spec is not None else sys.argv[:1]
  return ' '.join(head + sys.argv[1:])


def _holder_text(holder: dict) -> str:
  return (
    f'pid {holder.get("pid")} on host {holder.get("host")} since {holder.get("since")} ({holder.get("command", "?")})'
  )


class WorkdirLock:
  """`with WorkdirLock(workdir) as lock:` ... ; `lock.note` says if a dead run's lock was taken over."""

  def __init__(self, workdir: str, *, force: bool = False):
    self.path = os.path.join(workdir, LOCK_FILE)
    self.force = force
    self.note = None
    self._fd = None

  def acquire(self) -> WorkdirLock:
    os.makedirs(os.path.dirname(self.path) or '.', exist_ok=True)
    while True:
      fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
      try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
      except BlockingIOError:
        holder = self._read(fd)
        os.close(fd)
        raise errors.WorkdirInUseError(
          f'workdir {os.path.dirname(self.path)} is in use by another run: {_holder_text(holder)}. '
          f'Wait for it to finish, stop it, or use another --workdir'
        ) from None
      # The holder may have removed the file between our open and flock: lock the file that is there now.
      try:
        same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
      except FileNotFoundError:
        same = False
      if same:
        break
      os.close(fd)
    previous = self._read(fd)
    if previous:
      if previous.get('host') != socket.gethostname() and not self.force:
        os.close(fd)
        raise errors.WorkdirInUseError(
          f'workdir {os.path.dirname(self.path)} is locked by {_holder_text(previous)}, which cannot be '
          f'checked from this host. If that run is not running any more, rerun with --force_unlock'
        )
      self.note = f'took over the lock of {_holder_text(previous)}: ' + (
        'forced (--force_unlock)' if previous.get('host') != socket.gethostname() else 'no longer running'
      )
    holder = {
      'host': socket.gethostname(),
      'pid': os.getpid(),
      'since': datetime.datetime.now().isoformat(timespec='seconds'),
      'command': _command(),
    }
    os.ftruncate(fd, 0)
    os.pwrite(fd, (json.dumps(holder) + '\n').encode(), 0)
    os.fsync(fd)
    self._fd = fd
    return self

  @staticmethod
  def _read(fd: int) -> dict:
    try:
      data = os.pread(fd, 1 << 16, 0)
      return json.loads(data) if data.strip() else {}
    except (OSError, ValueError):
      return {'pid': '?', 'host': '?', 'since': '?', 'command': 'an unreadable lock file'}

  def release(self) -> None:
    if self._fd is None:
      return
    try:
      os.unlink(self.path)  # before unlocking: a waiting run then locks a new file, never this one
    except FileNotFoundError:
      pass
    fcntl.flock(self._fd, fcntl.LOCK_UN)
    os.close(self._fd)
    self._fd = None

  def __enter__(self):
    return self.acquire()

  def __exit__(self, *exc):
    self.release()
