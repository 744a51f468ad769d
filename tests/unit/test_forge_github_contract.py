"""GitHubForge against GitHub's own OpenAPI description (the stand-in in tests/support), and
against real GitHub when STAGEFLOW_GITHUB_TOKEN and STAGEFLOW_GITHUB_ORG are set.

Against the stand-in every request the forge makes is checked against the operation GitHub
describes, and every answer the stand-in gives is checked against the response schema, so a
request GitHub would refuse fails here first. ``target.assert_clean()`` says: no violations yet.
"""
from __future__ import annotations

import pytest
from pydantic import SecretStr

from stageflow.adapters.forge import Forge
from stageflow.adapters.forge.base import BranchProtection, Environment, Webhook, revert_branch_name
from stageflow.errors import NotFound, TerminalError, ValidationFailed
from tests.support.github_fixtures import Target, fresh_standin, standin, target  # noqa: F401 - fixtures

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def repo(target: Target) -> str:
    name = target.repo_name("repo")
    target.forge.create_repo(name, description="contract test")
    return name


def test_github_forge_satisfies_the_interface(target: Target):
    assert isinstance(target.forge, Forge)
    assert target.token not in repr(target.forge)


def test_repository_create_adopt_get_delete(target: Target):
    name = target.repo_name("create")
    forge = target.forge
    assert forge.get_repo(name) is None
    info, created = forge.create_repo(name, description="Orders service")
    assert created and info.name == name and info.default_branch == "main"
    assert info.clone_url.endswith(f"/{name}.git")
    again, created_again = forge.create_repo(name)
    assert not created_again and again == info
    # GitHub's git data API needs a commit to build on: a new repository starts with one.
    assert forge.head_commit(name) is not None
    assert forge.delete_repo(name) is True
    assert forge.delete_repo(name) is False
    assert forge.get_repo(name) is None
    target.assert_clean()


def test_create_repo_with_another_default_branch(target: Target):
    name = target.repo_name("trunk")
    info, _ = target.forge.create_repo(name, default_branch="trunk")
    assert info.default_branch == "trunk"
    assert target.forge.list_branches(name) == ["trunk"]
    target.assert_clean()


def test_commit_files_writes_many_files_in_one_commit_and_skips_no_ops(target: Target, repo: str):
    forge = target.forge
    first = forge.head_commit(repo)
    sha = forge.commit_files(repo, {"a.txt": "line\r\nnext\n", "deep/dir/b.yaml": "b: 1\n", "c.md": "c\n"},
                             "Add three files", author=("Ada", "ada@example.com"))
    assert sha is not None and sha != first and forge.head_commit(repo) == sha
    assert forge.read_file(repo, "a.txt") == "line\r\nnext\n"  # byte for byte
    assert forge.read_file(repo, "deep/dir/b.yaml") == "b: 1\n"
    if target.standin is not None:
        assert target.standin.operations().count("git/create-commit") == 1
        target.standin.calls.clear()
    # Same content and deleting what is not there: no blob, no tree, no commit.
    assert forge.commit_files(repo, {"a.txt": "line\r\nnext\n", "never.txt": None}, "no-op") is None
    assert forge.head_commit(repo) == sha
    if target.standin is not None:
        assert not {"git/create-blob", "git/create-tree", "git/create-commit"} & set(target.standin.operations())
    second = forge.commit_files(repo, {"c.md": None, "a.txt": "changed\n", "deep/dir/b.yaml": "b: 1\n"}, "Edit")
    assert second is not None
    assert forge.read_file(repo, "c.md") is None and forge.read_file(repo, "a.txt") == "changed\n"
    assert forge.read_file(repo, "c.md", ref=sha) == "c\n"
    assert forge.read_file(repo, "a.txt", ref="no-such-branch") is None
    assert forge.read_file(repo, "deep") is None  # a directory is not a file
    target.assert_clean()


def test_commit_to_a_new_branch_starts_from_base(target: Target, repo: str):
    forge = target.forge
    main = forge.commit_files(repo, {"v.yaml": "v: 1\n"}, "v1")
    sha = forge.commit_files(repo, {"v.yaml": "v: 2\n"}, "v2", branch="feature/x")
    assert sha is not None and forge.head_commit(repo, "main") == main
    assert forge.read_file(repo, "v.yaml", ref="feature/x") == "v: 2\n"
    # Nothing to change, but the branch is still created where base is.
    assert forge.commit_files(repo, {"v.yaml": "v: 1\n"}, "same", branch="empty-change") is None
    assert forge.head_commit(repo, "empty-change") == main
    with pytest.raises(NotFound):
        forge.commit_files(repo, {"x": "x"}, "m", branch="other", base="no-such-base")
    with pytest.raises(ValidationFailed):
        forge.commit_files(repo, {"../escape": "x"}, "m")
    target.assert_clean()


