// Merge page: when the user picks another record to keep, the fields they have not picked themselves follow
// it (where it has a value), so what is shown checked is what the merge will keep. Without this script the
// page still works: each field then keeps the value that is checked, the first non-empty one.
(function () {
  "use strict";
  const table = document.querySelector("table.merge");
  if (!table) return;
  table.addEventListener("change", (event) => {
    const input = event.target;
    if (input.name && input.name.startsWith("field_")) {
      input.closest("tr").dataset.picked = "true";
      return;
    }
    if (input.name !== "survivor") return;
    for (const row of table.querySelectorAll("tr[data-field]:not([data-picked])")) {
      const mine = row.querySelector(`input[value="${input.value}"]`);
      if (mine && !mine.hasAttribute("data-empty")) mine.checked = true;
      else if (mine) (row.querySelector("input:not([data-empty])") || mine).checked = true;
    }
  });
})();
