"""``GitHubForge``: the ``Forge`` interface over GitHub's REST API, through PyGithub.

    forge = GitHubForge(SecretStr(token), "my-org")
    info, created = forge.create_repo("shop-orders", description="Orders service")
    forge.commit_files("shop-orders", {"README.md": "orders\\n", "values.yaml": "replicas: 1\\n"}, "Add files")

How it maps onto GitHub:
- Repositories are created in ``owner`` (an organisation, or the token's own user), from
  ``template`` when one is given. GitHub's git data API refuses empty repositories, so a new
  repository starts with GitHub's initial README commit on ``default_branch``.
- ``commit_files`` uses the git data API (blobs, one tree, one commit, a fast-forward-only ref
  update), so many files land in one commit; unchanged content makes no commit and no blob.
- Reverts are built from trees: the files the merge changed get back their first parent's
  blobs, and only when ``base`` has not changed those files since (otherwise TerminalError).
- Branch protection uses the classic protection API (PyGithub has no rulesets API).
- Retries: PyGithub's own retry is switched off (``retry=None``) and nothing waits here; a 429,
  a secondary rate limit or a 5xx becomes ``GitHubRateLimited``/``GitHubUnavailable`` carrying
  GitHub's Retry-After, and the one retry policy (tasks/retry.py) decides.
"""
from __future__ import annotations

import base64
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal
from urllib.parse import quote

from github import Auth, Github, InputGitTreeElement
from github.GitRef import GitRef
from github.PullRequest import PullRequest as GhPullRequest
from github.Repository import Repository
from pydantic import SecretStr

from stageflow.adapters.forge._github_errors import GitHubRefused, github_errors
from stageflow.adapters.forge._github_git import blob_index, change_entries, commit_tree, revert_entries
from stageflow.adapters.forge._github_settings import GitHubRepositorySettings
from stageflow.adapters.forge.base import (
    DEFAULT_AUTHOR, PullRequest, PullRequestState, Release, RepoInfo, revert_branch_name, validate_commit,
    validate_ref_name, validate_repo_name,
)
from stageflow.adapters.git import validate_tree_paths
from stageflow.errors import NotFound, Problem, TerminalError, ValidationFailed

__all__ = ["GitHubForge"]


