"""Getting Emotion6 into `data/`: from the official URL (or a local copy of it named by
$EMOTION6), a local zip or an extracted folder.

Whatever the source, the archive is unpacked defensively, the table and every image are
validated, and only then does the output folder appear (under its final name, in one rename).
"""

from __future__ import annotations

import hashlib
import http.client
import re
import shutil
import stat
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from ewmtcnn import InputError
from ewmtcnn.data.dataset import GROUND_TRUTH, IMAGE_DIR, image_lines, read_ground_truth
from ewmtcnn.data.images import check_images
from ewmtcnn.io.atomic import written

README = "readme.txt"
# Limits far above the real archive (1,989 members, 191 MB unpacked) and far below a zip bomb.
MAX_MEMBERS = 20_000
MAX_UNPACKED_BYTES = 4 * 1024**3
MAX_RATIO = 200  # JPEGs barely compress; a member that inflates 200-fold is a bomb
TIMEOUT_S = 60
ATTEMPTS = 3
CHUNK = 1 << 20
# The environment variable that names a local copy of the archive at data.source's URL.
LOCAL_COPY = "EMOTION6"
LOCAL_HINT = (
    "without network, name a local copy (a .zip or an extracted Emotion6 folder) in the environment: "
    f"{LOCAL_COPY}=/path/to/Emotion6.zip dvc repro"
)


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file."""
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def download(
    url: str, dest: Path, *, attempts: int = ATTEMPTS, timeout: float = TIMEOUT_S, backoff_s: float = 2.0
) -> None:
    """Stream `url` to `dest` with a progress bar; retry network and server errors.

    Client errors (4xx) are not retried. A body shorter than its Content-Length is an error.
    """
    last = ""
    for attempt in range(1, attempts + 1):
        try:
            request = urllib.request.Request(url, headers={"User-Agent": "ewmtcnn"})
            with urllib.request.urlopen(request, timeout=timeout) as response, dest.open("wb") as out:
                total = int(response.headers.get("Content-Length") or 0) or None
                got = 0
                with tqdm(total=total, unit="B", unit_scale=True, desc="downloading Emotion6") as bar:
                    while chunk := response.read(CHUNK):
                        out.write(chunk)
                        got += len(chunk)
                        bar.update(len(chunk))
                if total is not None and got != total:
                    raise ConnectionError(f"connection closed after {got} of {total} bytes")
            return
        except urllib.error.HTTPError as e:
            last = f"HTTP {e.code} {e.reason}"
            if e.code < 500:
                break
        except (urllib.error.URLError, http.client.HTTPException, OSError) as e:
            reason = getattr(e, "reason", None) or e
            last = f"{type(e).__name__}: {reason}"
        if attempt < attempts:
            time.sleep(backoff_s * attempt)
    dest.unlink(missing_ok=True)
    raise InputError(f"could not download {url}: {last} (after {attempt} attempt(s)); {LOCAL_HINT}")


def _member_problem(info: zipfile.ZipInfo) -> str | None:
    """Why extracting this member would be unsafe, or None."""
    name = info.filename
    if "\\" in name or "\x00" in name:
        return "has a backslash or NUL in its name"
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return "is an absolute path"
    if ".." in PurePosixPath(name).parts:
        return "has a '..' component (path traversal)"
    kind = stat.S_IFMT(info.external_attr >> 16)
    if kind == stat.S_IFLNK:
        return "is a symbolic link"
    if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
        return "is a special file (device, FIFO or socket)"
    if info.flag_bits & 0x1:
        return "is encrypted"
    if info.file_size > MAX_RATIO * max(info.compress_size, 1) and info.file_size > CHUNK:
        return f"inflates {info.compress_size} bytes to {info.file_size} (zip bomb?)"
    return None


def extract(archive: Path, dest: Path, name: str | None = None) -> None:
    """Unpack `archive` into `dest`, refusing anything that could escape `dest` or exhaust the disk.

    Errors call the archive `name` (a downloaded one by its URL, not its temporary path).
    """
    name = name or str(archive)
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as e:
        raise InputError(f"{name}: not a readable zip archive ({e})") from None
    with zf:
        members = zf.infolist()
        if len(members) > MAX_MEMBERS:
            raise InputError(f"{name}: {len(members)} members, more than the {MAX_MEMBERS} allowed (zip bomb?)")
        unpacked = sum(m.file_size for m in members)
        if unpacked > MAX_UNPACKED_BYTES:
            raise InputError(
                f"{name}: unpacks to {unpacked} bytes, more than the {MAX_UNPACKED_BYTES} allowed (zip bomb?)"
            )
        names: set[str] = set()
        files = {m.filename for m in members if not m.is_dir()}
        for member in members:
            problem = _member_problem(member)
            if problem is None and member.filename.rstrip("/") in names:
                problem = "appears twice"
            parents = (str(p) for p in PurePosixPath(member.filename).parents)
            clash = next((p for p in parents if p in files), None)
            if problem is None and clash is not None:
                # Extracting it needs `clash` to be a folder: an OSError mid-extraction otherwise.
                problem = f"lies under {clash!r}, which is a file"
            if problem:
                raise InputError(f"{name}: refusing member {member.filename!r}: it {problem}")
            names.add(member.filename.rstrip("/"))
        for member in tqdm(members, desc="extracting", unit="file"):
            target = dest / member.filename
            if member.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                with zf.open(member) as src, target.open("wb") as out:
                    shutil.copyfileobj(src, out, CHUNK)
            except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, OSError) as e:
                raise InputError(f"{name}: member {member.filename!r} is corrupt ({e})") from None


def find_root(tree: Path, origin: str) -> Path:
    """The folder holding ground_truth.txt: the top of `tree` or one folder down."""
    candidates = [tree] if (tree / GROUND_TRUTH).is_file() else []
    candidates += sorted(p.parent for p in tree.glob(f"*/{GROUND_TRUTH}") if p.is_file())
    if len(candidates) != 1:
        found = "none" if not candidates else ", ".join(str(c.relative_to(tree)) for c in candidates)
        raise InputError(
            f"{origin}: expected one {GROUND_TRUTH} at the top or one folder down (the Emotion6 layout); found {found}"
        )
    return candidates[0]


def is_url(source: str) -> bool:
    """Whether data.source is to be downloaded, rather than read from this machine."""
    return re.match(r"^https?://", source) is not None


def local_copy(source: str, copy: str | None) -> Path | None:
    """The local copy to use instead of downloading `source`: `copy` (the value of $EMOTION6),
    when `source` is an http(s) URL and `copy` is set; None otherwise."""
    if not copy or not is_url(source):
        return None
    path = Path(copy).expanduser()
    if not path.exists():
        raise InputError(
            f"{LOCAL_COPY}={copy}: no such file or folder; set it to a local Emotion6.zip or an "
            f"extracted Emotion6 folder, or unset it to download {source}"
        )
    return path


def fetch(source: str, expected_sha256: str, out: Path, *, copy: str | None = None) -> int:
    """Bring Emotion6 from `source` into `out`, validated; returns the number of images.

    `source` is an http(s) URL, a local .zip, or an extracted Emotion6 folder. A URL is not
    downloaded when `copy` (the value of $EMOTION6) names a local copy of it, .zip or folder.
    When `expected_sha256` is set the archive must match it; otherwise its hash is printed.
    """
    mirror = local_copy(source, copy)
    if mirror is not None:
        # The copy stands for the URL; errors name the copy, which is what the user can fix.
        note = ""
        if mirror.is_dir() and expected_sha256:
            note, expected_sha256 = " (a folder: data.sha256 cannot be checked)", ""
        print(f"using the local copy {mirror} of {source}{note}")
        source = str(mirror)
    url = is_url(source)
    local = Path(source).expanduser()
    if not url and not local.exists():
        raise InputError(f"data.source {source!r} is neither an http(s) URL nor an existing .zip file or folder")
    if not url and local.is_dir() and expected_sha256:
        raise InputError(f"data.sha256 pins an archive, but data.source {source!r} is a folder; clear data.sha256")
    with written(out, directory=True) as staging:
        if local.is_dir() and not url:
            root, move = local, False
        else:
            archive = local
            if url:
                archive = staging / ".download.zip"
                download(source, archive)
            digest = sha256(archive)
            if expected_sha256 and digest != expected_sha256.lower():
                raise InputError(f"{source}: SHA-256 is {digest}, but data.sha256 expects {expected_sha256}")
            if not expected_sha256:
                print(f"SHA-256 of {source}: {digest} (set data.sha256 to pin it)")
            extract(archive, staging / ".archive", source)
            if url:
                archive.unlink()
            root, move = find_root(staging / ".archive", source), True
        try:
            table = read_ground_truth(root)
            check_images(root, table["image"], image_lines(table))
        except InputError as e:
            if not move:
                raise
            # Name files as they sit in the archive, not by the temporary folder they were unpacked to.
            raise InputError(str(e).replace(str(staging / ".archive"), source)) from None
        _assemble(root, list(table["image"]), staging, move)
        shutil.rmtree(staging / ".archive", ignore_errors=True)
    print(f"{len(table)} images validated -> {out}")
    return len(table)


def _assemble(root: Path, images: list[str], dest: Path, move: bool) -> None:
    """Put the table, the readme and exactly the listed images into `dest`."""
    transfer = shutil.move if move else shutil.copyfile
    for name in (GROUND_TRUTH, README):
        if (root / name).is_file():
            transfer(root / name, dest / name)
    for image in images:
        target = dest / IMAGE_DIR / image
        target.parent.mkdir(parents=True, exist_ok=True)
        transfer(root / IMAGE_DIR / image, target)
