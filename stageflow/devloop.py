"""The EW stage: a developer runs one service locally inside the Test network (Telepresence).

``stageflow dev connect APP SERVICE`` connects to ``<app>-test`` and intercepts the service, so
traffic for it in Test reaches the developer's local process (or Dev Container). Prod is never a
target: the namespace must be the app's test namespace, and a prod one is refused by name before
anything runs. The generated Dev Container carries Telepresence and what it needs (NET_ADMIN,
/dev/net/tun); the command builds the same invocation as the template's ``make intercept``.
"""
from __future__ import annotations

from stageflow.errors import Problem, ValidationFailed
from stageflow.spec import namespace, validate_name

__all__ = ["telepresence_commands", "check_target"]


def check_target(app: str, service: str, target_namespace: str | None) -> str:
    """The namespace to connect to: ``<app>-test``; anything else (above all a prod one) is refused."""
    problems = []
    for field, value, kind in (("app", app, "app"), ("service", service, "service")):
        try:
            validate_name(field, value, kind=kind)  # type: ignore[arg-type]
        except ValidationFailed as exc:
            problems += exc.problems
    if problems:
        raise ValidationFailed(problems, summary="dev connect: invalid input")
    test_ns = namespace(app, "test")
    ns = target_namespace or test_ns
    if ns.endswith("-prod") or ns == namespace(app, "prod"):
        raise ValidationFailed(Problem("namespace", f"{ns!r} is a prod namespace: the EW stage only ever joins "
                                                    f"Test ({test_ns}); prod is never intercepted"),
                               summary="dev connect refused")
    if ns != test_ns:
        raise ValidationFailed(Problem("namespace", f"must be {test_ns} (the app's Test stage), got {ns!r}"),
                               summary="dev connect refused")
    return ns


def telepresence_commands(app: str, service: str, *, port: int, local_port: int | None = None,
                          target_namespace: str | None = None, env_file: str | None = None) -> list[list[str]]:
    """The Telepresence 2 invocations: connect to the namespace, then intercept the service."""
    ns = check_target(app, service, target_namespace)
    if not 1 <= port <= 65535 or (local_port is not None and not 1 <= local_port <= 65535):
        raise ValidationFailed(Problem("port", "must be between 1 and 65535"), summary="dev connect: invalid input")
    intercept = ["telepresence", "intercept", service, "--port", f"{local_port or port}:{port}"]
    if env_file:
        intercept += ["--env-file", env_file]
    return [["telepresence", "connect", "--namespace", ns], intercept]
