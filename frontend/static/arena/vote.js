// Voting form behaviour: keyboard shortcuts and the rank-K completeness check.
// Shortcuts are declared in the markup (data-key on a button), so pages stay the source of truth.
//
// Single-key shortcuts can be turned off (WCAG 2.1.4): for the whole site by the VOTE_SHORTCUTS
// setting (the page then says <body data-vote-shortcuts="off"> and has no key hints), and by each
// voter with the "Keyboard shortcuts" checkbox (#vote-shortcuts-toggle), remembered in
// localStorage. While off, no key votes, and arena.css hides the .key-hint elements. battle.js
// reads the same attribute for its "P" (play/pause) key.
(function () {
  "use strict";

  const PREFERENCE = "arena.voteShortcuts"; // localStorage: "off" when the voter turned them off

  function readPreference() {
    try {
      return window.localStorage.getItem(PREFERENCE);
    } catch (e) {
      return null; // storage blocked (privacy settings): the site's setting stands
    }
  }

  function writePreference(on) {
    try {
      if (on) window.localStorage.removeItem(PREFERENCE);
      else window.localStorage.setItem(PREFERENCE, "off");
    } catch (e) {
      /* storage blocked: the choice lasts as long as the page */
    }
  }

  function shortcutsOn() {
    return document.body.dataset.voteShortcuts !== "off";
  }

  // The page says "on" only when the site allows shortcuts; the voter's own choice can turn them off.
  function applyPreference() {
    const toggle = document.getElementById("vote-shortcuts-toggle");
    if (document.body.dataset.voteShortcuts === "on" && readPreference() === "off") {
      document.body.dataset.voteShortcuts = "off";
    }
    if (toggle) toggle.checked = shortcutsOn();
  }

  function currentForm() {
    return document.getElementById("vote-form");
  }

  function rankComplete(form) {
    const slots = form.querySelectorAll(".slot[data-slot]");
    for (const slot of slots) {
      const label = slot.dataset.slot;
      if (!form.querySelector('input[name="rank_' + label + '"]:checked')) return false;
    }
    return slots.length > 0;
  }

  function refreshRankSubmit(form) {
    const submit = form && form.querySelector("[data-rank-submit]");
    if (submit) submit.disabled = !rankComplete(form);
  }

  document.addEventListener("change", function (event) {
    if (event.target && event.target.id === "vote-shortcuts-toggle") {
      writePreference(event.target.checked);
      document.body.dataset.voteShortcuts = event.target.checked ? "on" : "off";
      return;
    }
    const form = event.target.closest && event.target.closest("#vote-form");
    if (form) refreshRankSubmit(form);
  });

  // Keys typed into a field, aimed at a 3D viewer or a video (arrows rotate a model), or held
  // down (auto-repeat) are not votes; nor is a key with Ctrl, Alt or Meta (browser shortcuts).
  function ignored(event) {
    if (event.defaultPrevented || event.repeat || event.ctrlKey || event.metaKey || event.altKey) return true;
    const target = event.target;
    if (!(target instanceof Element)) return false;
    if (target.closest("model-viewer, .splat-host, video")) return true;
    if (target.isContentEditable || /^(TEXTAREA|SELECT)$/.test(target.tagName)) return true;
    // Radio buttons (the rank pickers) keep the shortcuts: Enter submits the ranking.
    return target.tagName === "INPUT" && target.type !== "radio";
  }

  function pressEnter(event, form) {
    // Enter on a link or a button does what that link or button does.
    if (event.target instanceof Element && event.target.closest("a[href], button, summary, [role=button]")) return;
    const submit = form.querySelector("[data-rank-submit]:not([disabled])");
    const next = document.getElementById("next-battle");
    if (next) { event.preventDefault(); next.click(); return; }
    if (submit) { event.preventDefault(); submit.click(); }
  }

  document.addEventListener("keydown", function (event) {
    if (!shortcutsOn() || ignored(event)) return;
    const form = currentForm();
    if (!form) return;
    let key = event.key.toLowerCase();
    if (key === "arrowleft") key = "a";
    if (key === "arrowright") key = "b";
    if (key === "enter") {
      pressEnter(event, form);
      return;
    }
    const button = form.querySelector('[data-key="' + CSS.escape(key) + '"]:not([disabled])') ||
      document.querySelector('#next-battle[data-key="' + CSS.escape(key) + '"]');
    if (button) {
      event.preventDefault();
      button.click();
    }
  });

  document.addEventListener("htmx:load", function () {
    const form = currentForm();
    if (form) refreshRankSubmit(form);
  });

  applyPreference();
})();
