"""LICENSE and CITATION.cff: MIT, the same holder, and a citation file with the keys CFF 1.2.0 requires."""

from __future__ import annotations

import datetime
import re
import tomllib

import yaml

from support import REPO

HOLDER = "EW-MTCNN on Emotion6 contributors"


def test_license_is_mit_for_the_contributors() -> None:
    text = (REPO / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License\n")
    assert f"Copyright (c) 2026 {HOLDER}\n" in text
    assert 'THE SOFTWARE IS PROVIDED "AS IS"' in text


def test_citation_file_is_valid_cff_1_2_0() -> None:
    cff = yaml.safe_load((REPO / "CITATION.cff").read_text(encoding="utf-8"))
    assert {"cff-version", "message", "title", "authors"} <= set(cff)  # required by the CFF 1.2.0 schema
    assert cff["cff-version"] == "1.2.0"
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert cff["version"] == project["version"] == "0.1.0"
    assert cff["license"] == "MIT" and cff["authors"] == [{"name": HOLDER}]
    for reference in cff["references"]:
        assert {"type", "title", "authors"} <= set(reference)
        assert all(set(author) == {"family-names", "given-names"} for author in reference["authors"])
        assert re.fullmatch(r"10\.\d{4,9}/\S+", str(reference["doi"]))
        assert 1900 < reference["year"] <= datetime.date.today().year


def test_citation_references_the_paper_and_the_dataset() -> None:
    cff = yaml.safe_load((REPO / "CITATION.cff").read_text(encoding="utf-8"))
    cited = {r["title"]: [a["family-names"] for a in r["authors"]] for r in cff["references"]}
    assert cited == {
        "The Image Emotion Distribution Learning Based on Emotion Wheel and Multi-Task Convolutional Neural Network": [
            "Lai",
            "Wan",
            "Zeng",
        ],
        "A Mixed Bag of Emotions: Model, Predict, and Transfer Emotion Distributions": [
            "Peng",
            "Chen",
            "Sadovnik",
            "Gallagher",
        ],
    }
