// Names the materials still missing for the chosen form of a condition as the clerk ticks
// them, before the application is sent (the hub checks again and says the same).
"use strict";

const form = document.getElementById("application");
const missing = document.getElementById("missing");

function show() {
  const chosen = form.querySelector('input[name="form"]:checked');
  const needed = new Set((chosen ? chosen.dataset.materials : missing.dataset.base).split(" "));
  const ticked = new Set([...form.querySelectorAll('input[name="materials"]:checked')].map((box) => box.value));
  const names = [...form.querySelectorAll('input[name="materials"]')]
    .filter((box) => needed.has(box.value) && !ticked.has(box.value))
    .map((box) => box.parentElement.textContent.trim());
  missing.textContent = names.length ? missing.dataset.prefix + names.join(missing.dataset.separator) : "";
}

form.addEventListener("change", show);
show();
