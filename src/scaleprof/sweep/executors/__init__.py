"""Where a sweep's groups run (the runner's stages stay as they are):

    sweep.executor.Executor  the interface each one implements (run gets a SweepRun, also there)
    sweep.runner.InOrderExecutor  the default: every stage here, in order
    local.py             --jobs N: preparation (scaling search, counting, export, engine builds) in
                         N worker processes, measurement here, one point at a time
    ray_driver.py        --ray auto|ADDRESS: each target's groups on the Ray hosts that declare it;
                         this process alone writes the store (ray_cluster.py connects, ray_tasks.py
                         is what runs on the hosts)
    plan.py              what they share: networks, bundles, preparing a network

    from scaleprof.sweep.executors import make_executor
    run_sweep(config, out, executor=make_executor(jobs=2))
"""

from __future__ import annotations

from scaleprof.core.limits import check_workers
from scaleprof.errors import BadInput


def make_executor(jobs: int = 1, ray: str | None = None):
    """The executor for ``--jobs`` and ``--ray`` (None: the runner's own, in-order one)."""
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise BadInput(f"--jobs: expected a positive number of worker processes, got {jobs!r}")
    check_workers(jobs, "--jobs")
    if ray is not None:
        if jobs > 1:
            raise BadInput("--jobs and --ray do not combine: on Ray, every node with a free CPU prepares")
        if not ray.strip():
            raise BadInput("--ray: expected 'auto' or the address of a Ray cluster (HOST:PORT)")
        from scaleprof.sweep.executors.ray_driver import RayExecutor

        return RayExecutor(ray.strip())
    if jobs > 1:
        from scaleprof.sweep.executors.local import PreparingExecutor

        return PreparingExecutor(jobs)
    return None
