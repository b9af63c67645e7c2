// Approvals pages: keyboard shortcuts, "select all", and the Edit button.
// Everything here is a shortcut for something the page does without it.
(function () {
  "use strict";

  function typing(event) {
    var el = event.target;
    if (event.altKey || event.ctrlKey || event.metaKey) return true;
    if (!el || !el.closest) return false;
    return !!el.closest("input, textarea, select, [contenteditable=''], [contenteditable='true']");
  }

  function openHelp() {
    var dialog = document.getElementById("keys-help");
    if (dialog && !dialog.open && dialog.showModal) dialog.showModal();
  }

  function openEdit(id) {
    var panel = document.getElementById(id || "edit-0");
    if (!panel) return false;
    panel.open = true;
    var first = panel.querySelector("input:not([type=hidden]), textarea, select");
    // Keep the arguments being edited in sight: if the card's top went under the top bar (a
    // #edit-0 link jumps there), bring it back; then the field, whose scroll margin keeps it
    // clear of the sticky decision footer.
    var card = panel.closest(".action-card");
    var bar = document.querySelector("header.topbar");
    if (card && card.getBoundingClientRect().top < (bar ? bar.getBoundingClientRect().bottom : 0)) {
      card.scrollIntoView({ block: "start" });
    }
    (first || panel).scrollIntoView({ block: "nearest" });
    if (first) first.focus({ preventScroll: true });
    return true;
  }

  // --- the inbox ---------------------------------------------------------------------------
  var current = -1;

  function rows() {
    return Array.prototype.slice.call(
      document.querySelectorAll("#approval-rows tr.approval-row[data-href]:not(.approval-left)")
    );
  }

  function mark(index) {
    var list = rows();
    if (!list.length) { current = -1; return null; }
    current = Math.max(0, Math.min(index, list.length - 1));
    list.forEach(function (row, i) {
      row.classList.toggle("is-current", i === current);
      if (i === current) row.setAttribute("aria-current", "true"); else row.removeAttribute("aria-current");
    });
    var link = list[current].querySelector("a.action-name");
    if (link) link.focus({ preventScroll: false });
    return list[current];
  }

  function currentRow() {
    var list = rows();
    if (document.activeElement && document.activeElement.closest) {
      var focused = document.activeElement.closest("#approval-rows tr.approval-row");
      if (focused) { current = list.indexOf(focused); return focused; }
    }
    return current >= 0 ? list[current] || null : null;
  }

  function selectedCount() {
    return document.querySelectorAll("#approval-rows input[name=ids]:checked").length;
  }

  function updateCount() {
    var out = document.querySelector("[data-selected-count]");
    if (out) { var n = selectedCount(); out.textContent = n ? n + " selected" : ""; }
  }

  // --- high-stakes actions: one key arms, the same key again within 3 s decides -------------------
  var armed = null;  // {key, until}
  function confirmed(key, what, hint) {
    var now = Date.now();
    if (armed && armed.key === key && now < armed.until) { armed = null; if (hint) hint.hidden = true; return true; }
    armed = { key: key, until: now + 3000 };
    var text = "High-stakes: press " + key + " again to " + what + ".";
    if (hint) { hint.textContent = text; hint.hidden = false; }
    if (window.loopgate) window.loopgate.announce(text);
    window.setTimeout(function () { if (hint && armed === null) hint.hidden = true; }, 3100);
    return false;
  }

  function bulk(decision) {
    var row = currentRow();
    if (!selectedCount() && row) {
      var box = row.querySelector("input[name=ids]");
      if (box) box.checked = true;
    }
    if (!selectedCount()) return;
    var risky = document.querySelector("#approval-rows tr[data-high-stakes] input[name=ids]:checked");
    if (risky && decision === "approve" && !confirmed("a", "approve what is selected, high-stakes included",
                                                      document.querySelector("[data-selected-count]"))) return;
    keep = current;
    var button = document.querySelector('#bulk-form button[name=decision][value="' + decision + '"]');
    if (button) button.click();
  }

  function inboxKey(event) {
    if (!document.getElementById("approval-rows")) return false;
    var key = event.key;
    if (key === "j" || key === "ArrowDown" && event.target.closest && event.target.closest("#approval-rows")) {
      mark(current + 1); return true;
    }
    if (key === "k" || key === "ArrowUp" && event.target.closest && event.target.closest("#approval-rows")) {
      mark(current < 0 ? 0 : current - 1); return true;
    }
    var row = currentRow();
    if (key === "Enter" && row && event.target === document.body) { window.location.href = row.dataset.href; return true; }
    if (key === "x" && row) {
      var box = row.querySelector("input[name=ids]");
      if (box) { box.checked = !box.checked; updateCount(); }
      return true;
    }
    if (key === "a" && document.getElementById("bulk-form")) { bulk("approve"); return true; }
    if (key === "r" && document.getElementById("bulk-form")) { bulk("reject"); return true; }
    if (key === "e" && row) { window.location.href = row.dataset.href + "?edit=1#edit-0"; return true; }
    return false;
  }

  document.addEventListener("change", function (event) {
    var all = event.target.closest && event.target.closest("[data-select-all]");
    if (all) {
      document.querySelectorAll("#approval-rows input[name=ids]").forEach(function (box) { box.checked = all.checked; });
    }
    if (event.target.name === "ids" || all) updateCount();
  });

  document.addEventListener("click", function (event) {
    // A click on a row (not on its controls) opens it.
    var cell = event.target.closest && event.target.closest("#approval-rows tr.approval-row[data-href] td");
    if (cell && !event.target.closest("a, button, input, label, form")) {
      window.location.href = cell.parentElement.dataset.href;
      return;
    }
    var edit = event.target.closest && event.target.closest("[data-open-edit]");
    if (edit && openEdit(edit.getAttribute("data-open-edit"))) event.preventDefault();
    var close = event.target.closest && event.target.closest("[data-close-edit]");
    if (close) {
      var panel = document.getElementById(close.getAttribute("data-close-edit"));
      if (panel) { panel.open = false; event.preventDefault(); }
    }
    var help = event.target.closest && event.target.closest("[data-keys-help]");
    if (help) openHelp();
  });

  // --- one approval --------------------------------------------------------------------------
  function press(key) {
    // Only a button the reviewer can see: while editing, "a" sends the edited call, not the hidden Approve.
    var buttons = document.querySelectorAll('#decision [data-key="' + key + '"]');
    for (var i = 0; i < buttons.length; i++) {
      if (buttons[i].getClientRects().length) { buttons[i].click(); return true; }
    }
    return false;
  }

  function detailKey(event) {
    if (!document.getElementById("decision")) return false;
    var key = event.key;
    var comment = document.querySelector("#decision textarea[name=comment]");
    var decision = document.getElementById("decision");
    if (key === "a" && decision.hasAttribute("data-high-stakes") &&
        !confirmed("a", "approve", decision.querySelector("[data-key-confirm]"))) return true;
    if (key === "a") return press("a");
    if (key === "e") return openEdit("edit-0");
    if (key === "r") return press("r");
    if (key === "s") {
      if (comment && !comment.value.trim()) { comment.focus(); return true; }
      return press("s");
    }
    if (key === "n") return press("n");
    if (key === "u") { window.location.href = "/approvals/"; return true; }
    return false;
  }

  document.addEventListener("keydown", function (event) {
    if (typing(event)) return;
    if (event.key === "?") { openHelp(); event.preventDefault(); return; }
    if (inboxKey(event) || detailKey(event)) event.preventDefault();
  });

  function init() {
    document.querySelectorAll("[data-keys-help][hidden]").forEach(function (el) { el.hidden = false; });
    if (window.location.hash && /^#edit-\d+$/.test(window.location.hash)) {
      // After the browser's own jump to the anchor (which leaves it under the top bar).
      var hash = window.location.hash.slice(1);
      if (document.readyState === "complete") openEdit(hash);
      else window.addEventListener("load", function () { openEdit(hash); }, { once: true });
    }
    updateCount();
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init); else init();
  // After a bulk decision the rows are new: keep the place, so the next row has the focus (e, a, r work on).
  var keep = -1;
  document.addEventListener("htmx:afterSettle", function () {
    current = -1;
    if (keep >= 0 && rows().length) mark(Math.min(keep, rows().length - 1));
    keep = -1;
    updateCount();
  });
})();
