"""The variants table (ewmtcnn.comparison, ewmtcnn.table): the paired tests against arithmetic
by hand and SciPy, and the whole command on real `dvc exp show --json` output of a throwaway
DVC project whose one stage stands in for the pipeline (fast: no training)."""
from __future__ import annotations

import contextlib
import copy
import io
import json
import math
import runpy
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from conftest import REPO
from dvcrepo import Repo
from ewmtcnn import InputError, params, table
from ewmtcnn.comparison import (
    BASELINE, REIMPLEMENTATION, VARIANTS, Variant, compare, experiments, holm, markdown, paired, plot,
    variant_rows, verdict,
)
from ewmtcnn.table import END, START, replace_block

EMOTIONS = ["anger", "disgust", "fear", "joy", "sadness", "surprise"]


def prediction_table(true: list[list[float]], pred: list[list[float]]) -> pd.DataFrame:
    """A metrics/predictions.csv table over images x/0.jpg, x/1.jpg, ... in two folds, labelled
    with the argmax of `true` (emotions: the first len(true[0]) of EMOTIONS)."""
    emotions = EMOTIONS[:len(true[0])]
    frame = pd.DataFrame({"image": [f"x/{i}.jpg" for i in range(len(true))], "fold": [i % 2 for i in range(len(true))],
                          "label": [emotions[int(np.argmax(t))] for t in true]})
    for prefix, rows in (("true", true), ("pred", pred)):
        for j, e in enumerate(emotions):
            frame[f"{prefix}_{e}"] = [r[j] for r in rows]
    return frame


# --- Holm, McNemar, Wilcoxon, paired ------------------------------------------------------------

def test_holm_by_hand() -> None:
    # Sorted: .005 x 4 = .02; .01 x 3 = .03; .03 x 2 = .06; .04 x 1 = .04 -> raised to .06 (monotone).
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02], rel=1e-12)
    # .5 x 2 = 1.0 (capped at 1), .6 x 1 = .6 -> raised to 1.0.
    assert holm([0.6, 0.5]) == [1.0, 1.0]
    assert holm([0.2]) == [0.2] and holm([]) == []


def test_mcnemar_by_hand() -> None:
    """10 discordant images, 8 gained and 2 lost: p = 2 * sum_{k<=2} C(10, k) / 2^10 = 0.109375."""
    gained, lost, both_right, both_wrong = 8, 2, 5, 3
    right, wrong = [0.8, 0.2], [0.2, 0.8]  # true class anger
    n = gained + lost + both_right + both_wrong
    before = [wrong] * gained + [right] * lost + [right] * both_right + [wrong] * both_wrong
    after = [right] * gained + [wrong] * lost + [right] * both_right + [wrong] * both_wrong
    true = [[1.0, 0.0]] * n
    result = paired(prediction_table(true, before), prediction_table(true, after))
    assert 2 * sum(math.comb(10, k) for k in range(3)) / 2**10 == 0.109375
    assert result["acc_p"] == pytest.approx(0.109375, rel=1e-12)
    assert (result["acc_gained"], result["acc_lost"]) == (8, 2)
    assert result["acc_diff"] == pytest.approx((8 - 2) / n, rel=1e-12)


