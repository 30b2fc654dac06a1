"""Child processes of the local stack: free ports, starting detached, stopping by pid."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from rendezvous.local.errors import LocalStackError, MissingTool


def require(program: str, fix: str) -> str:
    """The full path of ``program``, or :class:`MissingTool` naming the fix."""
    path = shutil.which(program)
    if path is None:
        raise MissingTool(program, fix)
    return path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def spawn(argv: list[str], log: Path, cwd: Path | None = None,
          env: dict[str, str] | None = None) -> int:
    """Start ``argv`` in its own session (so it outlives this command), output to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=env,
            start_new_session=True,
        )
    return proc.pid


def alive(pid: int) -> bool:
    """Whether ``pid`` is a running (not zombie) process."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0): reap it if it is ours.
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    except ChildProcessError:
        pass
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return False


def stop(pid: int, grace_s: float = 15.0) -> None:
    """SIGTERM ``pid`` and its process group, SIGKILL after ``grace_s``; returns when gone."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except (ProcessLookupError, PermissionError):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                return
        deadline = time.monotonic() + (grace_s if sig == signal.SIGTERM else 5.0)
        while time.monotonic() < deadline:
            if not alive(pid):
                return
            time.sleep(0.05)
    if alive(pid):
        raise LocalStackError(f"process {pid} did not stop even after SIGKILL")


def wait_until(ready: Callable[[], bool], timeout_s: float, what: str, pid: int, log: Path) -> None:
    """Poll ``ready`` until true; fail early, quoting the log, if ``pid`` dies."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if ready():
            return
        if not alive(pid):
            raise LocalStackError(f"{what} exited during start-up; last log lines:\n{tail(log)}")
        time.sleep(0.1)
    raise LocalStackError(f"{what} not ready after {timeout_s:.0f} s; see {log}:\n{tail(log)}")


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
