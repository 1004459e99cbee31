"""The one signature evidence documents carry, as a template filled per document.

Every evidence signature is the same XML-DSig structure (enveloped, exclusive c14n, SHA-256 digest,
ECDSA P-256 SHA-256, the node's certificate in KeyInfo): only the reference digest and the signature
value change. signxml's generic signer re-serializes and re-parses the document twice and builds the
Signature element by element for each one; here the digest is lxml's own exclusive c14n of the
document hashed, and SignedInfo (canonical form) and the whole Signature (serialized form) are byte
templates made once by lxml from the same elements signxml writes, so the signed document is byte for
byte what signxml would write for it (tests/test_evidence_template.py checks against signxml itself).
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from lxml import etree

DSIG = "http://www.w3.org/2000/09/xmldsig#"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
ECDSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"

_DIGEST_SLOT = "@DIGEST@"  # neither can occur in the template's own text (it is base64 and URIs)
_VALUE_SLOT = "@SIGNATURE@"
_ECDSA = ec.ECDSA(hashes.SHA256())


def _ds(parent: etree._Element, tag: str, **attrs: str) -> etree._Element:
    return etree.SubElement(parent, f"{{{DSIG}}}{tag}", **attrs)


def signature_element(key_info: etree._Element) -> etree._Element:
    """ds:Signature as signxml builds it for our settings, with slots for the digest and the value."""
    sig = etree.Element(f"{{{DSIG}}}Signature", nsmap={"ds": DSIG})
    info = _ds(sig, "SignedInfo")
    _ds(info, "CanonicalizationMethod", Algorithm=EXC_C14N)
    _ds(info, "SignatureMethod", Algorithm=ECDSA_SHA256)
    ref = _ds(info, "Reference", URI="")
    transforms = _ds(ref, "Transforms")
    _ds(transforms, "Transform", Algorithm=ENVELOPED)
    _ds(transforms, "Transform", Algorithm=EXC_C14N)
    _ds(ref, "DigestMethod", Algorithm=SHA256)
    _ds(ref, "DigestValue").text = _DIGEST_SLOT
    _ds(sig, "SignatureValue").text = _VALUE_SLOT
    sig.append(key_info)
    return sig


def _split(data: bytes, slot: str) -> tuple[bytes, bytes]:
    head, sep, tail = data.partition(slot.encode())
    if not sep or slot.encode() in tail:
        raise ValueError(f"the signature template holds {slot} other than once")
    return head, tail


class SignatureTemplate:
    """Signs a document (an element with children, not yet signed) with `key`, enveloped."""

    def __init__(self, key: ec.EllipticCurvePrivateKey, key_info: etree._Element) -> None:
        self.key = key
        self._int_len = (key.curve.key_size + 7) // 8
        sig = signature_element(key_info)
        # SignedInfo's exclusive c14n on its own is what signxml signs: only ds is visibly used in it
        self._info_head, self._info_tail = _split(
            etree.tostring(sig[0], method="c14n", exclusive=True), _DIGEST_SLOT)
        serialized = etree.tostring(sig)  # ASCII only: URIs, base64 and the slots
        self._sig_head, rest = _split(serialized, _DIGEST_SLOT)
        self._sig_mid, self._sig_tail = _split(rest, _VALUE_SLOT)

    def sign(self, doc: etree._Element) -> bytes:
        """The document, serialized with its XML declaration, with the Signature as its last child."""
        if len(doc) == 0:
            raise ValueError("an evidence document has child elements")  # so its end tag closes the text
        digest = base64.b64encode(hashlib.sha256(etree.tostring(doc, method="c14n", exclusive=True)).digest())
        r, s = decode_dss_signature(self.key.sign(self._info_head + digest + self._info_tail, _ECDSA))
        value = base64.b64encode(r.to_bytes(self._int_len, "big") + s.to_bytes(self._int_len, "big"))
        body = etree.tostring(doc, xml_declaration=True, encoding="UTF-8", with_tail=False)
        end = body.rindex(b"</")  # the root's end tag: it has children
        return b"".join((body[:end], self._sig_head, digest, self._sig_mid, value, self._sig_tail, body[end:]))
