// Grey console: progressive enhancement only. Pages work without this
// script; with it, elements with data-live are refreshed by polling their
// fragment URL with If-None-Match (the server answers 304 while nothing
// changed), and tenant pickers submit on change.
(function () {
  "use strict";
  var interval = 2000;

  function poll(el) {
    var url = el.getAttribute("data-live");
    var etag = null;
    var busy = false;
    function tick() {
      if (busy || document.hidden) { return; }
      busy = true;
      var headers = {};
      if (etag) { headers["If-None-Match"] = etag; }
      fetch(url, { headers: headers, credentials: "same-origin", cache: "no-cache" })
        .then(function (res) {
          if (res.status === 304) { return null; }
          if (!res.ok) { throw new Error("HTTP " + res.status); }
          etag = res.headers.get("ETag");
          return res.text();
        })
        .then(function (html) {
          if (html !== null) {
            el.innerHTML = html;
            el.setAttribute("data-updated", String(Date.now()));
          }
        })
        .catch(function () { /* keep the last view; try again */ })
        .then(function () { busy = false; });
    }
    setInterval(tick, interval);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var live = document.querySelectorAll("[data-live]");
    for (var i = 0; i < live.length; i++) { poll(live[i]); }
    var auto = document.querySelectorAll("select[data-autosubmit]");
    for (var j = 0; j < auto.length; j++) {
      auto[j].addEventListener("change", function (e) { e.target.form.submit(); });
    }
    var danger = document.querySelectorAll("button.danger");
    for (var k = 0; k < danger.length; k++) {
      danger[k].addEventListener("click", function (e) {
        if (!window.confirm("Cancel this task?")) { e.preventDefault(); }
      });
    }
  });
})();
