/* A search box is as wide as its hint: Flask-Admin sizes it for 30 characters, which cuts a Vietnamese
   placeholder ("Người thanh toán hoặc số tham chiếu") short. Measured in the box's own font, at most 32em. */
document.addEventListener("DOMContentLoaded", function () {
  "use strict";
  var canvas = document.createElement("canvas").getContext("2d");
  document.querySelectorAll("input[name=search][placeholder], input[type=search][placeholder]").forEach(function (box) {
    var style = getComputedStyle(box);
    canvas.font = style.font || (style.fontSize + " " + style.fontFamily);
    var needed = canvas.measureText(box.placeholder).width + parseFloat(style.paddingLeft) +
      parseFloat(style.paddingRight) + parseFloat(style.borderLeftWidth) + parseFloat(style.borderRightWidth) + 4;
    var most = 32 * parseFloat(style.fontSize);
    if (needed > box.getBoundingClientRect().width) box.style.width = Math.min(needed, most) + "px";
  });
});
