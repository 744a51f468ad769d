"""A thin typed wrapper over AWS Secrets Manager (boto3), where prod database credentials live.

The endpoint is boto3's own: ``endpoint_url`` when given, else ``AWS_ENDPOINT_URL_SECRETS_MANAGER`` /
``AWS_ENDPOINT_URL`` from the environment (how the tests point it at moto's server), else AWS.
Credentials come from boto3's usual chain and are never arguments here.

Secret values are JSON objects of strings (``{"username": ..., "password": ..., "host": ...}``)
and come back as ``SecretStr``; no value ever reaches an exception message or a log line.
botocore errors are translated at this boundary:

    throttling, 5xx, connection and read timeouts   -> SecretsManagerUnavailable (retryable)
    ResourceNotFoundException                        -> NotFound
    anything else (access denied, invalid request)  -> TerminalError with AWS's error code

Also a tiny command line, used by the Terraform stand-in modules' ``local-exec`` provisioners::

    python -m stageflow.adapters.secrets_manager ensure --name shop/cart/db --field username=cart \\
        --generate password
    python -m stageflow.adapters.secrets_manager delete --secret-id shop/cart/db --force
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import string
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import boto3
import botocore.exceptions
from botocore.config import Config
from pydantic import SecretStr

from stageflow.errors import NotFound, RetryableError, TerminalError

__all__ = ["SecretsManager", "SecretsManagerUnavailable", "generate_password"]

_RETRYABLE_CODES = {
    "ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded",
    "InternalServiceError", "InternalFailure", "ServiceUnavailable", "RequestTimeout",
}
# Characters RDS and Atlas both accept in a password and no shell or URL needs escaped.
_PASSWORD_ALPHABET = string.ascii_letters + string.digits + "-_"


class SecretsManagerUnavailable(RetryableError):
    """Secrets Manager throttled us, failed on its side or could not be reached."""


def generate_password(length: int = 32) -> str:
    return "".join(secrets.choice(_PASSWORD_ALPHABET) for _ in range(length))


class SecretsManager:
    """Example::

        sm = SecretsManager("eu-west-1")
        arn = sm.ensure_secret("shop/cart/db", {"username": "cart", "password": generate_password()})
        creds = sm.read_secret(arn)          # {"username": SecretStr(...), ...}
    """

    def __init__(self, region: str, endpoint_url: str | None = None):
        self.region = region
        # Retries of throttling and 5xx live in botocore ("standard" mode); what is still failing
        # afterwards surfaces as SecretsManagerUnavailable for the flow's own retry policy.
        self._client = boto3.client("secretsmanager", region_name=region, endpoint_url=endpoint_url,
                                    config=Config(retries={"mode": "standard", "max_attempts": 4},
                                                  connect_timeout=5, read_timeout=30))

    def ensure_secret(self, name: str, value: dict[str, str], *, description: str = "",
                      tags: dict[str, str] | None = None) -> str:
        """The ARN of secret ``name``, created with ``value`` unless it exists.

        An existing secret is adopted as it is, never overwritten: it may hold a password a
        database already uses (an earlier run created it and died before recording that)."""
        with _translated(f"secret {name}"):
            existing = self._describe_or_none(name)
            if existing is not None:
                if existing.get("DeletedDate"):
                    raise TerminalError(f"secret {name} is scheduled for deletion: restore it "
                                        f"(aws secretsmanager restore-secret) or wait until it is gone")
                return str(existing["ARN"])
            try:
                created = self._client.create_secret(
                    Name=name, Description=description, SecretString=json.dumps(value, sort_keys=True),
                    Tags=[{"Key": k, "Value": v} for k, v in (tags or {}).items()])
                return str(created["ARN"])
            except botocore.exceptions.ClientError as exc:
                if _code(exc) != "ResourceExistsException":
                    raise
            # Created between our describe and create (a concurrent run): adopt it.
            return str(self._client.describe_secret(SecretId=name)["ARN"])

    def read_secret(self, secret_id: str) -> dict[str, SecretStr]:
        """The secret's JSON object; every value wrapped so it cannot be printed by accident."""
        with _translated(f"secret {secret_id}"):
            raw = self._client.get_secret_value(SecretId=secret_id)["SecretString"]
        try:
            data = json.loads(raw)
        except json.JSONDecodeError:
            data = None
        if not isinstance(data, dict):
            raise TerminalError(f"secret {secret_id} does not hold a JSON object (its value is not shown)")
        return {str(k): SecretStr(v if isinstance(v, str) else json.dumps(v)) for k, v in data.items()}

    def secret_arn(self, secret_id: str) -> str | None:
        """The ARN, or None when there is no such secret (a secret scheduled for deletion counts as gone)."""
        with _translated(f"secret {secret_id}"):
            found = self._describe_or_none(secret_id)
        return None if found is None or found.get("DeletedDate") else str(found["ARN"])

    def delete_secret(self, secret_id: str, *, force: bool = False, recovery_days: int = 7) -> bool:
        """Delete the secret; True if it existed. Without ``force`` it stays recoverable for
        ``recovery_days`` (Secrets Manager's own safety net); ``force`` deletes it at once."""
        with _translated(f"secret {secret_id}"):
            found = self._describe_or_none(secret_id)
            if found is None or (found.get("DeletedDate") and not force):
                return False
            options = {"ForceDeleteWithoutRecovery": True} if force else {"RecoveryWindowInDays": recovery_days}
            try:
                self._client.delete_secret(SecretId=secret_id, **options)
            except botocore.exceptions.ClientError as exc:
                if _code(exc) != "ResourceNotFoundException":
                    raise
                return False
            return True

    def _describe_or_none(self, secret_id: str) -> dict | None:
        try:
            return self._client.describe_secret(SecretId=secret_id)
        except botocore.exceptions.ClientError as exc:
            if _code(exc) == "ResourceNotFoundException":
                return None
            raise


