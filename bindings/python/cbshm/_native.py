# SPDX-License-Identifier: MIT
"""The C library as ctypes sees it: where it is loaded from, the plain-data
structs of cbshm.h laid out field for field, and the function signatures.
Nothing here is API; cbshm/__init__.py is."""

import ctypes
import os
from typing import Any, Dict, List, Tuple

# The installed library's soname (package libcbshm1, or `make install`):
# dlopen finds it as it finds any program's libraries, through
# LD_LIBRARY_PATH and ld.so.cache.
SONAME = "libcbshm.so.1"


def _load() -> Tuple[ctypes.CDLL, str]:
    """The library: the file CBSHM_LIBRARY names, when set, else the
    installed soname. Nothing else is searched, a build tree least of all:
    an installed package must not pick up whatever a checkout beside it
    happens to hold, and the tests and a source tree say which library
    they mean with CBSHM_LIBRARY. An override that does not load is an
    error, not a reason to try another copy behind the user's back."""
    override = os.environ.get("CBSHM_LIBRARY")
    if override:
        try:
            return ctypes.CDLL(override), override
        except OSError as e:
            raise ImportError("cbshm: cannot load CBSHM_LIBRARY=%s: %s" % (override, e)) from e
    try:
        return ctypes.CDLL(SONAME), SONAME
    except OSError as e:
        raise ImportError(
            "cbshm: cannot load libcbshm: tried %s through the loader's search path "
            "(ld.so.cache, LD_LIBRARY_PATH): %s. Install the libcbshm1 package (or the "
            "library with `make install` and `ldconfig`), or set CBSHM_LIBRARY to the path "
            "of libcbshm.so.1" % (SONAME, e)) from e


lib, library_path = _load()

u32, u64, c_int = ctypes.c_uint32, ctypes.c_uint64, ctypes.c_int


class Settings(ctypes.Structure):
    """struct cbshm_settings, opaque here: its fields are read through the
    library's settings table (setting_values), so this file keeps no copy
    of the list of settings."""
    _fields_ = [("opaque", u64 * 20)]


class Setting(ctypes.Structure):
    """struct cbshm_setting: one row of the settings table."""
    _fields_ = [("key", ctypes.c_char_p), ("json_key", ctypes.c_char_p),
                ("help", ctypes.c_char_p), ("choices", ctypes.POINTER(ctypes.c_char_p)),
                ("type", c_int), ("policies", ctypes.c_uint), ("windows", ctypes.c_uint),
                ("decisions", ctypes.c_uint),
                ("min", u64), ("max", u64), ("default", u64), ("reserved", u64 * 4)]


# struct cbshm_snapshot's figures, in its order: (field, ctypes type). The
# Snapshot dataclass (_model.py) takes its fields from this one list.
SNAPSHOT_FIGURES = [
    ("requests", u64), ("successes", u64), ("failures", u64), ("ignored", u64),
    ("rejections", u64), ("trips", u64), ("probes_reclaimed", u64), ("slow_calls", u64),
    ("consecutive_failures", u32), ("half_open_successes", u32),
    ("probes_in_flight", u32), ("failing_workers", u32),
    ("open_until_ns", u64), ("last_transition_ns", u64), ("time_in_state_ns", u64),
    ("current_open_ms", u64), ("window_calls", u64), ("window_failures", u64),
    ("window_slow_calls", u64), ("window_failure_rate", u32), ("window_slow_rate", u32),
    ("mode_until_ns", u64),
    ("bulkhead_limit", u32), ("bulkhead_in_flight", u32), ("bulkhead_rejections", u64),
    ("bulkhead_reclaimed", u64), ("bulkhead_waits", u64),
    ("mode_cause", u32),
]


class Snapshot(ctypes.Structure):
    _fields_ = ([("name", ctypes.c_char * 64), ("index", u32), ("generation", u32),
                 ("state", c_int), ("mode", c_int), ("settings", Settings)]
                + SNAPSHOT_FIGURES + [("reserved0", u32), ("reserved", u64 * 10)])


class Ticket(ctypes.Structure):
    _fields_ = [("ctl", u64), ("slot", ctypes.c_void_p), ("token", u64), ("start_ns", u64),
                ("flags", u32), ("lease", u32), ("bulk_word", u64), ("bulk_slot", u32),
                ("reserved", u32)]


class Rejection(ctypes.Structure):
    _fields_ = [("why", c_int), ("retry_after_ns", u64), ("reserved", u64 * 2)]


class Event(ctypes.Structure):
    _fields_ = [("seq", u64), ("time_ns", u64), ("pid", u32), ("kind", c_int),
                ("old", c_int), ("new", c_int), ("cause", c_int),
                ("name", ctypes.c_char * 64), ("wall_ns", u64), ("reserved", u64 * 3)]


class Diag(ctypes.Structure):
    _fields_ = [("file", ctypes.c_char * 256), ("line", ctypes.c_uint),
                ("column", ctypes.c_uint), ("key", ctypes.c_char * 64),
                ("message", ctypes.c_char * 256), ("reserved", u64 * 4)]


