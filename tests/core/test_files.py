"""Temporary folders carry their owner: a killed run's leftovers go on the next run, other hosts' stay."""

from __future__ import annotations

import os
import subprocess
import sys

from scaleprof.core.files import make_temp_dir, owner_tag, remove_stale


def test_a_killed_builds_folder_goes_and_new_folders_follow_the_umask(tmp_path):
    host = owner_tag().rsplit("-", 1)[0]
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".build-{host}-{dead.stdout.strip()}.x1"
    trash = tmp_path / f".trash-ort-0123456789abcdef-{host}-{dead.stdout.strip()}.5"
    other_host = tmp_path / f".build-00000000-{dead.stdout.strip()}.x2"
    for folder in (stale, trash, other_host):
        (folder / "part").mkdir(parents=True)
    previous = os.umask(0o022)
    try:
        fresh = make_temp_dir(tmp_path, ".build-")
    finally:
        os.umask(previous)
    remove_stale(tmp_path, ".trash-", "")
    assert not stale.exists() and not trash.exists() and other_host.exists()
    assert fresh.stat().st_mode & 0o777 == 0o755 and owner_tag() in fresh.name
