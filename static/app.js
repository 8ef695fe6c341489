// orderwatch dashboard: the little script every page loads.
// - htmx requests carry the session's CSRF token (X-CSRF-Token), like forms do.
// - On the lost-order list, new and changed lost orders arrive by server-sent
//   events (/lost-orders/events) and their rows are put in the table without a reload.
(function () {
  "use strict";
  var csrf = document.body.dataset.csrf || "";
  document.body.addEventListener("htmx:configRequest", function (e) {
    e.detail.headers["X-CSRF-Token"] = csrf;
  });

  var table = document.getElementById("lost-orders");
  if (table && window.EventSource && table.dataset.live === "1") {
    var body = table.querySelector("tbody");
    var status = document.getElementById("live-status");
    var source = new EventSource("/lost-orders/events" + window.location.search);
    source.addEventListener("open", function () { if (status) status.hidden = false; });
    source.addEventListener("error", function () { if (status) status.hidden = true; });
    source.addEventListener("lost-order", function (e) {
      var tmp = document.createElement("tbody");
      tmp.innerHTML = e.data; // server-rendered, escaped by the template
      var row = tmp.firstElementChild;
      if (!row) return;
      var old = document.getElementById(row.id);
      if (old) { old.replaceWith(row); } else { body.insertBefore(row, body.firstChild); }
      row.classList.add("fresh");
      var empty = document.getElementById("no-lost-orders");
      if (empty) empty.remove();
    });
  }
})();
