"""Files on disk: atomic writes, safe loading, and the trained models' checkpoint formats.

- Imports nothing else of the package but `ewmtcnn.InputError`.
"""
