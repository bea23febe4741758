"""TLS and mutual TLS channels, against the software switch behind a TLS endpoint.

The software switch listens in plaintext; the test puts a TLS endpoint in
front of it (asyncio's TLS server with ALPN "h2", piping bytes to the
switch's port), so the client's TLS handshake, certificate checks and client
certificates are exercised against a real P4Runtime server. Certificates are
made with the ``openssl`` command for each run.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from p4rt_helpers import leaked_tasks, software_switch_in_thread

from p4ctl.p4rt import ClientOptions, Credentials, P4RuntimeClient, P4RuntimeError

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")


@dataclass
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    stranger_cert: Path
    stranger_key: Path


def _openssl(cwd: Path, *args: str) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _issue(cwd: Path, ca: str, name: str, subject: str, ext: str) -> None:
    _openssl(cwd, "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subject)
    (cwd / f"{name}.ext").write_text(ext)
    _openssl(cwd, "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key",
             "-CAcreateserial", "-out", f"{name}.crt", "-days", "2", "-extfile", f"{name}.ext")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    d = tmp_path_factory.mktemp("pki")
    for ca in ("ca", "other-ca"):
        _openssl(d, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                 "-nodes", "-keyout", f"{ca}.key", "-out", f"{ca}.crt", "-days", "2",
                 "-subj", f"/CN=p4ctl test {ca}")
    _issue(d, "ca", "server", "/CN=localhost",
           "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    _issue(d, "ca", "client", "/CN=controller",
           "extendedKeyUsage=clientAuth\n")
    _issue(d, "other-ca", "stranger", "/CN=stranger", "extendedKeyUsage=clientAuth\n")
    return Pki(d / "ca.crt", d / "server.crt", d / "server.key", d / "client.crt",
               d / "client.key", d / "stranger.crt", d / "stranger.key")


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, ssl.SSLError):
        pass
    finally:
        writer.close()


@contextlib.asynccontextmanager
async def tls_endpoint(backend_port: int, pki: Pki, *, require_client_cert: bool
                       ) -> AsyncIterator[str]:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(pki.server_cert, pki.server_key)
    ctx.set_alpn_protocols(["h2"])
    if require_client_cert:
        ctx.load_verify_locations(pki.ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
    tasks: set[asyncio.Task[None]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", backend_port)
        except OSError:
            writer.close()
            return
        for t in (_pipe(reader, up_writer), _pipe(up_reader, writer)):
            task = asyncio.ensure_future(t)
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=ctx)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.close()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()


@pytest.fixture
async def switch_port() -> AsyncIterator[int]:
    """The software switch, on its own loop (see ``software_switch_in_thread``)."""
    try:
        import p4ctl.switch.device  # noqa: F401
    except ImportError as exc:
        pytest.skip(f"the software switch is not importable: {exc}")
    async with software_switch_in_thread(device_id=1, grpc_address="127.0.0.1:0") as switch:
        yield switch.grpc_port


def _client(address: str, credentials: Credentials) -> P4RuntimeClient:
    return P4RuntimeClient(address, 1, credentials=credentials,
                           options=ClientOptions(backoff_initial=0.05, backoff_max=0.2))


async def test_tls_server_authentication(switch_port: int, pki: Pki) -> None:
    async with tls_endpoint(switch_port, pki, require_client_cert=False) as address:
        client = _client(address, Credentials.tls(pki.ca))
        await client.connect(timeout=20)
        try:
            assert client.is_primary
            assert await client.capabilities()
        finally:
            await client.close()


async def test_mutual_tls(switch_port: int, pki: Pki) -> None:
    before = set(asyncio.all_tasks())
    async with tls_endpoint(switch_port, pki, require_client_cert=True) as address:
        creds = Credentials.mutual_tls(pki.ca, pki.client_cert, pki.client_key,
                                       server_name="localhost")
        assert creds.mutual
        async with _client(address, creds) as client:
            assert client.is_primary
            assert await client.capabilities()
    assert leaked_tasks(before) == []


async def test_untrusted_server_and_missing_client_cert_fail(switch_port: int, pki: Pki) -> None:
    async with tls_endpoint(switch_port, pki, require_client_cert=True) as address:
        # the server's certificate is not signed by the CA we trust
        with pytest.raises(P4RuntimeError, match="could not connect"):
            await _client(address, Credentials.tls(pki.stranger_cert)).connect(timeout=2)
        # no client certificate where one is required
        with pytest.raises(P4RuntimeError, match="could not connect"):
            await _client(address, Credentials.tls(pki.ca)).connect(timeout=2)
        # a client certificate from a CA the server does not trust
        stranger = Credentials.mutual_tls(pki.ca, pki.stranger_cert, pki.stranger_key)
        with pytest.raises(P4RuntimeError, match="could not connect"):
            await _client(address, stranger).connect(timeout=2)


def test_half_a_key_pair_is_refused(pki: Pki) -> None:
    with pytest.raises(ValueError, match="both"):
        Credentials(pki.ca.read_bytes(), pki.client_cert.read_bytes(), None).channel_credentials()


async def test_flows_command_reads_a_switch_behind_tls(
    switch_port: int, pki: Pki, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``p4ctl flows`` connects as the configuration's ``tls`` says, as ``p4ctl run`` does."""
    from p4ctl.cli import _flows

    repo = Path(__file__).resolve().parents[3]
    async with tls_endpoint(switch_port, pki, require_client_cert=True) as address:
        example = (repo / "examples" / "p4ctl.yaml").read_text()
        config = tmp_path / "p4ctl.yaml"
        config.write_text(
            example.replace("127.0.0.1:9559", address)
            .replace("address: 127.0.0.1:9100", "address: null")
            .replace("    device_id: 1\n", f"    device_id: 1\n    tls: {{ca: {pki.ca}, "
                     f"cert: {pki.client_cert}, key: {pki.client_key}}}\n", 1))
        # the switch has no pipeline yet: the command gets that far, and says so
        assert await _flows(config, None, 10) == 1
    err = capsys.readouterr().err
    assert err.startswith("p4ctl flows: ") and "pipeline" in err.lower(), err
