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
nbgrader's autograder do. With a :class:`~.sandbox.Sandbox` the kernel runs
inside bubblewrap (see :mod:`.sandbox`). Output is capped per kernel
(``max_output``): what comes past the cap is dropped and the cell is marked
``output_dropped``. Check results (:mod:`.checks`) travel as display data of
their own type; they are taken out of the cell's outputs into ``records``.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from time import monotonic

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import DeadKernelError

from mlcourse.grading.sandbox import Sandbox, kernel_manager, kill_sandbox

__all__ = ["CellRun", "Kernel", "TIMEOUT_ENAME", "RECORD_MIME"]

TIMEOUT_ENAME = "CellTimeout"
RECORD_MIME = "application/vnd.mlcourse.check+json"
MAX_RECORD_BYTES = 64 * 2**20  # check results kept per cell, besides the output cap


class _CappedClient(NotebookClient):
    """nbclient's client, keeping at most ``max_output`` bytes of output and setting check records aside."""

    def __init__(self, *args, max_output: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.max_output, self.output_bytes = max_output, 0
        self.dropped: set[int] = set()
        self.records: dict[int, list] = {}
        self._record_bytes: dict[int, int] = {}

    def output(self, outs, msg, display_id, cell_index):
        content = msg.get("content", {})
        data = content.get("data") or {}
        if msg["msg_type"] == "display_data" and RECORD_MIME in data:
            payload = data[RECORD_MIME]
            size = len(json.dumps(payload)) if not isinstance(payload, str) else len(payload)
            used = self._record_bytes.get(cell_index, 0) + size
            self._record_bytes[cell_index] = used
            if used <= MAX_RECORD_BYTES:
                self.records.setdefault(cell_index, []).append(payload)
            else:
                self.dropped.add(cell_index)
            return None
        size = len(json.dumps(content, default=str))
        if self.output_bytes + size > self.max_output:
            self.dropped.add(cell_index)
            return None
        self.output_bytes += size
        return super().output(outs, msg, display_id, cell_index)


@dataclass
class CellRun:
    """What happened to one cell: status ``ok``, ``error``, ``timeout`` or ``crashed``."""

    index: int
    status: str
    ename: str = ""
    evalue: str = ""
    seconds: float = 0.0
    output_dropped: bool = False
    records: list = field(default_factory=list, repr=False)

    def as_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k != "records"}


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
        The kernel's environment (default: this process's; in a sandbox, exactly ``env``).
    grace : float
        Seconds an interrupted kernel has to become responsive again.
    sandbox : Limits, optional
        Run the kernel in bubblewrap with these limits (``cwd`` becomes its scratch folder).
    max_output : int
        Bytes of output kept for the whole run (default 2 MB).

    Examples
    --------
    >>> with Kernel(nb, timeout=30, cwd=tmp) as kernel:          # doctest: +SKIP
    ...     runs = [kernel.run(i) for i in range(len(nb.cells))]
    """

    def __init__(self, nb, timeout: float, cwd: str, env: dict | None = None, grace: float = 10.0,
                 sandbox=None, max_output: int = 2 * 2**20):
        if not timeout or timeout <= 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        self.nb, self.timeout, self.cwd, self.env, self.grace = nb, timeout, cwd, env, grace
        self.limits, self.max_output = sandbox, max_output
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
        extra = {}
        if self.limits is not None:
            sockets = Path(tempfile.mkdtemp(prefix="mlcourse-kernel-"))
            sockets.chmod(0o777)  # the sandboxed kernel runs as another user
            Path(self.cwd).chmod(0o777)
            extra["km"] = kernel_manager(Sandbox(Path(self.cwd), sockets, self.limits, self.env or {}))
            self._sockets = sockets
        client = _CappedClient(
            self.nb, timeout=self.timeout, kernel_name="python3", allow_errors=True,
            max_output=self.max_output, **extra,
            interrupt_on_timeout=True, iopub_timeout=self.grace, shutdown_kernel="immediate",
            extra_arguments=["--IPKernelApp.log_level=ERROR"], record_timing=False,
            error_on_timeout={"ename": TIMEOUT_ENAME, "traceback": [],
                              "evalue": f"the cell ran past {self.timeout:g} s and was interrupted"},
        )
        client.on_cell_executed = self._record
        self._stack = contextlib.ExitStack()
        if self.limits is not None:
            self._stack.callback(shutil.rmtree, self._sockets, True)
        launch = {} if self.env is None or self.limits is not None else {"env": self.env}
        self._stack.enter_context(client.setup_kernel(cwd=self.cwd, **launch))
        self.client = client

    def _stop(self) -> None:
        if self._stack is not None:
            with contextlib.suppress(Exception):  # the kernel may already be gone
                self._stack.close()
            self._stack = None
        if self.limits is not None:  # nbclient leaves a kernel manager it was given running
            kill_sandbox(self.client.km)

    def _record(self, cell, cell_index, execute_reply) -> None:
        self._reply = execute_reply

    def _execute(self, cell, index: int, timeout: float) -> CellRun:
        self._reply = None
        self.client.timeout = timeout
        self.client.records.pop(index, None)
        self.client.dropped.discard(index)
        start = monotonic()
        try:
            self.client.execute_cell(cell, index)
        except DeadKernelError:
            return CellRun(index, "crashed", "DeadKernelError", "the kernel died running this cell",
                           monotonic() - start, index in self.client.dropped)
        content = (self._reply or {}).get("content", {"status": "ok"})
        extra = {"seconds": monotonic() - start, "output_dropped": index in self.client.dropped,
                 "records": self.client.records.get(index, [])}
        if content.get("status") == "ok":
            return CellRun(index, "ok", **extra)
        status = "timeout" if content.get("ename") == TIMEOUT_ENAME else "error"
        return CellRun(index, status, str(content.get("ename", ""))[:200], str(content.get("evalue", ""))[:2000],
                       **extra)

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
