// The first page: its data is what index.wxml shows; this.setData() changes it on screen.
const format = require('../../utils/format.js');

Page({
  data: {
    count: 0,
    label: format.countLabel(0),
    level: format.level(0),
  },
  onLoad(query) {
    console.log('index page loaded', JSON.stringify(query));
  },
  onTap() {
    const count = this.data.count + 1;
    this.setData({ count: count, label: format.countLabel(count), level: format.level(count) });
  },
  onReset() {
    this.setData({ count: 0, label: format.countLabel(0), level: format.level(0) });
  },
});
