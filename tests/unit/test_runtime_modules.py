"""CommonJS modules: require, module.exports, exports.x, resolution, cycles, laziness, errors."""

from __future__ import annotations

import json

import pytest

from vehicle_host.errors import BundleError
from vehicle_host.logic_worker.harness import FakeHub
from vehicle_host.logic_worker.runtime import JsRealm

UTIL = """const pad = (n) => (n < 10 ? '0' : '') + n;
function formatTime(h, m) { return pad(h) + ':' + pad(m); }
console.log('util runs');
module.exports = { formatTime, pad };
"""
NUMBERS = "exports.double = (n) => n * 2;\nexports.name = 'numbers';\n"


def started(page: str, extra: dict[str, str] | None = None, *, app: str = "App({});") -> FakeHub:
    hub = FakeHub()
    sources = {"app.js": app, "pages/index/index.js": page, "utils/util.js": UTIL, "lib/numbers.js": NUMBERS}
    sources.update(extra or {})
    hub.start(sources)
    return hub


def test_module_exports_and_exports_x_from_a_page() -> None:
    hub = started(
        "const util = require('../../utils/util.js');\n"
        "const { double, name } = require('/lib/numbers');\n"
        "Page({ onLoad() { console.log(util.formatTime(9, 5), double(21), name); } });\n"
    )
    assert hub.errors() == []
    assert hub.logs() == ["util runs", "09:05 42 numbers"]


def test_modules_run_once_lazily_and_are_cached() -> None:
    hub = started(
        "Page({ go() { const a = require('../../utils/util'); const b = require('/utils/util.js');"
        " console.log(a === b); } });",
        {"utils/never.js": "console.log('never required');"},
    )
    assert hub.logs() == []  # nothing required yet: plain modules have not run
    hub.event("go")
    assert hub.logs() == ["util runs", "true"]


@pytest.mark.parametrize(
    "request_path",
    ["./helper", "./helper.js", "../shared/helper", "/pages/shared/helper.js", "helper", "sub/deep"],
)
def test_relative_absolute_and_bare_paths_resolve_against_the_requiring_file(request_path: str) -> None:
    extra = {
        "pages/index/helper.js": "module.exports = 'index helper';",
        "pages/shared/helper.js": "module.exports = 'shared helper';",
        "pages/index/sub/deep.js": "module.exports = 'deep';",
    }
    hub = started(f"Page({{ onLoad() {{ console.log(require({json.dumps(request_path)})); }} }});", extra)
    expected = {
        "./helper": "index helper",
        "./helper.js": "index helper",
        "../shared/helper": "shared helper",
        "/pages/shared/helper.js": "shared helper",
        "helper": "index helper",
        "sub/deep": "deep",
    }[request_path]
    assert hub.logs() == [expected]


def test_folder_index_and_miniprogram_npm_packages_resolve() -> None:
    hub = started(
        "Page({ onLoad() { console.log(require('../../components/kit'), require('dayjs').name); } });",
        {
            "components/kit/index.js": "module.exports = 'kit index';",
            "miniprogram_npm/dayjs/index.js": "exports.name = 'dayjs';",
        },
    )
    assert hub.logs() == ["kit index dayjs"]


def test_cycles_see_partial_exports_like_node() -> None:
    extra = {
        "m/a.js": "exports.early = 'a-early';\nconst b = require('./b');\n"
        "exports.fromB = b.seen;\nexports.late = 'a-late';\n",
        "m/b.js": "const a = require('./a');\nexports.seen = a.early + '/' + String(a.late);\n",
    }
    hub = started("const a = require('/m/a');\nPage({ onLoad() { console.log(a.fromB, a.late); } });", extra)
    assert hub.logs() == ["a-early/undefined a-late"]


def test_unknown_modules_throw_naming_the_requiring_file() -> None:
    hub = started(
        "Page({ go() { try { require('../../utils/nope'); } catch (e) { console.log(e.message); }"
        " try { require('fs'); } catch (e) { console.log(e.message); }"
        " try { require('../../../../etc/passwd'); } catch (e) { console.log(e.message); } } });"
    )
    hub.event("go")
    nope, fs, outside = hub.logs()
    assert nope.startswith("module '../../utils/nope' is not defined, required from pages/index/index.js")
    assert fs.startswith("module 'fs' is not defined, required from pages/index/index.js")
    assert "only the bundle's own .js files" in fs
    assert outside.startswith("module '../../../../etc/passwd' is not defined")


