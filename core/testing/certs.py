"""A throw-away self-signed TLS certificate, for the TCP/TLS and QUIC peers that the demo, the
benchmarks and the latency table measure minimalt against (never for anything real)."""

from __future__ import annotations

import datetime
import ipaddress
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

DEFAULT_NAMES = ("localhost", "127.0.0.1", "::1")


def self_signed_certificate(
    directory: Path, names: Sequence[str] = DEFAULT_NAMES, *, days: int = 2
) -> tuple[Path, Path]:
    """Write ``cert.pem`` and ``key.pem`` (ECDSA P-256, a CA for itself so it can be its own
    trust anchor) into ``directory`` for ``names`` (host names and IP addresses); returns
    their paths. Uses the ``cryptography`` package when installed, else the ``openssl``
    command; raises RuntimeError when neither is there."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    addresses, hosts = [], []
    for name in names:
        try:
            addresses.append(ipaddress.ip_address(name))
        except ValueError:
            hosts.append(name)
    common = hosts[0] if hosts else "minimalt-test"
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
    except ImportError:
        if shutil.which("openssl") is None:
            raise RuntimeError("needs the cryptography package or the openssl command") from None
        san = ",".join([f"DNS:{h}" for h in hosts] + [f"IP:{a}" for a in addresses])
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                str(key),
                "-out",
                str(cert),
                "-days",
                str(days),
                "-subj",
                f"/CN={common}",
                "-addext",
                f"subjectAltName={san}",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        return cert, key
    private = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])
    now = datetime.datetime.now(datetime.UTC)
    alt_names = [x509.DNSName(h) for h in hosts] + [x509.IPAddress(a) for a in addresses]
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(private, hashes.SHA256())
    )
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert, key
