"""Stage `download`: bring Emotion6 from `data.source` into data/raw, unpacked safely and validated."""
from typing import Any

from ewmtcnn import layout, params, source


def main(p: dict[str, Any]) -> None:
    source.fetch(params.get(p, "data.source", str), params.get(p, "data.sha256", (str, type(None))) or "", layout.RAW)


if __name__ == "__main__":
    params.run_stage(main)
