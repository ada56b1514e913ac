// Create Image: create the image, then send the file with a progress bar (cancellable).
// Without this script the form still works: the file goes in the form post.
"use strict";
(function () {
  var form = document.getElementById("create-form");
  if (!form) { return; }
  var panel = document.getElementById("upload");
  var bar = document.getElementById("upload-progress");
  var text = document.getElementById("upload-text");
  var cancel = document.getElementById("upload-cancel");
  var submit = document.getElementById("create-submit");
  var csrf = form.elements.csrf_token.value;

  function show(message) { text.textContent = message; }
  function fail(message) {
    show(message);
    text.setAttribute("role", "alert");
    submit.disabled = false;
    cancel.hidden = true;
  }
  function errorOf(xhrOrText) {
    try { return JSON.parse(xhrOrText).error || "The upload failed."; } catch (e) { return "The upload failed."; }
  }
  // Resolves once the image is deleted; rejects with the server's reason otherwise (a fetch resolves on any answer).
  function discard(image) {
    var body = new FormData();
    body.append("csrf_token", csrf);
    return fetch(image.detail + "/delete", { method: "POST", body: body, credentials: "same-origin",
                                             headers: { "Accept": "application/json" } })
      .then(function (response) {
        if (response.ok) { return; }
        return response.text().then(function (text) {
          var reason;
          try { reason = JSON.parse(text).error; } catch (e) { reason = null; }
          throw new Error(reason || "The server answered " + response.status + ".");
        });
      });
  }

  form.addEventListener("submit", function (event) {
    var file = form.elements.file.files[0];
    if (!file) { return; }  // no data: the plain form post creates a queued image
    event.preventDefault();
    var fields = new FormData(form);
    fields.delete("file");
    submit.disabled = true;
    panel.hidden = false;
    cancel.hidden = false;
    text.setAttribute("role", "status");
    show("Creating the image…");
    fetch(form.action, { method: "POST", body: fields, credentials: "same-origin",
                         headers: { "Accept": "application/json" } })
      .then(function (response) {
        return response.text().then(function (body) {
          if (!response.ok) { throw new Error(errorOf(body)); }
          return JSON.parse(body);
        });
      })
      .then(function (image) { send(image, file); })
      .catch(function (error) { fail(error.message); });
  });

  function send(image, file) {
    var xhr = new XMLHttpRequest();
    xhr.open("PUT", image.upload);
    xhr.setRequestHeader("Content-Type", "application/octet-stream");
    xhr.setRequestHeader("X-CSRF-Token", csrf);
    xhr.upload.onprogress = function (event) {
      if (event.lengthComputable) {
        var percent = Math.floor((event.loaded / event.total) * 100);
        bar.value = percent;
        show("Uploaded " + percent + "% (" + event.loaded + " of " + event.total + " bytes)");
      }
    };
    xhr.onload = function () {
      if (xhr.status >= 200 && xhr.status < 300) {
        bar.value = 100;
        show("Upload complete. Opening the image…");
        window.location.assign(image.detail);
      } else {
        fail(errorOf(xhr.responseText) + " The image was created but has no data: open it to retry or delete it.");
      }
    };
    xhr.onerror = function () { fail("The connection broke during the upload."); };
    xhr.onabort = function () {
      show("Upload cancelled. Removing the unfinished image…");
      discard(image).then(function () { fail("Upload cancelled; the unfinished image was removed."); },
                          function (error) {
                            fail("Upload cancelled; the unfinished image is left queued (" + error.message + ").");
                          });
    };
    cancel.onclick = function () { xhr.abort(); };
    show("Uploading…");
    xhr.send(file);
  }
}());