def test_branches_create_adopt_list_delete(target: Target, repo: str):
    forge = target.forge
    assert forge.create_branch(repo, "release/1") is True
    assert forge.create_branch(repo, "release/1") is False
    assert forge.list_branches(repo) == ["main", "release/1"]
    assert forge.head_commit(repo, "release/1") == forge.head_commit(repo)
    with pytest.raises(NotFound):
        forge.create_branch(repo, "x", from_ref="missing")
    with pytest.raises(TerminalError, match="default branch"):
        forge.delete_branch(repo, "main")
    assert forge.delete_branch(repo, "release/1") is True
    assert forge.delete_branch(repo, "release/1") is False
    assert forge.list_branches(repo) == ["main"]
    target.assert_clean()


def test_pull_request_open_adopt_merge_and_merge_again(target: Target, repo: str):
    forge = target.forge
    forge.commit_files(repo, {"values.yaml": "replicas: 2\n"}, "scale", branch="scale")
    assert forge.find_pull_request(repo, "scale") is None
    pr, created = forge.open_pull_request(repo, "scale", "main", "Scale to 2", "Because")
    assert created and pr.state == "open" and (pr.head, pr.base) == ("scale", "main")
    again, created_again = forge.open_pull_request(repo, "scale", "main", "other", "other")
    assert not created_again and again == pr
    assert forge.find_pull_request(repo, "scale") == pr
    assert forge.get_pull_request(repo, pr.number) == pr
    assert forge.get_pull_request(repo, 999) is None
    merged = forge.merge_pull_request(repo, pr.number)
    assert merged.state == "merged" and merged.merge_commit == forge.head_commit(repo)
    assert forge.read_file(repo, "values.yaml") == "replicas: 2\n"
    assert forge.merge_pull_request(repo, pr.number) == merged
    assert forge.find_pull_request(repo, "scale", state="merged") == merged
    assert forge.find_pull_request(repo, "scale", state="open") is None
    target.assert_clean()


def test_pull_request_refusals(target: Target, repo: str):
    forge = target.forge
    with pytest.raises(NotFound):
        forge.open_pull_request(repo, "missing", "main", "t", "b")
    forge.create_branch(repo, "same-as-main")
    with pytest.raises(TerminalError, match="No commits between") as refused:
        forge.open_pull_request(repo, "same-as-main", "main", "t", "b")
    assert target.token not in str(refused.value)
    forge.commit_files(repo, {"f.txt": "ours\n"}, "ours", branch="conflict")
    forge.commit_files(repo, {"f.txt": "theirs\n"}, "theirs")
    pr, _ = forge.open_pull_request(repo, "conflict", "main", "Conflict", "")
    with pytest.raises(TerminalError):
        forge.merge_pull_request(repo, pr.number)
    assert forge.get_pull_request(repo, pr.number).state == "open"
    closed = forge.close_pull_request(repo, pr.number)
    assert closed.state == "closed" and forge.close_pull_request(repo, pr.number) == closed
    with pytest.raises(TerminalError, match="closed"):
        forge.merge_pull_request(repo, pr.number)
    target.assert_clean()


def test_revert_pull_request_opens_adopts_and_refuses_conflicts(target: Target, repo: str):
    forge = target.forge
    forge.commit_files(repo, {"values.yaml": "replicas: 1\n", "keep.txt": "k\n"}, "base")
    forge.commit_files(repo, {"values.yaml": "replicas: 3\n", "new.txt": "n\n"}, "bump", branch="bump")
    pr, _ = forge.open_pull_request(repo, "bump", "main", "Bump", "")
    forge.merge_pull_request(repo, pr.number)
    with pytest.raises(TerminalError, match="only a merged one"):
        forge.commit_files(repo, {"o.txt": "o\n"}, "o", branch="open-one")
        forge.revert_pull_request(repo, forge.open_pull_request(repo, "open-one", "main", "Open", "")[0].number)

    revert, created = forge.revert_pull_request(repo, pr.number)
    assert created and revert.head == revert_branch_name(pr.number) and revert.base == "main"
    assert forge.read_file(repo, "values.yaml", ref=revert.head) == "replicas: 1\n"
    assert forge.read_file(repo, "new.txt", ref=revert.head) is None
    assert forge.read_file(repo, "keep.txt", ref=revert.head) == "k\n"
    assert forge.revert_pull_request(repo, pr.number, title="again") == (revert, False)
    forge.merge_pull_request(repo, revert.number)
    assert forge.read_file(repo, "values.yaml") == "replicas: 1\n"

    forge.commit_files(repo, {"values.yaml": "replicas: 4\n"}, "four", branch="four")
    four, _ = forge.open_pull_request(repo, "four", "main", "Four", "")
    forge.merge_pull_request(repo, four.number)
    forge.commit_files(repo, {"values.yaml": "replicas: 5\n"}, "later change on main")
    with pytest.raises(TerminalError, match="cannot be reverted cleanly"):
        forge.revert_pull_request(repo, four.number)
    assert revert_branch_name(four.number) not in forge.list_branches(repo)
    target.assert_clean()


