"""A store box in a network namespace of its own, wired to the host (HQ) by two veth pairs.

Theory of operation
-------------------
The box's namespace gets two links, each a veth pair with one end on the host:

* the **WAN** link (``10.213.X.0/30``: HQ end ``.1`` on the host, box end ``.2``), the only
  route from the box to HQ's broker. ``cut()`` sets the HQ end down, which also drops the box
  end's carrier: packets are dropped silently, established TCP sessions stall like a cut cable
  (no FIN, no RST) and new connects time out. ``heal()`` sets it up again.
* the **store LAN** link (``10.213.X.4/30``: host end ``.5``, box end ``.6``), which the tills
  use to reach the box's POS API. It is never cut: in a store the tills and the box share the
  shop's LAN while the line to HQ is down, so they must keep redeeming through a partition.

The namespace has no default route, so the box can reach nothing but these two subnets.
The host keeps answering on ``.1`` while the WAN link is down (a local address stays in the
host's ``local`` routing table whatever its link's state), so HQ's own ingest worker, which
dials the broker on that address, is never partitioned from it: only the box is.

``X`` is random per box and checked against the host's addresses, so parallel runs and
leftovers do not collide. ``close()`` deletes the namespace, which deletes both veth pairs
with it (a veth end cannot outlive its peer); the host ends are deleted explicitly as well
in case the namespace was never made. It runs even when the test failed.
"""

from __future__ import annotations

import ipaddress
import random
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

IP = "ip"
_SUPERNET = ipaddress.ip_network("10.213.0.0/16")


class NetnsError(RuntimeError):
    """An ``ip`` command failed: its command line and stderr are in the message."""


def run_ip(*args: str, namespace: str | None = None) -> str:
    command = [IP, *args] if namespace is None else [IP, "netns", "exec", namespace, IP, *args]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise NetnsError(f"{' '.join(command)}: {done.stderr.strip()}")
    return done.stdout


def _subnets_in_use() -> set[int]:
    """The third octets of 10.213.X.Y addresses the host already has."""
    used = set()
    for word in run_ip("-o", "-4", "addr", "show").split():
        if "/" in word and word[0].isdigit():
            address = ipaddress.ip_interface(word).ip
            if address in _SUPERNET:
                used.add(int(str(address).split(".")[2]))
    return used


@dataclass(frozen=True, kw_only=True)
class BoxNet:
    """Names and addresses of one box's namespace (see the module docstring)."""

    namespace: str
    wan_hq: str  # the host end of the WAN link: what cut() sets down
    wan_box: str
    lan_host: str
    lan_box: str
    hq_address: str  # the broker listens here
    box_address: str
    lan_host_address: str
    api_address: str  # the box's POS API listens here, for the tills

    def exec_prefix(self) -> list[str]:
        """Prefix a command with this to run it inside the box's namespace."""
        return [IP, "netns", "exec", self.namespace]

    def cut(self) -> None:
        run_ip("link", "set", self.wan_hq, "down")

    def heal(self) -> None:
        run_ip("link", "set", self.wan_hq, "up")


def _names(octet: int) -> dict[str, str]:
    # Interface names are at most 15 characters; the octet keeps them unique per run.
    stem = f"ssp{octet:03d}"
    return {
        "namespace": f"storeside-fault-{octet:03d}",
        "wan_hq": f"{stem}wh",
        "wan_box": f"{stem}wb",
        "lan_host": f"{stem}lh",
        "lan_box": f"{stem}lb",
    }


def create(rng: random.Random) -> BoxNet:
    """A fresh namespace with both links up (see the module docstring)."""
    used = _subnets_in_use()
    free = [x for x in range(1, 255) if x not in used]
    octet = rng.choice(free)
    base = f"10.213.{octet}"
    net = BoxNet(
        **_names(octet),
        hq_address=f"{base}.1",
        box_address=f"{base}.2",
        lan_host_address=f"{base}.5",
        api_address=f"{base}.6",
    )
    try:
        run_ip("netns", "add", net.namespace)
        _pair(net, net.wan_hq, net.wan_box, net.hq_address, net.box_address)
        _pair(net, net.lan_host, net.lan_box, net.lan_host_address, net.api_address)
        run_ip("link", "set", "lo", "up", namespace=net.namespace)
    except BaseException:
        delete(net)
        raise
    return net


def _pair(net: BoxNet, host_end: str, box_end: str, host_ip: str, box_ip: str) -> None:
    run_ip("link", "add", host_end, "type", "veth", "peer", "name", box_end)
    run_ip("link", "set", box_end, "netns", net.namespace)
    run_ip("addr", "add", f"{host_ip}/30", "dev", host_end)
    run_ip("link", "set", host_end, "up")
    run_ip("addr", "add", f"{box_ip}/30", "dev", box_end, namespace=net.namespace)
    run_ip("link", "set", box_end, "up", namespace=net.namespace)


def delete(net: BoxNet) -> None:
    """Remove the namespace and both pairs; quiet about what is already gone."""
    for command in (
        ["netns", "delete", net.namespace],
        ["link", "delete", net.wan_hq],
        ["link", "delete", net.lan_host],
    ):
        subprocess.run([IP, *command], capture_output=True, check=False)


def leftovers(nets: Sequence[BoxNet]) -> list[str]:
    """What of ``nets`` still exists on the host (a test asserts this is empty)."""
    namespaces = run_ip("netns", "list")
    links = run_ip("-o", "link", "show")
    out = [n.namespace for n in nets if n.namespace in namespaces]
    out += [name for n in nets for name in (n.wan_hq, n.lan_host) if f" {name}@" in links]
    return out
