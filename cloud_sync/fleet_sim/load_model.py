"""When a simulated box's events happen: a busy store's rate, with bursts. Pure.

Theory of operation
-------------------
A till does not write one event a second like a metronome: most arrivals are one event (a
redemption), and now and then a burst lands at once (a basket of fifty coupons, a batch of
receipt coupons issued at close). So arrivals are a Poisson process of *clusters*: each
cluster is ``burst_size`` events with probability ``burst_prob``, else one event. The cluster
rate is chosen so that the mean is ``rate`` events a second per box::

    clusters/s = rate / (1 - burst_prob + burst_prob * burst_size)

Defaults: 1 event/s, bursts of 50 with probability 0.01, i.e. ~0.67 clusters a second and a
burst every ~150 s per box; 1,000 boxes see a burst of 50 every ~0.15 s somewhere in the fleet.

Every box draws from its own ``random.Random`` seeded from (seed, box index), so a run is
reproducible from its seed whatever order the boxes are served in.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadModel:
    rate: float = 1.0  # mean events per second per box
    burst_size: int = 50
    burst_prob: float = 0.01

    def __post_init__(self) -> None:
        if self.rate <= 0:
            raise ValueError("rate must be > 0 events/s")
        if self.burst_size < 1:
            raise ValueError("burst size must be >= 1")
        if not 0.0 <= self.burst_prob <= 1.0:
            raise ValueError("burst probability must be in [0, 1]")

    @property
    def clusters_per_s(self) -> float:
        mean_size = 1.0 - self.burst_prob + self.burst_prob * self.burst_size
        return self.rate / mean_size


def box_rng(seed: int, index: int) -> random.Random:
    """The random stream of box ``index`` in a run seeded ``seed`` (not a secret)."""
    return random.Random(seed * 1_000_003 + index)


def next_arrival(model: LoadModel, rng: random.Random, now: float) -> tuple[float, int]:
    """When the next cluster after ``now`` arrives, and how many events it holds."""
    at = now + rng.expovariate(model.clusters_per_s)
    size = model.burst_size if rng.random() < model.burst_prob else 1
    return at, size
