"""Atom feeds (`/@username.atom`): valid Atom 1.0 read back with xml.etree, absolute links, captions and alt text
escaped, only public accounts (private, missing and blocking answer one 404)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from html.parser import HTMLParser

import pytest

from app.services import accounts, graph, sessions
from app.services.posts import PhotoUpload, Place, create_post, get_post
from tests.conftest import PASSWORD, TESTDATA

PHOTO = (TESTDATA / "good" / "hopper.png").read_bytes()
NS = {"a": "http://www.w3.org/2005/Atom"}
BASE = "http://127.0.0.1:8000"


def ready(ctx, author, caption: str = "", alt: str = "", **fields):
    post = create_post(ctx, author, [PhotoUpload(PHOTO, alt_text=alt)], caption=caption, **fields)
    ctx.backends.queue.run_pending()
    return get_post(ctx, post.id, author)


def parse(response) -> ET.Element:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/atom+xml; charset=utf-8"
    assert response.content.startswith(b'<?xml version="1.0" encoding="utf-8"?>')
    root = ET.fromstring(response.content)
    assert root.tag == "{http://www.w3.org/2005/Atom}feed"
    return root


class Images(HTMLParser):
    """The <img> tags of an entry's HTML content, and whether anything else runs scripts."""

    def __init__(self, text: str):
        super().__init__()
        self.images: list[dict] = []
        self.tags: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "img":
            self.images.append(dict(attrs))


@pytest.fixture
def ana(ctx):
    return accounts.update_profile(ctx, accounts.create_user(ctx, "ana", PASSWORD), "Ana Lima", "Photos & <notes>")


def test_a_public_accounts_feed_is_valid_atom_with_absolute_links(ctx, client, ana):
    first = ready(ctx, ana, "First light", alt="Dawn over the river", place=Place("Lisboa", 38.7, -9.1))
    second = ready(ctx, ana, "")
    create_post(ctx, ana, [PhotoUpload(PHOTO)])  # still processing: not in the feed
    feed = parse(client.get("/@ana.atom"))
    assert feed.findtext("a:id", namespaces=NS) == f"{BASE}/@ana"
    assert feed.findtext("a:title", namespaces=NS) == "Ana Lima (@ana) on Pinhole"
    assert feed.findtext("a:subtitle", namespaces=NS) == "Photos & <notes>"
    assert feed.findtext("a:author/a:name", namespaces=NS) == "Ana Lima"
    assert feed.findtext("a:author/a:uri", namespaces=NS) == f"{BASE}/@ana"
    links = {link.get("rel"): link for link in feed.findall("a:link", NS)}
    assert links["alternate"].get("href") == f"{BASE}/@ana" and links["alternate"].get("type") == "text/html"
    assert links["self"].get("href") == f"{BASE}/@ana.atom"
    assert links["self"].get("type") == "application/atom+xml"
    entries = feed.findall("a:entry", NS)
    assert [e.findtext("a:id", namespaces=NS) for e in entries] == [f"{BASE}/p/{second.id}", f"{BASE}/p/{first.id}"]
    updated = feed.findtext("a:updated", namespaces=NS)
    assert updated == entries[0].findtext("a:updated", namespaces=NS) and updated.endswith("+00:00")
    entry = entries[1]
    assert entry.findtext("a:title", namespaces=NS) == "First light"
    assert entry.find("a:link", NS).get("href") == f"{BASE}/p/{first.id}"
    assert entry.findtext("a:published", namespaces=NS)
    content = entry.find("a:content", NS)
    assert content.get("type") == "html"
    html = Images(content.text)
    assert html.images == [
        {
            "src": BASE + first.media[0].urls["1080"]["jpeg"],
            "alt": "Dawn over the river",
            "width": str(first.media[0].width),
            "height": str(first.media[0].height),
        }
    ]
    assert "Lisboa" in content.text
    untitled = entries[0]
    assert untitled.findtext("a:title", namespaces=NS) == "A photo by @ana"
    assert Images(untitled.find("a:content", NS).text).images[0]["alt"] == "Photo by ana"  # alt text never empty


def test_the_feeds_images_are_served_to_anyone(ctx, client, ana):
    post = ready(ctx, ana, "hello", alt="x")
    src = Images(parse(client.get("/@ana.atom")).find("a:entry/a:content", NS).text).images[0]["src"]
    assert client.get(src.removeprefix(BASE)).status_code == 200
    assert src == BASE + post.media[0].urls["1080"]["jpeg"]


