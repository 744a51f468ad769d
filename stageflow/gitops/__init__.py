"""GitOps: the infrastructure repository checkout flows write desired state through."""
from stageflow.gitops.infra_repo import CommitRecord, InfraRepo
from stageflow.gitops.trailers import message_with_trailers, parse_trailers, validate_trailers

__all__ = ["CommitRecord", "InfraRepo", "message_with_trailers", "parse_trailers", "validate_trailers"]
