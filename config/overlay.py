"""A config HQ pushes, laid over the box's own file: the merge and every check, pure.

Theory of operation
-------------------
HQ does not send a whole config: it sends an *overlay*, the sections and fields it sets
(``cloud_sync/contract/config_document.py``), and the box lays it over the config of its own
file. The file keeps what only the box can know (its identity, its paths, its secrets' files),
HQ sets what is the chain's to decide (offers, limits, tills, the printer's template), and a
new overlay replaces the last one whole: a field HQ stops setting goes back to the file's.

``merge`` is a deep merge of JSON objects: a table in the overlay merges into the base's
table, anything else (a number, a string, an array such as ``api.tills``) replaces the base's
value. ``check`` answers, in this order, every error of a step before the next is taken:

1. no leaf of the overlay under a path the box keeps to itself (``LOCAL_ONLY``: its trust root
   and the files it reads its secrets from; a pushed config must not be able to swap the key
   that checks every later push) ..................................... ``Refused(REJECTED)``
2. the merged document against the closed schema (``AgentConfig``), every error with its
   dotted key path: a typo'd key, a value out of range ................ ``Refused(REJECTED)``
3. ``diff_configs`` of the running config and the new one: a change that needs a restart
   (the store's identity, the cache file, the API's socket) is named with its reason, and
   nothing is applied ............................................ ``Refused(NEEDS_RESTART)``

and otherwise ``Ready``, the new config and its diff (no change at all is ``Ready`` with an
empty diff: the caller answers ``unchanged``). HQ runs steps 1 and 2 on a pushed file before
it signs anything (``refusals_before_push``, with the rules' restart paths refused too, since
no box could apply them live), so a typo is caught at the desk; the box runs all three, and it
is the authority.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

from pydantic import ValidationError

from cloud_sync.contract.config_result import FieldError, Outcome
from config.diff import Apply, ConfigDiff, diff_configs, rule_for
from config.load import field_errors
from config.model import AgentConfig

LOCAL_ONLY: Final[Mapping[str, str]] = {
    "sync.hq_public_key": "the box's trust root is pinned on the box (HQ's next key is "
    "announced: storeside-hq hq-key announce)",
    "sync.password_file": "a file on the box, holding its broker secret",
    "sync.ca_file": "a file on the box",
    "printer.file_path": "a file or device on the box",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Ready:
    config: AgentConfig
    diff: ConfigDiff


@dataclass(frozen=True, slots=True, kw_only=True)
class Refused:
    outcome: Outcome  # REJECTED or NEEDS_RESTART
    errors: tuple[FieldError, ...]


def merge(base: Mapping[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    """``overlay`` deep-merged onto ``base`` (neither is changed): see the module docstring."""
    out = dict(base)
    for key, value in overlay.items():
        below = out.get(key)
        if isinstance(value, Mapping) and isinstance(below, Mapping):
            out[key] = merge(below, value)
        else:
            out[key] = value
    return out


def leaf_paths(overlay: Mapping[str, Any], prefix: str = "") -> Iterator[str]:
    """The dotted path of every value the overlay sets (an empty table sets nothing)."""
    for key, value in overlay.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            yield from leaf_paths(value, f"{path}.")
        else:
            yield path


def _under(path: str, top: str) -> bool:
    return path == top or path.startswith(f"{top}.")


def local_only_errors(overlay: Mapping[str, Any]) -> list[FieldError]:
    return [
        FieldError(path, f"set on the box only: {why}")
        for path in leaf_paths(overlay)
        for top, why in LOCAL_ONLY.items()
        if _under(path, top)
    ]


def laid_over(base: AgentConfig, overlay: Mapping[str, Any]) -> AgentConfig | list[FieldError]:
    """``overlay`` merged over ``base`` and validated: the config, or every schema error."""
    try:
        return AgentConfig.model_validate(merge(base.model_dump(mode="json"), overlay))
    except ValidationError as exc:
        return [FieldError(path, msg) for path, msg in field_errors(exc)]


def check(
    overlay: Mapping[str, Any], *, base: AgentConfig, running: AgentConfig
) -> Ready | Refused:
    """What the box makes of ``overlay`` over its file's config ``base`` while it runs
    ``running`` (the steps of the module docstring)."""
    refused = local_only_errors(overlay)
    if refused:
        return Refused(outcome=Outcome.REJECTED, errors=tuple(refused))
    new = laid_over(base, overlay)
    if isinstance(new, list):
        return Refused(outcome=Outcome.REJECTED, errors=tuple(new))
    diff = diff_configs(running, new)
    if diff.restart:
        errors = tuple(
            FieldError(c.path, f"needs a restart ({c.detail}): {c.why}") for c in diff.restart
        )
        return Refused(outcome=Outcome.NEEDS_RESTART, errors=errors)
    return Ready(config=new, diff=diff)


def refusals_before_push(overlay: Mapping[str, Any]) -> list[FieldError]:
    """What HQ refuses to push (every error): a field the box keeps to itself, one no box can
    change live, and whatever the schema refuses over the defaults."""
    errors = local_only_errors(overlay)
    new = laid_over(AgentConfig(), overlay)
    if isinstance(new, list):  # a typo'd key is its own error, not also "needs a restart"
        return errors + new
    return errors + [
        FieldError(path, f"needs a restart: {rule.why}")
        for path in leaf_paths(overlay)
        if (rule := rule_for(path)).apply is Apply.RESTART
    ]
