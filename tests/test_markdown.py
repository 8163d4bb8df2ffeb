"""Markdown from users: real XSS payloads come out inert, ordinary Markdown renders."""
from __future__ import annotations

import re
from html import unescape
from html.parser import HTMLParser

import pytest
from flask import Flask, render_template_string
from markupsafe import Markup

from portal.markdown import init_app, render_markdown, sanitize_html

PAYLOADS = [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=https://evil.example/x.js></SCRIPT>",
    "<img src=x onerror=alert(1)>",
    "<svg onload=alert(1)>",
    "<svg><script>alert(1)</script></svg>",
    "[x](javascript:alert(1))",
    "[x](JaVaScRiPt:alert(1))",
    "[x]( javascript:alert(1) )",
    "[x](<javascript:alert(1)>)",
    "[x](java\tscript:alert(1))",
    "[x](&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;alert(1))",
    "[x](&#x6A;avascript&colon;alert(1))",
    "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "[x](DATA:text/html,<script>alert(1)</script>)",
    "[x](vbscript:msgbox(1))",
    "[x][evil]\n\n[evil]: javascript:alert(1)",
    "<javascript:alert(1)>",
    '<iframe src="https://evil.example"></iframe>',
    '<iframe src="javascript:alert(1)">',
    '<a href="javascript:alert(1)">click</a>',
    '<a href="&#106;avascript:alert(1)">click</a>',
    '<p style="width: expression(alert(1))">x</p>',
    '<div style="background:url(javascript:alert(1))">x</div>',
    "![x](javascript:alert(1))",
    '![x](x" onerror="alert(1))',
    '![x](https://example.com/a.png "t\\" onerror=\\"alert(1)")',
    '[x](https://example.com "t\\" onclick=\\"alert(1)")',
    "<scr<script>ipt>alert(1)</scr</script>ipt>",
    "<img src=x onerror=alert(1)//",
    "<<img src=x onerror=alert(1)>",
    '<details open ontoggle="alert(1)">',
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "<object data=\"javascript:alert(1)\"></object><embed src=\"javascript:alert(1)\">",
    "<!--<img src=x onerror=alert(1)>-->",
    "```\n<script>alert(1)</script>\n```",
    "`<img src=x onerror=alert(1)>`",
    "> <script>alert(1)</script>\n> - <svg onload=alert(1)>",
    "| a | b |\n|---|---|\n| <script>alert(1)</script> | [x](javascript:alert(1)) |",
]

ALLOWED_TAGS = {"p", "br", "strong", "em", "ul", "ol", "li", "h1", "h2", "h3", "h4", "h5", "h6",
                "blockquote", "code", "pre", "table", "thead", "tbody", "tr", "th", "td", "hr", "a"}
ALLOWED_ATTRS = {"a": {"href", "title", "rel"}, "ol": {"start"}}
FORBIDDEN = ("<script", "onerror", "onload", "onclick", "ontoggle", "javascript:", "vbscript:",
             "data:text/html", "<iframe", "<svg", "<img", "<style", "<object", "<embed", "<math", "style=")
TAG_RE = re.compile(r"<[^>]*>")


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, attrs))

    handle_startendtag = handle_starttag


def assert_inert(html: str) -> None:
    """Nothing in the output can run.

    With ``html=False`` a payload typed into the text is shown back to the
    reader as text (``&lt;img src=x onerror=…&gt;``), which is harmless, so the
    words "onerror" or "javascript:" may appear in *text* (and in a quoted
    ``title``, which is text too); they must never appear in what a browser
    acts on: tag names, attribute names, link targets (decoded)."""
    lowered = html.lower()
    for needle in ("<script", "<iframe", "<svg", "<img", "<style", "<object", "<embed", "<math"):
        assert needle not in lowered, (needle, html)
    parser = _Tags()
    parser.feed(html)
    parser.close()
    acted_on = " ".join(
        " ".join([f"<{tag}"] + [f"{name}={value if name == 'href' else ''}" for name, value in attrs])
        for tag, attrs in parser.tags
    ).lower()
    for needle in FORBIDDEN:
        assert needle not in acted_on, (needle, html)
    # Tags as written (no title text in them) must be clean before decoding too.
    for raw_tag in TAG_RE.findall(html):
        without_title = re.sub(r'\stitle="[^"]*"', "", raw_tag).lower()
        for needle in FORBIDDEN:
            assert needle not in without_title and needle not in unescape(without_title), (needle, html)
    for tag, attrs in parser.tags:
        assert tag in ALLOWED_TAGS, (tag, html)
        for name, value in attrs:
            assert name in ALLOWED_ATTRS.get(tag, set()), (tag, name, html)
            if name == "href":
                # What a browser would see: entities decoded, whitespace and controls dropped.
                url = re.sub(r"[\x00-\x20]", "", value or "").lower()
                scheme = url.split(":", 1)[0] if re.match(r"^[a-z][a-z0-9+.-]*:", url) else ""
                assert scheme in ("", "http", "https", "mailto"), (url, html)
            if tag == "a" and name == "rel":
                assert value == "noopener noreferrer"


