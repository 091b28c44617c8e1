"""Writing a profile's files: every content is rendered first and each file written atomically,
so a failure leaves no partial file behind (and, when rendering fails, none at all)."""

from __future__ import annotations

from pathlib import Path

from archgraph.profile.dot import to_dot
from archgraph.profile.html import render
from archgraph.profile.report import Profile, write_atomic
from archgraph.profile.trace import chrome_trace_text


def write_outputs(
    profile: Profile,
    *,
    json_path: str | Path | None = None,
    report_path: str | Path | None = None,
    trace_path: str | Path | None = None,
    dot_path: str | Path | None = None,
) -> None:
    """Write the requested files: profile JSON, HTML report, Chrome trace, Graphviz DOT."""
    wanted = [
        (json_path, Profile.json_text),
        (report_path, render),
        (trace_path, chrome_trace_text),
        (dot_path, to_dot),
    ]
    contents = [(path, make(profile)) for path, make in wanted if path]
    for path, text in contents:
        write_atomic(path, text)
