"""InfraRepo against a real bare repository, including real push races between two checkouts."""
from __future__ import annotations

import os
import stat
import sys
import textwrap
from pathlib import Path

import pytest

import stageflow
from stageflow.adapters.git import GitCommandFailed, GitTransientError, PushRejected, run_git
from stageflow.errors import RetryableError, TerminalError, ValidationFailed
from stageflow.gitops import InfraRepo

SECRET_URL = "https://user:s3cret@127.0.0.1:9/x.git"  # port 9 (discard): connection refused
TRAILERS = {"Stageflow-Flow-Run": "run-1", "Stageflow-Source-Commit": "abc1234",
            "Stageflow-Image-Digest": "sha256:" + "a" * 64}


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    bare = tmp_path / "infra.git"
    run_git(["init", "--quiet", "--bare", str(bare)], None)
    run_git(["symbolic-ref", "HEAD", "refs/heads/main"], bare)
    return bare


@pytest.fixture
def seeded(remote: Path, tmp_path: Path) -> Path:
    InfraRepo(remote.as_uri(), tmp_path / "seed").commit_and_push(
        {"apps/shop/test/orders.yaml": "digest: one\n", "README.md": "infra\n"}, "Initialise")
    return remote


def remote_log(bare: Path) -> list[str]:
    return run_git(["log", "--format=%s", "main"], bare).splitlines()


def remote_file(bare: Path, path: str) -> str:
    return run_git(["cat-file", "blob", f"main:{path}"], bare)


def install_racing_hook(checkout: Path, other: InfraRepo, files: dict[str, str], message: str) -> Path:
    """A pre-push hook in ``checkout`` that, on the first push only, makes ``other`` push first.

    git has already read the remote's refs when pre-push runs, so the outer push then loses a
    real race on the remote ref, exactly as with two machines pushing at once."""
    marker = checkout.parent / f"{checkout.name}.raced"
    script = textwrap.dedent(f"""\
        import sys
        from pathlib import Path
        sys.path.insert(0, {str(Path(stageflow.__file__).parent.parent)!r})
        from stageflow.gitops import InfraRepo
        marker = Path({str(marker)!r})
        if not marker.exists():
            marker.touch()
            InfraRepo({other.clone_url!r}, Path({str(other.workdir)!r})).commit_and_push({files!r}, {message!r})
        """)
    hook = checkout / ".git" / "hooks" / "pre-push"
    hook.write_text(f"#!{sys.executable}\n{script}")
    hook.chmod(hook.stat().st_mode | stat.S_IXUSR)
    return marker


def test_first_commit_into_empty_remote_with_trailers_read_back(remote, tmp_path):
    infra = InfraRepo(remote.as_uri(), tmp_path / "infra", author=("Flow Bot", "bot@example.com"))
    assert infra.sync() == tmp_path / "infra"
    assert infra.log() == []
    sha = infra.commit_and_push({"apps/shop/test/orders.yaml": "digest: one\n"},
                                "shop/orders: test -> one", TRAILERS)
    assert sha == infra.head() == run_git(["rev-parse", "main"], remote).strip()

    [record] = infra.log()
    assert record.sha == sha and record.subject == "shop/orders: test -> one"
    assert record.trailers == TRAILERS
    assert record.author == "Flow Bot <bot@example.com>"
    # git itself sees the trailers (not just our parser).
    assert run_git(["log", "-1", "--format=%(trailers:key=Stageflow-Flow-Run,valueonly)", "main"],
                   remote).strip() == "run-1"


def test_same_files_again_make_no_commit(seeded, tmp_path):
    infra = InfraRepo(seeded.as_uri(), tmp_path / "infra")
    assert infra.commit_and_push({"apps/shop/test/orders.yaml": "digest: one\n"}, "again", TRAILERS) is None
    assert infra.commit_and_push({"absent.yaml": None}, "delete what is not there") is None
    assert remote_log(seeded) == ["Initialise"]


def test_delete_and_history_of_one_path(seeded, tmp_path):
    infra = InfraRepo(seeded.as_uri(), tmp_path / "infra")
    first = infra.commit_and_push({"apps/shop/test/orders.yaml": "digest: two\n"}, "two")
    infra.commit_and_push({"README.md": None}, "drop readme")
    assert infra.show_file("README.md", "HEAD") is None
    assert infra.show_file("README.md", "HEAD~1") == "infra\n"
    assert infra.show_file("apps/shop/test/orders.yaml", first) == "digest: two\n"
    assert [r.subject for r in infra.log("apps/shop/test/orders.yaml")] == ["two", "Initialise"]
    assert [r.subject for r in infra.log(max_count=2)] == ["drop readme", "two"]


