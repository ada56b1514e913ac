// Create Image: create the image, then send the file over tus (resumable uploads, tus-js-client) with a progress
// bar and a cancel button. The browser remembers each unfinished upload under a fingerprint of the file and the
// user (not of the image, which does not exist yet when the file is chosen), with its image in the metadata: after
// a reload, choosing the same file again goes on into the same image from the server's offset. A dropped
// connection is retried from the server's offset by itself. Without this script the form still works: the file
// goes in the form post.
"use strict";
(function () {
  var say = window.glimpseText || function (english) { return english; };  // static/texts.js
  var form = document.getElementById("create-form");
  if (!form) { return; }
  detectFormats(form);
  if (!window.tus || !window.tus.isSupported) { return; }
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
  // The message, and where the image's data can be sent again when a link is given.
  function fail(message, link) {
    show(message);
    if (link) {
      var a = document.createElement("a");
      a.href = link.href;
      a.textContent = link.text;
      text.append(" ", a);
    }
    text.setAttribute("role", "alert");
    submit.disabled = false;
    cancel.hidden = true;
  }
  function reasonOf(error) {
    var response = error && error.originalResponse;
    if (response && response.getBody()) { return errorOf(response.getBody()); }
    return say("The connection broke during the upload.");
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
          throw new Error(reason || say("The server answered {status}.", { status: response.status }));
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
      var listed = mine.map(function (u) {
        return say("{file} into image {image}", { file: u.metadata.filename, image: u.metadata.image_id });
      }).join(", ");
      pending.textContent = mine.length > 1
        ? say("Unfinished uploads: {uploads}. Choose the same file and create the image to go on where it stopped.",
              { uploads: listed })
        : say("Unfinished upload: {uploads}. Choose the same file and create the image to go on where it stopped.",
              { uploads: listed });
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
        show(say("Resuming the earlier upload of {file} into image {image}…", { file: file.name, image: m.name || m.image_id }));
        send({ id: m.image_id, name: m.name, detail: m.detail, uploads: m.uploads }, file, earlier);
      } else {
        create(file);
      }
    }, function () { create(file); });
  });

  function create(file) {
    var fields = new FormData(form);
    fields.delete("file");
    show(say("Creating the image…"));
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
      metadata: { filename: file.name, filetype: file.type, image_id: image.id, name: image.name || "",
                  detail: image.detail, uploads: image.uploads, owner: owner },
      fingerprint: fingerprint,
      removeFingerprintOnSuccess: true,
      onProgress: function (sent, total) {
        var percent = total ? Math.floor((sent / total) * 100) : 100;
        bar.value = percent;
        var done = { image: image.id, percent: percent, sent: sent, total: total };
        show(earlier ? say("Resumed into image {image}. Uploaded {percent}% ({sent} of {total} bytes)", done)
                     : say("Uploaded {percent}% ({sent} of {total} bytes)", done));
      },
      onSuccess: function () {
        bar.value = 100;
        show(say("Upload complete. Opening the image…"));
        window.location.assign(image.detail);
      },
      onError: function (error) {
        var status = error.originalResponse ? error.originalResponse.getStatus() : 0;
        if (earlier && (status === 403 || status === 404 || status === 409 || status === 410)) {
          // The earlier image is gone or no longer waits for data: forget it and make a new one.
          storage.removeUpload(earlier.urlStorageKey).then(function () { create(file); });
          return;
        }
        var called = { reason: reasonOf(error), image: image.name || image.id };
        if (status >= 400 && status < 500) {  // refused (a format that does not match, a quota): not worth a retry
          fail(say("{reason} Image “{image}” was created but has no data.", called),
               { href: image.detail + "#upload", text: say("Upload its data again on its page.") });
        } else {
          fail(say("{reason} Image “{image}” was created but has no data: choose the file again to resume, " +
                   "or open it to delete it.", called), { href: image.detail, text: say("Open the image.") });
        }
      }
    });
    cancel.onclick = function () {
      cancel.hidden = true;
      show(say("Upload cancelled. Removing the unfinished image…"));
      upload.abort(true)
        .catch(function () { return null; })  // the image's delete below removes its uploads anyway
        .then(function () { return discard(image); })
        .then(function () { fail(say("Upload cancelled; the unfinished image was removed.")); },
              function (error) {
                fail(say("Upload cancelled; the unfinished image is left queued ({reason}).", { reason: error.message }));
              });
    };
    if (earlier) { upload.resumeFromPreviousUpload(earlier); } else { show(say("Uploading…")); }
    upload.start();
  }

  function errorOf(body, otherwise) {
    var fallback = otherwise || say("The upload failed.");
    try { return JSON.parse(body).error || fallback; } catch (e) { return fallback; }
  }

  // The disk (and container) format of the chosen file, from the server's inspection of its first bytes and its
  // name; what is detected is said next to the Format field, and a person's own choice afterwards is kept.
  function detectFormats(form) {
    var disk = form.elements.disk_format;
    var container = form.elements.container_format;
    var note = document.getElementById("format-detected");
    var maxBytes = parseInt(form.getAttribute("data-probe-bytes"), 10) || 65536;
    var guessed = null;  // the last detection, to tell the person's override from it
    var autoContainer = null;  // a container format set by a detection, undone by the next file's

    function tell(message) { note.textContent = message; }
    function apply(guess, file) {
      guessed = guess;
      if (guess.container_format) {
        container.value = guess.container_format;
        autoContainer = guess.container_format;
      } else if (autoContainer && container.value === autoContainer) {
        container.value = "bare";
        autoContainer = null;
      }
      if (!guess.disk_format) {
        tell(say("The format of {file} could not be detected: choose it.", { file: file.name }));
        return;
      }
      disk.value = guess.disk_format;
      if (disk.value !== guess.disk_format) {
        tell(say("{file} looks like {format}, which this cloud does not take.", { file: file.name, format: guess.disk_format }));
        return;
      }
      tell(guess.source === "content"
        ? say("Detected {format} from the file's content. You can choose another format.", { format: guess.disk_format })
        : say("Detected {format} from the file's name. You can choose another format.", { format: guess.disk_format }));
    }

    form.elements.file.addEventListener("change", function () {
      var file = form.elements.file.files[0];
      if (!file) { return; }
      tell(say("Detecting the format of {file}…", { file: file.name }));
      var url = form.getAttribute("data-probe") + "?filename=" + encodeURIComponent(file.name);
      fetch(url, { method: "POST", body: file.slice(0, maxBytes), credentials: "same-origin",
                   headers: { "Accept": "application/json", "Content-Type": "application/octet-stream",
                              "X-CSRF-Token": form.elements.csrf_token.value } })
        .then(function (response) {
          return response.text().then(function (body) {
            if (!response.ok) { throw new Error(errorOf(body)); }
            return JSON.parse(body);
          });
        })
        .then(function (guess) { apply(guess, file); },
              function (error) { tell(say("The format could not be detected ({reason}): choose it.", { reason: error.message })); });
    });
    disk.addEventListener("change", function () {
      if (guessed && guessed.disk_format && disk.value !== guessed.disk_format) {
        tell(say("Detected {format}; you chose {chosen}.", { format: guessed.disk_format, chosen: disk.value || say("none") }));
      }
    });
  }
}());
