"""``make bench`` / ``python -m benchmarks``: what orchestration costs, measured on the embedded platform.

Two measurements, both taken in the same run on a platform the benchmark starts for itself
(fresh temporary ``STAGEFLOW_HOME``, free ports) and removes afterwards:

(a) orchestration overhead: the ``build-to-test`` flow against a plain script doing the same
    operations (resolve tag -> digest, commit the version file, ``helm upgrade --install``, wait
    for the rollout), each round deploying a new digest; :mod:`benchmarks.overhead`.
(b) ``sync-stage`` for 10, 50 and 100 services, cold (everything new) and warm (nothing
    changed); :mod:`benchmarks.scale`.

Nothing here asserts on time: the figures are printed, and with ``--write-docs`` recorded in
``docs/benchmarks.md``. This package must not import Prefect at import time, because Prefect
reads its settings once, when first imported, and :mod:`benchmarks.__main__` has to point them
at the benchmark's own platform first.
"""
