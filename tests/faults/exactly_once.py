"""The fault tests' verdict, pure: what HQ holds against what the box committed.

HQ must hold each of the box's seqs 1..N exactly once (N: the box's last committed seq, read
from its file), and exactly one redemption event for each code a till was told it redeemed.
Every discrepancy is listed, so a failure shows all of them at once, not the first.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence


def problems(
    *,
    stored_seqs: Sequence[int],
    last_seq: int,
    redeemed_at_hq: Sequence[str],
    committed_by_tills: Sequence[str],
) -> list[str]:
    out: list[str] = []
    counts = Counter(stored_seqs)
    missing = [seq for seq in range(1, last_seq + 1) if seq not in counts]
    doubled = sorted(seq for seq, n in counts.items() if n > 1)
    unknown = sorted(seq for seq in counts if not 1 <= seq <= last_seq)
    if missing:
        out.append(f"{len(missing)} seqs missing at HQ, first {missing[:10]}")
    if doubled:
        out.append(f"{len(doubled)} seqs stored more than once, first {doubled[:10]}")
    if unknown:
        out.append(f"{len(unknown)} seqs the box never committed, first {unknown[:10]}")
    hq, tills = Counter(redeemed_at_hq), Counter(committed_by_tills)
    if lost := sorted((tills - hq).elements()):
        out.append(f"{len(lost)} till redemptions without one event at HQ, first {lost[:5]}")
    if extra := sorted((hq - tills).elements()):
        out.append(f"{len(extra)} redemption events at HQ no till was told of, first {extra[:5]}")
    return out
