// Loopgate's own small script: copy buttons, the live-updates banner, the
// aria-live announcer and relative times that keep themselves fresh.
// No framework; every page works without it.
(function () {
  "use strict";

  // --- announcer --------------------------------------------------------------
  // Screen readers hear what is written into #live-announcer (aria-live=polite).
  // Servers can ask for it too: HX-Trigger: {"loopgate:announce": "New approval: send_email"}.
  function announce(text) {
    var region = document.getElementById("live-announcer");
    if (!region || !text) return;
    region.textContent = "";
    window.setTimeout(function () { region.textContent = String(text); }, 60);
  }
  document.addEventListener("loopgate:announce", function (event) {
    var detail = event.detail;
    announce(detail && typeof detail === "object" ? detail.value || detail.text : detail);
  });

  // --- htmx error fragments ---------------------------------------------------------
  // Views answer bad input with the form and its errors (422) and a lost race
  // with who won (409): show those fragments instead of dropping them.
  document.addEventListener("htmx:beforeSwap", function (event) {
    var status = event.detail.xhr && event.detail.xhr.status;
    if (status === 409 || status === 422) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });

  // --- copy buttons -------------------------------------------------------------
  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    return new Promise(function (resolve, reject) {
      var area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.style.position = "fixed";
      area.style.opacity = "0";
      document.body.appendChild(area);
      area.select();
      try {
        document.execCommand("copy") ? resolve() : reject(new Error("copy refused"));
      } catch (error) {
        reject(error);
      } finally {
        area.remove();
      }
    });
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) return;
    event.preventDefault();
    var label = button.getAttribute("aria-label") || "";
    copyText(button.getAttribute("data-copy")).then(
      function () {
        button.classList.add("copied");
        button.setAttribute("aria-label", "Copied");
        button.setAttribute("title", "Copied");
        announce("Copied to the clipboard");
        window.setTimeout(function () {
          button.classList.remove("copied");
          button.setAttribute("aria-label", label);
          button.setAttribute("title", "Copy the full id");
        }, 1500);
      },
      function () { announce("Could not copy; select the text instead"); }
    );
  });

  // --- live banner ------------------------------------------------------------------
  // Shown while any htmx WebSocket on the page is down and reconnecting; hidden
  // when every one is open again. Leaving the page closes sockets too: ignore that.
  var down = new Set();
  var leaving = false;
  var RECONNECTING = [1006, 1011, 1012, 1013];

  function updateBanner() {
    var banner = document.getElementById("live-banner");
    if (banner) banner.hidden = down.size === 0;
  }
  window.addEventListener("pagehide", function () { leaving = true; });
  window.addEventListener("beforeunload", function () { leaving = true; });
  window.addEventListener("pageshow", function () { leaving = false; });

  document.addEventListener("htmx:wsOpen", function (event) {
    down.delete(event.target);
    updateBanner();
  });
  document.addEventListener("htmx:wsClose", function (event) {
    if (leaving) return;
    var close = event.detail && event.detail.event;
    var code = close && close.code;
    if (!event.target.isConnected || (code && RECONNECTING.indexOf(code) < 0)) {
      // Closed on purpose (or the element left the page): no reconnect follows.
      down.delete(event.target);
    } else {
      down.add(event.target);
    }
    updateBanner();
  });
  document.addEventListener("htmx:wsError", function (event) {
    if (leaving) return;
    down.add(event.target);
    updateBanner();
  });

  // --- relative times ---------------------------------------------------------------
  // <time datetime="…" data-reltime="[prefix]"> as rendered by the |reltime filter, by the rule of
  // orchestrator/templatetags/loopgate.py relative_phrase(), word for word: under 45 s "just now",
  // else whole units rounded down (Math.floor, never Math.round: 150 s is "2 min" on both sides),
  // minutes (at least 1) under 60, hours under 24, then days; from 30 days the server's date stays.
  function plural(n, word) { return n + " " + word + (n === 1 ? "" : "s"); }

  function relativePhrase(seconds, prefix) {
    var future = seconds < 0;
    var s = Math.abs(seconds);
    if (s < 45) return prefix ? prefix + " <1 min" : future ? "in a moment" : "just now";
    var minutes = Math.max(1, Math.floor(s / 60));
    var amount;
    if (minutes < 60) {
      amount = minutes + " min";
    } else {
      var hours = Math.floor(minutes / 60);
      if (hours < 24) {
        amount = hours + " h";
      } else {
        var days = Math.floor(hours / 24);
        if (days >= 30) return null; // keep the server's date
        amount = plural(days, "day");
      }
    }
    if (prefix) return prefix + " " + amount;
    return future ? "in " + amount : amount + " ago";
  }

  function refreshTimes(root) {
    var now = Date.now();
    (root || document).querySelectorAll("time[data-reltime]").forEach(function (el) {
      var when = Date.parse(el.getAttribute("datetime"));
      if (isNaN(when)) return;
      var text = relativePhrase((now - when) / 1000, el.getAttribute("data-reltime"));
      if (text && el.textContent !== text) el.textContent = text;
    });
  }
  window.setInterval(refreshTimes, 30000);

  // Errors in sight: after a page or a swapped fragment that carries a form's error, bring the
  // first one into view (clear of sticky bars) and put the cursor in the field it names.
  function showFirstError(root) {
    var scope = root || document;
    var field = scope.querySelector(".field-invalid :is(input, textarea, select), [aria-invalid='true']");
    var alert = scope.querySelector("form [role='alert'], .card [role='alert'], .field-invalid");
    var target = field || alert;
    if (!target) return;
    target.scrollIntoView({ block: "center" });
    if (field && typeof field.focus === "function") field.focus({ preventScroll: true });
  }
  document.addEventListener("DOMContentLoaded", function () { showFirstError(document.getElementById("main")); });
  document.addEventListener("htmx:afterSwap", function (event) {
    var status = event.detail && event.detail.xhr ? event.detail.xhr.status : 200;
    if (status >= 400) showFirstError(event.detail.target);
  });

  window.loopgate = { announce: announce, relativePhrase: relativePhrase, refreshTimes: refreshTimes,
                      showFirstError: showFirstError };
})();
