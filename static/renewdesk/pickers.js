/* Flask-Admin's date pickers (daterangepicker 1.3) in the reader's language, and never "Invalid date"
   left in a field. The words come from the server (#rd-picker-locale). The list's filters set their
   pickers up before DOMContentLoaded (they are localized in place); form fields and filters added later
   go through the wrapped plugin. */
document.addEventListener("DOMContentLoaded", function () {
  "use strict";
  var source = document.getElementById("rd-picker-locale");
  if (!window.jQuery || !jQuery.fn.daterangepicker || !source) return;
  var words = JSON.parse(source.textContent);

  function days() {
    var list = words.daysOfWeek.slice();  // Sunday first, as the picker counts; rotated to firstDay
    for (var i = 0; i < words.firstDay; i++) list.push(list.shift());
    return list;
  }

  function clearInvalid(input) {
    jQuery(input).on("hide.daterangepicker apply.daterangepicker change blur", function () {
      if (/Invalid date/.test(this.value)) { this.value = ""; }  // unreadable: cleared, never replaced by English
    });
  }

  function localize(input) {
    var picker = jQuery(input).data("daterangepicker");
    if (!picker || picker.renewdeskLocalized) return;
    jQuery.extend(picker.locale, {
      applyLabel: words.applyLabel, cancelLabel: words.cancelLabel, fromLabel: words.fromLabel,
      toLabel: words.toLabel, weekLabel: words.weekLabel, customRangeLabel: words.customRangeLabel,
      monthNames: words.monthNames.slice(), daysOfWeek: days(), firstDay: words.firstDay
    });
    picker.container.find(".applyBtn").html(words.applyLabel);
    picker.container.find(".cancelBtn").html(words.cancelLabel);
    picker.container.find(".daterangepicker_start_input label").html(words.fromLabel);
    picker.container.find(".daterangepicker_end_input label").html(words.toLabel);
    if (picker.updateCalendars) picker.updateCalendars();
    picker.renewdeskLocalized = true;
    clearInvalid(input);
  }

  var original = jQuery.fn.daterangepicker;
  jQuery.fn.daterangepicker = function () {
    var result = original.apply(this, arguments);
    this.each(function () { localize(this); });
    return result;
  };
  jQuery("input").each(function () { localize(this); });
});
