"""params.yaml as one typed value: the value checks, and a frozen dataclass per section.

- Imports nothing else of the package but `ewmtcnn.InputError` and `ewmtcnn.paths`, so every subpackage may import it.
"""
