/* Select2 3.5 (Flask-Admin's searchable selects) in the reader's language: its own messages ("No matches
   found", "Please enter 1 or more character", "Searching…") are English. The words come from the server
   (#rd-select2-words); they are set as defaults before Flask-Admin builds its selects (on DOM ready). */
document.addEventListener("DOMContentLoaded", function () {
  "use strict";
  var source = document.getElementById("rd-select2-words");
  if (!window.jQuery || !jQuery.fn.select2 || !jQuery.fn.select2.defaults || !source) return;
  var words = JSON.parse(source.textContent);
  function count(template, n) { return template.replace("{n}", String(n)); }
  jQuery.extend(jQuery.fn.select2.defaults, {
    formatNoMatches: function () { return words.noMatches; },
    formatSearching: function () { return words.searching; },
    formatLoadMore: function () { return words.loadMore; },
    formatAjaxError: function () { return words.ajaxError; },
    formatInputTooShort: function (input, min) { return count(words.tooShort, Math.max(min - input.length, 1)); },
    formatInputTooLong: function (input, max) { return count(words.tooLong, Math.max(input.length - max, 1)); },
    formatSelectionTooBig: function (limit) { return count(words.tooBig, limit); },
    formatMatches: function (matches) { return count(words.matches, matches); }
  });
});