class GitHubForge(GitHubRepositorySettings):
    """A ``Forge`` over the repositories of one GitHub organisation or user."""

    def __init__(self, token: SecretStr, owner: str, *, base_url: str = "https://api.github.com",
                 template: str | None = None, private: bool = True, timeout: float = 30,
                 seconds_between_requests: float | None = 0.25, seconds_between_writes: float | None = 1.0):
        """``template``: "owner/name" of a template repository new repositories are made from.
        The throttle defaults are PyGithub's (GitHub asks for a pause between writes); the
        contract tests pass None to run against the stand-in at full speed."""
        if not isinstance(token, SecretStr):
            raise ValidationFailed(Problem("token", "must be a pydantic SecretStr"), summary="invalid GitHub credentials")
        self.owner = owner
        self.base_url = base_url.rstrip("/")
        self.template = template
        self.private = private
        self._gh = Github(auth=Auth.Token(token.get_secret_value()), base_url=self.base_url, timeout=int(timeout),
                          retry=None, per_page=100, seconds_between_requests=seconds_between_requests,
                          seconds_between_writes=seconds_between_writes)

    def __repr__(self) -> str:
        return f"GitHubForge(owner={self.owner!r}, base_url={self.base_url!r})"

    # --- repositories -------------------------------------------------------------------------
    def create_repo(self, name: str, *, description: str = "",
                    default_branch: str = "main") -> tuple[RepoInfo, bool]:
        validate_repo_name(name)
        validate_ref_name(default_branch, field="default_branch")
        if (existing := self.get_repo(name)) is not None:
            return existing, False
        try:
            repo = self._create(name, description, default_branch)
        except GitHubRefused as exc:
            # A concurrent caller created it first (422 "name already exists"): adopt theirs.
            if exc.status == 422 and (raced := self.get_repo(name)) is not None:
                return raced, False
            raise
        return _repo_info(repo), True

    def get_repo(self, name: str) -> RepoInfo | None:
        validate_repo_name(name)
        try:
            return _repo_info(self._repo(name))
        except NotFound:
            return None

    def delete_repo(self, name: str) -> bool:
        validate_repo_name(name)
        try:
            repo = self._repo(name)
            with github_errors(f"delete repository {self.owner}/{name}"):
                repo.delete()
        except NotFound:
            return False
        return True

    # --- files and commits --------------------------------------------------------------------
    def read_file(self, repo: str, path: str, ref: str = "main") -> str | None:
        gh_repo = self._repo(repo)
        validate_ref_name(ref, field="ref")
        validate_tree_paths([path], field="path")
        with self._absent_is_none(), github_errors(f"read {path} at {ref} in {gh_repo.full_name}"):
            found = gh_repo.get_contents(path, ref=ref)
            if isinstance(found, list) or found.type != "file":
                return None  # a directory (or a submodule, a symlink) is not a file to read
            if found.encoding == "base64":
                return found.decoded_content.decode("utf-8", errors="replace")
            # Over 1 MB the contents API leaves the content out; the blob API still has it.
            blob = gh_repo.get_git_blob(found.sha)
            return base64.b64decode(blob.content).decode("utf-8", errors="replace")
        return None

    def commit_files(self, repo: str, files: dict[str, str | None], message: str, *,
                     branch: str = "main", base: str | None = None,
                     author: tuple[str, str] = DEFAULT_AUTHOR) -> str | None:
        gh_repo = self._repo(repo)
        validate_commit(files, message, branch=branch, base=base)
        ref = self._branch_ref(gh_repo, branch)
        start = ref.object.sha if ref is not None else self._require_branch(gh_repo, base or gh_repo.default_branch)
        entries = change_entries(gh_repo, blob_index(gh_repo, start), files)
        with github_errors(f"commit to {branch} of {gh_repo.full_name}"):
            if not entries:
                if ref is None:
                    gh_repo.create_git_ref(f"refs/heads/{branch}", start)  # the caller still wants the branch
                return None
            commit = self._commit_tree(gh_repo, start, entries, message, author)
            # Create the branch, or fast-forward it: never forced, so a lost race is a GitHubRace.
            if ref is None:
                gh_repo.create_git_ref(f"refs/heads/{branch}", commit)
            else:
                ref.edit(commit, force=False)
            return commit

    def head_commit(self, repo: str, ref: str = "main") -> str | None:
        gh_repo = self._repo(repo)
        validate_ref_name(ref, field="ref")
        return self._commit_sha(gh_repo, ref)

    # --- branches -----------------------------------------------------------------------------
    def list_branches(self, repo: str) -> list[str]:
        gh_repo = self._repo(repo)
        with github_errors(f"list branches of {gh_repo.full_name}"):
            return sorted(branch.name for branch in gh_repo.get_branches())

    def create_branch(self, repo: str, name: str, from_ref: str = "main") -> bool:
        gh_repo = self._repo(repo)
        validate_ref_name(name, field="branch")
        validate_ref_name(from_ref, field="from_ref")
        if self._branch_ref(gh_repo, name) is not None:
            return False
        start = self._commit_sha(gh_repo, from_ref)
        if start is None:
            raise NotFound(f"cannot create branch {name!r} in {repo!r}: ref {from_ref!r} does not exist")
        with github_errors(f"create branch {name} in {gh_repo.full_name}"):
            gh_repo.create_git_ref(f"refs/heads/{name}", start)
        return True

    def delete_branch(self, repo: str, name: str) -> bool:
        gh_repo = self._repo(repo)
        validate_ref_name(name, field="branch")
        ref = self._branch_ref(gh_repo, name)
        if ref is None:
            return False
        if name == gh_repo.default_branch:
            raise TerminalError(f"refusing to delete the default branch {name!r} of {repo!r}")
        try:
            with github_errors(f"delete branch {name} of {gh_repo.full_name}"):
                ref.delete()
        except NotFound:
            return False  # deleted by someone else in between
        return True

    # --- pull requests ------------------------------------------------------------------------
    def find_pull_request(self, repo: str, head: str, base: str = "main",
                          state: PullRequestState | Literal["all"] = "open") -> PullRequest | None:
        gh_repo = self._repo(repo)
        validate_ref_name(head, field="head")
        validate_ref_name(base, field="base")
        api_state = {"open": "open", "merged": "closed", "closed": "closed"}.get(state, "all")
        with github_errors(f"find pull requests in {gh_repo.full_name}"):
            pulls = [_pull(pr) for pr in gh_repo.get_pulls(state=api_state, head=f"{gh_repo.owner.login}:{head}",
                                                           base=base)]
        matches = [pr for pr in pulls if pr.head == head and pr.base == base and state in ("all", pr.state)]
        return max(matches, key=lambda pr: pr.number, default=None)

    def open_pull_request(self, repo: str, head: str, base: str, title: str,
                          body: str) -> tuple[PullRequest, bool]:
        if head == base:
            raise ValidationFailed(Problem("head", "must differ from base"), summary="invalid pull request")
        if (existing := self.find_pull_request(repo, head, base, "open")) is not None:
            return existing, False
        gh_repo = self._repo(repo)
        for role, branch in (("head", head), ("base", base)):
            if self._branch_ref(gh_repo, branch) is None:
                raise NotFound(f"cannot open a pull request in {repo!r}: {role} branch {branch!r} does not exist")
        try:
            with github_errors(f"open pull request {head} -> {base} in {gh_repo.full_name}"):
                return _pull(gh_repo.create_pull(base=base, head=head, title=title, body=body)), True
        except TerminalError as exc:
            # Another caller opened it in between: GitHub says so with a 422; adopt theirs.
            if "already exists" in str(exc) and (raced := self.find_pull_request(repo, head, base)) is not None:
                return raced, False
            raise

    def get_pull_request(self, repo: str, number: int) -> PullRequest | None:
        gh_repo = self._repo(repo)
        try:
            return _pull(self._gh_pull(gh_repo, number))
        except NotFound:
            return None

    def merge_pull_request(self, repo: str, number: int, message: str | None = None) -> PullRequest:
        gh_repo = self._repo(repo)
        pr = self._require_pull(gh_repo, number)
        if pr.state == "merged":
            return pr
        if pr.state == "closed":
            raise TerminalError(f"pull request #{number} in {repo!r} is closed and cannot be merged")
        text = message or f"Merge pull request #{number} from {pr.head}\n\n{pr.title}\n"
        title, _, rest = text.partition("\n")
        with github_errors(f"merge pull request #{number} in {gh_repo.full_name}"):
            self._gh_pull(gh_repo, number).merge(commit_title=title, commit_message=rest.strip("\n"),
                                                 merge_method="merge")
        return self._require_pull(gh_repo, number)

    def close_pull_request(self, repo: str, number: int) -> PullRequest:
        gh_repo = self._repo(repo)
        pr = self._require_pull(gh_repo, number)
        if pr.state != "open":
            return pr
        with github_errors(f"close pull request #{number} in {gh_repo.full_name}"):
            self._gh_pull(gh_repo, number).edit(state="closed")
        return self._require_pull(gh_repo, number)

    def revert_pull_request(self, repo: str, number: int, *,
                            title: str | None = None) -> tuple[PullRequest, bool]:
        gh_repo = self._repo(repo)
        pr = self._require_pull(gh_repo, number)
        if pr.state != "merged" or pr.merge_commit is None:
            raise TerminalError(f"pull request #{number} in {repo!r} is {pr.state}, only a merged one can be reverted")
        branch = revert_branch_name(number)
        for state in ("open", "merged"):
            if (earlier := self.find_pull_request(repo, branch, pr.base, state)) is not None:
                return earlier, False
        if self._branch_ref(gh_repo, branch) is None:
            self._push_revert(gh_repo, pr, branch)
        body = f"Reverts #{number} (merge commit {pr.merge_commit})."
        return self.open_pull_request(repo, branch, pr.base, title or f'Revert "{pr.title}"', body)

    # --- releases and tags --------------------------------------------------------------------
    def create_release(self, repo: str, tag: str, *, ref: str = "main", name: str | None = None,
                       body: str = "") -> tuple[Release, bool]:
        validate_ref_name(tag, field="tag")
        validate_ref_name(ref, field="ref")
        if (existing := self.get_release(repo, tag)) is not None:
            return existing, False
        gh_repo = self._repo(repo)
        # A tag pushed without a release is adopted as it stands: tags are immutable.
        commit = self._tag_commit(gh_repo, tag) or self._commit_sha(gh_repo, ref)
        if commit is None:
            raise NotFound(f"cannot release {tag!r} in {repo!r}: ref {ref!r} does not exist")
        with github_errors(f"create release {tag} in {gh_repo.full_name}"):
            gh_repo.create_git_release(tag, name=name or tag, message=body, target_commitish=commit)
        return Release(tag=tag, name=name or tag, body=body, commit=commit), True

    def get_release(self, repo: str, tag: str) -> Release | None:
        gh_repo = self._repo(repo)
        validate_ref_name(tag, field="tag")
        try:
            with github_errors(f"get release {tag} of {gh_repo.full_name}"):
                release = gh_repo.get_release(tag)
        except NotFound:
            return None
        commit = self._tag_commit(gh_repo, tag)
        if commit is None:
            return None  # a draft release whose tag does not exist yet is not a release for us
        return Release(tag=tag, name=release.name or tag, body=release.body or "", commit=commit)

    def list_tags(self, repo: str) -> list[str]:
        gh_repo = self._repo(repo)
        with github_errors(f"list tags of {gh_repo.full_name}"):
            return sorted(tag.name for tag in gh_repo.get_tags())

    # --- helpers ------------------------------------------------------------------------------
    def _repo(self, name: str) -> Repository:
        """The repository, or NotFound (one GET, which also gives its default branch)."""
        validate_repo_name(name)
        with github_errors(f"repository {self.owner}/{name}"):
            return self._gh.get_repo(f"{self.owner}/{name}")

    def _create(self, name: str, description: str, default_branch: str) -> Repository:
        """POST the repository (in the org, for the user, or from the template), then give its
        default branch the asked-for name."""
        with github_errors(f"create repository {self.owner}/{name}"):
            owner = self._gh.get_user(self.owner)
            is_org = owner.type == "Organization"
            account = self._gh.get_organization(self.owner) if is_org else self._gh.get_user()
            if self.template:
                template = self._gh.get_repo(self.template)
                repo = account.create_repo_from_template(name, template, description=description, private=self.private)
            else:
                repo = account.create_repo(name, description=description, private=self.private, auto_init=True)
            if repo.default_branch != default_branch:
                # Not Repository.rename_branch: it hides a refusal behind a False.
                self._gh.requester.requestJsonAndCheck(
                    "POST", f"{repo.url}/branches/{quote(repo.default_branch, safe='')}/rename",
                    input={"new_name": default_branch})
                repo = self._gh.get_repo(repo.full_name)
        return repo

    @contextmanager
    def _absent_is_none(self) -> Iterator[None]:
        """For probes: 404 means "no"; GitHub answers 422 for refs it cannot resolve."""
        try:
            yield
        except NotFound:
            pass
        except GitHubRefused as exc:
            if exc.status not in (409, 422):  # 409: the repository is empty
                raise

    def _branch_ref(self, gh_repo: Repository, branch: str) -> GitRef | None:
        with self._absent_is_none(), github_errors(f"branch {branch} of {gh_repo.full_name}"):
            return gh_repo.get_git_ref(f"heads/{branch}")
        return None

    def _require_branch(self, gh_repo: Repository, branch: str) -> str:
        ref = self._branch_ref(gh_repo, branch)
        if ref is None:
            raise NotFound(f"branch {branch!r} does not exist in {gh_repo.name!r}")
        return ref.object.sha

    def _commit_sha(self, gh_repo: Repository, ref: str) -> str | None:
        with self._absent_is_none(), github_errors(f"resolve {ref} in {gh_repo.full_name}"):
            return gh_repo.get_commit(ref).sha
        return None

    def _tag_commit(self, gh_repo: Repository, tag: str) -> str | None:
        with self._absent_is_none(), github_errors(f"tag {tag} of {gh_repo.full_name}"):
            target = gh_repo.get_git_ref(f"tags/{tag}").object
            if target.type == "tag":  # annotated: peel to the commit
                return gh_repo.get_git_tag(target.sha).object.sha
            return target.sha
        return None

    def _commit_tree(self, gh_repo: Repository, parent: str, entries: list[InputGitTreeElement],
                     message: str, author: tuple[str, str]) -> str:
        return commit_tree(gh_repo, parent, entries, message, author)

    def _gh_pull(self, gh_repo: Repository, number: int) -> GhPullRequest:
        with github_errors(f"pull request #{number} of {gh_repo.full_name}"):
            return gh_repo.get_pull(int(number))

    def _require_pull(self, gh_repo: Repository, number: int) -> PullRequest:
        try:
            return _pull(self._gh_pull(gh_repo, number))
        except NotFound:
            raise NotFound(f"pull request #{number} does not exist in {gh_repo.name!r}") from None

    def _push_revert(self, gh_repo: Repository, pr: PullRequest, branch: str) -> None:
        """Create ``branch`` on ``pr.base`` with a commit undoing ``pr``'s merge commit, measured
        against its first parent (the base side)."""
        merge_commit = pr.merge_commit or ""
        with github_errors(f"revert #{pr.number} in {gh_repo.full_name}"):
            before = gh_repo.get_git_commit(merge_commit).parents[0].sha
        tip = self._require_branch(gh_repo, pr.base)
        entries = revert_entries(blob_index(gh_repo, before), blob_index(gh_repo, merge_commit),
                                 blob_index(gh_repo, tip), f"pull request #{pr.number} in {gh_repo.name!r}")
        message = f'Revert "{pr.title}"\n\nThis reverts pull request #{pr.number}, merge commit {merge_commit}.\n'
        commit = self._commit_tree(gh_repo, tip, entries, message, DEFAULT_AUTHOR)
        with github_errors(f"revert #{pr.number} in {gh_repo.full_name}"):
            gh_repo.create_git_ref(f"refs/heads/{branch}", commit)


def _repo_info(repo: Repository) -> RepoInfo:
    return RepoInfo(name=repo.name, clone_url=repo.clone_url, default_branch=repo.default_branch, web_url=repo.html_url)


def _pull(pr: GhPullRequest) -> PullRequest:
    merged = pr.merged_at is not None
    return PullRequest(number=pr.number, title=pr.title, body=pr.body or "", head=pr.head.ref, base=pr.base.ref,
                       state="merged" if merged else ("open" if pr.state == "open" else "closed"),
                       merge_commit=pr.merge_commit_sha if merged else None, web_url=pr.html_url)

