"""A thin typed wrapper over the Terraform CLI.

Written here rather than taken from ``python-terraform``: that package has been unmaintained since
2019 (no ``-json`` output, no saved-plan inspection, stringly typed results). This module shells
out to the ``terraform`` binary and reads its machine-readable output wherever it has one
(``-json`` diagnostics, ``show -json``, ``output -json``).

Every call runs with ``-no-color -input=false`` and ``TF_IN_AUTOMATION=1`` in the root module's
directory; providers are cached under ``~/.cache/stageflow/terraform-plugins``. Variables travel in
a private ``*.tfvars.json`` file, never on the command line where ``ps`` shows them. Values passed as
``SecretStr`` count as sensitive: they are scrubbed from anything this module raises or logs.
A saved plan file holds variable values in clear text, so plans are written owner-only (0600).

Errors are translated in one place, :func:`classify_terraform_error`:

    state lock held by another run                          -> StateLocked (retryable)
    network failures, throttling, 5xx from an API           -> TerraformUnavailable (retryable)
    a saved plan that no longer matches the state           -> StalePlan (terminal: plan again)
    anything else                                            -> TerraformFailed (terminal), with
                                                               Terraform's own error summaries

Example::

    tf = Terraform(Path("infra/terraform/shop/cart"), env={"AWS_REGION": "eu-west-1"})
    tf.init()
    summary = tf.plan(Path("/private/cart.tfplan"), {"identifier": "shop-cart"})
    if summary.has_changes:
        tf.apply(Path("/private/cart.tfplan"))   # exactly that plan, after a human approved it
    print(tf.output()["endpoint"])
"""
from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, SecretStr, computed_field

from stageflow.errors import RetryableError, StageflowError, TerminalError
from stageflow.local.tools import tool

__all__ = [
    "Terraform", "PlanSummary", "TerraformFailed", "StateLocked", "TerraformUnavailable", "StalePlan",
    "terraform_binary", "plugin_cache_dir", "classify_terraform_error",
]

log = logging.getLogger(__name__)

# Creating a Multi-AZ RDS instance takes 20-40 minutes; reads are quick.
_APPLY_TIMEOUT_S = 3 * 3600.0
_PLAN_TIMEOUT_S = 1800.0
_READ_TIMEOUT_S = 300.0


class TerraformFailed(TerminalError):
    """Terraform refused or failed; ``diagnostics`` holds its error summaries (sensitive values scrubbed)."""

    def __init__(self, message: str, diagnostics: list[str] | None = None):
        self.diagnostics = list(diagnostics or [])
        super().__init__(message)


class StalePlan(TerminalError):
    """The saved plan no longer matches the state (something applied in between): plan again."""


class StateLocked(RetryableError):
    """Another Terraform run holds the state lock."""


class TerraformUnavailable(RetryableError):
    """A backend or provider API could not be reached, throttled us or failed on its side."""


class PlanSummary(BaseModel):
    """What a saved plan would do, by resource address (from ``terraform show -json``)."""

    model_config = ConfigDict(frozen=True)
    add: list[str] = []
    change: list[str] = []
    destroy: list[str] = []
    replace: list[str] = []
    outputs_changed: list[str] = []
    destroy_plan: bool = False  # made with -destroy: everything in the state goes

    @computed_field  # type: ignore[prop-decorator]
    @property
    def has_changes(self) -> bool:
        return bool(self.add or self.change or self.destroy or self.replace or self.outputs_changed)


def terraform_binary() -> str:
    """``$STAGEFLOW_TERRAFORM``, else the tools cache, else ``terraform`` on PATH."""
    explicit = os.environ.get("STAGEFLOW_TERRAFORM")
    if explicit:
        if not (os.path.isfile(explicit) and os.access(explicit, os.X_OK)):
            raise TerminalError(f"STAGEFLOW_TERRAFORM={explicit} is not an executable file")
        return explicit
    return tool("terraform")


def plugin_cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "stageflow" / "terraform-plugins"


