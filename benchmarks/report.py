"""The benchmark's results as a table for the terminal and a markdown block for docs/benchmarks.md,
with the machine and the versions they were measured on."""
from __future__ import annotations

import os
import platform
import re
import statistics
import subprocess
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from stageflow.settings import PROJECT_ROOT, PlatformSettings
from benchmarks.overhead import SIDES, STEPS, OverheadResult, Round
from benchmarks.scale import ScaleResult

__all__ = ["DOC", "RESULTS_MARKER", "Environment", "Report", "describe_environment", "render_markdown",
           "render_text", "write_docs"]

DOC = PROJECT_ROOT / "docs" / "benchmarks.md"
# Results are inserted right below this line, newest first; everything else in the doc is kept.
RESULTS_MARKER = "<!-- benchmark results: `python -m benchmarks --write-docs` inserts new runs below, newest first -->"


@dataclass(frozen=True)
class Environment:
    date: str
    machine: str  # "2 CPUs (model), 23.4 GiB RAM"
    versions: str  # "Python 3.11.7, Prefect 3.9.1, ..."


@dataclass(frozen=True)
class Report:
    environment: Environment
    overhead: OverheadResult
    scale: list[ScaleResult]
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float]
    total_seconds: float


def describe_environment(settings: PlatformSettings) -> Environment:
    """Date, machine and the versions of everything that takes part in a rollout."""
    from stageflow.adapters.helm import helm_binary
    from stageflow.local.tools import tool

    cpus = os.cpu_count() or 0
    model = _match(Path("/proc/cpuinfo"), r"model name\s*:\s*(.+)")
    mem_kib = _match(Path("/proc/meminfo"), r"MemTotal:\s*(\d+) kB")
    memory = f"{int(mem_kib) / 1024 ** 2:.1f} GiB RAM" if mem_kib else "unknown RAM"
    machine = f"{cpus} CPUs{f' ({model})' if model else ''}, {memory}"
    commit = _output(["git", "-C", str(PROJECT_ROOT), "rev-parse", "--short", "HEAD"])
    dirty = _output(["git", "-C", str(PROJECT_ROOT), "status", "--porcelain", "--untracked-files=no"])
    versions = ", ".join([
        f"Stageflow {commit}{' + local changes' if dirty not in ('', 'unknown') else ''}",
        f"Python {platform.python_version()}",
        f"Prefect {metadata.version('prefect')}",
        f"Helm {_output([helm_binary(), 'version', '--short']).split('+')[0]}",
        f"Kubernetes {_output([tool('kube-apiserver'), '--version']).removeprefix('Kubernetes ')}",
        f"kwok {_version_in(_output([tool('kwok'), '--version']))}",
        f"Docker engine {_docker_version(settings.docker_host)}",
        f"git {_output(['git', '--version']).removeprefix('git version ')}",
    ])
    return Environment(datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), machine, versions)


# -- rendering -------------------------------------------------------------------------------
def render_text(report: Report) -> str:
    env, over = report.environment, report.overhead
    lines = [
        f"Stageflow benchmark, {env.date}: {env.machine}",
        f"  {env.versions}",
        f"  load average {_load(report.load_before)} before, {_load(report.load_after)} after; "
        f"whole run {report.total_seconds / 60:.1f} min (noisy: the machine is shared)",
        "",
        f"(a) orchestration overhead: build-to-test flow vs. plain script, {_rounds(over.rounds)} each, new digest "
        "every round",
        f"    {'':26}{'median':>9}{'min':>9}{'mean':>9}{'max':>9}   warm-up   rounds",
    ]
    for side in SIDES:
        times = [r.seconds for r in over.timed[side]]
        label = "build-to-test flow" if side == "flow" else "plain script"
        lines.append(f"    {label:26}{_s(statistics.median(times)):>9}{_s(min(times)):>9}"
                     f"{_s(statistics.fmean(times)):>9}{_s(max(times)):>9}"
                     f"{_s(over.warmup[side].seconds):>10}   {' '.join(f'{t:.2f}' for t in times)}")
    lines.append(f"    {'ratio flow / script':26}" + "".join(f"{r:>8.2f}x" for r in _ratios(over)))
    lines.append(f"    {'difference flow - script':26}" + "".join(f"{_s(d):>9}" for d in _differences(over)))
    lines.append("    (kwok pods start at once: on a real cluster both sides wait longer for the rollout, so the ratio "
                 "is smaller there; the difference is the figure that carries over)")
    lines += ["", f"    per step, median of the rounds  {'flow':>8}{'script':>9}"]
    for name, flow, script in _step_rows(over):
        lines.append(f"      {name:30}{_s(flow):>8}{_s(script):>9}")
    lines += ["", "(b) sync-stage, one app, N services each with its own Helm release",
              f"    {'services':>8}{'cold':>10}{'per svc':>10}{'warm':>10}{'per svc':>10}   setup (not timed)"]
    for row in report.scale:
        if row.skipped:
            lines.append(f"    {row.services:>8}   {row.skipped}")
        else:
            lines.append(f"    {row.services:>8}{_s(row.cold):>10}{_s(row.cold / row.services, 3):>10}"
                         f"{_s(row.warm):>10}{_s(row.warm / row.services, 3):>10}   {_s(row.setup)}")
    return "\n".join(lines)


