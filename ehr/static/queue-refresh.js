// Today's list: fetch the list part every ~20 s and swap it in, so the queue stays current without
// reloading the page (scroll position, the announcement and anything typed elsewhere stay).
// Nothing is swapped while the user is working in the list (focus or a submit in it). The page
// works the same without this script: every action reloads it.
//
// A refresh says so (header X-EHR-Refresh: 1) and does not keep the session alive, so an
// unattended screen signs out at the idle limit; the script also rests after data-idle-minutes
// without a key, pointer or scroll, and the next one starts it again.
(function () {
  "use strict";
  var list = document.getElementById("queue-list");
  if (!list || !window.fetch || !window.DOMParser) return;
  var url = list.getAttribute("data-refresh");
  var every = (parseInt(list.getAttribute("data-refresh-seconds"), 10) || 20) * 1000;
  var idleLimit = (parseInt(list.getAttribute("data-idle-minutes"), 10) || 5) * 60000;
  var lastActivity = Date.now();
  var submitting = false;
  var timer = null;

  function active() {
    lastActivity = Date.now();
    if (timer === null) { // back after a pause: catch up at once, then every ~20 s again
      timer = setInterval(refresh, every);
      refresh();
    }
  }
  ["keydown", "pointerdown", "scroll", "focusin"].forEach(function (name) {
    document.addEventListener(name, active, { passive: true, capture: true });
  });
  window.addEventListener("pageshow", function () { submitting = false; }); // back from the next page
  document.addEventListener("submit", function (event) {
    if (list.contains(event.target)) submitting = true;
  }, true);

  function busy() {
    var active = document.activeElement;
    return submitting || (active && active !== document.body && list.contains(active));
  }

  function swap(html) {
    if (busy()) return;
    var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("queue-list");
    if (!fresh) return; // not the list (signed out: the login page): leave the page as it is
    list.replaceWith(document.adoptNode(fresh));
    list = fresh;
  }

  function refresh() {
    if (Date.now() - lastActivity > idleLimit) {
      clearInterval(timer);
      timer = null;
      return;
    }
    if (document.hidden || busy()) return;
    fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html", "X-EHR-Refresh": "1" } })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) { if (html) swap(html); })
      .catch(function () { /* offline for a moment: the next tick tries again */ });
  }

  timer = setInterval(refresh, every);
})();
