"""What only the stand-in can show: it refuses what GitHub's description refuses, it checks its own
answers, and GitHubForge turns rate limits, 5xx and refusals into the right Stageflow errors
(without retrying inside the call, and without ever showing the token)."""
from __future__ import annotations

import socket
import time

import httpx
import pytest
from pydantic import SecretStr

from stageflow.adapters.forge._github_errors import GitHubRace, GitHubRateLimited, GitHubUnavailable
from stageflow.adapters.forge.github import GitHubForge
from stageflow.errors import NotFound, RetryableError, TerminalError
from tests.support.github_api import GitHubStandIn
from tests.support.github_fixtures import fresh_standin, standin, standin_forge  # noqa: F401 - fixtures
from tests.support.github_state import HANDLERS

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def forge(fresh_standin: GitHubStandIn) -> GitHubForge:
    return standin_forge(fresh_standin)


@pytest.fixture
def api(fresh_standin: GitHubStandIn) -> httpx.Client:
    with httpx.Client(base_url=fresh_standin.base_url,
                      headers={"Authorization": f"token {fresh_standin.token}"}) as client:
        yield client


def _texts(exc: BaseException) -> str:
    """Everything an exception could show: str and repr of it and of every cause."""
    parts = []
    while exc is not None:
        parts += [str(exc), repr(exc), repr(getattr(exc, "args", ""))]
        exc = exc.__cause__ or exc.__context__
    return "\n".join(parts)


# --- the stand-in refuses what GitHub's description does not allow -----------------------------
def test_a_pull_request_without_head_is_refused(fresh_standin, forge, api):
    name = "raw-pr"
    forge.create_repo(name)
    answer = api.post(f"/repos/{fresh_standin.org}/{name}/pulls", json={"title": "t", "base": "main"})
    assert answer.status_code == 422
    [violation] = fresh_standin.violations
    assert violation.operation == "pulls/create" and violation.where == "body"
    assert any("'head' is a required property" in e for e in violation.errors)
    forge.delete_repo(name)


def test_wrong_types_unknown_parameters_and_unknown_paths_are_refused(fresh_standin, forge, api):
    name = "raw-misc"
    forge.create_repo(name)
    org = fresh_standin.org
    assert api.post(f"/repos/{org}/{name}/git/refs", json={"ref": "refs/heads/x", "sha": 42}).status_code == 422
    assert api.get(f"/repos/{org}/{name}/pulls", params={"state": "merged"}).status_code == 422  # not an enum value
    assert api.get(f"/repos/{org}/{name}/branches", params={"colour": "red"}).status_code == 422
    assert api.get(f"/repos/{org}/{name}/no-such-endpoint").status_code == 404
    wheres = [(v.operation, v.where) for v in fresh_standin.violations]
    assert wheres == [("git/create-ref", "body"), ("pulls/list", "query"), ("repos/list-branches", "query"),
                      (None, "route")]
    forge.delete_repo(name)


def test_an_answer_that_breaks_the_response_schema_is_recorded(fresh_standin, forge, monkeypatch):
    monkeypatch.setitem(HANDLERS, "repos/get", lambda s, p, q, body: (200, {"name": 42}))
    with pytest.raises(Exception):  # noqa: B017 - whatever PyGithub makes of it; the record is the point
        forge.get_repo("anything").clone_url  # noqa: B018
    assert [v.where for v in fresh_standin.violations] == ["response 200"]


def test_a_bad_token_is_terminal_and_never_shown(fresh_standin):
    wrong = "ghp_wrong_" + "x" * 30
    forge = GitHubForge(SecretStr(wrong), fresh_standin.org, base_url=fresh_standin.base_url,
                        seconds_between_requests=None, seconds_between_writes=None)
    with pytest.raises(TerminalError, match="Bad credentials") as err:
        forge.get_repo("anything")
    assert not isinstance(err.value, RetryableError)
    assert wrong not in _texts(err.value) and wrong not in repr(forge)


# --- faults become retryable errors, decided by type, with GitHub's wait ------------------------
@pytest.mark.parametrize(("status", "headers", "message", "wait"), [
    (429, {"Retry-After": "7"}, "Too Many Requests", 7.0),
    (403, {"Retry-After": "30"}, "You have exceeded a secondary rate limit.", 30.0),
    (403, {}, "You have exceeded a secondary rate limit. Please wait a few minutes.", None),
    (403, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "+60"}, "API rate limit exceeded for user.", 60.0),
])
def test_rate_limits_are_retryable_and_carry_the_wait(fresh_standin, forge, status, headers, message, wait):
    if headers.get("x-ratelimit-reset") == "+60":  # the reset is a point in time: a minute from now
        headers = {**headers, "x-ratelimit-reset": str(int(time.time()) + 60)}
    forge.create_repo("limited")
    before = len(fresh_standin.calls)
    fresh_standin.fail_next(1, status, headers=headers, message=message)
    with pytest.raises(GitHubRateLimited) as err:
        forge.get_repo("limited")
    assert len(fresh_standin.calls) == before + 1  # one request: no hidden retry inside the call
    if wait is None:
        assert err.value.retry_after is None
    else:
        assert err.value.retry_after == pytest.approx(wait, abs=2)
    assert fresh_standin.token not in _texts(err.value)
    assert forge.get_repo("limited") is not None  # the next call goes through
    forge.delete_repo("limited")


