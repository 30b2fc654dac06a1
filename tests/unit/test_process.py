"""Off-path components lower their CPU priority, their autogroup's too when it is theirs."""

from __future__ import annotations

import subprocess
import sys

import pytest

from rendezvous.process import AUTOGROUP

SHOW = ("from rendezvous.process import yield_cpu; import os; yield_cpu(7); "
        "print(os.nice(0), open('/proc/self/autogroup').read().strip())")

needs_autogroups = pytest.mark.skipif(not AUTOGROUP.exists(),
                                      reason="this kernel has no autogroups to lower")


def _group_nice(shown: str) -> str:
    # The file is "/autogroup-N nice K", or empty for a process in the root group
    # (a session of init's, as under some CI runners).
    return shown.split()[-1] if shown.strip() else "root"


def _priorities(new_session: bool) -> tuple[int, str]:
    out = subprocess.run([sys.executable, "-c", SHOW], capture_output=True, text=True,
                         check=True, start_new_session=new_session).stdout
    nice, _, group = out.partition(" ")
    return int(nice), _group_nice(group)


@needs_autogroups
def test_a_session_leader_lowers_its_own_autogroup_with_its_nice_value() -> None:
    # As the local stack starts components: each in its own session, so its own group.
    assert _priorities(new_session=True) == (7, "7")


@needs_autogroups
def test_a_process_sharing_its_session_leaves_the_group_of_the_others_alone() -> None:
    before = _group_nice(AUTOGROUP.read_text())
    assert _priorities(new_session=False) == (7, before)
