"""Reviewers' e-mail addresses as Bazaarvoice sends them: base64 of AES-128-ECB with PKCS7 padding, the key derived
from the client's shared secret (its first 16 UTF-8 bytes, or the first 16 bytes of its SHA-1, a per-connection
setting). The plain address is used in memory only: stored masked, never logged."""

from __future__ import annotations

import base64
import binascii
import hashlib

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

PLAIN16 = "plain16"
SHA1 = "sha1"
KEY_BYTES = 16


class Undecryptable(ValueError):
    """A value that does not decrypt to an e-mail address with this key (wrong secret, derivation or garbage)."""


def email_key(secret: str, derivation: str = PLAIN16) -> bytes:
    raw = secret.encode("utf-8")
    key = hashlib.sha1(raw).digest()[:KEY_BYTES] if derivation == SHA1 else raw[:KEY_BYTES]  # noqa: S324 - vendor's
    if len(key) != KEY_BYTES:
        raise Undecryptable("the shared secret is shorter than 16 bytes: enter the full secret from Bazaarvoice")
    return key


def encrypt_email(address: str, key: bytes) -> str:
    """What Bazaarvoice does (used by the simulator and tests)."""
    padder = padding.PKCS7(128).padder()
    data = padder.update(address.encode("utf-8")) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key), modes.ECB()).encryptor()  # noqa: S305 - the vendor's scheme
    return base64.b64encode(encryptor.update(data) + encryptor.finalize()).decode()


def decrypt_email(value: str, key: bytes) -> str:
    """The address inside `value`; raises Undecryptable for anything that is not one."""
    try:
        data = base64.b64decode(value or "", validate=True)
    except (binascii.Error, ValueError) as exc:
        raise Undecryptable("not base64") from exc
    if not data or len(data) % 16:
        raise Undecryptable("not a whole number of AES blocks")
    decryptor = Cipher(algorithms.AES(key), modes.ECB()).decryptor()  # noqa: S305 - the vendor's scheme
    padded = decryptor.update(data) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    try:
        plain = (unpadder.update(padded) + unpadder.finalize()).decode("utf-8")
    except ValueError as exc:  # bad padding or not UTF-8: another key or garbage
        raise Undecryptable("the padding or text is wrong: another key or a damaged value") from exc
    if "@" not in plain or any(ch.isspace() or ord(ch) < 32 for ch in plain):
        raise Undecryptable("the decrypted value is not an e-mail address")
    return plain


def masked(address: str) -> str:
    """j•••@example.com: enough to recognise, not enough to contact."""
    local, _, domain = address.partition("@")
    return f"{local[:1]}•••@{domain}" if domain else "•••"
