"""An explicit compensation list: what a run created, and how to undo it, newest first.

    undo = Compensations()
    undo.add("delete repository shop-orders", lambda: forge.delete_repo("shop-orders"))
    ...                                    # on a failure the flow cannot recover from:
    report = undo.run()                    # each undo runs once, newest first; failures are kept

Chosen over Prefect transactions so that the core (and its tests) stay free of Prefect, and so a
step that failed half-way is undone too: an undo is registered *before* the step that may create
the thing, and every undo is written to be safe when there is nothing to undo.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["Compensations", "UndoReport"]


@dataclass
class UndoReport:
    undone: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # "<what>: <error>" (errors never hold secrets)


class Compensations:
    def __init__(self) -> None:
        self._undo: list[tuple[str, Callable[[], object]]] = []

    def add(self, what: str, undo: Callable[[], object]) -> None:
        self._undo.append((what, undo))

    def __len__(self) -> int:
        return len(self._undo)

    def run(self) -> UndoReport:
        """Undo everything registered, newest first; one failing undo does not stop the others."""
        report = UndoReport()
        while self._undo:
            what, undo = self._undo.pop()
            try:
                undo()
                report.undone.append(what)
            except Exception as exc:  # noqa: BLE001 - reported to the person, who must clean up
                report.failed.append(f"{what}: {exc}")
        return report
