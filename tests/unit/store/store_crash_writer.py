"""A process that writes to a RocksStore until it is killed.

Usage: ``python store_crash_writer.py PATH WRITES``. Performs WRITES store
writes (saves with slug/org/name changes, re-pointed instances, deletes,
ownership records), chosen by a seeded generator so every run is the same.
After every 50 writes it prints the last change-log sequence it was given,
so the killer knows which writes were acknowledged.
"""

from __future__ import annotations

import random
import sys

from store_factories import agent, instance

from stigmer_operator.api.kinds import Kind
from stigmer_operator.api.v1 import store_pb2
from stigmer_operator.store.rocks import RocksStore

POOL = 200
ORGS = ["acme", "globex", "initech", "umbrella", "hooli"]


def write(store: RocksStore, rng: random.Random, step: int) -> int | None:
    """One random write; returns the sequence it logged, if any."""
    number = rng.randrange(POOL)
    org = rng.choice(ORGS)
    roll = rng.random()
    if roll < 0.1:
        entry = store.delete(Kind.AGENT, f"agt-{number:04d}")
    elif roll < 0.2:
        entry = store.delete(Kind.AGENT_INSTANCE, f"ain-{number:04d}")
    elif roll < 0.55:
        slug = f"agent-{number}-{rng.randrange(3)}"
        entry = store.save(agent(number, org=org, slug=slug, name=slug, generation=step))
        if entry is not None and rng.random() < 0.5:
            store.put_ownership(store_pb2.OwnershipRecord(agent_id=entry.id, org=org, name=slug))
    else:
        agent_id = f"agt-{rng.randrange(POOL):04d}"
        entry = store.save(instance(number, agent_id, org=org, generation=step))
    return entry.sequence if entry is not None else None


def main(path: str, writes: int) -> None:
    rng = random.Random(20240601)
    store = RocksStore.open(path, create=True)
    last = 0
    for step in range(1, writes + 1):
        sequence = write(store, rng, step)
        last = sequence if sequence is not None else last
        if step % 50 == 0:
            print(last, flush=True)
    store.close()
    print("done", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
