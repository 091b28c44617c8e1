"""The files a profile renders to, by kind: profile JSON, HTML report, Chrome trace, Graphviz
DOT. Rendering only: archgraph.outputs writes them (after every content is rendered, so a
failure to render writes nothing)."""

from __future__ import annotations

from archgraph.profile.dot import to_dot
from archgraph.profile.html import render
from archgraph.profile.report import Profile
from archgraph.profile.trace import chrome_trace_text

PROFILE_FILES = ("json", "report", "trace", "dot")


def render_file(profile: Profile, kind: str) -> str:
    """The text of one of PROFILE_FILES for `profile`."""
    renderers = {
        "json": Profile.json_text,
        "report": render,
        "trace": chrome_trace_text,
        "dot": to_dot,
    }
    return renderers[kind](profile)
