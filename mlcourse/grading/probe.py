"""The kernel side of a check: plain values out of the kernel, and back in the grader.

The grader rewrites each ``assert`` of a test cell into a call of
:func:`check` (see :mod:`.checks`). In the kernel, :func:`check` evaluates the
assertion's *leaves* (the sub-expressions that call the student's code or
compute references) and sends their values to the grader as display data of
type ``application/vnd.mlcourse.check+json``. Only plain values travel, as
JSON: ``None``, booleans, numbers, strings, lists, tuples, sets, dicts, numpy
arrays and torch tensors (raw bytes of a numeric dtype, base64), dtypes.
Anything else becomes an opaque ``{"__opaque__": type name}``. Nothing is
pickled, so decoding a value in the grader (:func:`decode`) cannot run code.
"""

from __future__ import annotations

import base64
import math
import sys

__all__ = ["check", "encode", "decode", "Opaque", "RECORD_MIME"]

RECORD_MIME = "application/vnd.mlcourse.check+json"
MAX_VALUE_BYTES = 8 * 2**20
_KINDS = "biuf"  # numeric dtypes only: bool, int, unsigned, float


class Opaque:
    """A value that could not leave the kernel: truthy, equal to nothing (its type name is kept)."""

    def __init__(self, name: str):
        self.name = str(name)[:100]

    def __eq__(self, other):
        return False

    __hash__ = object.__hash__

    def __repr__(self):
        return f"<{self.name} (not a plain value)>"


def _array(a) -> dict:
    import numpy as np

    a = np.ascontiguousarray(a)
    if a.dtype.kind not in _KINDS or a.nbytes > MAX_VALUE_BYTES:
        return {"__opaque__": f"array of {a.dtype}, {a.nbytes} bytes"}
    return {"dtype": a.dtype.str, "shape": list(a.shape), "b64": base64.b64encode(a.tobytes()).decode()}


def encode(value, depth: int = 0):
    """A JSON-ready form of ``value`` (plain data only)."""
    if depth > 20:
        return {"__opaque__": "nested too deep"}
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return value if abs(value) < 2**63 else float(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else {"__float__": repr(value)}
    if isinstance(value, tuple):  # torch.Size and namedtuples too
        return {"__tuple__": [encode(v, depth + 1) for v in value]}
    if isinstance(value, list):
        return [encode(v, depth + 1) for v in value]
    if isinstance(value, set | frozenset):
        return {"__set__": [encode(v, depth + 1) for v in value]}
    if isinstance(value, dict):
        return {"__dict__": [[encode(k, depth + 1), encode(v, depth + 1)] for k, v in value.items()]}
    np = sys.modules.get("numpy")
    torch = sys.modules.get("torch")
    if torch is not None:
        if isinstance(value, torch.Tensor):
            return {"__tensor__": _array(value.detach().cpu().numpy())}
        if isinstance(value, torch.dtype):
            return {"__torch_dtype__": str(value).removeprefix("torch.")}
    if np is not None:
        if isinstance(value, np.ndarray):
            return {"__ndarray__": _array(value)}
        if isinstance(value, np.generic):
            return encode(value.item(), depth + 1)
        if isinstance(value, np.dtype) or (isinstance(value, type) and issubclass(value, np.generic)):
            return {"__dtype__": np.dtype(value).str}
    return {"__opaque__": type(value).__name__}


def _load_array(spec: dict):
    import numpy as np

    dtype = np.dtype(str(spec["dtype"]))
    if dtype.kind not in _KINDS:
        raise ValueError(f"dtype {dtype} is not allowed")
    shape = tuple(int(n) for n in spec["shape"])
    raw = base64.b64decode(spec["b64"], validate=True)
    if len(raw) != dtype.itemsize * math.prod(shape):
        raise ValueError("array data does not match its shape")
    return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()


def decode(data):
    """The value :func:`encode` encoded (arrays as numpy, tensors as torch); ValueError if malformed."""
    if data is None or isinstance(data, bool | int | float | str):
        return data
    if isinstance(data, list):
        return [decode(v) for v in data]
    if not isinstance(data, dict) or len(data) != 1:
        raise ValueError(f"not an encoded value: {str(data)[:80]}")
    (tag, body), = data.items()
    if tag == "__tuple__":
        return tuple(decode(v) for v in body)
    if tag == "__set__":
        return {decode(v) for v in body}
    if tag == "__dict__":
        return {decode(k): decode(v) for k, v in body}
    if tag == "__float__":
        return float(str(body))
    if tag == "__opaque__":
        return Opaque(body)
    if tag in ("__ndarray__", "__tensor__"):
        if isinstance(body, dict) and "__opaque__" in body:
            return Opaque(body["__opaque__"])
        array = _load_array(body)
        if tag == "__tensor__":
            import torch

            return torch.from_numpy(array)
        return array
    if tag == "__dtype__":
        import numpy as np

        return np.dtype(str(body))
    if tag == "__torch_dtype__":
        import torch

        value = getattr(torch, str(body), None)
        if not isinstance(value, torch.dtype):
            raise ValueError(f"unknown torch dtype {body!r}")
        return value
    raise ValueError(f"unknown tag {tag!r}")


def check(key: str, structure: str, leaves, namespace: dict) -> None:
    """Evaluate an assertion's leaves and send them to the grader (never raises, except on interrupts).

    Parameters
    ----------
    key : str
        ``grade_id:n``, the n-th assertion of the test cell.
    structure : str
        The assertion with its leaves written ``_L[i]``; evaluated here too,
        with the kernel's own functions, as the kernel's verdict (the grader
        flags a kernel that passes what the grader fails).
    leaves : list of callables
        One per leaf, in order.
    namespace : dict
        The cell's globals (for the kernel's verdict).
    """
    values, raw = [], []
    for leaf in leaves:
        try:
            value = leaf()
        except Exception as err:  # a failing leaf fails its check, not the cell
            raw.append(None)
            values.append({"error": f"{type(err).__name__}: {err}"[:300]})
            continue
        raw.append(value)
        values.append({"value": encode(value)})
    try:
        verdict = bool(eval(structure, {**namespace, "_L": raw}))  # noqa: S307 (the grader's own text)
    except Exception:
        verdict = False
    from IPython.display import display

    display({RECORD_MIME: {"key": key, "leaves": values, "kernel_verdict": verdict}}, raw=True)
