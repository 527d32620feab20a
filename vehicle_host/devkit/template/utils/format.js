// A plain module: pages load it with require('../../utils/format.js').
function countLabel(count) {
  if (count === 0) return 'Not tapped yet';
  return 'Tapped ' + count + (count === 1 ? ' time' : ' times');
}

function level(count) {
  if (count >= 10) return 'high';
  if (count >= 3) return 'medium';
  return 'low';
}

module.exports = { countLabel: countLabel, level: level };
