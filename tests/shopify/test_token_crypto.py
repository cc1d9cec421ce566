"""Offline tokens encrypted at rest, with key rotation."""

import pytest

from app.shopify.token_crypto import TokenCipher, TokenDecryptError, generate_key

TOKEN = "shpat_0123456789abcdef0123456789abcdef"
OLD_KEY = generate_key()
NEW_KEY = generate_key()


def test_encrypted_token_decrypts_to_the_original():
    cipher = TokenCipher.from_keys([NEW_KEY])
    assert cipher.decrypt(cipher.encrypt(TOKEN)) == TOKEN


def test_ciphertext_does_not_contain_the_token():
    assert TOKEN not in TokenCipher.from_keys([NEW_KEY]).encrypt(TOKEN)


def test_token_encrypted_under_the_old_key_decrypts_after_adding_a_new_key():
    stored = TokenCipher.from_keys([OLD_KEY]).encrypt(TOKEN)
    assert TokenCipher.from_keys([NEW_KEY, OLD_KEY]).decrypt(stored) == TOKEN


def test_new_tokens_are_encrypted_under_the_first_key():
    stored = TokenCipher.from_keys([NEW_KEY, OLD_KEY]).encrypt(TOKEN)
    assert TokenCipher.from_keys([NEW_KEY]).decrypt(stored) == TOKEN


def test_rotated_token_no_longer_needs_the_old_key():
    stored = TokenCipher.from_keys([OLD_KEY]).encrypt(TOKEN)
    rotated = TokenCipher.from_keys([NEW_KEY, OLD_KEY]).rotate(stored)
    assert TokenCipher.from_keys([NEW_KEY]).decrypt(rotated) == TOKEN


def test_wrong_key_raises_token_decrypt_error():
    stored = TokenCipher.from_keys([OLD_KEY]).encrypt(TOKEN)
    with pytest.raises(TokenDecryptError):
        TokenCipher.from_keys([NEW_KEY]).decrypt(stored)


def test_corrupted_ciphertext_raises_token_decrypt_error():
    with pytest.raises(TokenDecryptError):
        TokenCipher.from_keys([NEW_KEY]).decrypt("not-a-fernet-token")


def test_malformed_key_is_refused_without_echoing_it():
    with pytest.raises(ValueError) as caught:
        TokenCipher.from_keys([NEW_KEY, "too-short-to-be-a-key"])
    assert "too-short-to-be-a-key" not in str(caught.value)
    assert "#2" in str(caught.value)


def test_no_keys_is_refused():
    with pytest.raises(ValueError):
        TokenCipher.from_keys(["", " "])


def test_cipher_repr_hides_the_keys():
    assert NEW_KEY not in repr(TokenCipher.from_keys([NEW_KEY]))
