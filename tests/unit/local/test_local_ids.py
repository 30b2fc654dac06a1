"""The local broker's cluster id must never look like a command-line option."""

from rendezvous.local.kafka import _cluster_id


def test_cluster_ids_never_start_with_a_dash() -> None:
    ids = [_cluster_id() for _ in range(5000)]  # ~78 would start with '-' by chance
    assert not [i for i in ids if i.startswith("-")]
    assert len(set(ids)) == len(ids) and all(len(i) == 22 for i in ids)
