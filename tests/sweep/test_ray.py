"""The Ray executor on a real local cluster: a head (one CPU, for preparation) and two worker nodes
on 127.0.0.1, each declaring one CPU target, started with `ray start` as a user would. The stages
are the fake ones (tests/sweep/fake_stages.py): what is tested is where things run and what is
recorded, not measurement. Kills are real signals to real processes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from tests.sweep.fake_stages import FakeStages, stored
from scaleprof.sweep.config_file import parse_config
from scaleprof.sweep.executors.ray_driver import RayExecutor
from scaleprof.sweep.runner import run_sweep
from scaleprof.sweep.store import STORE_NAME, Store

pytest.importorskip("ray", reason="the Ray tests need Ray: pip install 'scaleprof[ray]'")
pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="finds the cluster's processes in /proc (Linux)")

SCRIPT = Path(__file__).resolve().with_name("fake_stages.py")
ROOT = SCRIPT.parents[2]          # where the workers import tests.sweep.fake_stages from
TARGETS = ("cpu-a", "cpu-b")
GRID = """
name: fake-ray
models: [efficientnet_b0]
strategies: [d, w, r, dwr, dWr]
scales: [1, 2, 4]
batch_sizes: [1, 2]
targets: [{name: cpu-a, backend: ort, device: cpu}, {name: cpu-b, backend: ort, device: cpu}]
"""
POINTS = 60              # 30 per target
# A loopback cluster for the tests alone: no token authentication, whatever ~/.ray holds (Ray turns
# it on for every cluster once a token file exists, but not for the nodes joining it).
RAY_ENV = {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports free now: held open together, so that none is handed out twice."""
    held = [socket.socket() for _ in range(count)]
    try:
        for s in held:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in held]
    finally:
        for s in held:
            s.close()


def free_port() -> int:
    return free_ports(1)[0]


class LocalCluster:
    """`ray start` processes, each in a session of its own: the cluster is every process of those
    sessions, and stopping it signals exactly those."""

    def __init__(self):
        self.temp_dir = tempfile.mkdtemp(prefix="spray-", dir="/tmp")   # short: Ray's socket paths
        src = Path(sys.modules["scaleprof"].__file__).resolve().parents[1]
        self.env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(src), str(ROOT)]), **RAY_ENV}
        self.sessions: list[int] = []
        self.ports = iter(free_ports(3 + len(TARGETS)))       # the head's, its dashboard's, each node's agent
        self.address = f"127.0.0.1:{next(self.ports)}"

    def start(self) -> None:
        self._ray_start("--head", "--port", self.address.rsplit(":", 1)[1], "--num-cpus", "1",
                        "--include-dashboard", "false", "--dashboard-port", str(next(self.ports)),
                        "--temp-dir", self.temp_dir)
        for name in TARGETS:
            self._ray_start("--address", self.address, "--num-cpus", "0",
                            "--resources", json.dumps({f"target:{name}": 1}))

    def _ray_start(self, *args: str) -> None:
        proc = subprocess.Popen([sys.executable, "-m", "ray.scripts.scripts", "start", "--disable-usage-stats",
                                 "--node-ip-address", "127.0.0.1", "--dashboard-agent-listen-port",
                                 str(next(self.ports)), *args], env=self.env, start_new_session=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.sessions.append(proc.pid)
        output, _ = proc.communicate(timeout=180)
        assert proc.returncode == 0, output

    def processes(self) -> list[int]:
        found = []
        for entry in Path("/proc").iterdir():
            try:
                if entry.name.isdigit() and os.getsid(int(entry.name)) in self.sessions:
                    found.append(int(entry.name))
            except OSError:                     # gone meanwhile
                pass
        return found

    def running_task(self, name: str) -> int | None:
        """The pid of a worker running the task ``name`` now (Ray titles it ray::name)."""
        for pid in self.processes():
            try:
                title = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].strip()
            except OSError:
                continue
            if title == f"ray::{name}".encode():
                return pid
        return None

    def stop(self) -> None:
        for sig, grace in ((signal.SIGTERM, 2.0), (signal.SIGKILL, 10.0)):
            for pid in self.processes():
                _signal(pid, sig)
            deadline = time.time() + grace
            while self.processes() and time.time() < deadline:
                time.sleep(0.1)
        shutil.rmtree(self.temp_dir, ignore_errors=True)


