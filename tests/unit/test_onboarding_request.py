"""Onboarding input rules and the "does it exist already" check, before any side effect."""
from __future__ import annotations

import pytest

from stageflow.errors import ValidationFailed
from stageflow.onboarding.request import OnboardRequest, check_onboarding_target, service_spec
from stageflow.spec import App, Platform, PlatformSpec, Service

REGISTRY = "127.0.0.1:5000"


def problems(**kwargs) -> dict[str, str]:
    request = OnboardRequest(**{"app": "shop", "service": "orders", "owners": ["alice"], **kwargs})
    with pytest.raises(ValidationFailed) as caught:
        request.validate()
    return {p.field: p.rule for p in caught.value.problems}


def test_a_good_request_passes() -> None:
    request = OnboardRequest("shop", "orders", ["@alice", "acme/payments"], database="postgres").validate()
    assert request.repository == "shop-orders"
    assert request.logins == ["alice", "acme/payments"]


@pytest.mark.parametrize("kwargs, field, words", [
    ({"app": "Shop"}, "app", "DNS-1123"),
    ({"service": "or_ders"}, "service", "DNS-1123"),
    ({"app": "a" * 59}, "app", "at most 58"),
    ({"app": "kube-system"}, "app", "reserved"),
    ({"app": "default"}, "app", "reserved"),
    ({"service": "1orders"}, "service", "start with a letter"),
    ({"template": "cobol"}, "template", "python"),
    ({"port": 0}, "port", "1 to 65535"),
    ({"database": "oracle"}, "database", "postgres"),
    ({"owners": []}, "owners", "at least one owner"),
    ({"owners": ["not a login"]}, "owners", "not a forge login"),
])
def test_each_rule_names_its_field(kwargs, field, words) -> None:
    found = problems(**kwargs)
    assert words in found[field], found


def test_every_problem_is_reported_at_once() -> None:
    assert set(problems(app="Shop", service="or_ders", template="x", owners=[])) == \
        {"app", "service", "template", "owners"}


def spec_with(*services: Service) -> PlatformSpec:
    return PlatformSpec(platform=Platform(registry=REGISTRY),
                        apps={"shop": App(name="shop", owners=["alice"], approvers=["alice"])},
                        services={(s.app, s.name): s for s in services})


ANSWERS = "app: shop\nservice: orders\nport: 8080\ndatabase: none\n_commit: 1.0.0\n"


def test_a_new_service_is_fine() -> None:
    request = OnboardRequest("shop", "orders", ["alice"]).validate()
    assert check_onboarding_target(request, spec_with(), REGISTRY, None) is False


def test_an_existing_service_not_made_by_onboarding_is_refused() -> None:
    request = OnboardRequest("shop", "orders", ["alice"]).validate()
    existing = Service(name="orders", app="shop", repository="shop-orders", image=f"{REGISTRY}/shop/orders")
    with pytest.raises(ValidationFailed, match="already exists"):
        check_onboarding_target(request, spec_with(existing), REGISTRY, None)  # no answers file: not ours
    other = OnboardRequest("shop", "orders", ["alice"], port=9090).validate()
    with pytest.raises(ValidationFailed, match="already onboarded with other settings"):
        check_onboarding_target(other, spec_with(service_spec(request, REGISTRY)), REGISTRY, ANSWERS)


def test_a_finished_onboarding_of_the_same_request_is_a_rerun() -> None:
    request = OnboardRequest("shop", "orders", ["alice"]).validate()
    assert check_onboarding_target(request, spec_with(service_spec(request, REGISTRY)), REGISTRY, ANSWERS) is True


def test_a_foreign_repository_with_the_name_is_refused() -> None:
    request = OnboardRequest("shop", "orders", ["alice"]).validate()
    with pytest.raises(ValidationFailed, match="rendered for another service"):
        check_onboarding_target(request, spec_with(), REGISTRY, ANSWERS.replace("orders", "cart"))
