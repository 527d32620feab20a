// Diagnose -> suggested parts -> cart -> order, with live order status from parts.watchOrders.
var api = require('../../utils/api.js');

var STATUS = {
  queued: 'Queued, will be sent when online',
  sent: 'Sent to the dealer, waiting for confirmation',
  confirmed: 'Confirmed by the dealer',
  backordered: 'Confirmed; some parts are on back order',
  rejected: 'Rejected by the dealer',
};
var DTC = /^[PCBU][0-9A-F]{4}$/;

function dataset(event) {
  return (event && event.currentTarget && event.currentTarget.dataset) || {};
}

function orderView(o) {
  var when = String(o.created ? new Date(o.created * 1000).toISOString() : '').slice(0, 16).replace('T', ' ');
  var items = (o.items || []).map(function (i) { return i.quantity + ' × ' + i.partNumber; }).join(', ');
  return {
    orderId: o.orderId,
    kind: o.kind === 'booking' ? 'Workshop booking' : 'Parts order',
    what: o.kind === 'booking' ? String(o.slot || '').replace('T', ' ') : items,
    status: o.status,
    statusText: STATUS[o.status] || o.status,
    dealerId: o.dealerId || '',
    total: o.totalCents !== undefined ? api.money(o.totalCents, o.currency) : '',
    error: o.error && o.status === 'rejected' ? o.error : '',
    when: when,
  };
}

