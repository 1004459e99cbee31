"""WS-Security UsernameToken checks (PasswordText and PasswordDigest) with replay protection.

A token's Created time must lie within the freshness window, and each Nonce is remembered for
that window: a captured request sent again is refused instead of being processed twice.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections import OrderedDict
from datetime import datetime

from lxml import etree

from adapters.soap.envelope import SoapFault

WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
_TOKEN_PROFILE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0"
PASSWORD_TEXT = f"{_TOKEN_PROFILE}#PasswordText"
PASSWORD_DIGEST = f"{_TOKEN_PROFILE}#PasswordDigest"

_WRONG = "wrong user name or password for this SOAP endpoint"


class NonceCache:
    """Nonces seen within the freshness window; bounded so a flood cannot exhaust memory."""

    def __init__(self, window: float, max_entries: int = 200_000) -> None:
        self.window = window
        self.max_entries = max_entries
        self._seen: OrderedDict[str, float] = OrderedDict()

    def use(self, nonce: str, now: float) -> bool:
        """Remember `nonce`; False if it was already used within the window."""
        while self._seen and next(iter(self._seen.values())) < now:
            self._seen.popitem(last=False)
        if nonce in self._seen:
            return False
        if len(self._seen) >= self.max_entries:
            raise SoapFault(
                "too many requests within the security window; try again shortly",
                client=False,
                rule="wsse.busy",
            )
        self._seen[nonce] = now + 2 * self.window  # outlives every Created time still accepted
        return True


def _created(text: str) -> float:
    try:
        return datetime.fromisoformat(text.strip().replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise SoapFault(
            f"the security token's Created time '{text}' is not an ISO 8601 time",
            client=True,
            rule="wsse.created",
        ) from None


def verify_username_token(
    header: etree._Element | None,
    *,
    username: str,
    password: str,
    nonces: NonceCache,
    require_fresh: bool,
    now: float | None = None,
) -> str:
    """Check the UsernameToken in a SOAP Header; raise a Client SoapFault saying what is wrong.

    Returns the token's Nonce ("" if it has none) for the caller to claim cluster-wide."""
    now = time.time() if now is None else now
    tok = None if header is None else header.find(f"{{{WSSE}}}Security/{{{WSSE}}}UsernameToken")
    if tok is None:
        raise SoapFault(
            "this endpoint requires a WS-Security UsernameToken in the SOAP Header",
            client=True,
            rule="wsse.missing",
        )
    user = (tok.findtext(f"{{{WSSE}}}Username") or "").strip()
    pw_el = tok.find(f"{{{WSSE}}}Password")
    nonce_text = (tok.findtext(f"{{{WSSE}}}Nonce") or "").strip()
    created_text = tok.findtext(f"{{{WSU}}}Created") or ""
    if pw_el is None:
        raise SoapFault("the UsernameToken has no Password", client=True, rule="wsse.missing")
    pw_type = pw_el.get("Type", PASSWORD_TEXT)
    digest = pw_type == PASSWORD_DIGEST
    if pw_type not in (PASSWORD_TEXT, PASSWORD_DIGEST):
        raise SoapFault(
            f"password type {pw_type} is not supported (use PasswordText or PasswordDigest)",
            client=True,
            rule="wsse.password-type",
        )
    if (digest or require_fresh) and not (nonce_text and created_text):
        raise SoapFault(
            "the UsernameToken needs a Nonce and a Created time (replay protection)",
            client=True,
            rule="wsse.fresh",
        )
    if created_text:
        created = _created(created_text)
        if abs(now - created) > nonces.window:
            raise SoapFault(
                f"the security token was created {int(now - created)} s ago, outside the "
                f"{int(nonces.window)} s window; check the sender's clock and send a fresh token",
                client=True,
                rule="wsse.expired",
            )
    presented = (pw_el.text or "").strip()
    if digest:
        try:
            raw_nonce = base64.b64decode(nonce_text, validate=True)
        except binascii.Error:
            raise SoapFault(
                "the UsernameToken's Nonce is not base64", client=True, rule="wsse.nonce"
            ) from None
        expected = base64.b64encode(
            hashlib.sha1(raw_nonce + created_text.encode() + password.encode()).digest()
        )
        ok = hmac.compare_digest(presented.encode(), expected)
    else:
        ok = hmac.compare_digest(presented.encode(), password.encode())
    if not (ok and hmac.compare_digest(user.encode(), username.encode())):
        raise SoapFault(_WRONG, client=True, rule="wsse.credentials")
    if nonce_text and not nonces.use(nonce_text, now):
        raise replayed()
    return nonce_text


def replayed() -> SoapFault:
    return SoapFault(
        "this security token was already used (replayed Nonce); each request needs a new Nonce",
        client=True,
        rule="wsse.replay",
    )
