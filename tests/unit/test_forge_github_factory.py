"""Choosing the GitHub forge: settings, the factory and the GitHubCredentials block."""
from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from blocks.github import GitHubCredentials
from stageflow.adapters.forge.factory import TOKEN_ENV, forge_from_settings
from stageflow.adapters.forge.github import GitHubForge
from stageflow.adapters.forge.local import LocalForge
from stageflow.errors import TerminalError
from stageflow.settings import PlatformSettings
from tests.support.github_fixtures import fresh_standin, standin  # noqa: F401 - fixtures


def _settings(tmp_path: Path, **github: object) -> PlatformSettings:
    return PlatformSettings(home=tmp_path, prefect_api_url="http://127.0.0.1:1/api", registry="127.0.0.1:5000",
                            kubeconfig=tmp_path / "kubeconfig", forge_root=tmp_path / "forge", **github)


def test_local_stays_the_default(tmp_path):
    assert isinstance(forge_from_settings(_settings(tmp_path)), LocalForge)


def test_github_settings_need_an_owner_and_never_hold_a_token(tmp_path):
    with pytest.raises(ValidationError, match="github_owner"):
        _settings(tmp_path, forge_kind="github")
    with pytest.raises(ValidationError):
        _settings(tmp_path, forge_kind="github", github_owner="org", github_token="ghp_x")


def test_the_factory_needs_a_token_from_the_caller_or_the_environment(tmp_path, monkeypatch, fresh_standin):
    settings = _settings(tmp_path, forge_kind="github", github_owner=fresh_standin.org,
                         github_api_url=fresh_standin.base_url)
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    with pytest.raises(TerminalError, match="stageflow-github"):
        forge_from_settings(settings)
    forge = forge_from_settings(settings, github_token=SecretStr(fresh_standin.token))
    assert isinstance(forge, GitHubForge) and forge.owner == fresh_standin.org
    assert forge.get_repo("not-there") is None  # it talks to the configured API root
    monkeypatch.setenv(TOKEN_ENV, fresh_standin.token)
    assert forge_from_settings(settings).get_repo("not-there") is None
    assert fresh_standin.violations == []


def test_the_credentials_block_makes_a_forge_and_hides_the_token(fresh_standin):
    block = GitHubCredentials(token=SecretStr(fresh_standin.token), owner=fresh_standin.org,
                              base_url=fresh_standin.base_url)
    assert fresh_standin.token not in repr(block) and fresh_standin.token not in str(block.model_dump())
    forge = block.get_forge()
    assert isinstance(forge, GitHubForge) and forge.get_repo("not-there") is None
