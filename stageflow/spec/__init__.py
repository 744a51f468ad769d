"""The platform spec: the infrastructure repository's files as typed, validated models.

The infrastructure repository is the single source of truth::

    platform.yaml                          kind: Platform
    apps/<app>/app.yaml                    kind: App
    apps/<app>/services/<service>.yaml     kind: Service
    apps/<app>/<stage>/<service>.yaml      kind: DeployedVersion   (stage: test, prod)
    apps/<app>/releases/<service>.yaml     kind: ReleaseHistory    (prod releases, oldest first)
    apps/<app>/databases/<stage>/<service>.yaml  kind: Database  (one per service and stage)

>>> spec = load_spec(Path("examples/infra"))        # doctest: +SKIP
>>> spec.version("shop", "orders", "test").image.reference  # doctest: +SKIP
'127.0.0.1:5000/shop/orders@sha256:...'

Every rule is reported as ``file: field: rule`` through :class:`stageflow.errors.ValidationFailed`.
"""
from __future__ import annotations

from stageflow.spec.files import parse_file, to_yaml
from stageflow.spec.layout import (app_path, database_path, new_infra_tree, platform_path, release_history_path,
                                   service_path, version_path)
from stageflow.spec.models import (App, ChartRef, Database, DeployedVersion, ImageRef, Platform, ReleaseHistory, ReleaseRecord,
                                   Service, SourceRef)
from stageflow.spec.names import STAGES, Stage, namespace, split_image_reference, validate_name
from stageflow.spec.tree import PlatformSpec, load_spec, validate_tree

__all__ = [
    "STAGES",
    "App",
    "ChartRef",
    "Database",
    "DeployedVersion",
    "ImageRef",
    "Platform",
    "PlatformSpec",
    "ReleaseHistory",
    "ReleaseRecord",
    "Service",
    "SourceRef",
    "Stage",
    "app_path",
    "database_path",
    "load_spec",
    "namespace",
    "new_infra_tree",
    "parse_file",
    "platform_path",
    "release_history_path",
    "service_path",
    "split_image_reference",
    "to_yaml",
    "validate_name",
    "validate_tree",
    "version_path",
]
