# SPDX-License-Identifier: MIT
"""Making and removing segments: apply() as `cbctl apply`, destroy()."""

import ctypes
import os
from typing import Optional, Union

from . import _native as n
from ._errors import ConfigError, check

__all__ = ["apply", "destroy"]


def apply(path: "Union[str, os.PathLike[str], None]" = None, segment: Optional[str] = None, *,
          yaml: Union[str, bytes, None] = None) -> int:
    """Creates or reconciles a segment from YAML, as `cbctl apply`, and
    returns the number of changes. The YAML is the file at `path` (a str or
    os.PathLike), or the text `yaml=`; a str `path` with a newline in it is
    taken as YAML text too. The segment is `segment` if given, else the
    YAML's `segment`, else $CBSHM_SEGMENT, else /cbshm (cbshm_config_segment,
    the rule every tool follows). Raises ConfigError (FILE:LINE:COL, the
    label "<yaml>" for text) for rejected YAML, CbshmError or OSError for
    the rest."""
    if (path is None) == (yaml is None):
        raise TypeError("apply() wants a path or yaml=, not both or neither")
    if yaml is None and isinstance(path, str) and "\n" in path:
        yaml, path = path, None
    cfg = n.vp()
    diag = n.Diag()
    if yaml is not None:
        if not isinstance(yaml, (str, bytes)):
            raise TypeError("yaml= wants str or bytes, not %s" % type(yaml).__name__)
        text = yaml.encode() if isinstance(yaml, str) else yaml
        what = "<yaml>"
        rc = n.cbshm_config_load_string(text, len(text), what.encode(), ctypes.byref(cfg),
                                        ctypes.byref(diag))
    else:
        assert path is not None
        what = os.fspath(path)
        rc = n.cbshm_config_load_file(os.fsencode(what), ctypes.byref(cfg), ctypes.byref(diag))
    if rc == n.ECONFIG:
        # The C side cuts long keys and values at a byte count, maybe inside
        # a UTF-8 character: show what is left rather than fail to decode.
        def text_of(field: bytes) -> str:
            return field.decode("utf-8", "replace")
        raise ConfigError(text_of(diag.file), int(diag.line), int(diag.column),
                          text_of(diag.key), text_of(diag.message))
    check(rc, what)
    changes = ctypes.c_uint()
    given = segment.encode() if segment else None
    try:
        name = n.cbshm_config_segment(cfg, given).decode("utf-8", "replace")
        rc = n.cbshm_apply(cfg, given, 0, None, None, ctypes.byref(changes))
    finally:
        n.cbshm_config_free(cfg)
    check(rc, "segment %s" % name)
    return int(changes.value)


def destroy(segment: str) -> None:
    """Removes the segment's name (cbshm_destroy); processes attached to it
    see it retired (CBSHM_ERETIRED) and a new one may be made."""
    check(n.cbshm_destroy(segment.encode()), "segment " + segment)
