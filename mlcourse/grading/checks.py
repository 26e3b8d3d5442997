"""Verdicts the kernel cannot forge: assertions judged outside the kernel.

A student's answer cells run in the same kernel as the tests, so anything the
kernel concludes can be forged (turn later cells into ``pass``, patch
``np.array_equal``, ...). So no verdict is taken from the kernel. Instead:

1. **rewrite** (:func:`instrument`): every ``assert test, message`` of a test
   cell (visible and hidden) becomes a call of :func:`.probe.check` that
   evaluates the assertion's **leaves** in the kernel and sends their values
   out as plain data. The *structure* of the assertion -- comparisons
   (``==``, ``<=``, ...), ``and``/``or``/``not``, arithmetic, and the functions
   ``np.allclose``, ``np.array_equal``, ``torch.allclose``, ``torch.equal``,
   ``abs``, ``len``, ``sorted`` and a few more (:data:`CALLS`) -- stays
   with the grader; whatever else the assertion computes is a leaf;
2. **reference run**: the same rewritten cells run with the source solution
   in a trusted kernel; its leaf values are the references;
3. **judge** (:func:`judge`): the assertion is split into clauses (its
   ``and``/``or``/``not`` parts). In each clause the **first leaf is the
   subject** -- the student's value -- and every other leaf takes the
   reference run's value. The clause is evaluated in the grader, with the
   grader's numpy and torch. So ``assert np.array_equal(one_hot_encode(s),
   dna.one_hot(s)[0].numpy())`` compares the student's encoding with the
   reference computed in the trusted kernel, and ``assert auc >= 0.85``
   compares the student's AUC with 0.85.

A lab author therefore writes the student's value first (``assert
student_value == reference``) and keeps hidden tests deterministic: the same
inputs in the student's run as in the solution's (seed a separate generator
for inputs).

What a determined student can still do is in README's threat model: a check
whose subject is guessable (``isinstance(...)``, a count, an AUC above a
threshold) can be forged by a student who hooks the kernel; such checks are
marked ``guessable`` in the report.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path

from mlcourse.grading.probe import Opaque, decode

__all__ = ["Check", "instrument", "judge", "CALLS", "PART"]

CALLS = {
    "np.allclose", "np.array_equal", "np.isclose", "np.all", "np.any", "np.abs",
    "numpy.allclose", "numpy.array_equal", "numpy.isclose", "numpy.all", "numpy.any", "numpy.abs",
    "torch.allclose", "torch.equal", "torch.all", "torch.any", "torch.abs", "torch.isclose",
    "abs", "len", "sorted", "min", "max", "sum", "round", "set", "tuple", "all", "any", "float", "int",
}
METHODS = {"all", "any", "item", "tolist", "abs", "sum", "mean", "max", "min"}
PART = re.compile(r"^\s*#\s*PART\s+(?P<points>\d+(?:\.\d+)?)\s+points?\b:?\s*(?P<title>.*)$", re.IGNORECASE)
_BOOL = (ast.BoolOp, ast.UnaryOp)
_NO_LEAF = (ast.GeneratorExp, ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.Starred, ast.NamedExpr)


@dataclass
class Check:
    """One assertion of a test cell, as the grader judges it."""

    key: str  # grade_id:n
    line: int  # 1-based line in the source test cell
    hidden: bool
    hint: str
    part: int  # index into the question's parts
    skeleton: str  # boolean combination of clauses, written _C[j]
    clauses: list[str] = field(default_factory=list)  # each written with _L[i]
    subjects: list[int | None] = field(default_factory=list)  # the student's leaf per clause
    n_leaves: int = 0
    guessable: bool = False  # some subject is compared with a literal, or only its truth counts


def _dotted(node) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = _dotted(node.value)
        return f"{inner}.{node.attr}" if inner else None
    return None


_TYPES = {"bool", "int", "float", "str", "list", "tuple", "dict", "set"}  # the grader's own builtins


def _constant(node) -> bool:
    if isinstance(node, ast.Constant) or (isinstance(node, ast.Name) and node.id in _TYPES):
        return True
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        return all(_constant(e) for e in node.elts)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        return _constant(node.operand)
    return False


class _Leaves(ast.NodeTransformer):
    """Replace the leaves of an expression by ``_L[i]``, collecting them (numbered from ``start``)."""

    def __init__(self, start: int):
        self.leaves: list[ast.expr] = []
        self.start = start

    def leaf(self, node):
        self.leaves.append(node)
        return ast.Subscript(ast.Name("_L", ast.Load()), ast.Constant(self.start + len(self.leaves) - 1), ast.Load())

    def visit(self, node):
        if not isinstance(node, ast.expr) or _constant(node):
            return node
        if isinstance(node, ast.Compare | ast.BinOp) or (
                isinstance(node, ast.UnaryOp) and not isinstance(node.op, ast.Not)):
            return self.generic_visit(node)
        if isinstance(node, ast.Call) and not any(isinstance(a, _NO_LEAF) for a in node.args) \
                and all(_constant(k.value) and k.arg for k in node.keywords):
            name = _dotted(node.func)
            if name in CALLS:
                node.args = [self.visit(a) for a in node.args]
                return node
            if isinstance(node.func, ast.Attribute) and node.func.attr in METHODS \
                    and all(_constant(a) for a in node.args):
                node.func.value = self.visit(node.func.value)
                return node
        return self.leaf(node)


def _clauses(test, out: list):
    """Split on and/or/not; the pieces become ``_C[j]`` in the returned skeleton."""
    if isinstance(test, ast.BoolOp):
        test.values = [_clauses(v, out) for v in test.values]
        return test
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        test.operand = _clauses(test.operand, out)
        return test
    out.append(test)
    return ast.Subscript(ast.Name("_C", ast.Load()), ast.Constant(len(out) - 1), ast.Load())


def _hint(msg) -> str:
    """The assertion message as written, f-string fields shown as '...' (they may name hidden values)."""
    if msg is None:
        return ""
    if isinstance(msg, ast.Constant) and isinstance(msg.value, str):
        return msg.value
    if isinstance(msg, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "..." for v in msg.values)
    return ""


def _hidden_lines(source: str) -> set[int]:
    from mlcourse.grading import markers

    return {i + 1 for r in markers.regions(source) if r.kind == "HIDDEN TESTS" for i in range(r.begin, r.end + 1)}


def parts_of(source: str, points: float, where: str) -> tuple[list[tuple[str, float]], list[int]]:
    """The question's parts: [(title, points)] and the first line of each; part 0 takes what is left."""
    parts, starts = [("", 0.0)], [1]
    for i, line in enumerate(source.splitlines()):
        m = PART.match(line)
        if m:
            parts.append((m["title"].strip(), float(m["points"])))
            starts.append(i + 1)
    rest = points - sum(p for _, p in parts[1:])
    if rest < -1e-9:
        raise ValueError(f"{where}: its PART lines give {points - rest:g} points, more than the cell's {points:g}")
    parts[0] = ("", rest)
    return parts, starts


