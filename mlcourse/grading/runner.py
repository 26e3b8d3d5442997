"""Run a notebook cell by cell in a fresh kernel, surviving errors, hangs and crashes.

The policy (so that a student's mistake costs only the questions it touches):

* **error**: the exception is recorded and the next cell runs; the kernel
  keeps whatever state it had.
* **timeout**: a cell that runs past ``timeout`` seconds is interrupted
  (``KeyboardInterrupt``, as the stop button in Jupyter). If the kernel then
  answers within ``grace`` seconds, grading goes on in that kernel.
* **hang or crash**: if the kernel ignores the interrupt (a loop that catches
  ``KeyboardInterrupt``, a stuck C extension) or dies (a segfault,
  ``os._exit``), it is replaced by a fresh kernel and every cell that had
  *succeeded* so far is re-run in order, to rebuild the state later cells
  depend on; failed and timed-out cells are not re-run.

Execution goes through nbclient, as ``jupyter nbconvert --execute`` and
nbgrader's autograder do. This is not a sandbox: grade untrusted code in a
container or a throwaway account.
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass
from time import monotonic

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import DeadKernelError

__all__ = ["CellRun", "Kernel", "TIMEOUT_ENAME"]

TIMEOUT_ENAME = "CellTimeout"


@dataclass
class CellRun:
    """What happened to one cell: status ``ok``, ``error``, ``timeout`` or ``crashed``."""

    index: int
    status: str
    ename: str = ""
    evalue: str = ""
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)


class Kernel:
    """A fresh Python kernel that runs the cells of ``nb`` one at a time under the policy above.

    Parameters
    ----------
    nb : nbformat.NotebookNode
        The notebook whose cells are run (outputs are written into it).
    timeout : float
        Seconds allowed per cell.
    cwd : str
        The kernel's working directory.
    env : dict, optional
        The kernel's environment (default: this process's).
    grace : float
        Seconds an interrupted kernel has to become responsive again.

    Examples
    --------
    >>> with Kernel(nb, timeout=30, cwd=tmp) as kernel:          # doctest: +SKIP
    ...     runs = [kernel.run(i) for i in range(len(nb.cells))]
    """

    def __init__(self, nb, timeout: float, cwd: str, env: dict | None = None, grace: float = 10.0):
        if not timeout or timeout <= 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        self.nb, self.timeout, self.cwd, self.env, self.grace = nb, timeout, cwd, env, grace
        self.restarts = 0
        self._succeeded: list[int] = []
        self._stack: contextlib.ExitStack | None = None
        self._reply: dict | None = None

    def __enter__(self) -> Kernel:
        self._start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop()

    def _start(self) -> None:
        client = NotebookClient(
            self.nb, timeout=self.timeout, kernel_name="python3", allow_errors=True,
            interrupt_on_timeout=True, iopub_timeout=self.grace, shutdown_kernel="immediate",
            extra_arguments=["--IPKernelApp.log_level=ERROR"], record_timing=False,
            error_on_timeout={"ename": TIMEOUT_ENAME, "traceback": [],
                              "evalue": f"the cell ran past {self.timeout:g} s and was interrupted"},
        )
        client.on_cell_executed = self._record
        self._stack = contextlib.ExitStack()
        extra = {} if self.env is None else {"env": self.env}
        self._stack.enter_context(client.setup_kernel(cwd=self.cwd, **extra))
        self.client = client

    def _stop(self) -> None:
        if self._stack is not None:
            with contextlib.suppress(Exception):  # the kernel may already be gone
                self._stack.close()
            self._stack = None

    def _record(self, cell, cell_index, execute_reply) -> None:
        self._reply = execute_reply

    def _execute(self, cell, index: int, timeout: float) -> CellRun:
        self._reply = None
        self.client.timeout = timeout
        start = monotonic()
        try:
            self.client.execute_cell(cell, index)
        except DeadKernelError:
            return CellRun(index, "crashed", "DeadKernelError", "the kernel died running this cell",
                           monotonic() - start)
        content = (self._reply or {}).get("content", {"status": "ok"})
        seconds = monotonic() - start
        if content.get("status") == "ok":
            return CellRun(index, "ok", seconds=seconds)
        status = "timeout" if content.get("ename") == TIMEOUT_ENAME else "error"
        return CellRun(index, status, content.get("ename", ""), content.get("evalue", ""), seconds)

    def run(self, index: int) -> CellRun:
        """Run cell ``index`` and say what happened; recover the kernel if it hung or died."""
        result = self._execute(self.nb.cells[index], index, self.timeout)
        if result.status == "ok":
            self._succeeded.append(index)
        elif result.status == "crashed" or (result.status == "timeout" and not self._responsive()):
            self._restart()
        return result

    def _responsive(self) -> bool:
        """Whether the kernel runs a no-op within ``grace`` seconds (nbclient needs the probe in nb)."""
        self.nb.cells.append(nbformat.v4.new_code_cell("pass"))
        try:
            return self._execute(self.nb.cells[-1], len(self.nb.cells) - 1, self.grace).status == "ok"
        finally:
            self.nb.cells.pop()

    def _restart(self) -> None:
        """A fresh kernel, with every cell that had succeeded re-run in order."""
        self._stop()
        self._start()
        self.restarts += 1
        replayed = []
        for i in self._succeeded:
            if self._execute(self.nb.cells[i], i, self.timeout).status == "ok":
                replayed.append(i)
        self._succeeded = replayed
