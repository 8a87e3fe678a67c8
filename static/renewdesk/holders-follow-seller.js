// Sell cards: the "Shipped by" list offers only the holders whose cards the chosen distributor may sell (the
// platform, its upstream distributors and itself); when the distributor changes, the list is read again.
// Placing the order checks the holder on the server all the same.
(function () {
  var seller = document.getElementById("seller_id");
  var holder = document.getElementById("holder");
  if (!seller || !holder || !holder.getAttribute("data-url")) return;
  var asked = 0;
  seller.addEventListener("change", function () {
    var mine = ++asked;
    var url = holder.getAttribute("data-url") + "?seller_id=" + encodeURIComponent(seller.value);
    fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (answer) { return answer.ok ? answer.json() : null; })
      .then(function (found) {
        if (!found || mine !== asked) return;  // a later change has its own answer coming
        var kept = holder.value;
        while (holder.options.length) holder.remove(0);
        found.holders.forEach(function (row) {
          holder.add(new Option(row.name, String(row.id)));  // text, never markup
        });
        holder.value = kept;
        if (holder.selectedIndex < 0) holder.selectedIndex = 0;
      })
      .catch(function () {});
  });
})();
