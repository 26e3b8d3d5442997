"""Feedback a student can read: an HTML page and a notebook per graded submission.

Per question: the points, the status, and every check -- visible or hidden,
passed or failed, the hint its author wrote (the assertion's message) and,
for a failure, what went wrong (the error raised, or a short description of
the value the student's code produced). The hidden tests' source is never
shown: only their hints. The notebook is the student's own hand-in with a
feedback cell after each question's test cell (no outputs: the graded run's
output may contain hidden values).
"""

from __future__ import annotations

import html

import nbformat

from mlcourse.grading import markers

__all__ = ["feedback_html", "feedback_notebook", "question_text"]

_STYLE = """body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
table{border-collapse:collapse;width:100%;margin:.5rem 0 1.5rem}td,th{border:1px solid #ccc;padding:.3rem .5rem;
text-align:left;vertical-align:top}th{background:#f3f3f3}.passed{color:#1a7f37}.failed{color:#b42318}
.flag{background:#fff4e5;border-left:4px solid #f79009;padding:.4rem .8rem;margin:.3rem 0}"""


def _check_label(check: dict) -> str:
    return f"{'hidden' if check['hidden'] else 'visible'} check {check['key'].split(':')[1]}"


def feedback_html(report: dict) -> str:
    """The student's feedback page for one report (a complete HTML document)."""
    e = html.escape
    who = e(str(report.get("student", "")))
    lab = e(report["lab"])
    out = [f"<!doctype html><html><head><meta charset='utf-8'><title>{lab}: {who}</title>"
           f"<style>{_STYLE}</style></head><body>",
           f"<h1>{lab}</h1><p>Student <b>{who}</b>: <b>{report['score']:g} / {report['max_score']:g}</b> points "
           f"(graded {e(report['graded_at'])}{'' if report.get('sandboxed') else ', without a sandbox'}).</p>"]
    if report["flags"]:
        out.append("<h2>Notes from the grader</h2>")
        out += [f"<div class='flag'><b>{e(f['kind'])}</b>: {e(f['detail'])}</div>" for f in report["flags"]]
    out.append("<h2>Questions</h2><table><tr><th>question</th><th>points</th><th>status</th><th>message</th></tr>")
    for q in report["questions"]:
        cls = "passed" if q["status"] == "passed" else "failed"
        out.append(f"<tr><td>{e(q['grade_id'])}</td><td>{q['score']:g} / {q['points']:g}</td>"
                   f"<td class='{cls}'>{e(q['status'])}</td><td>{e(q['message'])}</td></tr>")
    out.append("</table>")
    for q in report["questions"]:
        out.append(f"<h3>{e(q['grade_id'])}: {q['score']:g} / {q['points']:g}</h3>")
        if len(q["parts"]) > 1:
            out.append("<p>Parts: " + "; ".join(f"{e(p['title'])} {p['score']:g}/{p['points']:g}"
                                                 for p in q["parts"]) + "</p>")
        out.append("<table><tr><th>check</th><th>result</th><th>what it checks</th><th>what went wrong</th></tr>")
        for c in q["checks"]:
            cls, word = ("passed", "passed") if c["passed"] else ("failed", "failed")
            out.append(f"<tr><td>{_check_label(c)}</td><td class='{cls}'>{word}</td>"
                       f"<td>{e(c['hint'] or '(no hint written)')}</td><td>{e(c['why'])}</td></tr>")
        out.append("</table>")
    out.append("</body></html>\n")
    return "\n".join(out)


def question_text(q: dict) -> str:
    """A markdown summary of one question's result."""
    lines = [f"**Feedback: {q['grade_id']} -- {q['score']:g} / {q['points']:g} points, {q['status']}**", ""]
    if q["message"]:
        lines += [q["message"], ""]
    for c in q["checks"]:
        mark = "passed" if c["passed"] else "FAILED"
        why = f" -- {c['why']}" if c["why"] else ""
        lines.append(f"- {_check_label(c)} {mark}: {c['hint'] or '(no hint written)'}{why}")
    return "\n".join(lines)


def feedback_notebook(report: dict) -> str:
    """The student's notebook with a feedback cell after each graded test cell, as notebook text."""
    nb = markers.read(report["submission"])
    by_id = {q["grade_id"]: q for q in report["questions"]}
    cells = [nbformat.v4.new_markdown_cell(
        f"# Feedback on {report['lab']}: {report['score']:g} / {report['max_score']:g} points\n\n"
        + "\n".join(f"- **{f['kind']}**: {f['detail']}" for f in report["flags"]))]
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        cells.append(cell)
        q = by_id.pop(markers.grade_id(cell), None)
        if q is not None:
            cells.append(nbformat.v4.new_markdown_cell(question_text(q)))
    cells += [nbformat.v4.new_markdown_cell(question_text(q)) for q in by_id.values()]  # test cells deleted
    nb.cells = cells
    return nbformat.writes(nb) + "\n"