def test_releases_create_adopt_and_list_tags(target: Target, repo: str):
    forge = target.forge
    sha = forge.commit_files(repo, {"CHANGELOG.md": "1.0\n"}, "1.0")
    assert forge.get_release(repo, "v1.0.0") is None
    release, created = forge.create_release(repo, "v1.0.0", name="First", body="Notes")
    assert created and release.commit == sha and (release.name, release.body) == ("First", "Notes")
    forge.commit_files(repo, {"CHANGELOG.md": "1.1\n"}, "1.1")
    again, created_again = forge.create_release(repo, "v1.0.0", name="Other")
    assert not created_again and again == release  # the tag did not move
    assert forge.get_release(repo, "v1.0.0") == release
    assert forge.list_tags(repo) == ["v1.0.0"]
    with pytest.raises(NotFound):
        forge.create_release(repo, "v2", ref="no-such-ref")
    target.assert_clean()


def test_branch_protection_is_adopted(target: Target, repo: str):
    forge = target.forge
    assert forge.get_branch_protection(repo) is None
    assert forge.protect_branch(repo, required_checks=["test", "build"], required_reviews=1) is True
    assert forge.get_branch_protection(repo) == BranchProtection(required_checks=["build", "test"], required_reviews=1)
    assert forge.protect_branch(repo, required_checks=["build", "test"], required_reviews=1) is False
    assert forge.protect_branch(repo, required_checks=[], required_reviews=2) is True
    assert forge.get_branch_protection(repo) == BranchProtection(required_checks=[], required_reviews=2)
    with pytest.raises(NotFound):
        forge.protect_branch(repo, "no-such-branch", required_checks=[])
    target.assert_clean()


def test_variables_create_adopt_update(target: Target, repo: str):
    forge = target.forge
    assert forge.get_variables(repo) == {}
    assert forge.set_variable(repo, "APP", "shop") is True
    assert forge.set_variable(repo, "APP", "shop") is False
    assert forge.set_variable(repo, "APP", "shop-2") is True
    assert forge.set_variable(repo, "STAGE", "test") is True
    assert forge.get_variables(repo) == {"APP": "shop-2", "STAGE": "test"}
    with pytest.raises(ValidationFailed):
        forge.set_variable(repo, "GITHUB_SHA", "x")
    target.assert_clean()


def test_secrets_are_sealed_for_the_repository_key(target: Target, repo: str):
    forge = target.forge
    value = "registry-password-" + target.token[-6:]
    assert forge.set_secret(repo, "REGISTRY_PASSWORD", SecretStr(value)) is True
    assert forge.set_secret(repo, "REGISTRY_PASSWORD", SecretStr(value)) is True  # unreadable: always written
    assert forge.list_secrets(repo) == ["REGISTRY_PASSWORD"]
    if target.standin is not None:
        assert target.standin.secret_value(repo, "REGISTRY_PASSWORD") == value
    with pytest.raises(ValidationFailed) as err:
        forge.set_secret(repo, "lower", SecretStr(value))
    assert value not in str(err.value)
    target.assert_clean()


def test_environments_with_reviewers(target: Target, repo: str):
    forge = target.forge
    assert forge.get_environment(repo, "prod") is None
    assert forge.ensure_environment(repo, "prod", reviewers=[target.reviewer]) is True
    assert forge.ensure_environment(repo, "prod", reviewers=[target.reviewer]) is False
    assert forge.get_environment(repo, "prod") == Environment(name="prod", reviewers=[target.reviewer])
    assert forge.ensure_environment(repo, "prod") is True
    assert forge.get_environment(repo, "prod") == Environment(name="prod", reviewers=[])
    assert forge.ensure_environment(repo, "test") is True
    target.assert_clean()


def test_webhooks_one_per_url(target: Target, repo: str):
    forge = target.forge
    url = "https://ci.example.com/hooks/github"
    assert forge.list_webhooks(repo) == []
    assert forge.ensure_webhook(repo, url, events=["push", "pull_request"]) is True
    assert forge.ensure_webhook(repo, url, events=["pull_request", "push"]) is False
    assert forge.ensure_webhook(repo, url, events=["push"], secret=SecretStr("hook-secret")) is True
    assert forge.ensure_webhook(repo, url, events=["push"]) is False
    assert forge.list_webhooks(repo) == [Webhook(url=url, events=["push"], has_secret=True)]
    target.assert_clean()


def test_unknown_repository(target: Target):
    forge = target.forge
    missing = target.repo_name("missing")
    assert forge.get_repo(missing) is None
    for call in (lambda: forge.read_file(missing, "a"), lambda: forge.commit_files(missing, {"a": "a"}, "m"),
                 lambda: forge.list_branches(missing), lambda: forge.set_variable(missing, "A", "b"),
                 lambda: forge.merge_pull_request(missing, 1)):
        with pytest.raises(NotFound) as err:
            call()
        assert target.token not in str(err.value)
    target.assert_clean()
