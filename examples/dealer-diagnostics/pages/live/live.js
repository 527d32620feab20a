const PIDS = ['rpm', 'speed', 'coolantTemp', 'engineLoad'];

function clamp(value) {
  return Math.max(0, Math.min(100, Math.round(value)));
}

Page({
  data: { rpm: 0, speed: 0, coolant: 0, load: 0, rpmPercent: 0, speedPercent: 0, coolantPercent: 0,
    watching: false, error: '' },
  handle: null,
  onShow() {
    this.start();
  },
  onHide() {
    this.stop();
  },
  onUnload() {
    this.stop();
  },
  start() {
    if (this.handle) {
      return;
    }
    this.setData({ watching: true, error: '' });
    this.handle = fc.vehicle.watchPids({
      pids: PIDS,
      rateHz: 5,
      onData: (data) => {
        if (data.error) {
          this.setData({ error: data.error });
          return;
        }
        const v = data.values;
        this.setData({
          rpm: v.rpm.value, rpmPercent: clamp(v.rpm.value / 70),
          speed: v.speed.value, speedPercent: clamp(v.speed.value / 2.2),
          coolant: v.coolantTemp.value, coolantPercent: clamp(v.coolantTemp.value / 1.3),
          load: clamp(v.engineLoad.value), error: '',
        });
      },
      success: () => {},
      fail: (err) => {
        this.handle = null;
        this.setData({ watching: false, error: err.errMsg });
      },
    });
  },
  stop() {
    if (this.handle) {
      this.handle.stop();
      this.handle = null;
    }
    this.setData({ watching: false });
  },
  onToggle() {
    if (this.handle) {
      this.stop();
    } else {
      this.start();
    }
  },
});
