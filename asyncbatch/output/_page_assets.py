"""The stylesheet and script of the ``show --html`` page (:mod:`asyncbatch.output.page`),
inline in it so that it works offline: the look and the behaviour (sorting, filters,
"show more", ``#selftest``) apart from the page's content."""

STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;background:#fff}
h1{font-size:1.4em;margin:0}h2{font-size:1.1em;margin:1.4em 0 .4em}
.meta{color:#555;margin:.2em 0 1em}code{font-size:.95em}
.counts{list-style:none;padding:0;display:flex;gap:1.2em;flex-wrap:wrap}
.counts b{font-size:1.3em}
.s-succeeded{--c:#2e7d32}.s-failed{--c:#c62828}.s-skipped{--c:#f9a825}.s-cancelled{--c:#757575}
.counts li,.tag{border-left:4px solid var(--c,#999);padding-left:.4em}
details.group{margin:.3em 0}details ul{margin:.2em 0}
.axis{position:relative;height:1.2em;font-size:.8em;color:#555;margin-right:4em}
.axis span{position:absolute;white-space:nowrap}
.lanes{border:1px solid #ddd;margin-right:4em}
.lane{position:relative;height:12px;border-bottom:1px solid #f0f0f0}
.bar{position:absolute;top:1px;height:10px;min-width:2px;background:var(--c);opacity:.85}
.bar:hover{opacity:1;outline:1px solid #000}
.controls{display:flex;gap:1em;align-items:center;flex-wrap:wrap;margin:.5em 0}
#filter{min-width:20em;padding:.2em}#shown{color:#555}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:2px 6px;border-bottom:1px solid #eee;vertical-align:top}
td{overflow-wrap:anywhere}
th{cursor:pointer;user-select:none;background:#f6f6f6;position:sticky;top:0}
th[aria-sort=ascending]::after{content:" \\25B2"}th[aria-sort=descending]::after{content:" \\25BC"}
td.num{text-align:right}tr>td:first-child{border-left:4px solid var(--c)}
"""

SCRIPT = r"""
(function () {
  "use strict";
  var RANK = {failed: 0, cancelled: 1, skipped: 2, succeeded: 3};
  var PAGE = 500;
  var jobs = JSON.parse(document.getElementById("job-data").textContent);
  var body = document.querySelector("#job-table tbody");
  var heads = Array.prototype.slice.call(document.querySelectorAll("#job-table th"));
  var filter = document.getElementById("filter");
  var boxes = Array.prototype.slice.call(document.querySelectorAll("input.status"));
  var more = document.getElementById("more");
  var shown = document.getElementById("shown");
  var state = {col: null, dir: 1, limit: PAGE};

  function value(job, col) { return col === 3 ? RANK[job[3]] : job[col]; }
  function compare(a, b) {
    if (state.col === null) { return RANK[a[3]] - RANK[b[3]] || a[7] - b[7]; }
    var x = value(a, state.col), y = value(b, state.col);
    if (x === y) { return a[7] - b[7]; }
    if (x === null) { return 1; }
    if (y === null) { return -1; }
    return (x < y ? -1 : 1) * state.dir;
  }
  function haystack(job) {
    if (job.length < 10) { job.push([job[0], job[1], job[2], job[6]].join("\n").toLowerCase()); }
    return job[9];
  }
  function matching() {
    var text = filter.value.trim().toLowerCase(), wanted = {};
    boxes.forEach(function (box) { wanted[box.value] = box.checked; });
    return jobs.filter(function (job) {
      return wanted[job[3]] && (!text || haystack(job).indexOf(text) >= 0);
    });
  }
  function ms(value) {
    if (value === null) { return ""; }
    if (value < 1000) { return value.toFixed(1) + " ms"; }
    if (value < 60000) { return (value / 1000).toFixed(2) + " s"; }
    return (value / 60000).toFixed(1) + " min";
  }
  function row(job) {
    var tr = document.createElement("tr");
    tr.className = "s-" + job[3];
    var cells = [job[0], job[1], job[2], job[3] + (job[8] ? " (reused)" : ""),
                 ms(job[4]), String(job[5]), job[6]];
    cells.forEach(function (text, index) {
      var td = document.createElement("td");
      td.textContent = text;
      if (index === 5) { td.className = "num"; }
      tr.appendChild(td);
    });
    return tr;
  }
  function render() {
    var rows = matching().sort(compare), fragment = document.createDocumentFragment();
    rows.slice(0, state.limit).forEach(function (job) { fragment.appendChild(row(job)); });
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

  if (location.hash === "#selftest") {
    var names = function () {
      return Array.prototype.map.call(body.rows, function (tr) { return tr.cells[0].textContent; });
    };
    var result = {rows: names(), bars: document.querySelectorAll("#timeline .bar").length};
    heads[0].click(); result.byName = names();
    heads[0].click(); result.byNameDescending = names();
    heads[4].click(); result.byDuration = names();
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
