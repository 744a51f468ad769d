"""``stageflow-kubeconfig``: the kubeconfig of a cluster provision-cluster made, as a Prefect block.

    block = StageflowKubeconfig.load("prod-eu")        # saved by provision-cluster as <cluster name>
    path = block.get_kubeconfig_path(Path("/private"))  # /private/prod-eu.kubeconfig, mode 0600
    Kube(path)

The kubeconfig of an EKS cluster carries no credential (it runs ``aws eks get-token``), but it is
a ``SecretStr`` anyway: Prefect stores it encrypted and never shows it, so a kubeconfig that does
hold a token (another module, a stand-in) is just as safe here, and nothing logs it.
"""
from __future__ import annotations

import os
from pathlib import Path

from prefect.blocks.core import Block
from pydantic import Field, SecretStr

__all__ = ["StageflowKubeconfig"]


class StageflowKubeconfig(Block):
    """A cluster's kubeconfig (what ``terraform output kubeconfig`` of terraform/modules/cluster gives)."""

    _block_type_name = "Stageflow Kubeconfig"
    _block_type_slug = "stageflow-kubeconfig"
    _description = "Kubeconfig of a Kubernetes cluster provisioned by Stageflow's provision-cluster flow."

    name: str = Field(description="the cluster name (also the block's name and the kubeconfig's context)")
    kubeconfig: SecretStr = Field(description="the kubeconfig document (YAML)")

    def get_kubeconfig_path(self, directory: Path) -> Path:
        """Write the kubeconfig to ``directory/<name>.kubeconfig``, owner-only (0600), and return the path.

        Written to a private temporary file first and renamed over the target, so a reader never
        sees half a file and the content is never readable by others, not even for a moment."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        target = directory / f"{self.name}.kubeconfig"
        partial = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.fchmod(fd, 0o600)  # O_CREAT's mode is ignored when the file already existed
            with os.fdopen(fd, "w") as fh:
                fh.write(self.kubeconfig.get_secret_value())
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        os.replace(partial, target)
        return target
