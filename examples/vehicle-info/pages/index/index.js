Page({
  data: {
    model: 'Demo Sedan',
    vin: 'WVWZZZ1JZXW000001',
    odometer: 48213,
    taps: 0,
    checks: [
      { name: 'Tyre pressure', ok: true },
      { name: 'Brake fluid', ok: true },
      { name: 'Next service', ok: false },
    ],
  },
  onLoad(query) {
    this.setData({ unit: getApp().globalData.unit });
  },
  onTapCount(event) {
    const taps = this.data.taps + 1;
    this.setData({ taps: taps, 'checks[2].ok': taps % 2 === 0 });
  },
  onReset() {
    this.setData({ taps: 0 });
  },
});
