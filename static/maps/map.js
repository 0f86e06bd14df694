/* AUMAn map: roadworks, incidents and (for those who may see them) accident black spots in the part of the city
 * in view.
 *
 * Plain script, no build step. Reads its configuration from the json_script element "auman-map-config",
 * loads GeoJSON for the current bounding box on start and after every move (debounced, the previous
 * request aborted) and updates the drawn features in place, so an open popup survives a reload.
 *
 * The view is in the URL as #map=zoom/lat/lon (openstreetmap.org's convention): read on load and on hashchange,
 * rewritten (replaceState, so Back does not step through every pan) after each move.
 *
 * Security: every text that comes from data goes into the page through textContent or attributes,
 * never through innerHTML.
 *
 * For tests and the curious: window.aumanMap = {map, layers, featureCount(name), reload()} and, after every
 * load, document.body.dataset.featuresLoaded (number of features), featuresBbox and featuresLoads.
 */
(function () {
  "use strict";

  const configElement = document.getElementById("auman-map-config");
  const mapElement = document.getElementById("map");
  if (!configElement || !mapElement || typeof L === "undefined") {
    return;
  }
  const config = JSON.parse(configElement.textContent);
  const strings = config.strings;
  const impactLabels = Object.fromEntries(config.impacts.map((impact) => [impact.code, impact.label]));
  const legendElement = document.getElementById("map-legend");
  const statusElement = document.getElementById("map-status");

  // Long enough to skip the moveends of a drag or a wheel zoom, short enough to feel immediate.
  const DEBOUNCE_MS = 250;
  const PENDING_STATUSES = new Set(["submitted", "modification_requested"]);
  // Drawing order between layers: black spots under everything, incident lines above the (wider) roadworks.
  const BLACK_SPOT_PANE = "auman-black-spots";
  const INCIDENT_LINE_PANE = "auman-incident-lines";
  const MAX_ZOOM = 19;
  // The layers the server says this user may see; the rest are neither drawn nor in the legend.
  const LAYER_NAMES = ["roadworks", "incidents", "black_spots"].filter((name) =>
    (config.layers || ["roadworks", "incidents"]).includes(name),
  );

  // --- The view in the URL ------------------------------------------------------------------------------

  const HASH_PATTERN = /^#map=(\d{1,2})\/(-?\d{1,2}(?:\.\d+)?)\/(-?\d{1,3}(?:\.\d+)?)$/;

  function viewFromHash(hash) {
    const match = HASH_PATTERN.exec(hash || "");
    if (!match) {
      return null;
    }
    const [zoom, lat, lon] = match.slice(1).map(Number);
    if (zoom > MAX_ZOOM || Math.abs(lat) > 90 || Math.abs(lon) > 180) {
      return null;
    }
    return { center: [lat, lon], zoom };
  }

  function hashOf(view) {
    // As openstreetmap.org: enough decimals for the zoom (5 at zoom 18, about a metre), no more.
    const zoom = view.getZoom();
    const precision = Math.max(0, Math.ceil(Math.log(zoom) / Math.LN2));
    const centre = view.getCenter().wrap();
    return `#map=${zoom}/${centre.lat.toFixed(precision)}/${centre.lng.toFixed(precision)}`;
  }

  // --- Map and base layer -------------------------------------------------------------------------------

  const initialView = viewFromHash(window.location.hash) || { center: config.center, zoom: config.zoom };
  const map = L.map(mapElement, { center: initialView.center, zoom: initialView.zoom, keyboard: true });
  // No base layer without a tile URL: test and offline machines have no tile server, the data still shows.
  if (config.tileUrl) {
    L.tileLayer(config.tileUrl, { attribution: config.tileAttribution, maxZoom: 19 }).addTo(map);
  }
  L.control.scale({ imperial: false, position: "bottomright" }).addTo(map);

  map.createPane(BLACK_SPOT_PANE);
  map.createPane(INCIDENT_LINE_PANE);

  const layers = {};
  // Per layer: feature id -> {layer, key}; key is the feature's JSON, to see whether it changed.
  const drawn = {};
  for (const name of LAYER_NAMES) {
    layers[name] = L.featureGroup().addTo(map);
    drawn[name] = new Map();
  }

  // --- Legend ----------------------------------------------------------------------------------------------

  if (legendElement) {
    const Legend = L.Control.extend({
      options: { position: "topright" },
      onAdd() {
        // Clicks and scrolling in the legend must not pan or zoom the map underneath.
        L.DomEvent.disableClickPropagation(legendElement);
        L.DomEvent.disableScrollPropagation(legendElement);
        return legendElement;
      },
    });
    new Legend().addTo(map);
    // On a phone the open legend would cover half the map: start folded, one tap opens it.
    if (window.matchMedia && window.matchMedia("(max-width: 600px)").matches) {
      legendElement.open = false;
    }
    legendElement.querySelectorAll("input[data-layer-toggle]").forEach((input) => {
      input.addEventListener("change", () => {
        const group = layers[input.dataset.layerToggle];
        if (!group) {
          return;
        }
        if (input.checked) {
          group.addTo(map);
        } else {
          group.remove();
        }
      });
    });
  }

  // From this zoom on a black spot's area is large enough to find without the dot at its centre.
  const BLACK_SPOT_AREA_ZOOM = 16;
  function markZoom() {
    mapElement.classList.toggle("auman-zoomed-in", map.getZoom() >= BLACK_SPOT_AREA_ZOOM);
  }
  map.on("zoomend", markZoom);
  markZoom();

  // The legend was part of the page until now; moved into the map, it leaves the map element taller than
  // Leaflet measured at start. Re-measure now (keeping the centre), and whenever the element changes size
  // (header wrapping, phone rotation); a changed size fires moveend and so loads the new view.
  map.invalidateSize({ animate: false });
  if (typeof ResizeObserver === "function") {
    new ResizeObserver(() => map.invalidateSize({ animate: false })).observe(mapElement);
  }

  // --- Small DOM helpers (text only) -----------------------------------------------------------------------

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) {
      node.className = className;
    }
    if (text !== undefined && text !== null) {
      node.textContent = String(text);
    }
    return node;
  }

  function addRow(list, label, value) {
    if (value === undefined || value === null || value === "") {
      return;
    }
    list.append(el("dt", null, label), el("dd", null, value));
  }

  // Codes become CSS class names: only plain lowercase tokens, anything else falls back.
  function token(value, fallback) {
    return typeof value === "string" && /^[a-z_]{1,40}$/.test(value) ? value : fallback;
  }

  const dateFormat = new Intl.DateTimeFormat(config.locale, {
    timeZone: config.timeZone,
    dateStyle: "medium",
    timeStyle: "short",
  });
  const dayFormat = new Intl.DateTimeFormat(config.locale, { timeZone: config.timeZone, dateStyle: "medium" });

  function formatDate(iso, format) {
    if (!iso) {
      return "";
    }
    const date = new Date(iso);
    return Number.isNaN(date.getTime()) ? String(iso) : (format || dateFormat).format(date);
  }

  function setStatus(text, isError) {
    if (!statusElement) {
      return;
    }
    statusElement.textContent = text;
    statusElement.classList.toggle("is-error", Boolean(isError));
  }

  // --- Popups ------------------------------------------------------------------------------------------------

  function roadworkPopup(feature) {
    const p = feature.properties;
    const impact = token(p.impact, "restriction");
    const phase = p.phase === "planned" ? "planned" : "active";
    const root = el("div", "auman-popup auman-popup-roadwork");
    root.append(el("h2", "auman-popup-title", p.title));
    const badges = el("p", "auman-popup-badges");
    badges.append(el("span", `auman-badge auman-impact-${impact}`, impactLabels[impact] || impact));
    badges.append(el("span", `auman-badge auman-phase-${phase}`, phase === "planned" ? strings.planned : strings.active));
    if (PENDING_STATUSES.has(p.status)) {
      badges.append(el("span", "auman-badge", p.status_label));
    }
    root.append(badges);
    const list = el("dl");
    addRow(list, strings.street, (p.street_names || []).join(", "));
    if (p.period) {
      addRow(list, strings.period, `${formatDate(p.period.lower)} – ${formatDate(p.period.upper)}`);
    }
    if (p.traffic_management_label !== impactLabels[impact]) {
      addRow(list, strings.trafficManagement, p.traffic_management_label);
    }
    addRow(list, strings.status, p.status_label);
    addRow(list, strings.reference, p.reference);
    root.append(list);
    return root;
  }

  function incidentPopup(feature) {
    const p = feature.properties;
    const root = el("div", "auman-popup auman-popup-incident");
    root.append(el("h2", "auman-popup-title", p.kind_label || p.kind));
    const list = el("dl");
    addRow(list, strings.street, p.street_name);
    addRow(list, strings.occurred, formatDate(p.occurred_at));
    addRow(list, strings.expectedClearance, formatDate(p.expected_clearance_at));
    addRow(list, strings.lanesBlocked, p.lanes_blocked);
    addRow(list, strings.status, p.status_label);
    root.append(list);
    return root;
  }

  function blackSpotPopup(feature) {
    const p = feature.properties;
    const root = el("div", "auman-popup auman-popup-black-spot");
    root.append(el("h2", "auman-popup-title", strings.blackSpot));
    const list = el("dl");
    addRow(list, strings.rule, p.rule_label && p.rule_label !== p.rule ? `${p.rule} – ${p.rule_label}` : p.rule);
    addRow(list, strings.accidentType, p.accident_type_label);
    addRow(list, strings.accidents, p.accident_count);
    addRow(list, strings.score, p.score);
    if (p.period) {
      addRow(list, strings.period, `${formatDate(p.period.lower, dayFormat)} – ${formatDate(p.period.upper, dayFormat)}`);
    }
    root.append(list);
    // Only a path on this site: the link comes from the server, but a link is where a bad value would do harm.
    if (typeof p.list_url === "string" && /^\/(?!\/)/.test(p.list_url)) {
      const link = el("a", null, strings.commissionEntry);
      link.href = p.list_url;
      const paragraph = el("p", "auman-popup-link");
      paragraph.append(link);
      root.append(paragraph);
    }
    return root;
  }

  // --- Features -> Leaflet layers ----------------------------------------------------------------------------

  function setDataAttributes(element, feature) {
    if (!element) {
      return;
    }
    const p = feature.properties;
    element.dataset.featureId = String(p.id);
    element.dataset.layer = String(p.layer);
  }

  function roadworkLayer(feature) {
    const p = feature.properties;
    const classes = [
      "auman-roadwork",
      `auman-impact-${token(p.impact, "restriction")}`,
      `auman-phase-${p.phase === "planned" ? "planned" : "active"}`,
    ];
    if (/Polygon$/.test(feature.geometry.type)) {
      classes.push("auman-area");
    }
    if (PENDING_STATUSES.has(p.status)) {
      classes.push("auman-pending");
    }
    // Colours, widths and dashes come from map.css through these classes; see the comment there.
    const layer = L.GeoJSON.geometryToLayer(feature, { className: classes.join(" ") });
    // Leaflet creates a new SVG path each time the layer is added (also after the layer toggle).
    layer.on("add", () => setDataAttributes(layer.getElement && layer.getElement(), feature));
    return layer;
  }

  function symbolFor(kind) {
    const source =
      legendElement &&
      (legendElement.querySelector(`[data-symbol="${kind}"] svg`) ||
        legendElement.querySelector('[data-symbol="other"] svg'));
    if (source) {
      return source.cloneNode(true);
    }
    return el("span", "auman-symbol-fallback");
  }

  function incidentLayer(feature) {
    const p = feature.properties;
    const kind = token(p.kind, "other");
    const [lon, lat] = feature.geometry.coordinates;
    const size = kind === "accident" ? 30 : 26;
    const icon = L.divIcon({
      html: symbolFor(kind),
      className: `auman-incident auman-kind-${kind}`,
      iconSize: [size, size],
      popupAnchor: [0, -size / 2],
    });
    const label = [p.kind_label, p.street_name].filter(Boolean).join(", ");
    const marker = L.marker([lat, lon], {
      icon,
      title: label,
      keyboard: true,
      riseOnHover: true,
      // Accidents above other incidents where they overlap.
      zIndexOffset: kind === "accident" ? 1000 : 0,
    });
    marker.on("add", () => {
      const element = marker.getElement();
      setDataAttributes(element, feature);
      if (element) {
        element.dataset.kind = kind;
        element.setAttribute("aria-label", label);
      }
    });
    const stretch = p.affected_line;
    if (!stretch || stretch.type !== "LineString" || !Array.isArray(stretch.coordinates)) {
      return marker;
    }
    // The stretch is drawn with the symbol; one popup for both, whichever is clicked.
    const line = L.GeoJSON.geometryToLayer(stretch, {
      className: `auman-incident-line auman-kind-${kind}`,
      pane: INCIDENT_LINE_PANE,
    });
    line.on("add", () => setDataAttributes(line.getElement && line.getElement(), feature));
    return L.featureGroup([line, marker]);
  }

  function blackSpotLayer(feature) {
    const p = feature.properties;
    const area = L.GeoJSON.geometryToLayer(feature, { className: "auman-black-spot", pane: BLACK_SPOT_PANE });
    area.on("add", () => {
      const element = area.getElement && area.getElement();
      setDataAttributes(element, feature);
      if (element) {
        element.dataset.rule = String(p.rule);
      }
    });
    if (!Array.isArray(p.centre) || p.centre.length !== 2) {
      return area;
    }
    // A black spot is some 50 m across, a few pixels at city zoom: a dot at its centre keeps it visible and
    // clickable there. map.css hides the dot once the area itself is large enough (auman-zoomed-in).
    const dot = L.circleMarker([p.centre[1], p.centre[0]], {
      radius: 6,
      className: "auman-black-spot-centre",
      pane: BLACK_SPOT_PANE,
    });
    dot.on("add", () => setDataAttributes(dot.getElement && dot.getElement(), feature));
    return L.featureGroup([area, dot]);
  }

  const builders = {
    roadworks: { layer: roadworkLayer, popup: roadworkPopup },
    incidents: { layer: incidentLayer, popup: incidentPopup },
    black_spots: { layer: blackSpotLayer, popup: blackSpotPopup },
  };

  function sync(name, features) {
    const group = layers[name];
    const current = drawn[name];
    const seen = new Set();
    let changed = false;
    for (const feature of features) {
      const id = String(feature.id !== undefined ? feature.id : feature.properties.id);
      const key = JSON.stringify(feature);
      seen.add(id);
      const existing = current.get(id);
      if (existing && existing.key === key) {
        continue; // unchanged: keep the layer, and with it an open popup
      }
      if (existing) {
        group.removeLayer(existing.layer);
      }
      const layer = builders[name].layer(feature);
      layer.bindPopup(() => builders[name].popup(feature), { maxWidth: 320 });
      group.addLayer(layer);
      current.set(id, { layer, key });
      changed = true;
    }
    for (const [id, entry] of current) {
      if (!seen.has(id)) {
        group.removeLayer(entry.layer);
        current.delete(id);
        changed = true;
      }
    }
    if (changed && name === "roadworks") {
      // The server sends the most severe works last; keep them on top after partial updates too.
      for (const feature of features) {
        const entry = current.get(String(feature.id !== undefined ? feature.id : feature.properties.id));
        if (entry && entry.layer.bringToFront && map.hasLayer(group)) {
          entry.layer.bringToFront();
        }
      }
    }
  }

  // --- Loading -------------------------------------------------------------------------------------------------

  let inFlight = null;
  let timer = null;
  let loads = 0;

  function clamp(value, low, high) {
    return Math.min(high, Math.max(low, value));
  }

  function currentBbox() {
    // Zoomed far out, Leaflet's bounds reach past the antimeridian; the server accepts -180..180 only.
    const bounds = map.getBounds();
    const west = clamp(bounds.getWest(), -180, 180);
    const south = clamp(bounds.getSouth(), -90, 90);
    const east = clamp(bounds.getEast(), -180, 180);
    const north = clamp(bounds.getNorth(), -90, 90);
    return [west, south, east, north].map((v) => v.toFixed(6)).join(",");
  }

  async function load() {
    clearTimeout(timer);
    if (inFlight) {
      inFlight.abort();
    }
    const controller = new AbortController();
    inFlight = controller;
    const bbox = currentBbox();
    const url = new URL(config.featuresUrl, window.location.href);
    url.searchParams.set("bbox", bbox);
    setStatus(strings.loading, false);
    try {
      const response = await fetch(url, {
        signal: controller.signal,
        credentials: "same-origin",
        headers: { Accept: "application/geo+json, application/json" },
      });
      if (!response.ok) {
        throw new Error(`HTTP ${response.status}`);
      }
      const data = await response.json();
      if (controller !== inFlight) {
        return; // a newer request has started; its answer wins
      }
      const byLayer = Object.fromEntries(LAYER_NAMES.map((name) => [name, []]));
      for (const feature of data.features || []) {
        const name = feature.properties && feature.properties.layer;
        if (byLayer[name] && feature.geometry) {
          byLayer[name].push(feature);
        }
      }
      let total = 0;
      for (const name of LAYER_NAMES) {
        sync(name, byLayer[name]);
        total += byLayer[name].length;
      }
      loads += 1;
      const count = (name) => String(byLayer[name] ? byLayer[name].length : 0);
      setStatus(
        (byLayer.black_spots ? strings.summaryBlackSpots : strings.summary)
          .replace("{roadworks}", count("roadworks"))
          .replace("{incidents}", count("incidents"))
          .replace("{black_spots}", count("black_spots")),
        false,
      );
      document.body.dataset.featuresBbox = bbox;
      document.body.dataset.featuresLoads = String(loads);
      document.body.dataset.featuresLoaded = String(total);
    } catch (error) {
      if (error.name === "AbortError") {
        return;
      }
      setStatus(strings.loadError, true);
      console.warn("AUMAn: loading map features failed:", error);
    } finally {
      if (inFlight === controller) {
        inFlight = null;
      }
    }
  }

  function scheduleLoad() {
    clearTimeout(timer);
    timer = setTimeout(load, DEBOUNCE_MS);
  }

  map.on("moveend", scheduleLoad);
  load();

  // From here on the URL follows the view. Not earlier: the start-up re-measuring is no move of the user's, and
  // a page opened without a fragment keeps its plain address until the view changes.
  function writeHash() {
    const hash = hashOf(map);
    if (hash !== window.location.hash) {
      history.replaceState(history.state, "", hash);
    }
  }
  map.on("moveend", writeHash);
  // A #map= link followed on this page (or typed into the address bar) moves the map there.
  window.addEventListener("hashchange", () => {
    const view = viewFromHash(window.location.hash);
    if (view) {
      map.setView(view.center, view.zoom);
    }
  });

  window.aumanMap = {
    map,
    layers,
    featureCount(name) {
      return drawn[name] ? drawn[name].size : 0;
    },
    reload: load,
  };
})();
