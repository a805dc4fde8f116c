"""Reading torch files without running code: tensors and plain containers only, one-line errors.

Every file gs-mobile reads with torch (teachers, students, training checkpoints, the teacher-label
cache) goes through `load_plain`, which uses torch's weights-only unpickler: a file that would
import or call anything (a pickled object with `__reduce__`, a whole pickled module) is refused
before any of it runs. Everything gs-compress writes is tensors, numbers, strings, lists, tuples
and dicts, so its own files always pass.
"""
from __future__ import annotations

import pickle
import re
import warnings
from pathlib import Path
from typing import Mapping

import torch

from .errors import CheckpointError

_GLOBAL = re.compile(r"GLOBAL ([\w.]+)")
FieldTypes = Mapping[str, type | tuple[type, ...]]


def load_plain(path: Path, what: str, remedy: str, error: type[Exception] = CheckpointError) -> object:
    """torch.load `path` with weights_only=True; any failure -> one-line `error` naming `what` and `remedy`."""
    try:
        with warnings.catch_warnings():  # e.g. "Detected pickle protocol 4": the error below says it all
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = _GLOBAL.search(str(exc))
        why = (f"loading it would import and run {found.group(1)}" if found
               else "it is corrupt or holds pickled Python objects")
        raise error(f"{what} {path} is not a plain weights file (tensors and plain containers only): {why}; "
                    f"refusing to execute code from it. {remedy}") from None
    except FileNotFoundError:
        raise error(f"{what} not found: {path}. {remedy}") from None
    except IsADirectoryError:
        raise error(f"{what} {path} is a folder, not a file. {remedy}") from None
    except PermissionError:
        raise error(f"{what} {path} is not readable (permission denied). {remedy}") from None
    except Exception:  # noqa: BLE001 - torch reports truncated / foreign files with many types
        raise error(f"cannot read {what} {path}: the file is truncated or not a torch file. {remedy}") from None


def check_fields(payload: dict, fields: FieldTypes, path: Path, what: str, remedy: str,
                 error: type[Exception] = CheckpointError) -> None:
    """Every name in `fields` is in `payload` with one of the given types, else one-line `error`."""
    missing = [k for k in fields if k not in payload]
    wrong = [f"'{k}' is a {type(payload[k]).__name__}" for k, t in fields.items()
             if k in payload and not isinstance(payload[k], t)]
    if missing or wrong:
        problems = ([f"no {', '.join(repr(k) for k in missing)}"] if missing else []) + wrong
        raise error(f"{what} {path} is incomplete or damaged ({'; '.join(problems)}). {remedy}")


def check_tensors(state: object, name: str, path: Path, what: str, remedy: str,
                  error: type[Exception] = CheckpointError) -> None:
    """`state` is a dict of tensors (a state dict), else one-line `error`."""
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise error(f"{what} {path} is damaged ('{name}' is not a dict of tensors). {remedy}")
