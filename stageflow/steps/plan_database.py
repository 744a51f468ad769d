"""Step ``terraform:plan``: init the database's root module and save a plan for a human to approve.

The plan file is what gets approved and later applied byte for byte (``terraform:apply``), so
the summary shown to the approver is read back from that file (``terraform show -json``), not
from a second plan. Plan files hold variable values in clear text: ``plan_file`` must be in a
private directory (the adapter writes it 0600).

Safe to run twice: a new plan replaces the old file; nothing outside the plan file changes.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from stageflow.adapters.terraform import PlanSummary, Terraform

KIND = "terraform:plan"


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    plan_file: Path
    variables: dict[str, Any] = Field(default_factory=dict, description="root variables (SecretStr = sensitive)")
    destroy: bool = False
    backend_config: dict[str, str] = Field(default_factory=dict,
                                           description="-backend-config pairs (bucket, key, path)")
    title: str = Field("Terraform plan", description="heading of the markdown summary, e.g. the root's path")


class Result(BaseModel):
    model_config = ConfigDict(frozen=True)
    plan_file: Path
    summary: PlanSummary
    markdown: str


def run(config: Config, terraform: Terraform) -> Result:
    terraform.init(config.backend_config)
    summary = terraform.plan(config.plan_file, config.variables, destroy=config.destroy)
    return Result(plan_file=config.plan_file, summary=summary, markdown=summary_markdown(summary, config.title))


def summary_markdown(summary: PlanSummary, title: str) -> str:
    """What the approver reads: counts, a warning when data can be lost, one row per resource."""
    counts = (f"**{len(summary.add)} to add, {len(summary.change)} to change, {len(summary.replace)} to replace, "
              f"{len(summary.destroy)} to destroy**")
    lines = [f"### {title}", ""]
    if not summary.has_changes:
        return "\n".join(lines + ["No changes: the infrastructure matches the configuration."]) + "\n"
    lines.append(counts + (" (a destroy plan)" if summary.destroy_plan else ""))
    if summary.destroy or summary.replace:
        # Replacing a database instance is deleting it: say so where the approver cannot miss it.
        lines += ["", "> **Warning:** this plan deletes or replaces resources; a database's data goes with it "
                      "(apart from its final snapshot)."]
    rows = [(action, address) for action, addresses in
            (("destroy", summary.destroy), ("replace", summary.replace), ("change", summary.change),
             ("add", summary.add)) for address in addresses]
    if rows:
        lines += ["", "| Action | Resource |", "|---|---|", *(f"| {a} | `{r}` |" for a, r in rows)]
    if summary.outputs_changed:
        lines += ["", "Outputs changing: " + ", ".join(f"`{o}`" for o in summary.outputs_changed)]
    return "\n".join(lines) + "\n"
