// The dealer's current offers from GET /v1/campaigns through fc.request (allow-listed host only).
var config = require('../../config.js');

function money(cents, currency) {
  var amount = (Number(cents) / 100).toFixed(2);
  return currency === 'EUR' || !currency ? '€' + amount : amount + ' ' + currency;
}
function reason(err) {
  var text = String((err && err.errMsg) || err || 'failed');
  var at = text.indexOf(':fail ');
  return at >= 0 ? text.slice(at + 6) : text;
}
function campaignView(c) {
  return {
    id: String(c.id),
    title: String(c.title || c.id),
    description: String(c.description || ''),
    price: c.priceCents !== undefined ? money(c.priceCents, c.currency) : '',
    valid: c.validFrom && c.validTo ? 'Valid ' + c.validFrom + ' to ' + c.validTo : '',
    parts: Array.isArray(c.parts) && c.parts.length ? 'Parts: ' + c.parts.join(', ') : '',
  };
}

Page({
  data: { loading: true, error: '', campaigns: [], open: '', updated: '' },
  task: null,

  onLoad() {
    this.load();
  },
  onUnload() {
    if (this.task) this.task.abort();
  },
  onPullDownRefresh() {
    this.load();
  },
  onRefresh() {
    this.load();
  },
  load() {
    if (this.task) return;
    this.setData({ loading: true, error: '' });
    this.task = fc.request({
      url: config.campaignApi + '/v1/campaigns',
      method: 'GET',
      timeout: 8000,
      success: (res) => {
        var body = res.data || {};
        if (res.statusCode !== 200 || !Array.isArray(body.campaigns)) {
          var why = body.error && body.error.message ? body.error.message : 'HTTP ' + res.statusCode;
          this.setData({ loading: false, error: 'The dealer answered: ' + why });
          return;
        }
        var now = new Date();
        this.setData({
          loading: false,
          campaigns: body.campaigns.slice(0, 50).map(campaignView),
          updated: 'Updated ' + String(now.getHours()).padStart(2, '0') + ':' + String(now.getMinutes()).padStart(2, '0'),
        });
      },
      fail: (err) => this.setData({ loading: false, error: reason(err) }),
      complete: () => {
        this.task = null;
        fc.stopPullDownRefresh();
      },
    });
  },
  onToggle(event) {
    var id = (event && event.currentTarget && event.currentTarget.dataset.id) || '';
    this.setData({ open: this.data.open === id ? '' : id });
  },
});
