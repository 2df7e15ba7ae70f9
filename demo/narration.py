"""Printing the demo's story."""

from __future__ import annotations

from typing import Any


def money(minor: int) -> str:
    return f"{minor // 100}.{minor % 100:02d}"


def say(text: str = "") -> None:
    print(text, flush=True)


def step(title: str) -> None:
    say()
    say(f"-- {title}")


def show(decision: dict[str, Any]) -> None:
    if decision["ok"]:
        say(f"   ACCEPTED -{money(decision['discount'])}  {decision['cashier_message']}")
    else:
        say(f"   {decision['reason']}: {decision['cashier_message']}")
