"""Git forges: the ``Forge`` interface, its data types and the embedded ``LocalForge``."""
from stageflow.adapters.forge.base import (
    DEFAULT_AUTHOR, Forge, PullRequest, PullRequestState, Release, RepoInfo, validate_ref_name, validate_repo_name,
)
from stageflow.adapters.forge.local import LocalForge

__all__ = [
    "DEFAULT_AUTHOR",
    "Forge",
    "LocalForge",
    "PullRequest",
    "PullRequestState",
    "Release",
    "RepoInfo",
    "validate_ref_name",
    "validate_repo_name",
]
