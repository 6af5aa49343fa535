// A schema file chosen on the draft page is read into the text area, where it can be looked
// at and changed before Check or Register sends it; the file itself is never uploaded.
"use strict";

document.getElementById("upload").addEventListener("change", async (event) => {
  const [file] = event.target.files;
  if (file) document.getElementById("schema").value = await file.text();
});
