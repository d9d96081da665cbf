"""The `features.*` params: which layers, which test-time views, at which input side; each bad
value one error naming the param, and what a final model records read back unchanged."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

import pytest
import yaml

from ewmtcnn import InputError
from ewmtcnn.data import augment
from ewmtcnn.features import spec
from ewmtcnn.features.spec import Extraction
from ewmtcnn.model import backbones

REPO = Path(__file__).resolve().parents[2]
DEFAULTS = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
LITE0 = backbones.get("efficientnet_lite0")


def with_features(**values: Any) -> dict[str, Any]:
    """The repository's params with `features.<key>` set to each value."""
    p = copy.deepcopy(DEFAULTS)
    p["features"].update(values)
    return p


def test_the_repository_default_is_the_pooled_centre_crop_at_the_native_side() -> None:
    assert spec.extraction(DEFAULTS) == Extraction("pooled", ("centre",), 0)


#: (features.<key>, a value it refuses)
BAD = [
    ("layers", "conv"),
    ("layers", "Pooled"),
    ("layers", ""),
    ("layers", 1),
    ("layers", None),
    ("views", []),
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
    ("size", 16),
    ("size", 31),
    ("size", 1025),
    ("size", 2000),
    ("size", -224),
    ("size", True),
    ("size", False),
    ("size", "224"),
    ("size", 224.0),
    ("size", None),
]


@pytest.mark.parametrize(("key", "value"), BAD, ids=[f"{key}={value!r}" for key, value in BAD])
def test_a_bad_features_param_is_one_error_naming_it(key: str, value: Any) -> None:
    with pytest.raises(InputError) as info:
        spec.extraction(with_features(**{key: value}))
    assert f"features.{key}" in str(info.value), str(info.value)


@pytest.mark.parametrize("key", ["layers", "views", "size"])
def test_a_missing_features_param_is_named(key: str) -> None:
    p = copy.deepcopy(DEFAULTS)
    del p["features"][key]
    with pytest.raises(InputError, match=f"missing parameter features.{key}"):
        spec.extraction(p)


def test_a_missing_features_section_is_named() -> None:
    p = copy.deepcopy(DEFAULTS)
    del p["features"]
    with pytest.raises(InputError, match="missing parameter features.layers"):
        spec.extraction(p)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"layers": "stats"}, Extraction("stats", ("centre",), 0)),
        ({"views": ["mirror"]}, Extraction("pooled", ("mirror",), 0)),
        ({"views": ["full", "centre"]}, Extraction("pooled", ("full", "centre"), 0)),  # the order kept
        ({"views": ["centre", "mirror", "full"]}, Extraction("pooled", ("centre", "mirror", "full"), 0)),
        ({"size": 32}, Extraction("pooled", ("centre",), 32)),
        ({"size": 1024}, Extraction("pooled", ("centre",), 1024)),
        ({"size": 300}, Extraction("pooled", ("centre",), 300)),
        (
            {"layers": "stats", "views": ["centre", "mirror"], "size": 256},
            Extraction("stats", ("centre", "mirror"), 256),
        ),
    ],
)
def test_good_features_params_are_accepted(values: dict[str, Any], expected: Extraction) -> None:
    got = spec.extraction(with_features(**values))
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
    assert spec.restored(record) == how
    # The record of a yaml-parsed extraction restores to the same: views back to a tuple.
    assert spec.restored(copy.deepcopy(record)).record() == record


def test_sized_changes_only_the_input_side() -> None:
    assert Extraction(size=0).sized(LITE0) is LITE0  # 0: the backbone as it is
    for size in (32, 256, 1024):
        sized = Extraction("stats", ("mirror",), size).sized(LITE0)
        assert sized.size == size
        for field in dataclasses.fields(LITE0):
            if field.name != "size":
                assert getattr(sized, field.name) is getattr(LITE0, field.name), field.name
    assert LITE0.size == 224  # the registry's backbone untouched


def test_the_views_are_the_test_views_augment_renders() -> None:
    assert tuple(augment.TEST_VIEWS) == spec.VIEWS
    assert spec.Extraction().views[0] in augment.TEST_VIEWS
    assert spec.Extraction().layers in spec.LAYERS
