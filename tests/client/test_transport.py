"""HubClient builds its TLS half (the CA bundle) only for https:// requests, and those are
verified as httpx verifies them: a certificate nobody trusts is refused, one trusted through
SSL_CERT_FILE is accepted."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from fnhub.api_client import HubClient
from fnhub.core.errors import HubUnavailable


def _self_signed(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


class _WhoAmI(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b'{"user": "tls", "scopes": ["read"], "namespaces": []}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def tls_hub(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    cert, key = _self_signed(tmp_path)
    server = HTTPServer(("127.0.0.1", 0), _WhoAmI)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_address[1]}", cert
    server.shutdown()
    server.server_close()


def test_https_is_verified(tls_hub: tuple[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    url, cert = tls_hub
    with HubClient(url) as client, pytest.raises(HubUnavailable, match="CERTIFICATE_VERIFY"):
        client.whoami()
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    with HubClient(url) as client:
        assert client.whoami().user == "tls"


def test_a_plain_http_client_loads_no_certificates(monkeypatch: pytest.MonkeyPatch) -> None:
    """Building the client and sending http requests never creates a verifying context."""
    created: list[object] = []
    real = ssl.create_default_context
    monkeypatch.setattr(ssl, "create_default_context",
                        lambda *a, **k: created.append(a) or real(*a, **k))
    with HubClient("http://127.0.0.1:9") as client, pytest.raises(HubUnavailable):
        client.whoami()
    assert created == []
