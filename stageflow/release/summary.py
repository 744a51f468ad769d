"""What an approver sees before deciding: the form's description and the run's summary artifact."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from stageflow.spec import DeployedVersion, ReleaseRecord

__all__ = ["ReleaseSummary", "record_markdown", "summary_markdown"]


class ReleaseSummary(BaseModel):
    model_config = ConfigDict(frozen=True)
    kind: str  # release | rollback
    app: str
    service: str
    version: str
    image: str
    digest: str
    requested_by: str
    request_reason: str
    previous: DeployedVersion | None
    source_commit: str | None
    source_commits: list[str] | None  # "abc1234 subject" lines between prod and this release; None: unknown
    test_commit: str | None
    test_commit_date: str | None
    verified_by: str | None
    pull_request: str | None
    diff: str
    approvers: list[str]
    deadline: str


def summary_markdown(s: ReleaseSummary) -> str:
    previous = (f"`{s.previous.image.digest}`" + (f" ({s.previous.image.tag})" if s.previous.image.tag else "")
                if s.previous else "nothing yet (first prod release)")
    if s.source_commits is None:
        commits = "_unknown: the previous prod version records no source commit_"
    elif not s.source_commits:
        commits = "_none_"
    else:
        shown = s.source_commits[:30]
        commits = "\n".join(f"- `{line}`" for line in shown)
        if len(s.source_commits) > len(shown):
            commits += f"\n- … and {len(s.source_commits) - len(shown)} more"
    evidence = (f"set in infra commit `{s.test_commit[:12]}` ({s.test_commit_date}), rollout verified by flow run "
                f"`{s.verified_by}`" if s.test_commit else "_not required for a rollback to a released version_")
    reason = f"\n\n> {s.request_reason}" if s.request_reason else ""
    return f"""## {s.kind.capitalize()} {s.app}/{s.service} → {s.app}-prod: {s.version}
Requested by **{s.requested_by}**.{reason}

| | |
|---|---|
| prod now | {previous} |
| prod after | `{s.digest}` ({s.version}) |
| image | `{s.image}@{s.digest}` |
| source commit | `{s.source_commit or 'unknown'}` |
| test-stage evidence | {evidence} |
| pull request | {s.pull_request or 'none'} |
| approvers | {', '.join(s.approvers) or '_none listed_'} (not {s.requested_by} alone) |
| decide before | {s.deadline} |

### Source commits since prod
{commits}

### Change to the infrastructure repo
```diff
{s.diff.strip() or '(no change)'}
```
"""


def record_markdown(r: ReleaseRecord, app: str, service: str) -> str:
    rows = [
        ("result", f"**{r.result}**"),
        ("source commit", f"`{r.source.commit}`" if r.source else "unknown"),
        ("image digest", f"`{r.image.reference}`"),
        ("infra commit", f"`{r.infra_commit}`" if r.infra_commit else "none"),
        ("pull request", r.pull_request or "none"),
        ("Helm revision", str(r.helm_revision) if r.helm_revision else "none"),
        ("requested by", r.requested_by),
        ("approver", f"{r.approver}: {r.reason}" if r.approver else "none"),
        ("verification", r.verification),
    ]
    if r.rolled_back_to:
        rows.append(("rolled back to", r.rolled_back_to))
    table = "\n".join(f"| {k} | {v} |" for k, v in rows)
    return f"# {r.kind.capitalize()} record: {app}/{service} {r.version}\n\n| | |\n|---|---|\n{table}\n"
