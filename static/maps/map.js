/* AUMAn map: roadworks (with their detours), incidents, and for those who may see them recorded accidents,
 * accident black spots, moratoria, events, corridors and conflicts.
 *
 * Plain script, no build step. Reads its configuration from the json_script element "auman-map-config" (built by
 * maps/views.py and maps/page.py). Loads GeoJSON for the current bounding box on start and after every move
 * (debounced, the previous request aborted) and updates the drawn features in place, so an open popup survives
 * a reload. Large layers come as vector tiles (Leaflet.VectorGrid): recorded accidents always, roadworks when
 * zoomed far out. Incidents are clustered (Leaflet.markercluster) until zoomed in.
 *
 * Time: a day (today by default) chosen with a slider or a date field. Works in force on that day are drawn solid,
 * works starting later dashed (unless switched off); works that end before it are hidden. Incidents are live and
 * shown for today only.
 *
 * Everything drawn is also in the list view beside the map (a table of what is in view, with a button per row
 * that shows the feature on the map and its details in the side panel).
 *
 * The view is in the URL as #map=zoom/lat/lon (openstreetmap.org's convention), followed by &date=, &layers=,
 * &impact=, &kind=, &district= and &upcoming=0 when they differ from the defaults: read on load and on hashchange,
 * rewritten (replaceState, so Back does not step through every pan) after each move or change.
 *
 * Staff follow changes live: the features are asked again every few seconds with If-None-Match, and what is new
 * or changed is marked on the map and in the list.
 *
 * Security: every text that comes from data goes into the page through textContent or attributes,
 * never through innerHTML.
 *
 * For tests and the curious: window.aumanMap = {map, layers, overlays, state, featureCount(name), reload(),
 * poll(), listEntries()} and, after every load, document.body.dataset.featuresLoaded (number of features drawn),
 * featuresBbox, featuresLoads, listCount, and per tile layer tilesLoaded<Name>.
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
  const kindLabels = Object.fromEntries(config.kinds.map((kind) => [kind.code, kind.label]));
  const legendElement = document.getElementById("map-legend");
  const statusElement = document.getElementById("map-status");

  // Long enough to skip the moveends of a drag or a wheel zoom, short enough to feel immediate.
  const DEBOUNCE_MS = 250;
  const PENDING_STATUSES = new Set(["submitted", "modification_requested"]);
  // Drawing order between layers: black spots and rule areas under everything, incident lines above the (wider)
  // roadworks, detours between.
  const BLACK_SPOT_PANE = "auman-black-spots";
  const AREA_PANE = "auman-areas";
  const INCIDENT_LINE_PANE = "auman-incident-lines";
  const ACCIDENT_PANE = "auman-accidents";
  const MAX_ZOOM = 19;
  // A table of thousands of rows helps no one and slows the page; zooming in narrows it.
  const LIST_LIMIT = 300;
  // Staff layers from the REST API: enough pages for any city's moratoria and events, a bound for a runaway.
  const API_PAGE_SIZE = 1000;
  const API_MAX_PAGES = 10;
  const TODAY = config.today;
  const TIME_ZONE = config.timeZone;
  // The layers of /map/features.geojson the server says this user may see.
  const LAYER_NAMES = ["roadworks", "incidents", "black_spots"].filter((name) =>
    (config.layers || ["roadworks", "incidents"]).includes(name),
  );
  const layerDefs = (config.layerDefs || []).filter(
    (def) => def.source !== "features" || def.name === "detours" || LAYER_NAMES.includes(def.name),
  );
  const defs = Object.fromEntries(layerDefs.map((def) => [def.name, def]));
  const ALL_LAYERS = layerDefs.map((def) => def.name);
  const DEFAULT_ON = new Set(layerDefs.filter((def) => def.on).map((def) => def.name));
  const LAYER_LABELS = {
    roadworks: strings.roadworks,
    detours: strings.detours,
    incidents: strings.incidents,
    accidents: strings.accidentsTiles,
    black_spots: strings.blackSpots,
    moratoria: strings.moratoria,
    events: strings.events,
    corridors: strings.corridors,
    conflicts: strings.conflicts,
    external: strings.externalItems,
  };
  const ENTRY_LABELS = {
    roadworks: strings.roadworkSingular,
    detours: strings.detour,
    incidents: strings.incidentSingular,
    accidents: strings.accidentSingular,
    black_spots: strings.blackSpot,
    moratoria: strings.moratorium,
    events: strings.event,
    corridors: strings.corridor,
    conflicts: strings.conflict,
    external: strings.externalItem,
  };
  // Colours for vector tiles (drawn on canvas or inline SVG, out of reach of map.css); the same as map.css's.
  const IMPACT_COLOURS = { closure: "#b91c1c", restriction: "#d9480f", minor: "#b7791f" };
  const IMPACT_WEIGHTS = { closure: 5, restriction: 4, minor: 3 };
  const ACCIDENT_STYLES = {
    1: { colour: "#450a0a", radius: 6 },
    2: { colour: "#c8102e", radius: 5 },
    3: { colour: "#c2410c", radius: 4 },
  };

  // --- Small DOM helpers (text only) -----------------------------------------------------------------------

  const { el, format } = window.AUMAN.dom;

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

  // Only a path on this site: links come from the server, but a link is where a bad value would do harm.
  function localPath(value) {
    return typeof value === "string" && /^\/(?!\/)/.test(value) ? value : null;
  }

  function setStatus(text, isError) {
    if (!statusElement) {
      return;
    }
    statusElement.textContent = text;
    statusElement.classList.toggle("is-error", Boolean(isError));
  }

  // --- Dates ---------------------------------------------------------------------------------------------------

  const dateFormat = new Intl.DateTimeFormat(config.locale, {
    timeZone: TIME_ZONE,
    dateStyle: "medium",
    timeStyle: "short",
  });
  const dayFormat = new Intl.DateTimeFormat(config.locale, { timeZone: TIME_ZONE, dateStyle: "medium" });
  const longDayFormat = new Intl.DateTimeFormat(config.locale, { timeZone: "UTC", dateStyle: "full" });
  const zoneParts = new Intl.DateTimeFormat("en-GB", {
    timeZone: TIME_ZONE,
    hourCycle: "h23",
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  });

  function formatDate(iso, fmt) {
    if (!iso) {
      return "";
    }
    const date = new Date(iso);
    return Number.isNaN(date.getTime()) ? String(iso) : (fmt || dateFormat).format(date);
  }

  function formatPeriod(period, fmt) {
    if (!period || (!period.lower && !period.upper)) {
      return "";
    }
    return `${formatDate(period.lower, fmt)} – ${formatDate(period.upper, fmt)}`;
  }

  function dayToUtc(isoDay) {
    const [year, month, day] = isoDay.split("-").map(Number);
    return Date.UTC(year, month - 1, day);
  }

  function utcToDay(millis) {
    return new Date(millis).toISOString().slice(0, 10);
  }

  function addDays(isoDay, days) {
    return utcToDay(dayToUtc(isoDay) + days * 86400000);
  }

  function daysBetween(fromDay, toDay) {
    return Math.round((dayToUtc(toDay) - dayToUtc(fromDay)) / 86400000);
  }

  // The city's offset from UTC at an instant, in milliseconds (summer time included).
  function zoneOffset(instant) {
    const parts = Object.fromEntries(zoneParts.formatToParts(new Date(instant)).map((p) => [p.type, p.value]));
    const local = Date.UTC(+parts.year, +parts.month - 1, +parts.day, +parts.hour, +parts.minute, +parts.second);
    return local - Math.floor(instant / 1000) * 1000;
  }

  // The instant a day begins in the city's time zone: the browser may be anywhere (tests run it in UTC).
  function dayStart(isoDay) {
    const midnightUtc = dayToUtc(isoDay);
    let guess = midnightUtc;
    for (let i = 0; i < 2; i += 1) {
      guess = midnightUtc - zoneOffset(guess);
    }
    return guess;
  }

  function instant(iso) {
    const value = iso ? Date.parse(iso) : NaN;
    return Number.isNaN(value) ? null : value;
  }

  // --- State and the URL -------------------------------------------------------------------------------------

  const state = {
    date: TODAY,
    upcoming: true,
    on: new Set(DEFAULT_ON),
    impact: "",
    kind: "",
    district: "",
  };

  const VIEW_PATTERN = /^(\d{1,2})\/(-?\d{1,2}(?:\.\d+)?)\/(-?\d{1,3}(?:\.\d+)?)$/;
  const DAY_PATTERN = /^\d{4}-\d{2}-\d{2}$/;
  const DISTRICT_PATTERN = /^[\w-]{1,64}$/;

  function parseHash(hash) {
    const params = new URLSearchParams((hash || "").replace(/^#/, ""));
    const result = {};
    const match = VIEW_PATTERN.exec(params.get("map") || "");
    if (match) {
      const [zoom, lat, lon] = match.slice(1).map(Number);
      if (zoom <= MAX_ZOOM && Math.abs(lat) <= 90 && Math.abs(lon) <= 180) {
        result.view = { center: [lat, lon], zoom };
      }
    }
    const date = params.get("date");
    // A shared link outlives its day: a date now past (or beyond the slider) falls back to today.
    if (date && DAY_PATTERN.test(date) && date >= TODAY && date <= config.maxDate) {
      result.date = date;
    }
    if (params.has("layers")) {
      result.on = new Set(params.get("layers").split(",").filter((name) => ALL_LAYERS.includes(name)));
    }
    if (impactLabels[params.get("impact")]) {
      result.impact = params.get("impact");
    }
    if (kindLabels[params.get("kind")]) {
      result.kind = params.get("kind");
    }
    if (DISTRICT_PATTERN.test(params.get("district") || "")) {
      result.district = params.get("district");
    }
    if (params.get("upcoming") === "0") {
      result.upcoming = false;
    }
    return result;
  }

  function sameSet(a, b) {
    return a.size === b.size && [...a].every((value) => b.has(value));
  }

  function hashOf(view) {
    // As openstreetmap.org: enough decimals for the zoom (5 at zoom 18, about a metre), no more.
    const zoom = view.getZoom();
    const precision = Math.max(0, Math.ceil(Math.log(zoom) / Math.LN2));
    const centre = view.getCenter().wrap();
    const parts = [`map=${zoom}/${centre.lat.toFixed(precision)}/${centre.lng.toFixed(precision)}`];
    // Only what differs from the defaults, so a plain view keeps the plain address others link to.
    if (state.date !== TODAY) {
      parts.push(`date=${state.date}`);
    }
    if (!state.upcoming) {
      parts.push("upcoming=0");
    }
    if (!sameSet(state.on, DEFAULT_ON)) {
      parts.push(`layers=${ALL_LAYERS.filter((name) => state.on.has(name)).join(",")}`);
    }
    for (const key of ["impact", "kind", "district"]) {
      if (state[key]) {
        parts.push(`${key}=${encodeURIComponent(state[key])}`);
      }
    }
    return `#${parts.join("&")}`;
  }

  function applyHashState(parsed) {
    state.date = parsed.date || TODAY;
    state.upcoming = parsed.upcoming !== false;
    state.on = parsed.on || new Set(DEFAULT_ON);
    state.impact = parsed.impact || "";
    state.kind = parsed.kind || "";
    state.district = parsed.district || "";
  }

  // --- Map and base layer -------------------------------------------------------------------------------

  const initial = parseHash(window.location.hash);
  applyHashState(initial);
  const initialView = initial.view || { center: config.center, zoom: config.zoom };
  // maxZoom: without a base layer nothing else tells Leaflet (and the clustering needs to know).
  const map = L.map(mapElement, {
    center: initialView.center,
    zoom: initialView.zoom,
    keyboard: true,
    maxZoom: MAX_ZOOM,
  });
  // No base layer without a tile URL: test and offline machines have no tile server, the data still shows.
  if (config.tileUrl) {
    L.tileLayer(config.tileUrl, { attribution: config.tileAttribution, maxZoom: 19 }).addTo(map);
  }
  L.control.scale({ imperial: false, position: "bottomright" }).addTo(map);

  map.createPane(BLACK_SPOT_PANE);
  map.createPane(AREA_PANE);
  map.createPane(INCIDENT_LINE_PANE);
  map.createPane(ACCIDENT_PANE);

  function lowZoom() {
    return map.getZoom() < (config.roadworkTilesBelowZoom || 0);
  }

  // --- Layers --------------------------------------------------------------------------------------------------

  // The features endpoint's layers, by name; incidents clustered when the plugin is there.
  const layers = {};
  // Per layer: feature id -> {layer, key, feature}; key is the feature's JSON, to see whether it changed.
  const drawn = {};
  for (const name of LAYER_NAMES) {
    if (name === "incidents" && typeof L.markerClusterGroup === "function") {
      layers[name] = L.markerClusterGroup({
        disableClusteringAtZoom: config.clusterUntilZoom || 15,
        maxClusterRadius: 45,
        showCoverageOnHover: false,
        spiderfyOnMaxZoom: false,
        chunkedLoading: true,
        iconCreateFunction: clusterIcon,
      });
    } else {
      layers[name] = L.featureGroup();
    }
    drawn[name] = new Map();
  }
  // Everything else: detours (from the roadworks' features), vector tiles, staff layers from the API.
  const overlays = { detours: L.featureGroup() };
  const apiDrawn = {};
  for (const def of layerDefs) {
    if (def.source === "api") {
      overlays[def.name] = L.featureGroup();
      apiDrawn[def.name] = new Map();
    }
  }
  const districtOutline = L.featureGroup().addTo(map);
  const streetHighlight = L.featureGroup().addTo(map);

  function clusterIcon(cluster) {
    const count = cluster.getChildCount();
    const size = count < 10 ? 34 : count < 100 ? 40 : 46;
    const inner = el("span", "auman-cluster-count", count);
    inner.setAttribute("aria-hidden", "true");
    const wrapper = el("span", "auman-cluster-inner");
    wrapper.append(inner, el("span", "visually-hidden", format(strings.clusterLabel, { count })));
    return L.divIcon({ html: wrapper, className: "auman-cluster", iconSize: [size, size] });
  }

  // --- Entries: one per thing drawn, for popups, the side panel and the list ------------------------------------

  const entries = new Map(); // key -> entry, for what is drawn as a Leaflet layer
  let tileEntries = new Map(); // key -> entry, for features of vector tiles (rebuilt with the list)
  // key -> "new" | "changed": what the last live updates brought, until someone looks at it.
  const marks = new Map();
  let selectedKey = null;

  function entryKey(layerName, id) {
    return `${layerName}:${id}`;
  }

  function markElement(element, key) {
    if (element && element.classList) {
      element.classList.toggle("auman-new", marks.get(key) === "new");
      element.classList.toggle("auman-changed", marks.get(key) === "changed");
    }
  }

  function leaves(layer) {
    return layer instanceof L.LayerGroup ? layer.getLayers() : [layer];
  }

  function setDataAttributes(element, key, layerName, id) {
    if (!element) {
      return;
    }
    element.dataset.featureId = String(id);
    element.dataset.layer = String(layerName);
    markElement(element, key);
  }

  // Popups keep clear of the legend in the top right corner, or it would cover them and their close button.
  function popupOptions() {
    const legendWidth = legendElement && legendElement.offsetWidth ? legendElement.offsetWidth : 0;
    // Leaflet has padding for the top left and the bottom right only; the right one keeps the legend side free.
    return { maxWidth: 320, autoPanPaddingBottomRight: L.point(legendWidth + 20, 10) };
  }

  // Popups are bound to each drawn part rather than a group: a clustered marker has no group on the map.
  function attach(layer, key) {
    for (const leaf of leaves(layer)) {
      leaf.bindPopup(() => detailsElement(entries.get(key), false), popupOptions());
      leaf.on("popupopen", () => showDetails(entries.get(key), false));
    }
  }

  // --- Details (popup and side panel share them) ---------------------------------------------------------------

  function link(text, href) {
    const anchor = el("a", null, text);
    anchor.href = href;
    const paragraph = el("p", "auman-popup-link");
    paragraph.append(anchor);
    return paragraph;
  }

  function roadworkDetails(root, p) {
    const impact = token(p.impact, "restriction");
    const phase = p.phase === "planned" ? "planned" : "active";
    const badges = el("p", "auman-popup-badges");
    badges.append(el("span", `auman-badge auman-impact-${impact}`, impactLabels[impact] || impact));
    const phaseText = phase === "planned" ? strings.planned : strings.active;
    badges.append(el("span", `auman-badge auman-phase-${phase}`, phaseText));
    if (PENDING_STATUSES.has(p.status)) {
      badges.append(el("span", "auman-badge", p.status_label));
    }
    root.append(badges);
    const list = el("dl");
    addRow(list, strings.street, (p.street_names || []).join(", "));
    if (p.period) {
      addRow(list, strings.period, formatPeriod(p.period));
    } else if (p.starts || p.ends) {
      addRow(list, strings.period, formatPeriod({ lower: p.starts, upper: p.ends }));
    }
    if (p.traffic_management_label && p.traffic_management_label !== impactLabels[impact]) {
      addRow(list, strings.trafficManagement, p.traffic_management_label);
    }
    addRow(list, strings.kindOfWorks, p.kind_of_works);
    addRow(list, strings.status, p.status_label || p.status);
    addRow(list, strings.reference, p.reference);
    if (Array.isArray(p.detours) && p.detours.length) {
      addRow(list, strings.detours, p.detours.map((detour) => detour.name).join("; "));
    }
    root.append(list);
    if (config.applicationUrl && p.id !== undefined && p.id !== null) {
      const href = localPath(config.applicationUrl.replace("{id}", encodeURIComponent(String(p.id))));
      if (href) {
        root.append(link(strings.openApplication, href));
      }
    }
  }

  function incidentDetails(root, p) {
    const list = el("dl");
    addRow(list, strings.street, p.street_name);
    addRow(list, strings.occurred, formatDate(p.occurred_at));
    addRow(list, strings.expectedClearance, formatDate(p.expected_clearance_at));
    addRow(list, strings.lanesBlocked, p.lanes_blocked);
    addRow(list, strings.status, p.status_label);
    root.append(list);
  }

  function detourDetails(root, p) {
    const list = el("dl");
    addRow(list, strings.detourOf, p.roadwork_title);
    addRow(list, strings.description, p.description);
    addRow(list, strings.period, formatPeriod(p.period || p.roadwork_period));
    root.append(list);
  }

  function accidentDetails(root, p) {
    const list = el("dl");
    addRow(list, strings.category, p.category);
    addRow(list, strings.accidentType, p.type);
    addRow(list, strings.occurred, formatDate(p.occurred));
    root.append(list);
  }

  function blackSpotDetails(root, p) {
    const list = el("dl");
    addRow(list, strings.rule, p.rule_label && p.rule_label !== p.rule ? `${p.rule} – ${p.rule_label}` : p.rule);
    addRow(list, strings.accidentType, p.accident_type_label);
    addRow(list, strings.accidents, p.accident_count);
    addRow(list, strings.score, p.score);
    addRow(list, strings.period, formatPeriod(p.period, dayFormat));
    root.append(list);
    const href = localPath(p.list_url);
    if (href) {
      root.append(link(strings.commissionEntry, href));
    }
  }

  function staffDetails(root, layerName, p) {
    const list = el("dl");
    if (layerName === "moratoria") {
      addRow(list, strings.resurfacedOn, formatDate(p.resurfaced_on, dayFormat));
      addRow(list, strings.endsOn, formatDate(p.ends_on, dayFormat));
      addRow(list, strings.reason, p.reason);
    } else if (layerName === "events") {
      addRow(list, strings.period, formatPeriod(p.period));
      addRow(list, strings.visitors, p.expected_visitors);
      addRow(list, strings.description, p.description);
    } else if (layerName === "corridors") {
      addRow(list, strings.maxSimultaneous, p.max_simultaneous);
      addRow(list, strings.description, p.description);
    } else if (layerName === "conflicts") {
      addRow(list, strings.rule, p.rule_label && p.rule_label !== p.rule ? `${p.rule} – ${p.rule_label}` : p.rule);
      addRow(list, strings.severity, p.severity_label || p.severity);
      const otherSide = p.roadwork_b_reference || p.layer_label || p.layer;
      addRow(list, strings.sides, [p.roadwork_a_reference, otherSide].filter(Boolean).join(" – "));
      addRow(list, strings.period, formatPeriod(p.overlap_period));
      addRow(list, strings.status, p.status_label || p.status);
    } else if (layerName === "external") {
      addRow(list, strings.source, p.source);
      addRow(list, strings.kindOfWorks, p.kind_label);
      addRow(list, strings.restriction, p.restriction_label);
      addRow(list, strings.period, formatPeriod(p.period));
      addRow(list, strings.description, p.description);
    }
    root.append(list);
    if (layerName === "conflicts" && config.conflictUrl && p.id !== undefined) {
      const href = localPath(config.conflictUrl.replace("{id}", encodeURIComponent(String(p.id))));
      if (href) {
        root.append(link(strings.openConflict, href));
      }
    }
  }

  function detailsElement(entry, inPanel) {
    const layerName = entry ? entry.layer : "";
    const popupKinds = { roadworks: "roadwork", incidents: "incident", black_spots: "black-spot" };
    const popupKind = popupKinds[layerName] || layerName;
    const root = el("div", `auman-popup auman-popup-${popupKind}`);
    if (!entry) {
      return root;
    }
    root.append(el(inPanel ? "h3" : "h2", "auman-popup-title", entry.title));
    if (marks.has(entry.key)) {
      const markText = marks.get(entry.key) === "new" ? strings.new : strings.changed;
      root.append(el("p", "auman-badge auman-badge-new", markText));
    }
    const p = entry.properties;
    if (layerName === "roadworks") {
      roadworkDetails(root, p);
    } else if (layerName === "incidents") {
      incidentDetails(root, p);
    } else if (layerName === "detours") {
      detourDetails(root, p);
    } else if (layerName === "accidents") {
      accidentDetails(root, p);
    } else if (layerName === "black_spots") {
      blackSpotDetails(root, p);
    } else {
      staffDetails(root, layerName, p);
    }
    return root;
  }

  const detailsBody = document.getElementById("map-details-body");
  const detailsHeading = document.getElementById("map-details-heading");

  function showDetails(entry, focus) {
    if (!entry || !detailsBody) {
      return;
    }
    selectedKey = entry.key;
    // Looked at: no longer new.
    if (marks.delete(entry.key)) {
      for (const leaf of entry.leafletLayer ? leaves(entry.leafletLayer) : []) {
        markElement(leaf.getElement && leaf.getElement(), entry.key);
      }
      scheduleList();
    }
    detailsBody.replaceChildren(detailsElement(entry, true));
    detailsBody.dataset.key = entry.key;
    if (focus && detailsHeading) {
      detailsHeading.focus();
    }
  }

  // --- Features -> Leaflet layers ----------------------------------------------------------------------------

  function roadworkLayer(feature, key) {
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
    layer.on("add", () => setDataAttributes(layer.getElement && layer.getElement(), key, "roadworks", p.id));
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

  function incidentLayer(feature, key) {
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
      setDataAttributes(element, key, "incidents", p.id);
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
    line.on("add", () => setDataAttributes(line.getElement && line.getElement(), key, "incidents", p.id));
    return L.featureGroup([line, marker]);
  }

  function blackSpotLayer(feature, key) {
    const p = feature.properties;
    const area = L.GeoJSON.geometryToLayer(feature, { className: "auman-black-spot", pane: BLACK_SPOT_PANE });
    area.on("add", () => {
      const element = area.getElement && area.getElement();
      setDataAttributes(element, key, "black_spots", p.id);
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
    dot.on("add", () => setDataAttributes(dot.getElement && dot.getElement(), key, "black_spots", p.id));
    return L.featureGroup([area, dot]);
  }

  function staffLayer(layerName, feature, key) {
    const options =
      layerName === "corridors"
        ? { className: "auman-corridor" }
        : { className: `auman-staff-area auman-${layerName}`, pane: AREA_PANE };
    // Points (an external source's warning) as circles: Leaflet's default marker would load an image.
    options.pointToLayer = (point, latlng) =>
      L.circleMarker(latlng, { radius: 7, className: options.className, pane: options.pane });
    const layer = L.GeoJSON.geometryToLayer(feature, options);
    layer.on("add", () => setDataAttributes(layer.getElement && layer.getElement(), key, layerName, feature.id));
    return layer;
  }

  function detourLayer(detour, key) {
    const layer = L.GeoJSON.geometryToLayer({ type: "Feature", geometry: detour.geometry, properties: {} }, {
      className: "auman-detour",
    });
    layer.on("add", () => setDataAttributes(layer.getElement && layer.getElement(), key, "detours", detour.id));
    return layer;
  }

  const builders = {
    roadworks: roadworkLayer,
    incidents: incidentLayer,
    black_spots: blackSpotLayer,
  };

  function titleOf(layerName, p) {
    if (layerName === "roadworks") {
      return p.title || p.reference || strings.roadworkSingular;
    }
    if (layerName === "incidents") {
      return p.kind_label || kindLabels[p.kind] || p.kind;
    }
    if (layerName === "black_spots") {
      return p.rule_label ? `${strings.blackSpot}: ${p.rule_label}` : strings.blackSpot;
    }
    if (layerName === "conflicts") {
      return `${strings.conflict} ${p.rule || ""}`.trim();
    }
    return p.name || p.title || ENTRY_LABELS[layerName];
  }

  function whereOf(layerName, p) {
    if (layerName === "roadworks") {
      return (p.street_names || []).join(", ");
    }
    if (layerName === "incidents") {
      return p.street_name || "";
    }
    return "";
  }

  function whenOf(layerName, p) {
    if (layerName === "roadworks") {
      return formatPeriod(p.period || { lower: p.starts, upper: p.ends }, dayFormat);
    }
    if (layerName === "incidents") {
      return formatDate(p.occurred_at);
    }
    if (layerName === "accidents") {
      return formatDate(p.occurred, dayFormat);
    }
    if (layerName === "moratoria") {
      return formatPeriod({ lower: p.resurfaced_on, upper: p.ends_on }, dayFormat);
    }
    if (layerName === "conflicts") {
      return formatPeriod(p.overlap_period, dayFormat);
    }
    return formatPeriod(p.period, dayFormat);
  }

  function makeEntry(layerName, id, properties, leafletLayer) {
    const key = entryKey(layerName, id);
    return {
      key,
      layer: layerName,
      id,
      properties,
      leafletLayer,
      title: titleOf(layerName, properties),
      where: whereOf(layerName, properties),
      when: whenOf(layerName, properties),
    };
  }

  function featureId(feature) {
    return String(feature.id !== undefined && feature.id !== null ? feature.id : feature.properties.id);
  }

  // Brings the drawn layer `name` in line with `features`; with markChanges, remembers what is new or changed.
  function sync(name, features, markChanges) {
    const group = layers[name];
    const current = drawn[name];
    const seen = new Set();
    const changes = { added: 0, changed: 0, removed: 0 };
    for (const feature of features) {
      const id = featureId(feature);
      const key = entryKey(name, id);
      const json = JSON.stringify(feature);
      seen.add(id);
      const existing = current.get(id);
      if (existing && existing.json === json) {
        continue; // unchanged: keep the layer, and with it an open popup
      }
      const serverJson = loadedJson[name].get(id);
      if (markChanges) {
        // Only real changes count: the day shown or a filter changing the phase is not news.
        const before = existing ? existing.serverJson : null;
        const now = serverJson;
        if (!existing) {
          marks.set(key, "new");
          changes.added += 1;
        } else if (before !== now) {
          marks.set(key, "changed");
          changes.changed += 1;
        }
      }
      if (existing) {
        group.removeLayer(existing.layer);
      }
      const layer = builders[name](feature, key);
      entries.set(key, makeEntry(name, id, feature.properties, layer));
      attach(layer, key);
      group.addLayer(layer);
      current.set(id, { layer, json, serverJson });
    }
    for (const [id, entry] of current) {
      if (!seen.has(id)) {
        group.removeLayer(entry.layer);
        current.delete(id);
        entries.delete(entryKey(name, id));
        marks.delete(entryKey(name, id));
        changes.removed += markChanges ? 1 : 0;
      }
    }
    if (name === "roadworks" && map.hasLayer(group)) {
      // The server sends the most severe works last; keep them on top after partial updates too.
      for (const feature of features) {
        const entry = current.get(featureId(feature));
        if (entry && entry.layer.bringToFront) {
          entry.layer.bringToFront();
        }
      }
    }
    return changes;
  }

  // Detours travel inside their roadwork's feature; drawn as a layer of their own so they can be switched.
  const detoursDrawn = new Map();
  function syncDetours(roadworks) {
    const seen = new Set();
    for (const feature of roadworks) {
      const p = feature.properties;
      for (const detour of Array.isArray(p.detours) ? p.detours : []) {
        if (!detour || !detour.geometry) {
          continue;
        }
        const id = String(detour.id);
        const key = entryKey("detours", id);
        const properties = {
          ...detour,
          roadwork_id: p.id,
          roadwork_title: p.title,
          roadwork_period: p.period,
        };
        const json = JSON.stringify(properties);
        seen.add(id);
        const existing = detoursDrawn.get(id);
        if (existing && existing.json === json) {
          continue;
        }
        if (existing) {
          overlays.detours.removeLayer(existing.layer);
        }
        const layer = detourLayer(detour, key);
        entries.set(key, makeEntry("detours", id, properties, layer));
        attach(layer, key);
        overlays.detours.addLayer(layer);
        detoursDrawn.set(id, { layer, json });
      }
    }
    for (const [id, entry] of detoursDrawn) {
      if (!seen.has(id)) {
        overlays.detours.removeLayer(entry.layer);
        detoursDrawn.delete(id);
        entries.delete(entryKey("detours", id));
      }
    }
  }

  // --- What the day and the filters let through ------------------------------------------------------------------

  function roadworkOnDay(feature) {
    const p = feature.properties;
    if (state.impact && p.impact !== state.impact) {
      return null;
    }
    let phase = p.phase;
    if (state.date !== TODAY) {
      const start = dayStart(state.date);
      const end = dayStart(addDays(state.date, 1));
      const lower = instant(p.period && p.period.lower);
      const upper = instant(p.period && p.period.upper);
      if (upper !== null && upper <= start) {
        return null; // over before the day
      }
      phase = lower === null || lower < end ? "active" : "planned";
    }
    if (phase === "planned" && !state.upcoming) {
      return null;
    }
    return phase === p.phase ? feature : { ...feature, properties: { ...p, phase } };
  }

  function incidentShown(feature) {
    return state.date === TODAY && (!state.kind || feature.properties.kind === state.kind);
  }

  function filtered(name, features) {
    if (name === "roadworks") {
      return features.map(roadworkOnDay).filter(Boolean);
    }
    if (name === "incidents") {
      return features.filter(incidentShown);
    }
    return features;
  }

  function layerShown(name) {
    if (!state.on.has(name)) {
      return false;
    }
    if (name === "roadworks" || name === "detours") {
      return !lowZoom();
    }
    if (name === "incidents") {
      return state.date === TODAY;
    }
    return true;
  }

  // --- Loading the features endpoint ----------------------------------------------------------------------------

  const loaded = Object.fromEntries(LAYER_NAMES.map((name) => [name, []]));
  // Per layer: feature id -> the feature's JSON as the server sent it, to tell real changes from redraws.
  const loadedJson = Object.fromEntries(LAYER_NAMES.map((name) => [name, new Map()]));
  let inFlight = null;
  let timer = null;
  let loads = 0;
  let lastEtag = null;
  let lastUrl = null;

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

  function featuresUrl(bbox) {
    const url = new URL(config.featuresUrl, window.location.href);
    url.searchParams.set("bbox", bbox);
    // Far out, roadworks come as vector tiles: asking for them as GeoJSON too would defeat the purpose.
    if (lowZoom() && LAYER_NAMES.includes("roadworks")) {
      const rest = LAYER_NAMES.filter((name) => name !== "roadworks");
      if (rest.length) {
        url.searchParams.set("layers", rest.join(","));
      }
    }
    if (state.district) {
      url.searchParams.set("district", state.district);
    }
    return url;
  }

  function redraw(markChanges) {
    let total = 0;
    const changes = { added: 0, changed: 0, removed: 0 };
    const counts = {};
    for (const name of LAYER_NAMES) {
      const features = filtered(name, loaded[name]);
      const result = sync(name, features, markChanges);
      changes.added += result.added;
      changes.changed += result.changed;
      changes.removed += result.removed;
      counts[name] = features.length;
      total += features.length;
    }
    syncDetours(filtered("roadworks", loaded.roadworks || []));
    applyVisibility();
    const count = (name) => String(counts[name] || 0);
    let summary = format(LAYER_NAMES.includes("black_spots") ? strings.summaryBlackSpots : strings.summary, {
      roadworks: count("roadworks"),
      incidents: count("incidents"),
      black_spots: count("black_spots"),
    });
    if (state.date !== TODAY) {
      summary = `${summary}. ${strings.incidentsTodayOnly}`;
    }
    if (markChanges) {
      summary =
        changes.added || changes.changed || changes.removed
          ? `${summary}. ${format(strings.liveSummary, {
              new: changes.added,
              changed: changes.changed,
              removed: changes.removed,
            })}`
          : `${summary}. ${strings.liveUnchanged}`;
    }
    setStatus(summary, false);
    document.body.dataset.featuresLoaded = String(total);
    scheduleList();
    return changes;
  }

  async function load(options) {
    const poll = Boolean(options && options.poll);
    clearTimeout(timer);
    if (poll && inFlight) {
      return; // a load is under way and brings the news anyway
    }
    if (inFlight) {
      inFlight.abort();
    }
    const controller = new AbortController();
    inFlight = controller;
    const bbox = currentBbox();
    const url = featuresUrl(bbox);
    const headers = { Accept: "application/geo+json, application/json" };
    // Conditional: an unchanged view costs a 304 without a body.
    if (poll && lastEtag && lastUrl === url.href) {
      headers["If-None-Match"] = lastEtag;
    }
    if (!poll) {
      setStatus(strings.loading, false);
    }
    try {
      const response = await fetch(url, {
        signal: controller.signal,
        credentials: "same-origin",
        // The browser's cache would turn our 304 into a 200 with the old body and hide what we want to know.
        cache: "no-store",
        headers,
      });
      if (response.status === 304) {
        if (controller === inFlight) {
          redraw(true);
          document.body.dataset.featuresPolls = String(Number(document.body.dataset.featuresPolls || 0) + 1);
        }
        return;
      }
      if (!response.ok) {
        throw new Error(`HTTP ${response.status}`);
      }
      const data = await response.json();
      if (controller !== inFlight) {
        return; // a newer request has started; its answer wins
      }
      lastEtag = response.headers.get("ETag");
      lastUrl = url.href;
      for (const name of LAYER_NAMES) {
        loaded[name] = [];
        loadedJson[name] = new Map();
      }
      for (const feature of data.features || []) {
        const name = feature.properties && feature.properties.layer;
        if (loaded[name] && feature.geometry) {
          loadedJson[name].set(featureId(feature), JSON.stringify(feature));
          loaded[name].push(feature);
        }
      }
      loads += 1;
      document.body.dataset.featuresBbox = bbox;
      document.body.dataset.featuresLoads = String(loads);
      // Marks only for a live update: a first load or a pan brings features into view, not news.
      redraw(poll);
      if (poll) {
        document.body.dataset.featuresPolls = String(Number(document.body.dataset.featuresPolls || 0) + 1);
      }
      if (loads === 1 && window.performance && performance.mark) {
        performance.mark("auman-map-drawn");
      }
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

  // --- Staff layers from the REST API ----------------------------------------------------------------------------

  const apiLoadedFor = {};

  function apiParams(name) {
    if (name === "moratoria") {
      return { in_force_on: state.date };
    }
    if (name === "events") {
      return { active_on: state.date };
    }
    if (name === "corridors") {
      return { active: "true" };
    }
    if (name === "conflicts") {
      return { status: "open,acknowledged" };
    }
    if (name === "external") {
      return { active_on: state.date };
    }
    return {};
  }

  function conflictOnDay(feature) {
    const period = feature.properties.overlap_period;
    if (!period) {
      return true;
    }
    const start = dayStart(state.date);
    const end = dayStart(addDays(state.date, 1));
    const lower = instant(period.lower);
    const upper = instant(period.upper);
    if (upper !== null && upper <= start) {
      return false;
    }
    return state.upcoming || lower === null || lower < end;
  }

  async function loadApiLayer(name, force, markChanges) {
    const def = defs[name];
    if (!def || !def.url) {
      return;
    }
    const params = apiParams(name);
    const signature = JSON.stringify(params);
    if (!force && apiLoadedFor[name] === signature) {
      redrawApiLayer(name);
      return;
    }
    apiLoadedFor[name] = signature;
    const features = [];
    let url = new URL(def.url, window.location.href);
    for (const [key, value] of Object.entries({ ...params, page_size: API_PAGE_SIZE })) {
      url.searchParams.set(key, value);
    }
    try {
      for (let page = 0; url && page < API_MAX_PAGES; page += 1) {
        const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
        if (!response.ok) {
          throw new Error(`HTTP ${response.status}`);
        }
        const data = await response.json();
        features.push(...(data.features || []).filter((feature) => feature && feature.geometry));
        // Only follow our own server's next page.
        url = data.next ? new URL(data.next, window.location.href) : null;
        if (url && url.origin !== window.location.origin) {
          url = null;
        }
      }
    } catch (error) {
      apiLoadedFor[name] = null;
      setStatus(format(strings.layerError, { layer: LAYER_LABELS[name] }), true);
      console.warn(`AUMAn: loading ${name} failed:`, error);
      return;
    }
    if (apiLoadedFor[name] !== signature) {
      return; // the day changed meanwhile; that load wins
    }
    apiRaw[name] = features;
    redrawApiLayer(name, markChanges);
  }

  const apiRaw = {};

  function redrawApiLayer(name, markChanges) {
    const group = overlays[name];
    const current = apiDrawn[name];
    const features = (apiRaw[name] || []).filter((feature) => name !== "conflicts" || conflictOnDay(feature));
    const seen = new Set();
    for (const feature of features) {
      const id = featureId(feature);
      const key = entryKey(name, id);
      const json = JSON.stringify(feature);
      seen.add(id);
      const existing = current.get(id);
      if (existing && existing.json === json) {
        continue;
      }
      if (markChanges) {
        marks.set(key, existing ? "changed" : "new");
      }
      if (existing) {
        group.removeLayer(existing.layer);
      }
      const properties = { ...feature.properties, id: feature.id !== undefined ? feature.id : feature.properties.id };
      const layer = staffLayer(name, feature, key);
      entries.set(key, makeEntry(name, id, properties, layer));
      attach(layer, key);
      group.addLayer(layer);
      current.set(id, { layer, json });
    }
    for (const [id, entry] of current) {
      if (!seen.has(id)) {
        group.removeLayer(entry.layer);
        current.delete(id);
        entries.delete(entryKey(name, id));
      }
    }
    document.body.dataset[`apiLoaded${camel(name)}`] = String(current.size);
    scheduleList();
  }

  function camel(name) {
    return name
      .split("_")
      .map((part) => part.charAt(0).toUpperCase() + part.slice(1))
      .join("");
  }

  // --- Vector tiles ----------------------------------------------------------------------------------------------

  // Leaflet.VectorGrid 1.3 predates Leaflet 1.8 and its own click handling fails there (see its SOURCE.md), so
  // tiles are drawn without interactivity and a click is matched against the features of the tile under it.
  const tileLayers = {};

  function tileUrl(layerName) {
    const template = (config.vectorTileUrl || "/tiles/{layer}/{z}/{x}/{y}.mvt").replace("{layer}", layerName);
    // The day shown: roadworks of that day; accidents of the years up to it (the server's window).
    const params = new URLSearchParams({ on: state.date });
    if (layerName === "roadworks") {
      if (state.impact) {
        params.set("impact", state.impact);
      }
    }
    if (state.district) {
      params.set("district", state.district);
    }
    const query = params.toString();
    return query ? `${template}?${query}` : template;
  }

  function roadworkTileStyle(properties) {
    const impact = token(properties.impact, "restriction");
    return {
      color: IMPACT_COLOURS[impact] || "#374151",
      weight: IMPACT_WEIGHTS[impact] || 3,
      opacity: 0.95,
      fill: true,
      fillOpacity: 0.2,
      dashArray: properties.phase === "planned" ? "8 6" : null,
      className: `auman-roadwork-tile auman-impact-${impact}`,
    };
  }

  function accidentTileStyle(properties) {
    const style = ACCIDENT_STYLES[properties.category] || { colour: "#4b5563", radius: 3 };
    return { radius: style.radius, color: "#ffffff", weight: 1, fill: true, fillColor: style.colour, fillOpacity: 0.9 };
  }

  function makeTileLayer(layerName) {
    if (typeof L.vectorGrid === "undefined" || !L.vectorGrid.protobuf) {
      return null;
    }
    const styles = {};
    styles[layerName] = layerName === "roadworks" ? roadworkTileStyle : accidentTileStyle;
    const grid = L.vectorGrid.protobuf(tileUrl(layerName), {
      // Points by the hundred thousand draw faster on canvas; the few roadworks lines look crisper in SVG.
      rendererFactory: layerName === "accidents" ? L.canvas.tile : L.svg.tile,
      vectorTileLayerStyles: styles,
      interactive: false,
      getFeatureId: (feature) => feature.properties.id,
      fetchOptions: { credentials: "same-origin" },
      maxNativeZoom: 18,
      maxZoom: MAX_ZOOM,
      pane: layerName === "accidents" ? ACCIDENT_PANE : "overlayPane",
    });
    const flag = `tilesLoaded${camel(layerName)}`;
    grid.on("loading", () => {
      document.body.dataset[flag] = "0";
    });
    grid.on("load", () => {
      document.body.dataset[flag] = "1";
      scheduleList();
    });
    return grid;
  }

  if (defs.accidents) {
    tileLayers.accidents = makeTileLayer("accidents");
  }
  if (LAYER_NAMES.includes("roadworks")) {
    tileLayers.roadworks = makeTileLayer("roadworks");
  }

  function refreshTileUrls() {
    for (const [name, grid] of Object.entries(tileLayers)) {
      if (grid && grid._url !== tileUrl(name)) {
        grid.setUrl(tileUrl(name), !map.hasLayer(grid));
      }
    }
  }

  // The features of the current tiles of `grid`, each once, with where it is (for the list and for clicks).
  function tileFeatures(grid, layerName) {
    const result = new Map();
    if (!grid || !grid._map || !grid._vectorTiles) {
      return result;
    }
    const zoom = map.getZoom();
    const tileSize = grid.getTileSize();
    const bounds = map.getBounds();
    for (const [key, tile] of Object.entries(grid._tiles || {})) {
      const renderer = grid._vectorTiles[key];
      if (!tile.current || !renderer || !renderer._features || tile.coords.z !== zoom) {
        continue;
      }
      const origin = tile.coords.scaleBy(tileSize);
      for (const [id, stored] of Object.entries(renderer._features)) {
        if (result.has(id) || !stored.feature) {
          continue;
        }
        const symbol = stored.feature;
        const point = symbol._point || (symbol._parts && symbol._parts[0] && symbol._parts[0][0]);
        if (!point) {
          continue;
        }
        const latlng = map.unproject(origin.add(point), zoom);
        if (!bounds.contains(latlng)) {
          continue;
        }
        result.set(id, { id, latlng, properties: symbol.properties || {}, layer: layerName });
      }
    }
    return result;
  }

  function distanceToSymbol(symbol, point) {
    if (symbol._point) {
      return Math.max(0, symbol._point.distanceTo(point) - (symbol._radius || 4));
    }
    let best = Infinity;
    for (const part of symbol._parts || []) {
      for (let i = 1; i < part.length; i += 1) {
        best = Math.min(best, L.LineUtil.pointToSegmentDistance(point, part[i - 1], part[i]));
      }
    }
    return best;
  }

  // The feature of `grid` under a click, if any (within a few pixels, as a finger needs).
  function tileHit(grid, latlng) {
    if (!grid || !grid._map || !grid._vectorTiles) {
      return null;
    }
    const zoom = map.getZoom();
    const tileSize = grid.getTileSize();
    const pixel = map.project(latlng, zoom);
    const coords = pixel.unscaleBy(tileSize).floor();
    coords.z = zoom;
    const renderer = grid._vectorTiles[grid._tileCoordsToKey(coords)];
    if (!renderer || !renderer._features) {
      return null;
    }
    const local = pixel.subtract(coords.scaleBy(tileSize));
    let best = null;
    let bestDistance = 6;
    for (const [id, stored] of Object.entries(renderer._features)) {
      const distance = stored.feature ? distanceToSymbol(stored.feature, local) : Infinity;
      if (distance <= bestDistance) {
        best = { id, properties: stored.feature.properties || {} };
        bestDistance = distance;
      }
    }
    return best;
  }

  function tileEntry(layerName, hit) {
    const entry = makeEntry(layerName, hit.id, hit.properties, null);
    entry.latlng = hit.latlng;
    return entry;
  }

  map.on("click", (event) => {
    // A click on something drawn as a Leaflet layer is that layer's; the tiles only get clicks on the map itself.
    const target = event.originalEvent && event.originalEvent.target;
    if (target && target.closest && target.closest(".leaflet-interactive, .leaflet-marker-icon")) {
      return;
    }
    for (const name of ["accidents", "roadworks"]) {
      const grid = tileLayers[name];
      if (!grid || !map.hasLayer(grid)) {
        continue;
      }
      const hit = tileHit(grid, event.latlng);
      if (hit) {
        hit.latlng = event.latlng;
        const entry = tileEntry(name, hit);
        tileEntries.set(entry.key, entry);
        openTilePopup(entry);
        return;
      }
    }
  });

  function openTilePopup(entry) {
    L.popup(popupOptions()).setLatLng(entry.latlng).setContent(detailsElement(entry, false)).openOn(map);
    showDetails(entry, false);
  }

  // --- Showing and hiding layers ---------------------------------------------------------------------------------

  function show(layer, visible) {
    if (!layer) {
      return;
    }
    if (visible && !map.hasLayer(layer)) {
      layer.addTo(map);
    } else if (!visible && map.hasLayer(layer)) {
      layer.remove();
    }
  }

  function applyVisibility() {
    for (const name of LAYER_NAMES) {
      show(layers[name], layerShown(name));
    }
    show(overlays.detours, layerShown("detours"));
    show(tileLayers.roadworks, state.on.has("roadworks") && lowZoom());
    show(tileLayers.accidents, state.on.has("accidents"));
    for (const def of layerDefs) {
      if (def.source === "api") {
        const visible = state.on.has(def.name);
        show(overlays[def.name], visible);
        if (visible) {
          loadApiLayer(def.name, false);
        }
      }
    }
    if (legendElement) {
      legendElement.querySelectorAll("input[data-layer-toggle]").forEach((input) => {
        input.checked = state.on.has(input.dataset.layerToggle);
      });
    }
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
      // A toggle for a layer this user does not get (or this page does not know) has nothing to switch.
      if (!ALL_LAYERS.includes(input.dataset.layerToggle)) {
        input.closest(".map-legend-heading").nextElementSibling.remove();
        input.closest(".map-legend-heading").remove();
        return;
      }
      input.addEventListener("change", () => {
        if (input.checked) {
          state.on.add(input.dataset.layerToggle);
        } else {
          state.on.delete(input.dataset.layerToggle);
        }
        applyVisibility();
        writeHash();
        renderList();
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
  // Crossing the tile threshold swaps the roadworks' source.
  let wasLowZoom = lowZoom();
  map.on("zoomend", () => {
    if (lowZoom() !== wasLowZoom) {
      wasLowZoom = lowZoom();
      applyVisibility();
    }
  });

  // The legend was part of the page until now; moved into the map, it leaves the map element taller than
  // Leaflet measured at start. Re-measure now (keeping the centre), and whenever the element changes size
  // (header wrapping, phone rotation); a changed size fires moveend and so loads the new view.
  // At start the view is put back exactly where it was asked for: keeping the centre through a resize rounds to
  // half pixels, and a shared link must open at the place it names.
  map.invalidateSize({ pan: false });
  map.setView(initialView.center, initialView.zoom, { animate: false });
  if (typeof ResizeObserver === "function") {
    new ResizeObserver(() => map.invalidateSize({ animate: false })).observe(mapElement);
  }

  // --- The list view ---------------------------------------------------------------------------------------------

  const listBody = document.querySelector("#map-list tbody");
  const listCaption = document.getElementById("map-list-caption");
  const LIST_ORDER = [
    "incidents",
    "roadworks",
    "detours",
    "accidents",
    "black_spots",
    "conflicts",
    "moratoria",
    "events",
    "corridors",
    "external",
  ];
  let listTimer = null;

  function inView(entry, bounds) {
    const layer = entry.leafletLayer;
    if (!layer) {
      return entry.latlng ? bounds.contains(entry.latlng) : false;
    }
    for (const leaf of leaves(layer)) {
      if (leaf.getLatLng && bounds.contains(leaf.getLatLng())) {
        return true;
      }
      if (leaf.getBounds && bounds.intersects(leaf.getBounds())) {
        return true;
      }
    }
    return false;
  }

  function listEntries() {
    const bounds = map.getBounds();
    const result = [];
    for (const entry of entries.values()) {
      if (!entry.leafletLayer || !layerShown(entry.layer)) {
        continue;
      }
      if (!drawnNow(entry)) {
        continue;
      }
      if (inView(entry, bounds)) {
        result.push(entry);
      }
    }
    const fresh = new Map();
    for (const [name, grid] of Object.entries(tileLayers)) {
      if (!grid || !map.hasLayer(grid)) {
        continue;
      }
      for (const hit of tileFeatures(grid, name).values()) {
        const entry = tileEntry(name, hit);
        fresh.set(entry.key, entry);
        result.push(entry);
      }
    }
    tileEntries = fresh;
    result.sort(
      (a, b) =>
        LIST_ORDER.indexOf(a.layer) - LIST_ORDER.indexOf(b.layer) ||
        String(a.title).localeCompare(String(b.title), config.locale),
    );
    return result;
  }

  // An entry still belongs to what is drawn (entries of tiles and removed features linger in the index).
  function drawnNow(entry) {
    if (entry.layer === "detours") {
      return detoursDrawn.has(String(entry.id));
    }
    if (drawn[entry.layer]) {
      const current = drawn[entry.layer].get(String(entry.id));
      return Boolean(current) && current.layer === entry.leafletLayer;
    }
    if (apiDrawn[entry.layer]) {
      return apiDrawn[entry.layer].has(String(entry.id));
    }
    return false;
  }

  function renderList() {
    clearTimeout(listTimer);
    if (!listBody) {
      return;
    }
    const all = listEntries();
    const shown = all.slice(0, LIST_LIMIT);
    const rows = shown.map((entry) => {
      const row = el("tr");
      row.dataset.key = entry.key;
      row.dataset.layer = entry.layer;
      if (entry.key === selectedKey) {
        row.classList.add("is-selected");
      }
      row.append(el("td", "map-list-layer", ENTRY_LABELS[entry.layer] || entry.layer));
      const nameCell = el("td", "map-list-name");
      const button = el("button", "map-list-item", entry.title);
      button.type = "button";
      button.addEventListener("click", () => showEntry(entry.key));
      nameCell.append(button);
      if (marks.has(entry.key)) {
        const markText = marks.get(entry.key) === "new" ? strings.new : strings.changed;
        nameCell.append(" ", el("span", "auman-badge auman-badge-new", markText));
      }
      if (entry.where) {
        nameCell.append(el("span", "map-list-where", entry.where));
      }
      row.append(nameCell, el("td", "map-list-when", entry.when));
      return row;
    });
    if (!rows.length) {
      const row = el("tr");
      const cell = el("td", "map-list-empty", strings.listEmpty);
      cell.colSpan = 3;
      row.append(cell);
      rows.push(row);
    }
    // Keep the focus on the same row's button when the list is rebuilt under it (live updates, a pan).
    const focusedKey =
      document.activeElement && document.activeElement.classList.contains("map-list-item")
        ? document.activeElement.closest("tr").dataset.key
        : null;
    listBody.replaceChildren(...rows);
    if (focusedKey) {
      const again = listBody.querySelector(`tr[data-key="${CSS.escape(focusedKey)}"] .map-list-item`);
      if (again) {
        again.focus();
      }
    }
    let caption = format(strings.listCaption, { count: all.length });
    if (all.length > shown.length) {
      caption = `${caption} ${format(strings.listCapped, { count: LIST_LIMIT })}`;
    }
    listCaption.textContent = caption;
    document.body.dataset.listCount = String(all.length);
  }

  function scheduleList() {
    clearTimeout(listTimer);
    listTimer = setTimeout(renderList, 50);
  }

  // From the list: show the feature on the map, open its popup, and its details in the panel (focus there, so a
  // keyboard user hears them at once and can go back with Shift+Tab).
  function showEntry(key) {
    const entry = entries.get(key) || tileEntries.get(key);
    if (!entry) {
      return;
    }
    selectedKey = key;
    if (!entry.leafletLayer) {
      openTilePopup(entry);
      showDetails(entry, true);
      return;
    }
    const parts = leaves(entry.leafletLayer);
    const target = parts.find((leaf) => leaf.getLatLng) || parts[0];
    const group = layers[entry.layer];
    if (group && group.zoomToShowLayer && target.getLatLng) {
      group.zoomToShowLayer(target, () => target.openPopup());
    } else {
      const bounds = target.getBounds ? target.getBounds() : L.latLngBounds([target.getLatLng()]);
      if (!map.getBounds().contains(bounds)) {
        map.fitBounds(bounds, { maxZoom: Math.max(map.getZoom(), 16), padding: [30, 30] });
      }
      target.openPopup();
    }
    showDetails(entry, true);
  }

  // --- Controls: day, filters, district, street ----------------------------------------------------------------

  const dateInput = document.getElementById("map-date");
  const dayInput = document.getElementById("map-day");
  const dayOutput = document.getElementById("map-day-output");
  const upcomingInput = document.getElementById("map-upcoming");
  const todayButton = document.getElementById("map-today");
  const impactSelect = document.getElementById("map-impact");
  const kindSelect = document.getElementById("map-kind");
  const districtSelect = document.getElementById("map-district");
  const liveInput = document.getElementById("map-live");

  function showControls() {
    if (dateInput) {
      dateInput.value = state.date;
    }
    if (dayInput) {
      dayInput.value = String(daysBetween(TODAY, state.date));
      const label = format(strings.dayLabel, { date: longDayFormat.format(new Date(dayToUtc(state.date))) });
      dayInput.setAttribute("aria-valuetext", label);
      if (dayOutput) {
        dayOutput.textContent = label;
      }
    }
    if (upcomingInput) {
      upcomingInput.checked = state.upcoming;
    }
    if (impactSelect) {
      impactSelect.value = state.impact;
    }
    if (kindSelect) {
      kindSelect.value = state.kind;
    }
    if (districtSelect && [...districtSelect.options].some((option) => option.value === state.district)) {
      districtSelect.value = state.district;
    }
  }

  // A change of day or filter: redraw what is loaded, ask the server where it filters, and remember it in the URL.
  function stateChanged(options) {
    showControls();
    refreshTileUrls();
    redraw(false);
    for (const def of layerDefs) {
      if (def.source === "api" && state.on.has(def.name)) {
        loadApiLayer(def.name, false);
      }
    }
    if (options && options.reload) {
      load();
    }
    if (!options || options.writeHash !== false) {
      writeHash();
    }
  }

  function setDate(value) {
    if (!DAY_PATTERN.test(value || "")) {
      return;
    }
    const clamped = value < TODAY ? TODAY : value > config.maxDate ? config.maxDate : value;
    if (clamped !== state.date) {
      state.date = clamped;
      stateChanged();
    } else {
      showControls();
    }
  }

  if (dateInput) {
    dateInput.addEventListener("change", () => setDate(dateInput.value));
  }
  if (dayInput) {
    dayInput.addEventListener("input", () => setDate(addDays(TODAY, Number(dayInput.value) || 0)));
  }
  if (todayButton) {
    todayButton.addEventListener("click", () => setDate(TODAY));
  }
  if (upcomingInput) {
    upcomingInput.addEventListener("change", () => {
      state.upcoming = upcomingInput.checked;
      stateChanged();
    });
  }
  if (impactSelect) {
    impactSelect.addEventListener("change", () => {
      state.impact = impactLabels[impactSelect.value] ? impactSelect.value : "";
      stateChanged();
    });
  }
  if (kindSelect) {
    kindSelect.addEventListener("change", () => {
      state.kind = kindLabels[kindSelect.value] ? kindSelect.value : "";
      stateChanged();
    });
  }
  const controlsForm = document.getElementById("map-controls");
  if (controlsForm) {
    controlsForm.addEventListener("submit", (event) => event.preventDefault());
  }

  // Districts: the select is filled from the API; choosing one filters on the server and frames the district.
  const districts = new Map();

  function outlineDistrict() {
    districtOutline.clearLayers();
    const feature = districts.get(state.district);
    if (!feature) {
      return null;
    }
    const outline = L.geoJSON(feature, { style: { className: "auman-district-outline" }, interactive: false });
    districtOutline.addLayer(outline);
    return outline.getBounds();
  }

  async function loadDistricts() {
    if (!districtSelect || !config.districtsUrl) {
      return;
    }
    try {
      const response = await fetch(config.districtsUrl, {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      });
      if (!response.ok) {
        throw new Error(`HTTP ${response.status}`);
      }
      const data = await response.json();
      const features = (data.features || []).filter((feature) => feature && feature.properties);
      features.sort((a, b) => String(a.properties.name).localeCompare(String(b.properties.name), config.locale));
      for (const feature of features) {
        const id = String(feature.properties.id !== undefined ? feature.properties.id : feature.id);
        if (!DISTRICT_PATTERN.test(id)) {
          continue;
        }
        districts.set(id, feature);
        const option = el("option", null, feature.properties.name);
        option.value = id;
        districtSelect.append(option);
      }
      showControls();
      outlineDistrict();
      document.body.dataset.districtsLoaded = String(districts.size);
    } catch (error) {
      setStatus(strings.districtsError, true);
      console.warn("AUMAn: loading districts failed:", error);
    }
  }

  if (districtSelect) {
    districtSelect.addEventListener("change", () => {
      state.district = DISTRICT_PATTERN.test(districtSelect.value) ? districtSelect.value : "";
      const bounds = outlineDistrict();
      stateChanged({ reload: true });
      if (bounds && bounds.isValid()) {
        map.fitBounds(bounds, { padding: [20, 20] });
      }
    });
  }

  // Street search: the REST API's name search; one hit zooms at once, several are offered as buttons.
  const streetForm = document.getElementById("map-street-form");
  const streetInput = document.getElementById("map-street");
  const streetStatus = document.getElementById("map-street-status");
  const streetResults = document.getElementById("map-street-results");

  function zoomToStreet(feature) {
    streetHighlight.clearLayers();
    const [west, south, east, north] = feature.bbox || [];
    const line = L.geoJSON(feature.geometry, { style: { className: "auman-street-highlight" }, interactive: false });
    streetHighlight.addLayer(line);
    const bounds =
      [west, south, east, north].every(Number.isFinite)
        ? L.latLngBounds([south, west], [north, east])
        : line.getBounds();
    map.fitBounds(bounds, { maxZoom: 17, padding: [30, 30] });
    streetStatus.textContent = format(strings.streetZoomed, { name: feature.properties.name });
  }

  if (streetForm && streetInput) {
    streetForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      const query = streetInput.value.trim();
      streetResults.replaceChildren();
      if (query.length < 2) {
        streetInput.reportValidity();
        return;
      }
      streetStatus.textContent = strings.streetSearching;
      const url = new URL(config.streetsUrl, window.location.href);
      url.searchParams.set("q", query);
      try {
        const response = await fetch(url, { headers: { Accept: "application/json" } });
        if (!response.ok) {
          throw new Error(`HTTP ${response.status}`);
        }
        const data = await response.json();
        const features = (data.features || []).filter((feature) => feature && feature.geometry);
        if (!features.length) {
          streetStatus.textContent = strings.streetNone;
          return;
        }
        // One hit, or one named exactly as typed (others merely contain it): straight there.
        const exact = features.filter(
          (feature) => String(feature.properties.name).toLocaleLowerCase() === query.toLocaleLowerCase(),
        );
        if (features.length === 1 || exact.length === 1) {
          zoomToStreet(exact.length === 1 ? exact[0] : features[0]);
          return;
        }
        streetStatus.textContent = format(strings.streetResults, { count: features.length });
        for (const feature of features) {
          const item = el("li");
          const button = el("button", "map-street-result", feature.properties.name);
          button.type = "button";
          button.addEventListener("click", () => zoomToStreet(feature));
          item.append(button);
          streetResults.append(item);
        }
      } catch (error) {
        streetStatus.textContent = strings.streetError;
        console.warn("AUMAn: street search failed:", error);
      }
    });
  }

  // --- Live updates (staff) --------------------------------------------------------------------------------------

  let liveTimer = null;
  function poll() {
    // The staff layers change too (a conflict appears when a work moves); they are small, so asked in full.
    for (const def of layerDefs) {
      if (def.source === "api" && state.on.has(def.name)) {
        loadApiLayer(def.name, true, true);
      }
    }
    return load({ poll: true });
  }

  function scheduleLive() {
    clearInterval(liveTimer);
    liveTimer = null;
    const live = config.live || {};
    if (live.enabled && (!liveInput || liveInput.checked) && live.seconds > 0) {
      liveTimer = setInterval(() => {
        // A hidden tab need not ask; it catches up when shown again.
        if (!document.hidden) {
          poll();
        }
      }, live.seconds * 1000);
    }
  }
  if (liveInput) {
    liveInput.addEventListener("change", scheduleLive);
  }
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && liveTimer) {
      poll();
    }
  });

  // --- Start ------------------------------------------------------------------------------------------------------

  function writeHash() {
    const hash = hashOf(map);
    if (hash !== window.location.hash) {
      history.replaceState(history.state, "", hash);
    }
  }

  showControls();
  applyVisibility();
  map.on("moveend", scheduleLoad);
  map.on("moveend", scheduleList);
  load();
  loadDistricts();
  scheduleLive();

  // From here on the URL follows the view. Not earlier: the start-up re-measuring is no move of the user's, and
  // a page opened without a fragment keeps its plain address until the view changes.
  map.on("moveend", writeHash);
  // A #map= link followed on this page (or typed into the address bar) moves the map there.
  window.addEventListener("hashchange", () => {
    const parsed = parseHash(window.location.hash);
    const districtBefore = state.district;
    applyHashState(parsed);
    outlineDistrict();
    // The address already says it all: writing it back before the map has moved would undo the new view.
    stateChanged({ reload: state.district !== districtBefore, writeHash: false });
    applyVisibility();
    if (parsed.view) {
      map.setView(parsed.view.center, parsed.view.zoom);
    }
  });

  window.aumanMap = {
    map,
    layers,
    overlays,
    tileLayers,
    state,
    featureCount(name) {
      if (drawn[name]) {
        return drawn[name].size;
      }
      if (name === "detours") {
        return detoursDrawn.size;
      }
      return apiDrawn[name] ? apiDrawn[name].size : 0;
    },
    reload: load,
    poll,
    listEntries: () => listEntries().map((entry) => ({ key: entry.key, layer: entry.layer, title: entry.title })),
  };
})();
