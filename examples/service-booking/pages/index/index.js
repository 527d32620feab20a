// Free workshop slots (parts.slots), booking (parts.book; queued in the outbox while offline) and a
// reminder before the slot (notifications.schedule, when the head unit offers it).
var api = require('../../utils/api.js');

var DAYS = 5; // working days offered, starting tomorrow
var WEEKDAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
var MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
var REMINDERS = [
  { key: 'none', label: 'Off', before: 0 },
  { key: 'hour', label: '1 hour', before: 3600 * 1000 },
  { key: 'day', label: '1 day', before: 24 * 3600 * 1000 },
];
var STATUS = {
  queued: 'Queued, will be sent when online',
  sent: 'Sent, waiting for the workshop',
  confirmed: 'Confirmed by the workshop',
  rejected: 'Not booked',
};

function pad(n) { return (n < 10 ? '0' : '') + n; }
function isoDate(d) { return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()); }
function slotDate(slot) { // "2025-07-01T09:00" -> local Date
  var m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})$/.exec(slot);
  return m ? new Date(+m[1], +m[2] - 1, +m[3], +m[4], +m[5]) : null;
}
function dayLabel(d) { return WEEKDAYS[d.getDay()] + ' ' + d.getDate() + ' ' + MONTHS[d.getMonth()]; }
function slotLabel(slot) {
  var d = slotDate(slot);
  return d ? dayLabel(d) + ', ' + slot.slice(11) : slot;
}
function workingDays(from, count) {
  var out = [];
  var d = new Date(from.getFullYear(), from.getMonth(), from.getDate() + 1);
  while (out.length < count) {
    if (d.getDay() !== 0 && d.getDay() !== 6) out.push({ date: isoDate(d), label: dayLabel(d) });
    d = new Date(d.getFullYear(), d.getMonth(), d.getDate() + 1);
  }
  return out;
}
function dataset(event) {
  return (event && event.currentTarget && event.currentTarget.dataset) || {};
}

Page({
  data: {
    days: [],
    date: '',
    loading: true,
    error: '',
    slots: [],
    selected: '',
    selectedLabel: '',
    reminders: REMINDERS,
    reminder: 'hour',
    booking: false,
    bookError: '',
    notice: '',
    noticeStatus: '',
    lastId: '',
    reminderNote: '',
    bookings: [],
  },
  watcher: null,

  onLoad() {
    var days = workingDays(new Date(), DAYS);
    this.setData({ days: days });
    this.loadSlots(days[0].date);
    this.watch();
  },
  onUnload() {
    if (this.watcher) {
      this.watcher.stop();
      this.watcher = null;
    }
  },

  loadSlots(date) {
    this.setData({ date: date, loading: true, error: '', slots: [], selected: '', selectedLabel: '' });
    api.call('parts.slots', { date: date }).then((res) => {
      if (this.data.date !== date) return; // another day was picked meanwhile
      var slots = res.slots.map((s) => ({ slot: s, time: s.slice(11) }));
      this.setData({ loading: false, slots: slots });
    }, (err) => {
      if (this.data.date === date) this.setData({ loading: false, error: api.reason(err) });
    });
  },
  onDay(event) {
    var date = dataset(event).date;
    if (date && date !== this.data.date) this.loadSlots(date);
  },
  onRetry() {
    this.loadSlots(this.data.date);
  },
  onSlot(event) {
    var slot = dataset(event).slot;
    if (slot) this.setData({ selected: slot, selectedLabel: slotLabel(slot), bookError: '' });
  },
  onReminder(event) {
    var key = dataset(event).key;
    if (key) this.setData({ reminder: key });
  },

  onBook() {
    var slot = this.data.selected;
    if (!slot || this.data.booking) return;
    this.setData({ booking: true, bookError: '', reminderNote: '' });
    api.call('parts.book', { slot: slot, note: 'Booked from the head unit' }).then((placed) => {
      this.setData({
        booking: false, lastId: placed.orderId, noticeStatus: placed.status,
        notice: slotLabel(slot) + ': ' + (STATUS[placed.status] || placed.status) +
          (placed.status === 'rejected' && placed.error ? ' (' + placed.error + ')' : ''),
      });
      if (placed.status !== 'rejected') this.remind(slot);
      this.loadSlots(this.data.date);
    }, (err) => this.setData({ booking: false, bookError: api.reason(err) }));
  },

  remind(slot) {
    var choice = REMINDERS.find((r) => r.key === this.data.reminder) || REMINDERS[0];
    var start = slotDate(slot);
    if (choice.before === 0 || !start) return;
    var at = start.getTime() - choice.before;
    if (at <= Date.now()) {
      this.setData({ reminderNote: 'The slot is too soon for a reminder ' + choice.label + ' before.' });
      return;
    }
    api.call('notifications.schedule', {
      title: 'Workshop visit',
      body: 'Your service appointment is at ' + slotLabel(slot) + '.',
      at: at,
    }).then(
      () => this.setData({ reminderNote: 'Reminder set ' + choice.label + ' before the visit.' }),
      (err) => this.setData({ reminderNote: 'No reminder set (' + api.reason(err) + '): please note the time.' })
    );
  },

  watch() {
    if (!fc.canIUse('parts.watchOrders')) return;
    this.watcher = fc.parts.watchOrders({
      onData: (event) => {
        var bookings = (event.orders || []).filter((o) => o.kind === 'booking').map((o) => ({
          orderId: o.orderId, label: slotLabel(String(o.slot || '')), status: o.status,
          statusText: STATUS[o.status] || o.status,
        }));
        var changes = { bookings: bookings };
        var mine = (event.orders || []).find((o) => o.orderId === this.data.lastId);
        if (mine && mine.status !== this.data.noticeStatus) {
          changes.noticeStatus = mine.status;
          changes.notice = slotLabel(String(mine.slot || '')) + ': ' + (STATUS[mine.status] || mine.status);
        }
        this.setData(changes);
      },
      fail: () => { this.watcher = null; },
    });
  },
});
