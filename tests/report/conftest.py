import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))      # synthetic

from synthetic import fill_store, synthetic_rows  # noqa: E402


@pytest.fixture
def synthetic_store(tmp_path):
    rows = synthetic_rows(strategies=("d", "w", "r", "dwr", "dWr"))
    fill_store(tmp_path, rows)
    return tmp_path
