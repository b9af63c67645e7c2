// The LLM message being generated, growing token by token on the execution and approval pages,
// from the execution's event log (traces/tokens.py, Server-Sent Events). Its text is untrusted:
// it goes in with textContent only. The pages work without it (the step shows the message once done).
(function () {
  "use strict";

  function follow(box) {
    if (!window.EventSource) return;
    var text = box.querySelector(".live-message-text");
    var node = box.querySelector(".live-message-node");
    var current = null;
    var source = new EventSource(box.getAttribute("data-tokens-url"));
    source.addEventListener("token", function (event) {
      var token;
      try { token = JSON.parse(event.data); } catch (err) { return; }
      if (token.id !== current) {
        current = token.id;
        text.textContent = "";
      }
      text.textContent += token.text;
      node.textContent = token.node ? " in " + token.node : "";
      box.setAttribute("data-state", token.done ? "done" : "growing");
      box.hidden = token.done || !text.textContent;
    });
    source.addEventListener("end", function () {
      source.close();
      box.hidden = true;
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-tokens-url]").forEach(follow);
  });
})();
