Page({
  data: { dtcs: [], errorList: [], loading: true, error: '' },
  onLoad() {
    this.load();
  },
  load() {
    this.setData({ loading: true, error: '' });
    fc.vehicle.readDtcs({ withSnapshots: true }).then((res) => {
      const errorList = Object.keys(res.errors).map((ecu) => ({ ecu: ecu, message: res.errors[ecu] }));
      this.setData({ dtcs: res.dtcs, errorList: errorList, loading: false });
    }, (err) => this.setData({ loading: false, error: err.errMsg }));
  },
  onFreezeFrame(event) {
    const ecu = event.currentTarget.dataset.ecu;
    const dtc = event.currentTarget.dataset.dtc;
    fc.vehicle.readFreezeFrame({ ecu: ecu, dtc: dtc }).then((res) => {
      const index = this.data.dtcs.findIndex((d) => d.ecu === ecu && d.code === dtc);
      if (index >= 0) {
        this.setData({ ['dtcs[' + index + '].snapshots']: res.records });
      }
    }, (err) => this.setData({ error: err.errMsg }));
  },
  onClear() {
    fc.showModal({
      title: 'Clear trouble codes?',
      content: 'Stored codes and freeze frames are erased on every ECU. The vehicle must be parked.',
      confirmText: 'Clear',
      success: (res) => {
        if (!res.confirm) {
          return;
        }
        fc.vehicle.clearDtcs({}).then((result) => {
          fc.showToast({ title: 'Cleared ' + result.cleared.length + ' ECUs' });
          this.load();
        }, (err) => this.setData({ error: err.errMsg }));
      },
    });
  },
});
