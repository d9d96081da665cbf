"""Classic label distribution learning on precomputed features: one module per method, a registry, selection.

- Methods (registry keys): `sa_bfgs`, `aa_knn`, `pt_bayes` (Geng, TKDE 2016) and `ldl_lrr` (Jia et al., TKDE
  2023). Each module defines `METHOD`: its name, its hyperparameter grids and `fit(x, d, value) -> predictor`.
- `select(METHODS[name], x, d, seed=...)` picks a grid point by inner cross-validation on the training
  images and refits it; `method(name)` looks a name up with a clear error.
- Pure NumPy, SciPy and scikit-learn in float64, deterministic; imports no other subpackage.
"""

from ewmtcnn import InputError
from ewmtcnn.ldl import aa_knn, ldl_lrr, pt_bayes, sa_bfgs
from ewmtcnn.ldl.common import Method, Predictor, Value
from ewmtcnn.ldl.selection import Selected, select

#: Every method by its name.
METHODS: dict[str, Method] = {m.name: m for m in (sa_bfgs.METHOD, aa_knn.METHOD, pt_bayes.METHOD, ldl_lrr.METHOD)}

__all__ = ["METHODS", "Method", "Predictor", "Selected", "Value", "method", "select"]


def method(name: str) -> Method:
    """The registered method called `name`."""
    if name not in METHODS:
        raise InputError(f"unknown LDL method {name!r}; expected one of {', '.join(METHODS)}")
    return METHODS[name]
