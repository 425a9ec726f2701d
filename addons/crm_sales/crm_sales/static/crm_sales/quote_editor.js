// The quote editor without a round trip: add and remove lines, and fill a line from the product picked (code,
// description, unit, the price this quote gets, tax rate). Saving posts the form; the server recomputes every
// figure. Loaded as a file (CSP: script-src 'self').
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
