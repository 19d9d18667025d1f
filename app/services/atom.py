"""Atom 1.0 feeds of public accounts (`/@username.atom`), for feed readers.

A feed is a public document: it holds what an anonymous visitor may see, so only public accounts have one. A
private account, a missing one, and one with a block either way with the signed-in reader all answer the same
NotFound. The XML is built by ElementTree (which escapes every text), after dropping the characters XML 1.0 cannot
carry; entry content is HTML, escaped once as HTML and once more as XML text, as `type="html"` requires.
"""

from __future__ import annotations

import html
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime

from app.context import Context
from app.errors import NotFound

# graph before posts: importing posts first runs into the posts -> visibility -> graph -> feed -> posts cycle.
from app.services import graph, posts
from app.services.accounts import User, find_user

ATOM_NS = "http://www.w3.org/2005/Atom"
CONTENT_TYPE = "application/atom+xml; charset=utf-8"
ENTRIES = 20
NO_FEED = "There is no feed at this address."
_TITLE_CHARS = 80
# Characters XML 1.0 does not allow (controls other than tab and newlines, lone surrogates, U+FFFE/U+FFFF).
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def account_feed(ctx: Context, viewer: User | None, username: str, base_url: str) -> bytes:
    """The account's feed as UTF-8 XML, its links absolute under `base_url`; NotFound when there is none for
    this reader."""
    user = find_user(ctx, username) if username else None
    if user is None or user.is_private or graph.relation(ctx, viewer, user.id).blocked:
        raise NotFound(NO_FEED)
    recent = posts.list_author_posts(ctx, user, None, None, ENTRIES)
    return render(user, recent, base_url.rstrip("/"))


def render(user: User, items: list[posts.Post], base: str) -> bytes:
    profile_url = f"{base}/@{user.username}"
    feed = ET.Element("feed", {"xmlns": ATOM_NS})
    _text(feed, "id", profile_url)
    _text(feed, "title", f"{_clean(user.name)} (@{user.username}) on Pinhole")
    if user.bio:
        _text(feed, "subtitle", _clean(user.bio))
    updated = max((p.created_at for p in items), default=user.created_at)
    _text(feed, "updated", _when(updated))
    author = ET.SubElement(feed, "author")
    _text(author, "name", _clean(user.name))
    _text(author, "uri", profile_url)
    ET.SubElement(feed, "link", {"rel": "alternate", "type": "text/html", "href": profile_url})
    ET.SubElement(feed, "link", {"rel": "self", "type": "application/atom+xml", "href": f"{profile_url}.atom"})
    if user.avatar_key:
        _text(feed, "icon", f"{base}/media/{user.avatar_key}")
    _text(feed, "generator", "Pinhole")
    for post in items:
        feed.append(_entry(post, base))
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(feed, encoding="utf-8", xml_declaration=False)


def _entry(post: posts.Post, base: str) -> ET.Element:
    url = f"{base}/p/{post.id}"
    entry = ET.Element("entry")
    _text(entry, "id", url)
    _text(entry, "title", _title(post))
    ET.SubElement(entry, "link", {"rel": "alternate", "type": "text/html", "href": url})
    _text(entry, "published", _when(post.created_at))
    _text(entry, "updated", _when(post.created_at))
    _text(entry, "content", _content(post, base, url)).set("type", "html")
    return entry


def _title(post: posts.Post) -> str:
    first_line = _clean(post.caption).strip().split("\n", 1)[0].strip()
    if not first_line:
        count = len(post.media)
        return f"{count} photos by @{post.author.username}" if count > 1 else f"A photo by @{post.author.username}"
    return first_line if len(first_line) <= _TITLE_CHARS else first_line[: _TITLE_CHARS - 1].rstrip() + "…"


def _content(post: posts.Post, base: str, url: str) -> str:
    """The entry as HTML: the photos (or, for a post marked sensitive, a link instead), caption and place."""
    parts = []
    if post.sensitive:
        parts.append(f'<p>This post is marked sensitive. <a href="{html.escape(url)}">See it on Pinhole</a>.</p>')
    else:
        for media in post.media:
            src = media.urls.get("1080", {}).get("jpeg")
            if not src:
                continue
            alt = _clean(media.alt_text) or f"Photo by {post.author.username}"
            size = f' width="{media.width}" height="{media.height}"' if media.width and media.height else ""
            parts.append(f'<p><img src="{html.escape(base + src)}" alt="{html.escape(alt)}"{size}></p>')
    if post.caption:
        parts.append("<p>" + html.escape(_clean(post.caption)).replace("\n", "<br>") + "</p>")
    if post.place and post.place.name:
        parts.append(f"<p>📍 {html.escape(_clean(post.place.name))}</p>")
    return "\n".join(parts)


def _text(parent: ET.Element, tag: str, text: str) -> ET.Element:
    element = ET.SubElement(parent, tag)
    element.text = text
    return element


def _clean(text: str | None) -> str:
    return _NOT_XML.sub("", text or "")


def _when(unix_ms: int) -> str:
    return datetime.fromtimestamp(unix_ms / 1000, tz=UTC).isoformat(timespec="seconds")