def test_paired_kl_by_hand_and_wilcoxon_against_scipy() -> None:
    # Images 0-5: one-hot truth (0 ln 0 = 0 elsewhere), so KL = -ln q_true. Image 6: two-hot.
    base_q = [0.5, 0.5, 0.5, 0.5, 0.5, 0.5]
    variant_q = [0.8, 0.25, 0.9, 0.6, 0.45, 0.7]
    true = [[1.0, 0.0]] * 6 + [[0.5, 0.5]]
    before = [[q, 1 - q] for q in base_q] + [[0.5, 0.5]]
    after = [[q, 1 - q] for q in variant_q] + [[0.25, 0.75]]
    by_hand = [math.log(0.5 / q) for q in variant_q]  # -ln q_variant - (-ln 0.5)
    # Image 6: 0.5 ln(0.5 / 0.25) + 0.5 ln(0.5 / 0.75) - 0, the baseline being exact.
    by_hand.append(0.5 * math.log(2) + 0.5 * math.log(2 / 3))
    baseline = prediction_table(true, before)
    variant = prediction_table(true, after).sample(frac=1, random_state=0)  # aligned by image, not row
    result = paired(baseline, variant)
    assert result["images"] == 7
    assert result["kl_diff"] == pytest.approx(np.mean(by_hand), rel=1e-12)
    assert result["kl_p"] == pytest.approx(stats.wilcoxon(by_hand).pvalue, rel=1e-12)


def test_identical_predictions_give_p_one() -> None:
    frame = prediction_table([[0.7, 0.3], [0.2, 0.8]], [[0.6, 0.4], [0.4, 0.6]])
    result = paired(frame, frame.copy())
    assert (result["kl_diff"], result["kl_p"], result["acc_diff"], result["acc_p"]) == (0.0, 1.0, 0.0, 1.0)


def test_paired_refuses_tables_of_other_images_or_folds() -> None:
    frame = prediction_table([[0.7, 0.3], [0.2, 0.8]], [[0.6, 0.4], [0.4, 0.6]])
    with pytest.raises(InputError, match="cover different images"):
        paired(frame, frame.assign(image=["x/0.jpg", "y/1.jpg"]))
    with pytest.raises(InputError, match="differ in fold"):
        paired(frame, frame.assign(fold=[1, 0]))
    with pytest.raises(InputError, match="more than once"):
        paired(frame, frame.assign(image="x/0.jpg"))


def test_verdict() -> None:
    assert verdict(-0.02, 0.01, lower_is_better=True) == "helps"
    assert verdict(-0.02, 0.01, lower_is_better=False) == "hurts"
    assert verdict(0.02, 0.049, lower_is_better=False) == "helps"
    assert verdict(0.02, 0.05, lower_is_better=False) == "no measurable difference"


def test_variants_and_published_figures() -> None:
    assert len(VARIANTS) == 13 and VARIANTS[0] == BASELINE and len(set(VARIANTS)) == 13
    assert {(v.init, v.freeze) for v in VARIANTS} == set(REIMPLEMENTATION)
    assert REIMPLEMENTATION[("none", None)] == (74.747, 0.0456907)
    assert [v.label for v in VARIANTS[:3]] == ["none", "original freeze direct", "original freeze seed"]


# --- a throwaway DVC project and its experiments ------------------------------------------------

FAKE_STAGE = '''
"""Stands in for the pipeline: metrics and out-of-fold predictions that depend on the variant."""
import json, pathlib, zlib
import numpy as np, yaml
p = yaml.safe_load(open("params.yaml"))
if p["train"]["epochs"] == 0:
    raise SystemExit("no epochs to train")
variant = f"{p['prior']['init']} {p['prior']['freeze']} {p['model']['head']}"
rng = np.random.default_rng(zlib.crc32(variant.encode()))
emotions = ["anger", "disgust", "fear", "joy", "sadness", "surprise"]
true = np.random.default_rng(0).dirichlet(np.ones(6), 60)
mix = 0.9 if variant == "corr True direct" else 0.5  # one variant clearly closer to the truth
pred = mix * true + (1 - mix) * rng.dirichlet(np.ones(6), 60)
header = ["image", "fold", "label", *(f"true_{e}" for e in emotions), *(f"pred_{e}" for e in emotions)]
rows = [[f"x/{i}.jpg", str(i % 3), emotions[int(t.argmax())], *map(repr, t.tolist()), *map(repr, q.tolist())]
        for i, (t, q) in enumerate(zip(true, pred))]
pathlib.Path("metrics").mkdir(exist_ok=True)
pathlib.Path("metrics/predictions.csv").write_text("\\n".join(",".join(r) for r in [header, *rows]) + "\\n")
scores = ["acc", "kl", "chebyshev", "clark", "canberra", "cosine", "intersection"]
summary = {part: {s: {"mean": float(rng.uniform(0.1, 0.9)), "std": float(rng.uniform(0, 0.05))} for s in scores}
           for part in ("test", "train")}
summary["test_per_class_acc"] = {e: 0.5 for e in emotions}
pathlib.Path("metrics/metrics.json").write_text(json.dumps(summary, indent=2))
'''