def test_captions_and_alt_text_are_escaped(ctx, client, ana):
    caption = 'Tom & Jerry <script>alert("x")</script>\nsecond line \x07with a bell'
    alt = '"><img src=x onerror=alert(1)>'
    ready(ctx, ana, caption, alt=alt)
    feed = parse(client.get("/@ana.atom"))  # parses: the bell, which XML cannot carry, is gone
    entry = feed.find("a:entry", NS)
    assert entry.findtext("a:title", namespaces=NS) == 'Tom & Jerry <script>alert("x")</script>'
    content = entry.find("a:content", NS).text
    html = Images(content)
    assert html.tags == ["p", "img", "p", "br"]  # the caption's markup is text, not tags
    assert html.images[0]["alt"] == alt
    assert "Tom &amp; Jerry &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;<br>second line with a bell" in content
    assert "\x07" not in content


def test_a_sensitive_post_links_instead_of_showing_the_photo(ctx, client, ana):
    post = ready(ctx, ana, "careful", sensitive=True)
    content = parse(client.get("/@ana.atom")).find("a:entry/a:content", NS).text
    assert Images(content).images == []
    assert f'href="{BASE}/p/{post.id}"' in content and "marked sensitive" in content


def test_an_account_without_posts_has_an_empty_feed(ctx, client):
    newbie = accounts.create_user(ctx, "newbie", PASSWORD)
    feed = parse(client.get("/@Newbie.atom"))
    assert feed.findall("a:entry", NS) == []
    assert feed.findtext("a:title", namespaces=NS) == "newbie (@newbie) on Pinhole"
    created = datetime.fromtimestamp(newbie.created_at / 1000, tz=UTC).isoformat(timespec="seconds")
    assert feed.findtext("a:updated", namespaces=NS) == created


def test_the_feed_keeps_to_the_newest_twenty(ctx, client, ana, monkeypatch):
    from app.services import atom

    monkeypatch.setattr(atom, "ENTRIES", 2)
    made = [ready(ctx, ana, f"post {i}") for i in range(3)]
    entries = parse(client.get("/@ana.atom")).findall("a:entry", NS)
    assert [e.findtext("a:title", namespaces=NS) for e in entries] == ["post 2", "post 1"]
    assert len(made) == 3


def test_links_use_the_configured_public_address(make_site):
    ctx, client = make_site(server={"public_url": "https://photos.example.org/"})
    accounts.create_user(ctx, "ana", PASSWORD)
    feed = parse(client.get("/@ana.atom"))
    assert feed.findtext("a:id", namespaces=NS) == "https://photos.example.org/@ana"
    links = {link.get("rel"): link.get("href") for link in feed.findall("a:link", NS)}
    assert links["self"] == "https://photos.example.org/@ana.atom"


def test_private_missing_and_blocking_accounts_answer_the_same_404(ctx, client, ana):
    shy = accounts.update_profile(ctx, accounts.create_user(ctx, "shy", PASSWORD), "", "", is_private=True)
    follower = accounts.create_user(ctx, "follower", PASSWORD)
    graph.follow(ctx, follower, shy)
    graph.approve_request(ctx, shy, follower.id)
    ready(ctx, shy, "a secret")
    ready(ctx, ana, "public")
    missing = client.get("/@nobody_here.atom")
    assert missing.status_code == 404
    private = client.get("/@shy.atom")
    assert (private.status_code, private.text) == (404, missing.text)
    client.cookies.set(sessions.COOKIE, sessions.start_session(ctx, follower))
    as_follower = client.get("/@shy.atom")  # a feed is public: not even followers get a private one
    assert as_follower.status_code == 404 and "a secret" not in as_follower.text
    graph.block(ctx, ana, follower)
    blocked = client.get("/@ana.atom")
    assert blocked.status_code == 404 and "public" not in blocked.text.split("<main", 1)[-1]
    assert blocked.text == client.get("/@nobody_here.atom").text
    client.cookies.set(sessions.COOKIE, sessions.start_session(ctx, ana))
    assert client.get("/@follower.atom").status_code == 404  # the blocker sees nothing of the blocked either
    for odd in ("/@.atom", "/@ana..atom", "/@" + "a" * 300 + ".atom", "/@an%00a.atom"):
        assert client.get(odd).status_code == 404


def test_the_profile_page_is_still_a_page(ctx, client, ana):
    response = client.get("/@ana")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
