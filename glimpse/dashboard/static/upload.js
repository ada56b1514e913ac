// Create Image: create the image, then send the file over tus (resumable uploads, tus-js-client) with a progress
// bar and a cancel button. The browser remembers each unfinished upload under a fingerprint of the file and the
// user (not of the image, which does not exist yet when the file is chosen), with its image in the metadata: after
// a reload, choosing the same file again goes on into the same image from the server's offset. A dropped
// connection is retried from the server's offset by itself. Without this script the form still works: the file
// goes in the form post.
"use strict";
(function () {
  var form = document.getElementById("create-form");
  if (!form || !window.tus || !window.tus.isSupported) { return; }
  var panel = document.getElementById("upload");
  var bar = document.getElementById("upload-progress");
  var text = document.getElementById("upload-text");
  var cancel = document.getElementById("upload-cancel");
  var submit = document.getElementById("create-submit");
  var pending = document.getElementById("upload-pending");
  var csrf = form.elements.csrf_token.value;
  var owner = form.getAttribute("data-owner") || "";
  var chunkSize = parseInt(form.getAttribute("data-chunk-size"), 10) || 8 * 1024 * 1024;
  var storage = window.tus.defaultOptions.urlStorage;

  function show(message) { text.textContent = message; }
  function fail(message) {
    show(message);
    text.setAttribute("role", "alert");
    submit.disabled = false;
    cancel.hidden = true;
  }
  function errorOf(body) {
    try { return JSON.parse(body).error || "The upload failed."; } catch (e) { return "The upload failed."; }
  }
  function reasonOf(error) {
    var response = error && error.originalResponse;
    if (response && response.getBody()) { return errorOf(response.getBody()); }
    return "The connection broke during the upload.";
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
  function fingerprint(file) {
    return Promise.resolve(["glimpse", owner, file.name, file.type, file.size, file.lastModified].join("/"));
  }
  // The newest unfinished upload of this file by this user that names its image, or null.
  function earlierUpload(file) {
    return fingerprint(file).then(function (key) { return storage.findUploadsByFingerprint(key); })
      .then(function (uploads) {
        var known = uploads.filter(function (u) { return u.metadata && u.metadata.image_id && u.uploadUrl; });
        known.sort(function (a, b) { return (b.creationTime || "").localeCompare(a.creationTime || ""); });
        return known.length ? known[0] : null;
      });
  }

  // After a reload the file must be chosen again (a page cannot keep it): say which uploads can go on.
  if (pending) {
    storage.findAllUploads().then(function (uploads) {
      var mine = uploads.filter(function (u) {
        return u.metadata && u.metadata.image_id && u.metadata.owner === owner;
      });
      if (!mine.length) { return; }
      pending.textContent = "Unfinished upload" + (mine.length > 1 ? "s" : "") + ": " + mine.map(function (u) {
        return u.metadata.filename + " into image " + u.metadata.image_id;
      }).join(", ") + ". Choose the same file and create the image to go on where it stopped.";
      pending.hidden = false;
    });
  }

  form.addEventListener("submit", function (event) {
    var file = form.elements.file.files[0];
    if (!file) { return; }  // no data: the plain form post creates a queued image
    event.preventDefault();
    submit.disabled = true;
    panel.hidden = false;
    cancel.hidden = false;
    text.setAttribute("role", "status");
    earlierUpload(file).then(function (earlier) {
      if (earlier) {
        var m = earlier.metadata;
        show("Resuming the earlier upload of " + file.name + " into image " + m.image_id + "…");
        send({ id: m.image_id, detail: m.detail, uploads: m.uploads }, file, earlier);
      } else {
        create(file);
      }
    }, function () { create(file); });
  });

  function create(file) {
    var fields = new FormData(form);
    fields.delete("file");
    show("Creating the image…");
    fetch(form.action, { method: "POST", body: fields, credentials: "same-origin",
                         headers: { "Accept": "application/json" } })
      .then(function (response) {
        return response.text().then(function (body) {
          if (!response.ok) { throw new Error(errorOf(body)); }
          return JSON.parse(body);
        });
      })
      .then(function (image) { send(image, file, null); })
      .catch(function (error) { fail(error.message); });
  }

  function send(image, file, earlier) {
    var upload = new window.tus.Upload(file, {
      endpoint: image.uploads,
      chunkSize: chunkSize,
      retryDelays: [0, 1000, 3000, 5000, 10000, 20000],
      headers: { "X-CSRF-Token": csrf },
      metadata: { filename: file.name, filetype: file.type, image_id: image.id, detail: image.detail,
                  uploads: image.uploads, owner: owner },
      fingerprint: fingerprint,
      removeFingerprintOnSuccess: true,
      onProgress: function (sent, total) {
        var percent = total ? Math.floor((sent / total) * 100) : 100;
        bar.value = percent;
        show((earlier ? "Resumed into image " + image.id + ". " : "") +
             "Uploaded " + percent + "% (" + sent + " of " + total + " bytes)");
      },
      onSuccess: function () {
        bar.value = 100;
        show("Upload complete. Opening the image…");
        window.location.assign(image.detail);
      },
      onError: function (error) {
        var status = error.originalResponse ? error.originalResponse.getStatus() : 0;
        if (earlier && (status === 403 || status === 404 || status === 409 || status === 410)) {
          // The earlier image is gone or no longer waits for data: forget it and make a new one.
          storage.removeUpload(earlier.urlStorageKey).then(function () { create(file); });
          return;
        }
        fail(reasonOf(error) + " The image was created but has no data: choose the file again to resume, or " +
             "open the image to delete it.");
      }
    });
    cancel.onclick = function () {
      cancel.hidden = true;
      show("Upload cancelled. Removing the unfinished image…");
      upload.abort(true)
        .catch(function () { return null; })  // the image's delete below removes its uploads anyway
        .then(function () { return discard(image); })
        .then(function () { fail("Upload cancelled; the unfinished image was removed."); },
              function (error) {
                fail("Upload cancelled; the unfinished image is left queued (" + error.message + ").");
              });
    };
    if (earlier) { upload.resumeFromPreviousUpload(earlier); } else { show("Uploading…"); }
    upload.start();
  }
}());
