// Marks the page once every resource arrived: each image decoded with a
// size, the stylesheet applied.  tests/bats/gateway.bats reads the marker
// from Chromium's --dump-dom.
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var bad = imgs.filter(function (i) { return !i.complete || i.naturalWidth === 0; })
    .map(function (i) { return i.getAttribute('src'); });
  var bg = getComputedStyle(document.body).backgroundColor;
  var marker = document.createElement('p');
  marker.id = 'an-check';
  marker.textContent = (bad.length === 0 && bg === 'rgb(1, 2, 3)')
    ? 'an-check: ok images=' + imgs.length
    : 'an-check: failed missing=' + bad.join(',') + ' background=' + bg;
  document.body.appendChild(marker);
});
