"""The prior-layer variants side by side: which DVC experiment is which variant, the paired
tests of each variant against `none` (no prior layer), the README table and the chart.

The question is the public reimplementation's: does the emotion-wheel prior layer help?
Every variant predicts the same images under the same folds, so each comparison with `none`
is paired image by image, which is far more sensitive than comparing means over five folds.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import matplotlib

matplotlib.use("Agg")  # files only; no display on servers
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy import stats  # noqa: E402

from ewmtcnn import InputError, metrics, report  # noqa: E402
from ewmtcnn.atomic import written  # noqa: E402
from ewmtcnn.layout import METRICS  # noqa: E402


class Variant(NamedTuple):
    """One row of the table: the prior's initialisation, whether it is frozen, and the head.

    `freeze` and `head` are None for `none`: without a prior layer there is nothing to freeze
    and both heads are the same FC layer, so `none` runs once, with whatever head is default.
    """

    init: str
    freeze: bool | None
    head: str | None

    @property
    def mode(self) -> str | None:
        """`freeze` or `unfreeze`, as the reimplementation names them; None without a prior."""
        return None if self.freeze is None else ("freeze" if self.freeze else "unfreeze")

    @property
    def label(self) -> str:
        return " ".join(part for part in (self.init, self.mode, self.head) if part)


class Published(NamedTuple):
    """A figure of the reimplementation's README: train-set accuracy (percent) and KL averaged
    over the 6 classes (its KL summed over emotions, divided by 6), both measured in place."""

    acc_percent: float
    kl_per_class: float


#: The reimplementation's seven (init, freeze) variants, in the order of its table.
PRIORS: tuple[tuple[str, bool | None], ...] = (
    ("none", None), ("original", True), ("original", False), ("eye", False), ("rand", False),
    ("corr", True), ("corr", False),
)
HEADS: tuple[str, ...] = ("direct", "seed")
BASELINE = Variant("none", None, None)
#: The 13 table rows: `none`, then every other prior with each head.
VARIANTS: tuple[Variant, ...] = (
    BASELINE, *(Variant(init, freeze, head) for init, freeze in PRIORS[1:] for head in HEADS),
)
#: The reimplementation's published table (REFERENCE.md section 1), keyed by (init, freeze).
REIMPLEMENTATION: dict[tuple[str, bool | None], Published] = {
    ("none", None): Published(74.747, 0.0456907),
    ("original", True): Published(50.051, 0.0912462),
    ("original", False): Published(48.939, 0.0741477),
    ("eye", False): Published(48.485, 0.0774974),
    ("rand", False): Published(47.778, 0.0732538),
    ("corr", True): Published(19.141, 0.1249517),
    ("corr", False): Published(27.677, 0.1199178),
}

#: The params that tell the variants apart; every other param must be the same in all rows.
VARIED: tuple[str, ...] = ("prior.init", "prior.freeze", "model.head")
IDENTITY: tuple[str, ...] = ("name", "rev", "timestamp", "error")
SCORES: tuple[str, ...] = ("acc", *metrics.MEASURES)
PER_CLASS = "test_per_class_acc"
#: The summary columns of metrics/metrics.json, flattened as `dvc exp show` names them.
SUMMARY_COLUMNS: frozenset[str] = frozenset(
    f"{part}.{score}.{stat}" for part in ("test", "train") for score in SCORES for stat in ("mean", "std")
)
ALPHA = 0.05


# --- dvc exp show --json -> one row per experiment -------------------------------------------

def _flat(tree: Mapping[str, Any]) -> dict[str, Any]:
    """Nested params or metrics as `section.key` columns, as `dvc exp show` prints them."""
    return pd.json_normalize(tree, sep=".").to_dict("records")[0]


def _problem(rev: Mapping[str, Any], state: str | None) -> str | None:
    """Why an experiment cannot be used, or None.

    A failed queued experiment still shows its baseline's metrics (DVC reads them from the
    stash commit), so failure has to be recognised from the error and executor state, never
    from the metrics alone.
    """
    if rev.get("error"):
        return str(rev["error"].get("msg") or rev["error"])
    if state not in (None, "success"):
        return f"not finished ({state})"
    data = rev.get("data") or {}
    for kind, path in (("params", "params.yaml"), ("metrics", METRICS.as_posix())):
        entry = (data.get(kind) or {}).get(path)
        if entry is None:
            return f"no {path}"
        if entry.get("error"):
            return f"{path}: {entry['error'].get('msg') or entry['error']}"
    return None


def experiments(show: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per experiment of `dvc exp show --json`: name, rev, timestamp, error (None when
    usable), every param of params.yaml and every metric of metrics/metrics.json as columns.

    Only experiments: the workspace and baseline commits are left out, since the table is
    what the queued experiments produced. Failed, queued and running experiments are kept
    with their reason in `error` and no metrics, so callers can say what they skipped.
    """
    records = []
    for baseline in show:
        for experiment in baseline.get("experiments") or []:
            state = (experiment.get("executor") or {}).get("state")
            for rev in experiment.get("revs") or []:
                data = rev.get("data") or {}
                error = _problem(rev, state)
                record = {"name": rev.get("name") or experiment.get("name"), "rev": rev["rev"],
                          "timestamp": data.get("timestamp"), "error": error}
                params = ((data.get("params") or {}).get("params.yaml") or {}).get("data") or {}
                record.update(_flat(params))
                if error is None:
                    record.update(_flat(data["metrics"][METRICS.as_posix()]["data"]))
                records.append(record)
    frame = pd.DataFrame(records)
    frame = frame.reindex(columns=list(dict.fromkeys([*IDENTITY, *VARIED, *frame.columns])))
    frame["timestamp"] = pd.to_datetime(frame["timestamp"])
    return frame


