"""Fixtures for the fault tests: a seed printed by every test, and ``rig``, which builds the
whole link for one box (namespace and veth pairs, HQ's broker and ingest worker, the box's
agent) and takes it all down again, namespace included, however the test ended.

Needs root and ``ip`` (iproute2), which .ci/run installs; PostgreSQL as in tests/hq/ingest.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.faults import netns
from tests.faults.hq_side import Hq, running_hq
from tests.faults.netns import BoxNet
from tests.faults.store_box import Agent, BoxFiles, seed_box, write_agent_toml
from tests.hq.ingest import pg

BOX = "box-a"


@dataclass
class Rig:
    net: BoxNet
    hq: Hq
    box: BoxFiles
    agent: Agent


RigFactory = Callable[[random.Random, str], AbstractContextManager[Rig]]


@pytest.fixture
def seed() -> int:
    chosen = random.randrange(2**32)
    print(f"seed {chosen}")  # pytest shows it under a failure; -s shows it always
    return chosen


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    with pg.test_database() as url:
        yield url


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[RigFactory]:
    made: list[BoxNet] = []

    @contextmanager
    def build(rng: random.Random, db: str) -> Iterator[Rig]:
        net = netns.create(rng)
        made.append(net)
        try:
            box = seed_box(tmp_path / "box", box_id=BOX, rng=rng)
            with running_hq(
                tmp_path / "hq", address=net.hq_address, box_id=BOX, box_key=box.signing_key,
                db=db,
            ) as hq:  # fmt: skip
                write_agent_toml(
                    box, net, broker_url=hq.broker.url, ca=hq.broker.ca_cert,
                    password=hq.box_password,
                )  # fmt: skip
                agent = Agent(box, net)
                try:
                    agent.wait_ready()
                    yield Rig(net=net, hq=hq, box=box, agent=agent)
                finally:
                    # Kept beside the box's files: pytest keeps the last runs' tmp_path.
                    output = agent.stop()
                    (tmp_path / "box" / "agent.log").write_text(output)
                    print(
                        f"box: {output.count('MQTT: connected to')} MQTT connections, "
                        f"{output.count('MQTT: connection lost')} lost, "
                        f"{output.count('no ack for')} ack timeouts"
                    )
        finally:
            netns.delete(net)

    yield build
    assert netns.leftovers(made) == []