Page({
  data: {
    tab: 'diagnose',
    vin: '',
    dtcLoading: true,
    dtcError: '',
    dtcs: [],
    suggestLoading: false,
    suggestError: '',
    fitNote: '',
    suggestions: [],
    cartItems: [],
    cartCount: 0,
    cartTotal: '',
    cartBusy: '',
    cartError: '',
    ordering: false,
    orderError: '',
    orderNotice: '',
    orderStatus: '',
    lastOrderId: '',
    orders: [],
    ordersLoading: true,
    ordersError: '',
  },
  watcher: null,

  onLoad() {
    this.diagnose();
    this.loadCart();
    this.watch();
  },
  onUnload() {
    if (this.watcher) {
      this.watcher.stop();
      this.watcher = null;
    }
  },
  onTab(event) {
    this.setData({ tab: dataset(event).tab || 'diagnose' });
  },

  // -- diagnose: VIN and trouble codes through the diagnostics plugin, then the dealer's suggestions
  diagnose() {
    this.setData({ dtcLoading: true, dtcError: '', suggestions: [], suggestError: '', fitNote: '' });
    var vin = api.call('vehicle.readVin', {}).then((r) => r.vin, () => '');
    Promise.all([vin, api.call('vehicle.readDtcs', {})]).then((res) => {
      var dtcs = res[1].dtcs.map((d) => ({
        key: d.ecu + d.code, code: d.code, ecu: d.ecu, description: d.description || 'No description',
        confirmed: !!(d.statusBits && d.statusBits.confirmedDTC),
      }));
      getApp().globalData.vin = res[0];
      this.setData({ vin: res[0], dtcs: dtcs, dtcLoading: false });
      this.suggest();
    }, (err) => this.setData({ dtcLoading: false, dtcError: api.reason(err) }));
  },
  suggest() {
    var codes = [];
    this.data.dtcs.forEach((d) => {
      var code = String(d.code).toUpperCase();
      if (DTC.test(code) && codes.indexOf(code) < 0 && codes.length < 20) codes.push(code);
    });
    if (codes.length === 0) return;
    this.setData({ suggestLoading: true, suggestError: '' });
    var vin = this.data.vin;
    var byVin = vin ? api.call('parts.suggest', { dtcs: codes, vin: vin }) : Promise.resolve({ suggestions: [] });
    byVin.then((res) => {
      if (res.suggestions.length > 0 || !vin) return { list: res.suggestions, note: vin ? 'Fits VIN ' + vin : '' };
      return api.call('parts.suggest', { dtcs: codes }).then((all) => ({
        list: all.suggestions, note: 'Fit for VIN ' + vin + ' not confirmed: ask the dealer before fitting.',
      }));
    }).then((found) => {
      var list = found.list.map((s) => ({
        key: s.dtc + s.part.partNumber, dtc: s.dtc, reason: s.reason, partNumber: s.part.partNumber,
        name: s.part.name, price: api.money(s.part.priceCents, s.part.currency),
        stock: s.part.stock > 0 ? s.part.stock + ' in stock' : 'on order',
      }));
      this.setData({ suggestions: list, fitNote: found.note, suggestLoading: false });
    }, (err) => this.setData({ suggestLoading: false, suggestError: api.reason(err) }));
  },

  // -- cart ----------------------------------------------------------------------------------------
  showCart(cart) {
    var count = 0;
    var items = cart.items.map((i) => {
      count += i.quantity;
      return {
        partNumber: i.partNumber, name: i.name || i.partNumber, quantity: i.quantity,
        price: i.priceCents !== undefined ? api.money(i.priceCents * i.quantity, i.currency) : 'price at order',
      };
    });
    this.setData({ cartItems: items, cartCount: count, cartTotal: api.money(cart.totalCents), cartBusy: '' });
  },
  loadCart() {
    api.call('parts.cart', {}).then((cart) => this.showCart(cart),
      (err) => this.setData({ cartError: api.reason(err) }));
  },
  setQuantity(partNumber, quantity) {
    this.setData({ cartBusy: partNumber, cartError: '' });
    var done = quantity > 0
      ? api.call('parts.cartAdd', { partNumber: partNumber, quantity: Math.min(quantity, 99) })
      : api.call('parts.cartRemove', { partNumber: partNumber });
    return done.then((cart) => this.showCart(cart),
      (err) => this.setData({ cartBusy: '', cartError: api.reason(err) }));
  },
  quantityOf(partNumber) {
    var item = this.data.cartItems.find((i) => i.partNumber === partNumber);
    return item ? item.quantity : 0;
  },
  onAdd(event) {
    var pn = dataset(event).pn;
    if (pn) this.setQuantity(pn, this.quantityOf(pn) + 1);
  },
  onMore(event) {
    var pn = dataset(event).pn;
    if (pn) this.setQuantity(pn, this.quantityOf(pn) + 1);
  },
  onLess(event) {
    var pn = dataset(event).pn;
    if (pn) this.setQuantity(pn, this.quantityOf(pn) - 1);
  },

  // -- order ---------------------------------------------------------------------------------------
  onOrder() {
    if (this.data.ordering || this.data.cartItems.length === 0) return;
    this.setData({ ordering: true, orderError: '' });
    var vin = this.data.vin;
    api.call('parts.order', vin ? { note: 'VIN ' + vin } : {}).then((placed) => {
      this.setData({
        ordering: false, lastOrderId: placed.orderId, orderStatus: placed.status,
        orderNotice: 'Order ' + placed.orderId + ': ' + (STATUS[placed.status] || placed.status),
      });
      this.loadCart();
    }, (err) => this.setData({ ordering: false, orderError: api.reason(err) }));
  },

  // -- live status ---------------------------------------------------------------------------------
  watch() {
    this.watcher = fc.canIUse('parts.watchOrders') ? fc.parts.watchOrders({
      onData: (event) => {
        var changes = { orders: (event.orders || []).map(orderView), ordersLoading: false, ordersError: '' };
        var mine = (event.orders || []).find((o) => o.orderId === this.data.lastOrderId);
        if (mine) {
          changes.orderStatus = mine.status;
          changes.orderNotice = 'Order ' + mine.orderId + ': ' + (STATUS[mine.status] || mine.status);
        }
        this.setData(changes);
      },
      fail: (err) => {
        this.watcher = null;
        if (err.code !== 'cancelled') this.setData({ ordersLoading: false, ordersError: api.reason(err) });
      },
    }) : null;
    if (!this.watcher) this.setData({ ordersLoading: false, ordersError: 'Order tracking is not available on this head unit' });
  },
  onRetry() {
    this.diagnose();
  },
  onRetryOrders() {
    if (!this.watcher) this.watch();
  },
});
