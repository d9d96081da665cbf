"""Stage `download`: bring Emotion6 from `data.source` into data/raw, unpacked safely and validated.

- When `data.source` is a URL and $EMOTION6 names a local copy of that archive (a .zip or an
  extracted folder), the copy is used instead.
- params.yaml keeps the official URL, and a checkout stays clean whichever way the data came in.
"""

import os

from ewmtcnn import cli, paths
from ewmtcnn.config.sections import Params
from ewmtcnn.data import source


def main(params: Params) -> None:
    source.fetch(params.data.source, params.data.sha256, paths.RAW, copy=os.environ.get(source.LOCAL_COPY))


if __name__ == "__main__":
    cli.run_stage(main)
