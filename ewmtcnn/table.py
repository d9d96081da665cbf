"""`python -m ewmtcnn.table`: the README's results table across the prior variants.

Run from the repository root after the 13 variant experiments have run (`dvc queue start`).
It reads `dvc exp show --json`, picks each variant's newest experiment, reads its out-of-fold
predictions from the experiment's commit, tests every variant against `none`, writes the
chart, replaces the README text between the markers, and prints the table.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from io import StringIO
from pathlib import Path
from typing import Any

import pandas as pd

from ewmtcnn import InputError, comparison, params
from ewmtcnn.atomic import written
from ewmtcnn.layout import PREDICTIONS

START = "<!-- results-table:start -->"
END = "<!-- results-table:end -->"


def _output(command: list[str], what: str) -> str:
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        lines = (result.stderr or result.stdout).strip().splitlines()
        raise InputError(f"{what} failed: {lines[-1] if lines else f'exit {result.returncode}'}")
    return result.stdout


def exp_show(path: Path | None) -> list[dict[str, Any]]:
    """`dvc exp show --json` of this repository (the DVC of this interpreter), or a saved copy."""
    if path is None:
        text = _output([sys.executable, "-m", "dvc", "exp", "show", "--json"], "dvc exp show")
    else:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as e:
            raise InputError(f"{path}: {e.strerror}") from None
    try:
        show = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"{path or 'dvc exp show'}: not JSON ({e})") from None
    if not isinstance(show, list):
        raise InputError(f"{path or 'dvc exp show'}: expected a list of baselines, found {type(show).__name__}")
    return show


def predictions(row: pd.Series) -> pd.DataFrame:
    """An experiment's out-of-fold predictions, from its commit (git-tracked, not in the DVC cache)."""
    text = _output(["git", "show", f"{row['rev']}:{PREDICTIONS.as_posix()}"],
                   f"reading {PREDICTIONS} of experiment {row['name']} ({row['rev'][:7]})")
    return pd.read_csv(StringIO(text))


def replace_block(readme: str, block: str) -> str:
    """The README with the text between the markers replaced by `block`."""
    if readme.count(START) != 1 or readme.count(END) != 1 or readme.index(START) > readme.index(END):
        raise InputError(f"the README needs one {START} line followed by one {END} line")
    head, rest = readme.split(START)
    tail = rest.split(END)[1]
    return f"{head}{START}\n{block}\n{END}{tail}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m ewmtcnn.table",
        description="Compare the prior-layer variants of `dvc exp show`: README table, chart, paired tests against none.")
    parser.add_argument("--readme", type=Path, default=Path("README.md"), help="file with the table markers")
    parser.add_argument("--plot", type=Path, default=Path("plots/variants.png"), help="the comparison chart (PNG)")
    parser.add_argument("--show-json", type=Path, help="a saved `dvc exp show --json` instead of running it")
    args = parser.parse_args(argv)
    try:
        readme = args.readme.read_text(encoding="utf-8")
    except OSError as e:
        raise InputError(f"{args.readme}: {e.strerror}") from None
    replace_block(readme, "")  # missing markers fail before the slow part
    frame = comparison.experiments(exp_show(args.show_json))
    for row in frame[frame["error"].notna()].itertuples():
        print(f"skipped experiment {row.name} ({row.rev[:7]}): {row.error}", file=sys.stderr)
    rows = comparison.variant_rows(frame)
    results = comparison.compare({v: predictions(rows.loc[v.label]) for v in comparison.VARIANTS})
    table = comparison.markdown(rows, results)
    comparison.plot(rows, args.plot)
    with written(args.readme) as tmp:
        tmp.write_text(replace_block(readme, table), encoding="utf-8")
    print(table)


if __name__ == "__main__":
    params.run_cli(main)
