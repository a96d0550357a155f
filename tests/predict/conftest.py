import pytest


@pytest.fixture
def user_cache(tmp_path, monkeypatch):
    """A private per-user cache (calibrations, specs, features) for one test."""
    cache = tmp_path / "user-cache"
    monkeypatch.setenv("SCALEPROF_CACHE_DIR", str(cache))
    return cache
