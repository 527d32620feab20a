"""Custom components: lifetimes, properties, observers, setData, triggerEvent, methods, behaviors."""

from __future__ import annotations

from vehicle_host.logic_worker.harness import FakeHub

GAUGE = """
const shared = Behavior({ data: { fromBehavior: true }, methods: { hello() { return 'hi'; } },
  lifetimes: { attached() { console.log('behavior attached'); } } });
Component({
  behaviors: [shared],
  properties: {
    value: { type: Number, value: 5, observer(n, o) { console.log('value observer ' + o + '->' + n); } },
    label: String,
    on: Boolean,
    items: Array,
    opts: { type: Object, value: { a: 1 } },
  },
  data: { doubled: 0, unit: 'km/h' },
  observers: {
    'value, on': function (value, on) {
      this.setData({ doubled: value * 2 });
      console.log('obs ' + value + ' ' + on);
    },
    'opts.a': function (a) { console.log('opts.a ' + a); },
  },
  lifetimes: {
    created() { console.log('created ' + this.data.value + ' ' + this.hello()); },
    attached() { console.log('attached ' + this.properties.label); },
    ready() { console.log('ready'); },
    detached() { console.log('detached'); },
  },
  pageLifetimes: { show() { console.log('page show'); }, hide() { console.log('page hide'); } },
  methods: {
    tap(e) { this.triggerEvent('change', { value: this.data.value }); },
    nobody() { this.triggerEvent('unbound', {}); },
  },
});
"""

PAGE = """
Page({
  data: {},
  onChange(e) {
    console.log('page got ' + e.type + ' ' + JSON.stringify(e.detail) + ' from ' + e.target.id);
  },
  onInner(e) { console.log('should not be called'); },
});
"""

INNER_PARENT = """
Component({ methods: { onInner(e) { console.log('parent component got ' + e.detail.x); } } });
"""
INNER = "Component({ methods: { tap() { this.triggerEvent('poke', { x: 1 }); } } });"


def started() -> FakeHub:
    hub = FakeHub()
    hub.start(
        {
            "app.js": "App({});",
            "pages/index/index.js": PAGE,
            "components/gauge/gauge.js": GAUGE,
            "components/box/box.js": INNER_PARENT,
            "components/inner/inner.js": INNER,
        }
    )
    hub.take()
    return hub


def attach(
    hub: FakeHub,
    cid: str,
    props: dict[str, object],
    *,
    path: str = "components/gauge/gauge",
    parent: str = "",
) -> None:
    hub.event(
        "$attach",
        {"path": path, "props": props, "parent": parent, "events": {"change": "onChange", "poke": "onInner"}},
        component=cid,
    )


def test_attach_runs_created_observers_attached_and_sends_the_initial_data() -> None:
    hub = started()
    attach(hub, "c1", {"value": "7", "label": 42, "on": 1, "items": "nope", "unknown": 1})
    assert hub.logs() == [
        "created 5 hi",
        "value observer 5->7",
        "obs 7 true",
        "behavior attached",
        "attached 42",
    ]
    (diff,) = hub.diffs(component="c1")
    assert diff == {
        "fromBehavior": True,
        "doubled": 14,
        "unit": "km/h",
        "value": 7,
        "label": "42",
        "on": True,
        "items": [],
        "opts": {"a": 1},
    }
    hub.take()
    hub.deliver("page.painted", {"page_id": 1})
    assert hub.logs() == ["ready"]


def test_props_update_coerces_and_fires_observers_only_for_changes() -> None:
    hub = started()
    attach(hub, "c1", {"value": 1})
    hub.take()
    hub.event("$props", {"props": {"value": 1, "opts": {"a": 2}}}, component="c1")
    assert hub.logs() == ["opts.a 2"]
    assert hub.diffs(component="c1") == [{"opts": {"a": 2}}]


def test_trigger_event_calls_the_pages_bound_handler() -> None:
    hub = started()
    attach(hub, "c1", {"value": 3})
    hub.take()
    hub.event("tap", {"type": "tap"}, component="c1")
    assert hub.logs() == ['page got change {"value":3} from c1']
    hub.take()
    hub.event("nobody", component="c1")
    assert hub.sent == []


def test_trigger_event_inside_a_component_goes_to_the_parent_component() -> None:
    hub = started()
    attach(hub, "c1", {}, path="/components/box/box")
    attach(hub, "c2", {}, path="components/inner/inner", parent="c1")
    hub.take()
    hub.event("tap", component="c2")
    assert hub.logs() == ["parent component got 1"]


def test_component_set_data_travels_with_its_component_id() -> None:
    hub = started()
    attach(hub, "c1", {"value": 2})
    hub.take()
    hub.event("$props", {"props": {"value": 10}}, component="c1")
    assert hub.diffs(component="c1") == [{"value": 10, "doubled": 20}]
    assert hub.diffs() == []


def test_page_hide_show_and_unload_reach_components() -> None:
    hub = started()
    attach(hub, "c1", {})
    hub.take()
    hub.deliver("app.visibility", {"app_id": "x", "visible": False})
    hub.deliver(
        "nav.result",
        {"call_id": 0, "ok": True, "closed": [1], "opened": {"page_id": 2, "route": "pages/index/index"}},
    )
    assert hub.logs()[:2] == ["page hide", "detached"]


def test_detach_and_unknown_components() -> None:
    hub = started()
    attach(hub, "c1", {})
    hub.take()
    hub.event("$detach", component="c1")
    assert hub.logs() == ["detached"]
    hub.event("tap", component="c1")
    assert "not attached" in hub.logs("warn")[0]
    attach(hub, "c9", {}, path="components/missing/missing")
    assert "components/missing/missing is not defined" in hub.errors()[0]["message"]


def test_component_cannot_be_called_outside_a_component_module() -> None:
    hub = FakeHub()
    hub.start({"app.js": "App({});", "pages/index/index.js": "Component({});"})
    assert "Component() must be called in a component module" in hub.errors()[0]["message"]
