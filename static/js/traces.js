// The trace pages: mermaid diagrams (drawn again when a push replaces them),
// live timeline rows (appended only when the timeline is loaded to its end,
// never twice), catching up after a reconnect, and live rows of the list.
// Every page works without it.
(function () {
  "use strict";

  // --- diagrams -----------------------------------------------------------------
  function drawDiagrams(root) {
    if (!window.mermaid) return;
    var nodes = Array.prototype.slice.call((root || document).querySelectorAll("pre.mermaid:not([data-processed])"));
    if (!nodes.length) return;
    window.mermaid.run({ nodes: nodes }).then(function () { linkNodes(root || document); }, function () {});
  }

  // Diagram nodes open the timeline filtered to that node (the same links as under the diagram).
  function linkNodes(root) {
    root.querySelectorAll(".diagram-card").forEach(function (card) {
      card.querySelectorAll(".node-filter a[data-node]").forEach(function (link) {
        var name = link.getAttribute("data-node");
        card.querySelectorAll("svg g.node").forEach(function (g) {
          var id = g.id || "";
          if (id.indexOf("flowchart-" + name + "-") !== 0) return;
          g.style.cursor = "pointer";
          g.setAttribute("tabindex", "0");
          g.setAttribute("role", "link");
          g.setAttribute("aria-label", "Show the steps of " + name);
          var go = function () { window.location.href = link.href; };
          g.addEventListener("click", go);
          g.addEventListener("keydown", function (e) { if (e.key === "Enter") go(); });
        });
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (window.mermaid) {
      var dark = window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches;
      window.mermaid.initialize({ startOnLoad: false, securityLevel: "strict", theme: dark ? "dark" : "default" });
      drawDiagrams(document);
    }
    // A traceback's last frames (the graph's own code) matter most: show its end first.
    document.querySelectorAll(".traceback pre").forEach(function (pre) { pre.scrollTop = pre.scrollHeight; });
    document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
      select.addEventListener("change", function () { select.form.submit(); });
    });
  });

  // A push replaces the diagram (the highlighted node moved): draw the new one.
  document.addEventListener("htmx:oobAfterSwap", function () { drawDiagrams(document); });

  // --- live timeline rows -----------------------------------------------------------
  function stepId(row) { return parseInt(row.getAttribute("data-step-id"), 10) || 0; }

  // Moves out-of-place rows (the few just pushed) to their place; returns the rows in order.
  function inRecordedOrder(list) {
    var rows = Array.prototype.slice.call(list.querySelectorAll(":scope > details.step"));
    for (var i = 1; i < rows.length; i++) {
      if (stepId(rows[i]) >= stepId(rows[i - 1])) continue;
      var row = rows[i], j = i - 1;
      while (j >= 0 && stepId(rows[j]) > stepId(row)) j--;
      list.insertBefore(row, rows[j + 1]);
      rows.splice(i, 1);
      rows.splice(j + 1, 0, row);
    }
    return rows;
  }
  function timelineComplete() {
    var more = document.getElementById("timeline-more");
    return !more || more.getAttribute("data-complete") === "1";
  }

  document.addEventListener("htmx:oobBeforeSwap", function (event) {
    var detail = event.detail;
    if (!detail || !detail.target || detail.target.id !== "timeline-rows") return;
    var filter = detail.target.getAttribute("data-node") || "";
    var complete = timelineComplete();
    Array.prototype.slice.call(detail.fragment.querySelectorAll("details.step")).forEach(function (row) {
      var nodes = (row.getAttribute("data-nodes") || "").split(" ");
      var duplicate = !!document.getElementById(row.id);
      var filtered = filter && nodes.indexOf(filter) < 0;
      // A pushed row while later pages are not loaded would leave a gap: "Show more" brings it in order.
      var early = row.getAttribute("data-live") === "1" && !complete;
      if (duplicate || filtered || early) row.remove();
    });
    if (!detail.fragment.querySelector("details.step")) detail.shouldSwap = false;
  });

  document.addEventListener("htmx:oobAfterSwap", function (event) {
    var target = event.detail && event.detail.target;
    if (!target || target.id !== "timeline-rows" || !event.detail.shouldSwap) return;
    var rows = target.querySelectorAll("details.step");
    if (!rows.length) return;
    var empty = document.getElementById("timeline-empty");
    if (empty) empty.remove();
    // Pushes may arrive in any order (each step is rendered for each reader on its own): put every
    // row where its step belongs, by the order steps were recorded (their id), as a reload shows them.
    rows = inRecordedOrder(target);
    var more = document.getElementById("timeline-more");
    if (more && more.getAttribute("data-complete") === "1" && rows.length) {
      more.setAttribute("data-last-id", rows[rows.length - 1].getAttribute("data-step-id"));
    }
    if (window.loopgate && rows.length) {
      var last = rows[rows.length - 1];
      var label = last.querySelector(".step-nodes");
      window.loopgate.announce("New step: " + (label ? label.textContent.trim() : ""));
    }
  });

  // After the socket (re)opens, fetch what it may have missed meanwhile: the rows (when the
  // timeline is loaded to its end) and the header, "now" and diagram regions.
  document.addEventListener("htmx:wsOpen", function (event) {
    var more = document.getElementById("timeline-more");
    var page = event.target && event.target.closest && event.target.closest(".execution-page");
    if (!more || !page || !window.htmx) return;
    var url = page.getAttribute("data-steps-url");
    if (more.getAttribute("data-complete") !== "1") {
      window.htmx.ajax("GET", url + "?regions=1", { target: "#timeline-now", swap: "none" });
      return;
    }
    var rows = document.getElementById("timeline-rows");
    var node = rows ? rows.getAttribute("data-node") : "";
    var last = more.getAttribute("data-last-id") || "0";
    var query = "?catchup=1&after=" + encodeURIComponent(last) + (node ? "&node=" + encodeURIComponent(node) : "");
    window.htmx.ajax("GET", url + query, { target: "#timeline-more", swap: "outerHTML" });
  });

  // --- the executions list ------------------------------------------------------------
  // A row pushed for an execution not on the page: on the first, unfiltered page it is new, so it goes on top.
  document.addEventListener("htmx:oobErrorNoTarget", function (event) {
    var content = event.detail && event.detail.content;
    var rows = document.getElementById("executions-rows");
    if (!content || !rows || rows.getAttribute("data-prepend") !== "1") return;
    if (content.tagName !== "TR" || (content.id || "").indexOf("execution-") !== 0) return;
    content.removeAttribute("hx-swap-oob");
    rows.insertBefore(content, rows.firstChild);
    if (window.htmx) window.htmx.process(content);
    if (window.loopgate) window.loopgate.refreshTimes(content);
  });
})();
