"""``stageflow release | rollback | approve | reject``: production changes from the command line.

``release`` and ``rollback`` start the deployments (a run that suspends for approval must come
from a deployment: the suspended run holds no process, and the worker runs it again on resume);
``--watch`` follows the run's logs and state until it ends. ``approve`` and ``reject`` check the
same rules as the flow (stageflow.release.approval) before resuming the run, so a refused decision
changes nothing.
"""
from __future__ import annotations

import argparse
import getpass
import os
import time
from typing import Any, Callable
from uuid import UUID

from stageflow.errors import NotFound, Problem, TerminalError, ValidationFailed
from stageflow.release import Decision, may_decide
from stageflow.requests import ReleaseRequest
from stageflow.settings import PlatformSettings, load_settings

# Flows that suspend for an approver of the app (the same rules and the same form for all).
APPROVAL_FLOWS = ("release-to-prod", "rollback", "provision-database", "deprovision-database", "provision-cluster")
USER_ENV = "STAGEFLOW_USER"


def whoami() -> str:
    """Who runs the command: $STAGEFLOW_USER, else the login name."""
    return os.environ.get(USER_ENV) or getpass.getuser()


def ui_url(settings: PlatformSettings, flow_run_id: str) -> str:
    return f"{settings.prefect_api_url.removesuffix('/api')}/runs/flow-run/{flow_run_id}"


def _start(settings: PlatformSettings, flow: str, parameters: dict[str, Any], key: str) -> str:
    from prefect.deployments import run_deployment

    run = run_deployment(f"{flow}/{flow}", parameters=parameters, timeout=0, idempotency_key=key)
    return str(run.id)


def cmd_release(args: argparse.Namespace, out: Callable[[str], None], use_platform) -> int:
    requested_by = args.requested_by or whoami()
    ReleaseRequest(args.app, args.service, args.version, requested_by, args.approval_timeout).validate()
    settings = load_settings()
    use_platform(settings)
    parameters = {"app": args.app, "service": args.service, "version": args.version, "requested_by": requested_by,
                  "reason": args.reason or "", "allow_failed": args.allow_failed}
    if args.approval_timeout:
        parameters["approval_timeout_seconds"] = args.approval_timeout
    # The same key as the service CI uses: one release run per version, however often it is asked for.
    key = f"release-to-prod/{args.app}/{args.service}/{args.version}"
    run_id = _start(settings, "release-to-prod", parameters, key if not args.new_run else f"{key}/{time.time_ns()}")
    return _started(settings, run_id, args.watch, out)


def cmd_rollback(args: argparse.Namespace, out: Callable[[str], None], use_platform) -> int:
    requested_by = args.requested_by or whoami()
    ReleaseRequest(args.app, args.service, None, requested_by, args.approval_timeout, flow="rollback").validate()
    settings = load_settings()
    use_platform(settings)
    parameters = {"app": args.app, "service": args.service, "requested_by": requested_by, "reason": args.reason or ""}
    if args.approval_timeout:
        parameters["approval_timeout_seconds"] = args.approval_timeout
    run_id = _start(settings, "rollback", parameters, f"rollback/{args.app}/{args.service}/{time.time_ns()}")
    return _started(settings, run_id, args.watch, out)


def _started(settings: PlatformSettings, run_id: str, watch: bool, out: Callable[[str], None]) -> int:
    out(f"flow run {run_id}\n  UI: {ui_url(settings, run_id)}")
    if not watch:
        out(f"  follow it: stageflow watch {run_id}")
        return 0
    return watch_run(settings, run_id, out)


def cmd_watch(args: argparse.Namespace, out: Callable[[str], None], use_platform) -> int:
    settings = load_settings()
    use_platform(settings)
    return watch_run(settings, _run_id(args.run_id), out)


