"""Mosquitto's ACL file format, read and evaluated here, so the embedded broker enforces the
very file production ships (``config/mosquitto.acl``), not a copy kept in step by hand.

Theory of operation
-------------------
``parse_acl`` reads the subset of Mosquitto 2.0's ``acl_file`` syntax (mosquitto.conf(5)) that
Storeside uses and refuses anything else, so the two brokers cannot quietly disagree:

    user <name>                          the ``topic`` lines below are that user's
    topic [read|write|readwrite] <t>     grant the current user access to filter <t>
    pattern [read|write|readwrite] <t>   grant every user, with %u -> username, %c -> client id

(no access word means ``readwrite``, as in Mosquitto). ``deny`` lines and ``topic`` lines before
any ``user`` (Mosquitto's anonymous section) are refused: there is no anonymous client, and a
deny needs Mosquitto's precedence rules reproduced exactly.

A client is granted an access if any of its user's ``topic`` lines or any ``pattern`` line
matches. As in Mosquitto, %u and %c are substituted verbatim (so ``store-001/box-a`` adds a
level and matches nothing) and a pattern is not applied at all for a username or client id
that holds ``+`` or ``#`` (it would become a wildcard and reach every box).

Three questions are answered, each by MQTT's topic matching (MQTT 3.1.1 section 4.7):

* ``may_publish``: a write rule matches the topic.
* ``may_receive``: a read rule matches the topic of a message about to be delivered.
* ``may_subscribe``: every topic the filter can match is readable, i.e. the filter is covered
  by one read rule. Stricter than Mosquitto 2.0, which does not check SUBSCRIBE against an
  ACL file at all; here a box cannot even join ``$share/ingest/...`` (see README, "Known gap").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Flag, auto
from pathlib import Path

from cloud_sync.hq.broker.errors import BrokerConfigError


class Access(Flag):
    READ = auto()
    WRITE = auto()


_ACCESS = {"read": Access.READ, "write": Access.WRITE, "readwrite": Access.READ | Access.WRITE}


@dataclass(frozen=True, slots=True)
class Rule:
    access: Access
    topic: str  # an MQTT topic filter; in a pattern, with %u / %c still in it


@dataclass(frozen=True, slots=True)
class AclRules:
    patterns: tuple[Rule, ...] = ()
    users: dict[str, tuple[Rule, ...]] = field(default_factory=dict)

    def _filters(self, username: str, client_id: str, access: Access) -> list[str]:
        found = [r.topic for r in self.users.get(username, ()) if access in r.access]
        if not any(c in value for value in (username, client_id) for c in "+#"):
            found += [
                r.topic.replace("%u", username).replace("%c", client_id)
                for r in self.patterns
                if access in r.access
            ]
        return found

    def may_publish(self, username: str, client_id: str, topic: str) -> bool:
        return any(matches(f, topic) for f in self._filters(username, client_id, Access.WRITE))

    def may_receive(self, username: str, client_id: str, topic: str) -> bool:
        return any(matches(f, topic) for f in self._filters(username, client_id, Access.READ))

    def may_subscribe(self, username: str, client_id: str, topic_filter: str) -> bool:
        return any(covers(f, topic_filter) for f in self._filters(username, client_id, Access.READ))


def parse_acl(text: str, *, source: str = "acl") -> AclRules:
    """The rules of an ACL file's text (see the module docstring for what is accepted)."""
    patterns: list[Rule] = []
    users: dict[str, list[Rule]] = {}
    current: str | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        rest = rest.strip()
        where = f"{source}:{number}"
        if keyword == "user":
            if not rest:
                raise BrokerConfigError(f"{where}: 'user' without a name")
            current = rest
            users.setdefault(current, [])
        elif keyword in ("topic", "pattern"):
            rule = _rule(rest, where)
            if keyword == "pattern":
                patterns.append(rule)
            elif current is None:
                raise BrokerConfigError(f"{where}: a topic line for anonymous clients (refused)")
            else:
                users[current].append(rule)
        else:
            raise BrokerConfigError(f"{where}: {keyword!r} is not an ACL line this code reads")
    return AclRules(tuple(patterns), {user: tuple(rules) for user, rules in users.items()})


def read_acl(path: Path) -> AclRules:
    return parse_acl(path.read_text(encoding="utf-8"), source=str(path))


def _rule(rest: str, where: str) -> Rule:
    first, _, topic = rest.partition(" ")
    if first == "deny":
        raise BrokerConfigError(f"{where}: 'deny' lines are not supported by the embedded broker")
    access = _ACCESS.get(first)
    if access is None:
        access, topic = Access.READ | Access.WRITE, rest  # Mosquitto: no word means readwrite
    topic = topic.strip()
    if not topic:
        raise BrokerConfigError(f"{where}: a rule without a topic")
    return Rule(access, topic)


def matches(topic_filter: str, topic: str) -> bool:
    """Whether ``topic`` matches ``topic_filter`` (MQTT 3.1.1 section 4.7.1)."""
    if topic.startswith("$") and topic_filter[:1] in ("+", "#"):
        return False  # section 4.7.2: wildcards at the first level never match $ topics
    f_levels, t_levels = topic_filter.split("/"), topic.split("/")
    for i, level in enumerate(f_levels):
        if level == "#":
            return True
        if i >= len(t_levels) or level not in ("+", t_levels[i]):
            return False
    return len(f_levels) == len(t_levels)


def covers(acl_filter: str, topic_filter: str) -> bool:
    """Whether every topic ``topic_filter`` can match also matches ``acl_filter``."""
    a_levels, f_levels = acl_filter.split("/"), topic_filter.split("/")
    for i, level in enumerate(f_levels):
        if i >= len(a_levels):
            return False
        allowed = a_levels[i]
        if allowed == "#":
            return True
        if level == "#" or (level == "+" and allowed != "+"):
            return False
        if allowed not in ("+", level):
            return False
    # "a/#" also matches "a" (section 4.7.1.2), so "a" is covered by "a/#".
    return len(a_levels) == len(f_levels) or a_levels[len(f_levels) :] == ["#"]
