"""The test broker's cluster id: the storage tool reads an id starting with '-' as an option,
which failed one broker start in 64 before random_cluster_id drew again."""

from __future__ import annotations

import base64

from tests.support.kafka_broker import random_cluster_id


def test_cluster_ids_are_16_bytes_of_base64url_and_never_look_like_an_option() -> None:
    ids = [random_cluster_id() for _ in range(2000)]  # ~31 would start with '-' otherwise
    assert not [i for i in ids if i.startswith("-")]
    assert all(len(base64.urlsafe_b64decode(i + "==")) == 16 for i in ids)
    assert len(set(ids)) == len(ids)
