"""`edge-agent` subcommands for keys. (Initial: no commands yet; the keys work adds them.)"""

from __future__ import annotations

from typing import Any


def register(sub: Any) -> None:
    """Add this module's subcommands to the `edge-agent` parser's subparsers.

    Each command is ``func(args: argparse.Namespace, cfg: AgentConfig) -> int`` (0 done,
    1 refused, 2 usage error); raise ``edge_agent.cli_support.UsageError`` for a user mistake.
    """
    del sub
