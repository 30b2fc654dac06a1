"""Start pipeline components as separate processes, wait until each is ready, stop them by pid.

Used by ``rendezvous demo``/``up`` and by the tests, so both run the real
processes the same way.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from rendezvous.local.errors import LocalStackError
from rendezvous.local.processes import alive, spawn, stop, tail
from rendezvous.local.security import component_environment
from rendezvous.readiness import READY_MARK


@dataclass
class Component:
    """One running component process."""

    name: str
    argv: list[str]
    log: Path
    pid: int
    env: dict[str, str] = field(repr=False, default_factory=dict)

    def ready_count(self) -> int:
        return _ready_lines(self.log)


class Supervisor:
    """A set of component processes with one log file each under ``log_dir``."""

    def __init__(self, log_dir: Path, env: dict[str, str] | None = None,
                 cwd: Path | None = None) -> None:
        self.log_dir = log_dir
        self.env = {**os.environ, **(env or {})}
        self.cwd = cwd
        """Working directory of the components (default: this process's)."""
        self.components: dict[str, Component] = {}

    def start(self, name: str, args: list[str], wait: bool = True,
              timeout_s: float = 60.0, env: dict[str, str] | None = None) -> Component:
        """Run ``rendezvous <args>`` as ``name``; with ``wait``, return once it is ready.

        When the environment names a credentials directory (a secure stack), the component
        runs as its own principal, never with the operator's credentials
        (:func:`~rendezvous.local.security.component_environment`)."""
        argv = [sys.executable, "-m", "rendezvous", *args]
        log = self.log_dir / f"{name}.log"
        seen = _ready_lines(log)  # the log is appended to: count only new ready lines
        full_env = component_environment({**self.env, **(env or {})}, args)
        pid = spawn(argv, log, cwd=self.cwd, env=full_env)
        component = Component(name, argv, log, pid, full_env)
        self.components[name] = component
        if wait:
            self.wait_ready(name, timeout_s, after=seen)
        return component

    def wait_ready(self, name: str, timeout_s: float = 60.0, after: int = 0) -> None:
        component = self.components[name]
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if component.ready_count() > after:
                return
            if not alive(component.pid):
                raise LocalStackError(f"{name} exited before it was ready:\n{tail(component.log)}")
            time.sleep(0.05)
        raise LocalStackError(f"{name} not ready after {timeout_s} s:\n{tail(component.log)}")

    def kill9(self, name: str) -> None:
        """SIGKILL a component (a crash, for failure tests); waits until it is gone."""
        component = self.components[name]
        os.kill(component.pid, signal.SIGKILL)
        while alive(component.pid):
            time.sleep(0.01)

    def restart(self, name: str, timeout_s: float = 60.0) -> Component:
        component = self.components[name]
        return self.start(name, component.argv[3:], timeout_s=timeout_s, env=component.env)

    def terminate(self, name: str, grace_s: float = 15.0) -> None:
        """SIGTERM (drain and exit), SIGKILL after ``grace_s``."""
        stop(self.components[name].pid, grace_s)

    def pids(self) -> list[int]:
        return [c.pid for c in self.components.values()]

    def stop_all(self) -> None:
        """Stop every component by pid; afterwards none is alive."""
        for component in reversed(list(self.components.values())):
            stop(component.pid)
        leftover = [p for p in self.pids() if alive(p)]
        if leftover:
            raise LocalStackError(f"components still alive after stop: {leftover}")



def _ready_lines(log: Path) -> int:
    try:
        return log.read_text(errors="replace").count(f"{READY_MARK} ")
    except OSError:
        return 0