DVC_YAML = """stages:
  evaluate:
    cmd: python evaluate.py
    deps: [evaluate.py]
    params: [data, preprocess, split, prior, model, train]
    outs:
      - metrics/predictions.csv:
          cache: false
    metrics:
      - metrics/metrics.json:
          cache: false
"""

README = f"# Project\n\nIntro.\n\n{START}\nold table\n{END}\n\n## After\n\nkept\n"


def queue_args(variant: Variant) -> list[str]:
    return ["-S", f"prior.init={variant.init}", "-S", f"prior.freeze={str(variant.freeze).lower()}",
            "-S", f"model.head={variant.head}"]


EYE_SEED, RAND_DIRECT, CORR_SEED = Variant("eye", False, "seed"), Variant("rand", False, "direct"), Variant("corr", False, "seed")


def exp_name(variant: Variant) -> str:
    return variant.label.replace(" ", "-")


def record_experiment(repo: Repo, baseline: str, variant: Variant) -> None:
    """Record `variant` as an experiment the way DVC stores one (a commit on the baseline under
    refs/exps/<baseline[:2]>/<baseline[2:]>/<name>), with the stage run directly: much faster
    than DVC running it, for the 12 variants whose only role is to fill the table."""
    repo.set_params(prior__init=variant.init, prior__freeze=variant.freeze, model__head=variant.head)
    with contextlib.chdir(repo.root):
        runpy.run_path("evaluate.py")  # in process: no interpreter start-up
    repo.run("git", "add", "params.yaml", "metrics")
    tree = repo.run("git", "write-tree").stdout.strip()
    commit = repo.run("git", "commit-tree", tree, "-p", baseline, "-m", exp_name(variant)).stdout.strip()
    repo.run("git", "update-ref", f"refs/exps/{baseline[:2]}/{baseline[2:]}/{exp_name(variant)}", commit)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Repo:
    """A throwaway DVC project with the 13 variants as experiments: `none` run through DVC's
    queue as the Makefile does, with a failing experiment (`broken`) beside it and one left
    queued (`pending`); the other 12 recorded directly (`record_experiment`)."""
    tmp = tmp_path_factory.mktemp("variants")
    root = tmp / "repo"
    root.mkdir()
    repo = Repo(root, tmp / "home")
    shutil.copy2(REPO / "params.yaml", root)
    (root / "evaluate.py").write_text(FAKE_STAGE)
    (root / "dvc.yaml").write_text(DVC_YAML)
    (root / "README.md").write_text(README)
    (root / ".gitignore").write_text("__pycache__/\n")
    repo.run("git", "init", "-q", "-b", "main")
    repo.run("git", "config", "user.name", "Comparison Test")
    repo.run("git", "config", "user.email", "comparison-test@example.invalid")
    repo.dvc("init", "-q")
    repo.dvc("repro", "-q")
    repo.run("git", "add", "-A")
    repo.run("git", "commit", "-q", "-m", "baseline")
    baseline = repo.run("git", "rev-parse", "HEAD").stdout.strip()
    for variant in VARIANTS[1:]:
        record_experiment(repo, baseline, variant)
    repo.run("git", "reset", "-q", "--hard")  # a queued experiment takes the workspace's changes along
    repo.dvc("exp", "run", "--queue", "-q", "-n", "none", "-S", "prior.init=none")
    repo.dvc("exp", "run", "--queue", "-q", "-n", "broken", *queue_args(CORR_SEED), "-S", "train.epochs=0")
    repo.dvc("queue", "start", "-j", "2")
    deadline = time.monotonic() + 240
    while any(s in repo.dvc("queue", "status").stdout for s in ("Queued", "Running")):
        assert time.monotonic() < deadline, "the experiments did not finish"
        time.sleep(1)
    repo.dvc("exp", "run", "--queue", "-q", "-n", "pending", "-S", "prior.init=eye")
    (root / "show.json").write_text(repo.dvc("exp", "show", "--json").stdout)
    return repo


