"""The ``stageflow`` command. ``stageflow --help`` and ``stageflow COMMAND --help`` say the rest."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from stageflow.errors import Problem, StageflowError, ValidationFailed
from stageflow.settings import PlatformSettings, load_settings, stageflow_home

EPILOG = """\
The embedded platform lives under $STAGEFLOW_HOME (default: ./.stageflow): Prefect server
(UI at http://127.0.0.1:4200), a local git forge, an OCI registry on 127.0.0.1:5000, a Docker
engine and a Kubernetes control plane (kubeconfig: $STAGEFLOW_HOME/kube/kubeconfig).

Typical session:
  stageflow up                                   start everything (`make setup` builds the tools once)
  stageflow demo                                 sample service built, pushed and rolled out to demo-test
  stageflow deploy shop orders --commit 3f2a9c1  roll the image tagged 3f2a9c1 out to shop-test
  stageflow status --app shop                    what runs where, and whether it drifted
  stageflow release shop orders v1.4.0 --watch   promote a tested version to shop-prod (waits for approval)
  stageflow approve RUN_ID --reason "looks good" approve it (an approver of the app, not the requester)
  eval "$(stageflow env)"; kubectl get pods -A   kubectl, helm, prefect against the platform
  stageflow down                                 stop everything (state is kept)

Exit codes: 0 ok, 1 failed (errors listed), 2 bad command line.
"""


def _out(text: str) -> None:
    print(text, flush=True)


def _err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _use_platform(settings: PlatformSettings) -> None:
    """Point Prefect at the embedded server before any flow module imports it."""
    from stageflow.local.prefect_server import prefect_env

    os.environ.update(prefect_env(settings.home, settings.prefect_api_url))
    os.environ["STAGEFLOW_HOME"] = str(settings.home)


# -- commands -------------------------------------------------------------------------------------
def cmd_up(args: argparse.Namespace) -> int:
    from stageflow.local.platform import EmbeddedPlatform

    ports = None
    if args.port:
        from stageflow.settings import Ports

        home = stageflow_home()
        base = EmbeddedPlatform(home).ports.model_dump()
        for item in args.port:
            name, _, value = item.partition("=")
            if name not in base or not value.isdigit() or not 0 < int(value) < 65536:
                raise ValidationFailed(Problem("--port", f"must be NAME=PORT with NAME one of {', '.join(base)} "
                                                         f"and PORT in 1-65535 (got {item!r})"))
            base[name] = int(value)
        ports = Ports(**base)
    settings = EmbeddedPlatform(stageflow_home(), ports).up(progress=_out)
    _out(f"kubeconfig: {settings.kubeconfig}\nregistry:   {settings.registry}\nprefect:    {settings.prefect_api_url}")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    from stageflow.local.platform import EmbeddedPlatform

    EmbeddedPlatform(stageflow_home()).down(progress=_out)
    return 0


def cmd_env(args: argparse.Namespace) -> int:
    """Shell exports for kubectl, Helm and Prefect's CLI against the embedded platform."""
    import shlex

    from stageflow.local.tools import tools_bin

    settings = load_settings()
    exports = {
        "STAGEFLOW_HOME": str(settings.home),
        "KUBECONFIG": str(settings.kubeconfig),
        "PREFECT_API_URL": settings.prefect_api_url,
        "PATH": f"{tools_bin()}:{os.environ.get('PATH', '')}",
    }
    if settings.docker_host:
        exports["DOCKER_HOST"] = settings.docker_host
    for key, value in exports.items():
        _out(f"export {key}={shlex.quote(value)}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from stageflow.local.demo import run_demo

    return run_demo(stageflow_home(), app=args.app, service=args.service, progress=_out)


def cmd_deploy(args: argparse.Namespace) -> int:
    from stageflow.requests import BuildToTestRequest

    BuildToTestRequest(args.app, args.service, args.commit, args.image).validate()  # fail before starting anything
    settings = load_settings()
    _use_platform(settings)
    from flows.build_to_test import build_to_test

    summary = build_to_test(app=args.app, service=args.service, commit=args.commit, image=args.image)
    _out(f"{summary.app}/{summary.service} Ready in {summary.namespace}: {summary.ready}/{summary.desired} "
         f"at {summary.digest} (Helm revision {summary.helm_revision})")
    return 0


def cmd_sync(args: argparse.Namespace) -> int:
    from stageflow.requests import SyncStageRequest

    SyncStageRequest(args.app, args.stage).validate()
    settings = load_settings()
    _use_platform(settings)
    from flows.sync_stage import sync_stage

    result = sync_stage(app=args.app, stage=args.stage)
    _out(f"{args.app}-{args.stage} matches infra commit {result.infra_commit[:12]}: "
         f"{len(result.changed)} of {len(result.services)} services changed")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from stageflow.adapters.forge.factory import forge_from_settings
    from stageflow.gitops import InfraRepo
    from stageflow.spec import load_spec
    from stageflow.status import collect_status, render_table

    settings = load_settings()
    repo = forge_from_settings(settings).get_repo(settings.infra_repo)
    infra = InfraRepo(repo.clone_url, settings.workdir / "status" / "infra")
    rows = collect_status(load_spec(infra.sync()), settings.kubeconfig, app=args.app)
    if args.output == "json":
        _out(json.dumps([r.model_dump(exclude={"reason"}) for r in rows], indent=2))
    else:
        _out(render_table(rows))
        from stageflow.cli_drift import last_drift

        _out(last_drift(settings, _use_platform))
    return 0


def cmd_onboard(args: argparse.Namespace) -> int:
    import getpass

    from stageflow.onboarding.request import OnboardRequest

    # Without --owner, the person running the command owns the service (the flow itself insists on one).
    owners = args.owner or [getpass.getuser()]
    # Bad input fails here, before the platform or Prefect is touched.
    OnboardRequest(args.app, args.service, owners, args.template, args.port, args.database).validate()
    settings = load_settings()
    _use_platform(settings)
    from flows.onboard_service import onboard_service

    summary = onboard_service(app=args.app, service=args.service, owners=owners, template=args.template,
                              port=args.port, database=args.database, auto_merge=not args.no_auto_merge)
    if summary.already_onboarded:
        _out(f"{summary.app}/{summary.service} is already onboarded: nothing changed")
    else:
        _out(f"{summary.app}/{summary.service} onboarded: {'; '.join(summary.changed)}")
    _out(f"repository: {summary.repository_url}\ninfra PR:   #{summary.infra_pr} ({summary.infra_state})\n"
         f"namespaces: {', '.join(summary.namespaces)}")
    return 0


def cmd_update_template(args: argparse.Namespace) -> int:
    from stageflow.onboarding.request import validate_update_target

    validate_update_target(args.app, args.service)  # before Prefect is imported or the platform touched
    settings = load_settings()
    _use_platform(settings)
    from flows.update_service_template import update_service_template

    results = update_service_template(app=args.app, service=args.service)
    for r in results:
        pr = f" PR #{r.pr_number}" if r.pr_number else ""
        conflicts = f"  CONFLICTS: {', '.join(r.conflicts)}" if r.conflicts else ""
        _out(f"{r.repository}: {r.state}{pr} {r.from_version or ''}->{r.to_version or ''}{conflicts}".rstrip())
    return 0


def cmd_spec_validate(args: argparse.Namespace) -> int:
    from stageflow.spec import validate_tree

    root = Path(args.path)
    if not root.is_dir():
        _err(f"{root}: not a directory (give the path of an infrastructure repo checkout)")
        return 1
    problems = validate_tree(root)
    if problems:
        _err(f"{root}: {len(problems)} problem(s)")
        for p in problems:
            _err(f"  - {p}")
        return 1
    _out(f"{root}: valid")
    return 0


# -- parser ---------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(prog="stageflow", description="Stageflow: Prefect flows that run a staged "
                                     "microservice platform on Kubernetes.", epilog=EPILOG, formatter_class=fmt)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("up", help="start the embedded platform (adopts what already runs)", formatter_class=fmt,
                       description="Start Prefect server, forge, OCI registry, Docker engine and the Kubernetes "
                                   "control plane under $STAGEFLOW_HOME. Safe to run again.",
                       epilog="ports (defaults): prefect=4200 registry=5000 apiserver=6443 etcd_client=2379 "
                              "etcd_peer=2380; once chosen they are kept in $STAGEFLOW_HOME/platform.json")
    p.add_argument("--port", action="append", metavar="NAME=PORT", help="use another port for a component")
    p.set_defaults(func=cmd_up)
    p = sub.add_parser("down", help="stop everything `up` started (state is kept)")
    p.set_defaults(func=cmd_down)

    p = sub.add_parser("env", help="print shell exports for kubectl, helm and prefect: eval \"$(stageflow env)\"")
    p.set_defaults(func=cmd_env)

    p = sub.add_parser("demo", help="bring the platform up and roll a sample service out to <app>-test",
                       description="Brings the platform up, creates a sample app and service (a repository with a "
                                   "Dockerfile), builds and pushes its image with the real Docker engine, runs "
                                   "build-to-test and prints the status table. Exits 0 only if the service is "
                                   "Ready in <app>-test.")
    p.add_argument("--app", default="demo", help="sample app name (default: demo)")
    p.add_argument("--service", default="hello", help="sample service name (default: hello)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("deploy", help="run build-to-test: roll a commit's image out to <app>-test",
                       description="Resolve IMAGE:COMMIT to a digest, record it in the infrastructure repo, "
                                   "helm upgrade into <app>-test pinned by digest, wait until Ready and verify.",
                       epilog="example: stageflow deploy shop orders --commit 3f2a9c1e", formatter_class=fmt)
    p.add_argument("app", help="application name, e.g. shop")
    p.add_argument("service", help="service name, e.g. orders")
    p.add_argument("--commit", required=True, help="source commit sha: the image tag CI pushed")
    p.add_argument("--image", help="explicit image reference (repo:tag or repo@sha256:...); default: the "
                                   "service's image repository from the infra repo, tagged with --commit")
    p.set_defaults(func=cmd_deploy)

    p = sub.add_parser("sync", help="run sync-stage: make an app stage match the infrastructure repo")
    p.add_argument("app", help="application name")
    p.add_argument("--stage", default="test", choices=["test", "prod"], help="stage (default: test)")
    p.set_defaults(func=cmd_sync)

    p = sub.add_parser("status", help="per app/service/stage: digest, Helm revision, ready/desired, drift",
                       description="Compare the infrastructure repo with the cluster. JSON output is a list of "
                                   "objects with keys app, service, stage, digest, helm_revision, ready, desired, drift.")
    p.add_argument("--app", help="only this application")
    p.add_argument("--output", choices=["table", "json"], default="table", help="output format (default: table)")
    p.set_defaults(func=cmd_status)

    from stageflow.cli_drift import cmd_drift

    p = sub.add_parser("drift", help="run detect-drift: report (or --heal) where the cluster differs from the repo",
                       description="Compares every app stage with the infrastructure repo: Helm releases, chart "
                                   "versions, image digests, replicas and the namespace policies of "
                                   "ensure-app-stages. Exit 0 when nothing differs, 1 when drift remains.")
    p.add_argument("--app", help="only this application")
    p.add_argument("--heal", action="store_true", help="make the cluster match the repo again, then check again")
    p.set_defaults(func=lambda args: cmd_drift(args, _out, _use_platform))

    p = sub.add_parser("onboard", help="run onboard-service: a new service repository, registered on the platform",
                       description="Renders the service template into a new repository <app>-<service>, configures "
                                   "it (branch protection, CI variables), registers the service in the infrastructure "
                                   "repo through a pull request (merged unless --no-auto-merge) and ensures the "
                                   "namespaces <app>-test and <app>-prod. Safe to run again.",
                       epilog="example: stageflow onboard shop orders --owner alice --database postgres",
                       formatter_class=fmt)
    p.add_argument("app", help="application name, e.g. shop (created if new)")
    p.add_argument("service", help="new service name, e.g. orders")
    p.add_argument("--owner", action="append", metavar="LOGIN", help="owner (repeat): CODEOWNERS and, for a new "
                                                                     "app, its owners and approvers (default: you)")
    p.add_argument("--template", default="python", help="service template (default: python)")
    p.add_argument("--port", type=int, default=8080, help="port the service listens on (default: 8080)")
    p.add_argument("--database", default="none", choices=["none", "postgres", "mongodb"],
                   help="database per stage (default: none)")
    p.add_argument("--no-auto-merge", action="store_true", help="leave the infra pull request open for review")
    p.set_defaults(func=cmd_onboard)

    p = sub.add_parser("update-template", help="run update-service-template: PRs with the newest service template",
                       description="For every service rendered from a template (or one), runs copier update to the "
                                   "newest template version and opens a pull request in its repository; conflicts "
                                   "are listed in the PR. Safe to run again: open PRs are adopted.")
    p.add_argument("app", nargs="?", help="only the services of this app")
    p.add_argument("service", nargs="?", help="only this service")
    p.set_defaults(func=cmd_update_template)

    from stageflow import cli_db, cli_dev, cli_platform, cli_release

    def wrap(command):
        return lambda args: command(args, _out, _use_platform)

    cli_release.add_parsers(sub, fmt, wrap)
    cli_db.add_parsers(sub, fmt, wrap)
    cli_dev.add_parsers(sub, fmt, wrap)
    cli_platform.add_parsers(sub, fmt, wrap)

    p = sub.add_parser("spec", help="work with infrastructure repo specs")
    spec_sub = p.add_subparsers(dest="spec_command", required=True, metavar="SUBCOMMAND")
    v = spec_sub.add_parser("validate", help="validate a checkout of an infrastructure repo (exit 1 on errors)",
                            description="Checks every file against the platform model: names, namespaces, "
                                        "image references, digests, unknown keys, cross-file rules. Each error "
                                        "names the file, the field and the rule.")
    v.add_argument("path", help="path of the infrastructure repo checkout")
    v.set_defaults(func=cmd_spec_validate)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ValidationFailed as exc:
        _err(f"error: {exc}")
        return 1
    except StageflowError as exc:
        _err(f"error: {exc}")
        return 1
    except KeyboardInterrupt:
        _err("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
