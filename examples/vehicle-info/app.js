App({
  globalData: { unit: 'km' },
  onLaunch(options) {
    console.log('vehicle info launched at', options.path);
  },
});
