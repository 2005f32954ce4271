"""Password hashing, password policy and recoverable secrets."""

from __future__ import annotations

import pytest

from postroom.auth.passwords import hash_password, needs_rehash, verify_password
from postroom.auth.policy import PasswordPolicy, PasswordPolicyError
from postroom.store.secrets import SecretBox, SecretError


def test_hash_is_argon2id_and_verifies() -> None:
    stored = hash_password("Corr3ct-Horse")
    assert stored.startswith("$argon2id$")
    assert "Corr3ct-Horse" not in stored
    assert verify_password(stored, "Corr3ct-Horse")
    assert not verify_password(stored, "corr3ct-horse")
    assert not needs_rehash(stored)


@pytest.mark.parametrize("stored", [None, "", "plain-text", "$argon2id$broken"])
def test_missing_or_malformed_hash_never_matches(stored: str | None) -> None:
    assert not verify_password(stored, "anything")


@pytest.mark.parametrize(("password", "problem"), [
    ("Sh0rt!", "at least 10 characters"),
    ("alllowercaseletters", "mix at least 3"),
    ("Alice-Secret-99", "user name"),
    ("Two\nLines-99x", "line breaks"),
    ("", "empty"),
])
def test_policy_names_each_broken_rule(password: str, problem: str) -> None:
    policy = PasswordPolicy()
    with pytest.raises(PasswordPolicyError) as info:
        policy.check(password, "alice")
    assert problem in str(info.value)
    assert info.value.field == "password"


def test_policy_accepts_good_password_and_can_be_relaxed() -> None:
    PasswordPolicy().check("Tr0ub4dor&3-x", "alice")
    PasswordPolicy(enforce=False).check("abc", "alice")
    with pytest.raises(PasswordPolicyError):
        PasswordPolicy(enforce=False).check("a\x00b", "alice")


def test_random_password_satisfies_policy_and_differs() -> None:
    policy = PasswordPolicy(min_length=20, min_classes=4)
    first, second = policy.random_password("bob"), policy.random_password("bob")
    policy.check(first, "bob")
    assert first != second and len(first) >= 20


def test_secret_box_round_trip_is_bound_to_its_row() -> None:
    box = SecretBox(b"k" * 32)
    blob = box.encrypt("Corr3ct-Horse", "mailbox:1")
    assert b"Corr3ct" not in blob
    assert box.decrypt(blob, "mailbox:1") == "Corr3ct-Horse"
    with pytest.raises(SecretError):
        box.decrypt(blob, "mailbox:2")
    with pytest.raises(SecretError):
        SecretBox(b"x" * 32).decrypt(blob, "mailbox:1")
    assert box.encrypt("same", "m") != box.encrypt("same", "m")  # fresh nonce each time
