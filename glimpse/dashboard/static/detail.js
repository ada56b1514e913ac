// Image detail page. Tabs: every panel is in the page, so a tab shows without a reload; the ?tab= link still works
// without this script. Arrow keys, Home and End move between tabs (the WAI-ARIA tabs pattern, selection follows
// focus). Upload: a queued image's data is PUT to the dashboard's upload route with the session's CSRF token, with
// a progress bar; the page reloads once the image has its data.
"use strict";
(function () {
  var say = window.glimpseText || function (english) { return english; };  // static/texts.js
  var list = document.getElementById("detail-tabs");
  if (list) {
    var tabs = Array.prototype.slice.call(list.querySelectorAll("[role=tab]"));
    var select = function (tab, focus) {
      tabs.forEach(function (other) {
        var chosen = other === tab;
        other.setAttribute("aria-selected", chosen ? "true" : "false");
        other.tabIndex = chosen ? 0 : -1;
        document.getElementById(other.getAttribute("aria-controls")).hidden = !chosen;
      });
      if (focus) { tab.focus(); }
      history.replaceState(null, "", tab.getAttribute("href"));
    };
    tabs.forEach(function (tab, index) {
      tab.tabIndex = tab.getAttribute("aria-selected") === "true" ? 0 : -1;
      tab.addEventListener("click", function (event) { event.preventDefault(); select(tab, false); });
      tab.addEventListener("keydown", function (event) {
        var moves = { ArrowRight: index + 1, ArrowLeft: index - 1, Home: 0, End: tabs.length - 1 };
        if (!(event.key in moves)) { return; }
        event.preventDefault();
        select(tabs[(moves[event.key] + tabs.length) % tabs.length], true);
      });
    });
  }

  var form = document.getElementById("data-upload");
  if (!form) { return; }
  var status = document.getElementById("data-upload-status");
  var bar = document.getElementById("data-upload-progress");
  var text = document.getElementById("data-upload-text");
  var submit = document.getElementById("data-upload-submit");
  function fail(message) {
    text.textContent = message;
    text.setAttribute("role", "alert");
    submit.disabled = false;
  }
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var file = document.getElementById("data-file").files[0];
    if (!file) { return; }
    var xhr = new XMLHttpRequest();
    xhr.open("PUT", form.getAttribute("data-upload"));
    xhr.setRequestHeader("X-CSRF-Token", form.getAttribute("data-csrf"));
    xhr.setRequestHeader("Content-Type", "application/octet-stream");
    xhr.upload.addEventListener("progress", function (e) {
      if (!e.lengthComputable) { return; }
      var percent = Math.floor(100 * e.loaded / e.total);
      bar.value = percent;
      text.textContent = say("Uploaded {percent}%", { percent: percent });
    });
    xhr.addEventListener("load", function () {
      var body = {};
      try { body = JSON.parse(xhr.responseText); } catch (e) { body = {}; }
      if (xhr.status >= 200 && xhr.status < 300) {
        text.textContent = say("Upload complete.");
        window.location.reload();
      } else {
        fail(say("The upload failed: {reason}", { reason: body.error || say("The server answered {status}.", { status: xhr.status }) }));
      }
    });
    xhr.addEventListener("error", function () { fail(say("The connection broke during the upload.")); });
    text.removeAttribute("role");
    text.textContent = say("Uploaded {percent}%", { percent: 0 });
    status.hidden = false;
    submit.disabled = true;
    xhr.send(file);
  });
}());