def test_a_plain_403_is_terminal(fresh_standin, forge):
    fresh_standin.fail_next(1, 403, message="Resource not accessible by integration")
    with pytest.raises(TerminalError, match="Resource not accessible by integration") as err:
        forge.get_repo("anything")
    assert not isinstance(err.value, RetryableError)


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_are_retryable(fresh_standin, forge, status):
    fresh_standin.fail_next(1, status, message="Bad Gateway")
    with pytest.raises(GitHubUnavailable) as err:
        forge.list_tags("anything")
    assert f"{status}" in str(err.value) and fresh_standin.token not in _texts(err.value)


def test_connection_refused_is_retryable():
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    forge = GitHubForge(SecretStr("ghp_never_shown_0123456789"), "org", base_url=f"http://127.0.0.1:{port}",
                        timeout=5, seconds_between_requests=None, seconds_between_writes=None)
    with pytest.raises(GitHubUnavailable) as err:
        forge.get_repo("anything")
    assert "ghp_never_shown_0123456789" not in _texts(err.value)


def test_a_refusal_carries_githubs_message(fresh_standin, forge):
    forge.create_repo("refusal")
    forge.create_branch("refusal", "same")
    with pytest.raises(TerminalError, match="No commits between main and same") as err:
        forge.open_pull_request("refusal", "same", "main", "t", "b")
    assert "422" in str(err.value) and fresh_standin.token not in _texts(err.value)
    assert fresh_standin.violations == []
    forge.delete_repo("refusal")


def test_a_branch_that_moved_during_a_commit_is_a_retryable_race(fresh_standin, forge, monkeypatch):
    forge.create_repo("race")
    real_commit_tree = GitHubForge._commit_tree
    other = standin_forge(fresh_standin)

    def commit_then_someone_pushes(self, gh_repo, parent, entries, message, author):
        sha = real_commit_tree(self, gh_repo, parent, entries, message, author)
        if self is not other:  # the other writer's own commit goes through untouched
            other.commit_files("race", {"other.txt": "pushed meanwhile\n"}, "someone else")
        return sha

    monkeypatch.setattr(GitHubForge, "_commit_tree", commit_then_someone_pushes)
    with pytest.raises(GitHubRace, match="not a fast forward"):
        forge.commit_files("race", {"mine.txt": "mine\n"}, "mine")
    monkeypatch.undo()
    assert forge.read_file("race", "other.txt") == "pushed meanwhile\n"
    assert forge.read_file("race", "mine.txt") is None  # never forced over the other commit
    assert forge.commit_files("race", {"mine.txt": "mine\n"}, "mine") is not None  # the retry succeeds
    assert fresh_standin.violations == []
    forge.delete_repo("race")


def test_repository_from_a_template(fresh_standin, forge):
    forge.create_repo("service-template")
    forge.commit_files("service-template", {"Dockerfile": "FROM scratch\n"}, "template content")
    fresh_standin.mark_template("service-template")
    from_template = standin_forge(fresh_standin, template=f"{fresh_standin.org}/service-template")
    info, created = from_template.create_repo("from-template", description="made from the template")
    assert created and info.default_branch == "main"
    assert from_template.read_file("from-template", "Dockerfile") == "FROM scratch\n"
    assert "repos/create-using-template" in fresh_standin.operations()
    assert fresh_standin.violations == []
    with pytest.raises(NotFound):
        standin_forge(fresh_standin, template=f"{fresh_standin.org}/no-such-template").create_repo("x")
    for name in ("service-template", "from-template"):
        forge.delete_repo(name)


def test_pygithubs_own_protection_body_breaks_the_description(fresh_standin, forge):
    """Why _github_settings.py writes the protection body itself: PyGithub 2.10's
    Branch.edit_protection sends null for booleans and leaves out ``contexts``."""
    from github.Branch import Branch

    forge.create_repo("protect-raw")
    gh_repo = forge._gh.get_repo(f"{fresh_standin.org}/protect-raw")
    branch = Branch(gh_repo._requester, {}, {"name": "main", "protected": False,
                                              "protection_url": f"{gh_repo.url}/branches/main/protection"})
    with pytest.raises(Exception):  # noqa: B017 - the stand-in answers 422; PyGithub's exception type is beside the point
        branch.edit_protection(strict=True, checks=["test"], required_approving_review_count=1)
    [violation] = fresh_standin.violations
    assert violation.operation == "repos/update-branch-protection" and violation.where == "body"
    assert any("'contexts' is a required property" in e for e in violation.errors)
    assert any("None is not of type 'boolean'" in e for e in violation.errors)
    fresh_standin.violations.clear()
    assert forge.protect_branch("protect-raw", required_checks=["test"]) is True
    assert fresh_standin.violations == []
    forge.delete_repo("protect-raw")


def test_a_repository_created_concurrently_is_adopted(fresh_standin, forge, monkeypatch):
    standin_forge(fresh_standin).create_repo("raced")
    fresh_standin.calls.clear()
    looks = []
    real_get_repo = GitHubForge.get_repo

    def first_look_finds_nothing(self, name):  # as if the other caller created it just after
        looks.append(name)
        return None if len(looks) == 1 else real_get_repo(self, name)

    monkeypatch.setattr(GitHubForge, "get_repo", first_look_finds_nothing)
    info, created = forge.create_repo("raced")
    assert not created and info.name == "raced"
    assert [c.status for c in fresh_standin.calls if c.operation == "repos/create-in-org"] == [422]
    assert fresh_standin.violations == []
    monkeypatch.undo()
    forge.delete_repo("raced")
