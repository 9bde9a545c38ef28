"""How the two listeners speak HTTP over TLS, on top of uvicorn's protocols.

A bounded request head, in size and in time: uvicorn bounds neither (httptools keeps
whatever headers come; h11 bounds an unfinished head only, and the keep-alive timer stops at
the first byte). Here a request head - request line and headers - larger than
``max_head_bytes`` gets 431 and the connection is closed: while it is still arriving (so it
never takes more memory than that and one read), and once it is complete (a head that came
whole in one read). One that is not complete ``head_timeout_s`` after the connection was
made, or after the first byte of a following request on a kept-alive connection, gets 408 and
is closed (a connection that sent nothing is closed silently). On h11 an unfinished head is
bounded by h11 itself too (``h11_max_incomplete_event_size``, answered with 400).
The body is the application's: the kiosk API reads at most 64 KiB, the dashboard's forms are
small.

TLS: 1.2 at least, and in TLS 1.2 only ECDHE key exchange with AEAD ciphers (AES-GCM,
ChaCha20-Poly1305: no CBC suites, whose padding invites oracles); TLS 1.3's suites are all
AEAD (``tls_context``).

The ASGI TLS extension: uvicorn does not hand the client certificate of a mutual-TLS
connection to the application, so the protocols here read it from the connection's
``ssl_object`` once, when the connection is made, and put it into every request's scope as
``scope["extensions"]["tls"]`` (``client_cert_chain``: the peer certificate, PEM, as the ASGI
TLS extension describes it). The kiosk API's device gate compares it with the certificate a
request is signed for.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Callable
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

_TLS_VERSIONS = {"TLSv1.2": 0x0303, "TLSv1.3": 0x0304}

#: The TLS 1.2 cipher suites both listeners offer (OpenSSL's names).
TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL:!SHA1"


def tls_context(config: Any, default: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
    """uvicorn's ``ssl_context_factory``: its context, TLS 1.2 or later, AEAD suites only."""
    context = default()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(TLS12_CIPHERS)
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    return context


def tls_extension(transport: asyncio.BaseTransport) -> dict[str, Any] | None:
    """The ASGI TLS extension of a connection, or None when it is not TLS."""
    ssl_object = transport.get_extra_info("ssl_object")
    if ssl_object is None:
        return None
    der = ssl_object.getpeercert(binary_form=True)
    return {
        "server_cert": None,
        "client_cert_chain": [ssl.DER_cert_to_PEM_cert(der)] if der else [],
        "client_cert_name": None,
        "client_cert_error": None,
        "tls_version": _TLS_VERSIONS.get(ssl_object.version() or ""),
        "cipher_suite": None,
    }


def head_size(scope: Any) -> int:
    """The size of a request's head as it came: request line and header lines."""
    line = len(scope["method"]) + len(scope["raw_path"]) + len(scope["query_string"]) + 12
    return line + sum(len(name) + len(value) + 4 for name, value in scope["headers"])


async def _too_large(send: Any) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 431,
            "headers": [(b"content-length", b"0"), (b"connection", b"close")],
        }
    )
    await send({"type": "http.response.body", "body": b""})


def _guarded_app(app: Any, extension: dict[str, Any] | None, max_head_bytes: int) -> Any:
    """``app`` behind the complete head's size check, with the connection's TLS extension."""

    async def guarded_app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and head_size(scope) > max_head_bytes:
            await _too_large(send)
            return
        if extension is not None:
            extensions = scope.get("extensions")
            if extensions is None:
                extensions = scope["extensions"] = {}
            extensions["tls"] = extension
        await app(scope, receive, send)

    return guarded_app


#: The defaults of ``ServerConfig.max_header_bytes`` and ``ServerConfig.header_timeout_s``.
MAX_HEAD_BYTES = 8 * 1024
HEAD_TIMEOUT_S = 10.0
#: After a refusal, how long a peer that does not read may keep the connection half-closed.
_ABORT_AFTER_S = 2.0

_TIMEOUT = b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"content-length: 0\r\nconnection: close\r\n\r\n"
)


