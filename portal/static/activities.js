// The activity form: person-times are the sum of the three groups, shown as they are typed (never typed).
(function () {
  var out = document.getElementById("person-times");
  if (!out) { return; }
  function sum() {
    var total = 0;
    document.querySelectorAll("input.participant").forEach(function (input) {
      var n = parseInt(input.value, 10);
      if (!isNaN(n) && n > 0) { total += n; }
    });
    out.textContent = total;
  }
  document.querySelectorAll("input.participant").forEach(function (input) {
    input.addEventListener("input", sum);
  });
})();
