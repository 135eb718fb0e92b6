/* The officials' workspace: small enhancements only; every form works without this script.
   - Focus the error summary when a form comes back with problems.
   - Show a chosen file's SHA-256, computed in the browser, before it is uploaded (the
     server computes it again and shows both on the confirmation step). */
(function () {
  "use strict";

  function hex(buffer) {
    return Array.prototype.map
      .call(new Uint8Array(buffer), function (b) { return b.toString(16).padStart(2, "0"); })
      .join("");
  }

  document.addEventListener("DOMContentLoaded", function () {
    var summary = document.querySelector("[data-error-summary]");
    if (summary) summary.focus();

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
