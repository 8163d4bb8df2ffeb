"""Markdown written by users (notices, descriptions) turned into safe HTML.

Two layers, on purpose: markdown-it-py never lets raw HTML through
(``html=False`` escapes it as text), and whatever it produces is cleaned again
by nh3 against a short allow-list. Either layer alone would be one parser bug
away from stored XSS on a page every office in the province reads.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import nh3
from markdown_it import MarkdownIt
from markupsafe import Markup, escape

if TYPE_CHECKING:
    from flask import Flask

ALLOWED_TAGS = frozenset({
    "p", "br", "strong", "em", "ul", "ol", "li",
    "h1", "h2", "h3", "h4", "h5", "h6",
    "blockquote", "code", "pre", "hr",
    "table", "thead", "tbody", "tr", "th", "td",
    "a",
})
# "*": no attribute on every tag (nh3 would otherwise keep lang/title anywhere).
# ol/start keeps "3. 4. 5." numbered as written (regulations are quoted by
# article number); the filter below lets only digits through.
ALLOWED_ATTRIBUTES = {"*": set(), "a": {"href", "title"}, "ol": {"start"}}
URL_SCHEMES = frozenset({"http", "https", "mailto"})
LINK_REL = "noopener noreferrer"
# Removed together with their content, not just unwrapped, so no script text
# or SVG payload is left lying around in the page.
DROP_WITH_CONTENT = frozenset({
    "script", "style", "iframe", "frame", "frameset", "object", "embed", "svg", "math",
    "template", "noscript", "noembed", "noframes", "xmp", "textarea", "title",
})


def _attribute_filter(tag: str, attribute: str, value: str) -> str | None:
    if tag == "ol" and attribute == "start":
        return value if value.isascii() and value.isdigit() and len(value) <= 9 else None
    return value


def _render_image_as_link(self, tokens, idx, options, env) -> str:
    # Pictures from anywhere on the internet are not shown inline (tracking,
    # mixed content, data: URLs); the reader gets a link to the picture instead,
    # with the alt text as its label. nh3 still decides whether the URL survives.
    token = tokens[idx]
    label = self.renderInlineAsText(token.children or [], options, env) or token.attrGet("src") or ""
    return f'<a href="{escape(token.attrGet("src") or "")}">{escape(label)}</a>'


def _build_parser() -> MarkdownIt:
    parser = MarkdownIt("commonmark", {"html": False}).enable("table")
    parser.add_render_rule("image", _render_image_as_link)
    return parser


_parser = _build_parser()


def sanitize_html(html: str) -> str:
    """Clean an HTML fragment against the allow-list; the last line of defence."""
    return nh3.clean(
        html,
        tags=set(ALLOWED_TAGS),
        clean_content_tags=set(DROP_WITH_CONTENT),
        attributes={tag: set(names) for tag, names in ALLOWED_ATTRIBUTES.items()},
        attribute_filter=_attribute_filter,
        url_schemes=set(URL_SCHEMES),
        link_rel=LINK_REL,
        strip_comments=True,
    )


def render_markdown(text: str | None, top_heading: int = 1) -> Markup:
    """Markdown (CommonMark plus tables) to HTML that is safe to put in a page. ``top_heading``
    is the level a ``#`` heading gets, the others following it (at most ``h6``): text shown under
    a page's own headings starts below them (``{{ body|markdown(4) }}`` under an ``h3``)."""
    if not text:
        return Markup("")
    tokens = _parser.parse(str(text))
    shift = max(0, min(5, int(top_heading) - 1))
    if shift:
        for token in tokens:
            if token.type in ("heading_open", "heading_close"):
                token.tag = f"h{min(6, int(token.tag[1]) + shift)}"
    return Markup(sanitize_html(_parser.renderer.render(tokens, _parser.options, {})))


def init_app(app: Flask) -> None:
    """Register ``{{ text | markdown }}`` for templates."""
    app.add_template_filter(render_markdown, "markdown")
