"""ground_truth.txt validation, image decodability and the `dominant` emotion rule.

Every malformed input goes through `source.fetch` (the download stage's work) from an
extracted folder, so each test also shows that a refused input leaves no output behind.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from ewmtcnn.data.dataset import DISTRIBUTION, EMOTIONS, HEADER, dominant, labels_table, read_ground_truth
from ewmtcnn.data.source import fetch
from support import assert_refused, jpeg_bytes, table_rows, tree, write_emotion6, zip_folder

PER_EMOTION = 2  # 12 rows: row i is on line i + 2, in the order anger/1, disgust/1, ..., surprise/1, anger/2, ...
COLUMNS = ["image", "valence", "arousal", *DISTRIBUTION]


def rewrite_table(root: Path, rows: list[str], header: str | None = HEADER) -> None:
    """Replace `root/ground_truth.txt` (never through write_emotion6, which would write the listed images)."""
    lines = rows if header is None else [header, *rows]
    (root / "ground_truth.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


def with_field(rows: list[str], index: int, field: int, value: str) -> list[str]:
    """A copy of `rows` where field `field` of row `index` is `value` (fields: 0 image, 1 valence,
    2 arousal, 3.. probabilities)."""
    out = list(rows)
    fields = out[index].split("\t")
    fields[field] = value
    out[index] = "\t".join(fields)
    return out


def with_probs(rows: list[str], index: int, probs: list[str]) -> list[str]:
    out = list(rows)
    fields = out[index].split("\t")
    out[index] = "\t".join([*fields[:3], *probs])
    return out


@pytest.fixture
def src(tmp_path: Path) -> Path:
    """A valid extracted Emotion6 folder with 2 images per emotion."""
    return write_emotion6(tmp_path / "src" / "Emotion6", PER_EMOTION)


ROWS = table_rows(PER_EMOTION)
ZERO_PROBS = ["0"] * 7

# (header or None for no header line, rows, fragments the error must contain)
BAD_TABLES = {
    "header-renamed-column": (
        HEADER.replace("[valence]", "[Valence]"),
        ROWS,
        ["ground_truth.txt:1:", "header must be exactly", "'[image_filename]\\t[Valence]"],
    ),
    "header-missing": (None, ROWS, ["ground_truth.txt:1:", "header must be exactly", "found 'anger/1.jpg"]),
    "too-few-fields": (
        HEADER,
        ROWS[:1] + ["\t".join(ROWS[1].split("\t")[:9])] + ROWS[2:],
        ["ground_truth.txt:3:", "expected 10 tab-separated fields, found 9", "disgust/1.jpg"],
    ),
    "too-many-fields": (
        HEADER,
        ROWS[:1] + [ROWS[1] + "\t0"] + ROWS[2:],
        ["ground_truth.txt:3:", "expected 10 tab-separated fields, found 11"],
    ),
    "spaces-not-tabs": (
        HEADER,
        ROWS[:1] + [ROWS[1].replace("\t", " ")] + ROWS[2:],
        ["ground_truth.txt:3:", "found 1", "disgust/1.jpg"],
    ),
    "blank-line": (HEADER, ROWS[:4] + [""] + ROWS[4:], ["ground_truth.txt:6:", "found 1"]),
    "path-traversal": (
        HEADER,
        with_field(ROWS, 3, 0, "joy/../x.jpg"),
        ["ground_truth.txt:5:", "image path 'joy/../x.jpg' is not <emotion>/<name>.jpg"],
    ),
    "unknown-emotion-folder": (
        HEADER,
        with_field(ROWS, 3, 0, "happy/1.jpg"),
        ["ground_truth.txt:5:", "image path 'happy/1.jpg'"],
    ),
    "absolute-path": (
        HEADER,
        with_field(ROWS, 3, 0, "/etc/passwd"),
        ["ground_truth.txt:5:", "image path '/etc/passwd'"],
    ),
    "not-jpg": (HEADER, with_field(ROWS, 3, 0, "joy/1.png"), ["ground_truth.txt:5:", "image path 'joy/1.png'"]),
    "nested-folder": (
        HEADER,
        with_field(ROWS, 3, 0, "joy/a/1.jpg"),
        ["ground_truth.txt:5:", "image path 'joy/a/1.jpg'"],
    ),
    "duplicate-row": (
        HEADER,
        with_field(ROWS, 4, 0, "joy/1.jpg"),
        ["ground_truth.txt:6:", "duplicate row for joy/1.jpg (first on line 5)"],
    ),
    "valence-not-a-number": (
        HEADER,
        with_field(ROWS, 1, 1, "high"),
        ["ground_truth.txt:3:", "valence 'high' is not a number"],
    ),
    "valence-empty": (HEADER, with_field(ROWS, 1, 1, ""), ["ground_truth.txt:3:", "valence '' is not a number"]),
    "arousal-nan": (HEADER, with_field(ROWS, 1, 2, "nan"), ["ground_truth.txt:3:", "arousal 'nan' is not finite"]),
    "valence-infinite": (
        HEADER,
        with_field(ROWS, 1, 1, "-inf"),
        ["ground_truth.txt:3:", "valence '-inf' is not finite"],
    ),
    "valence-above-scale": (
        HEADER,
        with_field(ROWS, 1, 1, "9.5"),
        ["ground_truth.txt:3:", "valence 9.5 is outside [1, 9]"],
    ),
    "arousal-below-scale": (
        HEADER,
        with_field(ROWS, 1, 2, "0.5"),
        ["ground_truth.txt:3:", "arousal 0.5 is outside [1, 9]"],
    ),
    # Sums to exactly 1, so the negative value is the only problem.
    "negative-probability": (
        HEADER,
        with_probs(ROWS, 1, ["0.6", "-0.1", "0.5", "0", "0", "0", "0"]),
        ["ground_truth.txt:3:", "probability of disgust -0.1 is negative"],
    ),
    "probability-not-a-number": (
        HEADER,
        with_field(ROWS, 1, 5, "abc"),
        ["ground_truth.txt:3:", "fear 'abc' is not a number"],
    ),
    "probabilities-sum-below-1": (
        HEADER,
        with_probs(ROWS, 1, ["0.1"] * 7),
        ["ground_truth.txt:3:", "the seven probabilities sum to 0.7, not 1"],
    ),
    "probabilities-sum-above-1": (
        HEADER,
        with_probs(ROWS, 1, ["0.5", "0.5", "0.5", "0", "0", "0", "0"]),
        ["ground_truth.txt:3:", "sum to 1.5, not 1"],
    ),
    "all-zero-probabilities": (HEADER, with_probs(ROWS, 1, ZERO_PROBS), ["ground_truth.txt:3:", "sum to 0, not 1"]),
    "no-data-rows": (HEADER, [], ["ground_truth.txt: no data rows"]),
}


@pytest.mark.parametrize("case", list(BAD_TABLES), ids=list(BAD_TABLES))
def test_bad_table_refused(case: str, src: Path, tmp_path: Path, raw_out: Path) -> None:
    header, rows, fragments = BAD_TABLES[case]
    rewrite_table(src, rows, header)
    message = assert_refused(
        lambda: fetch(str(src), "", raw_out), tmp_path, "is not a valid Emotion6 table", *fragments
    )
    assert str(src / "ground_truth.txt") in message, "the error must name the table file"
    assert not raw_out.exists() and not (tmp_path / "data").exists()


def test_empty_table_refused(src: Path, tmp_path: Path, raw_out: Path) -> None:
    (src / "ground_truth.txt").write_bytes(b"")
    assert_refused(
        lambda: fetch(str(src), "", raw_out),
        tmp_path,
        "ground_truth.txt:1: header must be exactly",
        "found ''",
        "no data rows",
    )


def test_non_utf8_table_refused(src: Path, tmp_path: Path, raw_out: Path) -> None:
    lines = (src / "ground_truth.txt").read_bytes().split(b"\n")
    lines[3] = lines[3].replace(b"fear/1.jpg", b"fear/\xe9t\xe9.jpg")  # Latin-1 bytes on line 4
    (src / "ground_truth.txt").write_bytes(b"\n".join(lines))
    assert_refused(lambda: fetch(str(src), "", raw_out), tmp_path, "ground_truth.txt:4: not UTF-8 text")


def test_missing_table_refused(src: Path, tmp_path: Path, raw_out: Path) -> None:
    (src / "ground_truth.txt").unlink()
    assert_refused(lambda: fetch(str(src), "", raw_out), tmp_path, f"{src / 'ground_truth.txt'}: not found")


def test_bad_table_in_zip_refused(src: Path, tmp_path: Path, raw_out: Path) -> None:
    """The same checks apply to a table inside an archive; its line is still named."""
    rewrite_table(src, with_field(ROWS, 7, 1, "ten"))
    archive = zip_folder(src, tmp_path / "Emotion6.zip")
    message = assert_refused(
        lambda: fetch(str(archive), "", raw_out),
        tmp_path,
        f"{archive}/Emotion6/ground_truth.txt:9:",
        "valence 'ten' is not a number",
    )
    assert ".tmp" not in message  # files are named inside the archive, not by the deleted unpack folder


def test_many_problems_reported_together(tmp_path: Path, raw_out: Path) -> None:
    """30 bad rows: one error, the first 20 shown in file order, the rest counted."""
    src = write_emotion6(tmp_path / "src" / "Emotion6", 5)
    rows = table_rows(5)
    for i in range(30):
        rows = with_field(rows, i, 1, "x")  # one problem per row
    rewrite_table(src, rows)
    message = assert_refused(lambda: fetch(str(src), "", raw_out), tmp_path, "30 problem(s)", "\n  ... and 10 more")
    shown = [line for line in message.splitlines() if "valence 'x' is not a number" in line]
    assert len(shown) == 20
    assert [f"ground_truth.txt:{n}:" in line for n, line in zip(range(2, 22), shown, strict=True)] == [True] * 20
    assert "ground_truth.txt:22:" not in message
    assert message.rstrip().endswith("... and 10 more")


def test_different_problems_reported_together(src: Path, tmp_path: Path, raw_out: Path) -> None:
    rows = with_field(ROWS, 0, 0, "joy/../x.jpg")
    rows = with_field(rows, 5, 2, "inf")
    rows = with_probs(rows, 9, ["0.1"] * 7)
    rewrite_table(src, rows, HEADER.replace("\t", " "))
    assert_refused(
        lambda: fetch(str(src), "", raw_out),
        tmp_path,
        "4 problem(s)",
        "ground_truth.txt:1: header",
        "ground_truth.txt:2: image path 'joy/../x.jpg'",
        "ground_truth.txt:7: arousal 'inf' is not finite",
        "ground_truth.txt:11: the seven probabilities sum to 0.7",
    )


# --- images ---------------------------------------------------------------------------------


def test_missing_image_refused(src: Path, tmp_path: Path, raw_out: Path) -> None:
    (src / "images" / "joy" / "1.jpg").unlink()
    assert_refused(
        lambda: fetch(str(src), "", raw_out),
        tmp_path,
        "images listed in ground_truth.txt are unusable",
        "ground_truth.txt:5:",
        "joy/1.jpg: image not found",
    )


def test_truncated_jpeg_refused(src: Path, tmp_path: Path, raw_out: Path) -> None:
    image = src / "images" / "fear" / "2.jpg"  # row 8, line 10
    image.write_bytes(image.read_bytes()[: image.stat().st_size // 2])
    assert_refused(
        lambda: fetch(str(src), "", raw_out),
        tmp_path,
        "ground_truth.txt:10:",
        "fear/2.jpg: cannot be decoded as an image",
        "truncated",
    )


def test_non_image_named_jpg_refused(src: Path, tmp_path: Path, raw_out: Path) -> None:
    (src / "images" / "surprise" / "1.jpg").write_text("<html>not found</html>\n")  # row 5, line 7
    assert_refused(
        lambda: fetch(str(src), "", raw_out),
        tmp_path,
        "ground_truth.txt:7:",
        "surprise/1.jpg: cannot be decoded as an image",
    )


def test_image_that_is_a_folder_refused(src: Path, tmp_path: Path, raw_out: Path) -> None:
    image = src / "images" / "anger" / "2.jpg"  # row 6, line 8
    image.unlink()
    image.mkdir()
    assert_refused(lambda: fetch(str(src), "", raw_out), tmp_path, "ground_truth.txt:8:", "anger/2.jpg")


def test_all_bad_images_reported_together(src: Path, tmp_path: Path, raw_out: Path) -> None:
    (src / "images" / "anger" / "1.jpg").unlink()
    (src / "images" / "sadness" / "2.jpg").write_bytes(b"\xff\xd8\xff")  # a JPEG start, nothing more
    assert_refused(
        lambda: fetch(str(src), "", raw_out),
        tmp_path,
        "2 problem(s)",
        "ground_truth.txt:2:",
        "anger/1.jpg: image not found",
        "ground_truth.txt:12:",
        "sadness/2.jpg",
    )


def test_truncated_jpeg_in_zip_refused(src: Path, tmp_path: Path, raw_out: Path) -> None:
    (src / "images" / "disgust" / "1.jpg").write_bytes(jpeg_bytes(7)[:300])  # row 1, line 3
    archive = zip_folder(src, tmp_path / "Emotion6.zip")
    message = assert_refused(
        lambda: fetch(str(archive), "", raw_out),
        tmp_path,
        "ground_truth.txt:3:",
        f"{archive}/Emotion6/images/disgust/1.jpg: cannot be decoded as an image",
    )
    assert ".tmp" not in message


# --- valid input ----------------------------------------------------------------------------


def test_valid_table_parsed(src: Path) -> None:
    table = read_ground_truth(src)
    assert list(table.columns) == COLUMNS
    assert len(table) == 6 * PER_EMOTION
    assert list(table["image"]) == [f"{e}/{n}.jpg" for n in (1, 2) for e in EMOTIONS]
    first = ROWS[0].split("\t")
    assert table.loc[0, "valence"] == float(first[1]) and table.loc[0, "neutral"] == float(first[9])
    assert ((table[list(DISTRIBUTION)].sum(axis=1) - 1).abs() < 1e-3).all()


def test_valid_folder_fetched(src: Path, tmp_path: Path, raw_out: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (src / "images" / "joy" / "stray.jpg").write_bytes(jpeg_bytes(99))  # not in the table: not copied
    (src / "notes.txt").write_text("not part of the dataset\n")
    assert fetch(str(src), "", raw_out) == 12
    expected = {
        "ground_truth.txt",
        "readme.txt",
        "images",
        *(f"images/{e}" for e in EMOTIONS),
        *(f"images/{e}/{n}.jpg" for e in EMOTIONS for n in (1, 2)),
    }
    assert tree(raw_out) == expected
    assert tree(raw_out.parent) == {"Emotion6", *(f"Emotion6/{p}" for p in expected)}, "no temporary sibling may remain"
    assert (raw_out / "ground_truth.txt").read_bytes() == (src / "ground_truth.txt").read_bytes()
    assert "12 images validated" in capsys.readouterr().out


def test_windows_line_endings_accepted(src: Path) -> None:
    text = (src / "ground_truth.txt").read_text(encoding="utf-8")
    (src / "ground_truth.txt").write_bytes(text.replace("\n", "\r\n").encode("utf-8"))
    table = read_ground_truth(src)
    assert len(table) == 6 * PER_EMOTION and table["neutral"].notna().all()


def test_tolerances_accepted(src: Path) -> None:
    """Scale ends, zero probabilities and a sum off by less than 1e-3 are valid."""
    rows = with_field(ROWS, 0, 1, "1")
    rows = with_field(rows, 0, 2, "9.0")
    rows = with_probs(rows, 1, ["0", "0.9995", "0", "0", "0", "0", "0"])
    rewrite_table(src, rows)
    table = read_ground_truth(src)
    assert (table.loc[0, "valence"], table.loc[0, "arousal"]) == (1.0, 9.0)
    assert table.loc[1, "disgust"] == 0.9995


# --- the dominant emotion -------------------------------------------------------------------


def frame(rows: list[tuple[str, list[float]]]) -> pd.DataFrame:
    """A table as read_ground_truth returns it; probabilities in the order of DISTRIBUTION."""
    return pd.DataFrame([[image, 5.0, 5.0, *probs] for image, probs in rows], columns=COLUMNS)


#  image, [anger, disgust, fear, joy, sadness, surprise, neutral], expected (worked out by hand)
DOMINANT = {
    "clear-maximum": ("anger/1.jpg", [0.125, 0.125, 0.5, 0.125, 0, 0, 0.125], "fear"),
    "clear-maximum-is-folder": ("joy/1.jpg", [0, 0, 0.25, 0.625, 0, 0, 0.125], "joy"),
    "tie-with-folder-goes-to-folder": ("sadness/1.jpg", [0, 0, 0, 0.375, 0.375, 0.125, 0.125], "sadness"),
    "three-way-tie-with-folder": ("surprise/1.jpg", [0.25, 0, 0.25, 0, 0, 0.25, 0.25], "surprise"),
    "tie-without-folder-goes-to-lowest": ("surprise/2.jpg", [0, 0.375, 0, 0, 0.375, 0.125, 0.125], "disgust"),
    "tie-without-folder-lowest-is-anger": ("fear/1.jpg", [0.3, 0.1, 0.1, 0.3, 0, 0, 0.2], "anger"),
    "neutral-largest-ignored": ("joy/2.jpg", [0.0625, 0, 0.1875, 0.125, 0, 0, 0.625], "fear"),
    "neutral-largest-and-tie": ("anger/2.jpg", [0, 0, 0.25, 0, 0, 0.25, 0.5], "fear"),
    "only-neutral-all-six-tied": ("disgust/2.jpg", [0, 0, 0, 0, 0, 0, 1], "disgust"),
}


@pytest.mark.parametrize("case", list(DOMINANT), ids=list(DOMINANT))
def test_dominant_single_row(case: str) -> None:
    image, probs, expected = DOMINANT[case]
    assert list(dominant(frame([(image, probs)]))) == [expected]


def test_dominant_whole_table() -> None:
    """Rows do not influence each other, and the result keeps the table's index."""
    table = frame([(image, probs) for image, probs, _ in DOMINANT.values()])
    table.index = range(100, 100 + len(table))
    result = dominant(table)
    assert list(result) == [expected for _, _, expected in DOMINANT.values()]
    assert list(result.index) == list(table.index)


def test_dominant_ties_survive_parsing(src: Path) -> None:
    """Equal probabilities written as the same text parse to equal floats, so the tie rules apply."""
    rows = with_probs(ROWS, 0, ["0.1", "0.3", "0", "0.3", "0.2", "0.1", "0"])  # anger/1.jpg: disgust = joy, not folder
    rows = with_probs(rows, 3, ["0.2", "0.2", "0.2", "0.2", "0.1", "0.1", "0"])  # joy/1.jpg: four-way tie with folder
    rows = with_probs(rows, 4, ["0.1", "0.1", "0.1", "0.1", "0.1", "0.1", "0.4"])  # sadness/1.jpg: neutral largest
    rewrite_table(src, rows)
    labels = labels_table(read_ground_truth(src))
    assert list(labels.columns) == ["image", "folder", "valence", "arousal", *DISTRIBUTION, "dominant"]
    assert list(labels["dominant"][[0, 3, 4]]) == ["disgust", "joy", "sadness"]
    assert list(labels["folder"][[0, 3, 4]]) == ["anger", "joy", "sadness"]
