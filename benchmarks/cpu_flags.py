"""XLA:CPU performance flags, appended to XLA_FLAGS before JAX initialises its backend.

    import cpu_flags
    cpu_flags.apply_cpu_performance_flags()   # before the first JAX computation
    import jax ...

Measured (benchmarks/notes/dsh_throughput.md, "What did not help"; jaxlib 0.12.0.1, 2-core AMD
EPYC, AVX2, no AVX-512; DSH train step, batch 200, 28x28 f32, side by side, best of several rounds):

  flag(s)                                                      whole step vs no flags
  --xla_cpu_use_onednn=true --xla_cpu_experimental_onednn_custom_call=true   0.95-1.05 (noise)
      (no oneDNN call appears in the optimised HLO, and a lone 5x5 conv fwd+bwd is unchanged:
       this jaxlib does not route convolutions to oneDNN on this machine)
  --xla_cpu_experimental_ynn_fusion_type=dot,eltwise,reduce    0.96-1.0
  --xla_cpu_experimental_xnn_graph_fusion_mode=..._GREEDY_SLINKY  1.0-1.02 (noise); GREEDY 0.96
  --xla_cpu_experimental_xnn_fusion_type=dot,eltwise,reduce    ~1.0
  --xla_cpu_use_xnnpack=false                                  0.97
  --xla_cpu_multi_thread_eigen=false                           0.96-1.1 (noise)
  --xla_cpu_prefer_vector_width=512                            ~0.9
  --xla_cpu_enable_fast_math=true                              ~1.0 (and it changes results)

None gave a reproducible gain, so PERFORMANCE_FLAGS is empty and `apply_cpu_performance_flags()`
is currently a no-op by default; the speed-up came from rewriting the network instead
(hashjax/models/dsh_net.py, 1.3-1.56x images/s in f32). The function is kept so that a flag
that does help on another jaxlib/CPU can be enabled in one place (or passed explicitly, as the
benchmark does).
The flags are XLA:CPU-only, so they are harmless on GPU/TPU.
"""

from __future__ import annotations

from collections.abc import Sequence
import os

# Flags measured to help the DSH train step on CPU (none so far; see the module docstring).
PERFORMANCE_FLAGS: tuple[str, ...] = ()

# Flags worth re-measuring on other machines/jaxlib versions (benchmarks/dsh_throughput.py --xla-flags).
ONEDNN_FLAGS = ('--xla_cpu_use_onednn=true', '--xla_cpu_experimental_onednn_custom_call=true')


def apply_cpu_performance_flags(flags: Sequence[str] = PERFORMANCE_FLAGS) -> str:
  """Appends each of `flags` whose name is not already in XLA_FLAGS; returns the new XLA_FLAGS.

  A flag the user has set (any value) is left alone. Must run before JAX initialises its CPU
  backend (the first computation or jax.devices()); later calls have no effect on this process.
  """
  current = os.environ.get('XLA_FLAGS', '')
  present = {f.split('=', 1)[0] for f in current.split()}
  added = [f for f in flags if f.split('=', 1)[0] not in present]
  if added:
    os.environ['XLA_FLAGS'] = ' '.join([current] + added if current else added)
  return os.environ.get('XLA_FLAGS', '')