def test_find_commit_with_trailers(seeded, tmp_path):
    infra = InfraRepo(seeded.as_uri(), tmp_path / "infra")
    sha = infra.commit_and_push({"a.yaml": "a\n"}, "a", {**TRAILERS, "Stageflow-Flow-Run": "run-7"})
    infra.commit_and_push({"b.yaml": "b\n"}, "b", {"Stageflow-Flow-Run": "run-8"})
    found = infra.find_commit_with_trailers(Stageflow_Flow_Run="run-7")
    assert found is not None and found.sha == sha
    # All given trailers must match; keys compare case-insensitively as in git.
    assert infra.find_commit_with_trailers(**{"stageflow-flow-run": "run-7", "Stageflow-Source-Commit": "abc1234"}).sha == sha
    assert infra.find_commit_with_trailers(Stageflow_Flow_Run="run-7", Stageflow_Source_Commit="other") is None
    assert infra.find_commit_with_trailers(Stageflow_Flow_Run="run-") is None  # no prefix matches


@pytest.mark.parametrize("trailers", [{"Bad Key": "x"}, {"Key:": "x"}, {"Key": "two\nlines"}, {"Key": ""}])
def test_invalid_trailers_are_refused_before_writing(seeded, tmp_path, trailers):
    infra = InfraRepo(seeded.as_uri(), tmp_path / "infra")
    with pytest.raises(ValidationFailed):
        infra.commit_and_push({"a.yaml": "a\n"}, "m", trailers)
    assert remote_log(seeded) == ["Initialise"]


def test_sync_discards_local_changes(seeded, tmp_path):
    infra = InfraRepo(seeded.as_uri(), tmp_path / "infra")
    checkout = infra.sync()
    (checkout / "README.md").write_text("local edit\n")
    (checkout / "stray.txt").write_text("junk\n")
    run_git(["commit", "-qam", "local only"], checkout,
            {"GIT_AUTHOR_NAME": "x", "GIT_AUTHOR_EMAIL": "x@x", "GIT_COMMITTER_NAME": "x", "GIT_COMMITTER_EMAIL": "x@x"})
    infra.sync()
    assert (checkout / "README.md").read_text() == "infra\n"
    assert not (checkout / "stray.txt").exists()
    assert infra.head() == run_git(["rev-parse", "main"], seeded).strip()


def test_push_race_is_rebased_not_forced(seeded, tmp_path):
    first = InfraRepo(seeded.as_uri(), tmp_path / "first")
    second = InfraRepo(seeded.as_uri(), tmp_path / "second")
    first.sync()
    second.sync()
    marker = install_racing_hook(second.workdir, first, {"apps/shop/test/payments.yaml": "digest: p\n"}, "first writer")

    sha = second.commit_and_push({"apps/shop/test/orders.yaml": "digest: two\n"}, "second writer", TRAILERS)

    assert marker.exists()  # the race really happened
    assert remote_log(seeded) == ["second writer", "first writer", "Initialise"]
    assert run_git(["rev-list", "--merges", "main"], seeded).strip() == ""  # linear history
    assert sha == run_git(["rev-parse", "main"], seeded).strip()
    assert remote_file(seeded, "apps/shop/test/payments.yaml") == "digest: p\n"
    assert remote_file(seeded, "apps/shop/test/orders.yaml") == "digest: two\n"
    assert second.log(max_count=1)[0].trailers == TRAILERS  # trailers survive the rebase


def test_conflicting_race_on_one_file_keeps_the_later_content_and_both_commits(seeded, tmp_path):
    first = InfraRepo(seeded.as_uri(), tmp_path / "first")
    second = InfraRepo(seeded.as_uri(), tmp_path / "second")
    second.sync()
    marker = install_racing_hook(second.workdir, first, {"apps/shop/test/orders.yaml": "digest: first\n"}, "first writer")

    second.commit_and_push({"apps/shop/test/orders.yaml": "digest: second\n"}, "second writer")

    assert marker.exists()
    assert remote_file(seeded, "apps/shop/test/orders.yaml") == "digest: second\n"
    assert remote_log(seeded) == ["second writer", "first writer", "Initialise"]
    assert run_git(["rev-list", "--merges", "main"], seeded).strip() == ""


def test_race_with_edits_to_other_lines_of_one_file_keeps_both(seeded, tmp_path):
    lines = [f"key{i}: {i}" for i in range(8)]
    original = "\n".join(lines) + "\n"
    InfraRepo(seeded.as_uri(), tmp_path / "seed2").commit_and_push({"values.yaml": original}, "values")
    first_edit = original.replace("key0: 0", "key0: first")
    second_edit = original.replace("key7: 7", "key7: second")
    first = InfraRepo(seeded.as_uri(), tmp_path / "first")
    second = InfraRepo(seeded.as_uri(), tmp_path / "second")
    second.sync()
    install_racing_hook(second.workdir, first, {"values.yaml": first_edit}, "first writer")

    second.commit_and_push({"values.yaml": second_edit}, "second writer")

    # A rebase, not a blind re-write: the first writer's line is not lost.
    assert remote_file(seeded, "values.yaml") == original.replace("key0: 0", "key0: first").replace("key7: 7", "key7: second")
    assert remote_log(seeded)[:2] == ["second writer", "first writer"]