def test_there_are_enough_payloads():
    assert len(PAYLOADS) >= 12


@pytest.mark.parametrize("payload", PAYLOADS)
def test_xss_payload_is_inert(payload):
    html = render_markdown(payload)
    assert isinstance(html, Markup)
    assert_inert(str(html))


@pytest.mark.parametrize("payload", PAYLOADS)
def test_sanitizer_alone_stops_raw_html(payload):
    """The second layer holds even if Markdown let raw HTML through."""
    assert_inert(sanitize_html(payload))


def test_script_content_is_dropped_by_the_sanitizer():
    assert "alert" not in sanitize_html("<script>alert(1)</script><p>ok</p>")
    assert "alert" not in sanitize_html("<svg><g onload=alert(1)>alert</g></svg>ok")


def test_raw_html_is_shown_as_text_not_run():
    html = str(render_markdown("<b>粗体</b> <script>alert(1)</script>"))
    assert "&lt;script&gt;" in html
    assert "<b>" not in html


def test_ordinary_markdown_renders():
    text = (
        "# 社区教育工作通知\n\n"
        "## 一、工作安排\n\n"
        "请各街道于**本月底**前完成*报名*工作。\n\n"
        "- 老年大学课程\n- 家长学校\n\n"
        "1. 报名\n2. 审核\n\n"
        "> 注意：材料须加盖公章。\n\n"
        "| 街道 | 人数 |\n|---|---:|\n| 经八路街道 | 120 |\n| 花园路街道 | 85 |\n\n"
        "详情见[河南省人民政府](https://www.henan.gov.cn/ \"官网\")，"
        "或发邮件至 [邮箱](mailto:jyb@example.gov.cn)。\n\n"
        "---\n\n"
        "`代码` 与\n\n```\nprint('你好')\n```\n"
    )
    html = str(render_markdown(text))
    assert "<h1>社区教育工作通知</h1>" in html
    assert "<h2>一、工作安排</h2>" in html
    assert "<strong>本月底</strong>" in html
    assert "<em>报名</em>" in html
    assert "<ul>\n<li>老年大学课程</li>\n<li>家长学校</li>\n</ul>" in html
    assert "<ol>\n<li>报名</li>" in html
    assert "<blockquote>" in html and "注意：材料须加盖公章。" in html
    assert "<table>" in html and "<th>街道</th>" in html and "<td>经八路街道</td>" in html
    assert "<td>120</td>" in html  # alignment styles are dropped, the cell stays
    assert ('<a href="https://www.henan.gov.cn/" title="官网" rel="noopener noreferrer">'
            "河南省人民政府</a>") in html
    assert '<a href="mailto:jyb@example.gov.cn" rel="noopener noreferrer">邮箱</a>' in html
    assert "<hr" in html
    assert "<code>代码</code>" in html
    assert "<pre><code>print(&#39;你好&#39;)" in html or "<pre><code>print('你好')" in html
    assert_inert(html)


def test_numbered_list_keeps_its_start_number():
    assert '<ol start="3">' in str(render_markdown("3. 第三条\n4. 第四条"))


def test_picture_becomes_a_link_and_data_urls_are_dropped():
    html = str(render_markdown("![活动照片](https://example.com/a.png)"))
    assert '<a href="https://example.com/a.png" rel="noopener noreferrer">活动照片</a>' in html
    html = str(render_markdown("![x](data:image/png;base64,AAAA)"))
    assert "data:" not in html
    assert_inert(html)


def test_empty_input():
    assert render_markdown("") == Markup("")
    assert render_markdown(None) == Markup("")


def test_jinja_filter():
    app = Flask(__name__)
    init_app(app)
    with app.app_context():
        out = render_template_string("{{ body | markdown }}", body="**你好** <script>x</script>")
    assert "<strong>你好</strong>" in out
    assert "<script" not in out
