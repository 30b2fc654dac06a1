"""Off-path components lower their CPU priority, their autogroup's too when it is theirs."""

from __future__ import annotations

import subprocess
import sys

import pytest

from rendezvous.process import AUTOGROUP

SHOW = ("from rendezvous.process import yield_cpu; import os; yield_cpu(7); "
        "print(os.nice(0), open('/proc/self/autogroup').read().split()[-1])")

needs_autogroups = pytest.mark.skipif(not AUTOGROUP.exists(),
                                      reason="this kernel has no autogroups to lower")


def _priorities(new_session: bool) -> tuple[int, int]:
    out = subprocess.run([sys.executable, "-c", SHOW], capture_output=True, text=True,
                         check=True, start_new_session=new_session).stdout.split()
    return int(out[0]), int(out[1])


@needs_autogroups
def test_a_session_leader_lowers_its_own_autogroup_with_its_nice_value() -> None:
    # As the local stack starts components: each in its own session, so its own group.
    assert _priorities(new_session=True) == (7, 7)


@needs_autogroups
def test_a_process_sharing_its_session_leaves_the_group_of_the_others_alone() -> None:
    before = int(AUTOGROUP.read_text().split()[-1])
    assert _priorities(new_session=False) == (7, before)

