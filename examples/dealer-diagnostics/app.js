App({
  globalData: { ecus: [] },
  onLaunch() {
    console.log('dealer diagnostics launched');
  },
});
