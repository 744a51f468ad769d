"""``stageflow-github``: the token and organisation the GitHub forge acts with, as a Prefect block.

    GitHubCredentials(token="ghp_...", owner="my-org").save("stageflow-github")
    forge = GitHubCredentials.load("stageflow-github").get_forge()

The token is a ``SecretStr``: Prefect stores it encrypted and shows it obfuscated, and it never
appears in platform.json, in a message or in a log line.
"""
from __future__ import annotations

from prefect.blocks.core import Block
from pydantic import Field, SecretStr

from stageflow.adapters.forge.github import GitHubForge


class GitHubCredentials(Block):
    """A GitHub token (fine-grained or classic) and the organisation whose repositories it manages."""

    _block_type_name = "Stageflow GitHub Credentials"
    _block_type_slug = "stageflow-github-credentials"
    _description = "Token and organisation for Stageflow's GitHub forge (repositories, PRs, releases, settings)."

    token: SecretStr = Field(description="token with repo, workflow and admin:repo_hook scopes (or the "
                                         "fine-grained equivalents: administration, contents, pull requests, "
                                         "secrets, variables, environments, webhooks)")
    owner: str = Field(description="organisation (or user) that owns the repositories")
    base_url: str = Field("https://api.github.com", description="REST API root (GitHub Enterprise: https://HOST/api/v3)")
    template: str | None = Field(None, description="owner/name of a template repository new repositories start from")

    def get_forge(self) -> GitHubForge:
        return GitHubForge(self.token, self.owner, base_url=self.base_url, template=self.template)
