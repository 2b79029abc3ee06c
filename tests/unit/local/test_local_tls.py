"""local.tls: the certificate the local API serves verifies for 127.0.0.1 and localhost
against ca.pem, with cryptography's own path validation (the Web PKI rules)."""

from __future__ import annotations

import ipaddress
import ssl
import stat

import pytest
from cryptography import x509
from cryptography.x509.verification import PolicyBuilder, Store

from local.tls import make_certificates


@pytest.fixture(scope="module")
def certificates(tmp_path_factory):
    return make_certificates(tmp_path_factory.mktemp("tls"))


@pytest.mark.parametrize(
    "name", [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
)
def test_server_certificate_verifies_against_the_ca(certificates, name):
    ca = x509.load_pem_x509_certificate(certificates.ca.read_bytes())
    leaf = x509.load_pem_x509_certificate(certificates.cert.read_bytes())
    verifier = PolicyBuilder().store(Store([ca])).build_server_verifier(name)
    chain = verifier.verify(leaf, [])
    assert chain[-1] == ca


def test_wrong_name_does_not_verify(certificates):
    ca = x509.load_pem_x509_certificate(certificates.ca.read_bytes())
    leaf = x509.load_pem_x509_certificate(certificates.cert.read_bytes())
    verifier = PolicyBuilder().store(Store([ca])).build_server_verifier(x509.DNSName("example.com"))
    with pytest.raises(x509.verification.VerificationError):
        verifier.verify(leaf, [])


def test_files_load_into_ssl_and_the_key_is_private(certificates):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificates.cert, certificates.key)
    client = ssl.create_default_context(cafile=str(certificates.ca))
    assert client.cert_store_stats()["x509_ca"] == 1
    assert stat.S_IMODE(certificates.key.stat().st_mode) == 0o600
