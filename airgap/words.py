"""Words for messages: counted nouns (``1 part``, ``2 parts``), and text from outside made
safe to print on a terminal; and the one test of a number (decimal, hex) written in text from outside."""

from __future__ import annotations


def plural(n: int, word: str, many: str | None = None) -> str:
    return f"{n} {word if n == 1 else (many or word + 's')}"


def printable(text: str, keep: str = "\n\t") -> str:
    """``text`` with what is not printable (control characters: an escape sequence in an
    archive's names could rewrite the operator's terminal; bidi and other format
    characters, which make a message read otherwise than it is) written as ``\\xNN`` or
    ``\\uNNNN``; the characters in ``keep`` stay."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c in keep else f"\\x{ord(c):02x}" if ord(c) < 0x100
                   else f"\\u{ord(c):04x}" if ord(c) < 0x10000 else f"\\U{ord(c):08x}" for c in text)


def is_number(text: str) -> bool:
    """``text`` is a decimal number in ASCII digits, as Go's strconv reads one. Not
    ``str.isdigit``, which takes ``²`` (int() then fails on it: a header or a query from
    outside made that an internal error) and ``٣`` (which int() reads as 3)."""
    return text.isascii() and text.isdigit()


def is_hex(text: str, length: int) -> bool:
    """``text`` is ``length`` lowercase hex digits (a sha256's are 64), nothing else."""
    return len(text) == length and not text.strip("0123456789abcdef")


def is_port(text: str) -> bool:
    """``text`` is a TCP port, 0 to 65535, in ASCII digits."""
    return is_number(text) and int(text) <= 65535
