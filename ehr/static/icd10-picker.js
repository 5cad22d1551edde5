// ICD-10 picker (QĐ 4469 list): suggestions for the diagnosis fields while typing, by code or by
// Vietnamese or English words, named in the page's language (works without it, too:
// the server checks every code).
(function () {
  var list = document.getElementById("icd10-list");
  if (!list) return;
  var timer = null;
  document.querySelectorAll("input[data-icd10]").forEach(function (input) {
    input.addEventListener("input", function () {
      clearTimeout(timer);
      var q = input.value.trim();
      if (q.length < 2) return;
      timer = setTimeout(function () {
        fetch("/clinic/icd10?q=" + encodeURIComponent(q), { credentials: "same-origin" })
          .then(function (r) { return r.ok ? r.json() : { items: [] }; })
          .then(function (data) {
            list.replaceChildren();
            data.items.forEach(function (item) {
              var option = document.createElement("option");
              option.value = item.code;
              option.label = item.code + " " + item.display;
              list.appendChild(option);
            });
          });
      }, 150);
    });
  });
})();
