"""The worker lowers its own CPU priority (``WORKER_NICE``) so that the web processes beside it get
the CPU first (docs/deployment.md, "Capacity of one machine")."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.config import Settings

ROOT = Path(__file__).resolve().parents[2]
# In a child process: niceness only ever goes up for an unprivileged process, and never back.
CHILD = """
import os, sys
from app.config import Settings
from app.worker.__main__ import lower_priority
before = os.nice(0)
now = lower_priority(Settings(app_env="test", worker_nice=int(sys.argv[1])))
print(before, now, os.nice(0))
"""


def _niceness_in_child(worker_nice: int) -> tuple[int, int, int]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(worker_nice)], cwd=ROOT, capture_output=True, text=True, check=True
    )
    before, now, after = (int(v) for v in out.stdout.split())
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
