"""report.html in a real browser: Debian's chromium, headless, driven by selenium through the system chromedriver
(no browser download at run time). The page loads without console errors, every chart has non-blank pixels, sorting
a column reorders the rows, and the numbers shown equal leaderboard.json. Skips, saying why, without a browser."""

import json
import os
import shutil

import pytest

from mfm_bench.cli import main

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e '.[report]')")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and DRIVER),
    reason="no chromium/chromedriver on PATH (Debian: apt-get install chromium chromium-driver)",
)

SUITE = """\
name: tiny-report
datasets:
  - name: synthetic-factors
    params: {n_train: 64, n_valid: 16, n_test: 32, dims: {text: 6, audio: 3, visual: 4}}
models:
  - {name: supervised, label: late, params: {fusion: late}}
  - {name: supervised, label: concat, params: {fusion: concat}}
seeds: [0, 1]
train: {epochs: 2, device: cpu}
evaluate:
  conditions: [clean, {missing: {modality: text, rate: [0.5, 1.0]}}, {noise: {modality: audio, std: [0.5]}}]
report: {formats: [json, html]}
"""

PIXELS = """
const img = arguments[0], c = document.createElement('canvas');
c.width = img.naturalWidth; c.height = img.naturalHeight;
const g = c.getContext('2d'); g.drawImage(img, 0, 0);
const d = g.getImageData(0, 0, c.width, c.height).data; let ink = 0;
for (let i = 0; i < d.length; i += 4) if (d[i + 3] > 0 && (d[i] < 200 || d[i + 1] < 200 || d[i + 2] < 200)) ink++;
return ink;
"""


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    tmp = tmp_path_factory.mktemp("report")
    (tmp / "s.yaml").write_text(SUITE)
    assert main(["run", str(tmp / "s.yaml"), "--out", str(tmp / "out"), "--no-progress"]) == 0
    opts = Options()
    opts.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1400,1000",
    ):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=opts, service=Service(DRIVER))
    try:
        driver.get((tmp / "out" / "report.html").as_uri())
        yield driver, json.loads((tmp / "out" / "leaderboard.json").read_text())
        if os.environ.get("MFM_BENCH_REPORT_SCREENSHOT"):
            driver.save_screenshot(os.environ["MFM_BENCH_REPORT_SCREENSHOT"])
    finally:
        driver.quit()


def test_loads_without_console_errors(page):
    driver, _ = page
    assert driver.title == "mfm-bench report"
    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []


def test_every_chart_has_ink(page):
    driver, _ = page
    charts = driver.find_elements("css selector", "img.chart")
    alts = [c.get_attribute("alt") for c in charts]
    assert any("robustness curves" in a for a in alts) and sum("training curves" in a for a in alts) == 4
    for chart in charts:
        assert driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth", chart) > 0
        assert driver.execute_script(PIXELS, chart) > 500, chart.get_attribute("alt")


def _column(table, col):
    return [r.find_elements("css selector", "td")[col].text for r in table.find_elements("css selector", "tbody tr")]


def test_sorting_a_column_reorders_rows(page):
    driver, _ = page
    table = driver.find_element("css selector", "table[data-heading^='robustness summary']")
    headers = [th.text for th in table.find_elements("css selector", "th")]
    col = headers.index("AUC")
    before = _column(table, 1)
    table.find_elements("css selector", "th")[col].click()
    up = [float(v) for v in _column(table, col)]
    assert up == sorted(up)
    table.find_elements("css selector", "th")[col].click()
    down = [float(v) for v in _column(table, col)]
    assert down == sorted(up, reverse=True)
    assert sorted(_column(table, 1)) == sorted(before)  # the same rows, moved whole
    assert _column(table, 1) != before or up == down


def test_numbers_equal_leaderboard_json(page):
    driver, board = page
    clean = board["datasets"]["synthetic-factors"]["clean"]
    table = driver.find_element("css selector", "table[data-heading='clean test split']")
    headers = [th.text.split(" ")[0] for th in table.find_elements("css selector", "th")]
    checked = 0
    for row in table.find_elements("css selector", "tbody tr"):
        cells = [td.text for td in row.find_elements("css selector", "td")]
        metrics = clean[cells[0]]["metrics"]
        for name, text in zip(headers, cells):
            if name in metrics and " ± " in text:
                # "mean ± std [lo, hi]": the 95% CI follows when the leaderboard has one (mfm_bench.stats)
                head, _, ci = text.partition(" [")
                mean, std = (float(x) for x in head.split(" ± "))
                assert mean == pytest.approx(metrics[name]["mean"], abs=5e-4), (cells[0], name)
                assert std == pytest.approx(metrics[name]["std"], abs=5e-4), (cells[0], name)
                if ci:  # cost columns show none
                    lo, hi = (float(x) for x in ci.rstrip("]").split(", "))
                    assert [lo, hi] == pytest.approx(metrics[name]["ci"], abs=5e-4), (cells[0], name)
                checked += 1
    assert checked >= 10
