// A custom component: properties come from the page (<badge text="..." count="...">).
Component({
  properties: {
    text: { type: String, value: '' },
    count: { type: Number, value: 0 },
  },
  data: { hot: false },
  observers: {
    count: function (count) {
      this.setData({ hot: count >= 10 });
    },
  },
});
