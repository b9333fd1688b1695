/* p8815-sim web console: reads and steers the control plane (/sim/v1/) with its token.
 * No library, no build step: plain DOM and SVG. Polls every 2 s while the tab is visible. */
(function () {
  "use strict";

  var API = "/sim/v1";
  var KEY = "p8815-sim-token";
  var POLL_MS = 2000;
  var PAGE = 50;
  var SVGNS = "http://www.w3.org/2000/svg";

  var state = {
    token: sessionStorage.getItem(KEY),
    offset: 0,
    q: "",
    total: 0,
    selected: null,
    lastSpeed: 1,
    frozen: false,
    busy: false,
    timer: null,
    rowIds: ""
  };

  function $(id) { return document.getElementById(id); }

  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }

  function svg(tag, attrs, text) {
    var e = document.createElementNS(SVGNS, tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (text !== undefined) e.textContent = String(text);
    return e;
  }

  function say(text) { $("status").textContent = text; }

  function fail(text) {
    var e = $("token-error");
    e.textContent = text;
    e.hidden = !text;
  }

  // ---- the control plane ------------------------------------------------------------------

  function ApiError(status, message) {
    this.status = status;
    this.message = message;
  }

  function api(method, path, body) {
    var headers = {};
    if (state.token) headers.Authorization = "Bearer " + state.token;
    var init = { method: method, headers: headers, cache: "no-store" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return fetch(API + path, init).then(function (r) {
      return r.text().then(function (text) {
        var data = null;
        try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
        if (r.ok) return data;
        var msg = data && data.error ? data.error.message : r.statusText;
        if (data && data.error && data.error.field) msg += " (field " + data.error.field + ")";
        throw new ApiError(r.status, msg);
      });
    });
  }

  function refused(err) {
    stop();
    fail("token refused: " + err.status + " " + err.message);
    say("Not connected: enter the control token.");
    $("token").focus();
  }

  function report(err) {
    if (err instanceof ApiError && err.status === 401) return refused(err);
    var text = err instanceof ApiError ? "error " + err.status + ": " + err.message : String(err);
    say(text);
  }

  /** Run an action, say what it did, refresh at once. */
  function act(label, method, path, body) {
    return api(method, path, body).then(function (out) {
      say(label + ": done.");
      return refresh().then(function () { return out; });
    }).catch(report);
  }

  // ---- formatting --------------------------------------------------------------------------

  function utc(iso) { return iso ? iso.replace("T", " ").replace(/\.\d+/, "").replace("Z", " UTC") : "none"; }
  function hhmm(m) { return String(Math.floor(m / 60)).padStart(2, "0") + ":" + String(m % 60).padStart(2, "0"); }
  function sum(a) { return a.reduce(function (s, v) { return s + v; }, 0); }
  function max(a) { return a.reduce(function (s, v) { return v > s ? v : s; }, 0); }
  function pushText(p) {
    if (!p) return "–";
    if (p.receiver_down) return "outage, " + p.pending + " pending";
    return p.pending ? p.pending + " pending" : "ok";
  }

  // ---- the clock --------------------------------------------------------------------------

  function showClock(c) {
    $("clock-now").textContent = utc(c.now);
    $("clock-speed").textContent = c.frozen ? "paused (0)" : "× " + c.speed;
    $("clock-next").textContent = utc(c.next_event);
    state.frozen = c.frozen;
    if (!c.frozen) state.lastSpeed = c.speed;
    var pause = $("pause");
    pause.textContent = c.frozen ? "Resume" : "Pause";
    pause.setAttribute("aria-pressed", String(c.frozen));
    var jump = $("jump");
    if (!jump.value && document.activeElement !== jump) jump.value = c.now.replace(/\.\d+/, "");
  }

  // ---- the fleet --------------------------------------------------------------------------

  function fleetQuery() {
    var p = "?offset=" + state.offset + "&limit=" + PAGE;
    return state.q ? p + "&q=" + encodeURIComponent(state.q) : p;
  }

  function cells(d) {
    return [d.model, d.url ? d.url.replace(/^https?:\/\//, "") : "not served", d.serial, d.occupancy, d.total_in, d.total_out,
      pushText(d.push), d.faults.length ? d.faults.join(", ") : "–"];
  }

  function showFleet(f) {
    state.total = f.total;
    var body = $("fleet").tBodies[0];
    var ids = f.devices.map(function (d) { return d.id; }).join("\n");
    if (ids !== state.rowIds) {  // new rows: rebuild; same rows: update in place (keeps focus)
      state.rowIds = ids;
      body.textContent = "";
      f.devices.forEach(function (d) {
        var tr = el("tr");
        tr.dataset.id = d.id;
        var th = el("th");
        th.scope = "row";
        var b = el("button", d.id);
        b.type = "button";
        b.setAttribute("aria-label", "Show device " + d.id);
        b.addEventListener("click", function () { select(d.id); });
        th.appendChild(b);
        tr.appendChild(th);
        cells(d).forEach(function (v, i) { tr.appendChild(el("td", v, i >= 3 && i <= 5 ? "num" : "")); });
        body.appendChild(tr);
      });
    } else {
      f.devices.forEach(function (d, k) {
        var tds = body.rows[k].cells;
        cells(d).forEach(function (v, i) { tds[i + 1].textContent = String(v); });
      });
    }
    Array.prototype.forEach.call(body.rows, function (tr) {
      tr.setAttribute("aria-current", String(tr.dataset.id === state.selected));
    });
    var first = f.total ? f.offset + 1 : 0;
    var last = f.offset + f.devices.length;
    var text = first + "–" + last + " of " + f.total.toLocaleString("en") + " devices";
    $("page-info").textContent = text;
    $("fleet-caption").textContent = (state.q ? "Devices matching “" + state.q + "”: " : "Devices: ") + text;
    $("prev").disabled = f.offset <= 0;
    $("next").disabled = last >= f.total;
    $("fleet").dataset.rows = String(f.devices.length);
    if (state.selected === null && f.devices.length) select(f.devices[0].id, true);
  }

  // ---- one device ---------------------------------------------------------------------------

  function select(id, quiet) {
    state.selected = id;
    $("device-panel").hidden = false;
    $("device-h").textContent = "Device " + id;
    Array.prototype.forEach.call($("fleet").tBodies[0].rows, function (tr) {
      tr.setAttribute("aria-current", String(tr.dataset.id === id));
    });
    if (!quiet) {
      refreshDevice();
      $("device-h").setAttribute("tabindex", "-1");
      $("device-h").focus();
    }
  }

  function showFacts(d) {
    var dl = $("device-facts");
    dl.textContent = "";
    var facts = [
      ["Model", d.model], ["Serial", d.serial], ["Address", d.url || "not served"],
      ["Site", d.site || "–"], ["Occupancy now", d.occupancy],
      ["In / out today", d.total_in + " / " + d.total_out], ["Frame rate", d.fps + " fps"],
      ["Uptime", Math.round(d.uptime_s) + " s"], ["Door", d.door_closed ? "closed" : "open"],
      ["Push backlog", d.push ? d.push.pending + " pending, " + d.push.delivered + " delivered" +
        (d.push.receiver_down ? " (receiver down)" : "") : "no push configured"]
    ];
    facts.forEach(function (f) { dl.appendChild(el("dt", f[0])); dl.appendChild(el("dd", f[1])); });
    var link = $("device-page");
    link.hidden = !(d.url && d.model === "P8815-2");
    if (d.url) link.href = d.url + "/local/a3dpc/index.html";
  }

  function axes(g, W, L, R, top, bottom) {
    for (var h = 0; h <= 24; h += 3) {
      var x = L + (W - L - R) * h / 24;
      g.appendChild(svg("line", { x1: x, x2: x, y1: top, y2: bottom, "class": "grid" }));
      g.appendChild(svg("text", { x: x, y: bottom + 13, "text-anchor": "middle", "class": "axis" }, hhmm(h * 60)));
    }
  }

  function line(values, x, y) {
    return values.map(function (v, i) { return x(i).toFixed(1) + "," + y(v).toFixed(1); }).join(" ");
  }

  function drawMinutes(s) {
    var chart = $("chart");
    var W = 720, L = 44, R = 8, top = 10, occBottom = 140, flowTop = 170, flowBottom = 240;
    chart.textContent = "";
    var mOcc = Math.max(1, max(s.occupancy));
    var mFlow = Math.max(1, max(s.in), max(s.out));
    var t0 = s.start.length ? s.start[0] : 0;
    var x = function (i) { return L + (W - L - R) * ((s.start[i] - t0) / 60 + 1) / 1440; };
    var yOcc = function (v) { return occBottom - (occBottom - top) * v / mOcc; };
    var yFlow = function (v) { return flowBottom - (flowBottom - flowTop) * v / mFlow; };
    axes(chart, W, L, R, top, flowBottom);
    chart.appendChild(svg("text", { x: 4, y: top + 10, "class": "axis" }, mOcc));
    chart.appendChild(svg("text", { x: 4, y: occBottom, "class": "axis" }, "0"));
    chart.appendChild(svg("text", { x: 4, y: flowTop + 10, "class": "axis" }, mFlow + "/min"));
    chart.appendChild(svg("polyline", { points: line(s.in, x, yFlow), "class": "in" }));
    chart.appendChild(svg("polyline", { points: line(s.out, x, yFlow), "class": "out" }));
    chart.appendChild(svg("polyline", { points: line(s.occupancy, x, yOcc), "class": "occ", id: "occupancy-line" }));
    var tin = sum(s.in), tout = sum(s.out), now = s.occupancy.length ? s.occupancy[s.occupancy.length - 1] : 0;
    chart.dataset.points = String(s.start.length);
    chart.dataset.totalIn = String(tin);
    chart.dataset.totalOut = String(tout);
    chart.dataset.maxOccupancy = String(max(s.occupancy));
    chart.dataset.maxIn = String(max(s.in));
    chart.dataset.occupancy = String(now);
    chart.setAttribute("aria-label", "Today on " + s.device + " (" + s.timezone + "): occupancy now " + now +
      ", peak " + max(s.occupancy) + "; " + tin + " in and " + tout + " out so far");
  }

  function drawHours(s) {
    var chart = $("hours");
    var W = 720, L = 44, R = 8, top = 10, bottom = 170;
    chart.textContent = "";
    var m = Math.max(1, max(s.in), max(s.out));
    var t0 = s.start.length ? s.start[0] : 0;
    var slot = (W - L - R) / 24;
    axes(chart, W, L, R, top, bottom);
    chart.appendChild(svg("text", { x: 4, y: top + 10, "class": "axis" }, m));
    s.start.forEach(function (t, i) {
      var x = L + slot * Math.round((t - t0) / 3600);
      var label = hhmm(s.wall_minute[i]) + ": " + s["in"][i] + " in, " + s.out[i] + " out, peak occupancy " + s.occupancy[i];
      [["in", s["in"][i], 1], ["out", s.out[i], slot / 2]].forEach(function (b) {
        var h = (bottom - top) * b[1] / m;
        var r = svg("rect", { x: (x + b[2]).toFixed(1), y: (bottom - h).toFixed(1), width: (slot / 2 - 1).toFixed(1),
          height: h.toFixed(1), "class": b[0] });
        r.appendChild(svg("title", {}, label));
        chart.appendChild(r);
      });
    });
    chart.dataset.totalIn = String(sum(s["in"]));
    chart.dataset.bars = String(s.start.length);
    chart.setAttribute("aria-label", "Per hour today: " + s.start.map(function (t, i) {
      return hhmm(s.wall_minute[i]) + " " + s["in"][i] + " in " + s.out[i] + " out";
    }).join("; "));
  }

  function showJournal(j) {
    var body = $("journal").tBodies[0];
    body.textContent = "";
    j.entries.slice().reverse().forEach(function (e) {
      var tr = el("tr");
      tr.appendChild(el("td", utc(e.sim_time)));
      tr.appendChild(el("td", e.method + " " + e.path + (e.query ? "?" + e.query : "")));
      tr.appendChild(el("td", e.status, "num" + (e.status >= 400 || e.status === 0 ? " bad" : "")));
      tr.appendChild(el("td", e.auth + (e.user ? " (" + e.user + ")" : "")));
      tr.appendChild(el("td", e.duration_ms, "num"));
      body.appendChild(tr);
    });
    if (!j.entries.length) {
      var tr = el("tr"), td = el("td", "No request yet.");
      td.colSpan = 5;
      tr.appendChild(td);
      body.appendChild(tr);
    }
  }

  function showPush(p) {
    var body = $("push").tBodies[0];
    body.textContent = "";
    if (!p) {
      $("push-summary").textContent = "No push configured for this device.";
      return;
    }
    var store = p.store.error ? " Store error: " + p.store.error : "";
    $("push-summary").textContent = p.deliveries.length + " recent delivery attempts." + store;
    p.deliveries.slice(-10).reverse().forEach(function (d) {
      var tr = el("tr");
      tr.appendChild(el("td", utc(d.interval_end)));
      tr.appendChild(el("td", d.attempt, "num"));
      tr.appendChild(el("td", d.status === null ? "–" : d.status, "num"));
      tr.appendChild(el("td", d.error || ""));
      body.appendChild(tr);
    });
  }

  function showFaults(f) {
    var ul = $("faults");
    ul.textContent = "";
    f.faults.forEach(function (r) {
      var what = r.latency ? "latency " + r.latency.ms + " ms" : r.status ? "status " + r.status :
        r.reset ? "connection reset" : r.malformed ? "malformed body" : "other";
      var li = el("li", r.id + ": " + what + " on " + (r.device || "every device") + " " + r.path +
        " (fired " + r.fired + ")");
      var b = el("button", "Remove");
      b.type = "button";
      b.setAttribute("aria-label", "Switch fault " + r.id + " off");
      b.addEventListener("click", function () {
        act("fault " + r.id + " off", "DELETE", "/faults/" + encodeURIComponent(r.id));
      });
      li.appendChild(b);
      ul.appendChild(li);
    });
    if (!f.faults.length) ul.appendChild(el("li", "None."));
  }

  function refreshDevice() {
    var id = state.selected;
    if (id === null) return Promise.resolve();
    var dev = "/devices/" + encodeURIComponent(id);
    return api("GET", dev).then(function (d) {
      showFacts(d);
      return Promise.all([
        api("GET", dev + "/series?resolution=minute").then(drawMinutes),
        api("GET", dev + "/series?resolution=hour").then(drawHours),
        api("GET", "/journal/" + encodeURIComponent(id) + "?limit=15").then(showJournal),
        d.push ? api("GET", "/push/" + encodeURIComponent(id)).then(showPush) : showPush(null),
        api("GET", "/faults").then(showFaults)
      ]);
    });
  }

  // ---- polling ------------------------------------------------------------------------------

  function refresh() {
    return Promise.all([
      api("GET", "/clock").then(showClock),
      api("GET", "/fleet" + fleetQuery()).then(showFleet)
    ]).then(refreshDevice).then(function () {
      fail("");
      document.body.dataset.loaded = "true";
    });
  }

  function tick() {
    if (state.busy || document.hidden || state.token === null) return;
    state.busy = true;
    refresh().catch(report).then(function () { state.busy = false; });
  }

  function start() {
    stop();
    say("Connecting…");
    state.timer = setInterval(tick, POLL_MS);
    state.busy = true;
    return refresh().then(function () { say("Connected."); }).catch(report)
      .then(function () { state.busy = false; });
  }

  function stop() {
    if (state.timer !== null) clearInterval(state.timer);
    state.timer = null;
  }

  // ---- the controls ---------------------------------------------------------------------------

  function num(id) {
    var v = $(id).value.trim();
    return v === "" ? undefined : Number(v);
  }

  function eventBody() {
    var kind = $("event-kind").value;
    var body = { kind: kind };
    if (!$("ev-all").checked) body.device = state.selected;
    if (kind === "burst") { body.visitors = num("ev-visitors"); body.minutes = num("ev-minutes"); }
    if (kind === "door_closed" || kind === "fps" || kind === "push_outage") body.minutes = num("ev-minutes");
    if (kind === "fps") body.percent = num("ev-percent");
    if (kind === "adjust_occupancy") body.occupancy = num("ev-occupancy");
    return body;
  }

  function faultBody() {
    var effect = $("fault-effect").value;
    var body = { path: $("fault-path").value || "*", probability: num("fault-probability") };
    if (!$("fault-all").checked) body.device = state.selected;
    var times = num("fault-times");
    if (times !== undefined) body.times = times;
    if (effect === "latency") body.latency = { ms: num("fault-ms") };
    if (effect === "status") body.status = num("fault-status");
    if (effect === "reset") body.reset = true;
    if (effect === "malformed") body.malformed = true;
    return body;
  }

  function showFields(select, attr) {
    var v = select.value;
    document.querySelectorAll("[" + attr + "]").forEach(function (d) {
      var on = d.getAttribute(attr).split(" ").indexOf(v) >= 0;
      d.hidden = !on;
      d.querySelectorAll("input").forEach(function (i) { i.disabled = !on; });
    });
  }

  function on(id, type, fn) {
    $(id).addEventListener(type, function (ev) {
      if (type === "submit") ev.preventDefault();
      fn(ev);
    });
  }

  function wire() {
    $("token").value = state.token || "";
    on("token-form", "submit", function () {
      state.token = $("token").value;
      sessionStorage.setItem(KEY, state.token);
      fail("");
      start();
    });
    on("token-forget", "click", function () {
      stop();
      state.token = null;
      sessionStorage.removeItem(KEY);
      $("token").value = "";
      say("Token forgotten.");
    });
    on("pause", "click", function () {
      if (state.frozen) act("resumed", "POST", "/clock/speed", { speed: state.lastSpeed || 1 });
      else act("paused", "POST", "/clock/freeze");
    });
    on("speed-form", "submit", function () { act("speed set", "POST", "/clock/speed", { speed: num("speed") }); });
    on("jump-form", "submit", function () {
      var v = $("jump").value.trim();
      act("clock set", "POST", "/clock/set", { time: /^\d+(\.\d+)?$/.test(v) ? Number(v) : v });
    });
    on("advance-form", "submit", function () {
      act("clock advanced", "POST", "/clock/advance", { by: $("advance").value.trim() });
    });
    on("reset", "click", function () { act("simulator reset", "POST", "/reset", {}); });
    on("search-form", "submit", function () {
      state.q = $("search").value.trim();
      state.offset = 0;
      refresh().catch(report);
    });
    on("prev", "click", function () { state.offset = Math.max(0, state.offset - PAGE); refresh().catch(report); });
    on("next", "click", function () { state.offset += PAGE; refresh().catch(report); });
    on("event-kind", "change", function (ev) { showFields(ev.target, "data-kinds"); });
    on("fault-effect", "change", function (ev) { showFields(ev.target, "data-effects"); });
    on("event-form", "submit", function () {
      var b = eventBody();
      act(b.kind.replace("_", " ") + " injected", "POST", "/events", b);
    });
    on("fault-form", "submit", function () { act("fault switched on", "POST", "/faults", faultBody()); });
    on("faults-clear", "click", function () { act("every fault off", "DELETE", "/faults"); });
    showFields($("event-kind"), "data-kinds");
    showFields($("fault-effect"), "data-effects");
    document.addEventListener("visibilitychange", tick);
  }

  function exposure() {
    var root = document.documentElement;
    if (root.dataset.exposed !== "true") return;
    var n = $("exposed");
    n.textContent = "This simulator listens on " + root.dataset.bindHost +
      ", an address other machines can reach: anyone with the control token can steer it.";
    n.hidden = false;
  }

  wire();
  exposure();
  if (state.token !== null) start();
})();
