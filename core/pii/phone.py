"""Phone numbers as identities: E.164 normalization, keyed hashes and masked display forms.

A raw caller number is never stored outside the raw-payload inbox (purged after retention):
rows carry ``caller_hash`` (HMAC with the deployment's secret key) and a masked display form.
"""

from __future__ import annotations

import hashlib
import hmac

import phonenumbers


def normalize_number(raw: str | None, default_region: str = "US") -> str | None:
    """E.164 form of a phone number, or the trimmed input for SIP URIs and other ids."""
    if not raw or not raw.strip():
        return None
    value = raw.strip()
    try:
        parsed = phonenumbers.parse(value, default_region)
    except phonenumbers.NumberParseException:
        return value
    if not phonenumbers.is_possible_number(parsed):
        return value
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def checked_number(raw: str) -> str | None:
    """The E.164 form of something a person typed as a phone number (a ``sip:`` URI as is),
    or None when it cannot be one. Lookups use this; webhooks do not (a withheld or odd
    caller id is legitimate there)."""
    value = raw.strip()
    if value.lower().startswith("sip:") and len(value) > 4:
        return value
    try:
        parsed = phonenumbers.parse(value, "US")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def caller_hash(secret_key: str, raw_number: str) -> str:
    """Keyed hash of a caller's normalized number; stable for one secret key."""
    normalized = normalize_number(raw_number) or raw_number
    digest = hmac.new(secret_key.encode(), f"e164:{normalized}".encode(), hashlib.sha256)
    return digest.hexdigest()[:32]


def mask_number(raw_number: str) -> str:
    """Display form keeping the country code and last four digits: ``+1•••••••0123``."""
    normalized = normalize_number(raw_number) or raw_number
    digits = [c for c in normalized if c.isdigit()]
    if len(digits) <= 4:
        return "•" * len(digits)
    tail = "".join(digits[-4:])
    if normalized.startswith("+"):
        try:
            cc = str(phonenumbers.parse(normalized).country_code)
        except phonenumbers.NumberParseException:
            cc = ""
        hidden = len(digits) - len(cc) - 4
        return f"+{cc}{'•' * max(hidden, 0)}{tail}"
    return f"{'•' * (len(digits) - 4)}{tail}"
