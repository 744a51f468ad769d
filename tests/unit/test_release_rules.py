"""The release rules without a platform: who may approve, what a release request must say, the
release history in the infrastructure repo, and what the approver is shown."""
from __future__ import annotations

import pytest

from stageflow.errors import ValidationFailed
from stageflow.release import Decision, approval_problems, may_decide
from stageflow.release.summary import ReleaseSummary, summary_markdown
from stageflow.requests import ReleaseRequest
from stageflow.spec import ImageRef, ReleaseHistory, ReleaseRecord, parse_file, to_yaml

APPROVERS = ["alice", "Bob"]
DIGEST = "sha256:" + "a" * 64


def problems(decision: str, approver: str, reason: str = "ok", requested_by: str = "alice") -> list[str]:
    return [str(p) for p in approval_problems(Decision(decision=decision, approver=approver, reason=reason),
                                              app="shop", approvers=APPROVERS, requested_by=requested_by)]


def test_an_approver_other_than_the_requester_may_approve():
    assert problems("approve", "bob") == []  # names compare case-insensitively
    assert problems("approve", " Bob ") == []


def test_the_requester_may_not_approve_alone_but_may_withdraw():
    assert problems("approve", "alice") == [
        "approver: 'alice' requested this release and may not approve it alone: another approver must"]
    assert problems("reject", "alice") == []


def test_only_the_apps_approvers_decide():
    assert problems("approve", "mallory") == ["approver: 'mallory' is not an approver of app 'shop' (approvers: alice, Bob)"]
    assert problems("reject", "mallory") == ["approver: 'mallory' is not an approver of app 'shop' (approvers: alice, Bob)"]


def test_a_decision_needs_a_reason_and_a_name_and_an_app_with_approvers():
    assert problems("approve", "bob", reason="  ") == [
        "reason: must not be empty: say why, it goes into the release record"]
    assert problems("approve", "") == ["approver: must not be empty: your name as listed in the app's approvers"]
    none = approval_problems(Decision(decision="approve", approver="bob", reason="ok"), app="shop", approvers=[],
                             requested_by="alice")
    assert [str(p) for p in none] == ["approver: app 'shop' lists no approvers: add them to apps/shop/app.yaml"]
    with pytest.raises(ValidationFailed, match="approve refused"):
        may_decide(Decision(decision="approve", approver="alice", reason="x"), app="shop", approvers=APPROVERS,
                   requested_by="alice")


def test_an_approver_name_is_one_line():
    with pytest.raises(ValueError):
        Decision(decision="approve", approver="bob\nStageflow-Flow-Run: forged", reason="x")


@pytest.mark.parametrize("version", ["v1.4.0", "1.0", "release_2026-11", DIGEST])
def test_release_versions_are_tags_or_digests(version):
    assert ReleaseRequest("shop", "orders", version, "alice").validate().digest == (
        version if version.startswith("sha256:") else None)


def test_a_bad_release_request_names_every_field():
    with pytest.raises(ValidationFailed) as caught:
        ReleaseRequest("Shop", "or_ders", "sha256:short", "", 0).validate()
    assert {p.field for p in caught.value.problems} == {"app", "service", "version", "requested_by",
                                                        "approval_timeout_seconds"}


def record(result: str, digest: str = DIGEST, id: str = "run-1") -> ReleaseRecord:
    return ReleaseRecord(id=id, version="v1", image=ImageRef(repository="127.0.0.1:5000/shop/orders", digest=digest),
                         requested_by="alice", result=result, verification="1/1 Ready", recorded_at="2026-11-25T10:00:00+00:00")


def test_release_history_round_trips_and_remembers_failed_digests():
    other = "sha256:" + "b" * 64
    history = ReleaseHistory(app="shop", service="orders",
                             releases=[record("succeeded", other, "r1"), record("failed", DIGEST, "r2")])
    text = to_yaml(history)
    assert "recorded_at: '2026-11-25T10:00:00+00:00'" in text  # quoted: YAML must not turn it into a timestamp
    parsed = parse_file("apps/shop/releases/orders.yaml", text)
    assert parsed == history
    assert parsed.failed(DIGEST).id == "r2" and parsed.failed(other) is None
    assert [r.id for r in parsed.succeeded()] == ["r1"]


def test_a_release_record_with_an_unknown_result_is_refused():
    text = to_yaml(ReleaseHistory(app="shop", service="orders", releases=[record("succeeded")])).replace(
        "result: succeeded", "result: maybe")
    with pytest.raises(ValidationFailed, match=r"releases\[0\]\.result: must be one of 'succeeded', 'failed' or 'rejected'"):
        parse_file("apps/shop/releases/orders.yaml", text)


def test_the_approval_summary_shows_the_change_the_evidence_and_the_diff():
    md = summary_markdown(ReleaseSummary(
        kind="release", app="shop", service="orders", version="v2", image="r/shop/orders", digest=DIGEST,
        requested_by="alice", request_reason="faster checkout", previous=None, source_commit="abc1234",
        source_commits=["abc1234 Faster checkout", "def5678 Fix typo"], test_commit="f" * 40,
        test_commit_date="2026-11-25T09:00:00+00:00", verified_by="run-9", pull_request="#3 file:///pulls/3",
        diff="+digest: x", approvers=["alice", "bob"], deadline="2026-11-26T09:00:00+00:00"))
    for needle in ("nothing yet (first prod release)", f"`{DIGEST}` (v2)", "- `abc1234 Faster checkout`",
                   "verified by flow run `run-9`", "#3 file:///pulls/3", "```diff\n+digest: x",
                   "alice, bob (not alice alone)", "faster checkout", "2026-11-26T09:00:00+00:00"):
        assert needle in md, needle
