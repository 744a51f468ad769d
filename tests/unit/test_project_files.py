"""prefect.yaml and the blocks: every deployment's entrypoint loads a real flow."""
from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_every_deployment_entrypoint_is_a_flow_with_a_parameter_schema():
    from prefect.flows import load_flow_from_entrypoint
    from prefect.utilities.callables import parameter_schema

    config = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    names = [d["name"] for d in config["deployments"]]
    assert {"build-to-test", "sync-stage", "onboard-service", "update-service-template", "release-to-prod",
            "rollback"} <= set(names)
    # A flow that suspends for approval must not hold a deployment concurrency slot (Prefect
    # crashes such paused runs); those flows serialise with a global concurrency limit instead.
    for deployment in config["deployments"]:
        if deployment["name"] in ("release-to-prod", "rollback"):
            assert "concurrency_limit" not in deployment
    for deployment in config["deployments"]:
        flow = load_flow_from_entrypoint(str(ROOT / deployment["entrypoint"]))
        assert flow.name == deployment["name"]
        schema = parameter_schema(flow).model_dump()
        assert schema["properties"], f"{flow.name} takes parameters"
        assert all(p.get("description") for p in schema["properties"].values()), f"{flow.name}: describe every parameter"


def test_platform_block_converts_to_settings(tmp_path):
    from blocks.platform import StageflowPlatform

    block = StageflowPlatform(home=tmp_path, prefect_api_url="http://127.0.0.1:4200/api", registry="127.0.0.1:5000",
                              kubeconfig=tmp_path / "kubeconfig", forge_root=tmp_path / "forge")
    settings = block.to_settings()
    assert settings.registry == "127.0.0.1:5000" and settings.infra_repo == "infrastructure"


def test_platform_block_carries_the_github_forge_settings(tmp_path):
    from blocks.platform import StageflowPlatform

    block = StageflowPlatform(home=tmp_path, prefect_api_url="http://127.0.0.1:4200/api", registry="ghcr.io",
                              kubeconfig=tmp_path / "kubeconfig", forge_root=tmp_path / "forge",
                              forge_kind="github", github_owner="acme")
    settings = block.to_settings()
    assert settings.forge_kind == "github" and settings.github_owner == "acme"
    assert settings.github_credentials_block == "stageflow-github"


def test_a_github_infra_repo_is_reached_with_the_token_as_basic_auth(tmp_path, monkeypatch):
    import base64

    from stageflow.settings import PlatformSettings
    from tasks.forge import git_auth_header

    base = dict(home=tmp_path, prefect_api_url="http://127.0.0.1:4200/api", registry="ghcr.io",
                kubeconfig=tmp_path / "kubeconfig", forge_root=tmp_path / "forge")
    assert git_auth_header(PlatformSettings(**base)) is None  # the local forge needs none
    monkeypatch.setenv("STAGEFLOW_GITHUB_TOKEN", "ghp_example")
    header = git_auth_header(PlatformSettings(**base, forge_kind="github", github_owner="acme"))
    expected = base64.b64encode(b"x-access-token:ghp_example").decode()
    assert header.get_secret_value() == f"Authorization: Basic {expected}"
    assert "ghp_example" not in repr(header)
