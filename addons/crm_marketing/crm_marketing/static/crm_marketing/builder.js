// The segment builder's live count: the condition is posted (with the page's CSRF token) as the user types.
(function () {
  "use strict";
  var form = document.getElementById("builder");
  var area = document.getElementById("condition");
  var out = document.getElementById("live-count");
  if (!form || !area || !out) { return; }
  var timer = null;
  function count() {
    fetch("/marketing/segments/count", {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRF-Token": form.dataset.csrf},
      body: JSON.stringify({condition: area.value})
    }).then(function (r) { return r.json(); }).then(function (data) {
      if (data.error) {
        var fields = data.error.fields || {};
        out.textContent = Object.keys(fields).map(function (k) { return k + ": " + fields[k]; }).join("; ");
      } else {
        out.textContent = String(data.count);
      }
    }).catch(function () { out.textContent = "—"; });
  }
  area.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(count, 400); });
  count();
})();
