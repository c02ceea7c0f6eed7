// flinkq console: live batch progress. Everything else works without
// JavaScript. Served from the binary; the page's CSP allows only this file.
"use strict";
(function () {
  var section = document.getElementById("batch");
  if (!section || !window.EventSource || !window.fetch) return;
  var batch = section.getAttribute("data-batch");
  var states = ["queued", "authorizing", "polling", "succeeded", "failed", "timed_out", "cancelled"];
  // the server's format (console/mod.rs `when`), so a live update reads
  // like the page it updates
  function utc(ms) {
    return new Date(ms).toISOString().slice(0, 19).replace("T", " ") + " UTC";
  }
  function refresh() {
    fetch("/api/v1/batches/" + encodeURIComponent(batch), { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (b) {
        if (!b) return;
        var c = b.counts;
        var done = c.succeeded + c.failed + c.timed_out + c.cancelled;
        states.forEach(function (s) {
          var cell = document.getElementById("count-" + s);
          if (cell) cell.textContent = String(c[s]);
        });
        var bar = document.getElementById("progress");
        bar.max = Math.max(c.total, 1);
        bar.value = done;
        document.getElementById("done").textContent = String(done);
        document.getElementById("total").textContent = String(c.total);
        if (b.completed_ms) {
          document.getElementById("completed").textContent =
            "Completed " + utc(b.completed_ms);
        }
      })
      .catch(function () {});
  }
  var source = new EventSource("/api/v1/events?batch=" + encodeURIComponent(batch));
  source.addEventListener("job_finished", refresh);
  source.addEventListener("batch_completed", function () { refresh(); source.close(); });
  refresh();
})();
