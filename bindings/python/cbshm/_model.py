# SPDX-License-Identifier: MIT
"""The library's words as Python types: enums for the states, modes,
outcomes, refusals, event kinds and bulkhead states of cbshm.h (each member's value is the
word cbctl prints, so State.OPEN == "open"), and frozen dataclasses for a
breaker's snapshot and an event of the ring, built from the C structs."""

import dataclasses
import enum
from typing import Any, Dict, Optional, Union

from . import _native as n
from ._errors import CbshmError

__all__ = ["State", "Mode", "Outcome", "Refusal", "EventKind", "BulkheadState", "Snapshot",
           "Event"]


class _Word(str, enum.Enum):
    """A str enum whose str() and format() are its word, as in cbctl."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)


class State(_Word):
    """enum cbshm_state, in its order."""
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class Mode(_Word):
    """enum cbshm_mode, in its order."""
    NORMAL = "normal"
    FORCED_OPEN = "forced_open"
    FORCED_CLOSED = "forced_closed"
    DISABLED = "disabled"


class Refusal(_Word):
    """Why a call was refused (enum cbshm_refusal, without its "none")."""
    OPEN = "open"
    PROBES_BUSY = "probes_busy"
    FORCED_OPEN = "forced_open"
    BULKHEAD_FULL = "bulkhead_full"  # every bulkhead slot held (max_wait, if any, ran out)


class EventKind(_Word):
    """enum cbshm_event_kind, in its order."""
    STATE = "state"
    MODE = "mode"
    RESET = "reset"
    BULKHEAD = "bulkhead"


class BulkheadState(_Word):
    """enum cbshm_bulkhead_state, in its order: what a bulkhead event's
    old and new say. Full from its first rejection until a call is
    admitted after a second without one."""
    ADMITTING = "admitting"
    FULL = "full"


class Outcome(enum.IntEnum):
    """enum cbshm_outcome: what a recorded call says about the downstream."""
    SUCCESS = 0
    FAILURE = 1
    IGNORED = 2


# The C value of each member is its place in the C enum.
STATES = list(State)
MODES = list(Mode)
EVENT_KINDS = list(EventKind)
BULKHEAD_STATES = list(BulkheadState)
REFUSALS = {1: Refusal.OPEN, 2: Refusal.PROBES_BUSY, 3: Refusal.FORCED_OPEN,
            4: Refusal.BULKHEAD_FULL}


def _member(table: Any, value: int, what: str) -> Any:
    # Values come from shared memory that a worker can write: one outside
    # the enum is a scribbled segment, said as the library says it.
    if 0 <= value < len(table):
        return table[value]
    raise CbshmError(n.ECORRUPT, "%s: value %d" % (what, value))


def state_of(value: int, what: str = "state") -> State:
    s: State = _member(STATES, value, what)
    return s


def mode_of(value: int, what: str = "mode") -> Mode:
    m: Mode = _member(MODES, value, what)
    return m


def mode_value(mode: Union[Mode, str]) -> int:
    try:
        return MODES.index(Mode(mode))
    except ValueError:
        raise ValueError("mode must be one of %s, not %r"
                         % (", ".join(m.value for m in Mode), mode)) from None


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """One breaker as the library copied it (cbshm_snapshot): consistent,
    from one moment. Counters since the breaker was created or reset;
    *_ns times on CLOCK_MONOTONIC (cbshm_now_ns()); settings by their JSON
    key (README table) in the C struct's units: durations in ms,
    percentages as numbers, backoff_multiplier in hundredths, words as
    their index, fleet_open_hosts a count of hosts or, for a share of
    them, 0x80000000 (CBSHM_FLEET_SHARE) | hundredths. The bulkhead_* figures are all 0 for a breaker without
    a bulkhead: the limit in force (a concurrency_quota's, computed from
    the live workers), slots held now, calls it rejected (counted in
    rejections too), slots taken back from dead holders or after
    slot_timeout, and calls that waited (max_wait) and got in."""
    name: str
    index: int
    generation: int
    state: State
    mode: Mode
    settings: Dict[str, int]
    requests: int
    successes: int
    failures: int
    ignored: int
    rejections: int
    trips: int
    probes_reclaimed: int
    slow_calls: int
    consecutive_failures: int
    half_open_successes: int
    probes_in_flight: int
    failing_workers: int
    open_until_ns: int
    last_transition_ns: int
    time_in_state_ns: int
    current_open_ms: int
    window_calls: int
    window_failures: int
    window_slow_calls: int
    window_failure_rate: int
    window_slow_rate: int
    mode_until_ns: int
    bulkhead_limit: int
    bulkhead_in_flight: int
    bulkhead_rejections: int
    bulkhead_reclaimed: int
    bulkhead_waits: int
    # The cause of the mode's last change, a number of the library's causes
    # (cbshm.h): 6 operator, 8 mode_expired, 11 fleet (forced open by the fleet).
    mode_cause: int

    @property
    def taken_ns(self) -> int:
        """When the copy was taken (CLOCK_MONOTONIC)."""
        return self.last_transition_ns + self.time_in_state_ns

    @property
    def probe_due(self) -> bool:
        """Open, its open period over, no probe out: the next call is a
        probe (the hot path's own test; cbctl shows "open, probe due")."""
        return (self.mode is Mode.NORMAL and self.state is State.OPEN
                and self.open_until_ns <= self.taken_ns and self.probes_in_flight == 0)

    @property
    def retry_after(self) -> float:
        """Seconds, from when the copy was taken, until an open breaker
        admits a probe; 0.0 when it is not open or the time has come."""
        if self.state is not State.OPEN or self.open_until_ns <= self.taken_ns:
            return 0.0
        return (self.open_until_ns - self.taken_ns) / 1e9

    @classmethod
    def from_c(cls, s: "n.Snapshot") -> "Snapshot":
        figures = {field: int(getattr(s, field)) for field, _ in n.SNAPSHOT_FIGURES}
        name = s.name.decode()
        return cls(name=name, index=int(s.index), generation=int(s.generation),
                   state=state_of(s.state, "breaker %s: state" % name),
                   mode=mode_of(s.mode, "breaker %s: mode" % name),
                   settings=n.setting_values(s.settings), **figures)


@dataclasses.dataclass(frozen=True)
class Event:
    """One record of the segment's event ring (cbshm_events_read): a
    state change (old, new: State), a mode change (Mode), a reset (old:
    the State before, new: State.CLOSED), or a bulkhead that started or
    stopped rejecting calls (BulkheadState; cause "bulkhead"). cause is the library's word
    ("failures", "probe_failed", "operator", ...: cbctl(1) EVENTS)."""
    seq: int
    time_ns: int
    wall_time: Optional[float]  # seconds since the epoch; None if the writer did not stamp it
    pid: int
    kind: EventKind
    name: str
    old: Union[State, Mode, BulkheadState]
    new: Union[State, Mode, BulkheadState]
    cause: str

    @classmethod
    def from_c(cls, e: "n.Event") -> "Event":
        what = "event %d" % e.seq
        kind: EventKind = _member(EVENT_KINDS, e.kind, what + ": kind")
        old: Union[State, Mode, BulkheadState]
        new: Union[State, Mode, BulkheadState]
        if kind is EventKind.MODE:
            old, new = mode_of(e.old, what), mode_of(e.new, what)
        elif kind is EventKind.BULKHEAD:
            old = _member(BULKHEAD_STATES, e.old, what)
            new = _member(BULKHEAD_STATES, e.new, what)
        else:
            old, new = state_of(e.old, what), state_of(e.new, what)
        return cls(seq=int(e.seq), time_ns=int(e.time_ns),
                   wall_time=e.wall_ns / 1e9 if e.wall_ns else None, pid=int(e.pid), kind=kind,
                   name=e.name.decode(), old=old, new=new,
                   cause=str(n.cbshm_event_cause_name(e.cause).decode()))


# The dataclass spells out struct cbshm_snapshot's figures for type
# checkers; _native.SNAPSHOT_FIGURES is the layout. They must agree.
assert [f.name for f in dataclasses.fields(Snapshot)][6:] == [f for f, _ in n.SNAPSHOT_FIGURES]
