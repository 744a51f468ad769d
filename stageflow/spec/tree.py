"""Read the whole infrastructure repository into one typed :class:`PlatformSpec`.

Reading never stops at the first problem: a person fixing the repository wants every broken
rule in one go, so each file is checked on its own, then the rules that span files (names match
folders, versions refer to declared services, image repositories are unique).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from stageflow.errors import NotFound, Problem, ValidationFailed
from stageflow.spec.files import parse_file
from stageflow.spec.layout import APP_FILE, APPS_DIR, DATABASES_DIR, PLATFORM_FILE, RELEASES_DIR, SERVICES_DIR
from stageflow.spec.models import App, Database, DeployedVersion, Platform, ReleaseHistory, Service, SpecModel
from stageflow.spec.names import STAGES

__all__ = ["PlatformSpec", "load_spec", "validate_tree"]

M = TypeVar("M", bound=SpecModel)

_APP_FOLDER_HOLDS = f"an app folder holds only {APP_FILE}, {SERVICES_DIR}/, {RELEASES_DIR}/, {DATABASES_DIR}/ and the " \
    "stage folders " + \
    ", ".join(f"{stage}/" for stage in STAGES)


@dataclass(frozen=True)
class PlatformSpec:
    """Everything the infrastructure repository declares, keyed for direct look-up."""

    platform: Platform
    apps: dict[str, App] = field(default_factory=dict)
    services: dict[tuple[str, str], Service] = field(default_factory=dict)  # (app, service)
    versions: dict[tuple[str, str, str], DeployedVersion] = field(default_factory=dict)  # (app, service, stage)
    releases: dict[tuple[str, str], ReleaseHistory] = field(default_factory=dict)  # (app, service)
    databases: dict[tuple[str, str, str], Database] = field(default_factory=dict)  # (app, service, stage)

    def app(self, name: str) -> App:
        try:
            return self.apps[name]
        except KeyError:
            raise NotFound(f"no app named {name!r} in the infrastructure repo "
                           f"(apps: {_listing(self.apps)})") from None

    def service(self, app: str, name: str) -> Service:
        self.app(app)
        try:
            return self.services[(app, name)]
        except KeyError:
            raise NotFound(f"no service named {name!r} in app {app!r} "
                           f"(services: {_listing(s.name for s in self.services_of(app))})") from None

    def version(self, app: str, service: str, stage: str) -> DeployedVersion | None:
        """What runs for ``service`` at ``stage``, or None when it was never deployed there."""
        if stage not in STAGES:
            raise ValidationFailed(Problem("stage", f"must be one of {', '.join(STAGES)} (found {stage!r})"),
                                   summary="invalid stage")
        return self.versions.get((app, service, stage))

    def release_history(self, app: str, service: str) -> ReleaseHistory:
        """The service's prod releases (an empty history before the first one)."""
        self.service(app, service)
        return self.releases.get((app, service)) or ReleaseHistory(app=app, service=service)

    def database(self, app: str, service: str, stage: str) -> Database | None:
        """The service's database at ``stage``, or None when it has none there."""
        return self.databases.get((app, service, stage))

    def services_of(self, app: str) -> list[Service]:
        """The services of ``app`` sorted by name; NotFound if the app is not declared."""
        self.app(app)
        return sorted((s for (a, _), s in self.services.items() if a == app), key=lambda s: s.name)


def load_spec(root: Path) -> PlatformSpec:
    """Read and check the repository at ``root``; raise one ValidationFailed listing every problem."""
    spec, problems = _Reader(Path(root)).read()
    if problems or spec is None:
        raise ValidationFailed(problems, summary=f"infrastructure repo {root} is invalid")
    return spec


def validate_tree(root: Path) -> list[Problem]:
    """Every problem in the repository at ``root`` (empty when it is valid); never raises for them."""
    return _Reader(Path(root)).read()[1]


def _listing(names: object) -> str:
    items = sorted(names)  # type: ignore[call-overload]
    return ", ".join(items) if items else "none"


def _hidden(path: Path) -> bool:
    # Editors, OS and git leave dot-files (.gitkeep, .DS_Store) that are nobody's spec.
    return path.name.startswith(".")


