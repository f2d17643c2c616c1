// mailvault pages: copy a message's link, keyboard shortcuts. No framework, no inline code
// (the pages' CSP allows only this file), nothing fetched.
//   c      copy the message's title and direct link (message page; also the "Copy link" button)
//   /      focus the search box
//   j / k  next / previous hit on the search page; Enter opens it
"use strict";

(function () {
  function $(sel) { return document.querySelector(sel); }

  // --- copy link -------------------------------------------------------------------------

  function statusElement() {
    var el = document.getElementById("copy-status");
    if (!el) {
      el = document.createElement("span");
      el.id = "copy-status";
      el.setAttribute("role", "status");
      el.setAttribute("aria-live", "polite");
      var button = document.getElementById("copy-link");
      (button && button.parentNode ? button.parentNode : document.body).appendChild(el);
    }
    return el;
  }

  var statusTimer = null;
  function say(text, failed) {
    var el = statusElement();
    el.textContent = text;
    el.className = failed ? "failed" : "";
    if (statusTimer) clearTimeout(statusTimer);
    statusTimer = setTimeout(function () { el.textContent = ""; }, 6000);
  }

  // Old browsers and non-secure origins: a hidden textarea and execCommand("copy").
  function copyWithTextarea(text) {
    var ta = document.createElement("textarea");
    ta.value = text;
    ta.setAttribute("readonly", "");
    ta.className = "mv-offscreen";  // app.css moves it out of sight (no inline style: CSP)
    document.body.appendChild(ta);
    var active = document.activeElement;
    ta.select();
    var ok = false;
    try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
    document.body.removeChild(ta);
    if (active && active.focus) active.focus();
    return ok;
  }

  function escapeHtml(s) {
    return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
  }

  // Puts "title\nlink" on the clipboard as plain text (and a link as HTML where supported).
  function copyText(title, link) {
    var plain = title + "\n" + link;
    var html = '<a href="' + escapeHtml(link) + '">' + escapeHtml(title) + "</a>";
    var clip = navigator.clipboard;
    function fallback() {
      return copyWithTextarea(plain) ? Promise.resolve() : Promise.reject(new Error("copy refused"));
    }
    if (!clip || !window.isSecureContext) return fallback();
    var attempt;
    if (typeof window.ClipboardItem === "function" && clip.write) {
      attempt = clip.write([new window.ClipboardItem({
        "text/plain": new Blob([plain], { type: "text/plain" }),
        "text/html": new Blob([html], { type: "text/html" })
      })]).catch(function () { return clip.writeText(plain); });
    } else {
      attempt = clip.writeText(plain);
    }
    return attempt.catch(fallback);
  }

  function copyLink() {
    var msg = document.getElementById("message");
    if (!msg) return;
    var title = msg.getAttribute("data-title") || document.title;
    var link = msg.getAttribute("data-link") || window.location.href;
    copyText(title, link).then(
      function () { say("Copied: " + title + " \u2014 " + link, false); },
      function () { say("Could not copy; the link is " + link, true); });
  }

  // --- search hits -----------------------------------------------------------------------

  function hits() { return Array.prototype.slice.call(document.querySelectorAll("#hits .hit")); }

  function currentIndex(list) {
    for (var i = 0; i < list.length; i++) if (list[i].classList.contains("current")) return i;
    return -1;
  }

  function moveHit(step) {
    var list = hits();
    if (!list.length) return;
    var i = currentIndex(list);
    var next = i < 0 ? (step > 0 ? 0 : list.length - 1) : Math.min(list.length - 1, Math.max(0, i + step));
    if (i >= 0) list[i].classList.remove("current");
    var li = list[next];
    li.classList.add("current");
    var a = li.querySelector(".hit-link");
    if (a) a.focus({ preventScroll: true });
    li.scrollIntoView({ block: "nearest" });
  }

  function openCurrentHit() {
    var list = hits();
    var i = currentIndex(list);
    if (i < 0) return false;
    var a = list[i].querySelector(".hit-link");
    if (!a) return false;
    window.location.href = a.getAttribute("href");
    return true;
  }

  // --- keyboard --------------------------------------------------------------------------

  function typingIn(el) {
    if (!el) return false;
    var tag = el.tagName;
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || el.isContentEditable;
  }

  document.addEventListener("keydown", function (ev) {
    if (ev.defaultPrevented || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    if (ev.key === "Escape" && typingIn(ev.target)) { ev.target.blur(); return; }
    if (typingIn(ev.target)) return;
    switch (ev.key) {
      case "/": {
        var q = document.getElementById("q");
        if (!q) return;
        ev.preventDefault();
        q.focus();
        q.select();
        return;
      }
      case "j": moveHit(1); ev.preventDefault(); return;
      case "k": moveHit(-1); ev.preventDefault(); return;
      case "Enter":
        // A focused link opens by itself; otherwise open the marked hit.
        if (ev.target && ev.target.tagName === "A") return;
        if (openCurrentHit()) ev.preventDefault();
        return;
      case "c":
        if (!document.getElementById("message")) return;
        ev.preventDefault();
        copyLink();
        return;
      default:
        return;
    }
  });

  // A click on a hit marks it, so j/k continue from there after going back.
  document.addEventListener("focusin", function (ev) {
    var li = ev.target && ev.target.closest ? ev.target.closest("#hits .hit") : null;
    if (!li) return;
    hits().forEach(function (h) { h.classList.toggle("current", h === li); });
  });

  function init() {
    var button = document.getElementById("copy-link");
    if (button) {
      button.addEventListener("click", copyLink);
      button.setAttribute("title", "Copy title and link (c)");
    }
    var q = document.getElementById("q");
    if (q && !q.getAttribute("title")) q.setAttribute("title", "Search (/)");
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
