"""LocalForge's repository configuration and PR reverts, against real bare repositories."""
from __future__ import annotations

import stat
from pathlib import Path

import pytest
from pydantic import SecretStr

from stageflow.adapters.forge import Forge, LocalForge
from stageflow.adapters.forge.base import BranchProtection, Environment, Webhook, revert_branch_name
from stageflow.adapters.git import run_git
from stageflow.errors import NotFound, TerminalError, ValidationFailed

SECRET_VALUE = "s3cr3t-value-never-shown"


@pytest.fixture
def forge(tmp_path: Path) -> LocalForge:
    return LocalForge(tmp_path / "forge")


@pytest.fixture
def repo(forge: LocalForge) -> str:
    forge.create_repo("shop")
    forge.commit_files("shop", {"README.md": "shop\n", "values.yaml": "replicas: 1\n"}, "Initial commit")
    return "shop"


def test_still_satisfies_the_interface(forge):
    assert isinstance(forge, Forge)


def test_protect_branch_adopts_and_reports_changes(forge, repo):
    assert forge.get_branch_protection(repo) is None
    assert forge.protect_branch(repo, required_checks=["test", "build"], required_reviews=1) is True
    assert forge.get_branch_protection(repo) == BranchProtection(required_checks=["build", "test"], required_reviews=1)
    # The same demand in another order changes nothing.
    assert forge.protect_branch(repo, required_checks=["build", "test", "build"]) is False
    assert forge.protect_branch(repo, required_checks=["build"], required_reviews=2) is True
    assert forge.get_branch_protection(repo) == BranchProtection(required_checks=["build"], required_reviews=2)
    assert forge.get_branch_protection(repo, "other") is None


def test_protect_branch_needs_the_branch_and_sane_numbers(forge, repo):
    with pytest.raises(NotFound):
        forge.protect_branch(repo, "release", required_checks=[])
    with pytest.raises(ValidationFailed):
        forge.protect_branch(repo, required_checks=[], required_reviews=7)
    with pytest.raises(NotFound):
        forge.protect_branch("missing", required_checks=[])


def test_variables_set_adopt_update(forge, repo):
    assert forge.get_variables(repo) == {}
    assert forge.set_variable(repo, "APP", "shop") is True
    assert forge.set_variable(repo, "APP", "shop") is False
    assert forge.set_variable(repo, "STAGE_TEST", "shop-test") is True
    assert forge.set_variable(repo, "APP", "shop2") is True
    assert forge.get_variables(repo) == {"APP": "shop2", "STAGE_TEST": "shop-test"}


@pytest.mark.parametrize("name", ["lower", "1ABC", "A-B", "", "GITHUB_TOKEN", "A B"])
def test_variable_and_secret_names_are_checked(forge, repo, name):
    with pytest.raises(ValidationFailed):
        forge.set_variable(repo, name, "x")
    with pytest.raises(ValidationFailed):
        forge.set_secret(repo, name, SecretStr("x"))
    assert forge.get_variables(repo) == {} and forge.list_secrets(repo) == []


def test_secrets_are_write_only_private_and_never_shown(forge, repo, caplog):
    assert forge.set_secret(repo, "REGISTRY_TOKEN", SecretStr(SECRET_VALUE)) is True
    assert forge.set_secret(repo, "REGISTRY_TOKEN", SecretStr(SECRET_VALUE)) is False
    assert forge.set_secret(repo, "REGISTRY_TOKEN", SecretStr(SECRET_VALUE + "2")) is True
    assert forge.set_secret(repo, "DB_PASSWORD", SecretStr("pw")) is True
    assert forge.list_secrets(repo) == ["DB_PASSWORD", "REGISTRY_TOKEN"]
    stored = forge.root / "shop.git" / "stageflow" / "secrets.json"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    # Nothing else in the repository's settings holds the value.
    others = [p for p in (forge.root / "shop.git" / "stageflow").rglob("*") if p.is_file() and p != stored]
    assert all(SECRET_VALUE not in p.read_text() for p in others)
    assert SECRET_VALUE not in caplog.text
    with pytest.raises(ValidationFailed) as err:
        forge.set_secret(repo, "PLAIN", SECRET_VALUE)  # type: ignore[arg-type]
    assert SECRET_VALUE not in str(err.value)


