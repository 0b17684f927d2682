/* lsdb ui: draw the plotly figures named by .lsdb-figure[data-src]; keep the Jobs page live. */
(function () {
  "use strict";

  function token() {
    var meta = document.querySelector('meta[name="lsdb-token"]');
    return meta ? meta.getAttribute("content") : null;
  }

  function drawFigure(div) {
    return fetch(div.getAttribute("data-src"), { headers: { Accept: "application/json" } })
      .then(function (r) {
        return r.json().then(function (body) {
          if (!r.ok) { throw new Error(body.error || r.statusText); }
          return body;
        });
      })
      .then(function (fig) {
        return Plotly.newPlot(div, fig.data, fig.layout || {}, { responsive: true, displaylogo: false });
      })
      .then(function () { div.setAttribute("data-rendered", "1"); })
      .catch(function (err) {
        div.textContent = "could not draw this figure: " + err.message;
        div.setAttribute("data-rendered", "error");
      });
  }

  function drawAll() {
    var divs = Array.prototype.slice.call(document.querySelectorAll(".lsdb-figure[data-src]"));
    if (!divs.length) { return; }
    if (typeof Plotly === "undefined") {
      divs.forEach(function (d) { d.textContent = "plotly.js did not load"; });
      return;
    }
    /* one after the other, in page order: the first view is interactive before the next is drawn */
    divs.reduce(function (done, div, i) {
      return done.then(function () { return drawFigure(div); }).then(function () {
        if (i === 0 && window.performance && performance.mark) { performance.mark("lsdb-first-figure"); }
      });
    }, Promise.resolve()).then(function () {
      document.body.setAttribute("data-figures", "rendered");
      if (window.performance && performance.mark) { performance.mark("lsdb-figures-rendered"); }
    });
  }

  function refreshJobs() {
    var live = document.getElementById("jobs-live");
    if (!live) { return; }
    fetch("/jobs/live", { headers: { Accept: "text/html" } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (html === null) { return; }
        var tmp = document.createElement("div");
        tmp.innerHTML = html; /* rendered and escaped by the server */
        var fresh = tmp.querySelector("#jobs-live");
        if (fresh) { live.innerHTML = fresh.innerHTML; }
      })
      .catch(function () { /* the server may be restarting: try again on the next tick */ });
  }

  function onClick(event) {
    var button = event.target.closest ? event.target.closest(".job-action") : null;
    if (!button) { return; }
    var t = token();
    var headers = {};
    if (t) { headers["X-LSDB-Token"] = t; }
    button.disabled = true;
    fetch("/jobs/" + encodeURIComponent(button.getAttribute("data-job")) + "/" +
          encodeURIComponent(button.getAttribute("data-action")), { method: "POST", headers: headers })
      .then(function (r) { return r.json(); })
      .then(function (body) { if (body.error) { alert(body.error); } refreshJobs(); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    drawAll();
    if (document.getElementById("jobs-live")) {
      setInterval(refreshJobs, 1000);
      document.addEventListener("click", onClick);
    }
  });
})();
