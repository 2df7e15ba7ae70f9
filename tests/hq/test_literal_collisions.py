"""No mistype of one code may be another code (issue 6).

The store looks a string up verbatim when its check character fails (brand and generic
literals are stored so), so a literal one edit away from a code HQ knows would turn a typo of
that code into a redemption of the literal. Every test here uses a real HQ file.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from cloud_sync.hq.central_store import CentralStore
from cloud_sync.hq.code_io import import_codes
from cloud_sync.hq.errors import CodeExistsError
from cloud_sync.hq.literal_codes import (
    TYPED,
    NearIndex,
    mintable_neighbours,
    neighbours,
    one_edit_apart,
)
from cloud_sync.hq.minting import mint_anonymous
from edge_agent.domain.code_format import ALPHABET, CodeFormat, make_code, parse
from tests.hq.conftest import FMT, NOW, SMALL, campaign


def _edits(code: str) -> dict[str, str]:
    """One mistype of each kind, none of them a well-formed code of FMT."""
    i = len(FMT.prefix) + 3
    other = next(ch for ch in "ZYXW" if ch != code[i])
    return {
        "substitution": code[:i] + other + code[i + 1 :],
        "swap": code[:i] + code[i + 1] + code[i] + code[i + 2 :]
        if code[i] != code[i + 1]
        else code[:i] + other + code[i + 1 :],
        "insertion": code[:i] + "Q" + code[i:],
        "deletion": code[:i] + code[i + 1 :],
    }


def _a_minted_code(central: CentralStore) -> str:
    mint_anonymous(central, campaign_id="SPRING", count=5, now=NOW)
    (code,) = central.conn.execute("SELECT code FROM codes LIMIT 1").fetchone()
    return str(code)


@pytest.mark.parametrize("kind", ["substitution", "swap", "insertion", "deletion"])
def test_a_generic_code_one_mistype_from_a_minted_code_is_refused(
    central: CentralStore, kind: str
) -> None:
    minted = _a_minted_code(central)
    typo = _edits(minted)[kind]
    assert not isinstance(parse(typo, FMT), str)  # the store would look it up verbatim
    with pytest.raises(CodeExistsError, match=f"one mistype away from {minted}"):
        central.create_generic("SPRING", typo, now=NOW)
    assert central.code(typo) is None


def test_a_generic_code_one_mistype_from_another_literal_is_refused(
    central: CentralStore,
) -> None:
    central.create_generic("SPRING", "HOLIMAN100", now=NOW)
    for typo in ("HOLIMAN10", "HOLIMAN1000", "HOLIMAN101", "HOLIMNA100", "HXLIMAN100"):
        with pytest.raises(CodeExistsError, match="one mistype away from HOLIMAN100"):
            central.create_generic("SPRING", typo, now=NOW)
    assert central.create_generic("SPRING", "HOLIMAN200X", now=NOW) == "HOLIMAN200X"


def test_neighbours_cover_every_single_edit_over_the_normalised_characters() -> None:
    near = neighbours("AB1")
    assert {"B1", "A1", "AB", "BA1", "A1B", "XB1", "AZ1", "AB9", "0AB1", "AB1Z", "AOB1"} <= near
    assert "AB1" not in near
    assert all(ch in TYPED for n in near for ch in n)
    # 3 deletions, 2 swaps, 3 * 35 substitutions, 4 * 36 insertions (some coincide)
    assert len(near) <= 3 + 2 + 105 + 144


def test_import_refuses_rows_one_mistype_from_known_codes_or_each_other(
    central: CentralStore, tmp_path: Path
) -> None:
    minted = _a_minted_code(central)
    central.create_generic("SPRING", "PAPER100", now=NOW)
    typo = _edits(minted)["substitution"]
    path = tmp_path / "brand.csv"
    path.write_text(f"code\n{typo}\nPAPER10\nWIN2GO\nWIN2G0\nFRESH77\n", encoding="utf-8")
    report = import_codes(central, campaign_id="SPRING", path=path, now=NOW)
    assert report.imported == 2  # WIN2GO and FRESH77
    reasons = {r.line: r.reason for r in report.rejects}
    assert set(reasons) == {2, 3, 5}
    assert minted in reasons[2]
    assert "PAPER100" in reasons[3]
    assert "WIN2GO" in reasons[5] and "line 4" in reasons[5]
    assert central.code(typo) is None and central.code("WIN2G0") is None


def test_minting_redraws_codes_one_mistype_from_a_literal(
    small: CentralStore, tmp_path: Path
) -> None:
    """Literals placed next to 2,000 codes of HQ's next namespace: minting must avoid them all."""
    rng = random.Random(6)
    print("seed 6")
    body = len(SMALL.prefix) + SMALL.namespace_length
    literals = set()
    while len(literals) < 2000:
        code = make_code(SMALL, "22", "".join(rng.choice(ALPHABET) for _ in range(4)))
        i = rng.randrange(body, body + 4)
        typo = code[:i] + rng.choice([c for c in ALPHABET if c != code[i]]) + code[i + 1 :]
        literals.add(typo)
    path = tmp_path / "brand.csv"
    path.write_text("code\n" + "\n".join(sorted(literals)) + "\n", encoding="utf-8")
    imported = import_codes(small, campaign_id="SPRING", path=path, now=NOW).imported
    assert imported > 1900  # a few literals are themselves one edit apart
    report = mint_anonymous(small, campaign_id="SPRING", count=27_000, now=NOW)
    assert report.namespaces == ("22",)
    assert report.collisions_redrawn > 0
    stored = [str(c) for (c,) in small.conn.execute("SELECT code FROM codes")]
    minted = {c for c in stored if isinstance(parse(c, SMALL), str)}
    assert len(minted) == 27_000
    near = [lit for lit in stored if lit not in minted and neighbours(lit) & minted]
    assert near == []


