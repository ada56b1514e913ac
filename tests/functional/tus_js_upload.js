// A plain tus client: tus-js-client under Node uploads a file to a Glimpse image's tus endpoint (noauth headers of
// PROJECT). With a stop-after count it stops once that many bytes are in, as a closed program would, and its
// file URL storage keeps the upload; run again, it finds that upload and resumes it. Prints one JSON line.
"use strict";
const fs = require("fs");
const path = require("path");
const tus = require("tus-js-client");

const [file, endpoint, storage, stopAfter] = process.argv.slice(2);
const upload = new tus.Upload(fs.createReadStream(file), {
  endpoint,
  headers: { "X-Project-Id": process.env.PROJECT, "X-Roles": "member" },
  chunkSize: 1024 * 1024,
  retryDelays: [0, 500, 1000],
  urlStorage: new tus.FileUrlStorage(storage),
  metadata: { filename: path.basename(file) },
  onChunkComplete(size, sent) {
    if (stopAfter && sent >= Number(stopAfter)) {
      upload.abort(false).then(() => {
        console.log(JSON.stringify({ stopped: sent, url: upload.url }));
        process.exit(0);
      });
    }
  },
  onSuccess() { console.log(JSON.stringify({ done: true, url: upload.url, resumed: resumedFrom })); },
  onError(error) { console.error(String(error)); process.exit(1); },
});
let resumedFrom = null;
upload.findPreviousUploads().then((previous) => {
  if (previous.length) {
    resumedFrom = previous[0].uploadUrl;
    upload.resumeFromPreviousUpload(previous[0]);
  }
  upload.start();
});
