"""release-to-prod and rollback on the embedded platform: real Prefect server and worker (the run
suspends and is resumed), real git forge, registry, Helm and Kubernetes control plane."""
from __future__ import annotations

import uuid

import pytest

from stageflow.adapters.forge.factory import forge_from_settings
from stageflow.adapters.kube import Kube
from tests.integration.helpers import helm_revision, infra_head, push_change
from tests.integration.release_helpers import (cli, logs, prod_spec, released_service, rollout_timeout, start, state,
                                               verified_in_test, wait_logs, wait_state)

pytestmark = pytest.mark.integration

APP = "rel"
# Unique per session: a kept platform (STAGEFLOW_TEST_HOME) already has the services of earlier runs.
RUN = uuid.uuid4().hex[:5]


def name(service: str) -> str:
    return f"{service}-{RUN}"


@pytest.fixture(scope="module")
def orders(settings):
    """rel/orders with v1.0.0 verified in Test (not yet in prod)."""
    svc = released_service(settings, APP, name("orders"))
    commit, digest = verified_in_test(settings, svc, "orders v1", "v1.0.0")
    return svc, commit, digest


def prod_image(settings, service: str) -> tuple[str, ...] | None:
    status = Kube(settings.kubeconfig).deployment_status(f"{APP}-prod", service)
    return status.images if status is not None else None


def test_release_reaches_prod_after_an_approvers_decision(settings, orders):
    svc, commit, digest = orders
    run_id = start("release-to-prod", app=APP, service=name("orders"), version="v1.0.0", requested_by="alice",
                   reason="first release")
    wait_state(run_id, "PAUSED")
    # The pull request exists while the release waits, and nothing changed in prod yet.
    pr = forge_from_settings(settings).find_pull_request(settings.infra_repo, f"release/{name('orders')}-{digest[7:19]}")
    assert pr is not None and pr.state == "open"
    assert prod_image(settings, name("orders")) is None

    # The requester may not approve alone; a stranger may not approve at all; neither changes anything.
    code, out = cli("approve", run_id, "--as", "alice", "--reason", "mine")
    assert code == 1 and "approver: 'alice' requested this release and may not approve it alone" in out
    code, out = cli("approve", run_id, "--as", "mallory", "--reason", "trust me")
    assert code == 1 and "'mallory' is not an approver of app 'rel' (approvers: alice, bob)" in out
    assert state(run_id).is_paused()

    code, out = cli("approve", run_id, "--as", "bob", "--reason", "tested in rel-test")
    assert code == 0, out
    wait_state(run_id, "COMPLETED")

    assert prod_image(settings, name("orders")) == (f"{svc.image}@{digest}",)
    status = Kube(settings.kubeconfig).deployment_status(f"{APP}-prod", name("orders"))
    assert status.ready == status.desired >= 1
    version, history = prod_spec(settings, APP, name("orders"))
    assert version.image.digest == digest and version.image.tag == "v1.0.0" and version.source.commit == commit
    record = history.releases[-1]
    merged = forge_from_settings(settings).get_pull_request(settings.infra_repo, pr.number)
    assert merged.state == "merged"
    # The record links source commit -> digest -> infra commit -> Helm revision -> approval -> verification.
    assert (record.id, record.result, record.approver, record.reason) == (run_id, "succeeded", "bob",
                                                                         "tested in rel-test")
    assert record.source.commit == commit and record.image.digest == digest
    assert record.infra_commit == merged.merge_commit
    assert record.helm_revision == helm_revision(settings, APP, name("orders"), "prod")
    assert "Ready" in record.verification and record.requested_by == "alice"


def resume(run_id: str, decision: str, approver: str, reason: str) -> None:
    """What the Prefect UI's resume form sends (no client-side rules: the flow must enforce them)."""
    from prefect.flow_runs import resume_flow_run

    resume_flow_run(uuid.UUID(run_id), run_input={"decision": decision, "approver": approver, "reason": reason})


def test_refused_form_decisions_keep_the_request_waiting_then_a_rejection_closes_it(settings):
    svc = released_service(settings, APP, name("invoices"))
    _, digest = verified_in_test(settings, svc, "invoices v1", "v1.0.0")
    run_id = start("release-to-prod", app=APP, service=name("invoices"), version="v1.0.0", requested_by="alice")
    wait_state(run_id, "PAUSED", paused_key="approval-1")

    # Submitted through the form (which checks nothing): the flow refuses and asks again.
    resume(run_id, "approve", "alice", "self-approval")
    wait_state(run_id, "PAUSED", paused_key="approval-2")
    resume(run_id, "approve", "mallory", "not an approver")
    wait_state(run_id, "PAUSED", paused_key="approval-3")
    wait_logs(run_id, "decision 1 refused (approve by 'alice')", "may not approve it alone",
              "decision 2 refused (approve by 'mallory')", "is not an approver of app 'rel'")

    head = infra_head(settings)
    code, out = cli("reject", run_id, "--as", "bob", "--reason", "not this week")
    assert code == 0, out
    final = wait_state(run_id, "FAILED")
    assert "rejected by bob: not this week" in final.message
    pr = forge_from_settings(settings).find_pull_request(settings.infra_repo, f"release/{name('invoices')}-{digest[7:19]}",
                                                          state="all")
    assert pr.state == "closed"
    version, history = prod_spec(settings, APP, name("invoices"))
    assert version is None and prod_image(settings, name("invoices")) is None
    assert [(r.result, r.approver) for r in history.releases] == [("rejected", "bob")]
    assert infra_head(settings) != head  # only the rejection record was written


