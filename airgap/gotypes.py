"""What Go's encoding/json accepts for the fields of an image config that Docker and
containerd decode into typed structs: a value of another type there makes ``docker load``
(``json: cannot unmarshal ...``) or containerd fail, so such a config is refused on load
instead of being stored and shipped to a node that cannot read it.

Go's rules, as they apply here: ``null`` is always accepted (the field keeps its zero
value); a string field takes only a string, a bool only ``true``/``false``, an integer
only an integer literal in range (``1.0``, ``1e3`` and ``true`` are refused); a
``[]string`` takes an array of strings (or nulls); a ``map[string]string`` an object of
strings; a ``map[string]struct{}`` an object of objects; a ``time.Time`` an RFC 3339
string. Field names match in any case, so another spelling is refused (``one_spelling``).
"""

from __future__ import annotations

import re
from typing import Any

from .errors import FormatError

_INT64 = (-(1 << 63), (1 << 63) - 1)

# Docker's container.Config, as "config" and "container_config"; containerd's ImageConfig
# is a subset of it with the same types, except that Docker also takes a string for
# Cmd/Entrypoint/Shell and containerd does not: a list is what both read.
_STRINGS = ("Hostname", "Domainname", "User", "Image", "WorkingDir", "MacAddress", "StopSignal")
_BOOLS = ("AttachStdin", "AttachStdout", "AttachStderr", "Tty", "OpenStdin", "StdinOnce",
          "ArgsEscaped", "NetworkDisabled")
_STRING_LISTS = ("Env", "OnBuild", "Cmd", "Entrypoint", "Shell")
_SETS = ("ExposedPorts", "Volumes")
_MAPS = ("Labels",)
_INTS = ("StopTimeout",)
_HEALTH_INTS = ("Interval", "Timeout", "StartPeriod", "StartInterval", "Retries")
CONTAINER_FIELDS = (*_STRINGS, *_BOOLS, *_STRING_LISTS, *_SETS, *_MAPS, *_INTS, "Healthcheck")

# Go's time.RFC3339 as time.Parse reads it: a fraction after the seconds, '.' or ','.
_TIME = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:[.,]\d+)?(?:Z|[+-](\d\d):(\d\d))", re.ASCII)


def one_spelling(obj: dict[str, Any], fields: tuple[str, ...], what: str) -> None:
    """Refuse a key that is one of ``fields`` in another case (``LAYERS``, ``Digest``,
    ``ſize``): Go's encoding/json, which Docker, containerd and the registry read these
    documents with, takes it for the field, so they would read what airgap did not check."""
    folded = {f.casefold(): f for f in fields}
    for key in obj:
        name = folded.get(key.casefold())
        if name is not None and key != name:
            raise FormatError(f"{what}: field {key[:100]!r} is {name!r} spelled another way; Docker and "
                              f"containerd would read it as {name!r}, airgap refuses the ambiguity")


def is_go_time(text: str) -> bool:
    """Whether Go's ``time.Time`` reads ``text`` (RFC 3339, each field in its range)."""
    m = _TIME.fullmatch(text)
    if not m:
        return False
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    zh, zm = (int(g) if g else 0 for g in m.groups()[6:])
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)  # Go's calendar: year 0 leaps
    days = (31, 29 if leap else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
    return (1 <= month <= 12 and 1 <= day <= days[month - 1]
            and hour < 24 and minute < 60 and second < 60 and zh < 24 and zm < 60)


def check_time(value: Any, what: str, field: str) -> None:
    if value is not None and not (isinstance(value, str) and is_go_time(value)):
        raise FormatError(f"{what}: config field {field!r} must be an RFC 3339 time "
                          f"(2006-01-02T15:04:05Z), not {str(value)[:60]!r}")


def check_int(value: Any, what: str, field: str) -> None:
    if value is not None and not (type(value) is int and _INT64[0] <= value <= _INT64[1]):
        raise FormatError(f"{what}: config field {field!r} must be an integer, not {str(value)[:60]!r}")


def _kind(value: Any) -> str:
    return "null" if value is None else {bool: "a bool", int: "a number", float: "a number", str: "a string",
                                         list: "a list", dict: "an object"}.get(type(value), "a value")


def _bad(what: str, field: str, want: str, value: Any) -> FormatError:
    return FormatError(f"{what}: config field {field!r} must be {want}, not {_kind(value)} "
                       "(Docker and containerd could not read this image)")


def check_container_config(obj: dict[str, Any], what: str, prefix: str) -> None:
    """The fields of a ``config``/``container_config`` object, by Go's rules."""
    one_spelling(obj, CONTAINER_FIELDS, what)
    for name, value in obj.items():
        field = prefix + name
        if value is None:
            continue
        if name in _STRINGS and not isinstance(value, str):
            raise _bad(what, field, "a string", value)
        if name in _BOOLS and not isinstance(value, bool):
            raise _bad(what, field, "true or false", value)
        if name in _STRING_LISTS and not (isinstance(value, list)
                                          and all(v is None or isinstance(v, str) for v in value)):
            raise _bad(what, field, "a list of strings", value)
        if name in _SETS and not (isinstance(value, dict)
                                  and all(v is None or isinstance(v, dict) for v in value.values())):
            raise _bad(what, field, "an object of objects ({\"80/tcp\": {}})", value)
        if name in _MAPS and not (isinstance(value, dict)
                                  and all(v is None or isinstance(v, str) for v in value.values())):
            raise _bad(what, field, "an object of strings", value)
        if name in _INTS:
            check_int(value, what, field)
        if name == "Healthcheck":
            if not isinstance(value, dict):
                raise _bad(what, field, "an object", value)
            one_spelling(value, ("Test", *_HEALTH_INTS), what)
            test = value.get("Test")
            if test is not None and not (isinstance(test, list) and all(v is None or isinstance(v, str) for v in test)):
                raise _bad(what, f"{field}.Test", "a list of strings", test)
            for key in _HEALTH_INTS:
                check_int(value.get(key), what, f"{field}.{key}")
