"""A real SMTP server (aiosmtpd) on 127.0.0.1 that keeps every message it receives.

    with FakeSMTP() as smtp:
        settings = EmailSettings.model_validate(
            {"host": "127.0.0.1", "port": smtp.port, "starttls": False, "from": "a@x", "to": ["b@x"]})
        ...
        [msg] = smtp.messages          # email.message.EmailMessage, parsed
        smtp.fail_next = 1             # answer the next DATA with 451 (transient)

`FakeSMTP(auth={"user": "secret"})` offers AUTH LOGIN/PLAIN (allowed without TLS here);
`FakeSMTP(tls="starttls" | "implicit", cert=self_signed_cert(tmp_path))` speaks TLS with a
throw-away certificate for 127.0.0.1 (trust it with `SSL_CERT_FILE=<cert>`).
"""

from __future__ import annotations

import ssl
import subprocess
import threading
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Literal

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.conftest import free_port

__all__ = ["FakeSMTP", "self_signed_cert"]


def self_signed_cert(directory: Path) -> tuple[Path, Path]:
    """A one-day certificate and key for 127.0.0.1, made with the openssl command."""
    cert, key = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


class FakeSMTP:
    """aiosmtpd in a thread; `messages` are parsed with the modern email policy."""

    def __init__(
        self,
        auth: dict[str, str] | None = None,
        *,
        tls: Literal["starttls", "implicit"] | None = None,
        cert: tuple[Path, Path] | None = None,
    ) -> None:
        self.port = free_port()
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.logins: list[str] = []
        self.fail_next = 0
        self._lock = threading.Lock()
        self._auth = auth
        kwargs: dict[str, Any] = {}
        if auth is not None:
            kwargs.update(authenticator=self._authenticate, auth_require_tls=False)
        if tls is not None:
            assert cert is not None, "TLS needs cert=self_signed_cert(tmp_path)"
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(str(cert[0]), str(cert[1]))
            if tls == "starttls":
                kwargs.update(tls_context=context, require_starttls=True)
            else:
                kwargs.update(ssl_context=context)
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port, **kwargs)

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        if isinstance(data, LoginPassword) and self._auth is not None:
            user, password = data.login.decode(), data.password.decode()
            if self._auth.get(user) == password:
                with self._lock:
                    self.logins.append(user)
                return AuthResult(success=True)
        return AuthResult(success=False, handled=False)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # aiosmtpd's hook name
        with self._lock:
            if self.fail_next > 0:
                self.fail_next -= 1
                return "451 4.3.0 try again later"
            msg = message_from_bytes(envelope.content, policy=policy.default)
            assert isinstance(msg, EmailMessage)
            self.messages.append(msg)
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 OK"

    def __enter__(self) -> FakeSMTP:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()