def _signal(pid: int, sig) -> None:
    try:
        os.kill(pid, sig)
    except OSError:
        pass


def _started_cluster(tries: int = 2) -> LocalCluster:
    """A started cluster; another try on other ports when one fails (a port found free may be taken by
    another program, or by one of Ray's own randomly chosen ones, before Ray binds it)."""
    local = LocalCluster()
    try:
        local.start()
    except AssertionError:
        local.stop()
        if tries <= 1:
            raise
        return _started_cluster(tries - 1)
    return local


@pytest.fixture(scope="module")
def cluster():
    with pytest.MonkeyPatch.context() as patch:
        for name, value in RAY_ENV.items():
            patch.setenv(name, value)                  # the drivers: this process and the ones it starts
        local = _started_cluster()
        try:
            yield local
        finally:
            local.stop()


def ok_keys(out) -> list[tuple[str, str]]:
    if not (Path(out) / STORE_NAME).exists():
        return []
    con = sqlite3.connect(Path(out) / STORE_NAME, timeout=30)
    try:
        return [tuple(r) for r in con.execute("SELECT point_key, target FROM points WHERE status='ok'")]
    except sqlite3.OperationalError:      # polled before the driver created the schema
        return []
    finally:
        con.close()


def wait_for_points(out, count: int, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while len(ok_keys(out)) < count:
        assert time.time() < deadline, f"fewer than {count} points stored in {timeout} s"
        time.sleep(0.05)


def test_ray_sweep_stores_what_the_local_executor_stores(cluster, tmp_path):
    config = parse_config(GRID)
    local = run_sweep(config, tmp_path / "local", stages=FakeStages(), progress=False, log=lambda m: None)
    said = []
    on_ray = run_sweep(config, tmp_path / "ray", stages=FakeStages(), progress=False, log=said.append,
                       executor=RayExecutor(cluster.address))
    assert (on_ray.measured, on_ray.reused, on_ray.failed, on_ray.pending) == \
           (local.measured, local.reused, local.failed, 0) == (POINTS, 16, 0, 0)
    assert stored(tmp_path / "ray") == stored(tmp_path / "local")
    assert any("CPU targets share a machine with preparation" in line for line in said), said
    again = run_sweep(config, tmp_path / "ray", stages=FakeStages(), progress=False, log=lambda m: None,
                      executor=RayExecutor(cluster.address))
    assert (again.measured, again.skipped) == (0, POINTS)


def test_a_failing_export_is_recorded_on_ray_as_by_the_local_executor(cluster, tmp_path):
    config = parse_config(GRID)
    run_sweep(config, tmp_path / "local", stages=FakeStages(fail_strategies=("w",)), progress=False,
              log=lambda m: None)
    result = run_sweep(config, tmp_path / "ray", stages=FakeStages(fail_strategies=("w",)), progress=False,
                       log=lambda m: None, executor=RayExecutor(cluster.address))
    assert (result.measured, result.failed) == (POINTS - 8, 8)      # w x2, w x4 at two batch sizes on two targets
    assert all(e.startswith("export: RuntimeError: cannot export <w> & friends") for _, e in result.failures)
    assert stored(tmp_path / "ray") == stored(tmp_path / "local")


def test_a_worker_killed_mid_task_is_retried_and_every_point_stored_once(cluster, tmp_path):
    out = tmp_path / "out"
    killed = []

    def kill_a_measuring_worker():
        wait_for_points(out, 4)
        deadline = time.time() + 60
        while not killed and time.time() < deadline:
            pid = cluster.running_task("measure")
            if pid is not None:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            time.sleep(0.02)

    killer = threading.Thread(target=kill_a_measuring_worker, daemon=True)
    killer.start()
    result = run_sweep(parse_config(GRID), out, stages=FakeStages(delay=0.2), progress=False, log=lambda m: None,
                       executor=RayExecutor(cluster.address))
    killer.join(timeout=5)
    assert killed, "no worker was running a measurement"
    assert (result.measured, result.failed, result.pending) == (POINTS, 0, 0)
    keys = ok_keys(out)
    assert len(keys) == POINTS == len(set(keys))
    with Store(out) as store:
        assert store.integrity_ok() and store.counts() == {"ok": POINTS}


def _driver(config_path, out, *extra) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(sys.modules["scaleprof"].__file__).parents[1]),
                                                        str(ROOT)])}
    return subprocess.Popen([sys.executable, str(SCRIPT), str(config_path), str(out), *extra], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_a_killed_driver_rerun_measures_only_what_is_missing(cluster, tmp_path):
    config_path = tmp_path / "grid.yaml"
    config_path.write_text(GRID)
    out = tmp_path / "out"
    driver = _driver(config_path, out, "--delay", "0.2", "--ray", cluster.address)
    wait_for_points(out, 6)
    os.kill(driver.pid, signal.SIGKILL)
    driver.communicate()
    assert driver.returncode == -signal.SIGKILL
    killed_at = ok_keys(out)
    assert 6 <= len(killed_at) < POINTS, "the driver was not killed in the middle"

    rerun = _driver(config_path, out, "--ray", cluster.address)
    stdout, stderr = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, stderr
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert summary == {"measured": POINTS - len(killed_at), "skipped": len(killed_at), "failed": 0}
    keys = ok_keys(out)
    assert len(keys) == POINTS == len(set(keys)) and set(killed_at) <= set(keys)
    with Store(out) as store:
        assert store.integrity_ok()
        per_sweep = dict(store.conn.execute("SELECT sweep_id, count(*) FROM points GROUP BY sweep_id").fetchall())
        assert per_sweep == {1: len(killed_at), 2: POINTS - len(killed_at)}
        assert store.conn.execute("SELECT count(*) FROM layers").fetchone()[0] == 4 * POINTS   # no orphans


def test_a_target_nobody_serves_is_pending_not_failed(cluster, tmp_path):
    text = GRID.replace("{name: cpu-b, backend: ort, device: cpu}", "{name: cpu-c, backend: ort, device: cpu}")
    said = []
    result = run_sweep(parse_config(text), tmp_path, stages=FakeStages(), progress=False, log=said.append,
                       executor=RayExecutor(cluster.address))
    assert (result.measured, result.failed, result.pending, result.total) == (30, 0, 30, POINTS)
    about_c = [line for line in said if "cpu-c" in line]
    assert len(about_c) == 1 and "pending" in about_c[0] and "target:cpu-c" in about_c[0], said
    with Store(tmp_path) as store:
        assert store.counts() == {"ok": 30}
        assert {p.target for p in store.points()} == {"cpu-a"}


def test_ray_auto_without_a_cluster_runs_on_this_machine_and_writes_the_local_report(tmp_path, monkeypatch):
    from scaleprof.report import write_report
    from scaleprof.sweep.executors import ray_cluster

    monkeypatch.setattr(ray_cluster, "_running_cluster", lambda: None)     # whatever else runs here
    for name, value in RAY_ENV.items():
        monkeypatch.setenv(name, value)
    src = Path(sys.modules["scaleprof"].__file__).resolve().parents[1]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(src), str(ROOT)]))    # the workers it starts
    config = parse_config(GRID.replace("targets: [{name: cpu-a, backend: ort, device: cpu}, "
                                       "{name: cpu-b, backend: ort, device: cpu}]", "targets: [cpu-ort]"))
    run_sweep(config, tmp_path / "local", stages=FakeStages(), progress=False, log=lambda m: None)
    result = run_sweep(config, tmp_path / "auto", stages=FakeStages(), progress=False, log=lambda m: None,
                       executor=RayExecutor("auto"))
    assert (result.measured, result.failed, result.pending) == (30, 0, 0)
    assert stored(tmp_path / "auto") == stored(tmp_path / "local")
    reports = [write_report(tmp_path / name) for name in ("local", "auto")]
    for attribute in ("markdown", "csv", "json", "html"):
        texts = [getattr(paths, attribute).read_text() for paths in reports]
        assert texts[0] == texts[1], attribute


def test_an_address_nobody_answers_at_is_one_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "scaleprof.cli", "sweep", "demo", "-o", str(tmp_path / "out"),
                           "--ray", f"127.0.0.1:{free_port()}"], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **RAY_ENV})
    lines = [l for l in proc.stderr.splitlines() if l.strip()]
    assert proc.returncode == 1 and len(lines) == 1 and "no Ray cluster answers at 127.0.0.1:" in lines[0], proc.stderr
    assert not (tmp_path / "out" / STORE_NAME).exists()
