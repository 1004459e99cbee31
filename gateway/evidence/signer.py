"""Signing and checking evidence documents: XML-DSig, enveloped, exclusive c14n, ECDSA P-256 with
SHA-256, the signer's certificate in KeyInfo (a fixed template signs, template.py; signxml verifies;
xmlsec1 and other XML-DSig implementations check the same documents).

The key is the node's own, made on first start in the data folder (0600) with a self-signed
certificate beside it (evidence-cert.pem), which the node's operator hands to agencies and auditors:
a check trusts that certificate, never the one a document carries.
"""

from __future__ import annotations

import base64
import datetime
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from lxml import etree
from signxml import CanonicalizationMethod, DigestAlgorithm, SignatureMethod, XMLSigner, XMLVerifier
from signxml.exceptions import InvalidInput, InvalidSignature
from signxml.verifier import SignatureConfiguration

from gateway.evidence.document import NS, fields
from gateway.evidence.template import DSIG, SignatureTemplate
from gateway.private_files import open_private, private_dir

_EXPECT = SignatureConfiguration(signature_methods=frozenset({SignatureMethod.ECDSA_SHA256}),
                                 digest_algorithms=frozenset({DigestAlgorithm.SHA256}))
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, remove_blank_text=False)


class EvidenceInvalid(Exception):
    """The document is not evidence this key signed, or was changed after signing (zh, en)."""

    def __init__(self, zh: str, en: str) -> None:
        super().__init__(f"{zh} / {en}")
        self.zh, self.en = zh, en


@dataclass(frozen=True)
class Verified:
    kind: str
    facts: dict[str, str]
    signer: str  # the certificate's subject
    fingerprint: str  # SHA-256 of the certificate, hex


def fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()


class EvidenceSigner:
    """Signs evidence documents with the node's ECDSA P-256 key."""

    def __init__(self, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate) -> None:
        self.key = key
        self.cert = cert
        self._template = SignatureTemplate(key, _key_info(cert))  # the certificate converted once

    @classmethod
    def load_or_create(cls, key_path: str | Path, node: str) -> EvidenceSigner:
        """The key at `key_path` and the certificate beside it (evidence-cert.pem); made on first use."""
        kp = Path(key_path)
        cp = kp.with_name("evidence-cert.pem")
        if kp.exists():
            key = serialization.load_pem_private_key(kp.read_bytes(), password=None)
            if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
                raise ValueError(f"{kp} does not hold an ECDSA P-256 private key")
            if cp.exists():
                cert = x509.load_pem_x509_certificate(cp.read_bytes())
                if cert.public_key() == key.public_key():
                    return cls(key, cert)
            cert = _self_signed(key, node)  # lost or for another key: a new one for the same key
            _write(cp, cert)
            return cls(key, cert)
        private_dir(kp.parent)
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        fd = os.open(kp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
        cert = _self_signed(key, node)
        _write(cp, cert)
        return cls(key, cert)

    def sign(self, doc: etree._Element) -> bytes:
        """`doc` signed, serialized with its XML declaration; `doc` itself is left as it was."""
        return self._template.sign(doc)

    def sign_with_signxml(self, doc: etree._Element) -> bytes:
        """The same signature by signxml's generic signer: what `sign` is measured and checked against
        (bench/evidence.py, tests/test_evidence_template.py); several times slower per document."""
        signer, key_info = self._signxml
        signed = signer.sign(doc, key=self.key, key_info=key_info)
        return bytes(etree.tostring(signed, xml_declaration=True, encoding="UTF-8"))

    @cached_property
    def _signxml(self) -> tuple[XMLSigner, etree._Element]:
        signer = XMLSigner(signature_algorithm=SignatureMethod.ECDSA_SHA256, digest_algorithm=DigestAlgorithm.SHA256,
                           c14n_algorithm=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0)
        signer.namespaces = {None: NS, "ds": DSIG}  # type: ignore[dict-item]  # None: the default one
        return signer, _key_info(self.cert)

    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)


def _key_info(cert: x509.Certificate) -> etree._Element:
    """KeyInfo with the signer's certificate (X509Data), as signxml writes it."""
    info = etree.Element(f"{{{DSIG}}}KeyInfo", nsmap={"ds": DSIG})
    data = etree.SubElement(info, f"{{{DSIG}}}X509Data")
    der = cert.public_bytes(serialization.Encoding.DER)
    etree.SubElement(data, f"{{{DSIG}}}X509Certificate").text = base64.b64encode(der).decode("ascii")
    return info


def _write(path: Path, cert: x509.Certificate) -> None:
    """The certificate is public, but like everything in the data folder it is the node user's alone;
    agencies get it from the operator or from GET /api/v1/evidence/certificate."""
    with open_private(path) as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))


def _self_signed(key: ec.EllipticCurvePrivateKey, node: str) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"gateway {node} evidence"[:64])])
    now = datetime.datetime.now(datetime.UTC)
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))


def load_trusted(pem: bytes) -> x509.Certificate | ec.EllipticCurvePublicKey:
    """A certificate or a public key in PEM, as given to `gateway evidence verify --public-key`."""
    if b"BEGIN CERTIFICATE" in pem:
        return x509.load_pem_x509_certificate(pem)
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ValueError("not an ECDSA public key")
    return key


def embedded_cert(data: bytes) -> x509.Certificate:
    """The certificate a document carries in its KeyInfo (proves nothing on its own)."""
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as e:
        raise EvidenceInvalid(f"不是格式正确的 XML：{e}", f"not well-formed XML: {e}") from None
    text = root.findtext(f".//{{{DSIG}}}X509Certificate")
    if not text:
        raise EvidenceInvalid("文档中没有签名证书", "the document carries no signing certificate")
    pem = "-----BEGIN CERTIFICATE-----\n" + "".join(text.split()) + "\n-----END CERTIFICATE-----\n"
    return x509.load_pem_x509_certificate(pem.encode())


def verify(data: bytes, trusted: x509.Certificate | ec.EllipticCurvePublicKey) -> Verified:
    """Check an evidence document against the certificate or public key the reader trusts; the facts
    returned are read from what the signature covers, never from the document around it."""
    if isinstance(trusted, x509.Certificate):
        cert = trusted
    else:
        cert = embedded_cert(data)
        if cert.public_key() != trusted:
            raise EvidenceInvalid("文档由另一把密钥签名，不是所给的公钥",
                                  "the document was signed by another key than the public key given")
    try:
        result = XMLVerifier().verify(data, x509_cert=cert, expect_config=_EXPECT, parser=_PARSER)
    except InvalidSignature as e:
        raise EvidenceInvalid(f"签名不符，文档在签名后被改动或由其他密钥签名（{e}）",
                              f"the signature does not match: the document was changed after signing, or "
                              f"signed by another key ({e})") from None
    except (InvalidInput, etree.XMLSyntaxError, ValueError) as e:
        raise EvidenceInvalid(f"不是可核验的证据文档（{e}）", f"not a verifiable evidence document ({e})") from None
    assert not isinstance(result, list)
    root = result.signed_xml
    if root is None or etree.QName(root).namespace != NS or etree.QName(root).localname != "Evidence":
        raise EvidenceInvalid("签名覆盖的不是证据文档", "what the signature covers is not an evidence document")
    subject = cert.subject.rfc4514_string()
    return Verified(root.get("kind", ""), fields(root), subject, fingerprint(cert))
