"""Pytest fixtures for the GitHub forge contract tests: one stand-in per session, and a
``target`` that is the stand-in or real GitHub (when STAGEFLOW_GITHUB_TOKEN and
STAGEFLOW_GITHUB_ORG are set). Import the fixtures into a test module to use them."""
from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from pydantic import SecretStr

from stageflow.adapters.forge.github import GitHubForge
from tests.support.github_api import GitHubStandIn
from tests.support.openapi import DescriptionMissing, load_description

REAL_GITHUB_SKIP = ("STAGEFLOW_GITHUB_TOKEN and STAGEFLOW_GITHUB_ORG are not set: "
                    "the contract tests against real GitHub need a token and an organisation to create repositories in")


@dataclass
class Target:
    """Where a contract test runs: ``standin`` is None against real GitHub."""
    forge: GitHubForge
    standin: GitHubStandIn | None
    token: str
    reviewer: str            # a login that may review deployments
    names: list[str]

    def repo_name(self, stem: str) -> str:
        name = f"sf-contract-{stem}-{uuid.uuid4().hex[:8]}"
        self.names.append(name)
        return name

    def assert_clean(self) -> None:
        """Every request and answer so far matched GitHub's description (stand-in only)."""
        if self.standin is not None:
            assert self.standin.violations == []


@pytest.fixture(scope="session")
def standin() -> Iterator[GitHubStandIn]:
    try:
        description = load_description()
    except DescriptionMissing as exc:
        pytest.skip(f"GitHub's OpenAPI description is not installed ({exc})")
    with GitHubStandIn(description) as server:
        yield server


@pytest.fixture
def fresh_standin(standin: GitHubStandIn) -> GitHubStandIn:
    standin.violations.clear()
    standin.calls.clear()
    standin._faults.clear()
    return standin


def standin_forge(standin: GitHubStandIn, **kwargs: object) -> GitHubForge:
    return GitHubForge(SecretStr(standin.token), standin.org, base_url=standin.base_url,
                       seconds_between_requests=None, seconds_between_writes=None, **kwargs)  # type: ignore[arg-type]


@pytest.fixture(params=["stand-in", "github"])
def target(request: pytest.FixtureRequest) -> Iterator[Target]:
    if request.param == "stand-in":
        server = request.getfixturevalue("fresh_standin")
        found = Target(standin_forge(server), server, server.token, "alice", [])
    else:
        token, org = os.environ.get("STAGEFLOW_GITHUB_TOKEN"), os.environ.get("STAGEFLOW_GITHUB_ORG")
        if not token or not org:
            pytest.skip(REAL_GITHUB_SKIP)
        forge = GitHubForge(SecretStr(token), org, private=True)
        found = Target(forge, None, token, forge._gh.get_user().login, [])
    yield found
    for name in found.names:
        found.forge.delete_repo(name)
    found.assert_clean()
