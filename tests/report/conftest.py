import pytest

from tests.report.synthetic import fill_store, synthetic_rows


@pytest.fixture
def synthetic_store(tmp_path):
    rows = synthetic_rows(strategies=("d", "w", "r", "dwr", "dWr"))
    fill_store(tmp_path, rows)
    return tmp_path
