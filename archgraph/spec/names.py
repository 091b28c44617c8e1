"""What a spec may write as a name or a string.

Names (nodes, inputs, blocks, parameters) become node ids, fx node names, module paths and
state_dict keys, so they are plain ASCII: dotted segments of letters, digits, '_' and '-' (not
first: torchvision's RegNet names its blocks `block1-0`). A lookalike
letter from another script or an invisible character would make two names that read the same but
differ, so those are reported with their code point. Strings anywhere in a spec must not hold
control characters, bidirectional overrides or other invisible formatting characters, which can
make a spec read differently from what it does.
"""

from __future__ import annotations

import re
import unicodedata

NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*(\.[A-Za-z0-9_][A-Za-z0-9_-]*)*")
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# joiners are ordinary in several scripts and in emoji; every other format character is hidden
_ALLOWED_FORMAT = {"\u200c", "\u200d"}
_ALLOWED_CONTROL = {"\t", "\n", "\r"}


def describe_char(ch: str) -> str:
    """'U+202E RIGHT-TO-LEFT OVERRIDE' for a character."""
    name = unicodedata.name(ch, "") or unicodedata.category(ch)
    return f"U+{ord(ch):04X} {name}".rstrip()


def hidden_char(text: str) -> tuple[int, str] | None:
    """The first control, surrogate or invisible formatting character of `text`, with its index."""
    for i, ch in enumerate(text):
        if ch.isascii() and (ch.isprintable() or ch in _ALLOWED_CONTROL):
            continue
        category = unicodedata.category(ch)
        if (category == "Cc" and ch not in _ALLOWED_CONTROL) or category == "Cs":
            return i, ch
        if category == "Cf" and ch not in _ALLOWED_FORMAT:
            return i, ch
    return None


def name_problem(name: str, *, identifier: bool = False) -> str | None:
    """Why `name` is not a valid spec name (None when it is)."""
    pattern = IDENTIFIER if identifier else NAME
    if pattern.fullmatch(name):
        return None
    if not name:
        return "it is empty"
    for i, ch in enumerate(name):
        if not (ch.isascii() and (ch.isalnum() or ch in "_.-")):
            return f"character {i + 1} is {describe_char(ch)}"
    if identifier:
        return "it must start with a letter or '_' and hold only letters, digits and '_'"
    if any(part.startswith("-") for part in name.split(".")):
        return "a segment starts with '-'"
    return "it has an empty segment between dots"


def name_rule(identifier: bool = False) -> str:
    if identifier:
        return "an identifier: ASCII letters, digits and '_', not starting with a digit"
    return (
        "ASCII letters, digits, '_' and '-' (not first), in segments joined by '.' "
        "(e.g. layer1.0.conv1)"
    )
