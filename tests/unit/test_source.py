"""The download stage's inputs: unsafe or corrupt archives, HTTP sources, source kinds and sha256.

Each refused input must raise one InputError that names the problem and where it is, and leave
nothing behind: no output folder, no temporary sibling, no file anywhere else.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import os
import re
import socket
import stat
import subprocess
import sys
import threading
import warnings
import zipfile
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import ClassVar

import pytest

from ewmtcnn import InputError
from ewmtcnn.data import source
from ewmtcnn.data.dataset import EMOTIONS
from ewmtcnn.data.source import download, extract, fetch
from support import REPO, assert_refused, tree, write_params, zip_folder

EXPECTED_FILES = {
    "ground_truth.txt",
    "readme.txt",
    "images",
    *(f"images/{e}" for e in EMOTIONS),
    *(f"images/{e}/{n}.jpg" for e in EMOTIONS for n in range(1, 6)),
}


def with_member(archive: Path, info: zipfile.ZipInfo | str, data: bytes = b"x") -> Path:
    """Append one member to an otherwise valid archive."""
    with warnings.catch_warnings(), zipfile.ZipFile(archive, "a") as zf:
        warnings.simplefilter("ignore", UserWarning)  # "Duplicate name", on purpose in one test
        zf.writestr(info, data)
    return archive


def member_info(name: str, mode: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3  # Unix: the mode lives in the high 16 bits of external_attr
    info.external_attr = mode << 16
    return info


def patch_entry(archive: Path, name: str, *, central: dict[int, bytes], local: dict[int, bytes]) -> None:
    """Overwrite bytes at offsets of `name`'s central-directory record and local header."""
    with zipfile.ZipFile(archive) as zf:
        info = zf.getinfo(name)
    data = bytearray(archive.read_bytes())
    record = data.find(b"PK\x01\x02")
    while data[record + 46 : record + 46 + len(name)] != name.encode():  # the signature may occur in member data
        record = data.find(b"PK\x01\x02", record + 4)
        assert record != -1, f"no central-directory record for {name}"
    for offset, value in central.items():
        data[record + offset : record + offset + len(value)] = value
    for offset, value in local.items():
        data[info.header_offset + offset : info.header_offset + offset + len(value)] = value
    archive.write_bytes(bytes(data))


def refused(
    data_source: Path | str, tmp_path: Path, out: Path, *fragments: str, sha: str = "", copy: Path | None = None
) -> str:
    """`fetch` must refuse `data_source` (or the local `copy` of it) with every fragment in its
    message, leaving nothing behind."""
    call = partial(fetch, str(data_source), sha, out, copy=None if copy is None else str(copy))
    message = assert_refused(call, tmp_path, *fragments)
    assert not out.exists() and not (tmp_path / "data").exists(), "the output and the folders made for it must be gone"
    return message


# --- not a zip, corrupt ---------------------------------------------------------------------


def test_random_bytes_refused(tmp_path: Path, raw_out: Path) -> None:
    archive = tmp_path / "Emotion6.zip"
    archive.write_bytes(os.urandom(4096))
    refused(archive, tmp_path, raw_out, f"{archive}: not a readable zip archive")


def test_empty_file_refused(tmp_path: Path, raw_out: Path) -> None:
    archive = tmp_path / "Emotion6.zip"
    archive.write_bytes(b"")
    refused(archive, tmp_path, raw_out, f"{archive}: not a readable zip archive")


