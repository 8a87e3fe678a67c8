/* Dependent selects: the city list follows the chosen province (data: actions/regions.json,
 * embedded in the page). A value not on the lists (stored before them) stays as the server drew it. */
function renewdeskRegions(provinceId, cityId, dataId) {
  var province = document.getElementById(provinceId), city = document.getElementById(cityId);
  var source = document.getElementById(dataId);
  if (!province || !city || !source) { return; }
  var data = JSON.parse(source.textContent), cities = {};
  Object.keys(data).forEach(function (country) {
    data[country].forEach(function (p) { cities[p.name] = p.cities; });
  });
  var placeholder = city.options.length ? city.options[0].text : '';
  function fill() {
    var chosen = city.value, list = cities[province.value];
    if (list === undefined) { return; }  // an old value off the list: keep the server's options
    while (city.options.length) { city.remove(0); }
    city.add(new Option(placeholder, ''));
    list.forEach(function (name) { city.add(new Option(name, name, false, name === chosen)); });
    if (list.length === 1) { city.value = list[0]; }
    city.disabled = list.length === 0;
  }
  province.addEventListener('change', fill);
  fill();
}
