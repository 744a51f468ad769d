"""A thin typed wrapper over the Helm CLI.

Every call passes ``--kubeconfig`` explicitly (a stray ``~/.kube/config`` must never decide where a
release lands) and reads ``--output json`` wherever Helm offers it. Values travel in a private temp
file, never on the command line, where ``ps`` would show them to every user of the machine.

Helm's stderr is translated into Stageflow's error tree in one place, :func:`classify_helm_error`:

    chart renders badly, values break the schema, manifests are invalid  -> ChartError (terminal)
    API server unreachable / overloaded / timing out                      -> ClusterUnavailable (retryable)
    another install/upgrade/rollback holds the release                    -> ReleaseBusy (retryable)
    --wait ran out of time while the API answered                         -> ReleaseNotReady (terminal)
    anything else                                                          -> TerminalError with Helm's message

Example::

    helm = Helm(Path("~/.stageflow/kube/kubeconfig").expanduser())
    values = {"image": {"repository": "registry.local:5000/shop/cart", "digest": digest}}
    if helm.needs_upgrade("cart", "shop-dev", chart_version(CHART), values):
        helm.upgrade_install("cart", CHART, "shop-dev", values)
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from stageflow.errors import NotFound, RetryableError, StageflowError, TerminalError
from stageflow.local.tools import tool

__all__ = [
    "Helm", "HelmRelease", "HelmRevision", "ChartError", "ClusterUnavailable", "ReleaseBusy", "ReleaseNotReady",
    "helm_binary", "chart_version", "classify_helm_error",
]

# Helm commands that only read return quickly; anything that waits gets its own --timeout plus this.
_READ_TIMEOUT_S = 120.0
_WAIT_MARGIN_S = 60.0


class ClusterUnavailable(RetryableError):
    """The Kubernetes API server cannot be reached or is not answering properly right now."""


class ChartError(TerminalError):
    """The chart does not render or validate with the given values; Helm's message says why."""


class ReleaseBusy(RetryableError):
    """Another install/upgrade/rollback of the release is in progress."""


class ReleaseNotReady(TerminalError):
    """``--wait`` ran out of time: the release's resources did not become ready (the API did answer)."""


@dataclass(frozen=True)
class HelmRelease:
    name: str
    namespace: str
    revision: int
    status: str  # deployed, failed, pending-install, pending-upgrade, ...
    chart: str  # "<name>-<version>", as `helm list` prints it
    app_version: str
    updated: str = ""

    @property
    def chart_version(self) -> str:
        # Chart names may contain dashes, versions are SemVer: split on the last "-<digit>".
        # Some charts put a "v" in front (cert-manager's "cert-manager-v1.16.2").
        match = re.match(r"^(.*)-(v?\d+\.\d+\.\d+.*)$", self.chart)
        return match.group(2) if match else ""


@dataclass(frozen=True)
class HelmRevision:
    revision: int
    status: str
    chart: str
    app_version: str
    updated: str
    description: str


def helm_binary() -> str:
    """``$STAGEFLOW_HELM``, else the tools cache scripts/build-tools.sh fills, else ``helm`` on PATH."""
    explicit = os.environ.get("STAGEFLOW_HELM")
    if explicit:
        if not (os.path.isfile(explicit) and os.access(explicit, os.X_OK)):
            raise TerminalError(f"STAGEFLOW_HELM={explicit} is not an executable file")
        return explicit
    return tool("helm")


def chart_version(chart_dir: Path) -> str:
    """The version a local chart directory declares in its Chart.yaml."""
    return str(_chart_meta(chart_dir)["version"])


