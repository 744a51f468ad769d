"""The steps the flows are made of, one module each, importable without Prefect.

Every step has the same shape: a typed ``Config`` (pydantic, ``extra="forbid"``), its
dependencies passed in, and a public ``run(config, ...)`` that validates first and then does
the work, returning a typed result. Prefect tasks in ``tasks/`` are thin wrappers over these.
"""
