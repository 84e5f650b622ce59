# SPDX-License-Identifier: MIT
"""Not run: checked by `mypy --strict` (python.types_check_with_mypy_strict)
as a user's code would use the package, so that the hints the package
ships (py.typed) say what the API does."""

import asyncio
from typing import List, Optional

import cbshm


def sync_use(segment: cbshm.Segment) -> Optional[int]:
    api: cbshm.Breaker = segment.breaker("api", failure_exceptions=(OSError,))

    @api
    def fetch(x: int) -> int:
        return x * 2

    doubled: int = fetch(21)
    with api:
        pass
    ticket: cbshm.Ticket = api.allow()
    ticket.record(cbshm.Outcome.SUCCESS, duration=0.01)
    snap: Optional[cbshm.Snapshot] = api.snapshot()
    state: Optional[cbshm.State] = api.state
    if snap is not None and state is cbshm.State.OPEN and snap.probe_due:
        return snap.trips
    try:
        api.call(fetch, 1)
    except cbshm.BulkheadFullError as e:
        full: cbshm.Refusal = e.reason
        print(e.name, full, e.retry_after + 1.0)
    except cbshm.CircuitOpenError as e:
        reason: cbshm.Refusal = e.reason
        print(e.name, reason, e.retry_after + 1.0, e.code)
    listing: List[cbshm.Snapshot] = segment.breakers()
    for event in segment.events(start="now", follow=True, timeout=0.1):
        kind: cbshm.EventKind = event.kind
        if kind is cbshm.EventKind.BULKHEAD and event.new is cbshm.BulkheadState.FULL:
            print("full", snap.bulkhead_in_flight if snap is not None else 0)
        print(kind, event.old, event.new, event.cause, event.seq + len(listing))
    remove = segment.on_state_change(lambda ev: print(ev.name))
    remove()
    segment.set_mode("api", cbshm.Mode.FORCED_OPEN, for_seconds=1.5)
    return doubled


async def async_use() -> str:
    api = cbshm.open_breaker("/cbshm", "api", failure_exceptions=(ConnectionError,))

    @api
    async def fetch(url: str) -> str:
        await asyncio.sleep(0)
        return url

    async with api:
        pass
    return await fetch("x")


def provision() -> int:
    changes: int = cbshm.apply(yaml="breakers:\n  - name: api\n", segment="/cbshm-typed")
    cbshm.destroy("/cbshm-typed")
    return changes + len(cbshm.version())
