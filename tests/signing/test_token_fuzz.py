"""Fuzzing the token parser: any input gets a typed answer, and nothing but the genuine token
verifies. A failing example is printed by Hypothesis with its seed (``--hypothesis-seed``)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.domain import token_codec
from edge_agent.domain.coupon_token import TokenClaims, TokenRefusal, verify
from tests.signing.factories import NOW, claims, keyring, signer

SIGNER = signer()
KEYS = keyring(SIGNER)
TOKEN = SIGNER.sign(claims("SSK7HQ2P9XM"))
LAYOUT = token_codec.parse(TOKEN)
assert isinstance(LAYOUT, token_codec.Layout)
DATA = LAYOUT.signed[len(token_codec.SIGNING_CONTEXT) :] + LAYOUT.signature
B45 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"


def _refused(text: str) -> None:
    result = verify(text, KEYS, NOW)
    assert isinstance(result, TokenRefusal), (text, result)


@settings(max_examples=300)
@given(st.text())
def test_random_text_is_refused(text: str) -> None:
    _refused(text)


@settings(max_examples=300)
@given(st.text(alphabet=B45, max_size=200))
def test_random_base45_after_the_prefix_is_refused(tail: str) -> None:
    _refused("SS1:" + tail)


@settings(max_examples=300)
@given(st.binary(max_size=140))
def test_random_bytes_are_refused(data: bytes) -> None:
    _refused(token_codec.to_text(data))


@settings(max_examples=300)
@given(st.integers(min_value=0, max_value=len(DATA) * 8 - 1))
def test_every_bit_flip_is_refused(bit: int) -> None:
    flipped = bytearray(DATA)
    flipped[bit // 8] ^= 1 << (bit % 8)
    _refused(token_codec.to_text(bytes(flipped)))


@settings(max_examples=200)
@given(st.integers(min_value=0, max_value=len(TOKEN) - 1))
def test_every_truncation_is_refused(keep: int) -> None:
    _refused(TOKEN[:keep])
    _refused(token_codec.to_text(DATA[: keep * len(DATA) // len(TOKEN)]))


@settings(max_examples=300)
@given(st.integers(min_value=4, max_value=len(TOKEN) - 1), st.sampled_from(B45))
def test_changed_characters_never_verify_as_anything_else(pos: int, ch: str) -> None:
    text = TOKEN[:pos] + ch + TOKEN[pos + 1 :]
    result = verify(text, KEYS, NOW)
    if text == TOKEN:
        assert isinstance(result, TokenClaims)
    else:
        assert isinstance(result, TokenRefusal), (pos, ch)


def test_the_genuine_token_verifies() -> None:
    assert isinstance(verify(TOKEN, KEYS, NOW), TokenClaims)
