"""gRPC channels to a P4Runtime server: insecure, TLS, or mutual TLS.

P4Runtime servers listen either in plaintext (BMv2's default, the software
switch's default) or with TLS, optionally requiring a client certificate
(PI ``PIGrpcServerRunV2`` ``ssl_options``; Stratum ``-ca_cert_file`` etc.).
:class:`Credentials` says which, from PEM bytes or files; ``None`` means
plaintext.

Channel options: the *send* limit matters for writes (the server's receive
limit, 4 MiB by default in gRPC, is what a WriteRequest must stay under, and
:class:`~p4ctl.p4rt.client.P4RuntimeClient` splits batches accordingly); the
*receive* limit is lifted because PI answers a Read with one ReadResponse for
everything it found, tens of megabytes for a large table.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import grpc

__all__ = ["DEFAULT_MAX_MESSAGE_BYTES", "Credentials", "open_channel"]

#: gRPC's default maximum received message size, which servers keep unless told otherwise.
DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024


def _pem(value: bytes | str | Path | None) -> bytes | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value
    return Path(value).read_bytes()


@dataclass(frozen=True, slots=True)
class Credentials:
    """TLS material for a channel; build with :meth:`tls` or :meth:`mutual_tls`.

    ``root_certificates`` is the CA that signed the server's certificate (None:
    the system's roots). ``certificate_chain`` and ``private_key`` are the
    client's own certificate and key, for servers that require client
    authentication. ``server_name`` overrides the name checked against the
    server certificate (useful when connecting to an IP address).
    """

    root_certificates: bytes | None = None
    certificate_chain: bytes | None = None
    private_key: bytes | None = None
    server_name: str | None = None

    @classmethod
    def tls(
        cls, ca: bytes | str | Path | None = None, *, server_name: str | None = None
    ) -> Credentials:
        """Server authentication only."""
        return cls(_pem(ca), server_name=server_name)

    @classmethod
    def mutual_tls(
        cls,
        ca: bytes | str | Path | None,
        cert: bytes | str | Path,
        key: bytes | str | Path,
        *,
        server_name: str | None = None,
    ) -> Credentials:
        """Server and client authentication (the client presents ``cert``/``key``)."""
        return cls(_pem(ca), _pem(cert), _pem(key), server_name)

    @property
    def mutual(self) -> bool:
        return self.certificate_chain is not None

    def channel_credentials(self) -> grpc.ChannelCredentials:
        if (self.certificate_chain is None) != (self.private_key is None):
            raise ValueError("mutual TLS needs both a certificate chain and a private key")
        return grpc.ssl_channel_credentials(
            root_certificates=self.root_certificates,
            private_key=self.private_key,
            certificate_chain=self.certificate_chain,
        )


def open_channel(
    address: str,
    credentials: Credentials | None = None,
    *,
    max_send_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    keepalive_ms: int | None = None,
) -> grpc.aio.Channel:
    """A ``grpc.aio`` channel to ``address`` (``host:port``)."""
    options: list[tuple[str, int | str]] = [
        ("grpc.max_send_message_length", max_send_bytes),
        ("grpc.max_receive_message_length", -1),
        # our own loop re-creates channels with its own backoff; keep gRPC's short
        ("grpc.initial_reconnect_backoff_ms", 100),
        ("grpc.max_reconnect_backoff_ms", 2000),
    ]
    if keepalive_ms:
        options += [
            ("grpc.keepalive_time_ms", keepalive_ms),
            ("grpc.keepalive_permit_without_calls", 1),
        ]
    if credentials is None:
        return grpc.aio.insecure_channel(address, options=options)
    if credentials.server_name:
        options.append(("grpc.ssl_target_name_override", credentials.server_name))
    return grpc.aio.secure_channel(address, credentials.channel_credentials(), options=options)
