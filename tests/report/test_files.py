"""The report files: self-contained HTML (escaped), Markdown, CSV/JSON with timm's names; a real browser."""

from __future__ import annotations

import csv
import errno
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.report.synthetic import fill_store, synthetic_rows
from scaleprof.report import write_report
from scaleprof.report.tables import COLUMNS

HOSTILE = '<script>alert("x")</script>&<b>'


def test_report_files_and_verdict(synthetic_store):
    paths = write_report(synthetic_store)
    for p in (paths.html, paths.markdown, paths.csv, paths.json):
        assert p.exists() and p.stat().st_size > 0
    assert paths.points == 15
    assert paths.verdicts and "acts predicts latency best" in paths.verdicts[0]
    html = paths.html.read_text()
    assert "acts predicts latency best: Pearson r=1.000" in html
    assert html.count('src="data:image/png;base64,') >= 5          # fits, scaling, layers x3
    assert "http://" not in html.replace("http://www.w3.org", "") and "https://" not in html
    assert "<script" not in html.lower()
    md = paths.markdown.read_text()
    assert "acts predicts latency best" in md
    for image in (synthetic_store / "report_files").iterdir():
        assert f"report_files/{image.name}" in md
    assert not list(synthetic_store.glob(".*.tmp"))


def test_csv_and_json_use_timm_names(synthetic_store):
    paths = write_report(synthetic_store, plots=False)
    rows = list(csv.DictReader(paths.csv.open()))
    assert len(rows) == 15
    required = ["model", "strategy", "alpha", "scale", "resolution", "batch", "precision", "target", "flops",
                "params", "acts", "latency_ms_median", "throughput", "infer_samples_per_sec", "infer_step_time",
                "infer_batch_size", "infer_img_size", "param_count", "infer_gmacs", "infer_macts"]
    assert set(required) <= set(rows[0]) and list(rows[0]) == list(COLUMNS)
    for r in rows:
        assert float(r["infer_step_time"]) == pytest.approx(float(r["latency_ms_median"]), abs=1e-3)
        assert float(r["infer_samples_per_sec"]) == pytest.approx(float(r["throughput"]), abs=0.01)
        assert r["infer_img_size"] == r["resolution"] and r["infer_batch_size"] == r["batch"]
        assert float(r["param_count"]) == pytest.approx(int(r["params"]) / 1e6, abs=0.01)
        assert float(r["infer_gmacs"]) == pytest.approx(int(r["flops"]) / 1e9, abs=1e-4)
        assert float(r["infer_macts"]) == pytest.approx(int(r["acts"]) / 1e6, abs=1e-3)
    data = json.loads(paths.json.read_text())
    assert len(data["points"]) == 15 and "pycls" in data["convention"] and data["environments"]


def test_strings_from_configs_and_models_are_escaped(tmp_path):
    rows = synthetic_rows(model=HOSTILE, target='cpu"<i>')
    fill_store(tmp_path, rows, failures=[HOSTILE])
    paths = write_report(tmp_path)
    html = paths.html.read_text()
    assert HOSTILE not in html and "<script" not in html.lower() and "<i>" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&lt;b&gt;" in html
    md = paths.markdown.read_text()
    assert "<script>" not in md and "\\<script\\>" in md


def test_failed_points_are_listed(tmp_path):
    fill_store(tmp_path, synthetic_rows(), failures=["brokennet"])
    paths = write_report(tmp_path, plots=False)
    assert paths.failures == 1
    assert "export failed for brokennet" in paths.html.read_text()


def test_budget_option(synthetic_store):
    paths = write_report(synthetic_store, budgets=[15.0, 30.0], plots=False)
    assert "15" in paths.html.read_text() and "30" in paths.html.read_text()
    assert "largest that fits" in paths.html.read_text()
    # one budget row per budget (target cpu-ort, batch 1), in the order given
    budget_cells = [line.split(" | ")[2] for line in paths.markdown.read_text().splitlines()
                    if line.startswith("| cpu-ort | 1 | ") and line.endswith(" / 15 |")]
    assert budget_cells == ["15", "30"]


def test_failing_write_keeps_the_previous_report(synthetic_store, monkeypatch):
    paths = write_report(synthetic_store, plots=False)
    before = paths.html.read_text()

    real = Path.write_text

    def full(self, *a, **kw):
        if self.name.startswith(".report.html.") and self.name.endswith(".tmp"):
            real(self, "<html>half", encoding="utf-8")
            raise OSError(errno.ENOSPC, "No space left on device", str(self))
        return real(self, *a, **kw)

    monkeypatch.setattr(Path, "write_text", full)
    with pytest.raises(OSError):
        write_report(synthetic_store, plots=False)
    assert paths.html.read_text() == before
    assert not list(synthetic_store.glob(".*.tmp"))


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.mark.browser
@pytest.mark.skipif(_chromium() is None, reason="headless Chromium is not installed (make test apt-installs it)")
def test_report_renders_in_headless_chromium(synthetic_store, tmp_path):
    from PIL import Image

    paths = write_report(synthetic_store)
    shot = tmp_path / "shot.png"
    cmd = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run",
           "--disable-dev-shm-usage",        # a container's /dev/shm is often 64 MB: too small for the page
           f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", "--window-size=1280,3000",
           paths.html.resolve().as_uri()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert shot.exists() and shot.stat().st_size > 10_000
    image = Image.open(shot).convert("RGB")
    assert image.size == (1280, 3000)
    colors = image.getcolors(maxcolors=1 << 20)
    assert colors is not None and len(colors) > 50, "the screenshot is (nearly) blank"
    most = max(count for count, _ in colors)
    assert most < 0.95 * image.size[0] * image.size[1], "one colour covers the whole page"
    # the header bar (dark) and the embedded plots (many colours) rendered
    assert image.getpixel((10, 10)) != (255, 255, 255)
    dom = subprocess.run([*cmd[:-1], "--dump-dom", paths.html.resolve().as_uri()],
                         capture_output=True, text=True, timeout=120)
    dom = [c for c in dom.stdout.split() if c]
    assert any("predicts" in c for c in dom)
