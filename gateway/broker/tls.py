"""TLS for MQTT: the embedded broker's certificate and the clients' context.

Devices send their passwords in the CONNECT packet; on a plain listener that
is clear text. The embedded broker gets a TLS listener (``mqtts://``). With
no certificate configured it makes a self-signed one once (EC P-256, ten
years, the broker's addresses as subject alternative names), which a device
pins as its CA — enough for the demo and a closed ISP network; an operator
with a real CA sets ``MOYDOM_MQTT_TLS_CERTFILE``/``KEYFILE``.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gateway.settings import BrokerMode, Settings

CERT_NAME = "broker.crt"
KEY_NAME = "broker.key"


def _san(hosts: list[str]) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = []
    for host in dict.fromkeys([*hosts, "localhost", "127.0.0.1", "::1", socket.gethostname()]):
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(names)


def ensure_self_signed(cert: Path, key: Path, hosts: list[str]) -> bool:
    """Write a self-signed pair unless both files exist; whether one was made."""
    if cert.exists() and key.exists():
        return False
    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "moydom broker (self-signed)")])
    now = datetime.now(UTC)
    public = private.public_key()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=3650))
        .add_extension(_san(hosts), critical=False)
        # Its own trust anchor: clients put this very file in their CA list.
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(private, hashes.SHA256())
    )
    cert.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(
            private.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return True


def broker_pair(settings: Settings) -> tuple[Path, Path]:
    """The embedded broker's certificate and key: configured, or the generated pair's paths."""
    tls_dir = (settings.var_dir / "broker" / "tls").resolve()
    return (
        settings.mqtt_tls_certfile or tls_dir / CERT_NAME,
        settings.mqtt_tls_keyfile or tls_dir / KEY_NAME,
    )


def client_context(cafile: Path | None) -> ssl.SSLContext:
    """Verify the broker's certificate and name against ``cafile`` (else the system CAs)."""
    return ssl.create_default_context(cafile=str(cafile) if cafile is not None else None)


def client_tls(settings: Settings) -> ssl.SSLContext | None:
    """The TLS context of the gateway's own MQTT clients, or None on mqtt://."""
    if not settings.mqtt_tls:
        return None
    cafile = settings.mqtt_tls_cafile
    if cafile is None and settings.mqtt_broker is BrokerMode.EMBEDDED:
        cafile = broker_pair(settings)[0]
    return client_context(cafile)
