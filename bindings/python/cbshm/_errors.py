# SPDX-License-Identifier: MIT
"""What the binding raises. The C library answers with one int: 0, one of
its own codes (below -30000: CBSHM_E*), or -errno. Its own codes become a
CbshmError carrying the code; -errno becomes the OSError subclass Python
has for that errno (-ENOENT: FileNotFoundError, -EACCES: PermissionError),
as os.open() would raise it."""

import os
from typing import TYPE_CHECKING, Any, Union

from . import _native as n

if TYPE_CHECKING:
    from ._model import Refusal

__all__ = ["CbshmError", "ConfigError", "CircuitOpenError", "BulkheadFullError", "error_for",
           "check"]


class CbshmError(Exception):
    """A libcbshm call failed with one of the library's own codes.

    .code is the C code (CBSHM_ENOSEG is -30801), .errname its symbolic
    name ("CBSHM_ENOSEG"), .what what the call was about ("segment
    /cbshm"), and the message is the library's cbshm_strerror()."""

    def __init__(self, code: int, what: str = "") -> None:
        self.code = code
        self.errname = str(n.cbshm_errname(code).decode())
        self.what = what
        message = str(n.cbshm_strerror(code).decode())
        super().__init__("%s: %s" % (what, message) if what else message)

    def __reduce__(self) -> Any:
        # pickle and copy (multiprocessing, concurrent.futures hand a
        # worker's exception over so) rebuild from the constructor's own
        # arguments, not from .args, which holds the message.
        return (CbshmError, (self.code, self.what))


class ConfigError(CbshmError):
    """apply() refused a YAML file or text: .file, .line and .column
    (1-based) say where, .key the key path ("breakers[2].open_timeout"),
    .message what is wrong; str() is "FILE:LINE:COL: KEY: MESSAGE"."""

    def __init__(self, file: str, line: int, column: int, key: str, message: str) -> None:
        super().__init__(n.ECONFIG)
        self.file, self.line, self.column, self.key, self.message = file, line, column, key, message
        self.args = ("%s:%d:%d: %s: %s" % (file, line, column, key, message),)

    def __reduce__(self) -> Any:
        return (ConfigError, (self.file, self.line, self.column, self.key, self.message))


class CircuitOpenError(CbshmError):
    """The breaker refused the call; the downstream was not called.

    .name is the breaker's name; .reason why it refuses (a Refusal:
    "open", "probes_busy" - half-open with every probe taken -,
    "forced_open", or "bulkhead_full", raised as its subclass
    BulkheadFullError); .retry_after the seconds until it may admit a call (0
    when the library cannot say: forced open with no end, or it admits
    calls again already). Read at the rejection, without the table lock.
    .code is CBSHM_EREJECTED, as for every CbshmError."""

    def __init__(self, name: str, reason: "Refusal", retry_after: float) -> None:
        super().__init__(n.EREJECTED, "breaker " + name)
        self.name = name
        self.reason = reason
        self.retry_after = retry_after

    def __reduce__(self) -> Any:
        return (CircuitOpenError, (self.name, self.reason, self.retry_after))


class BulkheadFullError(CircuitOpenError):
    """The breaker's bulkhead had every slot held (max_concurrent_calls
    or concurrency_quota calls in flight, host-wide) and its max_wait, if
    any, ran out; the downstream was not called. A CircuitOpenError with
    .reason Refusal.BULKHEAD_FULL, so `except CircuitOpenError` catches it
    too; .retry_after is 0.0 (a slot frees whenever a call in flight
    ends)."""

    def __init__(self, name: str, retry_after: float = 0.0) -> None:
        from ._model import Refusal  # _model imports this module
        super().__init__(name, Refusal.BULKHEAD_FULL, retry_after)

    def __reduce__(self) -> Any:
        return (BulkheadFullError, (self.name, self.retry_after))


def error_for(code: int, what: str = "") -> Union[CbshmError, OSError]:
    """The exception for a nonzero C code (not raised)."""
    if n.ERRNO_MIN <= code < 0:
        number = -code
        # OSError(errno, ...) constructs the matching subclass itself.
        return OSError(number, os.strerror(number), what) if what else OSError(
            number, os.strerror(number))
    return CbshmError(code, what)


def check(code: int, what: str) -> None:
    if code != 0:
        raise error_for(code, what)
