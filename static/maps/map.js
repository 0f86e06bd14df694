/* AUMAn map: roadworks and incidents in the part of the city in view.
 *
 * Plain script, no build step. Reads its configuration from the json_script element "auman-map-config",
 * loads GeoJSON for the current bounding box on start and after every move (debounced, the previous
 * request aborted) and updates the drawn features in place, so an open popup survives a reload.
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

  // --- Map and base layer -------------------------------------------------------------------------------

  const map = L.map(mapElement, { center: config.center, zoom: config.zoom, keyboard: true });
  // No base layer without a tile URL: test and offline machines have no tile server, the data still shows.
  if (config.tileUrl) {
    L.tileLayer(config.tileUrl, { attribution: config.tileAttribution, maxZoom: 19 }).addTo(map);
  }
  L.control.scale({ imperial: false, position: "bottomright" }).addTo(map);

  const layers = {
    roadworks: L.featureGroup().addTo(map),
    incidents: L.featureGroup().addTo(map),
  };
  // Per layer: feature id -> {layer, key}; key is the feature's JSON, to see whether it changed.
  const drawn = { roadworks: new Map(), incidents: new Map() };

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

  function formatDate(iso) {
    if (!iso) {
      return "";
    }
    const date = new Date(iso);
    return Number.isNaN(date.getTime()) ? String(iso) : dateFormat.format(date);
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
    return marker;
  }

  const builders = {
    roadworks: { layer: roadworkLayer, popup: roadworkPopup },
    incidents: { layer: incidentLayer, popup: incidentPopup },
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
      const byLayer = { roadworks: [], incidents: [] };
      for (const feature of data.features || []) {
        const name = feature.properties && feature.properties.layer;
        if (byLayer[name] && feature.geometry) {
          byLayer[name].push(feature);
        }
      }
      sync("roadworks", byLayer.roadworks);
      sync("incidents", byLayer.incidents);
      loads += 1;
      setStatus(
        strings.summary
          .replace("{roadworks}", String(byLayer.roadworks.length))
          .replace("{incidents}", String(byLayer.incidents.length)),
        false,
      );
      document.body.dataset.featuresBbox = bbox;
      document.body.dataset.featuresLoads = String(loads);
      document.body.dataset.featuresLoaded = String(byLayer.roadworks.length + byLayer.incidents.length);
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

  window.aumanMap = {
    map,
    layers,
    featureCount(name) {
      return drawn[name] ? drawn[name].size : 0;
    },
    reload: load,
  };
})();
