"""Reading `params.yaml` and running a stage with clear errors instead of tracebacks."""
from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from ewmtcnn import InputError
from ewmtcnn.layout import PARAMS


def load(path: Path = PARAMS) -> dict[str, Any]:
    """The whole params file as nested dicts."""
    try:
        params = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path} not found: run stages from the repository root") from None
    except yaml.YAMLError as e:
        raise InputError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(params, dict):
        raise InputError(f"{path}: expected a mapping of sections, found {type(params).__name__}")
    return params


def get(params: Mapping[str, Any], dotted: str, kind: type | tuple[type, ...]) -> Any:
    """The value at `section.key`, checked to be of `kind`; missing or mistyped is an error."""
    value: Any = params
    for key in dotted.split("."):
        if not isinstance(value, Mapping) or key not in value:
            raise InputError(f"{PARAMS}: missing parameter {dotted}")
        value = value[key]
    # bool is an int in Python; a flag given where a number is expected is a mistake.
    if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        raise InputError(f"{PARAMS}: {dotted} must be {_names(kind)}, found {value!r}")
    if not isinstance(value, kind):
        raise InputError(f"{PARAMS}: {dotted} must be {_names(kind)}, found {value!r}")
    return value


def choice(params: Mapping[str, Any], dotted: str, allowed: tuple[str, ...]) -> str:
    """A string parameter that must be one of `allowed`."""
    value = get(params, dotted, str)
    if value not in allowed:
        raise InputError(f"{PARAMS}: {dotted} must be one of {', '.join(allowed)}; found {value!r}")
    return value


def _names(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join({"str": "a string", "int": "an integer", "bool": "true or false",
                        "float": "a number"}.get(k.__name__, k.__name__) for k in kinds)


def run_stage(main: Callable[[dict[str, Any]], None]) -> None:
    """Run a stage on `params.yaml`, as `run_cli` does."""
    run_cli(lambda: main(load()))


def run_cli(main: Callable[[], None]) -> None:
    """Run a command: bad input exits 1 with one message and no traceback, Ctrl-C exits 130."""
    try:
        main()
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
