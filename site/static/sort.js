// Sortable tables without a framework: a button in each column header of `table.sortable`.
// Cells carry their sort value in data-v (numbers for figures, names for places); empty values
// (suppressed cells) always sort last. The table works unsorted without JavaScript.
(function () {
  "use strict";
  function value(row, index) {
    var cell = row.children[index];
    var v = cell ? cell.getAttribute("data-v") : null;
    return v === null ? (cell ? cell.textContent.trim() : "") : v;
  }
  function sortBy(table, index, th) {
    var ascending = th.getAttribute("aria-sort") !== "ascending";
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var numeric = rows.every(function (r) { var v = value(r, index); return v === "" || !isNaN(Number(v)); });
    rows.sort(function (a, b) {
      var x = value(a, index), y = value(b, index);
      if (x === "" || y === "") { return (x === "") - (y === ""); }
      var c = numeric ? Number(x) - Number(y) : x.localeCompare(y, document.documentElement.lang);
      return ascending ? c : -c;
    });
    rows.forEach(function (r) { body.appendChild(r); });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
  }
  function enhance(table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, index) {
      var button = document.createElement("button");
      button.type = "button";
      button.className = "sort";
      while (th.firstChild) { button.appendChild(th.firstChild); }
      th.appendChild(button);
      button.addEventListener("click", function () { sortBy(table, index, th); });
    });
  }
  document.querySelectorAll("table.sortable").forEach(enhance);
})();
