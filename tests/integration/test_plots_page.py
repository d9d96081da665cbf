"""`make plots` (ewmtcnn.plots): the repository's charts drawn by headless Chromium, no host name resolving.

- The charts expected are those `dvc plots show --json` lists for dvc.yaml's `plots`, whatever they are.
- Each Vega-Lite chart must be drawn with data marks, and its marks' area of the screenshot must hold
  coloured pixels (axes, grid and text are grey); each image must load and be no uniform blank.
- Chromium is Debian's `chromium` package (.ci/run installs it); without it the test is skipped,
  except in CI (CI=true), where it fails.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ewmtcnn import InputError, plots
from support import REPO

BROWSER = "chromium"
WIDTH = 1200
#: Chromium's flags: headless as root, no network name resolves, a profile of the test's own.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--host-resolver-rules=MAP * ~NOTFOUND"]
#: How long Chromium may run one page in virtual time (ms): it runs scripts until idle, far within this.
BUDGET_MS = 20_000
TIMEOUT_S = 300
#: Inserted before the page's charts: record each `vegaEmbed` call, and once every chart is drawn
#: (or failed), write what each chart drew and where into a JSON script element for --dump-dom.
MEASURE = """<script>
(() => {
  const pending = [], embed = window.vegaEmbed;
  window.vegaEmbed = (...args) => { const drawn = embed(...args); pending.push(drawn); return drawn; };
  const box = (elements) => {
    const rects = [...elements].map((e) => e.getBoundingClientRect()).filter((r) => r.width * r.height > 0);
    if (!rects.length) return null;
    return [Math.min(...rects.map((r) => r.left)), Math.min(...rects.map((r) => r.top)),
            Math.max(...rects.map((r) => r.right)), Math.max(...rects.map((r) => r.bottom))];
  };
  window.addEventListener("load", () => Promise.allSettled(pending).then((results) => {
    const charts = [...document.querySelectorAll("svg.marks")].map((svg) => {
      const marks = svg.querySelectorAll("g.role-mark:not(.mark-text) > *");
      const titles = [...svg.querySelectorAll(".role-title-text")];  // a facet's headers hold titles too
      const title = titles.find((t) => !t.closest("[class*=role-column-], [class*=role-row-]"))?.textContent;
      return {title, marks: marks.length, box: box(marks)};
    });
    const images = [...document.querySelectorAll("img")].map((img) => (
      {src: img.getAttribute("src"), width: img.naturalWidth, box: box([img])}));
    const errors = results.filter((r) => r.status === "rejected").map((r) => String(r.reason));
    const measured = document.createElement("script");
    measured.type = "application/json";
    measured.id = "measured";
    measured.textContent = JSON.stringify({charts, images, errors, height: document.documentElement.scrollHeight});
    document.body.append(measured);
  }));
})();
</script>
"""


@pytest.fixture(scope="module")
def browser() -> str:
    """Chromium's path: CI fails without it, elsewhere the test is skipped with how to install it."""
    found = shutil.which(BROWSER)
    if found is None:
        why = f"no `{BROWSER}` on PATH: install Debian's package (as root: apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)
    return found


def chromium(browser: str, page: Path, profile: Path, *args: str) -> str:
    """Run headless Chromium on `page` with `args`; its stdout."""
    command = [browser, *FLAGS, f"--user-data-dir={profile}", f"--virtual-time-budget={BUDGET_MS}", *args]
    result = subprocess.run([*command, page.as_uri()], capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def coloured(pixels: np.ndarray) -> float:
    """The share of pixels whose channels differ by over 40 of 255: colour, not white, grey or black."""
    rgb = pixels[..., :3].astype(int)
    return float(((rgb.max(axis=-1) - rgb.min(axis=-1)) > 40).mean())


def crop(shot: np.ndarray, box: list[float]) -> np.ndarray:
    """The pixels of the screenshot inside a box (left, top, right, bottom) in CSS pixels (1 CSS px = 1 px here)."""
    left, top, right, bottom = (round(v) for v in box)
    return shot[top:bottom, left:right]


def test_every_chart_of_dvc_yaml_draws_offline(browser: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    listed = subprocess.run(
        [*plots.DVC, "plots", "show", "--json", "-o", str(tmp_path / "json")],
        capture_output=True,
        text=True,
        check=True,
    )
    charts = json.loads(listed.stdout)["data"]
    expected = {name: {entry["type"] for entry in entries} for name, entries in charts.items()}
    assert expected and all(len(types) == 1 for types in expected.values()), expected
    vega = sorted(name for name, types in expected.items() if types == {"vega"})
    images = sorted(name for name, types in expected.items() if types == {"image"})
    assert len(vega) + len(images) == len(expected), expected

    page = plots.render(tmp_path / "page")
    html = page.read_text(encoding="utf-8")
    assert not re.search(r"""src\s*=\s*["']?(https?:)?//""", html), "the page loads something from the network"
    measured_page = page.with_name("measured.html")  # beside index.html, so that static/ resolves
    head, body = html.rsplit("</head>", 1)  # the bundle's strings hold "</head>" too
    measured_page.write_text(f"{head}{MEASURE}</head>{body}", encoding="utf-8")

    dom = chromium(browser, measured_page, tmp_path / "profile", f"--window-size={WIDTH},1000", "--dump-dom")
    found = re.search(r'<script type="application/json" id="measured">(.*?)</script>', dom, re.DOTALL)
    assert found, "the page never finished drawing its charts"
    measured = json.loads(found.group(1))
    assert measured["errors"] == []
    assert sorted(chart["title"] for chart in measured["charts"]) == vega
    assert len(measured["images"]) == len(images)

    shot_path = tmp_path / "shot.png"
    size = f"--window-size={WIDTH},{measured['height']}"  # the whole page, in the layout the measures are of
    chromium(browser, measured_page, tmp_path / "profile", size, f"--screenshot={shot_path}")
    with Image.open(shot_path) as image:
        shot = np.asarray(image.convert("RGB"))
    assert shot.shape[:2] == (measured["height"], WIDTH)
    for chart in measured["charts"]:
        assert chart["marks"] > 0 and chart["box"] is not None, chart
        assert coloured(crop(shot, chart["box"])) > 0.005, chart  # drawn, not blank: see coloured()
    for drawn in measured["images"]:
        assert drawn["width"] > 0 and drawn["box"] is not None, drawn  # loaded from static/
        assert (page.parent / drawn["src"]).is_file()
        assert crop(shot, drawn["box"]).std() > 10, drawn


def test_nothing_to_plot_is_refused_and_leaves_no_page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """DVC exits 0 without a page when a target names no plot: that is an error, not a stale page."""
    monkeypatch.chdir(REPO)
    with pytest.raises(InputError, match="dvc plots show wrote no page: nothing to plot"):
        plots.render(tmp_path / "page", ["no/such/plot.csv"])
    assert not (tmp_path / "page").exists()
