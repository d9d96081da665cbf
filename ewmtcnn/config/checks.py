"""The value checks of params.yaml: each param's type and range, one error naming it and what it may be.

- Values are looked up by dotted name (`train.lr_head`) in the file's nested mappings.
- A missing or mistyped value is an `InputError`, never a traceback halfway through a stage.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from ewmtcnn import InputError
from ewmtcnn.paths import PARAMS

MAX_SEED = 2**31 - 1  # seed + repeat (and * 1000 + fold) stays within every library's range


class _UniqueKeys(yaml.SafeLoader):
    """YAML's safe loader that refuses a key given twice in one mapping, as DVC does (PyYAML keeps the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"{key!r} is given twice", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def read(path: Path = PARAMS) -> dict[str, Any]:
    """The whole params file as nested dicts; a key given twice is refused with its line."""
    try:
        params = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeys)  # a SafeLoader: plain data only
    except FileNotFoundError:
        raise InputError(f"{path} not found: run stages from the repository root") from None
    except yaml.MarkedYAMLError as e:  # one line: where, and what
        line = f" line {e.problem_mark.line + 1}:" if e.problem_mark else ""
        raise InputError(f"{path}:{line} not valid YAML: {e.problem}") from None
    except yaml.YAMLError as e:
        raise InputError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(params, dict):
        raise InputError(f"{path}: expected a mapping of sections, found {type(params).__name__}")
    return params


def _names(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    words = {"str": "a string", "int": "an integer", "bool": "true or false", "float": "a number", "NoneType": "empty"}
    return " or ".join(dict.fromkeys(words.get(k.__name__, k.__name__) for k in kinds))


def _refuse(dotted: str, allowed: str, value: Any) -> InputError:
    """The error for `dotted` holding `value` where it must be `allowed`."""
    hint = ""
    if isinstance(value, str) and _parses_as_number(value):
        # YAML 1.1 (PyYAML) reads 1e-3 as a string: it wants a dot in the mantissa.
        hint = " (YAML reads it as text: write 0.001 or 1.0e-3)"
    return InputError(f"{PARAMS}: {dotted} must be {allowed}; found {value!r}{hint}")


def _parses_as_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def _lookup(params: Mapping[str, Any], dotted: str) -> Any:
    value: Any = params
    for key in dotted.split("."):
        if not isinstance(value, Mapping) or key not in value:
            raise InputError(f"{PARAMS}: missing parameter {dotted}")
        value = value[key]
    return value


def get(params: Mapping[str, Any], dotted: str, kind: type | tuple[type, ...]) -> Any:
    """The value at `section.key`, checked to be of `kind`; missing or mistyped is an error."""
    value = _lookup(params, dotted)
    kinds = kind if isinstance(kind, tuple) else (kind,)
    # bool is an int in Python; a flag given where a number is expected is a mistake.
    if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
        raise _refuse(dotted, _names(kind), value)
    return value


def choice(params: Mapping[str, Any], dotted: str, allowed: tuple[str, ...]) -> str:
    """A string parameter that must be one of `allowed`."""
    value = get(params, dotted, str)
    if value not in allowed:
        raise _refuse(dotted, f"one of {', '.join(allowed)}", value)
    return value


def names(params: Mapping[str, Any], dotted: str, allowed: tuple[str, ...], what: str) -> tuple[str, ...]:
    """A non-empty list of distinct names among `allowed`; `what` says what they are, in the error."""
    values = get(params, dotted, list)
    found = [value for value in values if isinstance(value, str)]
    if not values or len(found) != len(values) or len(set(found)) != len(found) or not set(found) <= set(allowed):
        raise _refuse(dotted, f"a non-empty list of distinct {what} among {', '.join(allowed)}", values)
    return tuple(found)


def _bound(x: float) -> str:
    return str(x) if isinstance(x, int) else f"{x:g}"


def _interval(lo: float | None, hi: float | None, lo_open: bool, hi_open: bool) -> str:
    if lo is not None and hi is not None:
        return f"in {'(' if lo_open else '['}{_bound(lo)}, {_bound(hi)}{')' if hi_open else ']'}"
    if lo is not None:
        return f"{'>' if lo_open else '>='} {_bound(lo)}"
    if hi is not None:
        return f"{'<' if hi_open else '<='} {_bound(hi)}"
    return ""


def _inside(value: float, lo: float | None, hi: float | None, lo_open: bool, hi_open: bool) -> bool:
    above = lo is None or (value > lo if lo_open else value >= lo)
    below = hi is None or (value < hi if hi_open else value <= hi)
    return above and below


def integer(params: Mapping[str, Any], dotted: str, lo: int | None = None, hi: int | None = None) -> int:
    """An integer parameter in [lo, hi] (either bound may be open-ended)."""
    return bounded(dotted, _lookup(params, dotted), lo, hi)


def bounded(dotted: str, value: Any, lo: int | None = None, hi: int | None = None) -> int:
    """`value`, the param `dotted`, checked to be an integer in [lo, hi] (either bound may be open-ended)."""
    allowed = " ".join(filter(None, ("an integer", _interval(lo, hi, False, False))))
    if isinstance(value, bool) or not isinstance(value, int) or not _inside(value, lo, hi, False, False):
        raise _refuse(dotted, allowed, value)
    return value


def seed(params: Mapping[str, Any], dotted: str) -> int:
    """A random seed, 0 to MAX_SEED."""
    return integer(params, dotted, 0, MAX_SEED)


def number(
    params: Mapping[str, Any],
    dotted: str,
    lo: float | None = None,
    hi: float | None = None,
    *,
    lo_open: bool = False,
    hi_open: bool = False,
) -> float:
    """A finite number in the interval from `lo` to `hi` (open at an end where `*_open`)."""
    allowed = " ".join(filter(None, ("a finite number", _interval(lo, hi, lo_open, hi_open))))
    value = _lookup(params, dotted)
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or not _inside(value, lo, hi, lo_open, hi_open)
    ):
        raise _refuse(dotted, allowed, value)
    return float(value)


def numbers(
    params: Mapping[str, Any], dotted: str, lo: float | None = None, hi: float | None = None, *, lo_open: bool = False
) -> tuple[float, ...]:
    """A non-empty list of distinct finite numbers, each in the interval from `lo` to `hi` (a grid)."""
    values = _lookup(params, dotted)
    allowed = " ".join(filter(None, ("a non-empty list of distinct finite numbers", _interval(lo, hi, lo_open, False))))
    if not isinstance(values, list) or not values or len(set(values)) != len(values):
        raise _refuse(dotted, allowed, values)
    for value in values:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        if not ok or not _inside(value, lo, hi, lo_open, False):
            raise _refuse(dotted, allowed, values)
    return tuple(float(v) for v in values)
