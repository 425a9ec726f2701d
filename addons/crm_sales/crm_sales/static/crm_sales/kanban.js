// Move a deal card to another column with a mouse, a pen or a finger (Pointer Events: one code path; the card's
// handle has touch-action: none so a finger drags it while the rest of the board still scrolls). The move is
// POSTed, the server decides, the board reflects its answer: on refusal the card goes back with the reason.
// Loaded as a file (CSP: script-src 'self'); the CSRF token comes from the board's data attribute.
(function () {
  "use strict";
  const board = document.querySelector(".board");
  if (!board || board.dataset.canMove !== "true") return;
  const status = document.getElementById("board-status");
  const lang = document.documentElement.lang || "en";
  let drag = null;  // {card, from, ghost, dx, dy, over, pointerId}

  function say(text) {
    status.textContent = text;
    status.hidden = !text;
  }

  // column totals follow the cards: count, and the sum per currency formatted like the server does; amounts
  // travel in the currency's minor unit (integers: adding them is exact)
  function money(currency, minor) {
    const format = new Intl.NumberFormat(lang, {style: "currency", currency});
    return format.format(minor / 10 ** format.resolvedOptions().maximumFractionDigits);
  }
  function sums(column) {
    const total = column.querySelector(".column-total");
    const out = {};
    (total.dataset.sums || "").trim().split(/\s+/).filter(Boolean).forEach((pair) => {
      const [cur, amount] = pair.split("=");
      out[cur] = Number(amount);
    });
    return out;
  }
  function adjust(column, card, sign) {
    const total = column.querySelector(".column-total");
    const count = total.querySelector(".count");
    const n = Number(count.dataset.count) + sign;
    count.dataset.count = String(n);
    count.textContent = new Intl.NumberFormat(lang).format(n);
    const all = sums(column);
    const cur = card.dataset.currency;
    all[cur] = (all[cur] || 0) + sign * Number(card.dataset.minor || 0);
    total.dataset.sums = Object.entries(all).map(([c, a]) => `${c}=${a}`).join(" ");
    total.querySelectorAll(".sum, .sep").forEach((el) => el.remove());
    Object.keys(all).sort().forEach((c) => {
      if (n === 0) return;
      const sep = document.createElement("span");
      sep.className = "sep";
      sep.textContent = " · ";
      const span = document.createElement("span");
      span.className = "sum";
      span.dataset.currency = c;
      span.textContent = money(c, all[c]);
      total.append(sep, span);
    });
  }

  async function move(card, from, column) {
    card.dataset.moving = "1";  // one move at a time per card: the next one needs the version this one returns
    column.querySelector(".cards").prepend(card);  // optimistic; undone if the server refuses
    adjust(from, card, -1);
    adjust(column, card, +1);
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
      adjust(column, card, -1);
      adjust(from, card, +1);
      say(error.message);
    } finally {
      delete card.dataset.moving;
    }
  }

  function columnAt(x, y) {
    const hit = document.elementFromPoint(x, y);
    return hit ? hit.closest(".board .column") : null;
  }

  board.addEventListener("pointerdown", (event) => {
    const handle = event.target.closest(".drag-handle");
    if (!handle || (event.pointerType === "mouse" && event.button !== 0)) return;
    const card = handle.closest(".deal");
    if (card.dataset.moving) return;
    const rect = card.getBoundingClientRect();
    event.preventDefault();
    handle.setPointerCapture(event.pointerId);
    const ghost = card.cloneNode(true);
    ghost.classList.add("ghost");
    ghost.style.width = `${rect.width}px`;
    ghost.style.left = `${rect.left}px`;
    ghost.style.top = `${rect.top}px`;
    document.body.append(ghost);
    card.classList.add("dragging");
    drag = {card, from: card.closest(".column"), ghost, dx: event.clientX - rect.left, dy: event.clientY - rect.top,
            over: null, pointerId: event.pointerId};
  });

  board.addEventListener("pointermove", (event) => {
    if (!drag || event.pointerId !== drag.pointerId) return;
    drag.ghost.style.left = `${event.clientX - drag.dx}px`;
    drag.ghost.style.top = `${event.clientY - drag.dy}px`;
    // near an edge of the board (a phone shows one column or two), scroll it so every column can be reached
    const box = board.getBoundingClientRect();
    if (event.clientX > box.right - 40) board.scrollLeft += 12;
    else if (event.clientX < box.left + 40) board.scrollLeft -= 12;
    const over = columnAt(event.clientX, event.clientY);
    if (over !== drag.over) {
      if (drag.over) drag.over.classList.remove("drop-target");
      if (over) over.classList.add("drop-target");
      drag.over = over;
    }
  });

  function end(event, cancelled) {
    if (!drag || event.pointerId !== drag.pointerId) return;
    const {card, from, ghost} = drag;
    const target = cancelled ? null : columnAt(event.clientX, event.clientY);
    if (drag.over) drag.over.classList.remove("drop-target");
    ghost.remove();
    card.classList.remove("dragging");
    drag = null;
    if (target && target !== from) move(card, from, target);
  }
  // the keyboard's way: on a card's handle, the left and right arrows move the deal one stage
  board.addEventListener("keydown", (event) => {
    const handle = event.target.closest(".drag-handle");
    if (!handle || (event.key !== "ArrowLeft" && event.key !== "ArrowRight")) return;
    event.preventDefault();
    const card = handle.closest(".deal");
    if (card.dataset.moving) return;
    const from = card.closest(".column");
    const target = event.key === "ArrowRight" ? from.nextElementSibling : from.previousElementSibling;
    if (!target || !target.classList.contains("column")) return;
    move(card, from, target).then(() => card.querySelector(".drag-handle").focus());
  });
  board.addEventListener("pointerup", (event) => end(event, false));
  board.addEventListener("pointercancel", (event) => end(event, true));
})();
