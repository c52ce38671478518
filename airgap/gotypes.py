"""What Go's encoding/json accepts, for the documents Docker and containerd decode into
typed structs (manifests, indexes, descriptors, platforms, image configs): a value of
another type there makes ``docker load`` (``json: cannot unmarshal ...``) or containerd
fail, so such a document is refused on load instead of being stored and shipped to a node
that cannot read it.

Go's rules, as they apply here: ``null`` is always accepted (the field keeps its zero
value); a string field takes only a string, a bool only ``true``/``false``, an integer
only an integer literal in range (``1.0``, ``1e3`` and ``true`` are refused); a
``[]string`` takes an array of strings (or nulls); a ``map[string]string`` an object of
strings; a ``map[string]struct{}`` an object of objects; a ``time.Time`` an RFC 3339
string; a ``[]byte`` base64 text. Field names match in any case, so another spelling is
refused (``one_spelling``).
"""

from __future__ import annotations

import re

from .errors import FormatError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable

_INT64 = (-(1 << 63), (1 << 63) - 1)

# Go's time.RFC3339 as time.Parse reads it: a fraction after the seconds, '.' or ','.
_TIME = r"(?a)(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:[.,]\d+)?(?:Z|[+-](\d\d):(\d\d))"


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
    m = re.fullmatch(_TIME, text)
    if not m:
        return False
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    zh, zm = (int(g) if g else 0 for g in m.groups()[6:])
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)  # Go's calendar: year 0 leaps
    days = (31, 29 if leap else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
    return (1 <= month <= 12 and 1 <= day <= days[month - 1]
            and hour < 24 and minute < 60 and second < 60 and zh < 24 and zm < 60)


_BASE64 = r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?"

_KINDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "string": (lambda v: isinstance(v, str), "a string"),
    "bool": (lambda v: isinstance(v, bool), "true or false"),
    "int": (lambda v: type(v) is int and _INT64[0] <= v <= _INT64[1], "an integer"),
    "object": (lambda v: isinstance(v, dict), "an object"),
    "list": (lambda v: isinstance(v, list), "a list"),
    "strings": (lambda v: isinstance(v, list) and all(x is None or isinstance(x, str) for x in v),
                "a list of strings"),
    "string map": (lambda v: isinstance(v, dict) and all(x is None or isinstance(x, str) for x in v.values()),
                   "an object of strings"),
    "set": (lambda v: isinstance(v, dict) and all(x is None or isinstance(x, dict) for x in v.values()),
            "an object of objects ({\"80/tcp\": {}})"),
    "time": (lambda v: isinstance(v, str) and is_go_time(v), "an RFC 3339 time (2006-01-02T15:04:05Z)"),
    "base64": (lambda v: isinstance(v, str) and re.fullmatch(_BASE64, v) is not None, "base64 text"),
}


def _kind(value: Any) -> str:
    return "null" if value is None else {bool: "a bool", int: "a number", float: "a number", str: "a string",
                                         list: "a list", dict: "an object"}.get(type(value), "a value")


def check_fields(obj: dict[str, Any], spec: dict[str, str], what: str, prefix: str = "",
                 word: str = "field") -> None:
    """Each field of ``spec`` that ``obj`` has is null or of its kind, spelled as Go reads it."""
    one_spelling(obj, tuple(spec), what)
    for name, kind in spec.items():
        value = obj.get(name)
        ok, want = _KINDS[kind]
        if value is not None and not ok(value):
            shown = repr(value[:60]) if isinstance(value, str) else _kind(value)
            raise FormatError(f"{what}: {word} {prefix + name!r} must be {want}, not {shown} "
                              "(Docker and containerd could not read it)")


# Docker's container.Config, as "config" and "container_config"; containerd's ImageConfig
# is a subset of it with the same types, except that Docker also takes a string for
# Cmd/Entrypoint/Shell and containerd does not: a list is what both read.
CONTAINER_CONFIG = {
    **dict.fromkeys(("Hostname", "Domainname", "User", "Image", "WorkingDir", "MacAddress", "StopSignal"), "string"),
    **dict.fromkeys(("AttachStdin", "AttachStdout", "AttachStderr", "Tty", "OpenStdin", "StdinOnce",
                     "ArgsEscaped", "NetworkDisabled"), "bool"),
    **dict.fromkeys(("Env", "OnBuild", "Cmd", "Entrypoint", "Shell"), "strings"),
    "ExposedPorts": "set", "Volumes": "set", "Labels": "string map", "StopTimeout": "int", "Healthcheck": "object"}
HEALTHCHECK = {"Test": "strings", **dict.fromkeys(("Interval", "Timeout", "StartPeriod", "StartInterval", "Retries"), "int")}


def check_container_config(obj: dict[str, Any], what: str, prefix: str) -> None:
    """The fields of a ``config``/``container_config`` object, by Go's rules."""
    check_fields(obj, CONTAINER_CONFIG, what, prefix, "config field")
    if isinstance(obj.get("Healthcheck"), dict):
        check_fields(obj["Healthcheck"], HEALTHCHECK, what, f"{prefix}Healthcheck.", "config field")
