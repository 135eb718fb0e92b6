"""A writer process for concurrency and crash tests: records commands, prints receipts.

Each acknowledged command prints one JSON line ``{"index": …, "entry_hash": …}`` and flushes
it, so a parent that kills this process knows exactly which writes were acknowledged.
"""

from __future__ import annotations

import argparse
import sys

import orjson

from ledger.actors import Actor
from ledger.application import LedgerApplication
from ledger.errors import ConcurrentWriteError


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--name", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--shared-process", required=True)
    args = parser.parse_args()
    app = LedgerApplication(create_tables=False)
    actor = Actor(args.name, "recorder", "")

    def acknowledge(receipt_index: int, entry_hash: str) -> None:
        sys.stdout.write(orjson.dumps({"index": receipt_index, "entry_hash": entry_hash}).decode())
        sys.stdout.write("\n")
        sys.stdout.flush()

    own = app.start_process(title=f"Process of {args.name}", actor=actor)
    acknowledge(own.index, own.entry_hash)
    for n in range(1, args.count):
        if n % 3 == 0:
            # Contended: every writer adds strands to the same shared process.
            while True:
                try:
                    r = app.add_strand(
                        args.shared_process,
                        strand_id=f"{args.name}-{n}",
                        title=f"Strand {n}",
                        actor=actor,
                    )
                    break
                except ConcurrentWriteError:
                    continue
        elif n % 3 == 1:
            r = app.register_organisation(
                name=f"Org {args.name} {n}", org_kind="public_body", actor=actor
            )
        else:
            r = app.start_phase(own.subject_id, phase_id=f"p{n}", title=f"Phase {n}", actor=actor)
        acknowledge(r.index, r.entry_hash)
    app.close()


if __name__ == "__main__":
    main()
