"""Envelope encryption, key wrapping and blind indexes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ehr.crypto.blind import BlindIndex, fold_text, normalize_identifier
from ehr.crypto.envelope import DataKey, IntegrityFailure, generate_data_key, resource_aad
from ehr.crypto.keyring import LocalMasterKeyProvider, UnwrapError, new_keyring


def test_seal_open_and_binding():
    key = DataKey("k1", generate_data_key())
    aad = resource_aad("Patient", "p1", 1, "k1")
    blob = key.seal(b"secret", aad)
    assert key.open(blob, aad) == b"secret"
    assert key.seal(b"secret", aad) != blob  # fresh nonce every time
    for other in (resource_aad("Patient", "p2", 1, "k1"), resource_aad("Patient", "p1", 2, "k1"), resource_aad("Observation", "p1", 1, "k1")):
        with pytest.raises(IntegrityFailure):
            key.open(blob, other)
    with pytest.raises(IntegrityFailure):
        DataKey("k1", generate_data_key()).open(blob, aad)


def test_nonces_do_not_repeat():
    key = DataKey("k", generate_data_key())
    nonces = {key.seal(b"x", b"a")[1:13] for _ in range(20000)}
    assert len(nonces) == 20000


def test_master_key_wraps_with_aad():
    provider = LocalMasterKeyProvider(new_keyring(development=False))
    kid, wrapped = provider.wrap(b"k" * 32, b"compartment-a")
    assert provider.unwrap(kid, wrapped, b"compartment-a") == b"k" * 32
    with pytest.raises(UnwrapError):
        provider.unwrap(kid, wrapped, b"compartment-b")


def test_fold_text_vietnamese():
    assert fold_text("Nguyễn  Thị Ánh") == "nguyen thi anh"
    assert fold_text("ĐẶNG Đức") == "dang duc"
    assert fold_text("Hoà") == fold_text("Hòa") == "hoa"


@given(st.text())
def test_fold_text_is_idempotent_and_accentless(value):
    folded = fold_text(value)
    assert fold_text(folded) == folded
    assert folded == folded.casefold()


@given(st.text(alphabet="0123456789 ABCabc", min_size=1))
def test_normalize_identifier_ignores_spaces_and_case(value):
    assert normalize_identifier(value) == normalize_identifier(value.lower().replace(" ", "  "))


def test_blind_index_is_keyed_and_per_purpose():
    a, b = BlindIndex(b"a" * 32), BlindIndex(b"b" * 32)
    assert a.token("Patient.identifier", "079188012345") != b.token("Patient.identifier", "079188012345")
    assert a.token("Patient.identifier", "079188012345") != a.token("Coverage.identifier", "079188012345")
    assert len(a.token("x", "y")) == 16
