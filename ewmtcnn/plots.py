"""`python -m ewmtcnn.plots` (`make plots`): every chart of dvc.yaml's `plots`, as a page that draws without a network.

- `dvc plots show` writes a page whose charts load Vega, Vega-Lite and Vega-Embed from a CDN: offline,
  only its images show. This page inlines the three libraries as vl-convert-python ships them (one
  bundle, no download), through DVC's own `--html-template`, so DVC still decides what is drawn:
  whatever dvc.yaml declares, its Vega-Lite charts and its images.
- The charts are drawn as SVG: sharp at any zoom, and their marks are elements a test can count.
- Arguments other than `--out` go to `dvc plots show` as they are (targets, `--split`, ...).
- Writes `<out>/index.html` and, for the images, `<out>/static/`; `dvc_plots/`, the default, is git-ignored.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import vl_convert

from ewmtcnn import InputError, cli

#: DVC, as this interpreter runs it.
DVC = [sys.executable, "-m", "dvc"]
#: DVC's chart templates declare Vega-Lite 5 schemas: the newest 5.x that vl-convert ships draws them.
VEGA_LITE_MAJOR = "5."
#: The page, as `--html-template` reads it: DVC replaces `{plot_divs}` with one element per chart.
#: Its `{scripts}`, the CDN's script tags, is left out. Each chart's element calls `vegaEmbed`; the
#: bundle runs in a function of its own, so that its names do not clash with the charts' `var spec`.
PAGE = """<!DOCTYPE html>
<html>
<head>
<meta charset="utf-8">
<title>DVC plots</title>
<script>
(() => {{
{bundle}
const embed = window.vegaEmbed;
window.vegaEmbed = (element, spec, options) => embed(element, spec, {{renderer: "svg", ...options}});
}})();
</script>
<style>
body {{ font-family: sans-serif; }}
body > div {{ margin: 1em 0; }}
</style>
</head>
<body>
{{plot_divs}}
</body>
</html>
"""


def vega_lite_version() -> str:
    """The newest Vega-Lite 5 that vl-convert ships, such as `5.21`."""
    versions = [v for v in vl_convert.get_vegalite_versions() if v.removeprefix("v").startswith(VEGA_LITE_MAJOR)]
    if not versions:
        raise InputError(f"vl-convert-python ships no Vega-Lite {VEGA_LITE_MAJOR}x: reinstall the pinned version")
    return max(versions, key=lambda v: tuple(int(part) for part in v.removeprefix("v").split(".")))


def page() -> str:
    """The HTML template: the libraries' bundle inline, then `{plot_divs}`."""
    return PAGE.format(bundle=vl_convert.javascript_bundle(vl_version=vega_lite_version()))


def render(out: Path, dvc_args: Sequence[str] = ()) -> Path:
    """Run `dvc plots show` with the offline template, then copy its page into `out`; the page's path.

    - DVC writes into a temporary folder first: when it fails or finds nothing to plot (it then
      exits 0), `out` is left as it was and its message is an InputError.
    """
    with tempfile.TemporaryDirectory() as folder:
        template, drawn = Path(folder) / "template.html", Path(folder) / "page"
        template.write_text(page(), encoding="utf-8")
        command = [*DVC, "plots", "show", *dvc_args, "--html-template", str(template), "-o", str(drawn)]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        said = (result.stderr + result.stdout).strip() or "nothing to plot (no such target?)"
        if result.returncode != 0 or not (drawn / "index.html").is_file():
            raise InputError(f"dvc plots show wrote no page: {said}")
        shutil.copytree(drawn, out, dirs_exist_ok=True)
    return out / "index.html"


def main(argv: Sequence[str] | None = None) -> None:
    """Write the offline page and print its path."""
    parser = argparse.ArgumentParser(
        prog="python -m ewmtcnn.plots",
        description="dvc plots show, as a page that draws its charts without a network; other arguments go to it.",
    )
    parser.add_argument("--out", type=Path, default=Path("dvc_plots"), help="the page's folder (default: dvc_plots)")
    args, dvc_args = parser.parse_known_args(argv)
    print(render(args.out, dvc_args))


if __name__ == "__main__":
    cli.run(main)
