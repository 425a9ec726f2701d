// The shell: the phone menu button, and the header search ("/" to focus, results as you type).
(function () {
  "use strict";
  var toggle = document.querySelector("[data-menu-toggle]");
  var nav = document.getElementById("main-nav");
  if (toggle && nav) {
    toggle.addEventListener("click", function () {
      var open = nav.getAttribute("data-open") !== "true";
      nav.setAttribute("data-open", open ? "true" : "false");
      toggle.setAttribute("aria-expanded", open ? "true" : "false");
    });
  }
  var input = document.querySelector("[data-global-search]");
  var box = document.querySelector("[data-search-results]");
  if (!input || !box) return;
  document.addEventListener("keydown", function (e) {
    var tag = (e.target && e.target.tagName) || "";
    if (e.key === "/" && !/INPUT|TEXTAREA|SELECT/.test(tag) && !e.target.isContentEditable) {
      e.preventDefault();
      input.focus();
    } else if (e.key === "Escape" && document.activeElement === input) {
      box.hidden = true;
      input.blur();
    }
  });
  var timer = null, asked = "";
  function show(groups) {
    box.textContent = "";
    groups.forEach(function (g) {
      var h = document.createElement("h3");
      h.textContent = g.label;
      box.appendChild(h);
      var ul = document.createElement("ul");
      g.hits.forEach(function (hit) {
        var li = document.createElement("li"), a = document.createElement("a");
        a.href = hit.url;
        a.textContent = hit.title;
        li.appendChild(a);
        if (hit.subtitle) {
          var small = document.createElement("small");
          small.className = "muted";
          small.textContent = " " + hit.subtitle;
          li.appendChild(small);
        }
        ul.appendChild(li);
      });
      box.appendChild(ul);
    });
    if (!groups.length) {
      var p = document.createElement("p");
      p.className = "muted";
      p.textContent = box.getAttribute("data-empty") || "—";
      box.appendChild(p);
    }
    box.hidden = false;
  }
  input.addEventListener("input", function () {
    clearTimeout(timer);
    var q = input.value.trim();
    if (q.length < 2) { box.hidden = true; return; }
    timer = setTimeout(function () {
      asked = q;
      fetch("/api/search?limit=5&q=" + encodeURIComponent(q), {credentials: "same-origin",
                                                                headers: {"Accept": "application/json"}})
        .then(function (r) { return r.ok ? r.json() : {groups: []}; })
        .then(function (data) { if (asked === q) show(data.groups || []); })
        .catch(function () { box.hidden = true; });
    }, 180);
  });
  document.addEventListener("click", function (e) {
    if (!box.contains(e.target) && e.target !== input) box.hidden = true;
  });
})();
