// Live segment count on the community forms: asks /community/segment when a field changes.
// Progressive enhancement only; without it the Preview button shows the same count.
(function () {
  "use strict";
  var form = document.querySelector("form[data-segment]");
  var out = document.getElementById("segment-count");
  if (!form || !out || !window.fetch || !window.URLSearchParams) return;
  var fields = ["conditions", "centers", "roles", "languages", "age_min", "age_max", "consent", "participated"];
  function show(data) {
    if (data.count === null) { out.textContent = out.dataset.invalid; return; }
    out.textContent = out.dataset.label + " " + data.count +
      (data.sample.length ? " (" + data.sample.join(", ") + ")" : "");
  }
  function update() {
    var params = new URLSearchParams();
    new FormData(form).forEach(function (value, name) {
      if (fields.indexOf(name) >= 0 && value !== "") params.append(name, value);
    });
    fetch("/community/segment?" + params.toString(), { credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) { if (data) show(data); });
  }
  form.addEventListener("change", update);
  update();
})();