class _Reader:
    """One pass over one repository checkout, collecting typed files and problems."""

    def __init__(self, root: Path):
        self.root = root
        self.problems: list[Problem] = []
        self.apps: dict[str, App] = {}
        self.services: dict[tuple[str, str], Service] = {}
        self.versions: dict[tuple[str, str, str], DeployedVersion] = {}
        self.releases: dict[tuple[str, str], ReleaseHistory] = {}
        self.databases: dict[tuple[str, str, str], Database] = {}
        # Files that exist, valid or not: a broken services/x.yaml must not also make every
        # version of x "undeclared", which would bury the real problem under echoes of it.
        self.app_files: set[str] = set()
        self.service_files: set[tuple[str, str]] = set()

    def read(self) -> tuple[PlatformSpec | None, list[Problem]]:
        if not self.root.is_dir():
            return None, [Problem(str(self.root), "is not a folder: expected an infrastructure repo checkout")]
        platform = self._platform()
        apps_dir = self.root / APPS_DIR
        if apps_dir.is_dir():
            for entry in self._entries(apps_dir):
                if entry.is_dir():
                    self._app_folder(entry)
                else:
                    self._unexpected(entry, f"{APPS_DIR}/ holds one folder per app")
        elif apps_dir.exists():
            self._unexpected(apps_dir, f"{APPS_DIR} must be a folder")
        self._check_versions_refer_to_declared()
        self._check_unique_images()
        self._check_databases()
        if platform is None:
            return None, self.problems
        return (PlatformSpec(platform, self.apps, self.services, self.versions, self.releases, self.databases),
                self.problems)

    # --- walking ---------------------------------------------------------------------------

    def _platform(self) -> Platform | None:
        path = self.root / PLATFORM_FILE
        if not path.is_file():
            self.problems.append(Problem(PLATFORM_FILE, "is missing: every infrastructure repo needs one "
                                                        "(kind: Platform)"))
            return None
        return self._parse(path, Platform)

    def _app_folder(self, folder: Path) -> None:
        app = folder.name
        for entry in self._entries(folder):
            if entry.name == APP_FILE and entry.is_file():
                self.app_files.add(app)
                self._app_file(entry, app)
            elif entry.name == SERVICES_DIR and entry.is_dir():
                for file in self._yaml_files(entry, "services/ holds one <service>.yaml per service"):
                    self.service_files.add((app, file.stem))
                    self._service_file(file, app)
            elif entry.name == RELEASES_DIR and entry.is_dir():
                for file in self._yaml_files(entry, f"{RELEASES_DIR}/ holds one <service>.yaml per released service"):
                    self._release_file(file, app)
            elif entry.name == DATABASES_DIR and entry.is_dir():
                for stage_dir in self._entries(entry):
                    if stage_dir.is_dir() and stage_dir.name in STAGES:
                        for file in self._yaml_files(stage_dir, "holds one <service>.yaml per service with a database"):
                            self._database_file(file, app, stage_dir.name)
                    else:
                        self._unexpected(stage_dir, f"{DATABASES_DIR}/ holds the stage folders "
                                                    + ", ".join(f"{stage}/" for stage in STAGES))
            elif entry.name in STAGES and entry.is_dir():
                for file in self._yaml_files(entry, f"{entry.name}/ holds one <service>.yaml per deployed service"):
                    self._version_file(file, app, entry.name)
            else:
                self._unexpected(entry, _APP_FOLDER_HOLDS)
        if app not in self.app_files:
            self.problems.append(Problem(self._rel(folder / APP_FILE),
                                         "is missing: every app folder needs one (kind: App)"))

    def _app_file(self, path: Path, app: str) -> None:
        model = self._parse(path, App)
        if model is not None and self._matches(path, "name", model.name, app, "its folder name"):
            self.apps[app] = model

    def _service_file(self, path: Path, app: str) -> None:
        model = self._parse(path, Service)
        if model is None:
            return
        matches = [self._matches(path, "name", model.name, path.stem, "the file name"),
                   self._matches(path, "app", model.app, app, "the app folder name")]
        if all(matches):
            self.services[(app, model.name)] = model

    def _version_file(self, path: Path, app: str, stage: str) -> None:
        if (model := self._per_service(path, DeployedVersion, app, stage)) is not None:
            self.versions[(app, model.service, stage)] = model

    def _release_file(self, path: Path, app: str) -> None:
        if (model := self._per_service(path, ReleaseHistory, app)) is not None:
            self.releases[(app, model.service)] = model

    def _database_file(self, path: Path, app: str, stage: str) -> None:
        if (model := self._per_service(path, Database, app, stage)) is not None:
            self.databases[(app, model.service, stage)] = model

    def _per_service(self, path: Path, kind: type[M], app: str, stage: str | None = None) -> M | None:
        """A file named after its service: parsed, and kept only if its app, service (and stage)
        fields match the folders and the file name; every mismatch is reported."""
        model = self._parse(path, kind)
        if model is None:
            return None
        matches = [self._matches(path, "app", model.app, app, "the app folder name"),
                   self._matches(path, "service", model.service, path.stem, "the file name")]
        if stage is not None:
            matches.append(self._matches(path, "stage", model.stage, stage, "the stage folder name"))
        return model if all(matches) else None

    # --- rules across files ------------------------------------------------------------------

    def _check_versions_refer_to_declared(self) -> None:
        for (app, service, stage), version in sorted(self.versions.items()):
            file = f"{APPS_DIR}/{app}/{stage}/{service}.yaml"
            if app not in self.app_files:
                self.problems.append(Problem("app", f"refers to app {app!r}, which is not declared: "
                                                    f"{APPS_DIR}/{app}/{APP_FILE} is missing", file))
            elif (app, service) not in self.service_files:
                declared = _listing(s for a, s in self.service_files if a == app)
                self.problems.append(Problem(
                    "service", f"refers to service {service!r}, which is not declared: add "
                               f"{APPS_DIR}/{app}/{SERVICES_DIR}/{service}.yaml (services of {app!r}: {declared})",
                    file))

    def _check_unique_images(self) -> None:
        # Two services pushing to one repository would overwrite each other's tags and history.
        first_user: dict[str, str] = {}
        for (app, name), service in sorted(self.services.items()):
            file = f"{APPS_DIR}/{app}/{SERVICES_DIR}/{name}.yaml"
            if service.image in first_user:
                self.problems.append(Problem(
                    "image", f"repository {service.image!r} is already used by {first_user[service.image]}: "
                             "each service needs its own image repository", file))
            else:
                first_user[service.image] = file

    def _check_databases(self) -> None:
        """One database per service and stage, never shared, never across stages."""
        owner_of: dict[str, str] = {}
        for (app, service, stage), db in sorted(self.databases.items()):
            file = f"{APPS_DIR}/{app}/{DATABASES_DIR}/{stage}/{service}.yaml"
            declared = self.services.get((app, service))
            if (app, service) not in self.service_files:
                self.problems.append(Problem("service", f"refers to service {service!r}, which is not declared", file))
            elif declared is not None and declared.database != db.engine:
                self.problems.append(Problem("engine", f"is {db.engine!r} but service {service!r} declares database: "
                                                       f"{declared.database!r}", file))
            # A Helm release name is unique per namespace; a cloud instance name per account.
            instance = db.instance if db.provider == "terraform" else f"{app}-{stage}/{db.instance}"
            for field_name, key in (("instance", instance), ("host", f"{db.host}:{db.port}"),
                                    ("credentials", db.credentials)):
                other = owner_of.setdefault(f"{field_name}={key}", file)
                if other != file:
                    self.problems.append(Problem(field_name, f"{key!r} is also the database of {other}: every service "
                                                             "has its own database per stage, never shared", file))
            self.problems.extend(Problem(f, rule, file) for f, rule in _stage_problems(db))

    # --- helpers -----------------------------------------------------------------------------

    def _parse(self, path: Path, expected: type[M]) -> M | None:
        rel = self._rel(path)
        try:
            model = parse_file(rel, path.read_text(encoding="utf-8"))
        except UnicodeDecodeError:
            self.problems.append(Problem("(document)", "must be UTF-8 text", rel))
            return None
        except ValidationFailed as exc:
            self.problems.extend(exc.problems)
            return None
        if not isinstance(model, expected):
            self.problems.append(Problem("kind", f"must be {expected.KIND} in this place "
                                                 f"(found {type(model).KIND})", rel))
            return None
        return model

    def _matches(self, path: Path, field_name: str, value: str, expected: str, what: str) -> bool:
        if value == expected:
            return True
        self.problems.append(Problem(field_name, f"must match {what} {expected!r} (found {value!r})",
                                     self._rel(path)))
        return False

    def _entries(self, folder: Path) -> list[Path]:
        return sorted(p for p in folder.iterdir() if not _hidden(p))

    def _yaml_files(self, folder: Path, holds: str) -> list[Path]:
        files = []
        for entry in self._entries(folder):
            if entry.is_file() and entry.suffix == ".yaml":
                files.append(entry)
            else:
                self._unexpected(entry, holds)
        return files

    def _unexpected(self, path: Path, holds: str) -> None:
        what = "folder" if path.is_dir() else "file"
        self.problems.append(Problem(self._rel(path), f"unexpected {what}: {holds}"))

    def _rel(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()


def _namespace_of(host: str) -> str | None:
    """The Kubernetes namespace a cluster-internal host name points into (``x.ns``, ``x.ns.svc...``)."""
    parts = host.split(".")
    if len(parts) == 2 or (len(parts) >= 3 and parts[2] == "svc"):
        return parts[1]
    return None


def _stage_problems(db: Database) -> list[tuple[str, str]]:
    """A test database lives in <app>-test; a prod database is a managed one, never in a test namespace."""
    test_ns = f"{db.app}-test"
    host_ns = _namespace_of(db.host)
    secret_ns = db.credentials.removeprefix("kubernetes:").split("/", 1)[0] \
        if db.credentials.startswith("kubernetes:") else None
    problems = []
    if db.stage == "test":
        if db.provider != "helm":
            problems.append(("provider", "must be helm for a test database (it runs in the cluster)"))
        if host_ns != test_ns:
            problems.append(("host", f"must be a service in {test_ns} (e.g. {db.instance}.{test_ns}.svc.cluster.local): "
                                     f"a test service never uses another stage's database (found {db.host!r})"))
        if secret_ns != test_ns:
            problems.append(("credentials", f"must be kubernetes:{test_ns}/<secret> (found {db.credentials!r})"))
    else:
        if db.provider != "terraform":
            problems.append(("provider", "must be terraform for a prod database (a managed cloud database)"))
        if host_ns is not None and host_ns.endswith("-test") or db.host.endswith("-test.svc.cluster.local"):
            problems.append(("host", f"points at a test database ({db.host!r}): prod never uses a test database"))
        if secret_ns is not None and secret_ns.endswith("-test"):
            problems.append(("credentials", f"point at the test namespace {secret_ns!r}: prod never uses test "
                                            "credentials"))
    return problems
