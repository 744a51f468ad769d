"""``stageflow dev connect``: the EW stage (see stageflow/devloop.py)."""
from __future__ import annotations

import argparse
import shutil
import subprocess
from typing import Callable

from stageflow.devloop import check_target, telepresence_commands
from stageflow.errors import TerminalError


def cmd_dev_connect(args: argparse.Namespace, out: Callable[[str], None], use_platform) -> int:
    check_target(args.app, args.service, args.namespace)  # a prod namespace is refused before anything else
    commands = telepresence_commands(args.app, args.service, port=args.port, local_port=args.local_port,
                                     target_namespace=args.namespace, env_file=args.env_file)
    for argv in commands:
        out("$ " + " ".join(argv))
    if args.dry_run:
        return 0
    if shutil.which("telepresence") is None:
        raise TerminalError("telepresence is not installed here: the service's Dev Container has it (make "
                            "intercept), or install Telepresence 2 and run the commands above")
    for argv in commands:
        done = subprocess.run(argv)
        if done.returncode != 0:
            raise TerminalError(f"{' '.join(argv[:2])} failed with exit code {done.returncode}")
    out(f"intercepting {args.service} in {args.app}-test: start the service locally on port "
        f"{args.local_port or args.port}; `telepresence leave {args.service}` and `telepresence quit` end it")
    return 0


def add_parsers(sub, fmt, wrap) -> None:
    p = sub.add_parser("dev", help="the EW stage: run one service locally inside Test (Telepresence)")
    dev_sub = p.add_subparsers(dest="dev_command", required=True, metavar="SUBCOMMAND")
    p = dev_sub.add_parser("connect", help="connect to <app>-test and intercept a service", formatter_class=fmt,
                           description="Runs `telepresence connect --namespace <app>-test` and `telepresence "
                                       "intercept SERVICE --port LOCAL:PORT`, printing each command first. Only the "
                                       "app's Test namespace is ever a target: a prod namespace is refused.",
                           epilog="example: stageflow dev connect shop orders --port 8080 --dry-run")
    p.add_argument("app", help="application name")
    p.add_argument("service", help="service to intercept")
    p.add_argument("--port", type=int, default=8080, help="the service's port in the cluster (default: 8080)")
    p.add_argument("--local-port", type=int, help="where your local process listens (default: --port)")
    p.add_argument("--namespace", help="must be <app>-test (the default); anything else is refused")
    p.add_argument("--env-file", help="write the intercepted pod's environment to this file")
    p.add_argument("--dry-run", action="store_true", help="only print the commands")
    p.set_defaults(func=wrap(cmd_dev_connect))
