"""params.yaml as one typed config: every value checked for its type and range before a stage reads or writes.

- A bad value is one error that names the param and what it may be.
- A valid file parses to the values it holds, section by section.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from pathlib import Path
from typing import Any

import pytest
import yaml

from ewmtcnn import InputError, cli
from ewmtcnn.config import checks, sections
from ewmtcnn.config.sections import Classic, Data, Extraction, Model, Params, Prior, Select, Split, Train
from ewmtcnn.data import augment
from ewmtcnn.model import backbones
from ewmtcnn.training.variant import Variant
from stages import check, classic, download, evaluate, features, final, preprocess, split, train
from support import REPO, write_params

DEFAULTS = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
STAGES = (check, download, preprocess, split, features, train, evaluate, final, classic)
LITE0 = backbones.get("efficientnet_lite0")


def with_value(dotted: str, value: Any) -> dict[str, Any]:
    """The repository's params with `section.key` set to `value`."""
    p = copy.deepcopy(DEFAULTS)
    section, key = dotted.split(".")
    p[section][key] = value
    return p


def variant(params: Params) -> Variant:
    """The variant the train and final stages build from `params`."""
    return Variant.of(
        params.data.label, params.data.neutral, params.prior, params.model, params.features, params.train, params.select
    )


def test_the_repository_params_parse_to_their_values() -> None:
    """Every key lands in its section; `train.lambda` is `lam`, empty `sha256` is "" and empty `weights` None."""
    params = sections.load(REPO / "params.yaml")
    assert params.data == Data(DEFAULTS["data"]["source"], "", "dominant", "drop")
    assert (params.preprocess.size, params.split) == (256, Split(folds=5, seed=0, repeats=3))
    assert params.prior == Prior("original", True, 0.6)
    assert params.model == Model("efficientnet_lite0", True, None, "direct")
    assert params.features == Extraction("pooled", ("centre",), 0)
    assert params.train == Train(False, "converged", 20, 32, 0.001, 0.01, 0.9, 0.0005, 1.0, 0, 256)
    assert params.select == Select(
        0.2,
        80,
        10,
        (0.0003, 0.001, 0.003, 0.01, 0.03),
        (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10),
        3,
    )
    assert params.classic == Classic(("sa_bfgs", "aa_knn", "pt_bayes", "ldl_lrr"), 256, 3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        params.train.seed = 1  # type: ignore[misc]


#: (param, bad value, what the message must say is allowed)
BAD = [
    ("data.source", None, "a string"),
    ("data.sha256", 5, "a string or empty"),
    ("data.label", "keyword", "one of dominant, folder"),
    ("data.neutral", "maybe", "one of drop, keep"),
    ("preprocess.size", 16, "an integer in [32, 1024]"),
    ("preprocess.size", 100_000, "an integer in [32, 1024]"),
    ("split.folds", 1, "an integer in [2, 20]"),
    ("split.folds", 0, "an integer in [2, 20]"),
    ("split.repeats", 0, "an integer in [1, 10]"),
    ("split.repeats", 11, "an integer in [1, 10]"),
    ("split.seed", -5, "an integer in [0, 2147483647]"),
    ("prior.sigma", 0, "a finite number > 0"),
    ("prior.init", "wheel", "one of none, original, eye"),
    ("prior.freeze", "yes", "true or false"),
    ("model.backbone", 3, "a string"),
    ("model.pretrained", 1, "true or false"),
    ("model.weights", 3, "a string or empty"),
    ("model.head", "mlp", "one of direct, seed"),
    ("features.layers", "conv", "one of pooled, stats"),
    ("features.views", [], "a non-empty list of distinct views among centre, mirror, full"),
    ("features.size", 16, "0 (the backbone's native side) or an integer in [32, 1024]"),
    ("train.recipe", "tuned", "one of selected, fixed"),
    ("train.epochs", 0, "an integer in [1, 10000]"),
    ("train.epochs", 2.5, "an integer"),
    ("train.batch_size", 0, "an integer in [1, 4096]"),
    ("train.lr_head", -1, "a finite number >= 0"),
    ("train.lr_head", math.nan, "a finite number >= 0"),
    ("train.lr_head", math.inf, "a finite number >= 0"),
    ("train.lr_backbone", -0.001, "a finite number >= 0"),
    ("train.weight_decay", -1e-4, "a finite number >= 0"),
    ("train.momentum", 1.0, "a finite number in [0, 1)"),
    ("train.momentum", -0.1, "a finite number in [0, 1)"),
    ("train.lambda", 1.5, "a finite number in [0, 1]"),
    ("train.lambda", True, "a finite number in [0, 1]"),
    ("train.seed", -1, "an integer in [0, 2147483647]"),
    ("select.share", 0.9, "a finite number in [0.05, 0.5]"),
    ("select.epochs", 0, "an integer in [1, 10000]"),
    ("select.patience", 0, "an integer in [1, 10000]"),
    ("select.lr_head", [], "a non-empty list of distinct finite numbers > 0"),
    ("select.lr_head", [0.01, 0.01], "a non-empty list of distinct finite numbers > 0"),
    ("select.lr_head", [0.01, 0], "a non-empty list of distinct finite numbers > 0"),
    ("select.weight_decay", [0.01, -1], "a non-empty list of distinct finite numbers >= 0"),
    ("select.weight_decay", 0.01, "a non-empty list of distinct finite numbers >= 0"),
    ("select.folds", 1, "an integer in [2, 20]"),
    ("train.pca", -1, "an integer in [0, 100000]"),
    ("classic.methods", ["sa_bfgs", "svm"], "a non-empty list of distinct methods among sa_bfgs, aa_knn, pt_bayes"),
    ("classic.methods", [], "a non-empty list of distinct methods among"),
    ("classic.methods", ["aa_knn", "aa_knn"], "a non-empty list of distinct methods among"),
    ("classic.methods", "aa_knn", "list"),
    ("classic.pca", -1, "an integer in [0, 100000]"),
    ("classic.folds", 1, "an integer in [2, 20]"),
]


@pytest.mark.parametrize(("dotted", "value", "allowed"), BAD)
def test_a_bad_param_is_one_error_naming_it_and_its_range(dotted: str, value: Any, allowed: str) -> None:
    with pytest.raises(InputError) as info:
        Params.parse(with_value(dotted, value))
    message = str(info.value)
    assert dotted in message and allowed in message, message


@pytest.mark.parametrize("stage", STAGES, ids=lambda stage: stage.__name__)
def test_every_stage_refuses_a_bad_param_before_reading_or_writing(
    stage: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a folder with only params.yaml the stage would fail on its missing inputs: failing on the
    param instead shows that the whole file is checked first, and nothing is written."""
    write_params(tmp_path, train={"lr_head": math.nan})
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.argv", [stage.__name__])
    with pytest.raises(SystemExit) as exit_:
        cli.run_stage(stage.main)
    assert exit_.value.code == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]


@pytest.mark.parametrize(
    ("stage", "side", "store", "smallest"),
    [(preprocess, 512, 256, 512), (final, 512, 256, 512), (preprocess, 0, 100, 224)],  # Lite0 reads 224 px
)
def test_the_store_must_hold_the_backbones_input_side(
    stage: Any, side: int, store: int, smallest: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """features.size 512 reads 512 px crops: a 256 px store is refused before anything is read or written."""
    monkeypatch.chdir(tmp_path)
    p = with_value("features.size", side)
    p["preprocess"]["size"] = store
    expected = rf"preprocess\.size must be an integer in \[{smallest}, 1024\]; found {store}"
    with pytest.raises(InputError, match=expected):
        stage.main(Params.parse(p))
    assert list(tmp_path.iterdir()) == []


def test_a_number_written_as_yaml_1_1_text_gets_a_hint() -> None:
    # PyYAML reads `lr_head: 1e-3` as the string '1e-3'
    p = yaml.safe_load("train:\n  lr_head: 1e-3\n")
    with pytest.raises(InputError, match=r"write 0\.001 or 1\.0e-3"):
        checks.number(p, "train.lr_head", 0)


@pytest.mark.parametrize("recipe", ["selected", "converged"])
def test_fine_tuning_needs_the_fixed_recipe(recipe: str) -> None:
    p = with_value("train.finetune", True)
    p["train"]["recipe"] = recipe
    with pytest.raises(InputError, match=f"train.recipe {recipe} trains many heads .* needs train.recipe: fixed"):
        Params.parse(p)
    p["train"]["recipe"] = "fixed"
    assert Params.parse(p).train.finetune


@pytest.mark.parametrize("dotted", ["train.momentum", "features.layers", "data.label", "select.share"])
def test_a_missing_param_is_named(dotted: str) -> None:
    p = copy.deepcopy(DEFAULTS)
    section, key = dotted.split(".")
    del p[section][key]
    with pytest.raises(InputError, match=f"missing parameter {dotted}"):
        Params.parse(p)


def test_a_missing_section_is_named() -> None:
    p = copy.deepcopy(DEFAULTS)
    del p["features"]
    with pytest.raises(InputError, match="missing parameter features.layers"):
        Params.parse(p)


@pytest.mark.parametrize(
    ("text", "message"),
    [(None, "not found"), ("train: [", "not valid YAML"), ("- a list", "expected a mapping of sections")],
)
def test_an_unreadable_file_is_one_error(text: str | None, message: str, tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    if text is not None:
        path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError, match=message):
        sections.load(path)


@pytest.mark.parametrize(
    ("section", "key", "message"),
    [
        ("prior", "iint", "unknown param prior.iint; did you mean prior.init?"),
        ("train", "lamda", "unknown param train.lamda; did you mean train.lambda?"),
        (
            "model",
            "zzz",
            "unknown param model.zzz; expected one of model.backbone, model.pretrained, model.weights, model.head",
        ),
    ],
)
def test_an_unknown_param_is_refused_with_the_nearest_name(section: str, key: str, message: str) -> None:
    """A typo never leaves the default silently in force (`prior.iint: eye` would train `original`)."""
    p = copy.deepcopy(DEFAULTS)
    p[section][key] = "eye"
    with pytest.raises(InputError) as info:
        Params.parse(p)
    assert str(info.value) == f"params.yaml: {message}"


def test_an_unknown_section_is_refused_with_the_nearest_name() -> None:
    p = copy.deepcopy(DEFAULTS)
    p["priors"] = {"init": "eye"}
    with pytest.raises(InputError, match="unknown section priors; did you mean prior[?]"):
        Params.parse(p)
    p = {**DEFAULTS, "zzz": 1}
    with pytest.raises(InputError, match="unknown section zzz; expected one of data, preprocess, split, prior"):
        Params.parse(p)


def test_every_param_of_the_repository_file_is_known() -> None:
    """The known names are the sections' fields: exactly the params params.yaml holds, in its order."""
    assert sections.known() == [f"{section}.{key}" for section, keys in DEFAULTS.items() for key in keys]


def test_a_key_given_twice_is_refused_with_its_line(tmp_path: Path) -> None:
    """PyYAML keeps the last of two equal keys, where DVC refuses the file: a stage refuses it too."""
    path = tmp_path / "params.yaml"
    path.write_text("prior:\n  init: eye\n  freeze: true\n  init: none\n", encoding="utf-8")
    with pytest.raises(InputError, match=f"^{path}: line 4: not valid YAML: 'init' is given twice$"):
        checks.read(path)


def test_a_stage_fails_when_its_params_changed_while_it_ran(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another `dvc exp run` that rewrites params.yaml meanwhile: the stage fails, so DVC records nothing."""
    path = write_params(tmp_path)
    monkeypatch.chdir(tmp_path)
    seen = []

    def stage(params: Params) -> None:
        seen.append(params.prior.init)
        write_params(tmp_path, prior={"init": "eye"})

    with pytest.raises(SystemExit) as exit_:
        cli.run_stage(stage, argv=[])
    assert exit_.value.code == 1 and seen == ["original"]
    write_params(tmp_path)
    cli.run_stage(lambda params: seen.append(params.prior.init), argv=[])  # unchanged: the stage succeeds
    assert seen == ["original", "original"] and path.is_file()


def test_good_values_at_the_edges_are_accepted() -> None:
    p = with_value("train.momentum", 0)
    p["train"]["lambda"] = 1
    p["train"]["lr_head"] = 0
    p["preprocess"]["size"] = 1024
    params = Params.parse(p)
    assert (params.train.momentum, params.train.lam, params.train.lr_head) == (0.0, 1.0, 0.0)
    assert params.preprocess.size == 1024


#: (features.<key>, a value it refuses)
BAD_FEATURES = [
    ("layers", "Pooled"),
    ("layers", ""),
    ("layers", 1),
    ("layers", None),
    ("views", ["centre", "centre"]),
    ("views", ["centre", "mirror", "centre"]),
    ("views", ["centre", "left"]),
    ("views", ["Centre"]),
    ("views", [1]),
    ("views", "centre"),
    ("views", {"centre": 1}),
    ("views", None),
    ("views", [["centre"]]),  # an unhashable element
    ("views", [{"centre": 1}]),
    ("size", 31),
    ("size", 1025),
    ("size", -224),
    ("size", True),
    ("size", False),
    ("size", "224"),
    ("size", 224.0),
    ("size", None),
]


@pytest.mark.parametrize(("key", "value"), BAD_FEATURES, ids=[f"{key}={value!r}" for key, value in BAD_FEATURES])
def test_a_bad_features_param_is_one_error_naming_it(key: str, value: Any) -> None:
    with pytest.raises(InputError) as info:
        Params.parse(with_value(f"features.{key}", value))
    assert f"features.{key}" in str(info.value), str(info.value)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"layers": "stats"}, Extraction("stats", ("centre",), 0)),
        ({"views": ["full", "centre"]}, Extraction("pooled", ("full", "centre"), 0)),  # the order kept
        ({"views": ["centre", "mirror", "full"]}, Extraction("pooled", ("centre", "mirror", "full"), 0)),
        ({"size": 32}, Extraction("pooled", ("centre",), 32)),
        ({"size": 1024}, Extraction("pooled", ("centre",), 1024)),
        (
            {"layers": "stats", "views": ["centre", "mirror"], "size": 256},
            Extraction("stats", ("centre", "mirror"), 256),
        ),
    ],
)
def test_good_features_params_are_accepted(values: dict[str, Any], expected: Extraction) -> None:
    p = copy.deepcopy(DEFAULTS)
    p["features"].update(values)
    got = Params.parse(p).features
    assert got == expected
    assert isinstance(got.views, tuple) and type(got.size) is int


@pytest.mark.parametrize(
    "how",
    [
        Extraction(),
        Extraction("stats", ("centre",), 0),
        Extraction("pooled", ("full", "mirror"), 512),
        Extraction("stats", ("centre", "mirror", "full"), 32),
    ],
)
def test_a_recorded_extraction_reads_back_equal(how: Extraction) -> None:
    record = how.record()
    # What a final model stores: plain strings, a list and an int (loadable with weights_only).
    assert record == {"layers": how.layers, "views": list(how.views), "size": how.size}
    assert type(record["views"]) is list and all(type(v) is str for v in record["views"])
    assert Extraction.from_record(record) == how
    # The record of a yaml-parsed extraction restores to the same: views back to a tuple.
    assert Extraction.from_record(copy.deepcopy(record)).record() == record


def test_the_views_are_the_test_views_augment_renders() -> None:
    assert tuple(augment.TEST_VIEWS) == sections.VIEWS
    assert Extraction().views[0] in augment.TEST_VIEWS
    assert Extraction().layers in sections.LAYERS


def test_a_backbone_at_a_side_changes_only_its_input_side() -> None:
    assert LITE0.at(0) is LITE0  # 0: the backbone as it is
    for size in (32, 256, 1024):
        sized = LITE0.at(size)
        assert sized.size == size
        for field in dataclasses.fields(LITE0):
            if field.name != "size":
                assert getattr(sized, field.name) is getattr(LITE0, field.name), field.name
    assert LITE0.size == 224  # the registry's backbone untouched


def test_the_variant_runs_its_backbone_at_the_features_side() -> None:
    p = with_value("features.size", 320)
    p["features"]["layers"] = "stats"
    params = Params.parse(p)
    v = variant(params)
    assert (v.backbone.name, v.backbone.size) == ("efficientnet_lite0", 320)
    assert v.extraction == Extraction("stats", ("centre",), 320)
    assert (v.init, v.freeze, v.sigma, v.head, v.run, v.select) == (
        "original",
        True,
        0.6,
        "direct",
        params.train,
        params.select,
    )
    assert variant(Params.parse(DEFAULTS)).backbone.size == 224  # 0: the backbone's native side


def test_an_unknown_backbone_is_refused_where_it_is_resolved() -> None:
    params = Params.parse(with_value("model.backbone", "alexnet"))  # a name: the registry needs the libraries
    with pytest.raises(InputError, match=r"model\.backbone must be one of efficientnet_lite0"):
        variant(params)