class _HeadWatch:
    """The size and deadline of the request head a connection is sending."""

    def __init__(self, transport: asyncio.Transport, limit: int, timeout_s: float) -> None:
        self.transport = transport
        self.limit = limit
        self.timeout_s = timeout_s
        self.loop = asyncio.get_running_loop()
        self.bytes = 0
        self.timer: asyncio.TimerHandle | None = None

    def start(self, expired: Callable[[], None]) -> None:
        if self.timer is None:
            self.timer = self.loop.call_later(self.timeout_s, expired)

    def received(self, count: int, expired: Callable[[], None]) -> None:
        """``count`` more bytes of a head: the deadline runs, and a head over the limit is
        refused with 431."""
        self.start(expired)
        self.bytes += count
        if self.bytes > self.limit:
            self.refuse(_TOO_LARGE)

    def stop(self) -> None:
        self.bytes = 0
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def refuse(self, answer: bytes | None) -> None:
        """Answer (unless None) and close; abort if the peer does not let the close finish."""
        self.stop()
        transport = self.transport
        if transport.is_closing():
            return
        if answer is not None:
            transport.write(answer)
        transport.close()
        self.loop.call_later(_ABORT_AFTER_S, _abort, transport)


def _abort(transport: asyncio.Transport) -> None:
    with contextlib.suppress(Exception):  # already gone: nothing to do
        transport.abort()


def _abort_once_closing(transport: asyncio.Transport) -> None:
    """The server is stopping: once this connection is closing, give its TLS close
    ``_ABORT_AFTER_S`` to finish, then abort it.

    Closing a TLS connection sends close_notify and waits for the peer's; a client that keeps
    an idle kept-alive connection in its pool and does not read it never answers, and the
    connection would outlive the server's graceful shutdown (uvicorn then cancels it and logs
    an error on every ordinary stop).
    """
    loop = asyncio.get_running_loop()

    def check() -> None:
        if transport.is_closing():
            loop.call_later(_ABORT_AFTER_S, _abort, transport)
        else:  # a response still under way; uvicorn closes the connection after it
            loop.call_later(0.1, check)

    check()


class TlsHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol: head bounded in size and time, client certificate passed."""

    max_head_bytes = MAX_HEAD_BYTES
    head_timeout_s = HEAD_TIMEOUT_S

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.app = _guarded_app(self.app, tls_extension(transport), self.max_head_bytes)
        self._in_head = False
        self._head = _HeadWatch(transport, self.max_head_bytes, self.head_timeout_s)
        self._head.start(self._head_expired)

    def connection_lost(self, exc: Exception | None) -> None:
        self._head.stop()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def _waiting_for_head(self) -> bool:
        return self._in_head or self.cycle is None

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        watch = self._head
        if self.transport.is_closing():
            watch.stop()
        elif not self._in_head:
            if self.cycle is not None:
                watch.stop()
        else:
            watch.received(len(data), self._head_expired)

    def _head_expired(self) -> None:
        self._head.timer = None
        if self._waiting_for_head():
            self._head.refuse(_TIMEOUT if self._in_head else None)

    def shutdown(self) -> None:
        super().shutdown()
        _abort_once_closing(self.transport)


class TlsH11Protocol(H11Protocol):
    """uvicorn's h11 protocol: head bounded in size and time, client certificate passed."""

    max_head_bytes = MAX_HEAD_BYTES
    head_timeout_s = HEAD_TIMEOUT_S

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.app = _guarded_app(self.app, tls_extension(transport), self.max_head_bytes)
        self._head = _HeadWatch(transport, self.max_head_bytes, self.head_timeout_s)
        self._head.start(self._head_expired)

    def connection_lost(self, exc: Exception | None) -> None:
        self._head.stop()
        super().connection_lost(exc)

    def _waiting_for_head(self) -> bool:
        return self.conn.their_state is h11.IDLE and self.conn.our_state is h11.IDLE

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        watch = self._head
        if self.transport.is_closing() or not self._waiting_for_head():
            watch.stop()
        else:
            watch.received(len(data), self._head_expired)

    def _head_expired(self) -> None:
        self._head.timer = None
        if self._waiting_for_head():
            self._head.refuse(_TIMEOUT if self._head.bytes else None)

    def shutdown(self) -> None:
        super().shutdown()
        _abort_once_closing(self.transport)


def guarded(protocol: type[Any], *, max_head_bytes: int, head_timeout_s: float) -> type[Any]:
    """``protocol`` (one of the two above, or a subclass) with these bounds."""
    return type(
        protocol.__name__,
        (protocol,),
        {"max_head_bytes": max_head_bytes, "head_timeout_s": head_timeout_s},
    )
