/* AUMAn list of incidents for the police and the control room: one tap confirms, clears or cancels.
 *
 * Plain script, no build step. Each button posts to the incident's transition endpoint with the version the
 * page was rendered with; after a step the row shows its new status and the buttons of the steps that now
 * apply (the config lists, per status, the steps this user may take). Text goes in through textContent only.
 */
(function () {
  "use strict";

  const configElement = document.getElementById("auman-incident-list-config");
  if (!configElement) {
    return;
  }
  const config = JSON.parse(configElement.textContent);
  const strings = config.strings;

  const { format } = window.AUMAN.dom;

  function drawButtons(item, status) {
    const container = item.querySelector(".pl-buttons");
    if (!container) {
      return;
    }
    container.replaceChildren();
    for (const step of config.steps[status] || []) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "qe-button qe-button-secondary";
      button.dataset.to = step.to;
      if (step.comment) {
        button.dataset.commentRequired = "true";
      }
      button.textContent = step.label;
      container.appendChild(button);
    }
  }

  async function takeStep(item, button) {
    const message = item.querySelector(".pl-message");
    const commentInput = item.querySelector(".pl-comment");
    const comment = commentInput ? commentInput.value.trim() : "";
    message.classList.remove("is-error");
    if (button.dataset.commentRequired && !comment) {
      message.textContent = strings.commentRequired;
      message.classList.add("is-error");
      commentInput.focus();
      return;
    }
    const buttons = item.querySelectorAll(".pl-buttons button");
    buttons.forEach((other) => {
      other.disabled = true;
    });
    message.textContent = strings.working;
    let response = null;
    try {
      response = await fetch(`${config.incidentsUrl}${item.dataset.incident}/transition/`, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": config.csrfToken },
        body: JSON.stringify({ to: button.dataset.to, comment, version: Number(item.dataset.version) }),
      });
    } catch (error) {
      response = null;
    }
    buttons.forEach((other) => {
      other.disabled = false;
    });
    if (response && response.ok) {
      const data = await response.json();
      const status = data.properties.status;
      item.dataset.version = String(data.properties.version);
      const badge = item.querySelector(".pl-status");
      badge.dataset.status = status;
      badge.textContent = config.statusLabels[status] || status;
      if (commentInput) {
        commentInput.value = "";
      }
      drawButtons(item, status);
      message.textContent = format(strings.done, { status: config.statusLabels[status] || status });
      return;
    }
    let text = strings.failed;
    if (response && response.status === 412) {
      text = strings.stale;
    } else if (response) {
      // 400, 403 and 409 say what is wrong in their own words: show the first of them.
      const data = await response.json().catch(() => ({}));
      const first = Object.values(data || {}).flat().find((value) => typeof value === "string");
      text = first || (typeof data.detail === "string" ? data.detail : strings.failed);
    }
    message.textContent = text;
    message.classList.add("is-error");
  }

  document.addEventListener("click", (event) => {
    const button = event.target.closest(".pl-buttons button[data-to]");
    if (!button) {
      return;
    }
    const item = button.closest(".pl-item");
    if (item) {
      takeStep(item, button);
    }
  });
})();