def test_race_against_the_same_change_makes_no_commit(seeded, tmp_path):
    first = InfraRepo(seeded.as_uri(), tmp_path / "first")
    second = InfraRepo(seeded.as_uri(), tmp_path / "second")
    second.sync()
    same = {"apps/shop/test/orders.yaml": "digest: same\n"}
    install_racing_hook(second.workdir, first, same, "first writer")
    assert second.commit_and_push(same, "second writer") is None
    assert remote_log(seeded) == ["first writer", "Initialise"]


def test_stale_push_is_classified_as_a_race(seeded, tmp_path):
    stale = InfraRepo(seeded.as_uri(), tmp_path / "stale")
    checkout = stale.sync()
    InfraRepo(seeded.as_uri(), tmp_path / "other").commit_and_push({"a.yaml": "a\n"}, "moved on")
    (checkout / "b.yaml").write_text("b\n")
    identity = {"GIT_AUTHOR_NAME": "x", "GIT_AUTHOR_EMAIL": "x@x", "GIT_COMMITTER_NAME": "x", "GIT_COMMITTER_EMAIL": "x@x"}
    run_git(["add", "b.yaml"], checkout)
    run_git(["commit", "-qm", "stale"], checkout, identity)
    with pytest.raises(PushRejected):
        run_git(["push", "origin", "HEAD:refs/heads/main"], checkout)


def test_race_lost_too_often_is_retryable_and_never_forced(seeded, tmp_path):
    first = InfraRepo(seeded.as_uri(), tmp_path / "first")
    second = InfraRepo(seeded.as_uri(), tmp_path / "second")
    second.sync()
    install_racing_hook(second.workdir, first, {"x.yaml": "first\n"}, "first writer")
    with pytest.raises(RetryableError, match="lost 1 races"):
        second.commit_and_push({"x.yaml": "second\n"}, "second writer", attempts=1)
    assert remote_log(seeded) == ["first writer", "Initialise"]  # the other writer's commit stands
    # The next call starts from the new tip and lands.
    assert second.commit_and_push({"x.yaml": "second\n"}, "second writer") is not None
    assert remote_file(seeded, "x.yaml") == "second\n"


def test_credentials_never_appear_in_errors(tmp_path):
    with pytest.raises(GitCommandFailed) as caught:
        run_git(["ls-remote", SECRET_URL], tmp_path)
    assert isinstance(caught.value, GitTransientError)  # connection refused is worth retrying
    assert "s3cret" not in str(caught.value) and "s3cret" not in caught.value.output
    assert "://***@127.0.0.1" in str(caught.value)

    infra = InfraRepo(SECRET_URL, tmp_path / "infra")
    assert "s3cret" not in repr(infra)
    with pytest.raises(RetryableError) as caught_sync:
        infra.sync()
    assert "s3cret" not in str(caught_sync.value)
    assert caught_sync.value.__cause__ is None or "s3cret" not in str(caught_sync.value.__cause__)


def test_workdir_that_is_not_a_checkout_is_left_alone(seeded, tmp_path):
    workdir = tmp_path / "precious"
    workdir.mkdir()
    (workdir / "notes.txt").write_text("keep me\n")
    with pytest.raises(TerminalError, match="not a git checkout"):
        InfraRepo(seeded.as_uri(), workdir).sync()
    assert (workdir / "notes.txt").read_text() == "keep me\n"
    assert not os.path.exists(workdir / ".git")


def test_https_credentials_travel_as_a_header_never_in_url_config_or_errors(tmp_path) -> None:
    """A GitHub-style remote: git sends the token as an Authorization header (from its environment)
    on fetch; it is not written to .git/config, the URL or an error message."""
    import base64
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from pydantic import SecretStr

    from stageflow.errors import StageflowError

    seen: list[str | None] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            seen.append(self.headers.get("Authorization"))
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        repo = InfraRepo(f"http://127.0.0.1:{server.server_port}/acme/infrastructure.git", tmp_path / "co",
                         auth_header=InfraRepo.basic_auth("x-access-token", SecretStr("s3cret-token")))
        with pytest.raises(StageflowError) as caught:
            repo.sync()
    finally:
        server.shutdown()
    expected = "Basic " + base64.b64encode(b"x-access-token:s3cret-token").decode()
    assert expected in seen
    assert "s3cret" not in str(caught.value) and "s3cret" not in repr(repo)
    assert "s3cret" not in (tmp_path / "co" / ".git" / "config").read_text()
