"""``start_broker``'s choice: a configured URL, else Mosquitto when installed, else amqtt."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509

from cloud_sync.hq.broker import choice
from cloud_sync.hq.broker.choice import start_broker
from cloud_sync.hq.broker.errors import BrokerConfigError, UnmanagedBrokerError
from cloud_sync.hq.broker.mosquitto import MosquittoBroker
from cloud_sync.hq.broker.mosquitto_config import BrokerFiles
from cloud_sync.hq.broker.password_file import read_password_file, verify_password
from cloud_sync.hq.broker.running_broker import BrokerKind
from cloud_sync.hq.broker.tls_files import tls_files_in


def test_a_configured_url_starts_nothing(tmp_path: Path) -> None:
    broker = start_broker(directory=tmp_path, url="mqtts://broker.chain.example:8883")
    assert (broker.kind, broker.url) == (BrokerKind.EXTERNAL, "mqtts://broker.chain.example:8883")
    assert broker.supports_shared_subscriptions
    with pytest.raises(UnmanagedBrokerError, match="box-1"):
        broker.add_user("box-1", "pw")
    broker.stop()
    assert not any(tmp_path.iterdir())


def test_a_url_that_is_not_mqtt_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BrokerConfigError, match="not mqtt"):
        start_broker(directory=tmp_path, url="http://broker:1883")


def test_without_mosquitto_on_the_path_hq_embeds_amqtt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(choice, "find_executable", lambda _name: None)
    broker = start_broker(directory=tmp_path, users={"hq-ingest": "pw"})
    try:
        assert broker.kind == BrokerKind.AMQTT
        assert broker.url.startswith("mqtt://127.0.0.1:")
        assert not broker.supports_shared_subscriptions
        assert broker.ca_cert is None
    finally:
        broker.stop()


def test_mosquitto_for_a_pilot_gets_tls_files_once_and_the_users_hashed(tmp_path: Path) -> None:
    broker = start_broker(
        directory=tmp_path, users={"hq-ingest": "pw"}, hostnames=["hq.chain.example"]
    )
    try:
        assert isinstance(broker, MosquittoBroker)
        assert broker.url == f"mqtts://127.0.0.1:{broker.port}"
        assert broker.ca_cert == tmp_path / "tls" / "ca.crt"
        cert = x509.load_pem_x509_certificate((tmp_path / "tls" / "server.crt").read_bytes())
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert {"localhost", "hq.chain.example"} <= set(names.get_values_for_type(x509.DNSName))
        hashes = read_password_file(tmp_path / "storeside.passwd")
        assert verify_password("pw", hashes["hq-ingest"])
    finally:
        broker.kill()
    ca_before = broker.ca_cert.read_bytes()

    again = start_broker(directory=tmp_path, users={"box-a": "pa"})
    try:
        assert again.ca_cert is not None and again.ca_cert.read_bytes() == ca_before
        assert set(read_password_file(tmp_path / "storeside.passwd")) == {"hq-ingest", "box-a"}
    finally:
        assert isinstance(again, MosquittoBroker)
        again.kill()


@pytest.mark.parametrize(
    ("bind_address", "host"),
    [("10.213.7.1", "10.213.7.1"), ("127.0.0.1", "127.0.0.1"), ("0.0.0.0", "127.0.0.1")],
)
def test_the_url_names_the_address_mosquitto_listens_on(
    tmp_path: Path, bind_address: str, host: str
) -> None:
    # A broker bound to one address (tests/faults: the HQ end of a box's link) answers there
    # only; one bound to every address answers on 127.0.0.1 too, which the certificate names.
    files = BrokerFiles(tls=tls_files_in(tmp_path / "tls"), password_file=tmp_path / "pw")
    broker = MosquittoBroker(directory=tmp_path, files=files, bind_address=bind_address)
    assert broker.url == f"mqtts://{host}:{broker.port}"
    assert f"listener {broker.port} {bind_address}\n" in broker.config_path.read_text()
