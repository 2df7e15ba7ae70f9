"""TLS files for a test broker: the product's generator (``cloud_sync/hq/broker/tls_files.py``),
called with its defaults (a CA and a server certificate for 127.0.0.1 and localhost, valid two
days, fresh keys every run)."""

from cloud_sync.hq.broker.tls_files import TlsFiles, make_tls_files

__all__ = ["TlsFiles", "make_tls_files"]
