"""Adapters: the only modules that talk to vendor tools and APIs (git, the forge, the registry,
Docker, Kubernetes, Helm). Each translates vendor errors into ``stageflow.errors`` at its boundary.
"""
