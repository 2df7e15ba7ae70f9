"""Signed tokens: round trip, size, and each refusal of ``verify`` by name."""

from __future__ import annotations

from datetime import timedelta

import pytest
import qrcode
import zxingcpp
from qrcode.util import MODE_ALPHA_NUM

from edge_agent.domain import token_codec
from edge_agent.domain.coupon_token import TokenClaims, TokenFault, TokenRefusal, verify
from tests.signing.factories import NOW, claims, keyring, signer

CODE = "SSK7HQ2P9XM"


def _refused(result: TokenClaims | TokenRefusal, fault: TokenFault) -> TokenRefusal:
    assert isinstance(result, TokenRefusal), result
    assert result.fault is fault, result
    return result


def test_round_trip_carries_every_claim() -> None:
    s = signer()
    c = claims(CODE)
    text = s.sign(c)
    assert text.startswith("SS1:")
    got = verify(text, keyring(s), NOW)
    assert isinstance(got, TokenClaims)
    assert (got.code, got.store_id, got.key_id) == (CODE, "S2", s.key_id)
    assert (got.issued_at, got.expires_at) == (c.issued_at, c.expires_at)
    assert got.binds("M1") and not got.binds("M2") and got.names_campaign("C1")
    assert "M1" not in text  # the member id is never printed in clear


def test_anonymous_coupon_has_no_binding() -> None:
    s = signer()
    got = verify(s.sign(claims(CODE, member_id=None)), keyring(s), NOW)
    assert isinstance(got, TokenClaims) and not got.bound


def test_case_and_surrounding_whitespace_do_not_matter() -> None:
    s = signer()
    text = s.sign(claims(CODE))
    assert isinstance(verify(f"  {text.lower()}\r\n", keyring(s), NOW), TokenClaims)


@pytest.mark.parametrize("code", [CODE, "SSK7HQ2P9XMABCDEFGH"])
def test_qr_is_alphanumeric_version_6_or_less_at_m_and_scans_back(code: str) -> None:
    text = signer().sign(claims(code, campaign_id="receipt-hibernating-winback-30"))
    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=4)
    qr.add_data(text)
    qr.make(fit=True)
    assert qr.data_list[0].mode == MODE_ALPHA_NUM
    assert qr.version <= 6, (qr.version, len(text))
    image = qr.make_image().get_image().convert("L")
    (decoded,) = zxingcpp.read_barcodes(image)
    assert decoded.text == text


def test_unknown_key() -> None:
    text = signer(seed=2).sign(claims(CODE))
    r = _refused(verify(text, keyring(signer(seed=3)), NOW), TokenFault.UNKNOWN_KEY)
    assert r.key_id == signer(seed=2).key_id and r.code is None


def test_same_key_id_other_key_is_a_bad_signature() -> None:
    s, other = signer(seed=2), signer(seed=3)
    ring = {s.key_id: next(iter(keyring(other).values()))}  # a registry lying about a key
    _refused(verify(s.sign(claims(CODE)), ring, NOW), TokenFault.BAD_SIGNATURE)


def test_revoked_key() -> None:
    s = signer()
    r = _refused(
        verify(s.sign(claims(CODE)), keyring(s, revoked=True), NOW), TokenFault.REVOKED_KEY
    )
    assert r.store_id == "S2"


def test_expired_in_token() -> None:
    s = signer()
    r = _refused(
        verify(s.sign(claims(CODE, days=1)), keyring(s), NOW + timedelta(days=1)),
        TokenFault.EXPIRED,
    )
    assert r.expired_at == NOW + timedelta(days=1) and r.code == CODE


def test_altered_code_is_a_bad_signature() -> None:
    s = signer()
    layout = token_codec.parse(s.sign(claims(CODE)))
    assert isinstance(layout, token_codec.Layout)
    data = token_codec.body(
        token_codec.Layout(
            key_id=layout.key_id,
            issued_at=layout.issued_at,
            expires_at=layout.expires_at + 86_400 * 30,  # a month more
            campaign_ref=layout.campaign_ref,
            member_binding=layout.member_binding,
            code=layout.code,
        )
    )
    forged = token_codec.to_text(data + layout.signature)
    _refused(verify(forged, keyring(s), NOW), TokenFault.BAD_SIGNATURE)


@pytest.mark.parametrize(
    ("text", "fault"),
    [
        ("SSK7HQ2P9XM", TokenFault.NOT_A_TOKEN),
        ("", TokenFault.NOT_A_TOKEN),
        ("SS1:", TokenFault.TRUNCATED),
        ("SS1:abc!", TokenFault.BAD_ENCODING),
        ("SS1:\u00dfQ0", TokenFault.BAD_ENCODING),
        ("SS1:A", TokenFault.BAD_ENCODING),
        ("SS1:::::", TokenFault.BAD_ENCODING),  # a group over 65535
        ("SS1:" + token_codec.b45encode(b"\x02" + bytes(94)), TokenFault.UNKNOWN_VERSION),
        ("SS1:" + token_codec.b45encode(b"\x01\x80" + bytes(93)), TokenFault.MALFORMED),
        ("SS1:" + token_codec.b45encode(b"\x01\x00" + bytes(10)), TokenFault.TRUNCATED),
    ],
)
def test_unreadable(text: str, fault: TokenFault) -> None:
    _refused(verify(text, keyring(signer()), NOW), fault)


def test_trailing_bytes_are_malformed() -> None:
    s = signer()
    layout = token_codec.parse(s.sign(claims(CODE)))
    assert isinstance(layout, token_codec.Layout)
    data = layout.signed[len(token_codec.SIGNING_CONTEXT) :] + layout.signature + b"\x00"
    _refused(verify(token_codec.to_text(data), keyring(s), NOW), TokenFault.MALFORMED)


def test_signer_refuses_what_the_format_cannot_carry() -> None:
    s = signer()
    with pytest.raises(ValueError, match="store"):
        s.sign(claims(CODE, store_id="S9"))
    with pytest.raises(ValueError, match="code"):
        s.sign(claims("ss-k7"))
    with pytest.raises(ValueError, match="after"):
        s.sign(claims(CODE, days=-1))


def test_public_key_text_round_trip() -> None:
    raw = signer().public_key.public_bytes_raw()
    text = token_codec.public_key_text(raw)
    assert token_codec.public_key_from_text(text) == raw
    assert token_codec.public_key_from_text(raw.hex()) == raw
    assert token_codec.public_key_from_text(text + "=") == raw
    assert token_codec.public_key_from_text("nope") is None