def watch_run(settings: PlatformSettings, run_id: str, out: Callable[[str], None], poll: float = 1.0) -> int:
    """Print the run's log lines and state changes until it ends; 0 if it completed."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.client.schemas.sorting import LogSort

    seen_logs = 0
    last_state = None
    with get_client(sync_client=True) as client:
        while True:
            run = client.read_flow_run(UUID(run_id))
            logs = client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[UUID(run_id)])),
                                    offset=seen_logs, sort=LogSort.TIMESTAMP_ASC)
            for line in logs:
                out(f"  {line.timestamp:%H:%M:%S} {line.message}")
            seen_logs += len(logs)
            state = run.state
            label = f"{state.type.value}/{state.name}" if state else "unknown"
            if label != last_state:
                last_state = label
                out(f"state: {state.name if state else 'unknown'}" + (f": {state.message}" if state and state.message
                                                                      else ""))
                if state is not None and state.is_paused():
                    out(f"  waiting for an approver: the Prefect UI ({ui_url(settings, run_id)}) or\n"
                        f"  stageflow approve {run_id} --reason '...'   |   stageflow reject {run_id} --reason '...'")
            if state is not None and state.is_final():
                return 0 if state.is_completed() else 1
            time.sleep(poll)


def cmd_decide(args: argparse.Namespace, out: Callable[[str], None], use_platform) -> int:
    decision = Decision(decision=args.decision, approver=(args.as_ or whoami()).strip(), reason=args.reason.strip())
    settings = load_settings()
    use_platform(settings)
    run_id = _run_id(args.run_id)
    run, flow_name = _paused_release(run_id)
    app, requested_by = run.parameters.get("app"), run.parameters.get("requested_by", "")
    approvers = _approvers(settings, app)  # no app (a cluster): the approvers of every app
    may_decide(decision, app=app or "every app", approvers=approvers, requested_by=requested_by)
    from prefect.flow_runs import resume_flow_run

    try:
        resume_flow_run(UUID(run_id), run_input=decision.model_dump())
    except Exception as exc:  # Prefect raises plain RuntimeError/FlowPauseTimeout here
        raise TerminalError(f"flow run {run_id} could not be resumed: {exc}") from exc
    verb = "approved" if decision.decision == "approve" else "rejected"
    target = (f"{app}/{run.parameters.get('service')} "
              f"{run.parameters.get('version') or run.parameters.get('stage', 'previous version')}" if app
              else f"cluster {run.parameters.get('name')}")
    out(f"{verb} {flow_name} run {run_id} ({target}) as {decision.approver}: {decision.reason}")
    if args.watch:
        return watch_run(settings, run_id, out)
    return 0


def _run_id(value: str) -> str:
    try:
        return str(UUID(value))
    except ValueError:
        raise ValidationFailed(Problem("RUN_ID", f"must be a flow run id (a UUID, as `stageflow release` prints it); "
                                                 f"got {value!r}")) from None


def _paused_release(run_id: str):
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            run = client.read_flow_run(UUID(run_id))
        except ObjectNotFound:
            raise NotFound(f"no flow run {run_id} on {os.environ.get('PREFECT_API_URL', 'the Prefect server')}") from None
        flow_name = client.read_flow(run.flow_id).name
    if flow_name not in APPROVAL_FLOWS:
        raise TerminalError(f"flow run {run_id} is a {flow_name} run, which never waits for approval "
                            f"(approvals: {', '.join(APPROVAL_FLOWS)})")
    state = run.state
    if state is None or not state.is_paused():
        name = state.name if state else "unknown"
        hint = " (the approval deadline passed)" if state and "never resumed" in (state.message or "") else ""
        raise TerminalError(f"flow run {run_id} is not waiting for approval: it is {name}{hint}")
    return run, flow_name


def _approvers(settings: PlatformSettings, app: str | None) -> list[str]:
    from stageflow.gitops import InfraRepo
    from stageflow.spec import load_spec
    from tasks.forge import forge_for, git_auth_header

    repo = forge_for(settings).get_repo(settings.infra_repo)
    if repo is None:
        raise NotFound(f"infrastructure repository {settings.infra_repo!r} does not exist on the forge")
    infra = InfraRepo(repo.clone_url, settings.workdir / "cli" / "infra", auth_header=git_auth_header(settings))
    spec = load_spec(infra.sync())
    if app is None:
        from stageflow.release.approval import platform_approvers

        return platform_approvers(spec.apps.values())
    return list(spec.app(app).approvers)


def add_parsers(sub, fmt, wrap) -> None:
    """The release commands, added to the ``stageflow`` parser; ``wrap`` binds output and platform set-up."""
    p = sub.add_parser("release", help="run release-to-prod: promote a tested version to <app>-prod after approval",
                       formatter_class=fmt,
                       description="Starts the release-to-prod deployment. The flow resolves VERSION to a digest, "
                                   "refuses it unless that digest was verified in <app>-test, opens a pull request "
                                   "in the infrastructure repo, and suspends until an approver of the app approves "
                                   "or rejects (Prefect UI or `stageflow approve`). Then it merges, rolls out to "
                                   "<app>-prod, verifies, and rolls back automatically if the rollout fails.",
                       epilog="example: stageflow release shop orders v1.4.0 --reason 'new checkout' --watch\n"
                              "The same VERSION started twice is one run (idempotency key "
                              "release-to-prod/<app>/<service>/<version>); --new-run starts another.")
    p.add_argument("app", help="application name, e.g. shop")
    p.add_argument("service", help="service name, e.g. orders")
    p.add_argument("version", help="release tag the service's CI pushed (e.g. v1.4.0), or sha256:<digest>")
    p.add_argument("--reason", help="why: shown to the approvers")
    p.add_argument("--requested-by", help=f"who asks (default: ${USER_ENV} or your login); may not approve alone")
    p.add_argument("--approval-timeout", type=int, metavar="SECONDS",
                   help="how long approvers have (default: approval_timeout_hours in platform.yaml)")
    p.add_argument("--allow-failed", action="store_true", help="release a digest that already failed in prod")
    p.add_argument("--new-run", action="store_true", help="start a new run even if this version was requested before")
    p.add_argument("--watch", action="store_true", help="follow the run until it ends; exit 1 unless it completes")
    p.set_defaults(func=wrap(cmd_release))

    p = sub.add_parser("rollback", help="run rollback: put <app>-prod back to the previous released version",
                       description="Starts the rollback deployment: the same pull request, approval, rollout and "
                                   "release record as a release, targeting the newest earlier successful release.")
    p.add_argument("app", help="application name")
    p.add_argument("service", help="service name")
    p.add_argument("--reason", help="why: shown to the approvers")
    p.add_argument("--requested-by", help=f"who asks (default: ${USER_ENV} or your login)")
    p.add_argument("--approval-timeout", type=int, metavar="SECONDS", help="how long approvers have")
    p.add_argument("--watch", action="store_true", help="follow the run until it ends")
    p.set_defaults(func=wrap(cmd_rollback))

    for decision, verb in (("approve", "approve"), ("reject", "reject")):
        p = sub.add_parser(verb, help=f"{verb} a suspended release, rollback or prod database run",
                           description=f"{verb.capitalize()} a run that waits for approval (release-to-prod, "
                                       "rollback, or provision-/deprovision-database at prod). The rules are the flow's own: you must be listed in the app's "
                                       "approvers (apps/<app>/app.yaml), the requester may not approve alone, and a "
                                       "reason is required. A refused decision changes nothing.")
        p.add_argument("run_id", metavar="RUN_ID", help="the flow run id `stageflow release` printed")
        p.add_argument("--reason", required=True, help="why (goes into the release record)")
        p.add_argument("--as", dest="as_", metavar="NAME",
                       help=f"your name as listed in the app's approvers (default: ${USER_ENV} or your login)")
        p.add_argument("--watch", action="store_true", help="then follow the run until it ends")
        p.set_defaults(func=wrap(cmd_decide), decision=decision)

    p = sub.add_parser("watch", help="follow a flow run's logs and state until it ends (exit 1 unless completed)")
    p.add_argument("run_id", metavar="RUN_ID", help="flow run id")
    p.set_defaults(func=wrap(cmd_watch))
