/* NaaP Analytics pages: client-side sorting, Plotly charts from embedded JSON, live deltas over /ws/live.
   Everything here is an enhancement: without JavaScript the tables are plain HTML and sort links reload. */
(function () {
  "use strict";

  // --- number formatting: mirrors leaderboard/templatetags/naap.py fmt() ---
  function formatValue(value, kind) {
    if (value === null || value === undefined || value === "") return "–";
    var v = Number(value);
    var grouped = function (x, digits) {
      return x.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
    };
    switch (kind) {
      case "score": case "fps": return v.toFixed(1);
      case "ratio": return v.toFixed(3);
      case "ms": case "int": return grouped(v, 0);
      case "pct": return (100 * v).toFixed(1);
      case "eth": return v.toFixed(4);
      case "min": return grouped(v, 1);
      default: return String(v);
    }
  }
  window.naapFormat = formatValue;

  // --- sorting ---
  function sortTable(table, col, dir) {
    var tbody = table.tBodies[0];
    var rows = Array.prototype.slice.call(tbody.rows).filter(function (r) { return r.dataset.address; });
    var th = table.querySelector('th[data-col="' + col + '"]');
    var numeric = th && th.dataset.type !== "text";
    var key = function (row) {
      var c = row.querySelector('[data-field="' + col + '"]');
      var raw = c ? c.dataset.sortValue : "";
      if (numeric) return raw === "" || raw === undefined ? null : Number(raw);
      return raw || "";
    };
    rows.sort(function (a, b) {
      // rows with "insufficient data" are not ranked: always after the ranked ones
      var ua = a.classList.contains("insufficient"), ub = b.classList.contains("insufficient");
      if (ua !== ub) return ua ? 1 : -1;
      var ka = key(a), kb = key(b);
      if (ka === null && kb === null) return 0;
      if (ka === null) return 1;  // missing values always last
      if (kb === null) return -1;
      var c = ka < kb ? -1 : ka > kb ? 1 : 0;
      return dir === "asc" ? c : -c;
    });
    rows.forEach(function (r) { tbody.appendChild(r); });
    table.dataset.sort = col;
    table.dataset.dir = dir;
    table.querySelectorAll("th[data-col]").forEach(function (h) {
      if (h.dataset.col === col) h.setAttribute("aria-sort", dir === "asc" ? "ascending" : "descending");
      else h.removeAttribute("aria-sort");
    });
  }

  function setupSorting(table) {
    table.querySelectorAll("th[data-col] a").forEach(function (link) {
      link.addEventListener("click", function (ev) {
        ev.preventDefault();
        var col = link.parentElement.dataset.col;
        var dir = table.dataset.sort === col && table.dataset.dir === "desc" ? "asc" : "desc";
        if (table.dataset.sort !== col && (col === "rank" || col === "name" || col === "p2ff_p95_ms" || col === "jitter" || col === "swap_rate")) dir = "asc";
        sortTable(table, col, dir);
        var url = new URL(window.location.href);
        url.searchParams.set("sort", col);
        url.searchParams.set("dir", dir);
        window.history.replaceState(null, "", url);
      });
    });
  }

  // --- filters: apply on change, keeping the choice in the URL ---
  function setupFilters(form) {
    form.querySelectorAll("select").forEach(function (sel) {
      sel.addEventListener("change", function () { form.submit(); });
    });
  }

  // --- charts ---
  var charts = {};
  function drawCharts() {
    if (!window.Plotly) return;
    document.querySelectorAll("[data-figure]").forEach(function (div) {
      var script = document.getElementById(div.dataset.figure);
      if (!script) return;
      var fig = JSON.parse(script.textContent);
      var dark = document.documentElement.dataset.theme === "dark";
      fig.layout = fig.layout || {};
      if (dark) {
        fig.layout.paper_bgcolor = "#15181d"; fig.layout.plot_bgcolor = "#15181d";
        fig.layout.font = Object.assign({}, fig.layout.font || {}, { color: "#e6e6e6" });
      }
      window.Plotly.newPlot(div, fig.data, fig.layout, { responsive: true, displaylogo: false }).then(function () {
        div.dataset.drawn = "1";
      });
      charts[div.dataset.figure] = div;
    });
  }

  // --- live updates ---
  function applyFields(scope, fields) {
    Object.keys(fields).forEach(function (name) {
      scope.querySelectorAll('[data-live="' + name + '"]').forEach(function (el) {
        var value = fields[name];
        el.textContent = formatValue(value, el.dataset.format);
        if (value === null) el.removeAttribute("data-value"); else el.dataset.value = value;
        el.classList.remove("flash"); void el.offsetWidth; el.classList.add("flash");
        var td = el.closest("[data-sort-value]");
        if (td && td.dataset.field === name) td.dataset.sortValue = value === null ? "" : value;
      });
    });
  }

  function findRow(table, key) {
    var found = null;
    table.querySelectorAll("tr[data-row]").forEach(function (tr) { if (tr.dataset.row === key) found = tr; });
    return found;
  }

  var UNITS = { fps: "fps", ms: "ms", pct: "%", eth: "ETH", min: "min" };

  function numberSpan(field, kind) {
    var span = document.createElement("span");
    span.className = "num"; span.dataset.live = field; span.dataset.format = kind;
    return span;
  }

  // A row that appeared after the first paint: built from the table's columns (the delta carries only its
  // key "address" or "address|workflow" and numbers; the name is the short address until the next reload).
  function newRow(table, key) {
    var parts = key.split("|"), address = parts[0], workflow = parts[1] || "";
    var tr = document.createElement("tr");
    tr.dataset.address = address; tr.dataset.row = key;
    table.querySelectorAll("thead th[data-col]").forEach(function (th) {
      var col = th.dataset.col, kind = th.dataset.type, cell;
      if (col === "name") {
        cell = document.createElement("th"); cell.scope = "row";
        var a = document.createElement("a");
        a.href = "/orchestrators/" + address; a.title = address;
        a.textContent = address.slice(0, 6) + "\u2026" + address.slice(-4);
        var target = table.querySelector('th[data-field="name"] a[target]');
        if (target) a.target = target.target;
        cell.appendChild(a); cell.dataset.sortValue = a.textContent.toLowerCase();
      } else {
        cell = document.createElement("td");
        if (col === "workflow") { cell.className = "text"; cell.textContent = workflow; cell.dataset.sortValue = workflow; }
        else if (col === "rank") { var r = document.createElement("span"); r.dataset.live = "rank"; cell.appendChild(r); }
        else {
          cell.appendChild(numberSpan(col, kind));
          if (UNITS[kind]) {
            var unit = document.createElement("span"); unit.className = "unit"; unit.textContent = " " + UNITS[kind];
            cell.appendChild(unit);
          }
          if (col === "score") {
            var label = document.createElement("span");
            label.className = "insufficient-label"; label.textContent = "insufficient data"; label.hidden = true;
            cell.appendChild(label);
            var subs = document.createElement("div"); subs.className = "subs";
            ["latency", "reliability", "performance"].forEach(function (name) {
              var sub = document.createElement("span"); sub.className = "sub";
              sub.textContent = name[0].toUpperCase() + "\u00a0"; sub.appendChild(numberSpan(name, "score"));
              subs.appendChild(sub); subs.appendChild(document.createTextNode(" "));
            });
            cell.appendChild(subs);
          }
        }
      }
      cell.dataset.field = col;
      if (cell.dataset.sortValue === undefined) cell.dataset.sortValue = "";
      tr.appendChild(cell);
    });
    var empty = table.querySelector("tr.empty");
    if (empty) empty.remove();
    table.tBodies[0].appendChild(tr);
    return tr;
  }

  function setSufficient(tr, sufficient) {
    tr.classList.toggle("insufficient", !sufficient);
    var score = tr.querySelector('td[data-field="score"] > [data-live="score"]');
    var label = tr.querySelector(".insufficient-label");
    if (!label && !sufficient && score) {
      label = document.createElement("span");
      label.className = "insufficient-label"; label.textContent = "insufficient data";
      score.parentNode.insertBefore(label, score);
    }
    if (label) label.hidden = !!sufficient;
    if (score) score.hidden = !sufficient;
    var rank = tr.querySelector('[data-live="rank"]');
    if (rank && !sufficient) rank.textContent = "–";
  }

  function applyLeaderboard(data) {
    var table = document.getElementById("leaderboard-table");
    if (!table) return;
    var rows = data.rows || {};
    Object.keys(rows).forEach(function (key) {
      var fields = rows[key];
      var tr = findRow(table, key) || newRow(table, key);
      applyFields(tr, fields);
      if ("rank" in fields) {
        var rank = tr.querySelector('[data-live="rank"]');
        if (rank) rank.textContent = fields.rank === null ? "–" : String(fields.rank);
        var cell = tr.querySelector('[data-field="rank"]');
        if (cell) cell.dataset.sortValue = fields.rank === null ? "" : fields.rank;
      }
      if ("score" in fields) {
        var sc = tr.querySelector('[data-field="score"]');
        if (sc) sc.dataset.sortValue = fields.score === null ? "" : fields.score;
      }
      if ("sufficient" in fields) setSufficient(tr, fields.sufficient);
    });
    (data.removed || []).forEach(function (key) {
      var tr = findRow(table, key);
      if (tr) tr.remove();
    });
    sortTable(table, table.dataset.sort || "rank", table.dataset.dir || "asc");
    table.dataset.updates = String(Number(table.dataset.updates || 0) + 1);
  }

  function applyPoints(rows) {
    // rows named "point:<figure id>:<trace index>" carry {t: ms, y: value}: extend or replace the last point.
    Object.keys(rows).forEach(function (row) {
      if (row.indexOf("point:") !== 0) return;
      var parts = row.split(":"), div = charts[parts[1]], trace = Number(parts[2]);
      if (!div || !div.data || !div.data[trace] || !window.Plotly) return;
      var p = rows[row], x = new Date(p.t).toISOString(), xs = div.data[trace].x || [];
      if (xs.length && new Date(xs[xs.length - 1]).getTime() === p.t) {
        div.data[trace].y[xs.length - 1] = p.y;
        window.Plotly.redraw(div);
      } else {
        window.Plotly.extendTraces(div, { x: [[x]], y: [[p.y]] }, [trace]);
      }
    });
  }

  function applyDelta(msg) {
    var data = msg.data || {};
    if (msg.stream.indexOf("leaderboard:") === 0) applyLeaderboard(data);
    else {
      var rows = data.rows || {};
      if (rows.summary) applyFields(document, rows.summary);
      applyPoints(rows);
    }
    document.body.dataset.liveSeq = String(msg.seq);
    document.body.dataset.liveUpdates = String(Number(document.body.dataset.liveUpdates || 0) + 1);
  }

  function connectLive(streams) {
    var status = document.getElementById("live-status");
    var attempt = 0, pingTimer = null;
    function setStatus(text) { if (status) { status.textContent = text; status.dataset.state = text; } }
    function open() {
      var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
      var ws = new WebSocket(scheme + window.location.host + "/ws/live");
      ws.onopen = function () {
        attempt = 0;
        ws.send(JSON.stringify({ subscribe: streams }));
        pingTimer = setInterval(function () { ws.send(JSON.stringify({ ping: Date.now() })); }, 60000);
      };
      ws.onmessage = function (ev) {
        var msg = JSON.parse(ev.data);
        if (msg.type === "subscribed") setStatus("live");
        else if (msg.type === "delta") applyDelta(msg);
      };
      ws.onclose = function () {
        clearInterval(pingTimer);
        setStatus("reconnecting");
        // exponential backoff with jitter, capped at 30 s
        var delay = Math.min(30000, 500 * Math.pow(2, attempt)) * (0.5 + Math.random() / 2);
        attempt += 1;
        setTimeout(open, delay);
      };
    }
    open();
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("table.data[data-sort]").forEach(setupSorting);
    document.querySelectorAll("form.filters").forEach(setupFilters);
    drawCharts();
    var streams = (document.body.dataset.liveStreams || "").split(" ").filter(Boolean);
    if (streams.length && "WebSocket" in window) connectLive(streams);
  });
})();