def test_a_digest_never_verified_in_test_is_refused_before_any_pull_request(settings):
    svc = released_service(settings, APP, name("untested"))
    commit, digest = push_change(settings, svc, "never deployed to test")
    forge_from_settings(settings).create_release(svc.repository, "v0.1.0", ref=commit)
    head = infra_head(settings)
    run_id = start("release-to-prod", app=APP, service=name("untested"), version="v0.1.0", requested_by="alice")
    final = wait_state(run_id, "FAILED", timeout=120)
    wait_logs(run_id, f"was never deployed to {APP}-test")
    assert final.type.value == "FAILED"
    branches = forge_from_settings(settings).list_branches(settings.infra_repo)
    assert not [b for b in branches if b.startswith(f"release/{name('untested')}-")]
    assert infra_head(settings) == head


def test_an_expired_approval_deadline_fails_the_request(settings, orders):
    svc = released_service(settings, APP, name("expiring"))
    verified_in_test(settings, svc, "expiring v1", "v1.0.0")
    run_id = start("release-to-prod", app=APP, service=name("expiring"), version="v1.0.0", requested_by="alice",
                   approval_timeout_seconds=3)
    wait_state(run_id, "PAUSED")
    final = wait_state(run_id, "FAILED", timeout=60)
    assert "never resumed" in final.message
    code, out = cli("approve", run_id, "--as", "bob", "--reason", "too late")
    assert code == 1 and "is not waiting for approval" in out and "deadline passed" in out
    version, _ = prod_spec(settings, APP, name("expiring"))
    assert version is None


def release_and_approve(settings, service: str, version: str, **extra) -> str:
    """Start a release requested by alice, approve it as bob; the run id (not waited for)."""
    run_id = start("release-to-prod", app=APP, service=service, version=version, requested_by="alice", **extra)
    wait_state(run_id, "PAUSED")
    code, out = cli("approve", run_id, "--as", "bob", "--reason", f"ship {version}")
    assert code == 0, out
    return run_id


def test_a_rollout_that_never_becomes_ready_is_rolled_back_and_not_redeployed(settings):
    svc = released_service(settings, APP, name("payments"))
    _, good = verified_in_test(settings, svc, "payments v1", "v1.0.0")
    wait_state(release_and_approve(settings, svc.name, "v1.0.0"), "COMPLETED")
    revision_before = helm_revision(settings, APP, svc.name, "prod")
    # The embedded platform's kwok keeps pods labelled version "never-ready" unready forever
    # (stageflow/local/kwok/stages.yaml): this release's pods never become Ready in prod.
    _, bad = verified_in_test(settings, svc, "payments v2", "never-ready")
    with rollout_timeout(settings, 8):
        run_id = release_and_approve(settings, svc.name, "never-ready")
        final = wait_state(run_id, "FAILED", timeout=240)
    assert "failed in rel-prod and was rolled back" in final.message
    # Cluster and infrastructure repo both show the previous version again.
    assert prod_image(settings, svc.name) == (f"{svc.image}@{good}",)
    status = Kube(settings.kubeconfig).deployment_status(f"{APP}-prod", svc.name)
    assert status.ready == status.desired >= 1
    assert helm_revision(settings, APP, svc.name, "prod") == revision_before + 2  # upgrade, then rollback
    version, history = prod_spec(settings, APP, svc.name)
    assert version.image.digest == good
    failed = history.releases[-1]
    assert (failed.result, failed.image.digest, failed.id) == ("failed", bad, run_id)
    assert "rollout failed" in failed.verification and good in failed.rolled_back_to
    # Automation does not deploy the failed digest again by itself: the same release is refused.
    again = start("release-to-prod", app=APP, service=svc.name, version="never-ready", requested_by="alice")
    wait_state(again, "FAILED")
    wait_logs(again, "failed in prod in release", "it is not released again automatically")


def test_a_release_survives_a_worker_restart_while_it_waits(settings, embedded):
    svc = released_service(settings, APP, name("search"))
    _, digest = verified_in_test(settings, svc, "search v1", "v1.0.0")
    run_id = start("release-to-prod", app=APP, service=svc.name, version="v1.0.0", requested_by="alice")
    wait_state(run_id, "PAUSED")
    embedded.worker.stop()  # no process holds the suspended run: nothing is lost
    embedded.worker.start()
    code, out = cli("approve", run_id, "--as", "bob", "--reason", "after a worker restart")
    assert code == 0, out
    wait_state(run_id, "COMPLETED")
    assert prod_image(settings, svc.name) == (f"{svc.image}@{digest}",)


