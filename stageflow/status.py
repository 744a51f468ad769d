"""What runs where, compared with what the infrastructure repo says: the data behind
``stageflow status``. One row per (app, service, stage) that the spec or the cluster knows."""
from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict

from stageflow.adapters.helm import Helm
from stageflow.adapters.kube import Kube
from stageflow.spec import STAGES, PlatformSpec, namespace

__all__ = ["StatusRow", "collect_status", "render_table"]


class StatusRow(BaseModel):
    model_config = ConfigDict(frozen=True)
    app: str
    service: str
    stage: str
    digest: str | None
    helm_revision: int | None
    ready: int
    desired: int
    drift: bool
    reason: str = ""


def collect_status(spec: PlatformSpec, kubeconfig: Path, app: str | None = None) -> list[StatusRow]:
    helm, kube = Helm(kubeconfig), Kube(kubeconfig)
    if app is not None:
        spec.app(app)
    rows: list[StatusRow] = []
    for (a, s), _service in sorted(spec.services.items()):
        if app is not None and a != app:
            continue
        for stage in STAGES:
            wanted = spec.version(a, s, stage)
            ns = namespace(a, stage)
            release = helm.status(s, ns)
            status = kube.deployment_status(ns, s)
            if wanted is None and release is None:
                continue  # never deployed to this stage, and nothing there: no row
            running = _digest_of(status.images) if status else None
            drift, reason = False, ""
            if wanted is None:
                drift, reason = True, "deployed but not in the infrastructure repo"
            elif release is None or status is None:
                drift, reason = True, "in the infrastructure repo but not deployed"
            elif running != wanted.image.digest:
                drift, reason = True, f"runs {running or 'no digest'}, repo says {wanted.image.digest}"
            elif status.desired != status.ready:
                reason = "rolling out"
            rows.append(StatusRow(
                app=a, service=s, stage=stage, digest=running, helm_revision=release.revision if release else None,
                ready=status.ready if status else 0, desired=status.desired if status else 0,
                drift=drift, reason=reason))
    return rows


def _digest_of(images: list[str]) -> str | None:
    for image in images:
        if "@sha256:" in image:
            return image.split("@", 1)[1]
    return None


def render_table(rows: list[StatusRow]) -> str:
    header = ("APP", "SERVICE", "STAGE", "DIGEST", "HELM REV", "READY", "DRIFT")
    lines = [header] + [
        (r.app, r.service, r.stage, (r.digest or "-")[:19], str(r.helm_revision or "-"), f"{r.ready}/{r.desired}",
         ("yes: " + r.reason) if r.drift else ("no" + (f" ({r.reason})" if r.reason else "")))
        for r in rows
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = ["  ".join(col.ljust(w) for col, w in zip(line, widths)).rstrip() for line in lines]
    return "\n".join(out) if rows else "no services deployed yet"
