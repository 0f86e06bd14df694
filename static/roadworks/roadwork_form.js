/* AUMAn application form: the works area and the detours drawn on a Leaflet map with Leaflet-Geoman, and a
 * street search that fills the street names (and can give the works area).
 *
 * Plain script, no build step. Reads its configuration from the json_script element "auman-roadwork-form-config".
 * The form itself is server-rendered and posts normally; this script only keeps two hidden inputs up to date:
 *   id_geometry  the works area as a GeoJSON geometry (WGS84): Polygon or LineString (or Multi*, when edited)
 *   id_detours   the detours as a GeoJSON FeatureCollection of lines with properties {id?, name}
 * The server checks both again (roadworks/forms.py); its messages appear beside the map.
 *
 * Security: text from the server or the user goes into the page through textContent and input values only.
 *
 * For tests: document.body.dataset.rwFormState is "ready" once the map is set up; rwArea is "set" or "none";
 * rwDetours is the number of detours; rwDrawing names what is being drawn; streetSearch is "pending" or "done".
 * window.aumanRoadworkForm = {map, area(), detours()}.
 */
(function () {
  "use strict";

  const configElement = document.getElementById("auman-roadwork-form-config");
  const form = document.getElementById("roadwork-form");
  if (!configElement || !form) {
    return;
  }
  const config = JSON.parse(configElement.textContent);
  const strings = config.strings;
  const body = document.body;
  const byId = (id) => document.getElementById(id);

  const geometryInput = byId("id_geometry");
  const detoursInput = byId("id_detours");
  const pedestrianInput = byId("id_pedestrian_route");
  const streetNamesInput = byId("id_street_names");
  const mapStatus = byId("rw-map-status");
  const detourList = byId("rw-detour-list");

  // Colours as on the public map: works red (closure colour), detours blue and dashed, so they differ without
  // colour too.
  const AREA_STYLE = { color: "#b91c1c", weight: 4, opacity: 0.95, fillColor: "#b91c1c", fillOpacity: 0.2 };
  const DETOUR_STYLE = { color: "#1d4ed8", weight: 5, opacity: 0.95, dashArray: "10 8", fill: false };
  // The pedestrian route: green and dotted, different from both without colour.
  const PEDESTRIAN_STYLE = { color: "#15803d", weight: 5, opacity: 0.95, dashArray: "2 8", fill: false };
  const PREVIEW_STYLE = { color: "#374151", weight: 6, opacity: 0.5, dashArray: "2 8" };
  const SEARCH_DEBOUNCE_MS = 300;
  const SEARCH_LIMIT = 10;
  const PRECISION = 7;
  const { el, format } = window.AUMAN.dom;

  function say(text) {
    if (mapStatus) {
      mapStatus.textContent = text;
    }
  }

  // --- Street names -------------------------------------------------------------------------------------------

  function streetNames() {
    return streetNamesInput.value
      .split(/\n|;/)
      .map((name) => name.trim())
      .filter(Boolean);
  }

  function addStreetName(name) {
    const names = streetNames();
    if (!names.includes(name)) {
      names.push(name);
      streetNamesInput.value = names.join("\n");
    }
  }

  // --- Map ----------------------------------------------------------------------------------------------------

  let map = null;
  const state = { mode: null, area: null, detours: [], pedestrian: null, preview: null, nextDetour: 1 };

  if (typeof L !== "undefined" && byId("rw-map")) {
    map = L.map("rw-map", { center: config.center, zoom: config.zoom, keyboard: true });
    // No base layer without a tile URL (offline and test machines): drawing still works.
    if (config.tileUrl) {
      L.tileLayer(config.tileUrl, { attribution: config.tileAttribution, maxZoom: 19 }).addTo(map);
    }
    L.control.scale({ imperial: false, position: "bottomright" }).addTo(map);
  }
  const canDraw = Boolean(map && map.pm);

  function serialise() {
    geometryInput.value = state.area ? JSON.stringify(state.area.toGeoJSON(PRECISION).geometry) : "";
    const features = state.detours.map((detour) => {
      const properties = { name: detour.name };
      if (detour.id !== null && detour.id !== undefined) {
        properties.id = detour.id;
      }
      return { type: "Feature", properties, geometry: detour.layer.toGeoJSON(PRECISION).geometry };
    });
    detoursInput.value = JSON.stringify({ type: "FeatureCollection", features });
    if (pedestrianInput) {
      pedestrianInput.value = state.pedestrian ? JSON.stringify(state.pedestrian.toGeoJSON(PRECISION).geometry) : "";
    }
    body.dataset.rwPedestrian = state.pedestrian ? "set" : "none";
    body.dataset.rwArea = state.area ? "set" : "none";
    body.dataset.rwDetours = String(state.detours.length);
  }

  function watch(layer) {
    // Geoman fires these on the layer when its shape changes in edit or drag mode.
    layer.on("pm:edit pm:dragend pm:markerdragend pm:vertexremoved", serialise);
  }

  // The works area and the pedestrian route are one shape each: a new one replaces the old.
  function placeSingle(key, layer, style) {
    if (state[key] && state[key] !== layer) {
      map.removeLayer(state[key]);
    }
    layer.setStyle(style);
    layer.addTo(map);
    watch(layer);
    state[key] = layer;
    serialise();
  }

  function setArea(layer) {
    placeSingle("area", layer, AREA_STYLE);
  }

  function setPedestrianRoute(layer) {
    placeSingle("pedestrian", layer, PEDESTRIAN_STYLE);
    renderPedestrianRoute();
  }

  function renderPedestrianRoute() {
    const status = byId("rw-pedestrian-status");
    const remove = byId("rw-remove-pedestrian");
    if (status) {
      status.textContent = state.pedestrian ? strings.pedestrianSet : strings.pedestrianNone;
    }
    if (remove) {
      remove.hidden = !state.pedestrian;
    }
  }

  function removePedestrianRoute() {
    if (state.pedestrian) {
      map.removeLayer(state.pedestrian);
      state.pedestrian = null;
      serialise();
      renderPedestrianRoute();
      say(strings.pedestrianRemoved);
    }
  }

  function removeArea() {
    if (state.area) {
      map.removeLayer(state.area);
      state.area = null;
      serialise();
      say(strings.areaRemoved);
    } else {
      say(strings.areaMissing);
    }
  }

  function renderDetours() {
    detourList.replaceChildren();
    if (state.detours.length === 0) {
      detourList.append(el("li", "rw-help", strings.noDetours));
      return;
    }
    state.detours.forEach((detour, index) => {
      const number = index + 1;
      const item = el("li", "rw-detour");
      const inputId = `rw-detour-name-${number}`;
      const label = el("label", null, format(strings.detourName, { number }));
      label.htmlFor = inputId;
      const input = el("input");
      input.type = "text";
      input.id = inputId;
      input.maxLength = 200;
      input.value = detour.name;
      input.addEventListener("input", () => {
        detour.name = input.value;
        serialise();
      });
      const remove = el("button", "rw-button rw-button-danger", format(strings.removeDetour, { number }));
      remove.type = "button";
      remove.addEventListener("click", () => {
        map.removeLayer(detour.layer);
        state.detours.splice(state.detours.indexOf(detour), 1);
        renderDetours();
        serialise();
        say(strings.detourRemoved);
      });
      item.append(label, input, remove);
      detourList.append(item);
    });
  }

  function addDetour(layer, name, id) {
    layer.setStyle(DETOUR_STYLE);
    layer.addTo(map);
    watch(layer);
    const number = state.detours.length + 1;
    state.detours.push({ layer, id, name: name || format(strings.defaultDetourName, { number }) });
    renderDetours();
    serialise();
  }

  // A GeoJSON geometry as one editable Leaflet layer (multi-part geometries stay one layer with nested rings).
  function layerFrom(geometry) {
    const layers = L.geoJSON(geometry).getLayers();
    return layers.length ? layers[0] : null;
  }

  function parse(value) {
    if (!value) {
      return null;
    }
    try {
      return JSON.parse(value);
    } catch (error) {
      return null;
    }
  }

  function loadInitial() {
    // What the server rendered: the stored shapes, or what was posted when the form came back with errors.
    const geometry = parse(geometryInput.value);
    if (geometry && geometry.type) {
      const layer = layerFrom(geometry);
      if (layer) {
        setArea(layer);
      }
    }
    const detours = parse(detoursInput.value);
    const features = detours && Array.isArray(detours.features) ? detours.features : [];
    for (const feature of features) {
      const layer = feature && feature.geometry ? layerFrom(feature.geometry) : null;
      if (layer) {
        const properties = feature.properties || {};
        const name = typeof properties.name === "string" ? properties.name : "";
        addDetour(layer, name, Number.isInteger(properties.id) ? properties.id : null);
      }
    }
    const route = pedestrianInput ? parse(pedestrianInput.value) : null;
    if (route && route.type) {
      const layer = layerFrom(route);
      if (layer) {
        setPedestrianRoute(layer);
      }
    }
    renderPedestrianRoute();
    const shapes = [state.area, state.pedestrian, ...state.detours.map((d) => d.layer)].filter(Boolean);
    if (shapes.length) {
      map.fitBounds(L.featureGroup(shapes).getBounds(), { padding: [30, 30], maxZoom: 17, animate: false });
    }
    renderDetours();
    serialise();
  }

  // --- Drawing with Geoman ------------------------------------------------------------------------------------

  const finishButton = byId("rw-finish");
  const cancelButton = byId("rw-cancel");
  const editButton = byId("rw-edit");
  const SHAPES = { area: "Polygon", line: "Line", detour: "Line", pedestrian: "Line" };
  const HINTS = { area: "drawingArea", line: "drawingLine", detour: "drawingDetour", pedestrian: "drawingPedestrian" };
  const STYLES = { detour: DETOUR_STYLE, pedestrian: PEDESTRIAN_STYLE };

  function drawingButtons(drawing) {
    finishButton.hidden = !drawing;
    cancelButton.hidden = !drawing;
  }

  function stopEditing() {
    if (map.pm.globalEditModeEnabled()) {
      map.pm.disableGlobalEditMode();
      editButton.setAttribute("aria-pressed", "false");
      serialise();
      say(strings.editDone);
    }
  }

  function startDrawing(mode) {
    stopEditing();
    if (map.pm.globalDrawModeEnabled()) {
      map.pm.disableDraw();
    }
    state.mode = mode;
    const style = STYLES[mode] || AREA_STYLE;
    map.pm.enableDraw(SHAPES[mode], {
      pathOptions: style,
      templineStyle: style,
      hintlineStyle: { color: style.color, dashArray: "5 5" },
      continueDrawing: false,
    });
    drawingButtons(true);
    body.dataset.rwDrawing = mode;
    say(strings[HINTS[mode]]);
    map.getContainer().focus();
  }

  function finishDrawing() {
    const shape = state.mode ? SHAPES[state.mode] : null;
    const draw = shape ? map.pm.Draw[shape] : null;
    // Geoman finishes a shape when its first (area) or last (line) point is clicked again; this button does the
    // same for people who prefer a button. _finishShape is Geoman's own finishing step (it checks the point count).
    if (draw && typeof draw._finishShape === "function") {
      draw._finishShape();
    }
  }

  function cancelDrawing() {
    if (map.pm.globalDrawModeEnabled()) {
      map.pm.disableDraw();
      say(strings.cancelled);
    }
  }

  function setUpDrawing() {
    if (config.language && typeof map.pm.setLang === "function") {
      map.pm.setLang(config.language);
    }
    // Enter finishes a shape, as the hint says; the Finish button does the same.
    map.pm.setGlobalOptions({ snappable: true, snapDistance: 15, finishOnEnter: true });
    byId("rw-map-tools").hidden = false;
    byId("rw-draw-area").addEventListener("click", () => startDrawing("area"));
    byId("rw-draw-line").addEventListener("click", () => startDrawing("line"));
    byId("rw-draw-detour").addEventListener("click", () => startDrawing("detour"));
    byId("rw-remove-area").addEventListener("click", removeArea);
    const drawPedestrian = byId("rw-draw-pedestrian");
    if (drawPedestrian) {
      drawPedestrian.addEventListener("click", () => startDrawing("pedestrian"));
      byId("rw-remove-pedestrian").addEventListener("click", removePedestrianRoute);
    }
    finishButton.addEventListener("click", finishDrawing);
    cancelButton.addEventListener("click", cancelDrawing);
    editButton.addEventListener("click", () => {
      if (map.pm.globalEditModeEnabled()) {
        stopEditing();
        return;
      }
      cancelDrawing();
      map.pm.enableGlobalEditMode();
      editButton.setAttribute("aria-pressed", "true");
      say(strings.editing);
    });

    map.on("pm:create", (event) => {
      const mode = state.mode || "area";
      if (mode === "detour") {
        addDetour(event.layer, null, null);
        say(strings.detourAdded);
      } else if (mode === "pedestrian") {
        setPedestrianRoute(event.layer);
        say(strings.pedestrianSet);
      } else {
        setArea(event.layer);
        say(strings.areaSet);
      }
    });
    map.on("pm:drawend", () => {
      state.mode = null;
      drawingButtons(false);
      delete body.dataset.rwDrawing;
    });
  }

  // --- Street search ------------------------------------------------------------------------------------------

  function setUpStreetSearch() {
    const box = byId("rw-street-search");
    const query = byId("rw-street-query");
    const button = byId("rw-street-search-button");
    const status = byId("rw-street-status");
    const results = byId("rw-street-results");
    if (!box || !config.streetsUrl) {
      return;
    }
    box.hidden = false;
    let timer = null;
    let ticket = 0;
    let controller = null;

    function preview(feature) {
      if (!map) {
        return;
      }
      if (state.preview) {
        map.removeLayer(state.preview);
      }
      state.preview = L.geoJSON(feature.geometry, { style: PREVIEW_STYLE, pmIgnore: true, interactive: false });
      state.preview.addTo(map);
      const [west, south, east, north] = feature.bbox || [];
      if ([west, south, east, north].every(Number.isFinite)) {
        map.fitBounds([[south, west], [north, east]], { padding: [30, 30], maxZoom: 17 });
      }
    }

    function resultItem(feature) {
      const name = feature.properties && typeof feature.properties.name === "string" ? feature.properties.name : "";
      const item = el("li", "rw-street-result");
      item.append(el("span", "rw-street-name", name));
      const add = el("button", "rw-button", strings.addStreet);
      add.type = "button";
      add.setAttribute("aria-label", `${strings.addStreet}: ${name}`);
      add.addEventListener("click", () => {
        addStreetName(name);
        preview(feature);
        status.textContent = format(strings.streetAdded, { name });
      });
      item.append(add);
      if (map && feature.geometry) {
        const show = el("button", "rw-button", strings.showOnMap);
        show.type = "button";
        show.setAttribute("aria-label", `${strings.showOnMap}: ${name}`);
        show.addEventListener("click", () => preview(feature));
        const use = el("button", "rw-button", strings.useAsArea);
        use.type = "button";
        use.setAttribute("aria-label", `${strings.useAsArea}: ${name}`);
        use.addEventListener("click", () => {
          const layer = layerFrom(feature.geometry);
          if (!layer) {
            return;
          }
          addStreetName(name);
          setArea(layer);
          if (state.preview) {
            map.removeLayer(state.preview);
            state.preview = null;
          }
          map.fitBounds(layer.getBounds(), { padding: [30, 30], maxZoom: 17 });
          const message = format(strings.streetUsedAsArea, { name });
          status.textContent = message;
          say(message);
        });
        item.append(show, use);
      }
      return item;
    }

    async function search() {
      clearTimeout(timer);
      const text = query.value.trim();
      if (text.length < 2) {
        status.textContent = text ? strings.tooShort : "";
        results.replaceChildren();
        return;
      }
      const mine = ++ticket;
      if (controller) {
        controller.abort();
      }
      controller = new AbortController();
      body.dataset.streetSearch = "pending";
      status.textContent = strings.searching;
      let features = null;
      try {
        const url = new URL(config.streetsUrl, window.location.href);
        url.searchParams.set("q", text);
        url.searchParams.set("limit", String(SEARCH_LIMIT));
        const response = await fetch(url, {
          signal: controller.signal,
          credentials: "same-origin",
          headers: { Accept: "application/json" },
        });
        if (!response.ok) {
          throw new Error(`HTTP ${response.status}`);
        }
        const data = await response.json();
        features = Array.isArray(data.features) ? data.features : [];
      } catch (error) {
        if (error.name === "AbortError") {
          return;
        }
        features = null;
      }
      if (mine !== ticket) {
        return; // a newer search has started; its answer wins
      }
      results.replaceChildren();
      if (features === null) {
        status.textContent = strings.searchFailed;
      } else if (features.length === 0) {
        status.textContent = strings.foundNone;
      } else {
        status.textContent = format(strings.found, { count: features.length });
        features.forEach((feature) => results.append(resultItem(feature)));
      }
      body.dataset.streetSearch = "done";
    }

    query.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(search, SEARCH_DEBOUNCE_MS);
    });
    // Enter in the search box searches; it must not submit the application.
    query.addEventListener("keydown", (event) => {
      if (event.key === "Enter") {
        event.preventDefault();
        search();
      }
    });
    button.addEventListener("click", search);
  }

  // --- Start ----------------------------------------------------------------------------------------------------

  setUpStreetSearch();
  if (map) {
    if (canDraw) {
      setUpDrawing();
    }
    loadInitial();
    if (!state.area) {
      say(strings.areaMissing);
    }
    form.addEventListener("submit", () => {
      // Shapes being edited are taken as they are now.
      if (canDraw && map.pm.globalEditModeEnabled()) {
        map.pm.disableGlobalEditMode();
      }
      serialise();
    });
  }
  // A form that came back with errors: move the focus to the summary, so a screen reader reads it first and the
  // keyboard continues from there to the links to each field.
  const summary = byId("form-errors");
  if (summary) {
    summary.focus();
  }
  body.dataset.rwFormState = "ready";
  window.aumanRoadworkForm = {
    map,
    area: () => (state.area ? state.area.toGeoJSON(PRECISION).geometry : null),
    detours: () => state.detours.map((d) => ({ name: d.name, geometry: d.layer.toGeoJSON(PRECISION).geometry })),
  };
})();
