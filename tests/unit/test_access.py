"""Pure credential helpers: IP allow-lists and key parsing."""

from __future__ import annotations

import pytest

from libs.platform.access import _ip_allowed, _new_secret, _split


@pytest.mark.parametrize(
    ("remote", "allow", "allowed"),
    [
        ("10.1.2.3", ["10.0.0.0/8"], True),
        ("11.1.2.3", ["10.0.0.0/8"], False),
        ("192.0.2.7", ["192.0.2.7"], True),
        ("192.0.2.8", ["192.0.2.7"], False),
        ("192.0.2.8", ["192.0.2.7", "192.0.2.0/28"], True),
        ("192.0.2.200", ["192.0.2.7/24"], True),  # host bits are tolerated
        ("2001:db8::1", ["2001:db8::/32"], True),
        ("2001:db9::1", ["2001:db8::/32"], False),
        ("10.1.2.3", ["2001:db8::/32"], False),  # v4 address, v6 network: no match, no error
        ("2001:db8::1", ["10.0.0.0/8"], False),
        ("10.1.2.3", [], False),
    ],
)
def test_ip_allowed(remote: str, allow: list[str], allowed: bool) -> None:
    assert _ip_allowed(remote, allow) is allowed


@pytest.mark.parametrize("remote", [None, "", "not-an-ip", "10.0.0", "10.0.0.1/8", "999.1.1.1"])
def test_garbage_remote_address_is_refused(remote: str | None) -> None:
    assert _ip_allowed(remote, ["0.0.0.0/0", "::/0"]) is False


@pytest.mark.parametrize("entry", ["not-a-network", "10.0.0.0/33"])
def test_garbage_allow_entry_raises(entry: str) -> None:
    # create_api_key validates entries up front with the same parser, so this cannot be stored.
    with pytest.raises(ValueError):
        _ip_allowed("10.0.0.1", [entry])


@pytest.mark.parametrize(
    ("key", "kind", "prefix"),
    [
        ("dsk_abcd1234_secretpart", "k", "abcd1234"),
        ("dsk_abcd1234_se_cr_et", "k", "abcd1234"),
        ("dsk_abcd1234___", "k", "abcd1234"),
        ("dst_0badf00d_tok-en_x", "t", "0badf00d"),
    ],
)
def test_split_well_formed(key: str, kind: str, prefix: str) -> None:
    assert _split(key, kind) == prefix


@pytest.mark.parametrize(
    ("key", "kind"),
    [
        ("", "k"),
        ("dsk", "k"),
        ("dsk_abcd1234", "k"),
        ("dsk_abc_secret", "k"),
        ("dsk_abcd12345_secret", "k"),
        ("dst_abcd1234_secret", "k"),  # an agent token is not an API key
        ("dsk_abcd1234_secret", "t"),
        ("DSK_abcd1234_secret", "k"),
        ("xdsk_abcd1234_secret", "k"),
        ("Bearer dsk_abcd1234_secret", "k"),
    ],
)
def test_split_malformed(key: str, kind: str) -> None:
    assert _split(key, kind) is None


@pytest.mark.parametrize("kind", ["k", "t"])
def test_generated_keys_split_back_to_their_prefix(kind: str) -> None:
    for _ in range(50):  # token_urlsafe secrets often contain "_" themselves
        key, prefix, digest = _new_secret(kind)
        assert _split(key, kind) == prefix
        assert len(digest) == 64