def _matches(frame: pd.DataFrame, variant: Variant) -> pd.Series:
    match = frame["prior.init"] == variant.init
    if variant.freeze is not None:
        match &= frame["prior.freeze"] == variant.freeze
    if variant.head is not None:
        match &= frame["model.head"] == variant.head
    return match


def _queue_command(variant: Variant) -> str:
    sets = [f"-S prior.init={variant.init}"]
    if variant.freeze is not None:
        sets += [f"-S prior.freeze={str(variant.freeze).lower()}", f"-S model.head={variant.head}"]
    return f"dvc exp run --queue {' '.join(sets)}"


def settings(frame: pd.DataFrame) -> list[str]:
    """The params that must agree across the table: all but the varied ones (and not metrics)."""
    return [c for c in frame.columns
            if c not in IDENTITY and c not in VARIED and c not in SUMMARY_COLUMNS and not c.startswith(f"{PER_CLASS}.")]


def variant_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """For each of VARIANTS, the newest usable experiment with its params; indexed by label.

    Refuses a missing variant (naming the failed or unfinished experiments that would have
    been it, and the command that queues it) and rows that differ in any other param, since
    the differences would then not be the prior's alone.
    """
    usable = frame[frame["error"].isna()]
    chosen, missing = [], []
    for variant in VARIANTS:
        candidates = usable[_matches(usable, variant)]
        if candidates.empty:
            skipped = frame[_matches(frame, variant) & frame["error"].notna()]
            why = "; ".join(f"{r.name} {r.error}" for r in skipped.itertuples())
            missing.append(f"{variant.label} ({why or _queue_command(variant)})")
        else:
            chosen.append(candidates.loc[candidates["timestamp"].idxmax()])
    if missing:
        raise InputError(f"no usable experiment for {len(missing)} of the {len(VARIANTS)} variants: " + ", ".join(missing))
    rows = pd.DataFrame(chosen)
    rows.index = pd.Index([v.label for v in VARIANTS], name="variant")
    named = [f"{label} [{name}]" for label, name in rows["name"].items()]
    for param in settings(rows):
        values = rows[param].map(repr)
        if values.nunique() > 1:
            groups = "; ".join(f"{value}: {', '.join(np.array(named)[values == value])}" for value in values.unique())
            raise InputError(f"the newest experiments of the variants differ in {param} ({groups}); "
                             "remove the odd ones (`dvc exp remove <name>`) or rerun them with the same params")
    return rows


# --- paired tests against none ----------------------------------------------------------------


def _correct(table: pd.DataFrame) -> np.ndarray:
    """Per image: is the most probable predicted emotion the class label?"""
    emotions = np.array(report.emotions(table))
    return emotions[table[report.columns(table, "pred_")].to_numpy().argmax(axis=1)] == table["label"].to_numpy()