@pytest.fixture(scope="module")
def show(project: Repo) -> list:
    return json.loads((project.root / "show.json").read_text())


def test_exp_show_json_shape(show: list) -> None:
    """The shape `experiments` reads (DVC 3.67): the workspace and the baseline commit, the
    experiments under the baseline, one rev each; a failed one carries `error`."""
    assert [b["rev"] for b in show][0] == "workspace" and show[0]["experiments"] is None
    baseline = show[1]
    assert baseline["name"] == "main" and len(baseline["experiments"]) == 15
    by_name = {e["name"]: e for e in baseline["experiments"]}
    assert by_name["broken"]["revs"][0]["error"]["msg"] == "Experiment run failed"
    assert by_name["broken"]["executor"]["state"] == "failed"
    assert by_name["pending"]["executor"]["state"] == "queued" and by_name["pending"]["revs"][0]["data"]["metrics"] == {}
    good = by_name["none"]
    assert good["revs"][0]["error"] is None and good["executor"]["state"] == "success"
    assert set(good["revs"][0]["data"]["metrics"]["metrics/metrics.json"]["data"]) == {"test", "train", "test_per_class_acc"}


def test_experiments_one_row_each_with_params_metrics_and_errors(project: Repo, show: list) -> None:
    frame = experiments(show)
    assert len(frame) == 15 and frame["name"].is_unique
    errors = frame.set_index("name")["error"]
    assert errors["broken"] == "Experiment run failed" and errors["pending"] == "not finished (queued)"
    assert errors.drop(["broken", "pending"]).isna().all()
    assert {"prior.init", "prior.freeze", "model.head", "data.label", "data.neutral", "model.backbone",
            "train.finetune", "split.folds", "test.acc.mean", "train.kl.std", "test_per_class_acc.joy"} <= set(frame)
    # A failed experiment shows its baseline's metrics in dvc exp show: they must not be taken.
    assert frame.set_index("name").loc[["broken", "pending"], "test.acc.mean"].isna().all()
    row = frame.set_index("name").loc[exp_name(EYE_SEED)]
    assert (row["prior.init"], row["prior.freeze"], row["model.head"]) == ("eye", False, "seed")
    committed = json.loads(project.run("git", "show", f"{row['rev']}:metrics/metrics.json").stdout)
    assert row["test.kl.mean"] == committed["test"]["kl"]["mean"] and row["train.acc.std"] == committed["train"]["acc"]["std"]


def test_experiments_reports_unreadable_metrics(show: list) -> None:
    """DVC reports a missing or corrupt metrics file as {"error": {"type", "msg"}} in its place."""
    show = copy.deepcopy(show)
    entry = next(e for e in show[1]["experiments"] if e["name"] == exp_name(EYE_SEED))
    missing = "[Errno 2] No such file or directory: 'metrics/metrics.json'"
    entry["revs"][0]["data"]["metrics"]["metrics/metrics.json"] = {"error": {"type": "FileNotFoundError", "msg": missing}}
    frame = experiments(show).set_index("name")
    assert frame.at[exp_name(EYE_SEED), "error"] == f"metrics/metrics.json: {missing}"
    assert np.isnan(frame.at[exp_name(EYE_SEED), "test.acc.mean"])


