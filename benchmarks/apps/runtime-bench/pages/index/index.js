// Drives the runtime benchmark: a tap counter and a setData flood over timers.
var ITEMS = 50;

Page({
  data: { taps: 0, calls: 0, done: 0, items: [] },
  onLoad: function () {
    var items = [];
    for (var i = 0; i < ITEMS; i++) items.push({ id: i, v: 0 });
    this.setData({ items: items });
  },
  onTap: function () {
    this.setData({ taps: this.data.taps + 1 });
  },
  // event.detail.calls setData calls, spread over timer ticks of event.detail.perTick calls each
  onFlood: function (event) {
    var page = this;
    var total = event.detail.calls;
    var perTick = event.detail.perTick;
    var made = 0;
    function tick() {
      for (var i = 0; i < perTick && made < total; i++) {
        var change = {};
        change['items[' + (made % ITEMS) + '].v'] = made;
        change.calls = made + 1;
        page.setData(change);
        made++;
      }
      if (made < total) setTimeout(tick, 0);
      else page.setData({ done: made });
    }
    tick();
  }
});
