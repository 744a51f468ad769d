"""LocalForge against real bare repositories (git CLI, tmp_path)."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from stageflow.adapters.forge import Forge, LocalForge
from stageflow.adapters.git import run_git
from stageflow.errors import NotFound, TerminalError, ValidationFailed


@pytest.fixture
def forge(tmp_path: Path) -> LocalForge:
    return LocalForge(tmp_path / "forge")


@pytest.fixture
def repo(forge: LocalForge) -> str:
    forge.create_repo("shop")
    forge.commit_files("shop", {"README.md": "shop\n", "values.yaml": "replicas: 1\n"}, "Initial commit")
    return "shop"


def git_dir(forge: LocalForge, name: str) -> Path:
    return forge.root / f"{name}.git"


def commit_count(forge: LocalForge, name: str, ref: str = "main") -> int:
    return int(run_git(["rev-list", "--count", ref], git_dir(forge, name)).strip())


def test_local_forge_satisfies_the_interface(forge):
    assert isinstance(forge, Forge)


def test_create_repo_then_adopt_it(forge):
    info, created = forge.create_repo("orders", description="Orders service", default_branch="trunk")
    assert created
    assert info.name == "orders" and info.default_branch == "trunk"
    assert info.clone_url == git_dir(forge, "orders").as_uri()
    assert run_git(["rev-parse", "--is-bare-repository"], git_dir(forge, "orders")).strip() == "true"

    again, created_again = forge.create_repo("orders", default_branch="main")
    assert not created_again
    assert again == info  # adopted as it is, not re-initialised with other settings
    assert forge.get_repo("orders") == info
    assert forge.get_repo("missing") is None


def test_delete_repo_is_idempotent(forge):
    forge.create_repo("tmp")
    assert forge.delete_repo("tmp") is True
    assert forge.delete_repo("tmp") is False
    assert forge.get_repo("tmp") is None


def test_first_commit_into_an_empty_repo_and_reading_files(forge):
    forge.create_repo("app")
    assert forge.head_commit("app") is None
    assert forge.read_file("app", "a.txt") is None
    # Content is stored byte for byte: no newline translation on the way in or out.
    sha = forge.commit_files("app", {"a.txt": "line\r\nnext\n", "deep/dir/b.yaml": "b: 1\n"}, "first")
    assert sha is not None and forge.head_commit("app") == sha
    assert forge.read_file("app", "a.txt") == "line\r\nnext\n"
    assert forge.read_file("app", "deep/dir/b.yaml") == "b: 1\n"
    assert forge.read_file("app", "nope.txt") is None
    assert forge.read_file("app", "a.txt", ref="no-such-branch") is None
    parents = run_git(["rev-list", "--parents", "-n1", sha], git_dir(forge, "app")).split()
    assert parents == [sha]  # a root commit


def test_identical_content_makes_no_commit(forge, repo):
    before = forge.head_commit(repo)
    assert forge.commit_files(repo, {"values.yaml": "replicas: 1\n"}, "no-op") is None
    assert forge.commit_files(repo, {"never-existed.txt": None}, "no-op delete") is None
    assert forge.head_commit(repo) == before
    assert commit_count(forge, repo) == 1


def test_commit_deletes_and_writes_in_one_commit(forge, repo):
    before = forge.head_commit(repo)
    sha = forge.commit_files(repo, {"README.md": None, "values.yaml": "replicas: 2\n"}, "scale",
                             author=("Ada", "ada@example.com"))
    assert forge.read_file(repo, "README.md") is None
    assert forge.read_file(repo, "values.yaml") == "replicas: 2\n"
    assert forge.read_file(repo, "README.md", ref=before) == "shop\n"  # history keeps it
    assert commit_count(forge, repo) == 2
    author = run_git(["log", "-1", "--format=%an <%ae>|%s", sha], git_dir(forge, repo)).strip()
    assert author == "Ada <ada@example.com>|scale"


def test_branches_create_adopt_list_delete(forge, repo):
    main = forge.head_commit(repo)
    assert forge.create_branch(repo, "feature/x") is True
    assert forge.create_branch(repo, "feature/x") is False
    assert forge.list_branches(repo) == ["feature/x", "main"]
    assert forge.head_commit(repo, "feature/x") == main

    # commit_files creates a missing branch from base, leaving main alone.
    sha = forge.commit_files(repo, {"values.yaml": "replicas: 3\n"}, "on release", branch="release", base="feature/x")
    assert forge.read_file(repo, "values.yaml", ref="release") == "replicas: 3\n"
    assert forge.head_commit(repo, "main") == main and forge.head_commit(repo, "release") == sha

    with pytest.raises(NotFound):
        forge.create_branch(repo, "other", from_ref="does-not-exist")
    with pytest.raises(NotFound):
        forge.commit_files(repo, {"x": "y"}, "m", branch="other", base="does-not-exist")
    assert forge.delete_branch(repo, "feature/x") is True
    assert forge.delete_branch(repo, "feature/x") is False
    with pytest.raises(TerminalError, match="default branch"):
        forge.delete_branch(repo, "main")


def test_pull_request_open_adopt_merge_and_merge_again(forge, repo):
    forge.commit_files(repo, {"values.yaml": "replicas: 5\n"}, "scale up", branch="bump")
    pr, created = forge.open_pull_request(repo, "bump", "main", "Scale up", "five replicas")
    assert created and pr.number == 1 and pr.state == "open"
    adopted, created_again = forge.open_pull_request(repo, "bump", "main", "another title", "")
    assert not created_again and adopted == pr
    assert forge.find_pull_request(repo, "bump") == pr
    assert forge.find_pull_request(repo, "other") is None

    merged = forge.merge_pull_request(repo, pr.number)
    assert merged.state == "merged" and merged.merge_commit == forge.head_commit(repo)
    assert forge.read_file(repo, "values.yaml") == "replicas: 5\n"
    parents = run_git(["rev-list", "--parents", "-n1", merged.merge_commit], git_dir(forge, repo)).split()
    assert len(parents) == 3  # a real merge commit (sha + two parents)

    assert forge.merge_pull_request(repo, pr.number) == merged
    assert forge.get_pull_request(repo, pr.number) == merged
    assert forge.find_pull_request(repo, "bump", state="open") is None
    assert forge.find_pull_request(repo, "bump", state="merged") == merged
    # The head branch may get a new PR once the old one is merged.
    forge.commit_files(repo, {"values.yaml": "replicas: 6\n"}, "again", branch="bump")
    second, created = forge.open_pull_request(repo, "bump", "main", "Scale more", "")
    assert created and second.number == 2


def test_conflicting_pull_request_is_terminal_and_stays_open(forge, repo):
    forge.commit_files(repo, {"values.yaml": "replicas: 7\n"}, "seven", branch="seven")
    forge.commit_files(repo, {"values.yaml": "replicas: 9\n"}, "nine on main")
    pr, _ = forge.open_pull_request(repo, "seven", "main", "Seven", "")
    main_before = forge.head_commit(repo)
    with pytest.raises(TerminalError, match="cannot be merged") as caught:
        forge.merge_pull_request(repo, pr.number)
    assert not isinstance(caught.value, NotFound)
    assert forge.get_pull_request(repo, pr.number).state == "open"
    assert forge.head_commit(repo) == main_before

    closed = forge.close_pull_request(repo, pr.number)
    assert closed.state == "closed" and forge.close_pull_request(repo, pr.number) == closed
    with pytest.raises(TerminalError, match="closed"):
        forge.merge_pull_request(repo, pr.number)
    with pytest.raises(NotFound):
        forge.merge_pull_request(repo, 99)


def test_pull_request_needs_existing_branches(forge, repo):
    with pytest.raises(NotFound, match="head branch"):
        forge.open_pull_request(repo, "ghost", "main", "t", "")
    with pytest.raises(ValidationFailed):
        forge.open_pull_request(repo, "main", "main", "t", "")


def test_releases_create_annotated_tags_and_adopt(forge, repo):
    head = forge.head_commit(repo)
    release, created = forge.create_release(repo, "v1.0.0", name="First", body="notes")
    assert created and release.commit == head and release.name == "First"
    assert run_git(["cat-file", "-t", "v1.0.0"], git_dir(forge, repo)).strip() == "tag"  # annotated

    forge.commit_files(repo, {"values.yaml": "replicas: 4\n"}, "later")
    again, created_again = forge.create_release(repo, "v1.0.0", body="different")
    assert not created_again and again == release
    assert forge.get_release(repo, "v1.0.0") == release
    assert forge.get_release(repo, "v2.0.0") is None

    # A tag pushed without a release is adopted where it points, not moved.
    run_git(["tag", "v0.9", head], git_dir(forge, repo))
    adopted, created_adopted = forge.create_release(repo, "v0.9")
    assert created_adopted and adopted.commit == head
    assert forge.list_tags(repo) == ["v0.9", "v1.0.0"]
    with pytest.raises(NotFound):
        forge.create_release(repo, "v3", ref="no-such-ref")


@pytest.mark.parametrize("name", ["Bad", "-x", "a/b", "../etc", "x.git", "", "a" * 101])
def test_invalid_repo_names_are_refused(forge, name):
    with pytest.raises(ValidationFailed) as caught:
        forge.create_repo(name)
    assert [p.field for p in caught.value.problems] == ["repository"]
    assert not forge.root.exists() or not any(forge.root.iterdir())


def test_invalid_paths_and_refs_are_refused(forge, repo):
    for path in ["../escape", "/abs", "a//b", ".git/config", "x/./y"]:
        with pytest.raises(ValidationFailed):
            forge.commit_files(repo, {path: "x"}, "m")
    with pytest.raises(ValidationFailed):
        forge.create_branch(repo, "--force")
    with pytest.raises(ValidationFailed):
        forge.read_file(repo, "README.md", ref="-p")
    with pytest.raises(NotFound):
        forge.commit_files("missing", {"a": "b"}, "m")
    assert commit_count(forge, repo) == 1


def test_concurrent_writers_on_several_repos_and_one_repo(forge):
    names = ["r1", "r2", "r3"]
    for name in names:
        forge.create_repo(name)

    def write(job: tuple[str, int]) -> str | None:
        name, i = job
        return forge.commit_files(name, {f"file-{i}.txt": f"{i}\n"}, f"write {i}")

    jobs = [(name, i) for name in names for i in range(4)]
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(write, jobs))
    assert all(results)
    for name in names:
        assert commit_count(forge, name) == 4  # nothing lost, one commit per writer
        assert all(forge.read_file(name, f"file-{i}.txt") == f"{i}\n" for i in range(4))


@pytest.mark.parametrize("files, message, field", [
    ({"a.txt": "x"}, "   ", "message"),
    ({"../a.txt": "x"}, "ok", "files['../a.txt']"),
])
def test_a_bad_commit_request_is_refused_before_anything_is_written(forge: LocalForge, files, message, field) -> None:
    forge.create_repo("svc")
    with pytest.raises(ValidationFailed) as caught:
        forge.commit_files("svc", files, message)
    assert any(field in p.field for p in caught.value.problems), str(caught.value)
    assert forge.head_commit("svc") is None
