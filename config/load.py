"""Reading the agent's config file (TOML), with errors that name the offending key."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from config.model import AgentConfig


class ConfigError(ValueError):
    """A config that cannot be applied; ``problems`` lists each key path and what is wrong."""

    def __init__(self, source: str, problems: list[str]) -> None:
        super().__init__(f"{source}: " + "; ".join(problems))
        self.source = source
        self.problems = problems


def field_errors(exc: ValidationError) -> list[tuple[str, str]]:
    """Every error of a validation, as (dotted key path, what is wrong); "" is the top."""
    return [(".".join(str(p) for p in err["loc"]), err["msg"]) for err in exc.errors()]


def parse_config(doc: dict[str, Any], *, source: str = "config") -> AgentConfig:
    try:
        return AgentConfig.model_validate(doc)
    except ValidationError as exc:
        problems = [f"{path or '(top)'}: {msg}" for path, msg in field_errors(exc)]
        raise ConfigError(source, problems) from None


def load_config(path: Path | None) -> AgentConfig:
    """The config at ``path``, or the defaults when ``path`` is None."""
    if path is None:
        return AgentConfig()
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(str(path), [f"cannot read: {exc.strerror}"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), [f"not valid TOML: {exc}"]) from None
    return parse_config(doc, source=str(path))


def json_schema() -> str:
    return json.dumps(AgentConfig.model_json_schema(), indent=2, sort_keys=True) + "\n"
