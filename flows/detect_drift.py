"""``detect-drift``: compare the infrastructure repo with the cluster, and with ``heal`` make the
cluster match it again.

read spec ──► detect ──► (heal: [stage lock: heal -> wait for rollouts] per drifted stage ──► detect again)
          ──► artifacts ``drift`` (markdown) and ``drift-table``

Detecting changes nothing. Healing upgrades drifted Helm releases (which also undoes manual edits of
their Deployments) and applies the namespace objects again; releases the repo does not know are
reported, never removed.
"""
from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from flows.common import run_workspace, settings as load_platform, stage_lock
from stageflow.settings import PlatformSettings
from stageflow.spec import PlatformSpec, load_spec, namespace, validate_name
from stageflow.steps import detect_drift as detect, heal_drift as heal_step, verify_rollout
from tasks.drift import detect_drift_task, heal_drift_task
from tasks.steps import infra_repo, verify_rollout_task

_COLUMNS = ["app", "stage", "service", "what", "expected", "actual"]


@flow(name="detect-drift", log_prints=True, validate_parameters=True)
def detect_drift(app: str | None = None, heal: bool = False) -> list[dict]:
    """Report every difference between the infrastructure repo and the cluster; optionally undo it.

    Args:
        app: the application, e.g. ``shop``; leave empty to check every app in the infrastructure repo.
        heal: make the cluster match the repo again (under each drifted stage's lock), then check
            again and report what remains.

    Returns the drift found, or with ``heal`` the drift that remains afterwards: one dict per
    difference with the keys ``app, stage, service, kind, expected, actual, object``.
    """
    if app is not None:
        validate_name("app", app, kind="app")
    cfg = load_platform()
    log = get_run_logger()
    with run_workspace(cfg) as work:
        infra = infra_repo(cfg, work / "infra")
        spec = load_spec(infra.sync())
        head = infra.head()
    config = detect.Config(app=app)
    found = detect_drift_task(config, spec, cfg)
    healed: list[heal_step.Healed] = []
    skipped: list[heal_step.Skipped] = []
    remaining = found
    if heal and found.drifts:
        for app_, stage in sorted({(d.app, d.stage) for d in found.drifts}):
            drifts = [d for d in found.drifts if (d.app, d.stage) == (app_, stage)]
            with stage_lock(app_, stage):
                outcome = heal_drift_task(heal_step.Config(drifts=drifts, chart=cfg.chart), spec, cfg)
                _wait_for_rollouts(outcome, spec, cfg)
            healed += outcome.healed
            skipped += outcome.skipped
        remaining = detect_drift_task(config, spec, cfg)
        log.info("healed %d target(s); %d drift(s) remain", len(healed), len(remaining.drifts))
    _publish(app, head, found, remaining if heal else None, healed, skipped)
    return [d.model_dump() for d in remaining.drifts]


def _wait_for_rollouts(outcome: heal_step.Result, spec: PlatformSpec, cfg: PlatformSettings) -> None:
    """A healed release rolls its pods again: wait until they run the repo's digest."""
    checks = []
    for app, stage, service in outcome.services:
        version = spec.version(app, service, stage)
        checks.append(verify_rollout_task.submit(verify_rollout.Config(
            namespace=namespace(app, stage), deployment=service, image=version.image.reference,
            timeout_seconds=cfg.timeouts.rollout_seconds), cfg))
    for check in checks:
        check.result()


def _rows(result: detect.Result) -> list[dict[str, str]]:
    return [{"app": d.app, "stage": d.stage, "service": d.service or "-",
             "what": d.kind + (f" ({d.object})" if d.object else ""), "expected": d.expected, "actual": d.actual}
            for d in result.drifts]


def _table(rows: list[dict[str, str]]) -> str:
    if not rows:
        return "no drift\n"
    cell = lambda text: str(text).replace("|", "\\|").replace("\n", " ")  # noqa: E731 - markdown cells
    lines = ["| " + " | ".join(_COLUMNS) + " |", "|" + "---|" * len(_COLUMNS)]
    lines += ["| " + " | ".join(cell(r[c]) for c in _COLUMNS) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def _publish(app: str | None, head: str, found: detect.Result, remaining: detect.Result | None,
             healed: list[heal_step.Healed], skipped: list[heal_step.Skipped]) -> None:
    scope = f"app {app}" if app else "every app"
    final = remaining if remaining is not None else found
    parts = [f"# Drift of {scope} from infra commit `{head[:12]}`\n",
             f"{len(found.drifts)} difference(s) in {found.checked} checked object(s).\n", _table(_rows(found))]
    if remaining is not None:
        parts.append("## Healed\n")
        parts.append("\n".join(f"- {h.app}-{h.stage} {h.service or 'namespace objects'}: {h.action}"
                               for h in healed) + "\n" if healed else "nothing needed healing\n")
        if skipped:
            parts.append("## Not healed\n" + "\n".join(f"- {s.drift.describe()}: {s.reason}" for s in skipped) + "\n")
        parts.append(f"## Remaining after healing\n\n{_table(_rows(remaining))}")
    if final.drifts:
        description = f"{len(final.drifts)} drift(s) in {scope}" + (" after healing" if remaining is not None else "")
    else:
        description = f"no drift in {scope}"
    create_markdown_artifact(key="drift", markdown="\n".join(parts), description=description)
    create_table_artifact(key="drift-table", table=_rows(final), description=description)
