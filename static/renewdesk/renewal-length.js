// 批量延期时长: choosing another renewal length reloads the list with the new prices. The devices already
// ticked stay ticked: their ids ride along as `ticked` and the page ticks them again (it ticks only rows
// still on the page that can be renewed; renewing checks everything on the server all the same).
(function () {
  var filter = document.getElementById("rd-renewal-filter");
  var months = document.getElementById("rd-months");
  var custom = document.getElementById("rd-custom-months");
  if (!filter || !months || !custom) return;

  function carryTicked() {
    filter.querySelectorAll("input[name=ticked]").forEach(function (old) { old.remove(); });
    document.querySelectorAll(".rd-device:checked").forEach(function (box) {
      var kept = document.createElement("input");
      kept.type = "hidden";
      kept.name = "ticked";
      kept.value = box.value;
      filter.appendChild(kept);
    });
  }

  filter.addEventListener("submit", carryTicked);
  months.addEventListener("change", function () {
    custom.hidden = months.value !== "custom";
    custom.required = !custom.hidden;
    if (custom.hidden) {
      carryTicked();
      filter.submit();  // submit() fires no submit event: the ids are carried above
    } else {
      custom.focus();
    }
  });
  custom.addEventListener("change", function () {
    if (custom.value) {
      carryTicked();
      filter.submit();
    }
  });
})();
