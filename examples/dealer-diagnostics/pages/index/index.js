Page({
  data: { vin: '', adapter: { present: false }, ecus: [], scanning: false, error: '' },
  onLoad() {
    fc.vehicle.adapterStatus({}).then((status) => this.setData({ adapter: status }),
      (err) => this.setData({ error: err.errMsg }));
    fc.vehicle.readVin({ ecu: 'engine' }).then((res) => this.setData({ vin: res.vin }),
      (err) => this.setData({ error: err.errMsg }));
  },
  onScan() {
    this.setData({ scanning: true, error: '' });
    fc.vehicle.scanEcus({
      success: (res) => {
        getApp().globalData.ecus = res.ecus;
        this.setData({ ecus: res.ecus });
      },
      fail: (err) => this.setData({ error: err.errMsg }),
      complete: () => this.setData({ scanning: false }),
    });
  },
});
