// The console's only script: `planstream console` opens /console/sign-in#token=<JWT>. The
// fragment never reaches a server or a log; this fills the form with it, removes it from the
// address bar and history, and submits the form.
(function () {
  "use strict";
  var prefix = "#token=";
  var fragment = window.location.hash;
  if (fragment.indexOf(prefix) !== 0) {
    return;
  }
  window.history.replaceState(null, "", window.location.pathname + window.location.search);
  var token = "";
  try {
    token = decodeURIComponent(fragment.slice(prefix.length));
  } catch (error) {
    return;
  }
  var form = document.getElementById("sign-in");
  var field = document.getElementById("token");
  if (!form || !field || !token) {
    return;
  }
  field.value = token;
  form.submit();
})();