# The layouts above must be the C ones; a wrong one would misread memory.
# Checked at import, under python -O too (an assert would be gone), and
# field for field against the C compiler's offsets by
# test_the_mirrored_structs_are_cbshm_h_field_for_field.
for _struct, _size in ((Settings, 160), (Snapshot, 512), (Ticket, 56), (Rejection, 32),
                       (Event, 136), (Diag, 616), (Setting, 104)):
    if ctypes.sizeof(_struct) != _size:
        raise ImportError("cbshm: struct %s is %d bytes here and %d in C"
                          % (_struct.__name__, ctypes.sizeof(_struct), _size))

P = ctypes.POINTER
vp = ctypes.c_void_p
FOREACH_FN = ctypes.CFUNCTYPE(c_int, vp, P(Snapshot))


def _sig(name: str, restype: Any, *argtypes: Any) -> Any:
    f = getattr(lib, name)
    f.restype = restype
    f.argtypes = list(argtypes)
    return f


cbshm_version = _sig("cbshm_version", ctypes.c_char_p)
cbshm_strerror = _sig("cbshm_strerror", ctypes.c_char_p, c_int)
cbshm_errname = _sig("cbshm_errname", ctypes.c_char_p, c_int)
cbshm_open = _sig("cbshm_open", c_int, ctypes.c_char_p, ctypes.c_uint, P(vp))
cbshm_close = _sig("cbshm_close", None, vp)
cbshm_breaker_get = _sig("cbshm_breaker_get", c_int, vp, ctypes.c_char_p, P(vp))
cbshm_breaker_release = _sig("cbshm_breaker_release", None, vp)
cbshm_breaker_error = _sig("cbshm_breaker_error", c_int, vp)
cbshm_allow = _sig("cbshm_allow", c_int, vp, P(Ticket))
cbshm_record = _sig("cbshm_record", c_int, vp, P(Ticket), c_int)
cbshm_record_retry_after = _sig("cbshm_record_retry_after", c_int, vp, P(Ticket), c_int, u64)
cbshm_record_timed = _sig("cbshm_record_timed", c_int, vp, P(Ticket), c_int, u64)
cbshm_breaker_rejection = _sig("cbshm_breaker_rejection", c_int, vp, P(Rejection))
cbshm_snapshot = _sig("cbshm_snapshot", c_int, vp, ctypes.c_char_p, P(Snapshot))
cbshm_foreach = _sig("cbshm_foreach", c_int, vp, FOREACH_FN, vp)
cbshm_set_mode = _sig("cbshm_set_mode", c_int, vp, ctypes.c_char_p, c_int)
cbshm_set_mode_for = _sig("cbshm_set_mode_for", c_int, vp, ctypes.c_char_p, c_int, u64)
cbshm_reset = _sig("cbshm_reset", c_int, vp, ctypes.c_char_p)
cbshm_events_read = _sig("cbshm_events_read", c_int, vp, P(u64), P(Event), ctypes.c_size_t,
                         P(ctypes.c_size_t), P(u64))
cbshm_event_cause_name = _sig("cbshm_event_cause_name", ctypes.c_char_p, c_int)
cbshm_now_ns = _sig("cbshm_now_ns", u64)
cbshm_default_segment = _sig("cbshm_default_segment", ctypes.c_char_p)
cbshm_config_load_file = _sig("cbshm_config_load_file", c_int, ctypes.c_char_p, P(vp), P(Diag))
cbshm_config_load_string = _sig("cbshm_config_load_string", c_int, ctypes.c_char_p,
                                ctypes.c_size_t, ctypes.c_char_p, P(vp), P(Diag))
cbshm_config_segment = _sig("cbshm_config_segment", ctypes.c_char_p, vp, ctypes.c_char_p)
cbshm_config_free = _sig("cbshm_config_free", None, vp)
cbshm_apply = _sig("cbshm_apply", c_int, vp, ctypes.c_char_p, ctypes.c_uint, vp, vp,
                   P(ctypes.c_uint))
cbshm_setting_at = _sig("cbshm_setting_at", ctypes.POINTER(Setting), ctypes.c_size_t)
cbshm_setting_get = _sig("cbshm_setting_get", u64, P(Settings), ctypes.POINTER(Setting))
cbshm_destroy = _sig("cbshm_destroy", c_int, ctypes.c_char_p)

# The library's own codes (cbshm.h, CBSHM_ERRNO_MAP): the ones this
# package tests for. The library's codes are below -30000; above that, a
# negative code is -errno.
EREJECTED = -30800
ENOSEG = -30801
ECORRUPT = -30806
ENOBREAKER = -30808
ECONFIG = -30812
EINVAL = -30816
ERRNO_MIN = -4095
FAIL_CLOSED = 0x1
READ_ONLY = 0x2
LATE = 0x4  # CBSHM_LATE: attach when the segment and breaker appear
EVENTS_NOW = (1 << 64) - 1  # CBSHM_EVENTS_NOW


def _table() -> List[Any]:
    rows: List[Any] = []
    i = 0
    while True:
        d = cbshm_setting_at(i)
        if not d:
            return rows
        rows.append(d)
        i += 1


SETTINGS = _table()  # the library's settings table, in its order


def setting_values(settings: Settings) -> Dict[str, int]:
    """A struct Settings as {json_key: value}: durations in ms, percentages
    as numbers, backoff_multiplier in hundredths, words as their index,
    fleet_open_hosts a count or CBSHM_FLEET_SHARE | hundredths - the C
    struct's own fields and units."""
    return {d.contents.json_key.decode(): int(cbshm_setting_get(ctypes.byref(settings), d))
            for d in SETTINGS}
