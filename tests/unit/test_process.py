"""Off-path components lower their CPU priority, their autogroup's too when it is theirs."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from rendezvous.process import AUTOGROUP

SHOW = ("from rendezvous.process import yield_cpu; import os; yield_cpu(7); "
        "print(os.nice(0), open('/proc/self/autogroup').read().strip() or 'root')")

needs_autogroups = pytest.mark.skipif(not AUTOGROUP.exists(),
                                      reason="this kernel has no autogroups to lower")


def _group_nice(shown: str) -> str:
    # The file is "/autogroup-N nice K", or empty for a process in the root group
    # (a session of init's, as under some CI runners).
    return shown.split()[-1] if shown.strip() else "root"


def _priorities(new_session: bool) -> tuple[int, str]:
    out = subprocess.run([sys.executable, "-c", SHOW], capture_output=True, text=True,
                         check=True, start_new_session=new_session).stdout
    nice, group = out.split(maxsplit=1)
    return int(nice), _group_nice(group)


@needs_autogroups
def test_a_session_leader_lowers_its_own_autogroup_with_its_nice_value() -> None:
    # As the local stack starts components: each in its own session, so its own group.
    assert _priorities(new_session=True) == (7, "7")


@needs_autogroups
def test_a_process_sharing_its_session_leaves_the_group_of_the_others_alone() -> None:
    before = _group_nice(AUTOGROUP.read_text())
    assert _priorities(new_session=False) == (7, before)



def _kernel_at_least(major: int, minor: int) -> bool:
    release = platform.release().split(".")
    try:
        return (int(release[0]), int(release[1])) >= (major, minor)
    except (IndexError, ValueError):
        return False


needs_custom_slices = pytest.mark.skipif(
    sys.platform != "linux" or not _kernel_at_least(6, 12),
    reason="custom CPU slices came with Linux 6.12")

SLICE = ("from rendezvous.process import claim_short_slices; import os, threading; "
         "os.nice(5); claim_short_slices({us}); seen = []; "
         "t = threading.Thread(target=lambda: seen.append(open('/proc/thread-self/sched')"
         ".read())); t.start(); t.join(); "
         "print(os.nice(0), [line.split()[-1] for line in seen[0].splitlines() "
         "if 'se.slice' in line][0])")


def _slice_of_a_later_thread(us: float) -> tuple[int, int]:
    out = subprocess.run([sys.executable, "-c", SLICE.format(us=us)], capture_output=True,
                         text=True, check=True).stdout.split()
    return int(out[0]), int(out[1])


@needs_custom_slices
def test_short_slices_reach_threads_started_afterwards_and_keep_the_nice_value() -> None:
    assert _slice_of_a_later_thread(300) == (5, 300_000)


@needs_custom_slices
def test_no_short_slices_leaves_the_kernel_default() -> None:
    nice, default = _slice_of_a_later_thread(0)
    assert nice == 5
    assert default != 300_000 and default > 0