def _chart_meta(chart_dir: Path) -> dict[str, Any]:
    try:
        meta = yaml.safe_load((Path(chart_dir) / "Chart.yaml").read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ChartError(f"cannot read {chart_dir}/Chart.yaml: {exc}") from exc
    if not isinstance(meta, dict) or not meta.get("version") or not meta.get("name"):
        raise ChartError(f"{chart_dir}/Chart.yaml needs a name and a version")
    return meta


# -- error translation -----------------------------------------------------------------------
_CLUSTER_DOWN = re.compile(
    r"connection refused|Kubernetes cluster unreachable|the server is currently unable to handle the request"
    r"|context deadline exceeded|etcdserver: (request timed out|leader changed|too many requests)"
    r"|i/o timeout|no route to host|connection reset by peer|TLS handshake timeout|http2: client connection lost"
    r"|the server has asked for the client to try again later|Internal error occurred|an error on the server"
    r"|\b(50[0-4])\b[^\n]*(Internal Server Error|Bad Gateway|Service Unavailable|Gateway Timeout)"
    r"|status code:? 5\d\d|Too Many Requests",
    re.IGNORECASE,
)
# Helm reports a missing kubeconfig as "cluster unreachable", but no retry will create the file.
_KUBECONFIG_MISSING = re.compile(r"Kubernetes cluster unreachable: stat .*: no such file or directory")
_DEADLINE = re.compile(r"context deadline exceeded", re.IGNORECASE)
_BUSY = re.compile(r"another operation \(install/upgrade/rollback\) is in progress", re.IGNORECASE)
_CHART_BROKEN = re.compile(
    r"execution error|values don't meet the specifications of the schema|parse error|YAML parse error"
    r"|(INSTALLATION|UPGRADE) FAILED: .* is invalid|unable to build kubernetes objects from release manifest"
    r"|error validating data|template: |Chart\.yaml file is missing|chart requires kubeVersion"
    r"|path \".*\" not found|not a valid chart|\[(ERROR|WARNING)\]|chart\(s\) failed",
    re.IGNORECASE | re.DOTALL,
)
_RELEASE_MISSING = re.compile(r"release: not found|has no deployed releases", re.IGNORECASE)


def classify_helm_error(message: str, what: str, *, waited: bool = False) -> StageflowError:
    """Turn Helm's error output into the Stageflow exception a caller should see.

    The cluster checks come first: Helm wraps an unreachable API server inside other messages
    (``unable to build kubernetes objects ...: connection refused``) that would otherwise look
    like a broken chart. With ``waited`` (``--wait``), a bare "context deadline exceeded" means
    the resources never became ready, which another attempt would not change.
    """
    text = message.strip().removeprefix("Error: ") or "no output"
    if _KUBECONFIG_MISSING.search(text):
        return TerminalError(f"{what}: {text}")
    if waited and _DEADLINE.search(text) and not _CLUSTER_DOWN.search(_DEADLINE.sub("", text)):
        return ReleaseNotReady(f"{what}: resources not ready before the timeout: {text}")
    if _CLUSTER_DOWN.search(text):
        return ClusterUnavailable(f"{what}: Kubernetes API unavailable: {text}")
    if _BUSY.search(text):
        return ReleaseBusy(f"{what}: {text}")
    if _CHART_BROKEN.search(text):
        return ChartError(f"{what}: {text}")
    if _RELEASE_MISSING.search(text):
        return NotFound(f"{what}: {text}")
    return TerminalError(f"{what}: {text}")


# -- the client ------------------------------------------------------------------------------
class Helm:
    """Run Helm against one cluster. Methods return typed data and raise Stageflow errors only."""

    def __init__(self, kubeconfig: Path, *, binary: str | None = None):
        self.kubeconfig = Path(kubeconfig)
        self.binary = binary or helm_binary()

    # -- releases ----------------------------------------------------------------------------
    def upgrade_install(self, release: str, chart: Path | str, namespace: str, values: dict[str, Any], *,
                        create_namespace: bool = True, wait: bool = False, timeout: str = "5m",
                        version: str | None = None, plain_http: bool = False,
                        repo: str | None = None) -> HelmRelease:
        """Install the release, or upgrade it in place: the same call serves the first and every later run.

        ``chart`` is a local folder, an ``oci://`` reference (``plain_http`` for a registry without
        TLS, such as the embedded one) or, with ``repo`` (a chart repository URL), a chart name.
        """
        args = ["upgrade", "--install", release, str(chart), "--namespace", namespace,
                "--timeout", timeout, "--history-max", "10", "--output", "json"]
        if plain_http:
            args.append("--plain-http")
        if repo:
            args += ["--repo", repo]
        if create_namespace:
            args.append("--create-namespace")
        if wait:
            args.append("--wait")
        if version:
            args += ["--version", version]
        out = self._run(args, f"helm upgrade --install {release} in {namespace}", values=values,
                        timeout_s=_duration_s(timeout) + _WAIT_MARGIN_S, waited=wait)
        return _release_from_json(json.loads(out), namespace)

    def status(self, release: str, namespace: str) -> HelmRelease | None:
        """The release's current revision, or None when it is not installed."""
        # `helm status -o json` leaves out the chart; the newest history entry carries it.
        try:
            out = self._run(["history", release, "--namespace", namespace, "--max", "1", "--output", "json"],
                            f"helm status {release} in {namespace}")
        except NotFound:
            return None
        latest = max(_revisions(out), key=lambda r: r.revision, default=None)
        if latest is None:
            return None
        return HelmRelease(name=release, namespace=namespace, revision=latest.revision, status=latest.status,
                           chart=latest.chart, app_version=latest.app_version, updated=latest.updated)

    def history(self, release: str, namespace: str) -> list[HelmRevision]:
        """Every stored revision, oldest first; empty when the release is not installed."""
        try:
            out = self._run(["history", release, "--namespace", namespace, "--max", "256", "--output", "json"],
                            f"helm history {release} in {namespace}")
        except NotFound:
            return []
        return _revisions(out)

    def get_values(self, release: str, namespace: str, revision: int | None = None) -> dict[str, Any]:
        """The user-supplied values of a revision (the latest by default); NotFound if there is no release."""
        args = ["get", "values", release, "--namespace", namespace, "--output", "json"]
        if revision is not None:
            args += ["--revision", str(revision)]
        out = self._run(args, f"helm get values {release} in {namespace}")
        return json.loads(out) or {}

    def rollback(self, release: str, namespace: str, revision: int | None = None, *,
                 wait: bool = False, timeout: str = "5m") -> HelmRelease:
        """Roll back to ``revision`` (the previous one by default); Helm records it as a new revision."""
        args = ["rollback", release, *([str(revision)] if revision is not None else []),
                "--namespace", namespace, "--timeout", timeout]
        if wait:
            args.append("--wait")
        self._run(args, f"helm rollback {release} in {namespace}",
                  timeout_s=_duration_s(timeout) + _WAIT_MARGIN_S, waited=wait)
        current = self.status(release, namespace)
        if current is None:
            raise NotFound(f"helm rollback {release} in {namespace}: release vanished after the rollback")
        return current

    def uninstall(self, release: str, namespace: str) -> bool:
        """Remove the release; False when there was nothing to remove (safe to call twice)."""
        try:
            self._run(["uninstall", release, "--namespace", namespace, "--wait", "--timeout", "90s"],
                      f"helm uninstall {release} in {namespace}")
        except NotFound:
            return False
        return True

    def list_releases(self, namespace: str | None = None) -> list[HelmRelease]:
        """Releases in ``namespace`` (every namespace when None), whatever their status."""
        scope = ["--namespace", namespace] if namespace else ["--all-namespaces"]
        out = self._run(["list", *scope, "--all", "--max", "0", "--output", "json"],
                        f"helm list in {namespace or 'all namespaces'}")
        return [HelmRelease(name=r["name"], namespace=r["namespace"], revision=int(r["revision"]),
                            status=r.get("status", ""), chart=r.get("chart", ""),
                            app_version=r.get("app_version", ""), updated=r.get("updated", ""))
                for r in json.loads(out) or []]

    def needs_upgrade(self, release: str, namespace: str, chart_version: str, values: dict[str, Any], *,
                      current: HelmRelease | None = None) -> bool:
        """False only when the deployed revision already has this chart version and exactly these values.

        Lets a re-run with unchanged input skip ``upgrade_install`` so it creates no new revision.
        A release that is not ``deployed`` (failed, pending, ...) always needs another attempt.
        ``current`` saves a Helm call when the caller has just read the release's status.
        """
        current = current or self.status(release, namespace)
        if current is None or current.status != "deployed" or current.chart_version != chart_version:
            return True
        return self.get_values(release, namespace) != _as_helm_stores(values)

    # -- charts, no cluster needed -----------------------------------------------------------
    def push(self, chart_dir: Path, oci_repo: str, *, plain_http: bool) -> str:
        """Package a chart folder and push it to ``oci_repo`` (``oci://host/path``); returns the chart's
        reference, ``oci://host/path/<chart name>``, which ``upgrade_install`` takes with ``version``.

        Pushing the same version again replaces it in the registry, so the call is safe to repeat.
        """
        if not oci_repo.startswith("oci://"):
            raise TerminalError(f"helm push {chart_dir}: {oci_repo!r} is not an oci:// repository")
        meta = _chart_meta(Path(chart_dir))
        with tempfile.TemporaryDirectory(prefix="stageflow-chart-") as out:
            self._run(["package", str(chart_dir), "--destination", out], f"helm package {chart_dir}")
            archive = Path(out) / f"{meta['name']}-{meta['version']}.tgz"
            self._run(["push", str(archive), oci_repo.rstrip("/"), *(["--plain-http"] if plain_http else [])],
                      f"helm push {meta['name']} {meta['version']} to {oci_repo}")
        return f"{oci_repo.rstrip('/')}/{meta['name']}"

    def template(self, release: str, chart: Path | str, namespace: str, values: dict[str, Any]) -> str:
        """Render the chart locally (schema validation included) and return the manifests."""
        return self._run(["template", release, str(chart), "--namespace", namespace],
                         f"helm template {chart}", values=values)

    def lint(self, chart: Path | str, values: dict[str, Any]) -> None:
        """Run ``helm lint --strict``; ChartError carries every [ERROR]/[WARNING] line Helm found."""
        self._run(["lint", str(chart), "--strict"], f"helm lint {chart}", values=values)

    # -- plumbing ----------------------------------------------------------------------------
    def _run(self, args: list[str], what: str, *, values: dict[str, Any] | None = None,
             timeout_s: float = _READ_TIMEOUT_S, waited: bool = False) -> str:
        with tempfile.TemporaryDirectory(prefix="stageflow-helm-") as tmp:
            argv = [self.binary, *args, "--kubeconfig", str(self.kubeconfig)]
            if values is not None:
                argv += ["--values", _write_values(Path(tmp), values)]
            try:
                proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, check=False)
            except subprocess.TimeoutExpired as exc:
                raise ClusterUnavailable(f"{what}: helm did not finish within {timeout_s:.0f}s") from exc
            except OSError as exc:
                raise TerminalError(f"{what}: cannot run {self.binary}: {exc}") from exc
        if proc.returncode != 0:
            # lint reports its findings on stdout and only a summary on stderr.
            findings = _lint_findings(proc.stdout) if args[0] == "lint" else ""
            detail = "\n".join(part for part in (findings, proc.stderr.strip()) if part)
            error = classify_helm_error(detail, what, waited=waited)
            raise error from subprocess.CalledProcessError(proc.returncode, args[:1], proc.stdout, proc.stderr)
        return proc.stdout


