// Tells the server the reader's time zone (an IANA name such as Europe/Rome) so dates show in it.
// The server accepts only names its zoneinfo database knows; anything else means UTC.
(function () {
  "use strict";
  var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  if (zone && /^[A-Za-z0-9_+\-\/]{1,64}$/.test(zone)) {
    document.cookie = "glimpse_tz=" + zone + "; path=/dashboard; max-age=31536000; samesite=lax";
  }
})();
