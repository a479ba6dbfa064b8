"""The stylesheet and script of the ``show --html`` page (:mod:`asyncbatch.output.page`),
inline in it so that it works offline: the look and the behaviour (sorting, filters,
"show more", rows that open on a click, times in the viewer's zone, ``#selftest``)
apart from the page's content.

The script builds every cell with ``textContent``: a job's name, result or output is
text, never markup."""

STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;background:#fff}
h1{font-size:1.4em;margin:0}h2{font-size:1.1em;margin:1.4em 0 .4em}
.meta{color:#555;margin:.2em 0 1em}code{font-size:.95em}
.counts{list-style:none;padding:0;display:flex;gap:1.2em;flex-wrap:wrap}
.counts b{font-size:1.3em}
.s-succeeded{--c:#2e7d32}.s-failed{--c:#c62828}.s-skipped{--c:#f9a825}.s-cancelled{--c:#757575}
.counts li,.tag{border-left:4px solid var(--c,#999);padding-left:.4em}
details.group{margin:.3em 0}details ul{margin:.2em 0}
.ranked{display:flex;gap:3em;flex-wrap:wrap}.ranked ol{margin:.2em 0;padding-left:1.6em}
.axis{position:relative;height:1.2em;font-size:.8em;color:#555;margin-right:4em}
.axis span{position:absolute;white-space:nowrap;border-left:1px solid #bbb;padding-left:2px}
.lanes{border:1px solid #ddd;margin-right:4em}
.lane{position:relative;height:16px;border-bottom:1px solid #f0f0f0}
.stretches .lane{height:12px}
.bar{position:absolute;top:1px;height:14px;min-width:2px;background:var(--c);opacity:.85;
overflow:hidden}
.bar span{display:block;font-size:10px;line-height:14px;padding:0 3px;color:#fff;
white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.bar:hover{opacity:1;outline:1px solid #000}
.cell{position:absolute;top:1px;height:10px;background:var(--c)}
.controls{display:flex;gap:1em;align-items:center;flex-wrap:wrap;margin:.5em 0}
#filter{min-width:20em;padding:.2em}#shown,.hint{color:#555}.hint{margin:.2em 0}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:2px 6px;border-bottom:1px solid #eee;vertical-align:top}
td{overflow-wrap:anywhere}td.error{color:#c62828}
th{cursor:pointer;user-select:none;background:#f6f6f6;position:sticky;top:0}
th[aria-sort=ascending]::after{content:" \\25B2"}th[aria-sort=descending]::after{content:" \\25BC"}
td.num{text-align:right;white-space:nowrap}tr>td:first-child{border-left:4px solid var(--c)}
tr.expandable{cursor:pointer}tr.expandable>td:first-child::before{content:"\\25B8 ";color:#888}
tr.expandable[aria-expanded=true]>td:first-child::before{content:"\\25BE "}
tr.detail>td{background:#fafafa;border-left:4px solid #ddd}
tr.detail h4{margin:.4em 0 .1em;font-size:.9em;color:#555}
tr.detail pre{margin:0;white-space:pre-wrap;overflow-wrap:anywhere;max-height:24em;
overflow:auto;background:#fff;border:1px solid #eee;padding:.3em}
"""

SCRIPT = r"""
(function () {
  "use strict";
  var RANK = {failed: 0, cancelled: 1, skipped: 2, succeeded: 3};
  var NUMERIC = {ms: true, int: true, cpu: true, kb: true, bytes: true};
  var DETAILS = [["result", "result"], ["error", "error"],
                 ["stdout", "stdout (the end)"], ["stderr", "stderr (the end)"]];
  var PAGE = 500;
  var data = JSON.parse(document.getElementById("job-data").textContent);
  var jobs = data.jobs, columns = data.columns;
  var body = document.querySelector("#job-table tbody");
  var heads = Array.prototype.slice.call(document.querySelectorAll("#job-table th"));
  var filter = document.getElementById("filter");
  var boxes = Array.prototype.slice.call(document.querySelectorAll("input.status"));
  var more = document.getElementById("more");
  var shown = document.getElementById("shown");
  var state = {col: null, dir: 1, limit: PAGE, open: {}};

  function value(job, col) {
    var column = columns[col];
    return column[2] === "status" ? RANK[job[3]] : job[column[1]];
  }
  function compare(a, b) {
    if (state.col === null) { return RANK[a[3]] - RANK[b[3]] || a[7] - b[7]; }
    var x = value(a, state.col), y = value(b, state.col);
    if (x === y) { return a[7] - b[7]; }
    if (x === null || x === "") { return 1; }
    if (y === null || y === "") { return -1; }
    return (x < y ? -1 : 1) * state.dir;
  }
  function haystack(job) {
    if (job.length < 16) { job.push([job[0], job[1], job[2], job[9]].join("\n").toLowerCase()); }
    return job[15];
  }
  function matching() {
    var text = filter.value.trim().toLowerCase(), wanted = {};
    boxes.forEach(function (box) { wanted[box.value] = box.checked; });
    return jobs.filter(function (job) {
      return wanted[job[3]] && (!text || haystack(job).indexOf(text) >= 0);
    });
  }
  function ms(v) {
    if (v === null) { return ""; }
    if (v < 1000) { return v.toFixed(1) + " ms"; }
    if (v < 60000) { return (v / 1000).toFixed(2) + " s"; }
    return (v / 60000).toFixed(1) + " min";
  }
  function cpu(v) {
    if (v === null) { return ""; }
    if (v < 1) { return v.toFixed(3) + " s"; }
    if (v < 60) { return v.toFixed(2) + " s"; }
    return (v / 60).toFixed(1) + " min";
  }
  function bytes(v) {
    if (v === null) { return ""; }
    var units = ["B", "KiB", "MiB", "GiB", "TiB"], step = 0;
    while (v >= 1024 && step < units.length - 1) { v /= 1024; step += 1; }
    return step === 0 ? v.toLocaleString() + " B" : v.toFixed(1) + " " + units[step];
  }
  function text(job, column) {
    var v = job[column[1]];
    switch (column[2]) {
      case "status": return job[3] + (job[8] ? " (reused)" : "");
      case "ms": return ms(v);
      case "cpu": return cpu(v);
      case "kb": return v === null ? "" : bytes(v * 1024);
      case "bytes": return bytes(v);
      default: return v === null ? "" : String(v);
    }
  }
  function toggle(job) {
    state.open[job[7]] = !state.open[job[7]];
    render();
  }
  function row(job) {
    var tr = document.createElement("tr");
    tr.className = "s-" + job[3];
    columns.forEach(function (column) {
      var td = document.createElement("td");
      td.textContent = text(job, column);
      if (NUMERIC[column[2]]) { td.className = "num"; }
      if (column[2] === "outcome" && job[6]) { td.className = "error"; }
      tr.appendChild(td);
    });
    if (job[14]) {
      tr.className += " expandable";
      tr.tabIndex = 0;
      tr.setAttribute("aria-expanded", state.open[job[7]] ? "true" : "false");
      tr.addEventListener("click", function () { toggle(job); });
      tr.addEventListener("keydown", function (event) {
        if (event.key === "Enter" || event.key === " ") { event.preventDefault(); toggle(job); }
      });
    }
    return tr;
  }
  function detail(job) {
    var tr = document.createElement("tr"), td = document.createElement("td");
    tr.className = "detail";
    td.colSpan = columns.length;
    DETAILS.forEach(function (part) {
      var found = job[14][part[0]];
      if (!found) { return; }
      var title = document.createElement("h4"), pre = document.createElement("pre");
      title.textContent = part[1];
      pre.textContent = found;
      td.appendChild(title);
      td.appendChild(pre);
    });
    tr.appendChild(td);
    return tr;
  }
  function render() {
    var rows = matching().sort(compare), fragment = document.createDocumentFragment();
    rows.slice(0, state.limit).forEach(function (job) {
      fragment.appendChild(row(job));
      if (job[14] && state.open[job[7]]) { fragment.appendChild(detail(job)); }
    });
    body.textContent = "";
    body.appendChild(fragment);
    shown.textContent = "showing " + Math.min(rows.length, state.limit).toLocaleString() +
      " of " + rows.length.toLocaleString() + " matching jobs (" +
      jobs.length.toLocaleString() + " in all)";
    more.hidden = rows.length <= state.limit;
    heads.forEach(function (th, index) {
      var sorted = state.col === index;
      th.setAttribute("aria-sort", sorted ? (state.dir > 0 ? "ascending" : "descending") : "none");
    });
  }
  heads.forEach(function (th, index) {
    th.addEventListener("click", function () {
      state.dir = state.col === index ? -state.dir : 1;
      state.col = index;
      state.limit = PAGE;
      render();
    });
  });
  filter.addEventListener("input", function () { state.limit = PAGE; render(); });
  boxes.forEach(function (box) { box.addEventListener("change", render); });
  more.addEventListener("click", function () { state.limit += PAGE; render(); });
  render();
  // Times in the viewer's own zone (the page says UTC without a script).
  Array.prototype.forEach.call(document.querySelectorAll("time[datetime]"), function (time) {
    var when = new Date(time.getAttribute("datetime").replace(/(\.\d{3})\d*Z$/, "$1Z"));
    if (!isNaN(when.getTime())) {
      time.title = time.textContent;
      time.textContent = when.toLocaleString(undefined, {dateStyle: "medium", timeStyle: "medium"});
    }
  });

  if (location.hash === "#selftest") {
    var names = function () {
      return Array.prototype.filter.call(body.rows, function (tr) {
        return tr.className !== "detail";
      }).map(function (tr) { return tr.cells[0].textContent; });
    };
    var result = {
      rows: names(),
      bars: document.querySelectorAll("#timeline .bar").length,
      cells: document.querySelectorAll("#timeline .cell").length,
      labels: Array.prototype.map.call(document.querySelectorAll("#timeline .bar span"),
        function (span) { return span.offsetWidth > 0 && span.scrollWidth <= span.clientWidth; }),
      heads: heads.map(function (th) { return th.textContent; }),
      started: (document.querySelector("time[datetime]") || {textContent: ""}).textContent
    };
    var expandable = body.querySelector("tr.expandable");
    if (expandable) {
      expandable.click();  // the table is drawn again, the row's details under it
      var opened = body.querySelector("tr.expandable[aria-expanded=true] + tr.detail");
      result.opened = opened ? opened.textContent : null;
      body.querySelector("tr.expandable").click();
      result.closed = body.querySelectorAll("tr.detail").length;
    }
    heads[0].click(); result.byName = names();
    heads[0].click(); result.byNameDescending = names();
    var duration = columns.map(function (c) { return c[2]; }).indexOf("ms");
    heads[duration].click(); result.byDuration = names();
    filter.value = jobs.length ? jobs[0][0] : "";
    filter.dispatchEvent(new Event("input"));
    result.filtered = names();
    filter.value = "";
    filter.dispatchEvent(new Event("input"));
    boxes.forEach(function (box) {
      box.checked = box.value === "failed";
      box.dispatchEvent(new Event("change"));
    });
    result.onlyFailed = names();
    var out = document.createElement("pre");
    out.id = "selftest";
    out.textContent = JSON.stringify(result);
    document.body.appendChild(out);
  }
})();
"""