def _write_values(folder: Path, values: dict[str, Any]) -> str:
    # JSON is YAML: no YAML dumper quirks (e.g. "on"/"no"), and readable only by us (0600).
    path = folder / "values.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(values, handle)
    return str(path)


def _as_helm_stores(values: dict[str, Any]) -> dict[str, Any]:
    # Helm keeps user values as parsed JSON, so compare against the same JSON round trip
    # (tuples become lists, keys become strings).
    return json.loads(json.dumps(values))


def _lint_findings(stdout: str) -> str:
    # Keep the findings (an [ERROR] may span several lines); drop the banner and [INFO] advice.
    return "\n".join(line.rstrip() for line in stdout.splitlines()
                     if line.strip() and not line.startswith("==> ") and "[INFO]" not in line)


def _revisions(history_json: str) -> list[HelmRevision]:
    return [HelmRevision(revision=int(r["revision"]), status=r.get("status", ""), chart=r.get("chart", ""),
                         app_version=r.get("app_version", ""), updated=r.get("updated", ""),
                         description=r.get("description", ""))
            for r in json.loads(history_json) or []]


def _release_from_json(data: dict[str, Any], namespace: str) -> HelmRelease:
    meta = (data.get("chart") or {}).get("metadata") or {}
    info = data.get("info") or {}
    return HelmRelease(name=data["name"], namespace=data.get("namespace") or namespace,
                       revision=int(data["version"]), status=info.get("status", ""),
                       chart=f"{meta.get('name', '')}-{meta.get('version', '')}",
                       app_version=str(meta.get("appVersion", "")), updated=info.get("last_deployed", ""))


def _duration_s(duration: str) -> float:
    """Seconds in a Go duration such as "5m", "90s" or "1h30m"."""
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", duration)
    if not parts or "".join(n + u for n, u in parts) != duration:
        raise TerminalError(f"not a duration: {duration!r} (use Go syntax such as 5m, 90s, 1h30m)")
    scale = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    return sum(float(n) * scale[u] for n, u in parts)
