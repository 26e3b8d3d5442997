"""Lab tooling: student versions of the labs and grading with no server.

* :mod:`.markers` -- nbgrader's cell roles and ``### BEGIN ...`` regions;
* :mod:`.assign` -- ``mlcourse assign``: source lab -> student version;
* :mod:`.sandbox` -- bubblewrap around the grading kernel;
* :mod:`.runner` -- run cells in a fresh kernel, surviving errors, hangs, crashes;
* :mod:`.probe`, :mod:`.checks` -- assertions judged outside the kernel;
* :mod:`.grade` -- one submission: answer key, restore, run, judge, score;
* :mod:`.batch`, :mod:`.feedback` -- a class: merged tables, LMS export, feedback pages.

The labs follow nbgrader's conventions, so an instructor can also run them
through ``nbgrader generate_assignment`` / ``autograde`` on JupyterHub.
"""

from mlcourse.grading.assign import assign, release_notebook
from mlcourse.grading.batch import grade_many
from mlcourse.grading.grade import grade_submission

__all__ = ["assign", "release_notebook", "grade_submission", "grade_many"]
