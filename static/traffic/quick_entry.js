/* AUMAn police quick entry: place, kind and codes, saved through the REST API with the session.
 *
 * Plain script, no build step. Reads its configuration from the json_script element "auman-quick-entry-config".
 * The form is rendered by the server (labels, code lists, translations); this script places the marker, looks up
 * the nearest street, shows the accident fields that apply, posts a GeoJSON Feature to the incidents API and
 * writes the API's messages beside the fields they belong to.
 *
 * Security: text from the server or the user goes into the page through textContent only, never innerHTML.
 *
 * For tests: document.body.dataset.qeState is "ready", "saving" or "saved"; dataset.streetLookup is "pending",
 * "found" or "none" after each lookup; dataset.savedIncident is the id of the incident just saved.
 */
(function () {
  "use strict";

  const configElement = document.getElementById("auman-quick-entry-config");
  const form = document.getElementById("quick-entry");
  if (!configElement || !form) {
    return;
  }
  const config = JSON.parse(configElement.textContent);
  const strings = config.strings;
  const body = document.body;
  const byId = (id) => document.getElementById(id);

  const locateButton = byId("qe-locate");
  const centreButton = byId("qe-place-centre");
  const locationStatus = byId("qe-location-status");
  const streetInput = byId("qe-street_name");
  const streetStatus = byId("qe-street-status");
  const accidentFieldset = byId("qe-accident");
  const categorySelect = byId("qe-accident-category");
  const casualtiesFieldset = byId("qe-casualties");
  const saveButton = byId("qe-save");
  const formError = byId("qe-form-error");
  const successSection = byId("qe-success");
  const successText = byId("qe-success-text");

  const state = { latlng: null, streetEdited: false, lookup: 0 };

  const { format } = window.AUMAN.dom;

  // --- Map and marker --------------------------------------------------------------------------------------

  let map = null;
  let marker = null;
  if (typeof L !== "undefined") {
    map = L.map("qe-map", { center: config.center, zoom: config.zoom, keyboard: true });
    // No base layer without a tile URL (offline and test machines): tapping still places the incident.
    if (config.tileUrl) {
      L.tileLayer(config.tileUrl, { attribution: config.tileAttribution, maxZoom: 19 }).addTo(map);
    }
    map.on("click", (event) => place(event.latlng, strings.placed));
  } else {
    centreButton.hidden = true;
  }

  function place(latlng, message) {
    state.latlng = { lat: latlng.lat, lng: latlng.lng };
    if (map) {
      if (marker) {
        marker.setLatLng(latlng);
      } else {
        marker = L.marker(latlng, { draggable: true, keyboard: true, title: strings.mapLabel, alt: strings.mapLabel });
        marker.on("dragend", () => {
          const moved = marker.getLatLng();
          state.latlng = { lat: moved.lat, lng: moved.lng };
          locationStatus.textContent = strings.placed;
          lookupStreet();
        });
        marker.addTo(map);
      }
    }
    locationStatus.textContent = message;
    clearError("location");
    body.dataset.qeLocation = `${latlng.lat.toFixed(6)},${latlng.lng.toFixed(6)}`;
    lookupStreet();
  }

  async function lookupStreet() {
    const ticket = ++state.lookup;
    body.dataset.streetLookup = "pending";
    streetStatus.textContent = strings.streetLooking;
    let found = null;
    try {
      if (!config.nearestStreetUrl) {
        throw new Error("no street network configured");
      }
      const url = new URL(config.nearestStreetUrl, window.location.origin);
      url.searchParams.set("lon", state.latlng.lng.toFixed(6));
      url.searchParams.set("lat", state.latlng.lat.toFixed(6));
      const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (response.ok) {
        const data = await response.json();
        if (data && typeof data.name === "string" && data.name.trim()) {
          found = { name: data.name.trim(), distance: Math.round(Number(data.distance_m) || 0) };
        }
      }
    } catch (error) {
      // No street network (or no connection): the page works without a street name.
    }
    if (ticket !== state.lookup) {
      return; // the marker moved again meanwhile; the newer lookup decides
    }
    if (found) {
      // An officer's own typing wins over the lookup.
      if (!state.streetEdited || !streetInput.value.trim()) {
        streetInput.value = found.name;
        state.streetEdited = false;
      }
      streetStatus.textContent = format(strings.streetFound, found);
    } else {
      streetStatus.textContent = strings.streetNone;
    }
    body.dataset.streetLookup = found ? "found" : "none";
  }

  streetInput.addEventListener("input", () => {
    state.streetEdited = true;
  });

  locateButton.addEventListener("click", () => {
    if (!navigator.geolocation) {
      locationStatus.textContent = strings.locationUnsupported;
      return;
    }
    locationStatus.textContent = strings.locating;
    locateButton.disabled = true;
    navigator.geolocation.getCurrentPosition(
      (position) => {
        locateButton.disabled = false;
        const latlng = { lat: position.coords.latitude, lng: position.coords.longitude };
        if (map) {
          map.setView([latlng.lat, latlng.lng], Math.max(map.getZoom(), 17));
        }
        place(latlng, format(strings.located, { accuracy: Math.round(position.coords.accuracy || 0) }));
      },
      (error) => {
        locateButton.disabled = false;
        locationStatus.textContent = error.code === 1 ? strings.locationDenied : strings.locationUnavailable;
      },
      { enableHighAccuracy: true, timeout: 15000, maximumAge: 60000 },
    );
  });

  centreButton.addEventListener("click", () => {
    if (map) {
      place(map.getCenter(), strings.placed);
    }
  });

  // --- Fields that apply ----------------------------------------------------------------------------------

  function selectedKind() {
    const checked = form.querySelector("input[name=kind]:checked");
    return checked ? checked.value : "";
  }

  function casualtyFields() {
    return config.casualtiesByCategory[categorySelect.value] || [];
  }

  function updateVisibility() {
    const isAccident = selectedKind() === "accident";
    accidentFieldset.hidden = !isAccident;
    accidentFieldset.disabled = !isAccident;
    const shown = isAccident ? casualtyFields() : [];
    casualtiesFieldset.hidden = shown.length === 0;
    casualtiesFieldset.querySelectorAll("[data-casualty]").forEach((wrapper) => {
      wrapper.hidden = !shown.includes(wrapper.dataset.casualty);
    });
  }

  form.querySelectorAll("input[name=kind]").forEach((input) => input.addEventListener("change", updateVisibility));
  categorySelect.addEventListener("change", updateVisibility);

  // --- Saving -----------------------------------------------------------------------------------------------

  function numberOrNothing(input) {
    if (input.value === "") {
      return undefined;
    }
    const value = Number(input.value);
    return Number.isFinite(value) ? value : input.value;
  }

  function codeOrNull(id) {
    const value = byId(id).value;
    return value === "" ? null : Number(value);
  }

  function feature() {
    const kind = selectedKind();
    const properties = { kind };
    const street = streetInput.value.trim();
    if (street) {
      properties.street_name = street;
    }
    const lanes = numberOrNothing(byId("qe-lanes_blocked"));
    if (lanes !== undefined) {
      properties.lanes_blocked = lanes;
    }
    const description = byId("qe-description").value.trim();
    if (description) {
      properties.description = description;
    }
    const occurred = byId("qe-occurred_at").value;
    if (occurred) {
      // datetime-local is the phone's local time without offset; the API wants an offset.
      const moment = new Date(occurred);
      properties.occurred_at = Number.isNaN(moment.getTime()) ? occurred : moment.toISOString();
    }
    if (kind === "accident") {
      const accident = {
        category: codeOrNull("qe-accident-category"),
        kind: codeOrNull("qe-accident-kind"),
        type: codeOrNull("qe-accident-type"),
        light_condition: codeOrNull("qe-accident-light_condition"),
        road_condition: codeOrNull("qe-accident-road_condition"),
        involves: Array.from(form.querySelectorAll("input[name=involves]:checked"), (input) => input.value),
      };
      // Only the counts shown for the category; the others are 0 by definition.
      for (const name of casualtyFields()) {
        const count = numberOrNothing(byId(`qe-accident-${name}`));
        if (count !== undefined) {
          accident[name] = count;
        }
      }
      properties.accident = accident;
    }
    return {
      type: "Feature",
      geometry: { type: "Point", coordinates: [state.latlng.lng, state.latlng.lat] },
      properties,
    };
  }

  function clearError(path) {
    const element = byId(`error-${path}`);
    if (element) {
      element.textContent = "";
    }
    const input = byId(`qe-${path}`);
    if (input) {
      input.removeAttribute("aria-invalid");
    }
  }

  function clearErrors() {
    form.querySelectorAll(".qe-error").forEach((element) => {
      element.textContent = "";
    });
    form.querySelectorAll("[aria-invalid]").forEach((element) => element.removeAttribute("aria-invalid"));
  }

  function messagesOf(value) {
    if (Array.isArray(value)) {
      return value.filter((item) => typeof item === "string");
    }
    return typeof value === "string" ? [value] : [];
  }

  // Writes the API's 400 answer beside the fields: {"location": [...], "accident": {"category": [...]}}.
  // Returns the first input marked invalid, to move the focus there.
  function showErrors(errors, prefix, unplaced) {
    let first = null;
    for (const [key, value] of Object.entries(errors || {})) {
      const name = key === "geometry" ? "location" : key === "non_field_errors" ? "" : key;
      const path = [prefix, name].filter(Boolean).join("-");
      if (value && typeof value === "object" && !Array.isArray(value)) {
        first = showErrors(value, path, unplaced) || first;
        continue;
      }
      const messages = messagesOf(value);
      // Nested lists (involves.0) have no element of their own: walk up to the nearest one that exists.
      let target = null;
      for (let parts = path.split("-"); parts.length && !target; parts.pop()) {
        target = byId(`error-${parts.join("-")}`);
      }
      if (!target) {
        unplaced.push(...messages);
        continue;
      }
      target.textContent = [target.textContent, ...messages].filter(Boolean).join(" ");
      const input = byId(`qe-${path}`);
      if (input) {
        input.setAttribute("aria-invalid", "true");
        const details = input.closest("details");
        if (details) {
          details.open = true; // a folded field cannot take the focus
        }
        first = first || input;
      } else if (path === "location") {
        first = first || locateButton;
      }
    }
    return first;
  }

  function showSuccess(data) {
    const properties = (data && data.properties) || {};
    const kindLabel = config.kindLabels[properties.kind] || properties.kind || "";
    let time = "";
    if (properties.occurred_at) {
      time = new Intl.DateTimeFormat(document.documentElement.lang || undefined, {
        hour: "2-digit",
        minute: "2-digit",
      }).format(new Date(properties.occurred_at));
    }
    const template = properties.street_name ? strings.saved : strings.savedNoStreet;
    successText.textContent = format(template, { kind: kindLabel, street: properties.street_name || "", time });
    form.hidden = true;
    successSection.hidden = false;
    successSection.focus();
    body.dataset.savedIncident = data && data.id ? String(data.id) : "";
    body.dataset.qeState = "saved";
  }

  function finishSaving() {
    saveButton.disabled = false;
    saveButton.textContent = strings.save;
    if (body.dataset.qeState === "saving") {
      body.dataset.qeState = "ready";
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors();
    if (!state.latlng) {
      byId("error-location").textContent = strings.locationRequired;
      locateButton.focus();
      return;
    }
    saveButton.disabled = true;
    saveButton.textContent = strings.saving;
    body.dataset.qeState = "saving";
    let response;
    try {
      response = await fetch(config.incidentsUrl, {
        method: "POST",
        credentials: "same-origin",
        headers: {
          "Content-Type": "application/json",
          Accept: "application/json",
          "X-CSRFToken": config.csrfToken,
        },
        body: JSON.stringify(feature()),
      });
    } catch (error) {
      formError.textContent = strings.failed;
      finishSaving();
      return;
    }
    if (response.status === 201) {
      showSuccess(await response.json().catch(() => null));
      finishSaving();
      return;
    }
    if (response.status === 400) {
      const unplaced = [];
      const first = showErrors(await response.json().catch(() => ({})), "", unplaced);
      formError.textContent = [strings.fixErrors, ...unplaced].join(" ");
      if (first) {
        first.focus();
      }
    } else if (response.status === 401 || response.status === 403) {
      formError.textContent = strings.notAllowed;
    } else {
      formError.textContent = strings.failed;
    }
    finishSaving();
  });

  byId("qe-new").addEventListener("click", () => {
    form.reset();
    clearErrors();
    state.latlng = null;
    state.streetEdited = false;
    state.lookup += 1; // a lookup still under way must not fill the new, empty form
    if (marker) {
      marker.remove();
      marker = null;
    }
    locationStatus.textContent = "";
    streetStatus.textContent = "";
    delete body.dataset.qeLocation;
    delete body.dataset.savedIncident;
    updateVisibility();
    successSection.hidden = true;
    form.hidden = false;
    body.dataset.qeState = "ready";
    locateButton.focus();
  });

  updateVisibility();
  body.dataset.qeState = "ready";
})();
