"""Storeside's two amqtt 0.12.1 plugins: password authentication and the shipped ACL.

Theory of operation
-------------------
amqtt loads plugins by dotted path from its config and builds each one's ``Config``
dataclass with dacite. Both plugins here get one live ``Accounts`` through that config (a
field typed ``Any``, which dacite hands over as it is), so ``EmbeddedBroker.add_user`` changes
what the very next CONNECT is checked against, with no reload.

``StoresideAuthPlugin`` accepts a CONNECT only with a username that has a hash and the
password that matches it (``password_file``'s Mosquitto hashes); no username means refused,
so there are no anonymous clients. amqtt answers a refusal with CONNACK return code 5, not
authorized (MQTT 3.1.1 section 3.2.2.3), as Mosquitto does.

``StoresideAclPlugin`` answers amqtt's three questions from the parsed ACL (``acl.py``):
PUBLISH (a refused one is acknowledged and dropped, MQTT 3.1.1 has no way to refuse it, as
Mosquitto does), SUBSCRIBE (a filter must be covered by a read rule; a refusal is SUBACK
0x80) and RECEIVE (checked by amqtt before each delivery, and by ``embedded.py`` before
each retained one). ``$share/...`` filters are refused outright, with a log line: amqtt has
no shared subscriptions, and a silent subscription that never delivers is worse than a no.

Both run on the broker's event loop only; ``Accounts`` is changed on that loop too
(``EmbeddedBroker.add_user`` hops onto it), so it needs no lock.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from amqtt.contexts import Action
from amqtt.plugins.base import BaseAuthPlugin, BaseTopicPlugin
from amqtt.session import Session

from cloud_sync.hq.broker.acl import AclRules
from cloud_sync.hq.broker.password_file import verify_password

log = logging.getLogger(__name__)
SHARE_PREFIX = "$share/"


@dataclass
class Accounts:
    """Who may connect (username -> Mosquitto hash) and what they may touch."""

    rules: AclRules
    hashes: dict[str, str] = field(default_factory=dict)


def _accounts(config: object) -> Accounts:
    found = getattr(config, "accounts", None)
    if not isinstance(found, Accounts):
        # A plugin loaded without the broker's Accounts would refuse everyone silently.
        raise TypeError("Storeside's amqtt plugins need an Accounts in their config")
    return found


class StoresideAuthPlugin(BaseAuthPlugin):
    @dataclass
    class Config:
        accounts: Any = None  # an Accounts; Any so dacite passes the live object through

    async def authenticate(self, *, session: Session) -> bool | None:
        accounts = _accounts(self.context.config)
        username = session.username
        hashed = accounts.hashes.get(username) if username else None
        if hashed is not None and verify_password(session.password or "", hashed):
            return True
        # The username only, never the password it came with.
        log.info("refused CONNECT from client %r as user %r", session.client_id, username)
        return False


class StoresideAclPlugin(BaseTopicPlugin):
    @dataclass
    class Config:
        accounts: Any = None  # see StoresideAuthPlugin.Config

    async def topic_filtering(
        self,
        *,
        session: Session | None = None,
        topic: str | None = None,
        action: Action | None = None,
    ) -> bool | None:
        rules = _accounts(self.context.config).rules
        if session is None or topic is None or not session.username:
            return False
        user, client_id = session.username, session.client_id or ""
        if action == Action.PUBLISH:
            allowed = rules.may_publish(user, client_id, topic)
        elif action == Action.RECEIVE:
            allowed = rules.may_receive(user, client_id, topic)
        elif action == Action.SUBSCRIBE:
            if topic.startswith(SHARE_PREFIX):
                log.warning(
                    "refused SUBSCRIBE %r from %r: amqtt has no shared subscriptions; "
                    "subscribe to the plain filter with one worker",
                    topic,
                    client_id,
                )
                return False
            allowed = rules.may_subscribe(user, client_id, topic)
        else:
            return False
        if not allowed and action != Action.RECEIVE:
            # Mosquitto's "Denied PUBLISH" line, for the same reason: it is what a failing
            # box's operator needs. (RECEIVE refusals are routine: wildcard subscribers.)
            log.info("denied %s %r to user %r (client %r)", action, topic, user, client_id)
        return allowed