def instrument(source: str, grade_id: str, points: float) -> tuple[str, list[Check], list[tuple[str, float]]]:
    """The test cell rewritten for grading, its checks, and its parts [(title, points)].

    Raises
    ------
    ValueError
        If the cell is not valid Python, or its PART lines give more points than the cell.
    """
    where = f"test cell {grade_id!r}"
    try:
        tree = ast.parse(source)
    except SyntaxError as err:
        raise ValueError(f"{where} is not valid Python (line {err.lineno}): {err.msg}") from None
    hidden = _hidden_lines(source)
    parts, starts = parts_of(source, points, where)
    checks: list[Check] = []

    class Rewrite(ast.NodeTransformer):
        def visit_Assert(self, node):
            key = f"{grade_id}:{len(checks)}"
            pieces: list = []
            skeleton = _clauses(_copy(node.test), pieces)
            clauses, subjects, lambdas, guessable = [], [], [], False
            for piece in pieces:
                finder = _Leaves(len(lambdas))
                piece = finder.visit(piece)
                clauses.append(ast.unparse(piece))
                subject = len(lambdas) if finder.leaves else None
                subjects.append(subject)
                refs = finder.leaves[1:]
                guessable |= subject is None or not refs
                lambdas += [ast.Lambda(ast.arguments([], [], None, [], [], None, []), leaf) for leaf in finder.leaves]
            structure = ast.unparse(skeleton)
            for j, clause in enumerate(clauses):
                structure = structure.replace(f"_C[{j}]", f"({clause})", 1)
            part = max(i for i, start in enumerate(starts) if start <= node.lineno)
            checks.append(Check(key, node.lineno, node.lineno in hidden, _hint(node.msg), part,
                                ast.unparse(skeleton), clauses, subjects, len(lambdas), guessable))
            call = ast.Call(ast.Name("__mlcourse_check__", ast.Load()),
                            [ast.Constant(key), ast.Constant(structure), ast.List(lambdas, ast.Load()),
                             ast.Call(ast.Name("globals", ast.Load()), [], [])], [])
            return ast.copy_location(ast.Expr(call), node)

    tree = ast.fix_missing_locations(Rewrite().visit(tree))
    if not checks:
        raise ValueError(f"{where} has no assert statements: nothing to grade")
    # probe.py is run from its file: importing it through the package would import all of mlcourse
    header = f"__mlcourse_check__ = __import__('runpy').run_path({str(Path(__file__).with_name('probe.py'))!r})['check']\n"
    return header + ast.unparse(tree), checks, parts


