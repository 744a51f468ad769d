"""``stageflow platform bootstrap | cluster``: the core services and the cluster itself."""
from __future__ import annotations

import argparse
import json
import time
from typing import Callable

from stageflow.cli_release import USER_ENV, _started, whoami
from stageflow.errors import Problem, ValidationFailed
from stageflow.settings import load_settings
from stageflow.spec.names import label_problem


def cmd_bootstrap(args: argparse.Namespace, out: Callable[[str], None], use_platform) -> int:
    settings = load_settings()
    use_platform(settings)
    from flows.bootstrap_platform import bootstrap_platform

    result = bootstrap_platform(only=args.only or None)
    for state in ("installed", "upgraded", "unchanged"):
        if result[state]:
            out(f"{state}: {', '.join(result[state])}")
    if not any(result[s] for s in ("installed", "upgraded", "unchanged")):
        out("the catalog (core_services in platform.yaml) is empty: nothing to install")
    return 0


def _inputs(items: list[str]) -> dict:
    """``KEY=VALUE`` pairs; VALUE is JSON when it parses (lists, numbers), else a string."""
    inputs = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValidationFailed(Problem("--input", f"must be KEY=VALUE (got {item!r})"))
        try:
            inputs[key] = json.loads(value)
        except json.JSONDecodeError:
            inputs[key] = value
    return inputs


def cmd_cluster(args: argparse.Namespace, out: Callable[[str], None], use_platform) -> int:
    requested_by = args.requested_by or whoami()
    if (problem := label_problem(args.name)) is not None:
        raise ValidationFailed(Problem("name", problem), summary="provision-cluster: invalid input")
    parameters = {"name": args.name, "requested_by": requested_by, "reason": args.reason or "",
                  "kubernetes_version": args.kubernetes_version, "module_inputs": _inputs(args.input)}
    if args.approval_timeout:
        parameters["approval_timeout_seconds"] = args.approval_timeout
    settings = load_settings()
    use_platform(settings)
    from prefect.deployments import run_deployment

    run = run_deployment("provision-cluster/provision-cluster", parameters=parameters, timeout=0,
                         idempotency_key=f"provision-cluster/{args.name}/{time.time_ns()}")
    return _started(settings, str(run.id), args.watch, out)


def add_parsers(sub, fmt, wrap) -> None:
    p = sub.add_parser("platform", help="the core services (bootstrap) and the cluster (Terraform)")
    platform_sub = p.add_subparsers(dest="platform_command", required=True, metavar="SUBCOMMAND")
    p = platform_sub.add_parser("bootstrap", help="run bootstrap-platform: install the core-services catalog",
                                description="Installs or upgrades every core service listed under core_services "
                                            "in the infrastructure repo's platform.yaml into the namespace "
                                            "core-services (Helm, from repositories or oci:// references). A "
                                            "re-run with an unchanged catalog changes nothing.",
                                epilog="example catalog: examples/core-services.yaml", formatter_class=fmt)
    p.add_argument("--only", action="append", metavar="RELEASE", help="only this core service (repeat)")
    p.set_defaults(func=wrap(cmd_bootstrap))

    p = platform_sub.add_parser("cluster", help="run provision-cluster: plan, approval, apply (Terraform)",
                                formatter_class=fmt,
                                description="Starts the provision-cluster deployment: renders the cluster's "
                                            "Terraform root into the infrastructure repo, plans, waits for an "
                                            "approver (any app's approver, not the requester alone), applies "
                                            "exactly that plan and stores the kubeconfig as the Prefect block "
                                            "stageflow-kubeconfig/NAME.",
                                epilog="example: stageflow platform cluster prod-eu --input "
                                       "'subnet_ids=[\"subnet-1\",\"subnet-2\"]' --watch")
    p.add_argument("name", help="cluster name (a DNS label)")
    p.add_argument("--input", action="append", metavar="KEY=VALUE",
                   help="module input (repeat; VALUE may be JSON), e.g. subnet_ids=[...]")
    p.add_argument("--kubernetes-version", default="1.34", help="Kubernetes version (default: 1.34)")
    p.add_argument("--reason", help="why: shown to the approvers")
    p.add_argument("--requested-by", help=f"who asks (default: ${USER_ENV} or your login)")
    p.add_argument("--approval-timeout", type=int, metavar="SECONDS", help="how long approvers have")
    p.add_argument("--watch", action="store_true", help="follow the run until it ends")
    p.set_defaults(func=wrap(cmd_cluster))
