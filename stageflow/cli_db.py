"""``stageflow db provision | deprovision``: a service's own database per stage.

Test databases are provisioned in this process (the command returns when the database is Ready);
prod ones start the deployment, because the plan waits for an approver (``--watch`` follows it).
"""
from __future__ import annotations

import argparse
import time
from typing import Callable

from stageflow.cli_release import USER_ENV, _started, whoami
from stageflow.requests import DatabaseRequest
from stageflow.settings import load_settings


def cmd_db_provision(args: argparse.Namespace, out: Callable[[str], None], use_platform) -> int:
    requested_by = args.requested_by or (whoami() if args.stage == "prod" else "")
    DatabaseRequest(args.app, args.service, args.stage, args.engine, requested_by, args.approval_timeout).validate()
    settings = load_settings()
    use_platform(settings)
    parameters = {"app": args.app, "service": args.service, "stage": args.stage, "engine": args.engine,
                  "requested_by": requested_by, "reason": args.reason or ""}
    if args.stage == "test":
        from flows.provision_database import provision_database

        db = provision_database(**parameters)
        out(f"{db.app}/{db.service} has its own {db.engine} database in {db.app}-test: {db.host}:{db.port} "
            f"(credentials: {db.credentials})")
        return 0
    if args.approval_timeout:
        parameters["approval_timeout_seconds"] = args.approval_timeout
    return _start_and_follow(settings, "provision-database", parameters, args.watch, out)


def cmd_db_deprovision(args: argparse.Namespace, out: Callable[[str], None], use_platform) -> int:
    requested_by = args.requested_by or whoami()
    DatabaseRequest(args.app, args.service, args.stage, None, requested_by, args.approval_timeout,
                    flow="deprovision-database").validate()
    settings = load_settings()
    use_platform(settings)
    parameters = {"app": args.app, "service": args.service, "stage": args.stage, "requested_by": requested_by,
                  "reason": args.reason or "", "confirm": args.confirm or ""}
    if args.stage == "test":
        from flows.deprovision_database import deprovision_database

        out(deprovision_database(**parameters))
        return 0
    if args.approval_timeout:
        parameters["approval_timeout_seconds"] = args.approval_timeout
    return _start_and_follow(settings, "deprovision-database", parameters, args.watch, out)


def _start_and_follow(settings, flow: str, parameters: dict, watch: bool, out) -> int:
    from prefect.deployments import run_deployment

    run = run_deployment(f"{flow}/{flow}", parameters=parameters, timeout=0,
                         idempotency_key=f"{flow}/{parameters['app']}/{parameters['service']}/prod/{time.time_ns()}")
    return _started(settings, str(run.id), watch, out)


def add_parsers(sub, fmt, wrap) -> None:
    p = sub.add_parser("db", help="a service's own database per stage (provision, deprovision)")
    db_sub = p.add_subparsers(dest="db_command", required=True, metavar="SUBCOMMAND")

    p = db_sub.add_parser("provision", help="run provision-database", formatter_class=fmt,
                          description="Test: installs the service's own database into <app>-test with Helm "
                                      "(generated credentials in the Secret <service>-db, wired into the service's "
                                      "test deployment) and records it in the infrastructure repo; returns when it "
                                      "is Ready. Prod: renders the service's Terraform root in the infrastructure "
                                      "repo, plans, waits for an approver of the app (like a release), applies "
                                      "exactly the approved plan and syncs the credentials from the secret manager "
                                      "into <app>-prod. Safe to run again.",
                          epilog="examples:\n  stageflow db provision shop orders --stage test --engine postgres\n"
                                 "  stageflow db provision shop orders --stage prod --watch")
    p.add_argument("app", help="application name")
    p.add_argument("service", help="service name")
    p.add_argument("--stage", choices=["test", "prod"], default="test", help="stage (default: test)")
    p.add_argument("--engine", choices=["postgres", "mongodb"],
                   help="database engine (default: what the service declares)")
    p.add_argument("--reason", help="why (prod: shown to the approvers)")
    p.add_argument("--requested-by", help=f"who asks (prod; default: ${USER_ENV} or your login)")
    p.add_argument("--approval-timeout", type=int, metavar="SECONDS", help="prod: how long approvers have")
    p.add_argument("--watch", action="store_true", help="prod: follow the run until it ends")
    p.set_defaults(func=wrap(cmd_db_provision))

    p = db_sub.add_parser("deprovision", help="run deprovision-database (test: after confirmation; prod: after "
                                              "approval, with a final snapshot)", formatter_class=fmt,
                          description="Test: deletes the database release, its Secret and its volumes from "
                                      "<app>-test once you confirm with --confirm APP/SERVICE. Prod: plans the "
                                      "destruction (the module takes a final snapshot), waits for an approver, "
                                      "applies it, removes the Secret from <app>-prod. Both remove the database "
                                      "from the infrastructure repo.",
                          epilog="example: stageflow db deprovision shop orders --stage test --confirm shop/orders")
    p.add_argument("app", help="application name")
    p.add_argument("service", help="service name")
    p.add_argument("--stage", choices=["test", "prod"], default="test", help="stage (default: test)")
    p.add_argument("--confirm", metavar="APP/SERVICE", help="test: type APP/SERVICE to confirm the deletion")
    p.add_argument("--reason", help="why (prod: shown to the approvers)")
    p.add_argument("--requested-by", help=f"who asks (default: ${USER_ENV} or your login)")
    p.add_argument("--approval-timeout", type=int, metavar="SECONDS", help="prod: how long approvers have")
    p.add_argument("--watch", action="store_true", help="prod: follow the run until it ends")
    p.set_defaults(func=wrap(cmd_db_deprovision))
