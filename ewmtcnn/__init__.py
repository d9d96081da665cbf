"""EW-MTCNN on Emotion6: emotion distribution learning with an emotion-wheel prior.

    from ewmtcnn import Predictor
    predictor = Predictor.load("data/final/model.pt")
    predictions = predictor.predict(["photo.jpg", "other.png"])  # paths, PIL images or uint8 arrays

- Subpackages, each importing only those before it: config, io, data, model, features, evaluation,
  training, study, cluster, predict (tests/unit/test_layers.py checks it); `ldl`, the classic label
  distribution learning methods, imports none of them.
- Beside them: `paths` (where stages read and write), `lifetime` (a process ends with its parent), `cli`
  (running a command). On top, `predict`: the Python API and `ewmtcnn-predict`.
- `import ewmtcnn` stays light (no torch): the API (LAZY) is imported when first used.
"""

from __future__ import annotations

import importlib


class InputError(Exception):
    """Bad input (archive, data table, image or parameter); the message names what and where.

    - Commands turn it into one line on stderr and a non-zero exit, without a traceback.
    """


#: The API that `import ewmtcnn` offers, by the module that defines it, imported on first use.
LAZY = {
    "Predictor": "ewmtcnn.predict.predictor",
    "Prediction": "ewmtcnn.predict.predictor",
    "Predictions": "ewmtcnn.predict.predictor",
}


def __getattr__(name: str) -> object:
    """`ewmtcnn.Predictor` and the rest of LAZY, imported now."""
    if name not in LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(LAZY[name]), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *LAZY])
