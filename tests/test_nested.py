"""guard/engine/nested.py's reading of `data:` URLs: the media type read alone is the one the
decoded URL gives, so `nested_documents` can leave the content of a type it does not want
undecoded."""

from __future__ import annotations

import base64

from hypothesis import given, settings
from hypothesis import strategies as st

from guard.engine.html import nested_documents
from guard.engine.nested import data_url_media_type, decode_data_url

PIECES = st.sampled_from(
    [
        "data:", " DATA:", "data", "image/svg+xml", "image/png", "text/html", "TEXT/HTML",
        "text/css", ";", ";base64", ";BASE64", " ", ",", "charset=utf-8", "%3C", "<svg/>",
        "PHN2Zy8+", "/", "=", "\t", "\n",
    ]
)  # fmt: skip


def _media(url: str) -> str | None:
    data = decode_data_url(url)
    return data.media_type if data is not None else None


@settings(max_examples=1500, deadline=None)
@given(st.lists(PIECES, max_size=12))
def test_the_media_type_alone_is_the_decoded_one(pieces: list[str]) -> None:
    url = "".join(pieces)
    assert data_url_media_type(url) == _media(url)


def test_an_inline_image_is_no_document_and_an_svg_is() -> None:
    png = "data:image/png;base64," + base64.b64encode(b"\x89PNG" + bytes(2000)).decode()
    svg = "data:image/svg+xml;base64," + base64.b64encode(b"<svg/>").decode()
    assert nested_documents("img", {"src": png}.get) == []
    [doc] = nested_documents("img", {"src": svg}.get)
    assert (doc.media_type, doc.text) == ("image/svg+xml", "<svg/>")
    # a frame reads HTML and SVG, a stylesheet link CSS only
    html = "data:text/html,%3Cp%3Ehi"
    assert [d.text for d in nested_documents("iframe", {"src": html}.get)] == ["<p>hi"]
    assert nested_documents("link", {"href": html, "rel": "stylesheet"}.get) == []
