// Checkout step 2, Thông tin xuất hóa đơn: picking a saved invoice title fills the invoice fields from it and
// notes which title filled them (#rd-invoice-title-filled, so the server keeps what is in the fields); editing a
// field away from the title afterwards turns the list to "New title", so what is typed is what is submitted.
(function () {
  var list = document.getElementById("rd-invoice-title-id");
  var filled = document.getElementById("rd-invoice-title-filled");
  if (!list || !filled) return;
  var fields = {title: "rd-invoice-title", taxId: "rd-invoice-tax-id", address: "rd-invoice-address"};
  function field(key) { return document.getElementById(fields[key]); }
  function picked() { return list.options[list.selectedIndex]; }

  list.addEventListener("change", function () {
    var option = picked();
    if (!option.value) { filled.value = ""; return; }  // a new title: the fields stay, to be edited
    Object.keys(fields).forEach(function (key) {
      if (option.dataset[key] || key !== "address") field(key).value = option.dataset[key] || "";
    });
    filled.value = option.value;
  });
  Object.keys(fields).forEach(function (key) {
    field(key).addEventListener("input", function () {
      var option = picked();
      if (!option.value || (key === "address" && !option.dataset.address)) return;
      if (field(key).value !== option.dataset[key]) { list.value = ""; filled.value = ""; }
    });
  });
})();
