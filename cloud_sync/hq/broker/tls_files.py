"""TLS files for a broker HQ starts: a self-signed CA and a server certificate it signs.

The tests make fresh ones per session (valid two days); a pilot's ``storeside-hq broker``
makes them once in its directory (valid ``days``) and gives boxes ``ca.crt`` to pin. Nothing
here is ever committed. A chain's production broker gets its certificate from the chain's own
CA (README, "Running the broker"); this is for a pilot that has none yet.

The server certificate names ``localhost`` and 127.0.0.1 (what HQ's own ingest dials) and the
host names and addresses given, because Python's ssl checks the subjectAltName, never the CN.
EC P-256 keys, because generating one takes well under a millisecond (RSA 2048 takes tens) and
every TLS stack the project uses accepts them.
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True, kw_only=True)
class TlsFiles:
    """The three files mosquitto.conf's ``cafile``, ``certfile`` and ``keyfile`` name."""

    ca_cert: Path
    server_cert: Path
    server_key: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def tls_files_in(directory: Path) -> TlsFiles:
    """Where ``make_tls_files`` puts its files in ``directory``."""
    return TlsFiles(
        ca_cert=directory / "ca.crt",
        server_cert=directory / "server.crt",
        server_key=directory / "server.key",
    )


def make_tls_files(
    directory: Path,
    *,
    common_name: str = "storeside-test-ca",
    hostnames: Sequence[str] = (),
    addresses: Sequence[str] = (),
    days: int = 2,
) -> TlsFiles:
    """Write ca.crt, server.crt and server.key into ``directory`` (see the module docstring).
    The CA's key is not kept: nothing else is ever signed with it."""
    directory.mkdir(parents=True, exist_ok=True)
    # Backdated a little: the broker and the client compare against their own clocks.
    now = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)
    later = now + datetime.timedelta(days=days)
    names: list[x509.GeneralName] = [x509.DNSName(n) for n in ("localhost", *hostnames)]
    names += [x509.IPAddress(ipaddress.ip_address(a)) for a in ("127.0.0.1", *addresses)]

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(later)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )

    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca_cert.subject)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(later)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        # Python's ssl checks the SAN, never the CN: every name a client may dial is here.
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )

    files = tls_files_in(directory)
    files.ca_cert.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    files.server_cert.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    files.server_key.write_bytes(_pem_key(server_key))
    files.server_key.chmod(0o600)
    return files
