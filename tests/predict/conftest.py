import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))      # predict_synthetic


@pytest.fixture
def user_cache(tmp_path, monkeypatch):
    """A private per-user cache (calibrations, specs, features) for one test."""
    cache = tmp_path / "user-cache"
    monkeypatch.setenv("SCALEPROF_CACHE_DIR", str(cache))
    return cache
