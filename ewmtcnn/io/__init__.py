"""Files on disk: atomic writes, safe loading, the recipe's choice, the trained models' checkpoint formats.

- Imports nothing else of the package but `ewmtcnn.InputError` and `ewmtcnn.paths`.
"""