def test_experiments_without_any() -> None:
    frame = experiments([{"rev": "workspace", "name": None, "data": {}, "error": None, "experiments": None}])
    assert frame.empty and {"name", "rev", "error", "prior.init"} <= set(frame)
    with pytest.raises(InputError, match="no usable experiment for 13 of the 13 variants"):
        variant_rows(frame)


def test_variant_rows_picks_each_variant(show: list) -> None:
    frame = experiments(show)
    rows = variant_rows(frame)
    assert list(rows.index) == [v.label for v in VARIANTS]
    assert list(rows["name"]) == [exp_name(v) for v in VARIANTS]


def test_variant_rows_takes_the_newest(show: list) -> None:
    frame = experiments(show)
    newer = frame[frame["name"] == exp_name(RAND_DIRECT)].assign(
        name="rerun", rev="f" * 40, timestamp=frame["timestamp"].max() + pd.Timedelta(seconds=1))
    rows = variant_rows(pd.concat([frame, newer], ignore_index=True))
    assert rows.at["rand unfreeze direct", "name"] == "rerun"


def test_variant_rows_names_missing_variants(show: list) -> None:
    frame = experiments(show)
    gone = frame[~frame["name"].isin([exp_name(CORR_SEED), exp_name(BASELINE)])]
    with pytest.raises(InputError) as error:
        variant_rows(gone)
    message = str(error.value)
    assert message.startswith("no usable experiment for 2 of the 13 variants: none (dvc exp run --queue -S prior.init=none)")
    # The failed experiment that would have been the variant is named, with DVC's reason.
    assert "corr unfreeze seed (broken Experiment run failed)" in message
    assert "\n" not in message


def test_variant_rows_refuses_rows_of_other_settings(show: list) -> None:
    frame = experiments(show)
    eye_seed = exp_name(EYE_SEED)
    frame.loc[frame["name"] == eye_seed, "train.epochs"] = 3
    with pytest.raises(InputError, match=rf"differ in train\.epochs \(20: none \[\S+\], .*; 3: eye unfreeze seed \[{eye_seed}\]\)"):
        variant_rows(frame)
    frame = experiments(show)
    frame.loc[frame["name"] == exp_name(BASELINE), "data.label"] = "folder"
    with pytest.raises(InputError, match=r"differ in data\.label"):
        variant_rows(frame)


@pytest.fixture(scope="module")
def results(project: Repo, show: list) -> tuple[pd.DataFrame, dict]:
    rows = variant_rows(experiments(show))
    tables = {v: pd.read_csv(io.StringIO(project.run("git", "show", f"{rows.at[v.label, 'rev']}:metrics/predictions.csv").stdout))
              for v in VARIANTS}
    return rows, compare(tables)


def test_compare_holm_adjusts_each_measure_over_the_12_variants(results: tuple[pd.DataFrame, dict]) -> None:
    _, by_variant = results
    assert list(by_variant) == list(VARIANTS[1:])
    for measure in ("kl", "acc"):
        raw = [by_variant[v][f"{measure}_p"] for v in VARIANTS[1:]]
        assert [by_variant[v][f"{measure}_p_holm"] for v in VARIANTS[1:]] == holm(raw)
        assert all(by_variant[v][f"{measure}_p_holm"] >= by_variant[v][f"{measure}_p"] for v in VARIANTS[1:])


