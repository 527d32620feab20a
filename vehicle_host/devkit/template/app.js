// Runs once when the app starts. globalData is shared by every page (getApp().globalData).
App({
  globalData: { launchedAt: 0 },
  onLaunch(options) {
    this.globalData.launchedAt = Date.now();
    console.log('__NAME__ launched at', options.path);
  },
});
