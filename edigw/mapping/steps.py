"""Placeholders in the payload of a follow-up step (a mapping's ``then:``).

A step is mapped with its document, but some of its values exist only when it is sent: the
id Ecolix gave the object its first step created, the archived original file. The mapping
writes a placeholder in their place; the pipeline (``edigw.pipeline.chain``) replaces it
just before the call. Placeholders sit only at the top level of a step's payload::

    {"id": {"$answer": "/id"}, "content_base64": {"$original": "content_base64"}, ...}

In the journal a step's payload also carries ``"$chain": {"step": 2, "first_seq": 7}``:
which step of its chain it is, and where the chain starts in its file.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

ANSWER = "$answer"
ORIGINAL = "$original"
CHAIN = "$chain"
ORIGINAL_FIELDS = ("content_base64", "sha256", "size", "file_name", "content_type")


def answer(selector: str) -> dict[str, str]:
    """A value of the first step's answer: a field name or a JSON pointer."""
    pointer = selector if selector.startswith("/") else "/" + selector
    return {ANSWER: pointer}


def original(what: str) -> dict[str, str]:
    """A property of the archived original file (one of ``ORIGINAL_FIELDS``)."""
    return {ORIGINAL: what}


def is_placeholder(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and (ANSWER in value or ORIGINAL in value)


def placeholder_fields(payload: Mapping[str, Any]) -> list[str]:
    """The top-level fields of ``payload`` that wait for a value at send time."""
    return [name for name, value in payload.items() if is_placeholder(value)]
