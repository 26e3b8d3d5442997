"""Lab tooling: student versions of the labs and grading with no server.

* :mod:`.markers` -- nbgrader's cell roles and ``### BEGIN ...`` regions;
* :mod:`.assign` -- ``mlcourse assign``: source lab -> student version;
* :mod:`.runner` -- run cells in a fresh kernel, surviving errors, hangs, crashes;
* :mod:`.grade` -- ``mlcourse grade``: restore, run, score, report.

The labs follow nbgrader's conventions, so an instructor can also run them
through ``nbgrader generate_assignment`` / ``autograde`` on JupyterHub.
"""

from mlcourse.grading.assign import assign, release_notebook
from mlcourse.grading.grade import grade_many, grade_submission

__all__ = ["assign", "release_notebook", "grade_submission", "grade_many"]
