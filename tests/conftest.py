"""Eight simulated CPU devices for every test, set before any JAX operation runs; one persistent XLA
compilation cache for the session.

HASHJAX_TESTS_ON_DEVICE=1 (benchmarks/accelerator_check.py sets it, with JAX_PLATFORMS unset) runs the
tests on whatever JAX finds instead, e.g. one GPU or a TPU host's chips; the tests that need the eight
devices skip there unless it has eight (helpers.require_eight_devices).
"""

import atexit
import os
import shutil
import tempfile

ON_DEVICE = os.environ.get('HASHJAX_TESTS_ON_DEVICE') == '1'
if not ON_DEVICE:
  os.environ.setdefault('JAX_PLATFORMS', 'cpu')
# The resume, preemption and sweep tests start the same program in fresh processes (they inherit this
# environment) 3-6 times each: with a shared cache only the first one compiles. Every executable is
# kept, also the many sub-second ones (eager init, evaluation), which add up to seconds per process.
# A fresh directory per session, removed at exit: the tests leave no cache behind.
if 'JAX_COMPILATION_CACHE_DIR' not in os.environ:
  os.environ['JAX_COMPILATION_CACHE_DIR'] = tempfile.mkdtemp(prefix='hashjax_test_xla_cache_')
  os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS', '0')
  atexit.register(shutil.rmtree, os.environ['JAX_COMPILATION_CACHE_DIR'], ignore_errors=True)

import jax  # pylint: disable=g-import-not-at-top

jax.config.update('jax_num_cpu_devices', 8)  # on an accelerator: its CPU backend's, not the default devices
