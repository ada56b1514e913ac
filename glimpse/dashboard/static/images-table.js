// The images table's "Select all on this page": checks or clears every row's box, and shows whether some are.
"use strict";
(function () {
  const all = document.getElementById("select-all");
  if (!all) return;
  const boxes = Array.from(document.querySelectorAll('input[type=checkbox][form=bulk][name=id]'));
  all.closest("label").hidden = boxes.length === 0;
  function sync() {
    const checked = boxes.filter((box) => box.checked).length;
    all.checked = checked > 0 && checked === boxes.length;
    all.indeterminate = checked > 0 && checked < boxes.length;
  }
  all.addEventListener("change", () => {
    boxes.forEach((box) => { box.checked = all.checked; });
    sync();
  });
  boxes.forEach((box) => box.addEventListener("change", sync));
  sync();
})();
