// Live updates for a signed-in viewer's page: one EventSource on /events (the <body data-live> address).
// "notifications" events set the nav's unread badge; "new_post" events show the home page's #new-posts banner.
// The browser reconnects by itself after a dropped stream; when it gives up (the server said no, or is down),
// this reconnects with a growing delay. Everything here is an enhancement: the pages work without it.
(function () {
  "use strict";

  const address = document.body.dataset.live;
  if (!address || !("EventSource" in window)) return;

  const MIN_DELAY = 2000;
  const MAX_DELAY = 60000;
  let delay = MIN_DELAY;
  let source = null;
  let timer = null;

  function setBadge(unread) {
    const badge = document.getElementById("notif-badge");
    if (!badge) return;
    const count = badge.querySelector(".count");
    const n = Number(unread) || 0;
    if (count) count.textContent = n > 99 ? "99+" : String(n);
    badge.hidden = n <= 0;
  }

  function parse(event) {
    try {
      return JSON.parse(event.data);
    } catch (_) {
      return null;
    }
  }

  function connect() {
    timer = null;
    source = new EventSource(address);
    source.addEventListener("open", () => {
      delay = MIN_DELAY;
    });
    source.addEventListener("notifications", (event) => {
      const message = parse(event);
      if (message) setBadge(message.unread);
    });
    source.addEventListener("new_post", () => {
      const banner = document.getElementById("new-posts");
      if (banner) banner.hidden = false;
    });
    source.addEventListener("error", () => {
      // CONNECTING: the browser is already retrying. CLOSED: it gave up; try again later, less and less often.
      if (source.readyState !== EventSource.CLOSED) return;
      source.close();
      schedule();
    });
  }

  function schedule() {
    if (timer) return;
    const wait = delay + Math.random() * 1000;
    delay = Math.min(delay * 2, MAX_DELAY);
    timer = window.setTimeout(connect, wait);
  }

  // A page kept in the back/forward cache comes back without its stream.
  window.addEventListener("pageshow", (event) => {
    if (event.persisted && (!source || source.readyState === EventSource.CLOSED)) connect();
  });
  window.addEventListener("pagehide", () => {
    if (source) source.close();
    if (timer) window.clearTimeout(timer);
    timer = null;
  });

  connect();
})();
