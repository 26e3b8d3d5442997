"""A bubblewrap sandbox around the grading kernel.

``mlcourse grade`` runs a student's code; that code runs with whatever rights
its kernel has. Here the kernel is started inside `bubblewrap
<https://github.com/containers/bubblewrap>`_ (``bwrap``, Debian package
``bubblewrap``), an unprivileged container built from Linux namespaces:

* **files**: the system folders, the Python installation and the ``mlcourse``
  package are mounted read-only; the only writable folder is an empty scratch
  folder (the kernel's working directory and ``HOME``). The source labs, the
  other submissions and the grader's reports are simply not there: the course
  folder above the package is not mounted;
* **network**: a new, empty network namespace (no interfaces but loopback);
  the kernel talks to the grader through Unix sockets in a private folder
  (ZeroMQ's ``ipc`` transport) instead of TCP;
* **processes**: a new PID namespace whose first process is the kernel's
  parent; when the kernel ends (or the grader dies, ``--die-with-parent``),
  every process it started is killed with it. ``--new-session`` detaches it
  from the grader's terminal;
* **environment**: cleared, then only ``PATH``, ``HOME``, thread counts and
  ``MLCOURSE_FAST`` are set: no ``PWD``, no command line of the grader;
* **limits** (``prlimit``): address space (memory), CPU seconds and open
  files, inherited by every process in the sandbox. Output size is limited by
  the runner (:mod:`.runner`), which drops output past a cap.

Without ``bwrap`` on the ``PATH`` the grader refuses to grade unless told
``--no-sandbox`` (see :func:`require`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from jupyter_client import AsyncKernelManager

__all__ = ["Limits", "DEFAULT_LIMITS", "Sandbox", "available", "require", "SandboxedKernelManager"]

SCRATCH = "/home/student"


@dataclass(frozen=True)
class Limits:
    """Resource limits for one kernel (and every process it starts).

    memory_mb : address-space limit per process (torch needs ~1.5 GB of it to start).
    cpu_seconds : CPU time per process; past it the kernel is killed (a crash).
    output_mb : printed/displayed output kept per kernel; the rest is dropped.
    """

    memory_mb: int = 6144
    cpu_seconds: int = 900
    output_mb: float = 2.0

    def __post_init__(self):
        for name in ("memory_mb", "cpu_seconds", "output_mb"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"sandbox limit {name} must be a positive number, got {value!r}")


DEFAULT_LIMITS = Limits()


def available() -> bool:
    """Whether ``bwrap`` and ``prlimit`` are on the PATH."""
    return shutil.which("bwrap") is not None and shutil.which("prlimit") is not None


def require(no_sandbox: bool) -> None:
    """Refuse to grade without a sandbox unless the instructor said ``--no-sandbox``."""
    if no_sandbox or available():
        return
    raise ValueError(
        "bubblewrap (bwrap) is not installed, so student code would run with your rights: it could read "
        "the source labs and hidden tests, change other students' hand-ins and the grades, and leave "
        "processes behind. Install it (Debian/Ubuntu: apt-get install bubblewrap) or, for notebooks you "
        "trust, pass --no-sandbox")


def _python_dirs() -> list[Path]:
    """Folders a kernel needs to import its libraries: the environment and the Python it is built on."""
    dirs = {Path(sys.prefix), Path(sys.base_prefix), Path(sys.executable).resolve().parent.parent}
    return sorted(d for d in dirs if d.is_dir())


def package_dir() -> Path:
    """The folder that holds the ``mlcourse`` package (the course root for a git clone)."""
    import mlcourse

    return Path(mlcourse.__file__).resolve().parent


@dataclass
class Sandbox:
    """How to wrap a kernel command in ``bwrap`` (one instance per kernel).

    Parameters
    ----------
    scratch : path
        The host folder mounted read-write as the kernel's working directory.
    sockets : path
        The host folder with the connection file and the kernel's Unix sockets.
    limits : Limits
    env : dict
        The kernel's whole environment (besides ``HOME``, ``PWD`` is not set).
    """

    scratch: Path
    sockets: Path
    limits: Limits
    env: dict

    def command(self, kernel_cmd: list[str]) -> list[str]:
        """``kernel_cmd`` run under prlimit inside bwrap."""
        cmd = ["bwrap", "--unshare-all", "--die-with-parent", "--new-session",
               "--uid", "1000", "--gid", "1000", "--hostname", "sandbox"]
        for folder in ("/usr", "/etc"):
            if os.path.isdir(folder):
                cmd += ["--ro-bind", folder, folder]
        for link in ("/bin", "/sbin", "/lib", "/lib64", "/lib32"):
            if os.path.islink(link):
                cmd += ["--symlink", os.readlink(link), link]
            elif os.path.isdir(link):
                cmd += ["--ro-bind", link, link]
        cmd += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--tmpfs", "/dev/shm"]
        for folder in _python_dirs():
            cmd += ["--ro-bind", str(folder), str(folder)]
        pkg = package_dir()
        cmd += ["--ro-bind", str(pkg), str(pkg)]
        cmd += ["--bind", str(self.scratch), SCRATCH, "--bind", str(self.sockets), str(self.sockets),
                "--remount-ro", "/", "--chdir", SCRATCH, "--clearenv"]
        env = {**self.env, "HOME": SCRATCH, "PYTHONPATH": str(pkg.parent), "MPLBACKEND": "Agg",
               "PYTHONDONTWRITEBYTECODE": "1", "JUPYTER_PLATFORM_DIRS": "1",
               "JPY_PARENT_PID": "1"}  # ipykernel: "no parent to watch" (PID 1 is the sandbox's init)
        for key, value in sorted(env.items()):
            cmd += ["--setenv", key, str(value)]
        limits = self.limits
        cmd += ["--", "prlimit", f"--as={int(limits.memory_mb * 2**20)}", f"--cpu={int(limits.cpu_seconds)}",
                "--nofile=1024", "--core=0", "--"]
        return cmd + kernel_cmd


def _children(pid: int) -> list[int]:
    kids = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError, ValueError):
            kids += [int(k) for k in (task / "children").read_text().split()]
    return kids


class SandboxedKernelManager(AsyncKernelManager):
    """A KernelManager whose kernel runs in ``self.sandbox`` and talks over Unix sockets.

    The process jupyter_client starts is bwrap; bwrap's init (PID 1 of the
    sandbox) is its child and the kernel is the init's child, in a session of
    its own. An interrupt is therefore a SIGINT sent to that grandchild (a
    process-group signal would not reach it, and ipykernel's interrupt
    message does not interrupt running code in ipykernel 7).
    """

    sandbox: Sandbox | None = None

    def format_kernel_cmd(self, extra_arguments=None):
        return self.sandbox.command(super().format_kernel_cmd(extra_arguments))

    async def interrupt_kernel(self) -> None:
        process = getattr(self.provisioner, "process", None)
        if process is None:
            raise RuntimeError("Cannot interrupt kernel. No kernel is running!")
        for init in _children(process.pid):
            for kernel in _children(init):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(kernel, signal.SIGINT)


def kernel_manager(sandbox: Sandbox) -> SandboxedKernelManager:
    """A kernel manager for one sandboxed kernel, its sockets in ``sandbox.sockets``."""
    km = SandboxedKernelManager(kernel_name="python3", transport="ipc",
                                ip=str(Path(sandbox.sockets) / "kernel"),
                                connection_file=str(Path(sandbox.sockets) / "connection.json"))
    km.sandbox = sandbox
    return km


def _exited(pid: int) -> bool:
    """True once process ``pid`` has finished exiting: it is gone, or a zombie waiting for its parent."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state in ("Z", "X")


def kill_sandbox(km, timeout: float = 10.0) -> None:
    """End a sandboxed kernel and everything it started: SIGKILL to bwrap, whose init takes the rest along.

    When PID 1 of a PID namespace dies, Linux kills every other process in
    it, and the init finishes exiting only once they are all gone. This call
    waits for that (at most ``timeout`` seconds), so no process a student
    started outlives it: on a loaded machine the namespace's last processes
    can still be running when bwrap itself has exited.
    """
    process = getattr(km.provisioner, "process", None) if km.provisioner else None
    if process is None:
        return
    inits = _children(process.pid)
    with contextlib.suppress(ProcessLookupError):
        for init in inits:
            os.kill(init, signal.SIGKILL)
        process.kill()
    with contextlib.suppress(Exception):
        process.wait(timeout=timeout)
    deadline = time.monotonic() + timeout
    while not all(_exited(pid) for pid in inits) and time.monotonic() < deadline:
        time.sleep(0.01)
