"""The embedded Kubernetes control plane: etcd, kube-apiserver, kube-controller-manager and
kube-scheduler built from the real sources (scripts/build-tools.sh), with nodes simulated by kwok.

Deployments really create ReplicaSets and pods, the scheduler really binds them, and kwok plays
the kubelet: it marks pods Running and Ready. Authentication is a static admin token; the API
server generates its own CA and serving certificate (``kube/pki``), which the kubeconfig trusts.
"""
from __future__ import annotations

import base64
import secrets
import ssl
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import yaml

from stageflow.local.process import ManagedProcess, port_open, wait_until
from stageflow.local.tools import tool

__all__ = ["ControlPlane", "KubePorts"]

NODE_COUNT = 2
STORAGE_CLASS = "standard"
STAGES = Path(__file__).with_name("kwok") / "stages.yaml"


@dataclass(frozen=True)
class KubePorts:
    etcd_client: int = 2379
    etcd_peer: int = 2380
    apiserver: int = 6443


class ControlPlane:
    """Start, adopt and stop the control plane that lives under ``home/kube``."""

    def __init__(self, home: Path, ports: KubePorts = KubePorts()):
        self.home = home
        self.dir = home / "kube"
        self.ports = ports
        self.kubeconfig = self.dir / "kubeconfig"
        self.procs = {n: ManagedProcess(n, home) for n in
                      ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")}

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.ports.apiserver}"

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self, progress=print) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        token = self._credentials()
        self._start_etcd(progress)
        self._start_apiserver(progress)
        self._write_kubeconfig(token)
        args = ["--kubeconfig", str(self.kubeconfig), "--leader-elect=false"]
        self.procs["kube-controller-manager"].start([
            tool("kube-controller-manager"), *args,
            f"--service-account-private-key-file={self.dir / 'sa.key'}",
            "--use-service-account-credentials=false",
            "--controllers=*,-nodeipam,-attachdetach,-cloud-node-lifecycle",
            # Volume claims bind through the binder's built-in test provisioner (StorageClass
            # "standard", see _ensure_storage_class): a directory under /tmp per volume, enough for
            # simulated nodes, where no kubelet ever mounts anything.
            "--enable-hostpath-provisioner=true",
            "--secure-port=0", "--concurrent-deployment-syncs=10", "--concurrent-replicaset-syncs=10",
        ])
        self.procs["kube-scheduler"].start([tool("kube-scheduler"), *args, "--secure-port=0"])
        self.procs["kwok"].start([
            tool("kwok"), "--kubeconfig", str(self.kubeconfig),
            "--manage-all-nodes=false",
            "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
            "--node-ip=10.0.0.1", "--cidr=10.0.0.0/16", "--server-address=127.0.0.1:0",
            f"--config={STAGES}",
        ])
        progress("kubernetes: registering simulated nodes")
        self._ensure_nodes()
        self._ensure_storage_class()

    def stop(self) -> None:
        for name in ("kwok", "kube-scheduler", "kube-controller-manager", "kube-apiserver", "etcd"):
            self.procs[name].stop()

    def running(self) -> bool:
        return all(p.running() for p in self.procs.values())

    def healthy(self) -> bool:
        return self._readyz()

    # -- pieces ------------------------------------------------------------------------------
    def _credentials(self) -> str:
        """An admin token and the service-account signing key, made once and kept."""
        token_file = self.dir / "tokens.csv"
        if not token_file.exists():
            token = secrets.token_hex(24)
            token_file.write_text(f'{token},stageflow-admin,stageflow-admin,"system:masters"\n')
            token_file.chmod(0o600)
        key = self.dir / "sa.key"
        if not key.exists():
            from cryptography.hazmat.primitives import serialization
            from cryptography.hazmat.primitives.asymmetric import rsa

            private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            key.write_bytes(private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                  serialization.NoEncryption()))
            key.chmod(0o600)
            (self.dir / "sa.pub").write_bytes(private.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
        return token_file.read_text().split(",", 1)[0]

    def _start_etcd(self, progress) -> None:
        p = self.ports
        proc = self.procs["etcd"]
        if not proc.running():
            progress("kubernetes: starting etcd")
            proc.start([
                tool("etcd"), "--name=stageflow", f"--data-dir={self.dir / 'etcd'}",
                f"--listen-client-urls=http://127.0.0.1:{p.etcd_client}",
                f"--advertise-client-urls=http://127.0.0.1:{p.etcd_client}",
                f"--listen-peer-urls=http://127.0.0.1:{p.etcd_peer}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{p.etcd_peer}",
                f"--initial-cluster=stageflow=http://127.0.0.1:{p.etcd_peer}",
                "--quota-backend-bytes=2147483648", "--unsafe-no-fsync",
            ])
        wait_until(lambda: port_open(p.etcd_client), timeout=60, what="etcd", log=proc.log_file)

    def _start_apiserver(self, progress) -> None:
        proc = self.procs["kube-apiserver"]
        if not proc.running():
            progress("kubernetes: starting kube-apiserver")
            proc.start([
                tool("kube-apiserver"),
                f"--etcd-servers=http://127.0.0.1:{self.ports.etcd_client}",
                "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
                f"--secure-port={self.ports.apiserver}",
                f"--cert-dir={self.dir / 'pki'}",
                f"--token-auth-file={self.dir / 'tokens.csv'}",
                "--authorization-mode=RBAC",
                "--service-account-issuer=https://kubernetes.default.svc",
                f"--service-account-key-file={self.dir / 'sa.pub'}",
                f"--service-account-signing-key-file={self.dir / 'sa.key'}",
                "--service-cluster-ip-range=10.96.0.0/16",
                "--enable-priority-and-fairness=false",
                "--profiling=false",
            ])
        wait_until(self._readyz, timeout=120, what="kube-apiserver", interval=0.5, log=proc.log_file)

    def _readyz(self) -> bool:
        ca = self.dir / "pki" / "apiserver.crt"
        if not ca.exists():
            return False
        ctx = ssl.create_default_context(cafile=str(ca))
        try:
            with urllib.request.urlopen(f"{self.server}/readyz", context=ctx, timeout=2) as r:
                return r.status == 200
        except Exception:  # noqa: BLE001 - any failure means "not ready yet"
            return False

    def _write_kubeconfig(self, token: str) -> None:
        config = {
            "apiVersion": "v1", "kind": "Config", "current-context": "stageflow",
            "clusters": [{"name": "stageflow", "cluster": {
                "server": self.server,
                "certificate-authority-data": base64.b64encode((self.dir / "pki" / "apiserver.crt").read_bytes()).decode(),
            }}],
            "users": [{"name": "stageflow-admin", "user": {"token": token}}],
            "contexts": [{"name": "stageflow", "context": {"cluster": "stageflow", "user": "stageflow-admin"}}],
        }
        self.kubeconfig.write_text(yaml.safe_dump(config, sort_keys=False))
        self.kubeconfig.chmod(0o600)

    def _ensure_nodes(self) -> None:
        """Simulated nodes (kwok plays their kubelet); adopted when they already exist."""
        from kubernetes import client, config
        from kubernetes.client.exceptions import ApiException

        api = client.CoreV1Api(config.new_client_from_config(str(self.kubeconfig)))
        capacity = {"cpu": "32", "memory": "256Gi", "pods": "110", "ephemeral-storage": "1Ti"}
        for i in range(NODE_COUNT):
            name = f"kwok-node-{i}"
            body = {
                "apiVersion": "v1", "kind": "Node",
                "metadata": {"name": name,
                             "annotations": {"node.alpha.kubernetes.io/ttl": "0", "kwok.x-k8s.io/node": "fake"},
                             "labels": {"type": "kwok", "kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                                        "kubernetes.io/arch": "amd64", "node-role.kubernetes.io/agent": ""}},
                "status": {"allocatable": capacity, "capacity": capacity},
            }
            try:
                api.create_node(body)
            except ApiException as exc:
                if exc.status != 409:
                    raise
                # Adopted: a node registered by an older version may lack a resource (ephemeral-storage).
                api.patch_node_status(name, {"status": {"allocatable": capacity, "capacity": capacity}})

        def ready() -> bool:
            nodes = api.list_node().items
            # Ready, and the node lifecycle controller has lifted the not-ready taint: schedulable.
            return len(nodes) >= NODE_COUNT and all(
                any(c.type == "Ready" and c.status == "True" for c in (n.status.conditions or []))
                and not n.spec.taints for n in nodes)

        wait_until(ready, timeout=60, what="kwok nodes", log=self.procs["kwok"].log_file)

    def _ensure_storage_class(self) -> None:
        """The default StorageClass, so a claim without storageClassName binds; adopted when it exists."""
        from kubernetes import client, config
        from kubernetes.client.exceptions import ApiException

        api = client.StorageV1Api(config.new_client_from_config(str(self.kubeconfig)))
        body = {
            "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": {"name": STORAGE_CLASS,
                         "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
            "provisioner": "kubernetes.io/host-path", "reclaimPolicy": "Delete", "volumeBindingMode": "Immediate",
        }
        try:
            api.create_storage_class(body)
        except ApiException as exc:
            if exc.status != 409:
                raise
