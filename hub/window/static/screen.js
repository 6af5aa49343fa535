// The clerk's screen: the window agent pushes the reader's state and each decision by
// Server-Sent Events. Everything is written as text (never as HTML), and the holder leaves
// the page at the next tap, when the decision's time is up, or when the agent is gone.
"use strict";

const language = document.documentElement.lang;
const pick = (text) => text[language] ?? text.en;
const $ = (id) => document.getElementById(id);
let timer = null;

function clearHolder() {
  clearTimeout(timer);
  $("decision").hidden = true;
  $("waiting").hidden = false;
  for (const id of ["reasons", "fields"]) $(id).replaceChildren();
  for (const id of ["verdict", "serial", "decided"]) $(id).textContent = "";
  $("photo").removeAttribute("src");
  $("photo").hidden = true;
}

function item(tag, text) {
  const element = document.createElement(tag);
  element.textContent = text;
  return element;
}

function showDecision(decision) {
  clearHolder();
  const section = $("decision");
  section.dataset.grant = decision.grant ? "yes" : "no";
  $("verdict").textContent = decision.grant ? section.dataset.grantWord : section.dataset.denyWord;
  $("offline").hidden = !decision.offline;
  $("reasons").replaceChildren(
    ...decision.reasons.map((reason) => item("li", `${pick(reason)} (${reason.code})`)),
  );
  $("fields").replaceChildren(
    ...decision.fields.flatMap((field) => [item("dt", pick(field.label)), item("dd", pick(field.value))]),
  );
  if (decision.photo) {
    $("photo").src = decision.photo;
    $("photo").hidden = false;
  }
  $("serial").textContent = decision.card_serial ?? "";
  $("decided").textContent = decision.decided_at;
  section.hidden = false;
  $("waiting").hidden = true;
  timer = setTimeout(clearHolder, decision.expires_in * 1000);
}

const events = new EventSource("/events");
events.addEventListener("open", () => { $("link").hidden = true; });
events.addEventListener("error", () => { $("link").hidden = false; clearHolder(); });
events.addEventListener("reader", (event) => {
  const reader = JSON.parse(event.data);
  $("reader").dataset.state = reader.state;
  $("reader").textContent = pick(reader.text);
  if (reader.state === "reading") clearHolder();
});
events.addEventListener("notice", (event) => { $("notice").textContent = pick(JSON.parse(event.data).text); });
events.addEventListener("decision", (event) => { $("notice").textContent = ""; showDecision(JSON.parse(event.data)); });
events.addEventListener("clear", clearHolder);
