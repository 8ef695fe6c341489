// orderwatch log viewer: the live tail on /search. When "Live tail" is on,
// lines stored after the page's newest that match the query arrive by
// server-sent events (/search/live) and are put at the top of the table,
// without a reload. Turning it off, or leaving the page, closes the stream.
(function () {
  "use strict";
  var toggle = document.getElementById("live");
  var table = document.getElementById("log-lines");
  if (!toggle || !table || !window.EventSource) return;
  var body = table.querySelector("tbody");
  var status = document.getElementById("live-status");
  var lost = document.getElementById("live-error");
  var gap = document.getElementById("gap-note");
  var source = null;
  var after = toggle.dataset.after || "";
  var MAX_ROWS = 2000; // the page stays light however long it tails

  function cell(text, cls) {
    var td = document.createElement("td");
    if (cls) td.className = cls;
    td.textContent = text;
    return td;
  }

  function row(line) {
    var tr = document.createElement("tr");
    tr.id = "e" + line.id;
    var t = document.createElement("td");
    t.className = "t";
    var a = document.createElement("a");
    a.href = "/search?around=" + encodeURIComponent(line.id);
    a.textContent = line.time;
    t.appendChild(a);
    tr.appendChild(t);
    tr.appendChild(cell(line.sender));
    tr.appendChild(cell(line.program));
    tr.appendChild(cell(line.message, "msg"));
    tr.className = "fresh";
    return tr;
  }

  function start() {
    var url = "/search/live?q=" + encodeURIComponent(toggle.dataset.q || "") + "&after=" + encodeURIComponent(after);
    source = new EventSource(url);
    source.addEventListener("open", function () {
      status.hidden = false;
      lost.hidden = true;
    });
    source.addEventListener("error", function () {
      status.hidden = true;
      // EventSource reconnects by itself (with Last-Event-ID); say so while it is down.
      if (source && source.readyState !== EventSource.OPEN) lost.hidden = false;
    });
    source.addEventListener("line", function (e) {
      var line = JSON.parse(e.data);
      if (document.getElementById("e" + line.id)) return;
      after = line.id;
      body.insertBefore(row(line), body.firstChild);
      var empty = document.getElementById("no-lines");
      if (empty) empty.remove();
      while (body.rows.length > MAX_ROWS) body.deleteRow(body.rows.length - 1);
    });
    source.addEventListener("gap", function (e) {
      after = e.data;
      if (gap) gap.hidden = false;
    });
  }

  function stop() {
    if (source) source.close();
    source = null;
    status.hidden = true;
    lost.hidden = true;
  }

  toggle.addEventListener("change", function () {
    if (toggle.checked) start(); else stop();
  });
  window.addEventListener("pagehide", stop);
  if (toggle.checked) start();
})();
