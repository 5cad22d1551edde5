// Drug picker: suggestions from the clinic's drug catalogue for the prescription lines while
// typing. Choosing a suggestion fills the line's hidden code (rx-N-code); typing anything else
// clears it, and the line is recorded as free text ("chưa mã hóa"). Works without it, too.
(function () {
  var list = document.getElementById("drug-list");
  if (!list) return;
  var timer = null;
  var known = {}; // shown text -> catalogue code, of the suggestions last received

  function label(item) {
    if (item.display) return item.display;
    var name = item.name || "";
    if (item.strength && name.indexOf(item.strength) < 0) name += " " + item.strength;
    return name;
  }

  document.querySelectorAll("input[data-drug-picker]").forEach(function (input) {
    var hidden = document.getElementById("f-" + input.getAttribute("data-drug-picker"));
    input.addEventListener("input", function () {
      var q = input.value.trim();
      if (hidden) hidden.value = Object.prototype.hasOwnProperty.call(known, q) ? known[q] : "";
      clearTimeout(timer);
      if (q.length < 2 || (hidden && hidden.value)) return;
      timer = setTimeout(function () {
        fetch("/clinic/catalogue/drugs?q=" + encodeURIComponent(q), { credentials: "same-origin" })
          .then(function (r) { return r.ok ? r.json() : { items: [] }; })
          .then(function (data) {
            list.replaceChildren();
            known = {};
            (data.items || []).forEach(function (item) {
              var text = label(item);
              known[text] = item.code;
              var option = document.createElement("option");
              option.value = text;
              option.label = [item.form, item.route].filter(Boolean).join(" · ") || text;
              list.appendChild(option);
            });
          })
          .catch(function () { list.replaceChildren(); });
      }, 150);
    });
  });
})();
