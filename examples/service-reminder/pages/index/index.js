Page({
  data: {
    dueInKm: 1200,
    items: ['Engine oil and filter', 'Cabin air filter', 'Brake inspection'],
    snoozed: false,
  },
  onSnooze() {
    this.setData({ snoozed: true, dueInKm: this.data.dueInKm + 500 });
  },
});
