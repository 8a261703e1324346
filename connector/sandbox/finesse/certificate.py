"""The sandbox notification service's TLS certificate: self-signed, made at every start.

The certificate is its own CA (what a Finesse cluster's self-signed Tomcat/Openfire certificate is to
a client), for the XMPP domain, `localhost` and the loopback addresses, valid one week. Only the
certificate is written where clients can read it (the connector's `finesse.ca_bundle`); the private
key goes to a private temporary file just long enough for `ssl` to load it.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
import tempfile
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

LOOPBACK_NAMES = ("localhost",)
LOOPBACK_ADDRESSES = ("127.0.0.1", "::1")


def _names(domain: str, host: str) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    addresses = set(LOOPBACK_ADDRESSES)
    for name in (domain, host, *LOOPBACK_NAMES):
        try:
            addresses.add(str(ipaddress.ip_address(name)))
        except ValueError:
            if x509.DNSName(name) not in names:
                names.append(x509.DNSName(name))
    names.extend(x509.IPAddress(ipaddress.ip_address(a)) for a in sorted(addresses))
    return names


def server_context(domain: str, host: str, cert_path: Path) -> ssl.SSLContext:
    """Make a fresh key and certificate, write the certificate (PEM) to `cert_path` (atomically: a
    client never reads half a file) and return a server context serving them."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Finesse sandbox"),
            x509.NameAttribute(NameOID.COMMON_NAME, domain),
        ]
    )
    now = datetime.datetime.now(datetime.UTC)
    public = key.public_key()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=7))
        .add_extension(x509.SubjectAlternativeName(_names(domain, host)), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    pem = certificate.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    with tempfile.TemporaryDirectory(prefix="finesse-sim-key-") as private:  # created 0700
        (Path(private) / "cert.pem").write_bytes(pem)
        (Path(private) / "key.pem").write_bytes(key_pem)
        context.load_cert_chain(Path(private) / "cert.pem", Path(private) / "key.pem")
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    partial = cert_path.with_name(f".{cert_path.name}.{os.getpid()}.tmp")
    partial.write_bytes(pem)
    os.replace(partial, cert_path)
    return context