def test_markdown_table(results: tuple[pd.DataFrame, dict]) -> None:
    rows, by_variant = results
    text = markdown(rows, by_variant)
    lines = text.splitlines()
    table_lines = [line for line in lines if line.startswith("| ")]
    assert len(table_lines) == 14  # the header and the 13 variants
    assert table_lines[1].startswith("| none | - | - | ") and table_lines[2].startswith("| original | freeze | direct | ")
    assert table_lines[-1].startswith("| corr | unfreeze | seed | ")
    assert "train KL / 6 (in place)" in table_lines[0]
    for published in REIMPLEMENTATION.values():
        assert f"{published.acc_percent:.3f}%" in text and f"{published.kl_per_class:.7f}" in text
    for variant, line in zip(VARIANTS, table_lines[1:]):
        row = rows.loc[variant.label]
        cells = line.split(" | ")
        assert cells[3] == f"{row['test.acc.mean']:.3f} ± {row['test.acc.std']:.3f}"
        assert cells[4] == f"{row['test.kl.mean']:.4f} ± {row['test.kl.std']:.4f}"
        published = REIMPLEMENTATION[(variant.init, variant.freeze)]
        assert cells[10:14] == [f"{100 * row['train.acc.mean']:.1f}%", f"{published.acc_percent:.3f}%",
                                f"{row['train.kl.mean'] / 6:.4f}", f"{published.kl_per_class:.7f}"]
        if variant != BASELINE:
            s = by_variant[variant]
            assert cells[15].startswith(f"{s['kl_diff']:+.4f} (p")
            assert cells[16] == verdict(s["kl_diff"], s["kl_p_holm"], lower_is_better=True)
    corr_freeze_direct = table_lines[VARIANTS.index(Variant("corr", True, "direct")) + 1]
    assert corr_freeze_direct.endswith(" | helps | helps |")
    assert lines[0] == ("Emotion6, 60 images, 6 emotions (neutral dropped), class label `dominant`; "
                        "efficientnet_lite0 (ImageNet weights), frozen features, head trained; "
                        "5-fold cross-validation (split seed 0).")


def test_plot_is_deterministic(results: tuple[pd.DataFrame, dict], tmp_path: Path) -> None:
    rows, _ = results
    plot(rows, tmp_path / "a.png")
    plot(rows, tmp_path / "b.png")
    assert (tmp_path / "a.png").read_bytes().startswith(b"\x89PNG")
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()


# --- the command ------------------------------------------------------------------------------------

def table_command(project: Repo, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**project.env, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "ewmtcnn.table", *args], cwd=project.root, env=env,
                          capture_output=True, text=True, timeout=300)


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


def test_table_command_errors(project: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(project.root)
    plain = tmp_path / "README.md"
    plain.write_text("# no markers\n")
    with pytest.raises(SystemExit) as exit_:
        params.run_cli(lambda: table.main(["--readme", str(plain), "--show-json", "show.json"]))
    assert exit_.value.code == 1
    assert capsys.readouterr().err == f"error: the README needs one {START} line followed by one {END} line\n"
    assert plain.read_text() == "# no markers\n"
    with pytest.raises(InputError, match="absent.json: No such file"):
        table.main(["--show-json", str(tmp_path / "absent.json")])
    (tmp_path / "bad.json").write_text('{"rev": "workspace"}')
    with pytest.raises(InputError, match="expected a list of baselines, found dict"):
        table.main(["--show-json", str(tmp_path / "bad.json")])
    with pytest.raises(InputError, match=r"reading metrics/predictions.csv of experiment none \(0000000\) failed"):
        table.predictions(pd.Series({"name": "none", "rev": "0" * 40}))


def test_replace_block() -> None:
    assert replace_block(f"a\n{START}\nx\n{END}\nb\n", "T") == f"a\n{START}\nT\n{END}\nb\n"
    with pytest.raises(InputError, match="needs one"):
        replace_block(f"{END}\n{START}\n", "T")
    with pytest.raises(InputError, match="needs one"):
        replace_block(f"{START}\n{START}\n{END}\n", "T")


def test_grid_queues_one_experiment_per_variant_with_its_overrides():
    from ewmtcnn.grid import settings

    overrides = [settings(v) for v in VARIANTS]
    assert overrides[0] == ["prior.init=none"]  # no prior to freeze; the default head
    assert ["prior.init=original", "model.head=seed", "prior.freeze=true"] in overrides
    assert ["prior.init=corr", "model.head=direct", "prior.freeze=false"] in overrides
    assert len({tuple(o) for o in overrides}) == 13
