"""``python -m benchmarks [--write-docs] [--rounds N] [--sizes 10,50,100] [--budget-minutes M] [--json PATH]``

Starts its own embedded platform (temporary home, free ports), measures (a) the orchestration
overhead of build-to-test and (b) sync-stage at several sizes, prints a table on stdout (progress
goes to stderr), and with ``--write-docs`` records the figures in docs/benchmarks.md. The
platform is stopped and its home deleted at the end, also when something fails.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

from benchmarks.session import new_home, point_env_at, running_platform

# Tear-down (stopping five processes, deleting the home) must fit inside the budget too.
_TEARDOWN_RESERVE_S = 60.0


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    started = time.monotonic()
    load_before = os.getloadavg()
    home, ports = new_home()
    # Before anything imports Prefect: it reads its settings once, at import.
    point_env_at(home, ports, prefect_console="INFO" if args.verbose else "WARNING")

    def progress(line: str) -> None:
        print(f"[{time.monotonic() - started:6.0f}s] {line}", file=sys.stderr, flush=True)

    with running_platform(home, ports, progress) as settings:
        from benchmarks.overhead import run_overhead
        from benchmarks.report import describe_environment
        from benchmarks.scale import run_scale

        environment = describe_environment(settings)
        overhead = run_overhead(settings, args.rounds, progress)
        deadline = started + args.budget_minutes * 60 - _TEARDOWN_RESERVE_S
        scale = run_scale(settings, args.sizes, deadline=deadline, progress=progress)
        _drain_prefect()

    from benchmarks.report import Report, render_markdown, render_text, write_docs

    report = Report(environment, overhead, scale, load_before, os.getloadavg(), time.monotonic() - started)
    print(render_text(report), flush=True)
    if args.json:
        args.json.write_text(json.dumps(dataclasses.asdict(report), indent=2))
        progress(f"measurements written to {args.json}")
    if args.write_docs:
        progress(f"figures written to {write_docs(render_markdown(report))}")
    return 0


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[1])
    parser.add_argument("--write-docs", action="store_true",
                        help="also record the figures in docs/benchmarks.md (newest first)")
    # Round times are quantised by one-second polls (rollout wait, Prefect's heartbeat thread), so
    # a single round lands on one of a few values; ten rounds give a steadier median than five.
    parser.add_argument("--rounds", type=_positive, default=10,
                        help="timed rounds per side for the overhead measurement (default 10, plus a warm-up)")
    parser.add_argument("--sizes", type=_sizes, default=(10, 50, 100),
                        help="comma-separated service counts for sync-stage (default 10,50,100)")
    parser.add_argument("--budget-minutes", type=float, default=15.0,
                        help="skip (and say so) a sync-stage size projected to end the run later (default 15)")
    parser.add_argument("--json", type=Path, metavar="PATH",
                        help="also write every measurement, round by round, as JSON")
    parser.add_argument("--verbose", action="store_true", help="show Prefect's run logs on the console")
    return parser.parse_args(argv)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError("must be comma-separated numbers, e.g. 10,50,100") from None
    if not sizes or min(sizes) < 1 or max(sizes) > 999:
        raise argparse.ArgumentTypeError("sizes must be between 1 and 999 (service names are svc-001 ...)")
    return sizes


def _drain_prefect() -> None:
    """Send Prefect's queued run logs and events while the server still runs; otherwise they are
    sent at interpreter exit, to a server that is gone, and fail noisily."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for worker in (APILogWorker, EventsWorker):
        try:
            worker.drain_all(timeout=15)
        except Exception:  # noqa: BLE001 - best effort: the figures are already taken
            pass


if __name__ == "__main__":
    sys.exit(main())
