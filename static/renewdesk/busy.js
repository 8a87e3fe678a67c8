/* Busy buttons, upload progress and file fields.

   - A form marked `data-busy` is sent once: on submit its submit buttons are disabled and the one
     pressed reads "处理中…" with a spinner (the words come from the server, #rd-busy-words). The
     pressed button's name and value still travel (a disabled button would not send them).
   - A form marked `data-upload` sends its files with XMLHttpRequest and shows a progress bar; the
     server's answer (the page a normal submit would show, after its redirects) then replaces the
     page. Without XMLHttpRequest upload events, or on a network error, the form is submitted the
     normal way. */
(function () {
  "use strict";

  function words() {
    var source = document.getElementById("rd-busy-words");
    try { return source ? JSON.parse(source.textContent) : {}; } catch (e) { return {}; }
  }

  function busy(form, submitter) {
    var text = words().working || "…";
    if (submitter && submitter.name && !form.querySelector("input[data-rd-submitter]")) {
      var carried = document.createElement("input");
      carried.type = "hidden";
      carried.name = submitter.name;
      carried.value = submitter.value;
      carried.setAttribute("data-rd-submitter", "");
      form.appendChild(carried);
    }
    var buttons = form.querySelectorAll("button[type=submit], button:not([type]), input[type=submit]");
    Array.prototype.forEach.call(buttons, function (button) {
      button.disabled = true;
      button.setAttribute("aria-disabled", "true");
    });
    var shown = submitter || buttons[0];
    if (shown) {
      shown.setAttribute("data-rd-label", shown.innerHTML);
      if (shown.tagName === "INPUT") { shown.value = text; }
      else {
        shown.innerHTML = '<span class="spinner-border spinner-border-sm mr-1" role="status" aria-hidden="true"></span>';
        shown.appendChild(document.createTextNode(text));
      }
    }
    form.setAttribute("data-rd-sending", "");
  }

  function progressBar(form) {
    var bar = form.parentNode.querySelector(".rd-upload-progress");
    if (!bar) {
      bar = document.createElement("div");
      bar.className = "progress rd-upload-progress my-2";
      bar.style.height = "1.5rem";
      bar.style.maxWidth = "40rem";
      bar.innerHTML = '<div class="progress-bar progress-bar-striped progress-bar-animated" role="progressbar" ' +
        'style="width: 0%; min-width: 6em" aria-valuemin="0" aria-valuemax="100" aria-valuenow="0"></div>';
      bar.firstChild.textContent = (words().uploading || "") + " 0%";
      form.parentNode.insertBefore(bar, form.nextSibling);
    }
    return bar.firstChild;
  }

  function upload(form) {
    var text = words();
    var bar = progressBar(form);
    var request = new XMLHttpRequest();
    request.open("POST", form.getAttribute("action") || window.location.href);
    request.upload.addEventListener("progress", function (event) {
      if (!event.lengthComputable) return;
      var percent = Math.round(event.loaded * 100 / event.total);
      bar.style.width = percent + "%";
      bar.setAttribute("aria-valuenow", String(percent));
      bar.textContent = (text.uploading || "") + " " + percent + "%";
    });
    request.upload.addEventListener("load", function () {
      bar.style.width = "100%";
      bar.textContent = text.processing || text.working || "";
    });
    request.addEventListener("load", function () {
      // The page a normal submit would have shown, at the address it would have had.
      if (request.responseURL && window.history && history.replaceState) {
        history.replaceState(null, "", request.responseURL);
      }
      document.open();
      document.write(request.responseText);
      document.close();
    });
    request.addEventListener("error", function () {
      form.removeAttribute("data-upload");
      HTMLFormElement.prototype.submit.call(form);
    });
    request.send(new FormData(form));
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement)) return;
    var wantsBusy = form.hasAttribute("data-busy") || form.hasAttribute("data-upload");
    if (!wantsBusy || event.defaultPrevented) return;
    if (form.hasAttribute("data-rd-sending")) { event.preventDefault(); return; }  // no double submit
    var uploads = form.hasAttribute("data-upload") && window.FormData && window.XMLHttpRequest &&
      "upload" in new XMLHttpRequest();
    if (uploads) {
      event.preventDefault();
      var submitter = event.submitter;
      busy(form, submitter);
      upload(form);
      return;
    }
    busy(form, event.submitter);
  });

  // A chosen file's name in its Bootstrap file field (the label says "choose a file" until then).
  document.addEventListener("change", function (event) {
    var input = event.target;
    if (!(input instanceof HTMLInputElement) || !input.classList.contains("custom-file-input")) return;
    var label = input.parentNode.querySelector(".custom-file-label");
    if (label && input.files && input.files.length) {
      label.textContent = Array.prototype.map.call(input.files, function (file) { return file.name; }).join(", ");
    }
  });

  // Back from the next page (bfcache): the form may be sent again.
  window.addEventListener("pageshow", function (event) {
    if (!event.persisted) return;
    Array.prototype.forEach.call(document.querySelectorAll("form[data-rd-sending]"), function (form) {
      form.removeAttribute("data-rd-sending");
      Array.prototype.forEach.call(form.querySelectorAll("[data-rd-label]"), function (button) {
        button.innerHTML = button.getAttribute("data-rd-label");
      });
      Array.prototype.forEach.call(form.querySelectorAll("button, input[type=submit]"), function (button) {
        button.disabled = false;
      });
      Array.prototype.forEach.call(form.querySelectorAll("input[data-rd-submitter]"), function (input) {
        input.parentNode.removeChild(input);
      });
    });
  });
})();