def paired(baseline: pd.DataFrame, variant: pd.DataFrame) -> dict[str, float]:
    """Variant minus baseline on the same out-of-fold predictions, image by image.

    Both tables are metrics/predictions.csv (`image, fold, label, true_<e>..., pred_<e>...`).
    The tests are paired because every image is predicted by both models, so differences
    between images cancel out:

    - KL (summed over emotions, `0 ln 0 = 0`): the per-image difference is skewed and
      heavy-tailed, not normal, so the Wilcoxon signed-rank test (two-sided) rather than a
      paired t-test. Zero differences occur only where both models predict an image
      bit-identically; they say nothing about which is better, so they are dropped (scipy's
      default `zero_method="wilcox"`, the classical test). All zero: p = 1.
    - Accuracy: each image is right or wrong under both models, paired binary outcomes, so
      McNemar's exact test: a two-sided binomial test (p = 1/2) on the discordant images,
      those one model gets right and the other wrong. None discordant: p = 1.

    Differences are over all images pooled (not means of fold means). Comparing 12 variants
    with `none` makes 12 tests per measure: adjust the p-values with `holm` before reading
    them (`compare` does).
    """
    for name, table in (("baseline", baseline), ("variant", variant)):
        if not table["image"].is_unique:
            raise InputError(f"the {name} predictions list some images more than once")
    if set(baseline["image"]) != set(variant["image"]):
        only = set(baseline["image"]) ^ set(variant["image"])
        raise InputError(f"the two prediction tables cover different images ({len(only)} in one only, "
                         f"e.g. {sorted(only)[0]}): experiments on different data")
    variant = variant.set_index("image").loc[baseline["image"]].reset_index()
    for column in ("fold", "label", *report.columns(baseline, "true_")):
        if column not in variant or not (baseline[column].to_numpy() == variant[column].to_numpy()).all():
            raise InputError(f"the two prediction tables differ in {column}: experiments on different splits or labels")
    true = baseline[report.columns(baseline, "true_")].to_numpy()
    kl = {name: metrics.distances(true, table[report.columns(table, "pred_")].to_numpy())["kl"]
          for name, table in (("baseline", baseline), ("variant", variant))}
    if not all(np.isfinite(values).all() for values in kl.values()):
        raise InputError("a predicted probability of 0 where the true one is positive: KL is infinite")
    kl_diff = kl["variant"] - kl["baseline"]
    kl_p = 1.0 if not kl_diff.any() else float(stats.wilcoxon(kl_diff, zero_method="wilcox").pvalue)
    right_before, right_after = _correct(baseline), _correct(variant)
    gained = int((right_after & ~right_before).sum())
    lost = int((right_before & ~right_after).sum())
    acc_p = 1.0 if gained + lost == 0 else float(stats.binomtest(gained, gained + lost).pvalue)
    return {"images": len(baseline), "kl_diff": float(kl_diff.mean()), "kl_p": kl_p,
            "acc_diff": float(right_after.mean() - right_before.mean()), "acc_p": acc_p,
            "acc_gained": gained, "acc_lost": lost}


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment (controls the family-wise error rate), in the input order.

    Written out because statsmodels, which has it, is not a dependency and scipy has only
    false-discovery-rate adjustments (`false_discovery_control`).
    """
    m = len(pvalues)
    adjusted = [0.0] * m
    running = 0.0
    for rank, index in enumerate(sorted(range(m), key=lambda i: pvalues[i])):
        running = max(running, min(1.0, (m - rank) * pvalues[index]))  # adjusted p never decreases
        adjusted[index] = running
    return adjusted


def compare(predictions: Mapping[Variant, pd.DataFrame]) -> dict[Variant, dict[str, float]]:
    """`paired` of every variant against `none`, with Holm-adjusted p-values (`kl_p_holm`,
    `acc_p_holm`): each measure is one family of 12 tests."""
    others = VARIANTS[1:]
    results = {v: paired(predictions[BASELINE], predictions[v]) for v in others}
    for measure in ("kl", "acc"):
        for variant, adjusted in zip(others, holm([results[v][f"{measure}_p"] for v in others])):
            results[variant][f"{measure}_p_holm"] = adjusted
    return results


def verdict(diff: float, p_holm: float, lower_is_better: bool) -> str:
    """What a difference (variant - none) means for the prior, at ALPHA on the adjusted p."""
    if not p_holm < ALPHA:
        return "no measurable difference"
    return "helps" if (diff < 0) == lower_is_better else "hurts"


# --- the README table and the chart --------------------------------------------------------------

def _pm(row: pd.Series, column: str, digits: int) -> str:
    return f"{row[f'{column}.mean']:.{digits}f} ± {row[f'{column}.std']:.{digits}f}"


def _p(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def caption(rows: pd.DataFrame, images: int) -> str:
    """The setting all rows share, read from their params."""
    row = rows.iloc[0]
    weights = "ImageNet weights" if row["model.pretrained"] else "random init"
    mode = "fine-tuned end to end" if row["train.finetune"] else "frozen features, head trained"
    emotions = "7 emotions (neutral kept)" if row["data.neutral"] == "keep" else "6 emotions (neutral dropped)"
    return (f"Emotion6, {images} images, {emotions}, class label `{row['data.label']}`; "
            f"{row['model.backbone']} ({weights}), {mode}; "
            f"{row['split.folds']}-fold cross-validation (split seed {row['split.seed']}).")


HEADER = (
    "init", "freeze", "head", "test acc", "test KL", "Chebyshev", "Clark", "Canberra", "Cosine",
    "Intersection", "train acc (in place)", "reimpl. train acc", "train KL / 6 (in place)",
    "reimpl. train KL (its mean over classes: KL / 6)", "Δacc vs none (Holm p)", "ΔKL vs none (Holm p)",
    "prior for KL", "prior for acc",
)


def markdown(rows: pd.DataFrame, stats_by_variant: Mapping[Variant, Mapping[str, float]]) -> str:
    """The README results table: one row per variant, with a caption and a legend."""
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for variant in VARIANTS:
        row = rows.loc[variant.label]
        published = REIMPLEMENTATION[(variant.init, variant.freeze)]
        cells = [variant.init, variant.mode or "-", variant.head or "-", _pm(row, "test.acc", 3), _pm(row, "test.kl", 4),
                 *(_pm(row, f"test.{m}", 3) for m in metrics.MEASURES if m != "kl"),
                 f"{100 * row['train.acc.mean']:.1f}%", f"{published.acc_percent:.3f}%",
                 f"{row['train.kl.mean'] / 6:.4f}", f"{published.kl_per_class:.7f}"]
        if variant == BASELINE:
            cells += ["(baseline)"] * 4
        else:
            s = stats_by_variant[variant]
            cells += [f"{s['acc_diff']:+.3f} ({_p(s['acc_p_holm'])})", f"{s['kl_diff']:+.4f} ({_p(s['kl_p_holm'])})",
                      verdict(s["kl_diff"], s["kl_p_holm"], lower_is_better=True),
                      verdict(s["acc_diff"], s["acc_p_holm"], lower_is_better=False)]
        lines.append("| " + " | ".join(cells) + " |")
    images = next(iter(stats_by_variant.values()))["images"]
    legend = (f"Test: mean ± sample std over the held-out folds. Train: in place on the training folds, as the "
              f"reimplementation measured (its KL is averaged over the 6 emotions, so ours, summed, is divided by 6). "
              f"Δ: variant − none over all {images} out-of-fold predictions; p: McNemar's exact test (acc) and the "
              f"Wilcoxon signed-rank test on per-image KL, Holm-adjusted over the {len(VARIANTS) - 1} variants; "
              f"helps / hurts at α = {ALPHA}.")
    return "\n".join([caption(rows, images), "", *lines, "", legend])


def plot(rows: pd.DataFrame, path: Path | str) -> None:
    """Test accuracy and test KL of every variant (bars, std over folds), `none` as a line."""
    head_colours = {None: "0.6", "direct": "tab:blue", "seed": "tab:orange"}
    fig, axes = plt.subplots(2, 1, figsize=(12, 8), sharex=True, layout="constrained")
    for ax, score, name in ((axes[0], "acc", "accuracy (higher is better)"), (axes[1], "kl", "KL (lower is better)")):
        means = [rows.at[v.label, f"test.{score}.mean"] for v in VARIANTS]
        stds = [rows.at[v.label, f"test.{score}.std"] for v in VARIANTS]
        ax.bar(range(len(VARIANTS)), means, yerr=stds, capsize=3, color=[head_colours[v.head] for v in VARIANTS])
        ax.axhline(means[0], color="0.3", linestyle="--", linewidth=1)
        ax.set_ylabel(f"test {name}")
    axes[1].set_xticks(range(len(VARIANTS)), [v.label.replace(" ", "\n") for v in VARIANTS], fontsize=8)
    handles = [Line2D([], [], color="0.3", linestyle="--", label="none (no prior layer)"),
               Patch(color=head_colours["direct"], label="direct head"), Patch(color=head_colours["seed"], label="seed head")]
    fig.legend(handles=handles, loc="outside lower center", ncols=3)
    fig.suptitle("Prior-layer variants on the held-out folds (mean ± std over folds)")
    with written(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100, metadata={"Software": None})  # no version stamp: same rows, same bytes
    plt.close(fig)
