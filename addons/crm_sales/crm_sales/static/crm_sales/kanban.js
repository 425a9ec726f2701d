// Drag a deal card to another column: POST the move, let the server decide, reflect its answer.
// Loaded as a file (CSP: script-src 'self'); the CSRF token comes from the board's data attribute.
(function () {
  "use strict";
  const board = document.querySelector(".board");
  if (!board || board.dataset.canMove !== "true") return;
  const status = document.getElementById("board-status");
  let dragged = null;

  function say(text) {
    status.textContent = text;
    status.hidden = !text;
  }

  board.addEventListener("dragstart", (event) => {
    dragged = event.target.closest(".deal");
    if (dragged) event.dataTransfer.setData("text/plain", dragged.dataset.id);
  });
  board.addEventListener("dragover", (event) => {
    if (dragged && event.target.closest(".column")) event.preventDefault();
  });
  board.addEventListener("drop", async (event) => {
    const column = event.target.closest(".column");
    if (!dragged || !column) return;
    event.preventDefault();
    const card = dragged;
    dragged = null;
    const from = card.closest(".column");
    if (from === column) return;
    column.querySelector(".cards").prepend(card);  // optimistic; undone if the server refuses
    try {
      const response = await fetch(`/sales/opportunities/${card.dataset.id}/move`, {
        method: "POST",
        credentials: "same-origin",
        headers: {"Content-Type": "application/json", "X-CSRF-Token": board.dataset.csrf},
        body: JSON.stringify({stage: Number(column.dataset.stage), version: Number(card.dataset.version)}),
      });
      const data = await response.json().catch(() => ({}));
      if (!response.ok) throw new Error((data.error && data.error.message) || response.statusText);
      card.dataset.version = data.version;
      say("");
    } catch (error) {
      from.querySelector(".cards").prepend(card);
      say(error.message);
    }
  });
})();
