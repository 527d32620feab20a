"""Storage: served from the worker.start copy, every write sent to the hub, quota and key limits."""

from __future__ import annotations

import json

from vehicle_host.logic_worker.harness import FakeHub


def app(body: str, storage: dict[str, str] | None = None) -> FakeHub:
    hub = FakeHub()
    hub.start(
        {"app.js": "App({});", "pages/index/index.js": f"Page({{ data: {{}}, {body} }});"},
        storage=storage if storage is not None else {"odo": "48213", "prefs": '{"unit":"km"}'},
    )
    hub.take()
    return hub


def test_sync_reads_come_from_the_start_copy() -> None:
    hub = app(
        "go() { console.log(fc.getStorageSync('odo') + 1, fc.getStorageSync('prefs').unit,"
        " JSON.stringify(fc.getStorageSync('missing')), JSON.stringify(fc.getStorageInfoSync()),"
        " JSON.stringify(fc.batchGetStorageSync(['odo', 'nope']))); },"
    )
    hub.event("go")
    assert hub.logs() == ['48214 km "" {"keys":["odo","prefs"],"currentSize":1,"limitSize":10240} [48213,""]']
    assert hub.calls() == []


def test_writes_apply_at_once_and_are_sent_merged_per_turn() -> None:
    hub = app(
        "go() { for (let i = 0; i < 100; i++) fc.setStorageSync('n', i); fc.setStorageSync('obj',"
        " { a: [1] });"
        " fc.removeStorageSync('odo'); fc.batchSetStorageSync([{ key: 'x', value: true }]);"
        " console.log(fc.getStorageSync('n'), fc.getStorageInfoSync().keys.join(',')); },"
    )
    hub.event("go")
    assert hub.logs() == ["99 prefs,n,obj,x"]
    assert [(c["method"], c["args"]) for c in hub.calls()] == [
        ("storage.set", {"key": "n", "value": "99"}),
        ("storage.set", {"key": "obj", "value": '{"a":[1]}'}),
        ("storage.remove", {"key": "odo"}),
        ("storage.set", {"key": "x", "value": "true"}),
    ]


def test_clear_drops_earlier_writes_of_the_turn() -> None:
    hub = app("go() { fc.setStorageSync('a', 1); fc.clearStorageSync(); fc.setStorageSync('b', 2); },")
    hub.event("go")
    assert [(c["method"], c["args"]) for c in hub.calls()] == [
        ("storage.clear", {}),
        ("storage.set", {"key": "b", "value": "2"}),
    ]


def test_async_storage_in_both_styles() -> None:
    hub = app(
        "async go() { await fc.setStorage({ key: 'k', data: { v: 1 } });"
        " const r = await fc.getStorage({ key: 'k' }); console.log(JSON.stringify(r));"
        " fc.getStorage({ key: 'none', fail: (e) => console.log(e.errMsg) });"
        " const b = await fc.batchGetStorage({ keyList: ['k', 'odo'] });"
        " console.log(JSON.stringify(b.dataList));"
        " fc.removeStorage({ key: 'k', success: (e) => console.log(e.errMsg) }); },"
    )
    hub.event("go")
    assert hub.logs() == [
        '{"data":{"v":1},"errMsg":"getStorage:ok"}',
        "getStorage:fail data not found",
        '[{"v":1},48213]',
        "removeStorage:ok",
    ]


def test_per_key_and_total_quota_and_bad_keys_are_clear_errors() -> None:
    hub = app(
        "go() { const big = 'x'.repeat(1024 * 1024);"
        " try { fc.setStorageSync('big', big); } catch (e) { console.log(e.message); }"
        " const part = 'y'.repeat(900 * 1024);"
        " try { for (let i = 0; i < 12; i++) fc.setStorageSync('p' + i, part); } catch (e) {"
        " console.log(e.message); }"
        " try { fc.setStorageSync('', 1); } catch (e) { console.log(e.message); }"
        " try { fc.setStorageSync(3, 1); } catch (e) { console.log(e.message); }"
        " try { const c = {}; c.c = c; fc.setStorageSync('c', c); } catch (e) {"
        " console.log(e.message.split(':')[0]); }"
        " fc.setStorage({ key: 'k' }).catch((e) => console.log(e.errMsg)); },",
        storage={},
    )
    hub.event("go")
    logs = hub.logs()
    assert logs[0].startswith(
        'setStorageSync:fail the data of key "big" is 1048581 bytes; one key may hold at most 1 MB'
    )
    quota = "setStorageSync:fail exceed storage max size 10MB: remove keys you no longer need"
    assert logs[1] == quota + " with removeStorage"
    assert logs[2] == "setStorageSync:fail parameter error: the key must not be empty;"
    assert logs[3] == "setStorageSync:fail parameter error: parameter.key should be String instead of Number;"
    assert logs[4] == "setStorageSync"
    assert logs[5] == "setStorage:fail parameter error: parameter.data should not be Undefined;"
    stored = [c["args"]["key"] for c in hub.calls("storage.set")]
    assert stored == [f"p{i}" for i in range(11)]
    assert sum(len(c["args"]["value"]) for c in hub.calls("storage.set")) <= 10 * 1024 * 1024


def test_a_failed_save_is_logged() -> None:
    hub = app("go() { fc.setStorageSync('a', 1); },")
    hub.event("go")
    hub.answer(hub.calls()[0]["call_id"], error={"code": "unavailable", "message": "storage plugin stopped"})
    assert "storage plugin stopped" in hub.logs("error")[0]


def test_values_that_are_not_json_are_returned_as_text() -> None:
    hub = app("go() { console.log(JSON.stringify(fc.getStorageSync('raw'))); },", storage={"raw": "not json"})
    hub.event("go")
    assert json.loads(hub.logs()[0]) == "not json"


def test_keys_and_values_the_storage_plugin_would_refuse_are_refused_at_once() -> None:
    hub = app(
        "go() { try { fc.setStorageSync('é'.repeat(129), 1); } catch (e) { console.log(e.message); }"
        " fc.setStorageSync('k'.repeat(256), 1);"
        " try { fc.setStorageSync('v', 'x'.repeat(999998)); } catch (e) { console.log(e.message); } },",
        storage={},
    )
    hub.event("go")
    assert hub.logs() == [
        "setStorageSync:fail the key is longer than 256 bytes of UTF-8",
        'setStorageSync:fail the data of key "v" is 1000001 bytes; one key may hold at most 1 MB',
    ]
    assert [c["args"]["key"] for c in hub.calls("storage.set")] == ["k" * 256]
