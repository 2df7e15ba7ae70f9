"""The simulated shelf screen: keeps what it was shown (the demo prints it, tests read it)."""

from __future__ import annotations

from edge_agent.proximity.shelf_screen import ShelfNotice


class SimShelfScreen:
    def __init__(self) -> None:
        self.shown: list[ShelfNotice] = []

    async def show(self, notice: ShelfNotice) -> None:
        self.shown.append(notice)
