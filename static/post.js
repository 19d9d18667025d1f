// The post page: each photo's dominant colour as its placeholder, arrows and dots for a carousel of several
// photos, and the messages of refused likes and comments. Swiping is CSS scroll-snap, the dots are plain #photo-N
// links and every form posts without it, so all of it works without this file.
// Runs on load and again on content htmx swaps in (the processing state turning into photos).
(function () {
  "use strict";

  const COLOUR = /^#[0-9a-f]{6}$/i;

  function setUp(root) {
    root.querySelectorAll(".slide[data-color]").forEach((slide) => {
      if (COLOUR.test(slide.dataset.color)) slide.style.backgroundColor = slide.dataset.color;
    });
    root.querySelectorAll(".carousel-wrap").forEach(carousel);
  }

  function carousel(wrap) {
    const track = wrap.querySelector(".carousel");
    const slides = [...track.querySelectorAll(".slide")];
    if (slides.length < 2 || wrap.dataset.ready) return;
    wrap.dataset.ready = "1";
    const dots = [...(wrap.parentElement.querySelectorAll(".dots .dot") || [])];
    const prev = wrap.querySelector(".carousel-arrow.prev");
    const next = wrap.querySelector(".carousel-arrow.next");
    const current = () => Math.round(track.scrollLeft / Math.max(track.clientWidth, 1));
    const go = (index) => {
      const target = slides[Math.max(0, Math.min(index, slides.length - 1))];
      track.scrollTo({ left: target.offsetLeft - track.offsetLeft, behavior: "smooth" });
    };
    const update = () => {
      const index = current();
      dots.forEach((dot, i) => {
        if (i === index) dot.setAttribute("aria-current", "true");
        else dot.removeAttribute("aria-current");
      });
      prev.hidden = index <= 0;
      next.hidden = index >= slides.length - 1;
    };
    prev.addEventListener("click", () => go(current() - 1));
    next.addEventListener("click", () => go(current() + 1));
    // A dot scrolls the carousel only, not the whole page as a bare #photo-N link would.
    dots.forEach((dot, i) => dot.addEventListener("click", (event) => {
      event.preventDefault();
      go(i);
    }));
    track.addEventListener("keydown", (event) => {
      if (event.key === "ArrowLeft" || event.key === "ArrowRight") {
        event.preventDefault();
        go(current() + (event.key === "ArrowRight" ? 1 : -1));
      }
    });
    let pending = 0;
    track.addEventListener("scroll", () => {
      cancelAnimationFrame(pending);
      pending = requestAnimationFrame(update);
    }, { passive: true });
    update();
  }

  // A post deleted (or hidden) while its page polls: say so, and stop polling by replacing the polling element.
  document.addEventListener("htmx:responseError", (event) => {
    const target = event.detail.elt;
    if (target.id !== "post-media" || event.detail.xhr.status !== 404) return;
    const gone = document.createElement("div");
    gone.id = "post-media";
    gone.className = "post-media";
    const state = document.createElement("div");
    state.className = "media-state failed";
    state.setAttribute("role", "alert");
    const title = document.createElement("p");
    title.className = "state-title";
    title.textContent = "This post is no longer available.";
    state.appendChild(title);
    gone.appendChild(state);
    target.replaceWith(gone);
  });

  // A refused like, comment or deletion: htmx swaps nothing, and the server's message (plain text) is shown by the
  // form that sent it, in its role="alert" slot.
  function say(form, message) {
    const slot = form && form.querySelector("[data-htmx-error]");
    if (!slot) return;
    slot.textContent = message;
    slot.hidden = !message;
  }
  const formOf = (event) => (event.detail.elt.closest ? event.detail.elt.closest("form") : null);
  document.addEventListener("htmx:responseError", (event) => {
    const xhr = event.detail.xhr;
    const plain = (xhr.getResponseHeader("content-type") || "").startsWith("text/plain");
    say(formOf(event), plain && xhr.responseText ? xhr.responseText : "That didn't work. Reload the page and try again.");
  });
  document.addEventListener("htmx:sendError", (event) => {
    say(formOf(event), "Pinhole can't be reached right now. Check your connection and try again.");
  });
  // A comment went in: empty the box for the next one.
  document.addEventListener("htmx:afterRequest", (event) => {
    const form = formOf(event);
    if (!event.detail.successful || !form || !form.classList.contains("comment-form")) return;
    const box = form.querySelector("textarea");
    if (box) box.value = "";
    say(form, "");
  });

  document.addEventListener("htmx:load", (event) => setUp(event.detail.elt));
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", () => setUp(document));
  else setUp(document);
})();
