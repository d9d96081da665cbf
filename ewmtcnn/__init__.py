"""EW-MTCNN on Emotion6: emotion distribution learning with an emotion-wheel prior.

- Subpackages, each importing only those before it: config, io, data, model, features, evaluation,
  training, study, cluster (tests/unit/test_layers.py checks it); `ldl`, the classic label
  distribution learning methods, imports none of them.
- Beside them: `paths` (where stages read and write), `lifetime` (a process ends with its parent); on top, `cli`
  (running a command) and `predict` (ewmtcnn-predict).
"""


class InputError(Exception):
    """Bad input (archive, data table, image or parameter); the message names what and where.

    - Commands turn it into one line on stderr and a non-zero exit, without a traceback.
    """
