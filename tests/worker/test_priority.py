"""The worker lowers its own CPU priority (``WORKER_NICE``) so that the web processes beside it get
the CPU first (docs/deployment.md, "Capacity of one machine")."""

from __future__ import annotations

import os

import pytest

from app.config import Settings
from app.worker.__main__ import lower_priority


def _niceness_in_child(worker_nice: int) -> tuple[int, int, int]:
    """Niceness before, returned and after `lower_priority`, in a forked child: niceness only ever
    goes up for an unprivileged process, and never back (a fork, not a new interpreter: the app is
    imported here already)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: only what lower_priority needs, then out without cleanup
        try:
            before = os.nice(0)
            now = lower_priority(Settings(app_env="test", worker_nice=worker_nice))
            os.write(write, f"{before} {now} {os.nice(0)}".encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as out:
        answer = out.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    before, now, after = (int(v) for v in answer.split())
    return before, now, after


def test_the_worker_runs_below_the_web_processes_by_default() -> None:
    assert Settings(app_env="test").worker_nice == 10
    before, now, after = _niceness_in_child(10)
    assert now == after == min(before + 10, 19)


def test_worker_nice_zero_keeps_the_priority() -> None:
    before, now, after = _niceness_in_child(0)
    assert before == now == after == os.nice(0)


@pytest.mark.parametrize("value", [-1, 20])
def test_worker_nice_outside_what_an_unprivileged_process_may_set_is_refused(value: int) -> None:
    with pytest.raises(ValueError):
        Settings(app_env="test", worker_nice=value)
