"""The Ray cluster a sweep runs on: connecting (or starting one on this machine), and what its
hosts offer.

A host measures a target when it declares the custom resource ``target:<name>`` (amount 1: one
group of that target at a time), e.g.

    ray start --address HEAD:6379 --num-cpus 0 --resources '{"target:h100-trt-fp16": 1}'

``--ray auto`` connects to the cluster named by RAY_ADDRESS or started last on this machine with
``ray start``; without one it starts a cluster of this machine alone for the sweep, declaring the
targets whose backend is installed here, and stops it afterwards.
"""

from __future__ import annotations

import os
import socket
import tempfile
from pathlib import Path
from typing import Callable

from scaleprof.core.text import first_line
from scaleprof.errors import EnvironmentProblem

RESOURCE_PREFIX = "target:"
# In a cluster the sweep starts itself, every target shares this machine: one measurement at a time.
LOCAL_MEASUREMENT = "scaleprof:measure-here"
CONNECT_TIMEOUT_S = 5.0


def resource_of(target_name: str) -> str:
    return f"{RESOURCE_PREFIX}{target_name}"


def serve_command(address: str, target_name: str) -> str:
    """The command that makes a host serve ``target_name`` (for messages and the docs)."""
    return f"ray start --address {address} --resources '{{\"{resource_of(target_name)}\": 1}}'"


def import_ray():
    try:
        import ray
    except ImportError:
        raise EnvironmentProblem("--ray needs Ray: pip install 'scaleprof[ray]'") from None
    return ray


class RayCluster:
    """A connection to a Ray cluster for one sweep; ``close`` disconnects (and stops a cluster the
    sweep started)."""

    def __init__(self, ray, address: str, started: bool, owned: bool):
        self.ray = ray
        self.address = address           # what hosts join with (ray start --address ...)
        self.started = started           # a cluster of this machine alone, started for this sweep
        self.owned = owned               # this sweep connected: it disconnects

    @classmethod
    def connect(cls, address: str, local_targets: Callable[[], list[str]]) -> "RayCluster":
        """``address`` is "auto" or HOST:PORT (or any address ray.init takes). ``local_targets``
        names the targets this machine measures, for a cluster started here."""
        ray = import_ray()
        if ray.is_initialized():                         # the caller connected already
            return cls(ray, _gcs_address(ray), started=False, owned=False)
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        options = dict(logging_level="ERROR", log_to_driver=False, include_dashboard=False)
        found = _running_cluster() if address == "auto" else address
        if found is None:
            resources = {resource_of(name): 1 for name in local_targets()}
            ray.init(resources={**resources, LOCAL_MEASUREMENT: 1}, **options)
            return cls(ray, _gcs_address(ray), started=True, owned=True)
        _check_reachable(found)
        try:
            ray.init(address=found, **options)
        except Exception as err:  # noqa: BLE001 - ray.init raises several types; one line each
            raise EnvironmentProblem(f"cannot join the Ray cluster at {found}: {first_line(str(err))}") from None
        return cls(ray, found, started=False, owned=True)

    def offered(self) -> dict[str, float]:
        """Resource name -> amount, over the nodes alive now."""
        return dict(self.ray.cluster_resources())

    def measurement_resources(self, target_name: str) -> dict[str, float]:
        extra = {LOCAL_MEASUREMENT: 1} if self.started else {}
        return {resource_of(target_name): 1, **extra}

    def shares_machine_with_preparation(self, target_name: str) -> bool:
        """Whether a node that serves ``target_name`` is on a machine where a node offers CPUs
        (where preparation tasks run)."""
        nodes = [n for n in self.ray.nodes() if n.get("Alive")]
        preparing = {n["NodeManagerAddress"] for n in nodes if n.get("Resources", {}).get("CPU", 0) > 0}
        serving = {n["NodeManagerAddress"] for n in nodes if resource_of(target_name) in n.get("Resources", {})}
        return bool(preparing & serving)

    def close(self) -> None:
        if self.owned and self.ray.is_initialized():
            self.ray.shutdown()


def _running_cluster() -> str | None:
    """RAY_ADDRESS, or the cluster `ray start` last started on this machine if it still answers."""
    if os.environ.get("RAY_ADDRESS"):
        return os.environ["RAY_ADDRESS"]
    marker = Path(os.environ.get("RAY_TMPDIR") or tempfile.gettempdir()) / "ray" / "ray_current_cluster"
    try:
        address = marker.read_text().strip()
    except OSError:
        return None
    try:
        _check_reachable(address)
    except EnvironmentProblem:
        return None                 # left behind by a cluster that is gone
    return address or None


def _check_reachable(address: str) -> None:
    """One line now rather than ray.init's minutes of retries, for a HOST:PORT nobody answers at."""
    host, _, port = address.rpartition(":")
    if "://" in address or not port.isdigit():
        return
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as err:
        raise EnvironmentProblem(f"no Ray cluster answers at {address} ({err.strerror or err}); start one "
                                 "with `ray start --head` or give its address") from None


def _gcs_address(ray) -> str:
    try:
        return ray.get_runtime_context().gcs_address
    except Exception:  # noqa: BLE001 - only used in messages
        return "HEAD:6379"