def test_prod_rollouts_of_one_app_never_overlap_and_none_is_lost(settings):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    services = [released_service(settings, APP, name(s)) for s in ("cart", "users")]
    digests = [verified_in_test(settings, svc, f"{svc.name} v1", "v1.0.0")[1] for svc in services]
    runs = [release_and_approve(settings, svc.name, "v1.0.0") for svc in services]
    for run_id in runs:
        wait_state(run_id, "COMPLETED")
    for svc, digest in zip(services, digests):
        assert prod_image(settings, svc.name) == (f"{svc.image}@{digest}",)
    # The merge-to-verify windows (the part under the app's prod lock) of the two runs are disjoint.
    with get_client(sync_client=True) as client:
        tasks = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[uuid.UUID(r) for r in runs])))
    windows = []
    for run_id in runs:
        mine = [t for t in tasks if str(t.flow_run_id) == run_id and t.state.is_completed()
                and t.name.split("-")[0] in ("gitops:merge", "kube:verify")]
        windows.append((min(t.start_time for t in mine), max(t.end_time for t in mine)))
    first, second = sorted(windows)
    assert first[1] <= second[0], f"prod rollouts overlapped: {windows}"


def test_rollback_puts_prod_back_to_the_previous_release_after_approval(settings):
    svc = released_service(settings, APP, name("catalog"))
    _, v1 = verified_in_test(settings, svc, "catalog v1", "v1.0.0")
    wait_state(release_and_approve(settings, svc.name, "v1.0.0"), "COMPLETED")
    _, v2 = verified_in_test(settings, svc, "catalog v2", "v2.0.0")
    wait_state(release_and_approve(settings, svc.name, "v2.0.0"), "COMPLETED")
    assert prod_image(settings, svc.name) == (f"{svc.image}@{v2}",)
    # What the approver of v2 was shown: prod's digest -> the new one, and the commits in between.
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        shown = client.read_artifacts(artifact_filter=ArtifactFilter(
            key=ArtifactFilterKey(any_=[f"release-request-{APP}-{svc.name}"])))
    summary = max(shown, key=lambda a: a.created).data
    assert f"`{v1}`" in summary and f"`{v2}` (v2.0.0)" in summary and "Say catalog v2" in summary

    code, out = cli("rollback", APP, svc.name, "--requested-by", "bob", "--reason", "v2 is slow")
    assert code == 0, out
    run_id = out.split()[2]
    wait_state(run_id, "PAUSED")
    code, out = cli("approve", run_id, "--as", "bob", "--reason", "own rollback")
    assert code == 1 and "may not approve it alone" in out
    code, out = cli("approve", run_id, "--as", "alice", "--reason", "agreed", "--watch")
    assert code == 0, out
    assert "state: Completed" in out
    assert prod_image(settings, svc.name) == (f"{svc.image}@{v1}",)
    version, history = prod_spec(settings, APP, svc.name)
    assert version.image.digest == v1 and version.image.tag == "v1.0.0"
    assert [(r.kind, r.result, r.image.digest) for r in history.releases] == [
        ("release", "succeeded", v1), ("release", "succeeded", v2), ("rollback", "succeeded", v1)]


def test_an_operator_approves_a_release_in_the_prefect_ui(settings):
    """Headless Chromium (Debian's package) driven by Playwright: open the suspended release in the
    Prefect UI, fill the approval form, resume; the release completes and is Ready in prod."""
    import os

    from tests.support.browser import approve_in_ui, browser_available

    missing = browser_available()
    if missing and os.environ.get("CI"):
        pytest.fail(f"the browser test must run in CI, but: {missing} (make setup installs both)")
    if missing:
        pytest.skip(f"no headless browser here: {missing}; `make setup` installs Debian's chromium and playwright-core")
    svc = released_service(settings, APP, name("web"))
    _, digest = verified_in_test(settings, svc, "web v1", "v1.0.0")
    run_id = start("release-to-prod", app=APP, service=svc.name, version="v1.0.0", requested_by="alice")
    wait_state(run_id, "PAUSED")
    shot = settings.home / "screenshots" / f"approve-{run_id}.png"
    shot.parent.mkdir(parents=True, exist_ok=True)
    approve_in_ui(settings.prefect_api_url.removesuffix("/api"), run_id, decision="approve", approver="bob",
                  reason="approved in the browser", screenshot=shot)
    wait_state(run_id, "COMPLETED")
    assert prod_image(settings, svc.name) == (f"{svc.image}@{digest}",)
    status = Kube(settings.kubeconfig).deployment_status(f"{APP}-prod", svc.name)
    assert status.ready == status.desired >= 1
    _, history = prod_spec(settings, APP, svc.name)
    assert (history.releases[-1].approver, history.releases[-1].reason) == ("bob", "approved in the browser")
