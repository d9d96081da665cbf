"""Stage `download`: bring Emotion6 from `data.source` into data/raw, unpacked safely and validated.

When `data.source` is a URL and $EMOTION6 names a local copy of that archive (a .zip or an
extracted folder), the copy is used instead: params.yaml keeps the official URL, and a
checkout stays clean whichever way the data came in.
"""

import os
from typing import Any

from ewmtcnn import cli, params, paths
from ewmtcnn.data import source


def main(p: dict[str, Any]) -> None:
    source.fetch(
        params.get(p, "data.source", str),
        params.get(p, "data.sha256", (str, type(None))) or "",
        paths.RAW,
        copy=os.environ.get(source.LOCAL_COPY),
    )


if __name__ == "__main__":
    cli.run_stage(main)
