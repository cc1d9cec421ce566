"""Benchmark: the README's test command, `bash .ci/run`, on a fresh clone, against a reference commit.

Each sitting clones this repository twice into a temporary folder (`git clone`, then `git checkout`
of the commit), runs `bash .ci/run` in the clone timed end to end, and removes the clone: the
reference commit first, then the candidate. The figure is the candidate's time; the ratio is the
candidate's over the reference's in the same sitting (the target: at most 0.5 against 88ec51f, the
tree before the layered redesign of docs/architecture.md). Before each run a fixed CPU loop is timed
("cal"), so that a sitting in which the machine itself slowed can be told apart; on Linux the
machine's busy and idle core-seconds (`/proc/stat`) are read around each run.

Everything a clone installs comes from the machine's caches (uv's, pip's, npm's and the folder
`.ci/run` keeps in `${XDG_CACHE_HOME:-~/.cache}/rfm-clv`), as for a developer's second clone: run
`bash .ci/run` once on a new machine first. Each run's output goes to `--logs` (a temporary folder
by default); a run that does not exit 0 stops the benchmark.

    .venv/bin/python bench/suite_time.py [--reference 88ec51f] [--candidate HEAD] [--sittings 3]
                                         [--logs DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGET = 0.5


@dataclass
class Run:
    commit: str
    seconds: float
    busy: float | None  # core-seconds the machine spent busy during the run (Linux only)
    idle: float | None
    cal: float


def calibrate() -> float:
    """Seconds of a fixed CPU loop: the machine's speed at this moment."""
    started = time.perf_counter()
    sum(i * i for i in range(3 * 10**7))
    return time.perf_counter() - started


def cpu_times() -> tuple[float, float] | None:
    """(busy, idle) core-seconds since boot, from /proc/stat; None elsewhere."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return None
    ticks = [int(f) for f in fields]
    hz = os.sysconf("SC_CLK_TCK")
    user, nice, system, idle, iowait, irq, softirq = ticks[:7]
    return (user + nice + system + irq + softirq) / hz, (idle + iowait) / hz


def resolve(commit: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--verify", f"{commit}^{{commit}}"],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        sys.exit(f"suite_time: {commit!r} is not a commit of {REPO}")
    return done.stdout.strip()


def run(commit: str, logs: Path, label: str) -> Run:
    cal = calibrate()
    with tempfile.TemporaryDirectory(prefix="suite-time-") as scratch:
        clone = Path(scratch) / "clone"
        log = logs / f"{label}-{commit[:7]}.log"
        before = cpu_times()
        started = time.perf_counter()
        subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
        subprocess.run(["git", "-C", str(clone), "checkout", "-q", commit], check=True)
        # Both runs write bytecode caches, as on a developer's machine: the candidate's `.ci/run`
        # unsets PYTHONDONTWRITEBYTECODE itself, an older one may not.
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        with log.open("w") as out:
            status = subprocess.call(
                ["bash", ".ci/run"], cwd=clone, env=env, stdout=out, stderr=subprocess.STDOUT
            )
        seconds = time.perf_counter() - started
        after = cpu_times()
        shutil.rmtree(clone, ignore_errors=True)
    if status != 0:
        sys.exit(f"suite_time: `bash .ci/run` of {commit[:7]} exited {status}; its output is in {log}")
    busy = idle = None
    if before is not None and after is not None:
        busy, idle = after[0] - before[0], after[1] - before[1]
    return Run(commit, seconds, busy, idle, cal)


def describe(r: Run) -> str:
    cpu = f", busy {r.busy:.0f} core-s, idle {r.idle:.0f}" if r.busy is not None else ""
    return f"{r.commit[:7]} {r.seconds:6.1f} s (cal {r.cal:.2f} s{cpu})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--reference", default="88ec51f", help="the commit to compare against")
    parser.add_argument("--candidate", default="HEAD", help="the commit measured")
    parser.add_argument("--sittings", type=int, default=3, help="reference-then-candidate pairs")
    parser.add_argument("--logs", type=Path, help="where each run's output goes (default: a temp folder)")
    args = parser.parse_args()
    if args.sittings < 1:
        parser.error("--sittings must be at least 1")
    reference, candidate = resolve(args.reference), resolve(args.candidate)
    logs = args.logs or Path(tempfile.mkdtemp(prefix="suite-time-logs-"))
    logs.mkdir(parents=True, exist_ok=True)
    print(f"`bash .ci/run` on a fresh clone: {candidate[:7]} against {reference[:7]}; logs in {logs}")

    ratios: list[float] = []
    for sitting in range(1, args.sittings + 1):
        old = run(reference, logs, f"{sitting}-reference")
        new = run(candidate, logs, f"{sitting}-candidate")
        ratio = new.seconds / old.seconds
        ratios.append(ratio)
        print(f"sitting {sitting}: {describe(old)} | {describe(new)} | ratio {ratio:.3f}", flush=True)

    met = sum(r <= TARGET for r in ratios)
    print(
        f"figure: candidate/reference median {statistics.median(ratios):.3f} "
        f"(range {min(ratios):.3f}-{max(ratios):.3f}); at most {TARGET} in {met} of {len(ratios)} sittings"
    )


if __name__ == "__main__":
    main()
