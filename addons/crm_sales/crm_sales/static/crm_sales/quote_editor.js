// The quote editor without a round trip: add and remove lines, and fill a line from the product picked (code,
// description, unit, the price this quote gets, tax rate). Each line's amount and the totals follow what is
// typed: the server computes them (…/preview, the same rounding and price lists as saving; no arithmetic here,
// so the figures shown are the ones that will be saved). Loaded as a file (CSP: script-src 'self').
(function () {
  "use strict";
  const form = document.querySelector("form.quote-editor");
  if (!form) return;
  const rows = form.querySelector(".line-rows");
  const template = document.getElementById("line-template");
  const add = form.querySelector(".add-line");
  let next = 0;
  rows.querySelectorAll("select.line-product").forEach((s) => {
    next = Math.max(next, Number(s.name.split("_").pop()) + 1);
  });

  const totals = form.querySelector(".quote-totals");
  const problem = form.querySelector(".preview-error");
  let timer = 0;
  let asked = 0;

  async function refresh() {
    const ask = ++asked;
    const body = new URLSearchParams(new FormData(form));
    const response = await fetch(totals.dataset.preview, {
      method: "POST", body, credentials: "same-origin",
      headers: {"X-CSRF-Token": body.get("csrf_token") || ""},
    });
    if (ask !== asked) return;  // a later edit asked again: its answer is the one to show
    const got = document.createElement("template");
    got.innerHTML = await response.text();
    form.querySelectorAll("[aria-invalid]").forEach((el) => el.removeAttribute("aria-invalid"));
    const error = got.content.querySelector("[data-preview-error]");
    if (error) {
      problem.replaceChildren(error);
      (error.dataset.invalid || "").split(" ").filter(Boolean).forEach((name) => {
        const input = form.querySelector(`[name="${name}"]`);
        if (input) input.setAttribute("aria-invalid", "true");
      });
      return;
    }
    problem.replaceChildren();
    const amounts = new Map();
    got.content.querySelectorAll(".line-amounts li").forEach((li) => amounts.set(li.dataset.index, li.textContent));
    rows.querySelectorAll("tr.line").forEach((row) => {
      const index = row.querySelector("select.line-product").name.split("_").pop();
      row.querySelector("td.amount").textContent = amounts.get(index) || "";
    });
    const table = got.content.querySelector("table.totals");
    if (table) totals.replaceChildren(table);
  }

  function later() {
    clearTimeout(timer);
    timer = setTimeout(() => { refresh().catch(() => {}); }, 300);  // offline: the saved figures stay shown
  }
  form.addEventListener("input", later);
  form.addEventListener("change", later);

  add.hidden = false;
  add.addEventListener("click", () => {
    const html = template.innerHTML.replaceAll("__i__", String(next++));
    rows.insertAdjacentHTML("beforeend", html);
    const added = rows.lastElementChild;
    added.querySelector("select, input").focus();
  });

  rows.addEventListener("click", (event) => {
    const button = event.target.closest(".remove-line");
    if (!button) return;
    button.closest("tr").remove();  // its inputs leave the form: the saved quote no longer has the line
    later();
  });

  rows.addEventListener("change", (event) => {
    const select = event.target.closest("select.line-product");
    if (!select) return;
    const option = select.selectedOptions[0];
    if (!option || !option.value) return;
    const row = select.closest("tr");
    const set = (field, value, always) => {
      const input = row.querySelector(`[data-field="${field}"]`);
      if (input && value !== undefined && value !== "" && (always || !input.value)) input.value = value;
    };
    set("code", option.dataset.code, true);
    set("description", option.dataset.name, true);
    set("unit", option.dataset.unit, true);
    set("unit_price", option.dataset.price, true);
    set("tax_rate", option.dataset.tax, true);
    set("quantity", "1", false);
  });
})();
