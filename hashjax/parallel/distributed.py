"""Multi-process start-up through JAX's own distributed runtime.

`jax.distributed.initialize()` must run before any device is touched. It is called only when the
run is multi-process: on Cloud TPU / SLURM (auto-detected by JAX) when HASHJAX_DISTRIBUTED=1, or
when the coordinator is given explicitly through the environment
(HASHJAX_COORDINATOR=host:port, HASHJAX_NUM_PROCESSES, HASHJAX_PROCESS_ID).
"""

import os

import jax


def initialize_if_multiprocess() -> None:
  if os.environ.get('HASHJAX_COORDINATOR'):
    jax.distributed.initialize(
      coordinator_address=os.environ['HASHJAX_COORDINATOR'],
      num_processes=int(os.environ['HASHJAX_NUM_PROCESSES']),
      process_id=int(os.environ['HASHJAX_PROCESS_ID']),
    )
  elif os.environ.get('HASHJAX_DISTRIBUTED') == '1':
    jax.distributed.initialize()