def _copy(node):
    return ast.parse(ast.unparse(node), mode="eval").body


# --- judging ------------------------------------------------------------------------------------

def _namespace() -> dict:
    import numpy
    import torch

    return {"np": numpy, "numpy": numpy, "torch": torch, "__builtins__": __builtins__}


def _truth(value) -> bool:
    if isinstance(value, Opaque):
        return True
    try:
        return bool(value)
    except Exception:  # an array of several values, say
        return False


def describe(value) -> str:
    """A short, safe description of a value for feedback (type, shape, a few numbers)."""
    import numpy as np

    if hasattr(value, "shape") and hasattr(value, "dtype"):
        arr = np.asarray(value)
        head = np.array2string(arr.ravel()[:6], precision=4, separator=", ")
        return f"{type(value).__name__} of shape {tuple(arr.shape)}, {arr.dtype}, starting {head}"
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def judge(check: Check, student: list[dict], reference: list[dict]) -> dict:
    """The verdict on one evaluation of ``check``.

    ``student`` and ``reference`` are the leaf records of the two runs
    (``{"value": encoded}`` or ``{"error": text}``). Returns ``passed``,
    ``kernel_said`` (the student's kernel's own verdict is added by the
    caller) and ``why`` (for a failure: what differed, without source code).
    """
    if len(student) != check.n_leaves or len(reference) != check.n_leaves:
        return {"passed": False, "why": "the check sent a malformed result"}
    try:
        ref_values = [decode(r["value"]) if "value" in r else None for r in reference]
    except (ValueError, KeyError, TypeError) as err:
        return {"passed": False, "why": f"the reference run sent a malformed value ({err})"}
    ns = _namespace()
    verdicts, why = [], ""
    for clause, subject in zip(check.clauses, check.subjects):
        leaves = list(ref_values)
        if subject is not None:
            record = student[subject]
            if "error" in record:
                verdicts.append(False)
                why = why or f"raised {record['error']}"
                continue
            try:
                leaves[subject] = decode(record.get("value"))
            except (ValueError, KeyError, TypeError) as err:
                verdicts.append(False)
                why = why or f"sent a value the grader cannot read ({err})"
                continue
        try:
            ok = _truth(eval(clause, {**ns, "_L": leaves}))  # noqa: S307 (instructor's source)
        except Exception as err:
            ok = False
            why = why or f"the comparison failed: {type(err).__name__}: {str(err)[:150]}"
        if not ok and not why and subject is not None:
            why = f"got {describe(leaves[subject])}"
        verdicts.append(ok)
    passed = _truth(eval(check.skeleton, {"_C": verdicts}))  # noqa: S307 (and/or/not of booleans)
    return {"passed": passed, "why": "" if passed else (why or "the condition does not hold")}
