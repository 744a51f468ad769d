"""``stageflow drift`` and the drift line of ``stageflow status`` (the detect-drift flow's result)."""
from __future__ import annotations

import argparse
import json
from typing import Callable

from stageflow.settings import PlatformSettings, load_settings


def last_drift(settings: PlatformSettings, use_platform) -> str:
    """The latest detect-drift result (its `drift-table` artifact), in one line plus its rows."""
    use_platform(settings)
    try:
        from prefect.client.orchestration import get_client
        from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

        with get_client(sync_client=True) as client:
            found = client.read_latest_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(
                any_=["drift-table"])), limit=1)
    except Exception as exc:  # noqa: BLE001 - status still shows the table when Prefect is down
        return f"drift: unknown (Prefect server not reachable: {type(exc).__name__})"
    if not found:
        return "drift: detect-drift has not run yet (`stageflow drift`, or its schedule every 15 minutes)"
    latest = found[0]
    rows = json.loads(latest.data) if isinstance(latest.data, str) else latest.data or []
    when = latest.updated.strftime("%Y-%m-%d %H:%M UTC") if latest.updated else "?"
    if not rows:
        return f"drift: none at the last detect-drift run ({when})"
    lines = [f"drift at the last detect-drift run ({when}): {len(rows)} differences (`stageflow drift --heal`)"]
    lines += [f"  {r.get('app')}/{r.get('service') or '-'} {r.get('stage')}: {r.get('what')}: expected "
              f"{r.get('expected')}, found {r.get('actual')}" for r in rows[:20]]
    return "\n".join(lines)


def cmd_drift(args: argparse.Namespace, out: Callable[[str], None], use_platform) -> int:
    if args.app:
        from stageflow.spec import validate_name

        validate_name("app", args.app, kind="app")
    settings = load_settings()
    use_platform(settings)
    from flows.detect_drift import detect_drift

    remaining = detect_drift(app=args.app, heal=args.heal)
    if not remaining:
        out("no drift: the cluster matches the infrastructure repo" + (" (after healing)" if args.heal else ""))
        return 0
    for d in remaining:
        out(f"{d['app']}/{d.get('service') or '-'} {d['stage']}: {d['kind']}: expected {d['expected']}, "
             f"found {d['actual']}")
    out(f"{len(remaining)} differences{' remain after healing' if args.heal else ''}"
         + ("" if args.heal else "; `stageflow drift --heal` makes the cluster match again"))
    return 1