def _code(exc: botocore.exceptions.ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


@contextmanager
def _translated(what: str) -> Iterator[None]:
    """botocore -> Stageflow. Only the error code and AWS's message are kept: request parameters
    (which hold the secret's value on create) are never part of the text."""
    try:
        yield
    except botocore.exceptions.ClientError as exc:
        code = _code(exc)
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        message = f"{what}: {code or 'error'} ({exc.response.get('Error', {}).get('Message', '')})"
        if code == "ResourceNotFoundException":
            raise NotFound(f"{what} does not exist") from exc
        if code in _RETRYABLE_CODES or status >= 500:
            raise SecretsManagerUnavailable(message) from exc
        raise TerminalError(message) from exc
    except (botocore.exceptions.EndpointConnectionError, botocore.exceptions.ConnectTimeoutError,
            botocore.exceptions.ReadTimeoutError, botocore.exceptions.ConnectionClosedError) as exc:
        raise SecretsManagerUnavailable(f"{what}: cannot reach Secrets Manager: {type(exc).__name__}") from exc
    except botocore.exceptions.NoCredentialsError as exc:
        raise TerminalError(f"{what}: no AWS credentials configured") from exc
    except botocore.exceptions.NoRegionError as exc:
        raise TerminalError(f"{what}: no AWS region configured") from exc


# -- command line (the stand-in modules' provisioners) --------------------------------------------
def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stageflow.adapters.secrets_manager")
    parser.add_argument("--region", default=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"))
    sub = parser.add_subparsers(dest="command", required=True)
    ensure = sub.add_parser("ensure", help="create the secret unless it exists; prints its ARN")
    ensure.add_argument("--name", required=True)
    ensure.add_argument("--field", action="append", default=[], metavar="KEY=VALUE", help="a non-secret field")
    ensure.add_argument("--generate", action="append", default=[], metavar="KEY", help="a generated password field")
    ensure.add_argument("--description", default="")
    delete = sub.add_parser("delete", help="delete the secret (recoverable for 7 days unless --force)")
    delete.add_argument("--secret-id", required=True)
    delete.add_argument("--force", action="store_true")
    args = parser.parse_args(argv)
    if not args.region:
        parser.error("no region: pass --region or set AWS_REGION")
    sm = SecretsManager(args.region)
    try:
        if args.command == "ensure":
            value = dict(field.split("=", 1) for field in args.field)
            value.update({key: generate_password() for key in args.generate})
            print(sm.ensure_secret(args.name, value, description=args.description))
        else:
            print("deleted" if sm.delete_secret(args.secret_id, force=args.force) else "absent")
    except (TerminalError, RetryableError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(_main())