class Terraform:
    """One root module directory. ``env`` is added to this process's environment (cloud
    credentials and endpoints come from there, never from files in the root module)."""

    def __init__(self, root: Path, *, env: dict[str, str] | None = None, binary: str | None = None,
                 log_output: Callable[[str], None] | None = None, lock_timeout: str = "60s"):
        self.root = Path(root)
        self.lock_timeout = lock_timeout  # how long to wait for another run's state lock
        self.binary = binary or terraform_binary()
        self._log = log_output or log.debug
        cache = plugin_cache_dir()
        cache.mkdir(parents=True, exist_ok=True)
        # STAGEFLOW_PYTHON: the interpreter the stand-in modules' provisioners run (terraform/standins).
        self._env = {**os.environ, "TF_PLUGIN_CACHE_DIR": str(cache), "STAGEFLOW_PYTHON": sys.executable,
                     **(env or {}), "TF_IN_AUTOMATION": "1", "TF_INPUT": "0", "CHECKPOINT_DISABLE": "1"}
        config_file = self._env.get("TF_CLI_CONFIG_FILE")
        if config_file and not Path(config_file).exists():
            # A CLI config named but missing only makes Terraform warn on every command.
            del self._env["TF_CLI_CONFIG_FILE"]
        self._sensitive: set[str] = set()

    def redact(self, values: dict[str, Any] | list[Any]) -> None:
        """Scrub every ``SecretStr`` found in ``values`` from what this instance raises or logs (``plan``
        does this for its own variables; an ``apply`` in another process needs to be told)."""
        _unwrapped(values, self._sensitive)

    def init(self, backend_config: dict[str, str] | None = None) -> None:
        """``terraform init``; backend settings (bucket, key, path) go in as ``-backend-config``."""
        args = ["init", "-json", "-upgrade=false"]
        args += [f"-backend-config={k}={v}" for k, v in sorted((backend_config or {}).items())]
        self._run(args, timeout=_PLAN_TIMEOUT_S, what="terraform init")

    def plan(self, out: Path, variables: dict[str, Any], *, destroy: bool = False) -> PlanSummary:
        """Write a saved plan to ``out`` and summarise it. ``SecretStr`` values are sensitive."""
        out = Path(out).resolve()
        out.parent.mkdir(parents=True, exist_ok=True)
        with _var_file(variables, self._sensitive) as var_file:
            args = ["plan", "-json", f"-lock-timeout={self.lock_timeout}", f"-out={out}", f"-var-file={var_file}"]
            self._run(args + (["-destroy"] if destroy else []), timeout=_PLAN_TIMEOUT_S, what="terraform plan")
        out.chmod(0o600)
        return self.show_plan(out).model_copy(update={"destroy_plan": destroy})

    def show_plan(self, plan: Path) -> PlanSummary:
        data = json.loads(self._run(["show", "-json", str(Path(plan).resolve())],
                                    timeout=_READ_TIMEOUT_S, what="terraform show", data=True).stdout)
        return summarise_plan(data)

    def apply(self, plan: Path) -> None:
        """Apply exactly the saved plan (no new plan is made, nothing else is applied)."""
        args = ["apply", "-json", f"-lock-timeout={self.lock_timeout}", "-auto-approve", str(Path(plan).resolve())]
        self._run(args, timeout=_APPLY_TIMEOUT_S, what="terraform apply")

    def output(self) -> dict[str, Any]:
        """The root module's outputs; sensitive ones as ``SecretStr``."""
        proc = self._run(["output", "-json"], timeout=_READ_TIMEOUT_S, what="terraform output", data=True)
        data = json.loads(proc.stdout or "{}")
        return {name: _secret(o.get("value")) if o.get("sensitive") else o.get("value") for name, o in data.items()}

    def validate(self) -> None:
        """``terraform validate`` (needs ``init``, with ``backend_config`` or ``-backend=false``)."""
        proc = self._run(["validate", "-json"], timeout=_READ_TIMEOUT_S, what="terraform validate", check=False)
        result = json.loads(proc.stdout or "{}")
        if not result.get("valid"):
            errors = [d for d in result.get("diagnostics") or [] if d.get("severity") == "error"]
            raise classify_terraform_error(
                [f"{d.get('summary', '')}: {_short_detail(str(d.get('detail') or ''))}" for d in errors]
                or _diagnostics(proc.stdout, proc.stderr), "terraform validate", scrub=self._scrub)

    def init_without_backend(self) -> None:
        """``init -backend=false``: enough for ``validate``; providers still have to be reachable."""
        self._run(["init", "-json", "-backend=false"], timeout=_PLAN_TIMEOUT_S, what="terraform init")

    def state_list(self) -> list[str]:
        proc = self._run(["state", "list"], timeout=_READ_TIMEOUT_S, what="terraform state list", no_state_ok=True)
        return [line.strip() for line in proc.stdout.splitlines() if line.strip()]

    def version(self) -> str:
        return str(json.loads(self._run(["version", "-json"], timeout=_READ_TIMEOUT_S,
                                        what="terraform version").stdout)["terraform_version"])

    # -- running the binary ----------------------------------------------------------------------
    def _run(self, args: list[str], *, timeout: float, what: str, no_state_ok: bool = False,
             check: bool = True, data: bool = False) -> subprocess.CompletedProcess[str]:
        """``data``: stdout is a document (``output -json`` holds sensitive outputs in clear, ``show -json``
        a plan's variables): it is returned but never logged."""
        # Flags go after the whole command name: `state list -no-color`, not `state -no-color list`.
        words = 2 if args[0] in ("state", "workspace", "providers") and len(args) > 1 else 1
        cmd = [self.binary, *args[:words], "-no-color", *(["-input=false"] if _takes_input(args[0]) else []),
               *args[words:]]
        try:
            proc = subprocess.run(cmd, cwd=self.root, env=self._env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            # Terraform got SIGKILL: a remote state lock may be left behind (`terraform force-unlock`).
            raise TerraformFailed(f"{what} did not finish within {timeout:.0f}s (in {self.root})") from exc
        except OSError as exc:
            raise TerminalError(f"cannot run {self.binary}: {exc}") from exc
        shown = "" if data else self._scrub(_human(proc.stdout))
        self._log(f"$ terraform {' '.join(args[:words])} (exit {proc.returncode})\n"
                  f"{shown}{self._scrub(proc.stderr)}".rstrip())
        if proc.returncode != 0 and check:
            if no_state_ok and "No state file was found" in proc.stderr:
                return proc
            raise classify_terraform_error(_diagnostics(proc.stdout, proc.stderr), what, scrub=self._scrub)
        return proc

    def _scrub(self, text: str) -> str:
        for value in sorted(self._sensitive, key=len, reverse=True):
            text = text.replace(value, "(sensitive value)")
        return text


# -- error translation -------------------------------------------------------------------------
_LOCKED = re.compile(r"Error acquiring the state lock|state lock|ConditionalCheckFailedException", re.IGNORECASE)
_STALE = re.compile(r"Saved plan is stale", re.IGNORECASE)
_UNAVAILABLE = re.compile(
    r"connection refused|connection reset|i/o timeout|TLS handshake timeout|no such host|network is unreachable"
    r"|could not connect to|context deadline exceeded|timeout awaiting response headers"
    r"|EndpointConnectionError|Throttling|Rate exceeded|RequestLimitExceeded|TooManyRequests|SlowDown"
    r"|StatusCode: 5\d\d|status code:? 5\d\d|\b50[234]\b[^\n]*(Bad Gateway|Service Unavailable|Gateway Timeout)"
    r"|InternalServerError|ServiceUnavailable|InternalFailure",
    re.IGNORECASE,
)


def classify_terraform_error(diagnostics: list[str], what: str, *,
                             scrub: Callable[[str], str] = lambda s: s) -> StageflowError:
    """The Stageflow exception for a failed Terraform command, from its error diagnostics."""
    clean = [scrub(d) for d in diagnostics] or ["(terraform printed no error)"]
    text = "\n".join(clean)
    message = f"{what} failed:\n" + "\n".join(f"  - {d}" for d in clean)
    if _STALE.search(text):
        return StalePlan(message)
    if _LOCKED.search(text):
        return StateLocked(message)
    if _UNAVAILABLE.search(text):
        return TerraformUnavailable(message)
    return TerraformFailed(message, clean)


def _diagnostics(stdout: str, stderr: str) -> list[str]:
    """Error summaries: from ``-json`` diagnostic lines when there are any, else the ``Error:`` blocks."""
    found: list[str] = []
    for line in stdout.splitlines():
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        diag = event.get("diagnostic") if isinstance(event, dict) else None
        if diag and diag.get("severity") == "error":
            detail = _short_detail(str(diag.get("detail") or ""))
            found.append(f"{diag.get('summary', '').strip()}" + (f": {detail}" if detail else ""))
    if found:
        return found
    # Commands without -json (state list, output, show) print "Error: <summary>\n\n<detail>" blocks;
    # boxed warnings (a missing CLI config file, deprecations) are not the failure.
    stderr = re.sub(r"^There are some problems with the CLI configuration:\n", "", stderr, flags=re.MULTILINE)
    stderr = re.sub(r"╷\n│ Warning: .*?╵\n?", "", stderr, flags=re.DOTALL)
    blocks = re.split(r"^(?:│\s*)?Error: ", stderr, flags=re.MULTILINE)[1:]
    return [" ".join(b.replace("│", " ").replace("╵", " ").replace("╷", " ").split()) for b in blocks] or (
        [" ".join(stderr.split())[:2000]] if stderr.strip() else [])


# A failed provisioner's detail repeats its whole script before the output that explains the failure.
_PROVISIONER = re.compile(r"^Error running command '.*': (exit status \d+)\. Output: (.*)$", re.DOTALL)


def _short_detail(detail: str) -> str:
    match = _PROVISIONER.match(detail)
    if match:
        detail = f"command failed ({match.group(1)}): {match.group(2)}"
    return " ".join(detail.split())


def _human(stdout: str) -> str:
    """The ``@message`` lines of a ``-json`` stream (what a person would have seen), else stdout as is."""
    lines = []
    for line in stdout.splitlines():
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            return stdout
        if isinstance(event, dict) and event.get("@message"):
            lines.append(str(event["@message"]))
        elif not isinstance(event, dict):
            return stdout
    return "\n".join(lines) + ("\n" if lines else "")


def _takes_input(command: str) -> bool:
    return command in ("init", "plan", "apply", "import", "refresh", "destroy")


def _secret(value: Any) -> SecretStr:
    return SecretStr(value if isinstance(value, str) else json.dumps(value))


class _var_file:
    """A private ``*.tfvars.json`` holding the variables, removed afterwards. SecretStr values are
    unwrapped into the file and remembered so that output can be scrubbed of them."""

    def __init__(self, variables: dict[str, Any], sensitive: set[str]):
        self._values = {k: _unwrapped(v, sensitive) for k, v in variables.items()}
        self._path: Path | None = None

    def __enter__(self) -> Path:
        fd, name = tempfile.mkstemp(prefix="stageflow-", suffix=".tfvars.json")  # created 0600
        with os.fdopen(fd, "w") as fh:
            json.dump(self._values, fh)
        self._path = Path(name)
        return self._path

    def __exit__(self, *_: object) -> None:
        if self._path is not None:
            self._path.unlink(missing_ok=True)


def _unwrapped(value: Any, sensitive: set[str]) -> Any:
    if isinstance(value, SecretStr):
        raw = value.get_secret_value()
        if raw:
            sensitive.add(raw)
        return raw
    if isinstance(value, dict):
        return {k: _unwrapped(v, sensitive) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_unwrapped(v, sensitive) for v in value]
    return value


def summarise_plan(data: dict[str, Any]) -> PlanSummary:
    """``terraform show -json <plan>`` -> addresses per action; reads (data sources) are not changes."""
    buckets: dict[str, list[str]] = {"add": [], "change": [], "destroy": [], "replace": []}
    for rc in data.get("resource_changes") or []:
        actions = tuple(rc.get("change", {}).get("actions") or ())
        bucket = _bucket(actions)
        if bucket:
            buckets[bucket].append(str(rc["address"]))
    outputs = [name for name, change in (data.get("output_changes") or {}).items()
               if _bucket(tuple(change.get("actions") or ())) is not None]
    return PlanSummary(**{k: sorted(v) for k, v in buckets.items()}, outputs_changed=sorted(outputs))


def _bucket(actions: tuple[str, ...]) -> str | None:
    if set(actions) == {"create", "delete"}:
        return "replace"
    return {("create",): "add", ("update",): "change", ("delete",): "destroy"}.get(actions)

