"""Apple Messages for Business attachment encryption: AES-256-CTR with a zero IV.

Apple's MMCS stores attachments encrypted; the key travels in the message (hex, with a leading
"00" byte). The IV is always 16 zero bytes, which is safe only because every file gets a fresh
random key: a key must never encrypt two files.
"""

from __future__ import annotations

import os

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

KEY_BYTES = 32  # AES-256
ZERO_IV = bytes(16)
# Apple writes the key as hex with one leading zero byte ("00" + 64 hex digits).
KEY_PREFIX = "00"


def new_key() -> bytes:
    """A fresh random key: one per file, never reused (the IV is fixed)."""
    return os.urandom(KEY_BYTES)


def _cipher(key: bytes) -> Cipher[modes.CTR]:
    if len(key) != KEY_BYTES:
        raise ValueError(f"an Apple attachment key is {KEY_BYTES} bytes, got {len(key)}")
    return Cipher(algorithms.AES(key), modes.CTR(ZERO_IV))


def encrypt(data: bytes, key: bytes) -> bytes:
    encryptor = _cipher(key).encryptor()
    return encryptor.update(data) + encryptor.finalize()


def decrypt(data: bytes, key: bytes) -> bytes:
    decryptor = _cipher(key).decryptor()
    return decryptor.update(data) + decryptor.finalize()


def key_to_hex(key: bytes) -> str:
    """The key as an attachment's `key` field: "00" + hex."""
    return KEY_PREFIX + key.hex()


def key_from_hex(text: str) -> bytes:
    """An attachment's `key` field → key bytes; ValueError when it is not "00" + 64 hex digits."""
    text = text.strip().lower()
    if len(text) == 2 * (KEY_BYTES + 1) and text.startswith(KEY_PREFIX):
        text = text[len(KEY_PREFIX) :]
    key = bytes.fromhex(text)
    if len(key) != KEY_BYTES:
        raise ValueError(f"an Apple attachment key is {KEY_BYTES} bytes, got {len(key)}")
    return key
