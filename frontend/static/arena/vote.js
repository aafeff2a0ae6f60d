// Voting form behaviour: keyboard shortcuts and the rank-K completeness check.
// Shortcuts are declared in the markup (data-key on a button), so pages stay the source of truth.
(function () {
  "use strict";

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
    const form = event.target.closest && event.target.closest("#vote-form");
    if (form) refreshRankSubmit(form);
  });

  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) return;
    // Keys aimed at a 3D viewer or a video (arrows rotate a model) are not votes.
    if (event.target && event.target.closest && event.target.closest("model-viewer, .splat-host, video")) return;
    const target = event.target;
    if (target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName)) && target.type !== "radio") return;
    const form = currentForm();
    if (!form) return;
    let key = event.key.toLowerCase();
    if (key === "arrowleft") key = "a";
    if (key === "arrowright") key = "b";
    if (key === "enter") {
      const submit = form.querySelector("[data-rank-submit]:not([disabled])");
      const next = document.getElementById("next-battle");
      if (next) { event.preventDefault(); next.click(); return; }
      if (submit) { event.preventDefault(); submit.click(); }
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
})();