def test_one_edit_apart_and_the_near_index_agree_with_the_neighbours() -> None:
    rng = random.Random(7)
    print("seed 7")
    words = ["".join(rng.choice("AB12") for _ in range(rng.randrange(3, 7))) for _ in range(300)]
    index = NearIndex()
    for w in words:
        index.add(w)
    for w in words[:60]:
        around = neighbours(w)
        assert {v for v in words if one_edit_apart(w, v)} == around & set(words)
        assert set(index.near(w)) == around & set(words)


@pytest.mark.parametrize("fmt", [FMT, SMALL, CodeFormat(prefix="O0L", random_length=6)])
def test_mintable_neighbours_are_exactly_the_well_formed_neighbours(fmt: CodeFormat) -> None:
    rng = random.Random(8)
    print("seed 8")
    for _ in range(400):
        code = make_code(fmt, "K7", "".join(rng.choice(ALPHABET) for _ in range(fmt.random_length)))
        word = list(code)
        for _ in range(rng.randrange(1, 3)):  # one or two random edits of a real code
            i = rng.randrange(len(word))
            match rng.randrange(3):
                case 0:
                    word[i] = rng.choice(TYPED)
                case 1:
                    word.insert(i, rng.choice(ALPHABET))
                case _:
                    del word[i]
        literal = "".join(word)
        for head in (fmt.prefix, fmt.prefix + "K7"):
            brute = sorted(
                n for n in neighbours(literal) if n.startswith(head) and parse(n, fmt) == n
            )
            assert mintable_neighbours(literal, fmt, head) == brute, literal


def test_a_file_from_before_the_rule_gets_its_literals_indexed(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with CentralStore.create(path, fmt=FMT) as old:
        old.create_campaign(campaign(), now=NOW)
        old.create_generic("SPRING", "HOLIMAN100", now=NOW)
        old.conn.execute("DROP TABLE literal_keys")
        old.conn.execute("DROP TABLE literal_codes")
        old.conn.execute("DROP TABLE changes")  # schema version 4's
        for table in ("identity_keys", "identity_tags", "identity_cards"):  # version 5's
            old.conn.execute(f"DROP TABLE {table}")
        old.conn.execute("PRAGMA user_version = 2")  # as schema version 2 left it
    with CentralStore.open(path) as central:
        with pytest.raises(CodeExistsError, match="one mistype away from HOLIMAN100"):
            central.create_generic("SPRING", "HOLIMAN10O", now=NOW)
        assert central.literals_near_length(10) == ["HOLIMAN100"]