def test_truncated_zip_refused(emotion6_zip: Path, tmp_path: Path, raw_out: Path) -> None:
    data = emotion6_zip.read_bytes()
    emotion6_zip.write_bytes(data[: len(data) * 2 // 3])
    refused(emotion6_zip, tmp_path, raw_out, f"{emotion6_zip}: not a readable zip archive")


def test_member_with_bad_crc_refused(emotion6_dir: Path, tmp_path: Path, raw_out: Path) -> None:
    """Stored (uncompressed) member data with one flipped byte: the CRC check names the member."""
    archive = tmp_path / "Emotion6.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zf:
        for path in sorted(emotion6_dir.rglob("*")):
            zf.write(path, f"Emotion6/{path.relative_to(emotion6_dir).as_posix()}")
    image = (emotion6_dir / "images" / "joy" / "3.jpg").read_bytes()
    data = bytearray(archive.read_bytes())
    at = data.find(image) + len(image) // 2
    data[at] ^= 0xFF
    archive.write_bytes(bytes(data))
    refused(archive, tmp_path, raw_out, "member 'Emotion6/images/joy/3.jpg' is corrupt", "CRC")


def test_member_with_corrupt_deflate_stream_refused(emotion6_zip: Path, tmp_path: Path, raw_out: Path) -> None:
    name = "Emotion6/ground_truth.txt"
    with zipfile.ZipFile(emotion6_zip) as zf:
        info = zf.getinfo(name)
    assert info.compress_type == zipfile.ZIP_DEFLATED
    data = bytearray(emotion6_zip.read_bytes())
    start = info.header_offset + 30 + len(name) + len(info.extra)
    for at in range(start + 2, start + min(40, info.compress_size)):
        data[at] ^= 0x5A
    emotion6_zip.write_bytes(bytes(data))
    refused(emotion6_zip, tmp_path, raw_out, f"member {name!r} is corrupt")


# --- unsafe members -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["Emotion6/../evil.txt", "Emotion6/../../../../evil.txt", "../evil.txt"])
def test_path_traversal_member_refused(name: str, emotion6_zip: Path, tmp_path: Path, raw_out: Path) -> None:
    # Four '..' from the staging folder's .archive land in tmp_path/data, so an escape would show in the tree.
    with_member(emotion6_zip, name, b"pwned\n")
    refused(emotion6_zip, tmp_path, raw_out, f"refusing member {name!r}", "'..' component (path traversal)")


def test_absolute_member_refused(emotion6_zip: Path, tmp_path: Path, raw_out: Path) -> None:
    existed = Path("/etc/x").exists()
    with_member(emotion6_zip, "/etc/x", b"pwned\n")
    refused(emotion6_zip, tmp_path, raw_out, "refusing member '/etc/x'", "is an absolute path")
    assert Path("/etc/x").exists() == existed


def test_absolute_member_into_tmp_refused(emotion6_zip: Path, tmp_path: Path, raw_out: Path) -> None:
    """An absolute name that would be writable (these tests may run as root): nothing may appear there."""
    target = tmp_path / "outside" / "evil.txt"
    with_member(emotion6_zip, str(target), b"pwned\n")
    refused(emotion6_zip, tmp_path, raw_out, f"refusing member {str(target)!r}", "is an absolute path")
    assert not target.exists()


def test_windows_path_members_refused(emotion6_zip: Path, tmp_path: Path, raw_out: Path) -> None:
    with_member(emotion6_zip, "C:/evil.txt")
    refused(emotion6_zip, tmp_path, raw_out, "refusing member 'C:/evil.txt'", "is an absolute path")


def test_backslash_member_refused(emotion6_zip: Path, tmp_path: Path, raw_out: Path) -> None:
    with_member(emotion6_zip, "Emotion6\\..\\evil.txt")
    refused(emotion6_zip, tmp_path, raw_out, "refusing member 'Emotion6\\\\..\\\\evil.txt'", "backslash")


def test_symlink_member_refused(emotion6_zip: Path, tmp_path: Path, raw_out: Path) -> None:
    with_member(emotion6_zip, member_info("Emotion6/images/joy/link.jpg", stat.S_IFLNK | 0o777), b"/etc/passwd")
    refused(emotion6_zip, tmp_path, raw_out, "refusing member 'Emotion6/images/joy/link.jpg'", "symbolic link")


@pytest.mark.parametrize(
    "kind", [stat.S_IFIFO, stat.S_IFCHR, stat.S_IFBLK, stat.S_IFSOCK], ids=["fifo", "chr", "blk", "sock"]
)
def test_special_file_member_refused(kind: int, emotion6_zip: Path, tmp_path: Path, raw_out: Path) -> None:
    with_member(emotion6_zip, member_info("Emotion6/pipe", kind | 0o644), b"")
    refused(emotion6_zip, tmp_path, raw_out, "refusing member 'Emotion6/pipe'", "special file")


def test_duplicate_member_refused(emotion6_zip: Path, tmp_path: Path, raw_out: Path) -> None:
    with_member(emotion6_zip, "Emotion6/ground_truth.txt", b"header\n")
    refused(emotion6_zip, tmp_path, raw_out, "refusing member 'Emotion6/ground_truth.txt'", "appears twice")


@pytest.mark.parametrize("second", ["Emotion6/readme.txt/x.txt", "Emotion6/readme.txt/sub/"])
def test_member_under_a_file_refused(second: str, emotion6_zip: Path, tmp_path: Path, raw_out: Path) -> None:
    """A member that needs an existing file to be a folder (was an uncaught OSError)."""
    with_member(emotion6_zip, second, b"" if second.endswith("/") else b"x")
    refused(
        emotion6_zip,
        tmp_path,
        raw_out,
        f"refusing member {second!r}",
        "lies under 'Emotion6/readme.txt', which is a file",
    )


def test_file_after_its_own_contents_refused(tmp_path: Path, raw_out: Path) -> None:
    """The same clash in the other order: the folder's contents first, then a file of its name."""
    archive = tmp_path / "Emotion6.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("Emotion6/extra/a.txt", "a")
        zf.writestr("Emotion6/extra", "b")
    refused(archive, tmp_path, raw_out, "refusing member 'Emotion6/extra/a.txt'", "lies under 'Emotion6/extra'")


def test_encrypted_member_refused(emotion6_zip: Path, tmp_path: Path, raw_out: Path) -> None:
    name = "Emotion6/readme.txt"
    patch_entry(emotion6_zip, name, central={8: b"\x01\x00"}, local={6: b"\x01\x00"})
    refused(emotion6_zip, tmp_path, raw_out, f"refusing member {name!r}", "is encrypted")


# --- zip bombs ------------------------------------------------------------------------------


def test_highly_compressed_member_refused(emotion6_zip: Path, tmp_path: Path, raw_out: Path) -> None:
    """300 MB of zeros deflate to ~300 kB: refused from the central directory, before inflating anything."""
    with zipfile.ZipFile(emotion6_zip, "a", zipfile.ZIP_DEFLATED) as zf, zf.open("Emotion6/zeros.bin", "w") as out:
        zeros = bytes(1 << 20)
        for _ in range(300):
            out.write(zeros)
    message = refused(emotion6_zip, tmp_path, raw_out, "refusing member 'Emotion6/zeros.bin'", "zip bomb?")
    assert f"to {300 << 20}" in message


def test_member_understating_its_size_refused(tmp_path: Path, raw_out: Path) -> None:
    """A member that declares 100 bytes but inflates to 20 MB passes the ratio check; extraction
    must stop at the declared size (the CRC then fails) instead of writing 20 MB."""
    archive = tmp_path / "Emotion6.zip"
    name = "Emotion6/bomb.bin"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(name, bytes(20 << 20))
    small = (100).to_bytes(4, "little")
    patch_entry(archive, name, central={24: small}, local={22: small})
    refused(archive, tmp_path, raw_out, f"member {name!r} is corrupt")
    dest = tmp_path / "direct"
    with pytest.raises(InputError, match="is corrupt"):
        extract(archive, dest)
    assert (dest / name).stat().st_size <= 100


def test_total_unpacked_size_limit(
    monkeypatch: pytest.MonkeyPatch, emotion6_zip: Path, tmp_path: Path, raw_out: Path
) -> None:
    monkeypatch.setattr(source, "MAX_UNPACKED_BYTES", 10_000)
    with zipfile.ZipFile(emotion6_zip) as zf:
        total = sum(m.file_size for m in zf.infolist())
    assert total > 10_000
    refused(emotion6_zip, tmp_path, raw_out, f"{emotion6_zip}: unpacks to {total} bytes, more than the 10000 allowed")


def test_member_count_limit(monkeypatch: pytest.MonkeyPatch, emotion6_zip: Path, tmp_path: Path, raw_out: Path) -> None:
    monkeypatch.setattr(source, "MAX_MEMBERS", 10)
    with zipfile.ZipFile(emotion6_zip) as zf:
        count = len(zf.infolist())
    refused(emotion6_zip, tmp_path, raw_out, f"{emotion6_zip}: {count} members, more than the 10 allowed")


# --- layout ---------------------------------------------------------------------------------


def test_archive_without_table_refused(emotion6_dir: Path, tmp_path: Path, raw_out: Path) -> None:
    (emotion6_dir / "ground_truth.txt").unlink()
    archive = zip_folder(emotion6_dir, tmp_path / "Emotion6.zip")
    refused(archive, tmp_path, raw_out, f"{archive}: expected one ground_truth.txt", "found none")


def test_archive_with_two_tables_refused(tmp_path: Path, raw_out: Path) -> None:
    archive = tmp_path / "Emotion6.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for top in ("A", "B"):
            zf.writestr(f"{top}/ground_truth.txt", "")
    refused(archive, tmp_path, raw_out, "expected one ground_truth.txt", "found A, B")


def test_table_too_deep_refused(emotion6_dir: Path, tmp_path: Path, raw_out: Path) -> None:
    archive = zip_folder(emotion6_dir, tmp_path / "Emotion6.zip", prefix="outer/Emotion6")
    refused(archive, tmp_path, raw_out, "expected one ground_truth.txt at the top or one folder down", "found none")


def test_missing_source_refused(tmp_path: Path, raw_out: Path) -> None:
    missing = tmp_path / "nowhere" / "Emotion6.zip"
    refused(missing, tmp_path, raw_out, f"data.source {str(missing)!r} is neither an http(s) URL")


def test_failed_run_keeps_previous_output(emotion6_zip: Path, tmp_path: Path, raw_out: Path) -> None:
    fetch(str(emotion6_zip), "", raw_out)
    before = {p: (raw_out / p).read_bytes() for p in tree(raw_out) if (raw_out / p).is_file()}
    with_member(emotion6_zip, "Emotion6/../evil.txt")
    assert_refused(lambda: fetch(str(emotion6_zip), "", raw_out), tmp_path, "path traversal")
    assert {p: (raw_out / p).read_bytes() for p in tree(raw_out) if (raw_out / p).is_file()} == before
    assert sorted(os.listdir(raw_out.parent)) == ["Emotion6"]


# --- sha256 ---------------------------------------------------------------------------------


def test_wrong_sha256_refused(emotion6_zip: Path, tmp_path: Path, raw_out: Path) -> None:
    actual = hashlib.sha256(emotion6_zip.read_bytes()).hexdigest()
    wrong = "0123456789abcdef" * 4
    refused(emotion6_zip, tmp_path, raw_out, "SHA-256 is", actual, wrong, "data.sha256", sha=wrong)


def test_empty_sha256_prints_hash(emotion6_zip: Path, raw_out: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert fetch(str(emotion6_zip), "", raw_out) == 30
    actual = hashlib.sha256(emotion6_zip.read_bytes()).hexdigest()
    assert f"SHA-256 of {emotion6_zip}: {actual}" in capsys.readouterr().out


@pytest.mark.parametrize("upper", [False, True], ids=["lower", "upper"])
def test_matching_sha256_accepted(
    upper: bool, emotion6_zip: Path, raw_out: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    actual = hashlib.sha256(emotion6_zip.read_bytes()).hexdigest()
    assert fetch(str(emotion6_zip), actual.upper() if upper else actual, raw_out) == 30
    assert tree(raw_out) == EXPECTED_FILES
    assert "set data.sha256" not in capsys.readouterr().out


def test_sha256_with_folder_source_refused(emotion6_dir: Path, tmp_path: Path, raw_out: Path) -> None:
    refused(
        emotion6_dir,
        tmp_path,
        raw_out,
        f"data.source {str(emotion6_dir)!r} is a folder",
        "clear data.sha256",
        sha="ab" * 32,
    )


# --- HTTP -----------------------------------------------------------------------------------


class Quiet(http.server.SimpleHTTPRequestHandler):
    """Serves a folder, records each request path, logs nothing."""

    hits: list[str]

    def do_GET(self) -> None:
        self.hits.append(self.path)
        super().do_GET()

    def log_message(self, *args: object) -> None:
        pass


@contextlib.contextmanager
def serve(handler: type[http.server.BaseHTTPRequestHandler] | partial) -> Iterator[str]:
    """An HTTP server on 127.0.0.1 (a free port) in a thread; yields its base URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Path, list[str]]]:
    """(base URL, the folder it serves, the request paths seen); retries without waiting."""
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    monkeypatch.setitem(source.download.__kwdefaults__, "backoff_s", 0.0)
    root = tmp_path / "www"
    root.mkdir()
    hits: ClassVar[list[str]] = []
    handler = type("Handler", (Quiet,), {"hits": hits})
    with serve(partial(handler, directory=str(root))) as url:
        yield url, root, hits


def test_source_kinds_give_the_same_output(
    emotion6_dir: Path, emotion6_zip: Path, tmp_path: Path, served: tuple[str, Path, list[str]]
) -> None:
    url, root, hits = served
    (root / "Emotion6.zip").write_bytes(emotion6_zip.read_bytes())
    outs = {kind: tmp_path / kind / "Emotion6" for kind in ("zip", "folder", "http")}
    assert fetch(str(emotion6_zip), "", outs["zip"]) == 30
    assert fetch(str(emotion6_dir), "", outs["folder"]) == 30
    assert fetch(f"{url}/Emotion6.zip", "", outs["http"]) == 30
    assert hits == ["/Emotion6.zip"]
    for kind, out in outs.items():
        assert tree(out) == EXPECTED_FILES, kind
        assert tree(out.parent) == {"Emotion6", *(f"Emotion6/{p}" for p in EXPECTED_FILES)}, f"{kind}: leftovers"
        assert (out / "ground_truth.txt").read_bytes() == (emotion6_dir / "ground_truth.txt").read_bytes(), kind
    for path in EXPECTED_FILES:
        if (emotion6_dir / path).is_file():
            assert {(out / path).read_bytes() for out in outs.values()} == {(emotion6_dir / path).read_bytes()}, path


def test_http_404_not_retried(served: tuple[str, Path, list[str]], tmp_path: Path, raw_out: Path) -> None:
    url, _, hits = served
    missing = f"{url}/nothing-here.zip"
    message = refused(
        missing,
        tmp_path,
        raw_out,
        f"could not download {missing}",
        "HTTP 404",
        "after 1 attempt(s)",
        "EMOTION6=/path/to/Emotion6.zip dvc repro",
    )
    assert hits == ["/nothing-here.zip"], "a client error must not be retried"
    assert message.count("could not download") == 1


def test_http_non_zip_body_refused(served: tuple[str, Path, list[str]], tmp_path: Path, raw_out: Path) -> None:
    """A server answering 200 with an HTML page instead of the archive."""
    url, root, _ = served
    (root / "Emotion6.zip").write_text("<html>moved</html>\n")
    refused(f"{url}/Emotion6.zip", tmp_path, raw_out, f"{url}/Emotion6.zip: not a readable zip archive")


def test_http_wrong_sha256_refused(
    served: tuple[str, Path, list[str]], emotion6_zip: Path, tmp_path: Path, raw_out: Path
) -> None:
    url, root, _ = served
    (root / "Emotion6.zip").write_bytes(emotion6_zip.read_bytes())
    actual = hashlib.sha256(emotion6_zip.read_bytes()).hexdigest()
    refused(
        f"{url}/Emotion6.zip", tmp_path, raw_out, f"{url}/Emotion6.zip: SHA-256 is {actual}", "f" * 64, sha="f" * 64
    )


class Truncated(http.server.BaseHTTPRequestHandler):
    """Promises 1000 bytes more than it sends, then closes the connection (HTTP/1.0)."""

    hits: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.hits.append(self.path)
        body = b"PK\x03\x04" + bytes(500)
        self.send_response(200)
        self.send_header("Content-Length", str(len(body) + 1000))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class Failing(Truncated):
    """Always 503."""

    def do_GET(self) -> None:
        self.hits.append(self.path)
        self.send_error(503, "Busy")


@pytest.mark.parametrize("handler", [Truncated, Failing], ids=["truncated", "server-error"])
def test_http_failure_retried_then_refused(
    handler: type[Truncated], tmp_path: Path, raw_out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    monkeypatch.setitem(source.download.__kwdefaults__, "backoff_s", 0.0)
    monkeypatch.setattr(handler, "hits", [])
    with serve(handler) as url:
        expected = "connection closed after" if handler is Truncated else "HTTP 503"
        refused(
            f"{url}/Emotion6.zip",
            tmp_path,
            raw_out,
            f"could not download {url}/Emotion6.zip",
            expected,
            f"after {source.ATTEMPTS} attempt(s)",
            "EMOTION6=/path/to/Emotion6.zip dvc repro",
        )
    assert handler.hits == ["/Emotion6.zip"] * source.ATTEMPTS


def test_download_truncated_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    monkeypatch.setattr(Truncated, "hits", [])
    dest = tmp_path / "x.zip"
    expected = r"could not download .*connection closed after .* bytes.*after 2 attempt\(s\)"
    with serve(Truncated) as url, pytest.raises(InputError, match=expected):
        download(f"{url}/x.zip", dest, attempts=2, backoff_s=0)
    assert len(Truncated.hits) == 2
    assert tree(tmp_path) == set()


def test_download_connection_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/x.zip"
    expected = (
        rf"could not download {re.escape(url)}: .*after 2 attempt\(s\)\); without network, name a local copy "
        r"\(a \.zip or an extracted Emotion6 folder\) in the environment: EMOTION6=/path/to/Emotion6\.zip dvc repro$"
    )
    with pytest.raises(InputError, match=expected):
        download(url, tmp_path / "x.zip", attempts=2, backoff_s=0, timeout=5)
    assert tree(tmp_path) == set()


# --- a local copy of the URL ($EMOTION6) ----------------------------------------------------


def closed_port_url() -> str:
    """A URL on a port nothing listens on: any attempt to download it fails."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/Emotion6.zip"


@pytest.mark.parametrize("kind", ["zip", "folder"])
def test_local_copy_replaces_the_download(
    kind: str,
    emotion6_dir: Path,
    emotion6_zip: Path,
    raw_out: Path,
    served: tuple[str, Path, list[str]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    url, _, hits = served
    copy = emotion6_zip if kind == "zip" else emotion6_dir
    assert fetch(f"{url}/Emotion6.zip", "", raw_out, copy=str(copy)) == 30
    assert hits == [], "the URL must not be requested when a local copy is named"
    assert tree(raw_out) == EXPECTED_FILES
    for path in EXPECTED_FILES:
        if (emotion6_dir / path).is_file():
            assert (raw_out / path).read_bytes() == (emotion6_dir / path).read_bytes(), path
    assert f"using the local copy {copy} of {url}/Emotion6.zip\n" in capsys.readouterr().out


def test_local_copy_zip_is_checked_against_sha256(emotion6_zip: Path, tmp_path: Path, raw_out: Path) -> None:
    actual = hashlib.sha256(emotion6_zip.read_bytes()).hexdigest()
    url = closed_port_url()
    refused(
        url,
        tmp_path,
        raw_out,
        f"{emotion6_zip}: SHA-256 is {actual}, but data.sha256 expects {'f' * 64}",
        sha="f" * 64,
        copy=emotion6_zip,
    )
    assert fetch(url, actual, raw_out, copy=str(emotion6_zip)) == 30


def test_local_copy_folder_cannot_be_checked_against_sha256(
    emotion6_dir: Path, raw_out: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """data.sha256 pins the official archive; an extracted copy of it is accepted, with a note."""
    url = closed_port_url()
    assert fetch(url, "ab" * 32, raw_out, copy=str(emotion6_dir)) == 30
    assert f"using the local copy {emotion6_dir} of {url} (a folder: data.sha256 cannot be checked)\n" in (
        capsys.readouterr().out
    )


def test_local_copy_is_validated_like_data_source(emotion6_zip: Path, tmp_path: Path, raw_out: Path) -> None:
    with_member(emotion6_zip, "Emotion6/../evil.txt", b"pwned\n")
    refused(
        closed_port_url(),
        tmp_path,
        raw_out,
        f"{emotion6_zip}: refusing member 'Emotion6/../evil.txt'",
        "path traversal",
        copy=emotion6_zip,
    )


def test_missing_local_copy_refused(tmp_path: Path, raw_out: Path) -> None:
    missing = tmp_path / "nowhere" / "Emotion6.zip"
    url = closed_port_url()
    refused(
        url,
        tmp_path,
        raw_out,
        f"EMOTION6={missing}: no such file or folder",
        f"unset it to download {url}",
        copy=missing,
    )


def test_local_copy_ignored_when_data_source_is_local(
    emotion6_zip: Path, tmp_path: Path, raw_out: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """data.source names a file itself: $EMOTION6 (here not even an existing path) plays no part."""
    assert fetch(str(emotion6_zip), "", raw_out, copy=str(tmp_path / "nowhere")) == 30
    assert "local copy" not in capsys.readouterr().out


# --- the stage script -----------------------------------------------------------------------


def run_download_stage(
    project: Path, data_source: str, local_copy: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """The download stage in `project`, with $EMOTION6 set to `local_copy` (unset when None, as CI sets it)."""
    project.mkdir(parents=True, exist_ok=True)
    write_params(project, data={"source": data_source, "sha256": ""})
    env = {k: v for k, v in os.environ.items() if k != "EMOTION6"}
    if local_copy is not None:
        env["EMOTION6"] = str(local_copy)
    return subprocess.run(
        [sys.executable, str(REPO / "stages" / "download.py")],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_stage_script_refuses_non_zip(tmp_path: Path) -> None:
    archive = tmp_path / "Emotion6.zip"
    archive.write_bytes(os.urandom(2048))
    project = tmp_path / "project"
    result = run_download_stage(project, str(archive))
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith(f"error: {archive}: not a readable zip archive"), result.stderr
    assert "Traceback" not in result.stderr
    assert not (project / "data" / "raw" / "Emotion6").exists()
    assert sorted(os.listdir(project)) == ["params.yaml"], "not even data/ may remain"


def test_stage_script_refuses_bad_table(emotion6_dir: Path, tmp_path: Path) -> None:
    table = emotion6_dir / "ground_truth.txt"
    lines = table.read_text().splitlines()
    lines[2] = lines[2].replace("disgust/1.jpg", "disgust/../1.jpg")
    table.write_text("\n".join(lines) + "\n")
    archive = zip_folder(emotion6_dir, tmp_path / "Emotion6.zip")
    project = tmp_path / "project"
    result = run_download_stage(project, str(archive))
    assert result.returncode == 1, result.stderr
    # Progress bars may come first; the error is one message starting at a line of its own.
    error = result.stderr[result.stderr.index("error: ") :]
    assert result.stderr[: result.stderr.index("error: ")].endswith(("\n", "\r")) or error == result.stderr
    assert "ground_truth.txt:3: image path 'disgust/../1.jpg'" in error
    assert "Traceback" not in result.stderr
    assert sorted(os.listdir(project)) == ["params.yaml"]


def test_stage_script_uses_the_local_copy_named_by_emotion6(emotion6_zip: Path, tmp_path: Path) -> None:
    project = tmp_path / "project"
    url = closed_port_url()
    result = run_download_stage(project, url, local_copy=emotion6_zip)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == f"using the local copy {emotion6_zip} of {url}"
    assert tree(project / "data" / "raw" / "Emotion6") == EXPECTED_FILES
    assert sorted(os.listdir(project / "data" / "raw")) == ["Emotion6"]


def test_stage_script_refuses_a_missing_local_copy(tmp_path: Path) -> None:
    project = tmp_path / "project"
    missing = tmp_path / "nowhere.zip"
    result = run_download_stage(project, closed_port_url(), local_copy=missing)
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: EMOTION6={missing}: no such file or folder"), result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert sorted(os.listdir(project)) == ["params.yaml"]
