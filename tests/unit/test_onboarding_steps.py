"""The onboarding steps against a real LocalForge (bare git repositories in tmp_path): each does
its work once, adopts on a re-run, and its compensation undoes what it made."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from pydantic import SecretStr

from stageflow.adapters.forge import LocalForge
from stageflow.errors import TerminalError
from stageflow.gitops import InfraRepo
from stageflow.onboarding import configure_repo, register_in_infra, render_repo
from stageflow.onboarding.compensation import Compensations
from stageflow.onboarding.request import TEMPLATES, OnboardRequest, service_spec
from stageflow.onboarding.template_repo import MANIFEST, publish_template
from stageflow.spec import App, load_spec, new_infra_tree, service_path

# The version after the template's current one: what a template change is published as.
_major, _minor, _ = (TEMPLATES["python"] / "VERSION").read_text().strip().split(".")
NEXT = f"{_major}.{int(_minor) + 1}.0"

REGISTRY = "127.0.0.1:5000"
INFRA = "infrastructure"


@pytest.fixture
def forge(tmp_path: Path) -> LocalForge:
    forge = LocalForge(tmp_path / "forge")
    forge.create_repo(INFRA)
    forge.commit_files(INFRA, new_infra_tree(REGISTRY), "Empty infrastructure repo")
    return forge


def answers(**extra) -> dict[str, object]:
    return {"app": "shop", "service": "orders", "port": 8080, "owners": ["alice"], "database": "none",
            "registry": REGISTRY, **extra}


# --- template publishing -----------------------------------------------------------------------
def test_publish_tags_the_version_and_adopts_it(forge: LocalForge) -> None:
    first = publish_template(forge, "python")
    again = publish_template(forge, "python")
    assert first.created and not again.created
    assert again.commit == first.commit and forge.list_tags("stageflow-template-python") == [first.version]


def test_a_changed_template_needs_a_new_version(forge: LocalForge, tmp_path: Path) -> None:
    folder = shutil.copytree(TEMPLATES["python"], tmp_path / "tpl")
    v1 = publish_template(forge, "python", folder=folder)
    (folder / "template" / "Makefile.jinja").write_text("# changed\n")
    with pytest.raises(TerminalError, match="raise its VERSION"):
        publish_template(forge, "python", folder=folder)
    (folder / "template" / "CODEOWNERS.jinja").unlink()
    (folder / "VERSION").write_text(f"{NEXT}\n")
    v2 = publish_template(forge, "python", folder=folder)
    repo = "stageflow-template-python"
    assert v2.created and forge.list_tags(repo) == sorted([v1.version, NEXT])
    assert forge.read_file(repo, "template/CODEOWNERS.jinja", ref=v1.version) is not None  # old tag intact
    assert forge.read_file(repo, "template/CODEOWNERS.jinja", ref=NEXT) is None  # removed in the new one
    assert "template/CODEOWNERS.jinja" not in forge.read_file(repo, MANIFEST, ref=NEXT)


# --- render ------------------------------------------------------------------------------------
def render_config(forge: LocalForge, **extra) -> render_repo.Config:
    published = publish_template(forge, "python")
    return render_repo.Config(repository="shop-orders", template_url=published.clone_url,
                              template_version=published.version, answers=answers(**extra))


def test_render_creates_the_repository_once(forge: LocalForge) -> None:
    config = render_config(forge)
    first = render_repo.run(config, forge)
    assert first.created and first.files > 10
    recorded = yaml.safe_load(forge.read_file("shop-orders", ".copier-answers.yml"))
    assert recorded["app"] == "shop" and recorded["_commit"] == config.template_version
    again = render_repo.run(config, forge)
    assert (again.created, again.files, again.commit) == (False, 0, first.commit)
    assert render_repo.compensate(again, forge) is False  # not this run's: kept
    assert render_repo.compensate(first, forge) is True and forge.get_repo("shop-orders") is None


def test_render_fills_an_empty_repository_and_refuses_a_foreign_one(forge: LocalForge) -> None:
    config = render_config(forge)
    forge.create_repo("shop-orders")  # a run that died right after creating it
    assert render_repo.run(config, forge).created
    forge.create_repo("shop-cart")
    forge.commit_files("shop-cart", {"README.md": "someone else's\n"}, "Hand-made")
    with pytest.raises(TerminalError, match="not rendered by onboarding"):
        render_repo.run(config.model_copy(update={"repository": "shop-cart"}), forge)


# --- configure ---------------------------------------------------------------------------------
def test_configure_sets_everything_once_and_never_shows_a_secret(forge: LocalForge) -> None:
    render_repo.run(render_config(forge), forge)
    config = configure_repo.Config(repository="shop-orders", variables={"REGISTRY": REGISTRY, "STAGEFLOW_APP": "shop"},
                                   secrets={"PREFECT_API_KEY": SecretStr("pnu_very-secret")})
    first = configure_repo.run(config, forge)
    assert first.changed == ["branch protection (main)", "variable REGISTRY", "variable STAGEFLOW_APP",
                             "secret PREFECT_API_KEY"]
    assert configure_repo.run(config, forge).changed == []
    protection = forge.get_branch_protection("shop-orders")
    assert (protection.required_checks, protection.required_reviews) == (["test"], 1)
    assert forge.get_variables("shop-orders") == {"REGISTRY": REGISTRY, "STAGEFLOW_APP": "shop"}
    assert forge.list_secrets("shop-orders") == ["PREFECT_API_KEY"]
    assert "pnu_very-secret" not in repr(config) + str(config.model_dump()) + first.model_dump_json()


# --- register ----------------------------------------------------------------------------------
def registration(**extra) -> register_in_infra.Config:
    request = OnboardRequest("shop", "orders", ["alice"], database="postgres").validate()
    fields = {"new_app": App(name="shop", owners=["alice"], approvers=["alice"]), **extra}
    return register_in_infra.Config(infra_repo=INFRA, service=service_spec(request, REGISTRY), **fields)


def spec_on_main(forge: LocalForge, tmp_path: Path):
    return load_spec(InfraRepo(forge.get_repo(INFRA).clone_url, tmp_path / "infra").sync())


def test_register_merges_a_pr_once(forge: LocalForge, tmp_path: Path) -> None:
    first = register_in_infra.run(registration(), forge)
    assert (first.state, first.pr_created, first.merged_now) == ("registered", True, True)
    spec = spec_on_main(forge, tmp_path)
    assert spec.service("shop", "orders").database == "postgres"
    assert spec.app("shop").approvers == ["alice"]
    assert spec.version("shop", "orders", "prod") is None and spec.version("shop", "orders", "test") is None
    head = forge.head_commit(INFRA)
    again = register_in_infra.run(registration(new_app=None), forge)
    assert (again.state, again.pr_created, again.pr_number) == ("registered", False, first.pr_number)
    assert forge.head_commit(INFRA) == head


def test_register_without_auto_merge_leaves_one_open_pr(forge: LocalForge) -> None:
    head = forge.head_commit(INFRA)
    first = register_in_infra.run(registration(auto_merge=False), forge)
    again = register_in_infra.run(registration(auto_merge=False), forge)
    assert first.state == again.state == "open" and again.pr_number == first.pr_number and not again.pr_created
    assert forge.head_commit(INFRA) == head
    assert register_in_infra.compensate(registration(), forge) == [f"closed PR #{first.pr_number}",
                                                                     "deleted branch onboard/shop-orders"]
    assert forge.get_pull_request(INFRA, first.pr_number).state == "closed"


def test_compensating_a_merged_registration_reverts_it_and_a_rerun_converges(forge: LocalForge,
                                                                             tmp_path: Path) -> None:
    config = registration()
    merged = register_in_infra.run(config, forge)
    undone = register_in_infra.compensate(config, forge)
    assert undone[0].startswith(f"reverted PR #{merged.pr_number}")
    assert forge.read_file(INFRA, service_path("shop", "orders")) is None
    assert forge.list_branches(INFRA) == ["main"]
    assert register_in_infra.compensate(config, forge) == []  # nothing left to undo
    redo = register_in_infra.run(config, forge)
    assert redo.state == "registered" and redo.pr_number > merged.pr_number
    assert spec_on_main(forge, tmp_path).service("shop", "orders").repository == "shop-orders"


def test_a_branch_left_by_a_dead_run_is_started_again(forge: LocalForge) -> None:
    config = registration()
    forge.commit_files(INFRA, {"junk.txt": "half a run\n"}, "dead run", branch=config.branch, base="main")
    result = register_in_infra.run(config, forge)
    assert result.state == "registered" and forge.read_file(INFRA, "junk.txt") is None


# --- compensation list -------------------------------------------------------------------------
def test_compensations_run_newest_first_and_report_failures() -> None:
    calls: list[str] = []
    undo = Compensations()
    undo.add("first", lambda: calls.append("first"))
    undo.add("broken", lambda: 1 / 0)
    undo.add("last", lambda: calls.append("last"))
    report = undo.run()
    assert calls == ["last", "first"] and report.undone == ["last", "first"]
    assert report.failed == ["broken: division by zero"] and len(undo) == 0


# --- template update ---------------------------------------------------------------------------
def test_update_template_proposes_a_pr_and_reports_conflicts(forge: LocalForge, tmp_path: Path) -> None:
    from stageflow.onboarding import update_template

    folder = shutil.copytree(TEMPLATES["python"], tmp_path / "tpl")
    v1 = publish_template(forge, "python", folder=folder)
    render_repo.run(render_repo.Config(repository="shop-orders", template_url=v1.clone_url,
                                       template_version=v1.version, answers=answers()), forge)
    config = update_template.Config(repository="shop-orders")
    assert update_template.run(config, forge).state == "current"
    # The service changes its Makefile's help target; the template's next version changes the same line.
    makefile = forge.read_file("shop-orders", "Makefile")
    forge.commit_files("shop-orders", {"Makefile": makefile.replace("## list the targets", "## what you can do")},
                       "Our own help text")
    template_make = (folder / "template" / "Makefile.jinja").read_text()
    (folder / "template" / "Makefile.jinja").write_text(template_make.replace("## list the targets", "## targets"))
    (folder / "template" / "SECURITY.md").write_text("Report vulnerabilities to the platform team.\n")
    (folder / "VERSION").write_text(f"{NEXT}\n")
    publish_template(forge, "python", folder=folder)

    proposed = update_template.run(config, forge)
    assert (proposed.state, proposed.from_version, proposed.to_version) == ("proposed", v1.version, NEXT)
    assert proposed.pr_created and proposed.conflicts == ["Makefile"]
    branch = update_template.branch_for(NEXT)
    assert forge.read_file("shop-orders", "SECURITY.md", branch) is not None
    assert update_template.CONFLICT_MARKER in forge.read_file("shop-orders", "Makefile", branch)
    assert yaml.safe_load(forge.read_file("shop-orders", ".copier-answers.yml", branch))["_commit"] == NEXT
    pr = forge.get_pull_request("shop-orders", proposed.pr_number)
    assert "`Makefile`" in pr.body and pr.state == "open"
    again = update_template.run(config, forge)
    assert (again.pr_number, again.pr_created, again.conflicts) == (proposed.pr_number, False, ["Makefile"])
    assert forge.read_file("shop-orders", "SECURITY.md") is None  # main untouched until the PR is merged


def test_update_template_skips_repositories_not_rendered_from_a_template(forge: LocalForge) -> None:
    from stageflow.onboarding import update_template

    forge.create_repo("shop-cart")
    forge.commit_files("shop-cart", {"README.md": "hand-made\n"}, "init")
    assert update_template.run(update_template.Config(repository="shop-cart"), forge).state == "not-templated"


def test_render_refuses_a_template_url_with_credentials(forge: LocalForge) -> None:
    from stageflow.errors import ValidationFailed

    config = render_config(forge).model_copy(update={"template_url": "https://x:tok@forge.example/t.git"})
    with pytest.raises(ValidationFailed, match="credentials"):
        render_repo.run(config, forge)
    assert forge.get_repo("shop-orders") is None
