// Where the campaign API lives. The host must also be on vehicle.network in app.json (the head
// unit refuses every other host); plain http is accepted only for loopback addresses.
module.exports = {
  campaignApi: 'http://127.0.0.1:18470',
};
