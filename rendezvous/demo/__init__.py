"""``rendezvous demo`` (the pipeline under load, with a summary) and ``rendezvous up``
(the pipeline for real clients), both on this machine."""

from rendezvous.demo.errors import DemoError
from rendezvous.demo.run import DemoOptions, run_demo
from rendezvous.demo.up import READY_LINE, run_up

__all__ = ["READY_LINE", "DemoError", "DemoOptions", "run_demo", "run_up"]
