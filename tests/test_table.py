"""The variants table (ewmtcnn.table): its columns on rows made here, and the whole command on the
experiments of a throwaway DVC project (tests/variants_project.py)."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pytest

from dvcrepo import Repo
from ewmtcnn import InputError, cli, metrics, table
from ewmtcnn.experiments import arm_rows, experiments
from ewmtcnn.grid import ARMS, BASELINE, Arm
from ewmtcnn.published import REIMPLEMENTATION
from ewmtcnn.statistics import compare, verdict
from ewmtcnn.table import END, START, markdown, replace_block
from variants_project import build, read_show, table_command

ORIGINAL_FREEZE_DIRECT = Arm("original", True, "direct")


def cells(line: str) -> list[str]:
    """The cells of one markdown table line."""
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def table_lines(text: str) -> list[list[str]]:
    """The header and the rows of the markdown table in `text`, as cells (the separator left out)."""
    lines = [line for line in text.splitlines() if line.startswith("| ")]
    return [cells(line) for line in lines]


def made_rows(arms: list[Arm], measures: tuple[str, ...]) -> pd.DataFrame:
    """Rows as `arm_rows` gives them, with every score of the i-th arm at 0.1 * (i + 1) + 0.0234
    (std 0.0041) and the settings of the default variant."""
    records = []
    for i, _ in enumerate(arms):
        record = {
            "name": f"exp-{i}",
            "model.pretrained": True,
            "train.finetune": False,
            "data.neutral": "drop",
            "data.label": "dominant",
            "model.backbone": "efficientnet_lite0",
            "split.folds": 5,
            "split.seed": 0,
        }
        for part in ("test", "train"):
            for score in ("acc", *measures):
                record |= {f"{part}.{score}.mean": 0.1 * (i + 1) + 0.0234, f"{part}.{score}.std": 0.0041}
        records.append(record)
    return pd.DataFrame(records, index=pd.Index([arm.label for arm in arms], name="variant"))


PAIRED = {
    "images": 10,
    "acc_diff": 0.1,
    "acc_p": 0.004,
    "acc_p_holm": 0.008,
    "kl_diff": -0.05,
    "kl_p": 0.1,
    "kl_p_holm": 0.2,
}


def test_columns_of_a_table_made_here() -> None:
    arms = [BASELINE, ORIGINAL_FREEZE_DIRECT]
    text = markdown(made_rows(arms, metrics.MEASURES), arms, {ORIGINAL_FREEZE_DIRECT: PAIRED})
    header, none, original = table_lines(text)
    assert header == [
        "init",
        "freeze",
        "head",
        "test acc",
        "test KL",
        "Chebyshev",
        "Clark",
        "Canberra",
        "Cosine",
        "Intersection",
        "train acc (in place)",
        "reimpl. train acc",
        "train KL / 6 (in place)",
        "reimpl. train KL (its mean over classes: KL / 6)",
        "Δacc vs none (Holm p)",
        "ΔKL vs none (Holm p)",
        "prior for KL",
        "prior for acc",
    ]
    assert none == [
        "none",
        "-",
        "-",
        "0.123 ± 0.004",
        "0.1234 ± 0.0041",
        *["0.123 ± 0.004"] * 5,
        "12.3%",
        "74.747%",
        "0.0206",
        "0.0456907",
        *["(baseline)"] * 4,
    ]
    assert original == [
        "original",
        "freeze",
        "direct",
        "0.223 ± 0.004",
        "0.2234 ± 0.0041",
        *["0.223 ± 0.004"] * 5,
        "22.3%",
        "50.051%",
        "0.0372",
        "0.0912462",
        "+0.100 (p = 0.008)",
        "-0.0500 (p = 0.200)",
        "no measurable difference",
        "helps",
    ]
    assert text.splitlines()[0] == (
        "Emotion6, 10 images, 6 emotions (neutral dropped), class label `dominant`; "
        "efficientnet_lite0 (ImageNet weights), frozen features, head trained; "
        "5-fold cross-validation (split seed 0)."
    )
    assert "Holm-adjusted over the 1 variants" in text.splitlines()[-1]


def test_a_new_measure_is_a_new_column(monkeypatch: pytest.MonkeyPatch) -> None:
    """Header and cells come from the same columns: a measure added to metrics.MEASURES appears in
    both, in its place, and every row keeps one cell per header cell."""
    measures = (*metrics.MEASURES, "euclidean")
    monkeypatch.setattr(metrics, "MEASURES", measures)
    arms = [BASELINE, ORIGINAL_FREEZE_DIRECT]
    header, *rows = table_lines(markdown(made_rows(arms, measures), arms, {ORIGINAL_FREEZE_DIRECT: PAIRED}))
    assert len(header) == 19 and header[header.index("Intersection") + 1] == "Euclidean"
    assert [len(row) for row in rows] == [19, 19]
    assert [row[header.index("Euclidean")] for row in rows] == ["0.123 ± 0.004", "0.223 ± 0.004"]
    assert [row[header.index("prior for acc")] for row in rows] == ["(baseline)", "helps"]


def test_replace_block() -> None:
    assert replace_block(f"a\n{START}\nx\n{END}\nb\n", "T") == f"a\n{START}\nT\n{END}\nb\n"
    with pytest.raises(InputError, match="needs one"):
        replace_block(f"{END}\n{START}\n", "T")
    with pytest.raises(InputError, match="needs one"):
        replace_block(f"{START}\n{START}\n{END}\n", "T")


# --- on the experiments of a throwaway DVC project ---------------------------------------------------


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Repo:
    return build(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def results(project: Repo) -> tuple[pd.DataFrame, dict]:
    rows = arm_rows(experiments(read_show(project)), ARMS)
    tables = {
        arm: pd.read_csv(
            io.StringIO(project.run("git", "show", f"{rows.at[arm.label, 'rev']}:metrics/predictions.csv").stdout)
        )
        for arm in ARMS
    }
    return rows, compare(tables, BASELINE)


def test_markdown_table(results: tuple[pd.DataFrame, dict]) -> None:
    rows, by_arm = results
    header, *lines = table_lines(markdown(rows, ARMS, by_arm))
    for arm, line in zip(ARMS, lines, strict=True):
        cell = dict(zip(header, line, strict=True))
        assert (cell["init"], cell["freeze"], cell["head"]) == (arm.init, arm.mode or "-", arm.head or "-")
        row = rows.loc[arm.label]
        for name, score, rounding in (("test acc", "acc", 5e-4), ("test KL", "kl", 5e-5), ("Cosine", "cosine", 5e-4)):
            mean, std = (float(number) for number in cell[name].split(" ± "))
            assert mean == pytest.approx(row[f"test.{score}.mean"], abs=rounding)
            assert std == pytest.approx(row[f"test.{score}.std"], abs=rounding)
        assert float(cell["train KL / 6 (in place)"]) == pytest.approx(row["train.kl.mean"] / 6, abs=5e-5)
        published = REIMPLEMENTATION[(arm.init, arm.freeze)]
        assert float(cell["reimpl. train acc"].rstrip("%")) == published.acc_percent
        if arm == BASELINE:
            assert cell["prior for KL"] == "(baseline)"
        else:
            s = by_arm[arm]
            assert float(cell["ΔKL vs none (Holm p)"].split(" (")[0]) == pytest.approx(s["kl_diff"], abs=5e-5)
            assert cell["prior for KL"] == verdict(s["kl_diff"], s["kl_p_holm"], lower_is_better=True)
    # The fake stage's one clearly better arm (predictions closer to the truth) helps on both measures.
    assert lines[ARMS.index(Arm("corr", True, "direct"))][-2:] == ["helps", "helps"]


def test_table_command_end_to_end(project: Repo, monkeypatch: pytest.MonkeyPatch) -> None:
    done = table_command(project)
    assert done.returncode == 0, done.stderr
    readme = (project.root / "README.md").read_text()
    before, block = readme.split(START)
    block, after = block.split(END)
    assert before == "# Project\n\nIntro.\n\n" and after == "\n\n## After\n\nkept\n"
    assert "old table" not in block and block.strip() in done.stdout
    assert sum(line.startswith("| ") for line in block.splitlines()) == 14
    chart = (project.root / "plots" / "variants.png").read_bytes()
    assert chart.startswith(b"\x89PNG")
    assert "skipped experiment broken" in done.stderr and "skipped experiment pending" in done.stderr
    # Again, in process, from the saved dvc exp show: the same README and the same chart bytes.
    monkeypatch.chdir(project.root)
    table.main(["--show-json", "show.json", "--plot", "plots/again.png"])
    assert (project.root / "README.md").read_text() == readme
    assert (project.root / "plots" / "again.png").read_bytes() == chart


def test_table_command_errors(
    project: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(project.root)
    plain = tmp_path / "README.md"
    plain.write_text("# no markers\n")
    with pytest.raises(SystemExit) as exit_:
        cli.run(lambda: table.main(["--readme", str(plain), "--show-json", "show.json"]))
    assert exit_.value.code == 1
    assert capsys.readouterr().err == f"error: the README needs one {START} line followed by one {END} line\n"
    assert plain.read_text() == "# no markers\n"
    with pytest.raises(InputError, match="absent.md: No such file"):
        table.main(["--readme", str(tmp_path / "absent.md")])
    with pytest.raises(InputError, match="absent.json: No such file"):
        table.main(["--show-json", str(tmp_path / "absent.json")])
