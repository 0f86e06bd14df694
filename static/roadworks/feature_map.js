/* AUMAn: a small read-only map of a roadwork (works area, detours) or a conflict (both sides and their overlap).
 *
 * Plain script, no build step. Reads the json_script element "auman-feature-map-config": the map settings and a
 * GeoJSON FeatureCollection (WGS84) whose features carry properties.role (works, detour, otherWorks, layerItem,
 * place) and properties.name. The server-rendered legend beside the map explains the roles.
 *
 * Security: names go into tooltips as text nodes, never as HTML.
 *
 * For tests: each drawn path gets the classes "rw-feature rw-role-<role>"; document.body.dataset.mapFeatures is
 * the number of features drawn.
 */
(function () {
  "use strict";

  const configElement = document.getElementById("auman-feature-map-config");
  const mapElement = document.getElementById("rw-feature-map");
  if (!configElement || !mapElement || typeof L === "undefined") {
    return;
  }
  const config = JSON.parse(configElement.textContent);
  const features = (config.features && config.features.features) || [];

  // The same colours as the form and the legend (roadworks.css); dashes tell detours and other works apart
  // without colour.
  const STYLES = {
    works: { color: "#b91c1c", weight: 5, fillColor: "#b91c1c", fillOpacity: 0.2 },
    detour: { color: "#1d4ed8", weight: 5, dashArray: "10 8", fill: false },
    pedestrian: { color: "#15803d", weight: 5, dashArray: "2 8", fill: false },
    otherWorks: { color: "#7c2d12", weight: 5, dashArray: "4 6", fillColor: "#c2410c", fillOpacity: 0.15 },
    layerItem: { color: "#6d28d9", weight: 4, dashArray: "1 6", fillColor: "#6d28d9", fillOpacity: 0.12 },
    place: { color: "#111827", weight: 2, fillColor: "#facc15", fillOpacity: 0.55 },
  };
  const ROLES = Object.keys(STYLES);

  function roleOf(feature) {
    const role = feature && feature.properties && feature.properties.role;
    return ROLES.includes(role) ? role : "works";
  }

  const map = L.map(mapElement, { keyboard: true, center: config.center, zoom: config.zoom });
  if (config.tileUrl) {
    L.tileLayer(config.tileUrl, { attribution: config.tileAttribution, maxZoom: 19 }).addTo(map);
  }
  L.control.scale({ imperial: false, position: "bottomright" }).addTo(map);

  // Drawn in this order, so the overlap lies on top of the works it belongs to.
  const order = ["layerItem", "otherWorks", "works", "detour", "pedestrian", "place"];
  const sorted = features.slice().sort((a, b) => order.indexOf(roleOf(a)) - order.indexOf(roleOf(b)));
  const group = L.featureGroup().addTo(map);
  for (const feature of sorted) {
    if (!feature || !feature.geometry) {
      continue;
    }
    const role = roleOf(feature);
    const style = { ...STYLES[role], className: `rw-feature rw-role-${role}` };
    const layer = L.geoJSON(feature, {
      style: () => style,
      // A point (an incident, the centre of a black spot) as a small circle in the role's colour.
      pointToLayer: (point, latlng) => L.circleMarker(latlng, { ...style, radius: 8, fillOpacity: 0.7 }),
    });
    const name = feature.properties && feature.properties.name;
    if (name) {
      layer.eachLayer((child) => {
        const tooltip = document.createElement("span");
        tooltip.textContent = String(name);
        child.bindTooltip(tooltip, { sticky: true });
      });
    }
    group.addLayer(layer);
  }
  if (group.getLayers().length) {
    // No animation on load: the view is simply there (and a screenshot right after shows it).
    map.fitBounds(group.getBounds(), { padding: [30, 30], maxZoom: 18, animate: false });
  }
  document.body.dataset.mapFeatures = String(group.getLayers().length);
  window.aumanFeatureMap = { map, group };
})();
