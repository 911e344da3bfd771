"""A separate process that holds a RocksStore open read-write, like the operator.

Usage: ``python store_holder.py PATH COUNT``. Creates the store, saves Agents
``0..COUNT-1`` and prints ``ready``. Then, for every line ``save N`` on stdin,
saves Agent N and prints ``saved``. Closes the store when stdin closes.
Tests use it to open the store read-only / as a secondary / with the CLI
while another process is the writer.
"""

from __future__ import annotations

import sys

from store_factories import agent

from stigmer_operator.store.rocks import RocksStore


def main(path: str, count: int) -> None:
    store = RocksStore.open(path, create=True)
    for number in range(count):
        store.save(agent(number, org=f"org-{number % 3}"))
    print("ready", flush=True)
    for line in sys.stdin:
        command, _, argument = line.strip().partition(" ")
        if command == "save":
            store.save(agent(int(argument), org=f"org-{int(argument) % 3}"))
            print("saved", flush=True)
    store.close()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
