// Checkout step 2: "Edit details" opens the company profile in another tab; when the payer comes back to
// this one, the customer details shown here are read again (the order uses the company's saved ones).
(function () {
  var details = document.getElementById("rd-customer-details");
  var edit = document.getElementById("rd-edit-customer");
  if (!details || !edit) return;
  var away = false;
  edit.addEventListener("click", function () { away = true; });
  function refresh() {
    if (!away || document.visibilityState === "hidden") return;
    away = false;
    fetch(details.getAttribute("data-url"), {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (answer) { return answer.ok ? answer.json() : null; })
      .then(function (company) {
        if (company) details.textContent = [company.name, company.tax_id, company.address].filter(Boolean).join(" · ");
      })
      .catch(function () {});
  }
  window.addEventListener("focus", refresh);
  document.addEventListener("visibilitychange", refresh);
})();
