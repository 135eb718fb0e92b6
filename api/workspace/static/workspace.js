/* The officials' workspace: small enhancements only; every form works without this script.
   - Focus the error summary when a form comes back with problems.
   - Show a chosen file's SHA-256, computed in the browser, before it is uploaded (the
     server computes it again and shows both on the confirmation step).
   - Live preview of an amendment's diff: as the official types, the form is sent with
     action=preview (which records nothing) and the server's preview replaces the old one. */
(function () {
  "use strict";

  function hex(buffer) {
    return Array.prototype.map
      .call(new Uint8Array(buffer), function (b) { return b.toString(16).padStart(2, "0"); })
      .join("");
  }

  function livePreview(form) {
    var timer = null;
    var sent = 0;
    function refresh() {
      var data = new FormData(form);
      data.set("action", "preview");
      var mine = ++sent;
      // form.action would be the buttons named "action": read the attribute itself.
      fetch(form.getAttribute("action"), { method: "POST", body: data, credentials: "same-origin" })
        .then(function (response) { return response.ok ? response.text() : null; })
        .then(function (html) {
          if (html === null || mine !== sent) return;  // a newer preview is on its way
          var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("preview");
          var old = document.getElementById("preview");
          if (!fresh) { if (old) old.remove(); return; }
          fresh.setAttribute("aria-live", "polite");
          if (old) old.replaceWith(fresh); else form.parentNode.insertBefore(fresh, form);
        })
        .catch(function () { /* the Preview button still works */ });
    }
    form.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(refresh, 400);
    });
    form.addEventListener("change", function () {
      clearTimeout(timer);
      timer = setTimeout(refresh, 150);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var summary = document.querySelector("[data-error-summary]");
    if (summary) summary.focus();

    var amendment = document.querySelector("form.ws-form button[value='preview']");
    if (amendment && amendment.form && window.fetch && window.DOMParser) {
      livePreview(amendment.form);
    }

    document.querySelectorAll("input[data-hash-file]").forEach(function (input) {
      var output = input.parentNode.querySelector("[data-file-hash]");
      var hidden = input.form ? input.form.querySelector("[data-client-hash]") : null;
      input.addEventListener("change", function () {
        if (hidden) hidden.value = "";
        var file = input.files && input.files[0];
        if (!output || !file) return;
        if (!window.crypto || !window.crypto.subtle) {
          output.hidden = false;
          output.textContent = "Your browser cannot compute the SHA-256 here; the server will show it before anything is recorded.";
          return;
        }
        output.hidden = false;
        output.textContent = "Computing SHA-256…";
        file.arrayBuffer()
          .then(function (bytes) { return window.crypto.subtle.digest("SHA-256", bytes); })
          .then(function (digest) {
            var value = hex(digest);
            output.textContent = "";
            var label = document.createElement("span");
            label.textContent = "SHA-256 of " + file.name + ": ";
            var code = document.createElement("code");
            code.className = "hash";
            code.setAttribute("data-browser-sha256", "");
            code.textContent = value;
            output.appendChild(label);
            output.appendChild(code);
            if (hidden) hidden.value = value;
          })
          .catch(function () {
            output.textContent = "The SHA-256 could not be computed here; the server will show it before anything is recorded.";
          });
      });
    });
  });
})();
