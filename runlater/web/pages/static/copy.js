// Copy buttons: a button with data-copy="text" puts the text on the clipboard and says so for
// a moment. The buttons show only with JavaScript (html.can-copy); one listener on the document
// keeps them working in parts of the page that live updates replace.
(function () {
  "use strict";
  document.documentElement.classList.add("can-copy");
  function viaSelection(text) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "absolute";
    area.style.left = "-9999px";
    document.body.appendChild(area);
    area.select();
    var ok = false;
    try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
    document.body.removeChild(area);
    return ok ? Promise.resolve() : Promise.reject(new Error("not copied"));
  }
  function say(button, text) {
    if (!button.dataset.label) { button.dataset.label = button.textContent; }
    button.textContent = text;
    setTimeout(function () { button.textContent = button.dataset.label; }, 1500);
  }
  document.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-copy]");
    if (!button) { return; }
    var text = button.getAttribute("data-copy");
    var copying = navigator.clipboard && window.isSecureContext
      ? navigator.clipboard.writeText(text) : viaSelection(text);
    copying.then(function () { say(button, "Copied"); },
                 function () { say(button, "Select and copy"); });
  });
})();