def test_environments_create_adopt_and_change_reviewers(forge, repo):
    assert forge.get_environment(repo, "prod") is None
    assert forge.ensure_environment(repo, "prod", reviewers=["bob", "alice"]) is True
    assert forge.ensure_environment(repo, "prod", reviewers=["alice", "bob"]) is False
    assert forge.get_environment(repo, "prod") == Environment(name="prod", reviewers=["alice", "bob"])
    assert forge.ensure_environment(repo, "prod") is True  # nobody has to approve any more
    assert forge.get_environment(repo, "prod") == Environment(name="prod", reviewers=[])
    assert forge.ensure_environment(repo, "test", reviewers=None) is True
    assert forge.ensure_environment(repo, "test", reviewers=[]) is False
    with pytest.raises(ValidationFailed):
        forge.ensure_environment(repo, "bad/name")


def test_webhooks_one_per_url(forge, repo):
    url = "https://ci.example.com/hooks/github"
    assert forge.ensure_webhook(repo, url, events=["push", "pull_request"]) is True
    assert forge.ensure_webhook(repo, url, events=["pull_request", "push"]) is False
    assert forge.ensure_webhook(repo, url, events=["push"]) is True
    assert forge.ensure_webhook(repo, url, events=["push"], secret=SecretStr(SECRET_VALUE)) is True
    assert forge.ensure_webhook(repo, url, events=["push"], secret=SecretStr(SECRET_VALUE)) is False
    assert forge.ensure_webhook(repo, url, events=["push"]) is False  # no secret given: keep the old one
    assert forge.list_webhooks(repo) == [Webhook(url=url, events=["push"], has_secret=True)]
    webhooks_file = forge.root / "shop.git" / "stageflow" / "webhooks.json"
    assert SECRET_VALUE not in webhooks_file.read_text()
    for bad_url, events in [("ftp://x.example.com", ["push"]), ("https://u:p@x.example.com", ["push"]),
                            (url, []), (url, ["Push!"])]:
        with pytest.raises(ValidationFailed):
            forge.ensure_webhook(repo, bad_url, events=events)


def _merged_pr(forge: LocalForge, repo: str, branch: str, files: dict[str, str | None]) -> int:
    forge.commit_files(repo, files, f"change on {branch}", branch=branch)
    pr, _ = forge.open_pull_request(repo, branch, "main", f"Change {branch}", "")
    return forge.merge_pull_request(repo, pr.number).number


def test_revert_pull_request_opens_then_adopts(forge, repo):
    number = _merged_pr(forge, repo, "bump", {"values.yaml": "replicas: 3\n", "new.txt": "new\n"})
    assert forge.read_file(repo, "values.yaml") == "replicas: 3\n"

    revert, created = forge.revert_pull_request(repo, number)
    assert created and revert.state == "open"
    assert revert.head == revert_branch_name(number) and revert.base == "main"
    assert revert.title == 'Revert "Change bump"'
    assert forge.read_file(repo, "values.yaml", ref=revert.head) == "replicas: 1\n"
    assert forge.read_file(repo, "new.txt", ref=revert.head) is None

    again, created_again = forge.revert_pull_request(repo, number, title="other title")
    assert not created_again and again == revert
    merged = forge.merge_pull_request(repo, revert.number)
    assert forge.read_file(repo, "values.yaml") == "replicas: 1\n"
    # Once the revert is merged, asking again answers with it instead of opening another.
    assert forge.revert_pull_request(repo, number) == (merged, False)


def test_revert_refuses_unmerged_and_conflicting(forge, repo):
    forge.commit_files(repo, {"a.txt": "a\n"}, "a", branch="open-one")
    pr, _ = forge.open_pull_request(repo, "open-one", "main", "Open", "")
    with pytest.raises(TerminalError, match="only a merged one"):
        forge.revert_pull_request(repo, pr.number)
    with pytest.raises(NotFound):
        forge.revert_pull_request(repo, 99)

    number = _merged_pr(forge, repo, "bump", {"values.yaml": "replicas: 3\n"})
    forge.commit_files(repo, {"values.yaml": "replicas: 5\n"}, "later change on main")
    with pytest.raises(TerminalError, match="cannot be reverted cleanly"):
        forge.revert_pull_request(repo, number)
    assert revert_branch_name(number) not in forge.list_branches(repo)
    assert forge.read_file(repo, "values.yaml") == "replicas: 5\n"
    assert int(run_git(["rev-list", "--count", "main"], forge.root / "shop.git").strip()) == 4
