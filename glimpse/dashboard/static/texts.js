// The page's scripts say their sentences in the page's language: the server puts them, translated, in the JSON
// block #script-texts (keyed by the English); glimpseText(english, values) picks one and fills its {name}s.
// A sentence missing from the block (or a page without one) stays in English.
"use strict";
window.glimpseText = (function () {
  var texts = {};
  var block = document.getElementById("script-texts");
  try { texts = block ? JSON.parse(block.textContent) : {}; } catch (e) { texts = {}; }
  return function (english, values) {
    var text = Object.prototype.hasOwnProperty.call(texts, english) ? texts[english] : english;
    return text.replace(/\{(\w+)\}/g, function (whole, name) {
      return values && Object.prototype.hasOwnProperty.call(values, name) ? String(values[name]) : whole;
    });
  };
}());