def test_errors_inside_a_required_module_map_to_that_modules_file_and_line() -> None:
    broken = "// a helper\nexports.ok = 1;\nfunction explode() {\n  return undefinedThing.x;\n}\nexplode();\n"
    hub = started(
        "Page({\n  go() {\n    require('../../utils/broken');\n  },\n});\n", {"utils/broken.js": broken}
    )
    hub.event("go")
    (error,) = hub.errors()
    assert (error["file"], error["line"]) == ("utils/broken.js", 4)
    assert "undefinedThing" in error["message"]


def test_a_module_that_threw_runs_again_on_the_next_require() -> None:
    flaky = "if (!getApp().globalData.ready) throw new Error('not yet');\nmodule.exports = 'ready';\n"
    hub = started(
        "Page({ go() { try { console.log(require('/utils/flaky')); } catch (e) { console.log(e.message); }"
        " getApp().globalData.ready = true; } });",
        {"utils/flaky.js": flaky},
    )
    hub.event("go")
    hub.event("go")
    assert hub.logs() == ["not yet", "ready"]


def test_app_js_and_components_get_require_too() -> None:
    hub = FakeHub()
    hub.start(
        {
            "app.js": "const { pad } = require('./utils/util');\nApp({ globalData: { p: pad(3) } });\n",
            "pages/index/index.js": "Page({ onLoad() { console.log(getApp().globalData.p); } });",
            "components/c/c.js": "const n = require('../../lib/numbers');\n"
            "Component({ lifetimes: { attached() { console.log('c ' + n.double(4)); } } });\n",
            "utils/util.js": UTIL,
            "lib/numbers.js": NUMBERS,
        },
        config={"components": {"components/c/c": {"usingComponents": {}}}},
    )
    assert hub.errors() == []
    assert hub.logs() == ["util runs", "03"]
    hub.event("$attach", {"path": "/components/c/c", "props": {}, "parent": "", "events": {}}, component="c1")
    assert hub.logs()[-1] == "c 8"


def test_page_registration_works_through_a_helper_module() -> None:
    helper = "module.exports = function make(def) { def.made = true; Page(def); };\n"
    hub = started(
        "const make = require('../../utils/make');\n"
        "make({ onLoad() { console.log('made ' + this.made); } });\n",
        {"utils/make.js": helper},
    )
    assert hub.errors() == []
    assert hub.logs() == ["made true"]


def test_page_called_from_a_plain_module_body_is_refused() -> None:
    hub = started(
        "Page({ go() { try { require('/utils/bad'); } catch (e) { console.log(e.message); } } });",
        {"utils/bad.js": "Page({});"},
    )
    hub.event("go")
    assert hub.logs() == ["Page() must be called in a page module (a route listed in app.json pages)"]


def test_syntax_errors_are_located_in_their_module() -> None:
    hub = started("Page({});", {"utils/syntax.js": "const a = 1;\nconst b = ;\n"})
    (error,) = hub.errors()
    assert (error["file"], error["line"]) == ("utils/syntax.js", 2)
    assert "SyntaxError" in error["message"]


def test_the_wrapper_keeps_strict_mode_and_module_scope() -> None:
    hub = started(
        "'use strict';\nconst local = 1;\n"
        "Page({ onLoad() { console.log(typeof local, typeof globalThis.local, typeof require,"
        " (function () { return this; })() === undefined); } });\n"
    )
    assert hub.logs() == ["number undefined function true"]


def test_no_global_require_and_bad_paths_are_refused() -> None:
    realm = JsRealm()
    realm.configure({"config": {}, "system": {}, "apis": [], "storage": {}, "limits": {}})
    assert (
        realm.eval_for_test("typeof require + typeof module + typeof exports")
        == "undefinedundefinedundefined"
    )
    for bad in ("../x", "a//b", "a b/c", "/abs"):
        with pytest.raises(BundleError):
            realm.load_module(bad, "1;")
    realm.load_module("utils/x.js", "module.exports = 1;")
    with pytest.raises(Exception, match="defined twice"):
        realm.load_module("utils/x", "module.exports = 2;")
