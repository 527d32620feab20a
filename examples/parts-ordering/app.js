App({
  globalData: { vin: '' },
});
