"""Writing a benchmark's figures into scaling/RESULTS.md: one "## " section per benchmark, the others kept."""

from __future__ import annotations

from pathlib import Path

RESULTS = Path(__file__).resolve().parents[1] / "RESULTS.md"


def write_section(heading: str, section: str) -> Path:
    """Replace the section that starts with `heading` (up to the next "## " heading), or append it."""
    text = RESULTS.read_text() if RESULTS.exists() else "# Scaling results\n\n"
    start = text.find(heading)
    if start == -1:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        end = text.find("\n## ", start + 1)
        rest = text[end + 1 :] if end != -1 else ""
        text = text[:start] + section.rstrip("\n") + ("\n\n" + rest if rest else "\n")
    RESULTS.write_text(text)
    return RESULTS
