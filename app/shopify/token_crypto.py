"""Encryption at rest for shops' offline access and refresh tokens.

Keys are Fernet keys (urlsafe base64 of 32 random bytes) read from the environment by the settings.
Rotation: put the new key first and keep the old ones after it; the first key encrypts, every key
decrypts, and `rotate` re-encrypts a stored value under the first key.
"""

from __future__ import annotations

import binascii
from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class TokenDecryptError(Exception):
    """A stored token could not be decrypted with any configured key (wrong key, or corrupted value)."""


def generate_key() -> str:
    """A fresh key for the token-encryption setting."""
    return Fernet.generate_key().decode("ascii")


class TokenCipher:
    def __init__(self, fernet: MultiFernet) -> None:
        self._fernet = fernet

    @classmethod
    def from_keys(cls, keys: Sequence[str]) -> TokenCipher:
        """`keys[0]` encrypts; all of them decrypt. Blank entries (e.g. a trailing comma) are ignored."""
        if isinstance(keys, str):
            raise TypeError("pass a list of keys, not one string")
        fernets = []
        for position, key in enumerate(k.strip() for k in keys if k.strip()):
            try:
                fernets.append(Fernet(key.encode("ascii")))
            except (ValueError, binascii.Error, UnicodeEncodeError):
                # The key itself stays out of the message: it ends up in logs.
                raise ValueError(
                    f"token encryption key #{position + 1} is not a Fernet key "
                    "(32 url-safe base64-encoded bytes; make one with generate_key())"
                ) from None
        if not fernets:
            raise ValueError("at least one token encryption key is required")
        return cls(MultiFernet(fernets))

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode("utf-8")).decode("ascii")

    def decrypt(self, ciphertext: str) -> str:
        try:
            return self._fernet.decrypt(ciphertext.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError):
            raise TokenDecryptError(
                "stored token cannot be decrypted with the configured keys "
                "(was the key that encrypted it removed from the key list?)"
            ) from None

    def rotate(self, ciphertext: str) -> str:
        """Re-encrypt `ciphertext` under the first key (run after adding a new key)."""
        try:
            return self._fernet.rotate(ciphertext.encode("ascii")).decode("ascii")
        except (InvalidToken, UnicodeError):
            raise TokenDecryptError("stored token cannot be decrypted with the configured keys") from None

    def __repr__(self) -> str:
        return "TokenCipher(<keys hidden>)"
