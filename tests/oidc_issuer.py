"""A real OpenID Connect issuer on loopback, for the trusted-publishing tests.

It serves `/.well-known/openid-configuration` and its JWKS from its own key pair (RSA for
RS256, or P-256 for ES256), signs ID tokens with whatever claims a test asks for, and
plays GitHub Actions' token request endpoint (`/token?audience=...`, authorised by a
request token) so the client's GitHub path runs against it unchanged.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def new_key(algorithm: Literal["RS256", "ES256"]) -> PrivateKey:
    if algorithm == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


class Issuer:
    """The issuer; `claims` are the defaults of every token it signs (a GitHub job's)."""

    def __init__(self, algorithm: Literal["RS256", "ES256"] = "RS256",
                 claims: dict[str, Any] | None = None) -> None:
        self.algorithm = algorithm
        self.key = new_key(algorithm)
        self.kid = f"key-{secrets.token_hex(4)}"
        self.request_token = secrets.token_urlsafe(16)
        self.claims = claims or {
            "repository": "alice/tools",
            "workflow_ref": "alice/tools/.github/workflows/release.yml@refs/tags/v1.0.0",
            "ref": "refs/tags/v1.0.0",
            "environment": "release",
        }
        self.audiences_requested: list[str] = []
        self.jwks_fetches = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def jwk(self) -> dict[str, Any]:
        if isinstance(self.key, rsa.RSAPrivateKey):
            data: dict[str, Any] = RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        else:
            data = ECAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        return {**data, "kid": self.kid, "alg": self.algorithm, "use": "sig"}

    def token(self, audience: str = "fnhub", *, expires_in: int = 300,
              key: PrivateKey | None = None, kid: str | None = None, issuer: str | None = None,
              **claims: Any) -> str:
        """A signed ID token: the default claims, overridden (or removed with None)."""
        now = int(time.time())
        payload = {"iss": issuer or self.url, "aud": audience, "iat": now - 5, "nbf": now - 5,
                   "exp": now + expires_in, "jti": secrets.token_hex(16),
                   "sub": f"repo:{self.claims.get('repository', 'x')}", **self.claims, **claims}
        payload = {k: v for k, v in payload.items() if v is not None}
        return jwt.encode(payload, key or self.key, algorithm=self.algorithm,
                          headers={"kid": kid or self.kid})

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def _json(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                if parts.path == "/.well-known/openid-configuration":
                    self._json(200, {"issuer": issuer.url, "jwks_uri": issuer.url + "/jwks",
                                     "id_token_signing_alg_values_supported":
                                         [issuer.algorithm]})
                elif parts.path == "/jwks":
                    issuer.jwks_fetches += 1
                    self._json(200, {"keys": [issuer.jwk()]})
                elif parts.path == "/token":
                    if self.headers.get("Authorization") != f"bearer {issuer.request_token}":
                        self._json(403, {"message": "bad request token"})
                        return
                    audience = parse_qs(parts.query).get("audience", ["fnhub"])[0]
                    issuer.audiences_requested.append(audience)
                    self._json(200, {"value": issuer.token(audience)})
                else:
                    self._json(404, {"message": "not found"})

        return Handler