def render_markdown(report: Report) -> str:
    env, over = report.environment, report.overhead
    out = [
        f"### {env.date} — {env.machine}",
        "",
        f"{env.versions}. Load average {_load(report.load_before)} before the run, "
        f"{_load(report.load_after)} after; whole run {report.total_seconds / 60:.1f} min.",
        "",
        f"**(a) Orchestration overhead** — {_rounds(over.rounds)} per side after a warm-up, "
        "a new digest every round:",
        "",
        "| | median | min | mean | max | warm-up (install) | rounds |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for side in SIDES:
        times = [r.seconds for r in over.timed[side]]
        label = "build-to-test flow" if side == "flow" else "plain script"
        out.append(f"| {label} | {_s(statistics.median(times))} | {_s(min(times))} | {_s(statistics.fmean(times))} | "
                   f"{_s(max(times))} | "
                   f"{_s(over.warmup[side].seconds)} | {', '.join(f'{t:.2f}' for t in times)} |")
    ratio_median, ratio_min, ratio_mean = _ratios(over)
    extra_median, extra_min, extra_mean = _differences(over)
    out += [f"| **ratio flow / script** | **{ratio_median:.2f}×** | {ratio_min:.2f}× | {ratio_mean:.2f}× | | | |",
            f"| difference flow − script | {_s(extra_median)} | {_s(extra_min)} | {_s(extra_mean)} | | | |", "",
            "Per step (median of the timed rounds):", "", "| step | flow | script |", "|---|---:|---:|"]
    out += [f"| {name} | {_s(flow)} | {_s(script)} |" for name, flow, script in _step_rows(over)]
    out += ["", "**(b) sync-stage** — one app with N services, all in the test stage:", "",
            "| services | cold | per service | warm (no change) | per service | setup, not timed |",
            "|---:|---:|---:|---:|---:|---:|"]
    for row in report.scale:
        if row.skipped:
            out.append(f"| {row.services} | {row.skipped} | | | | |")
        else:
            out.append(f"| {row.services} | {_s(row.cold)} | {_s(row.cold / row.services, 3)} | {_s(row.warm)} | "
                       f"{_s(row.warm / row.services, 3)} | {_s(row.setup)} |")
    return "\n".join(out) + "\n"


def write_docs(block: str, doc: Path = DOC) -> Path:
    """Insert ``block`` below the results marker of ``doc`` (newest first), keeping the rest."""
    text = doc.read_text() if doc.exists() else "# Benchmarks\n"
    if RESULTS_MARKER not in text:
        text = text.rstrip("\n") + f"\n\n## Results\n\n{RESULTS_MARKER}\n"
    head, _, tail = text.partition(RESULTS_MARKER)
    doc.parent.mkdir(parents=True, exist_ok=True)
    earlier = tail.strip("\n")
    doc.write_text(f"{head}{RESULTS_MARKER}\n\n{block.strip()}\n" + (f"\n{earlier}\n" if earlier else ""))
    return doc


# -- helpers ---------------------------------------------------------------------------------
def _summaries(over: OverheadResult, side: str) -> tuple[float, float, float]:
    """(median, min, mean) of one side's timed rounds."""
    times = [r.seconds for r in over.timed[side]]
    return statistics.median(times), min(times), statistics.fmean(times)


def _ratios(over: OverheadResult) -> tuple[float, float, float]:
    return tuple(f / s for f, s in zip(_summaries(over, "flow"), _summaries(over, "script")))


def _differences(over: OverheadResult) -> tuple[float, float, float]:
    """Seconds the flow takes beyond the script (median, min, mean): the figure that carries over
    to a real cluster, where both sides wait equally long for pods."""
    return tuple(f - s for f, s in zip(_summaries(over, "flow"), _summaries(over, "script")))


def _step_rows(over: OverheadResult) -> list[tuple[str, float, float]]:
    """Median per step on each side, then what the flow spends outside its steps (flow run and
    task bookkeeping, the stage lock, artifacts)."""
    def median_of(rounds: list[Round], pick) -> float:
        return statistics.median(pick(r) for r in rounds)

    rows = [(name, median_of(over.timed["flow"], lambda r: r.steps.get(name, 0.0)),
             median_of(over.timed["script"], lambda r: r.steps.get(name, 0.0))) for name in STEPS]
    outside = [(r.seconds - sum(r.steps.values())) for r in over.timed["flow"]]
    script_outside = [(r.seconds - sum(r.steps.values())) for r in over.timed["script"]]
    rows.append(("outside the steps", statistics.median(outside), statistics.median(script_outside)))
    return rows


def _rounds(n: int) -> str:
    return f"{n} round{'' if n == 1 else 's'}"


def _s(seconds: float, digits: int = 2) -> str:
    return f"{seconds:.{digits}f}s"


def _load(load: tuple[float, float, float]) -> str:
    return f"{load[0]:.1f}"


def _output(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    if done.returncode != 0:
        return "unknown"
    lines = (done.stdout.strip() or done.stderr.strip()).splitlines()
    return lines[0] if lines else ""


def _version_in(text: str) -> str:
    found = re.search(r"v?\d+\.\d+\.\d+\S*", text)
    return found.group(0) if found else "unknown"


def _match(path: Path, pattern: str) -> str | None:
    try:
        found = re.search(pattern, path.read_text())
    except OSError:
        return None
    return found.group(1).strip() if found else None


def _docker_version(docker_host: str | None) -> str:
    import docker

    if not docker_host:
        return "unknown"
    try:
        client = docker.DockerClient(base_url=docker_host, timeout=10)
        try:
            return str(client.version().get("Version", "unknown"))
        finally:
            client.close()
    except Exception:  # noqa: BLE001 - a version string is decoration; never fail the run over it
        return "unknown"
