/* The provider pages.
 * Add page: shows only the connection fields of the chosen provider type.
 * Provider page: while a sync runs, polls the provider's status and shows its phase and
 * progress, then its outcome, without reloading the page.
 */
(function () {
  "use strict";

  function showConfigOf(type) {
    document.querySelectorAll("fieldset.sis-config").forEach(function (fieldset) {
      fieldset.hidden = !type || !fieldset.classList.contains("sis-config-" + type);
    });
  }

  function showCronWhenCustom() {
    var preset = document.getElementById("id_schedule_preset");
    var cron = document.querySelector(".field-schedule_cron");
    if (!preset || !cron) return;
    var update = function () { cron.hidden = preset.value !== "custom"; };
    preset.addEventListener("change", update);
    update();
  }

  function badge(status) {
    var span = document.createElement("span");
    span.className = "sis-badge sis-badge-" + (status || "NONE");
    span.textContent = status || "never synced";
    return span;
  }

  function runLink(run) {
    var a = document.createElement("a");
    a.href = run.url;
    a.textContent = "run #" + run.id;
    return a;
  }

  function render(panel, data) {
    var state = document.getElementById("sis-state");
    var phase = document.getElementById("sis-phase");
    var progress = document.getElementById("sis-progress");
    var link = document.getElementById("sis-run-link");
    var cancel = document.getElementById("sis-cancel-form");
    var run = data.isRunning ? data.currentRun : data.latestRun;
    state.replaceChildren(badge(run ? run.status : data.lastStatus));
    phase.textContent = data.isRunning ? "phase: " + run.phase : "";
    progress.textContent = run ? run.progressText + (run.dryRun ? " (dry run)" : "") : "";
    link.replaceChildren();
    if (run) link.appendChild(runLink(run));
    if (cancel) cancel.hidden = !data.isRunning;
    panel.dataset.running = data.isRunning ? "1" : "";
  }

  function poll(panel) {
    fetch(panel.dataset.statusUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) throw new Error(response.status);
        return response.json();
      })
      .then(function (data) {
        render(panel, data);
        if (data.isRunning) window.setTimeout(function () { poll(panel); }, 1000);
      })
      .catch(function () { window.setTimeout(function () { poll(panel); }, 5000); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var type = document.getElementById("id_provider_type");
    if (type) {
      type.addEventListener("change", function () { showConfigOf(type.value); });
      showConfigOf(type.value);
    }
    showCronWhenCustom();
    var panel = document.getElementById("sis-sync-panel");
    if (panel && panel.dataset.running) poll(panel);
  });
})();
