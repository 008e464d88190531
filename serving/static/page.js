// The page at /: sends each image to POST /predict?return_input=true (one multipart request per image,
// a few at a time) and draws the answers; reads GET /metadata for the model's name, version and accuracy.
// A service started with tokens answers 401: the page then asks for one and keeps it for this tab's session
// only (sessionStorage: gone when the tab closes), sent in the Authorization header, never in a URL.
"use strict";

const IN_FLIGHT = 4; // requests at a time: a batch of files does not queue behind one slow request
const STROKE = 22; // canvas pixels (280 wide): about 2 pixels of the 28x28 image the model sees

const $ = (id) => document.getElementById(id);
const percent = (p) => `${(100 * p).toFixed(1)}%`;

// The API's own words for a refusal: {"error": {"code", "message"}} on the native routes.
function messageOf(body, response) {
  const error = body && body.error;
  if (error && typeof error.message === "string") return error.message;
  if (typeof error === "string") return error;
  return `the service answered HTTP ${response.status} ${response.statusText}`.trim();
}

const TOKEN_KEY = "fashion-softmax-token";
let tokenAsked = null; // the pending question, shared by every request that got a 401 meanwhile

// Resolves once the person has entered a token; `refused`: the last one was not accepted.
function askForToken(refused) {
  if (!tokenAsked) {
    tokenAsked = new Promise((resolve) => {
      const form = $("token-form");
      $("token-refused").hidden = !refused;
      form.hidden = false;
      $("token").focus();
      form.addEventListener("submit", (event) => {
        event.preventDefault();
        sessionStorage.setItem(TOKEN_KEY, $("token").value.trim());
        $("token").value = "";
        form.hidden = true;
        tokenAsked = null;
        resolve();
      }, { once: true });
    });
  }
  return tokenAsked;
}

// fetch() with the session's token; on a 401, ask for a token and try again with it.
async function api(path, options = {}) {
  for (;;) {
    const token = sessionStorage.getItem(TOKEN_KEY);
    const headers = token ? { Authorization: `Bearer ${token}` } : {};
    const response = await fetch(path, { ...options, headers });
    if (response.status !== 401) return response;
    await askForToken(Boolean(token));
  }
}

async function showModel() {
  try {
    const response = await api("metadata");
    const body = await response.json();
    if (!response.ok) throw new Error(messageOf(body, response));
    const accuracy = body.metrics && body.metrics.test_accuracy;
    $("model").textContent =
      `Model ${body.name}, version ${body.version}` +
      (typeof accuracy === "number" ? `, test accuracy ${percent(accuracy)}` : "");
  } catch (error) {
    $("model").textContent = `The model's details are unavailable: ${error.message}`;
  }
}

function newCard(name) {
  const card = $("card").content.firstElementChild.cloneNode(true);
  card.querySelector(".name").textContent = name;
  return card;
}

function showError(card, message) {
  card.dataset.state = "error";
  card.querySelector(".label").textContent = "Not classified";
  const error = card.querySelector(".error");
  error.textContent = message;
  error.hidden = false;
}

// A picture the novelty check flags (in_distribution false) is not answered with a garment: its closest label
// stays visible, as the closest label only, with the score and the threshold it passed.
function showPrediction(card, prediction, model) {
  const garment = prediction.in_distribution !== false;
  card.dataset.inDistribution = String(garment);
  card.dataset.answer = garment ? prediction.label : "not a garment";
  if (garment) {
    card.querySelector(".label").textContent = prediction.label;
    card.querySelector(".probability").textContent = percent(prediction.probability);
  } else {
    card.querySelector(".label").textContent = "This does not look like a Fashion-MNIST garment";
    const closest = card.querySelector(".closest");
    closest.textContent =
      `Closest label: ${prediction.label} (${percent(prediction.probability)}), not an answer: its novelty ` +
      `score ${prediction.novelty} is above the model's threshold ${model.novelty_threshold} (higher is less ` +
      "like the training garments).";
    closest.hidden = false;
  }
  const input = card.querySelector(".input");
  input.src = prediction.input_png;
  input.alt = `The 28×28 image the model saw for ${card.querySelector(".name").textContent}`;
  card.querySelector(".seen").hidden = false;
  const rows = card.querySelector(".bars tbody");
  for (const [label, probability] of Object.entries(prediction.probabilities)) {
    const row = rows.insertRow();
    row.className = label !== prediction.label ? "" : garment ? "winner" : "closest";
    const name = document.createElement("th");
    name.scope = "row";
    name.textContent = label;
    const bar = document.createElement("span");
    bar.className = "bar";
    bar.style.width = percent(probability); // CSSOM: allowed by the page's Content-Security-Policy
    row.append(name);
    row.insertCell().append(bar);
    row.insertCell().textContent = percent(probability);
  }
  card.querySelector(".bars").hidden = false;
  card.dataset.state = "done";
}

// One request per image, so each card gets its own answer or its own error message.
async function classifyOne(card, blob, name) {
  const form = new FormData();
  form.append("image", blob, name);
  let response;
  try {
    response = await api("predict?return_input=true", { method: "POST", body: form });
  } catch (error) {
    return showError(card, `The service could not be reached (${error.message}).`);
  }
  const body = await response.json().catch(() => null);
  if (!response.ok || !body) return showError(card, `${messageOf(body, response)} (HTTP ${response.status})`);
  showPrediction(card, body.predictions[0], body.model);
  if (!performance.getEntriesByName("fs:first-result").length) performance.mark("fs:first-result");
}

async function classifyAll(items) {
  if (!items.length) return;
  performance.mark("fs:submitted");
  const cards = items.map(({ name }) => newCard(name));
  $("results").prepend(...cards); // newest batch first, files in the order given
  $("status").textContent = `Classifying ${items.length} image${items.length > 1 ? "s" : ""}…`;
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      await classifyOne(cards[index], items[index].blob, items[index].name);
    }
  };
  await Promise.all(Array.from({ length: Math.min(IN_FLIGHT, items.length) }, worker));
  performance.mark("fs:batch-done");
  const done = cards.filter((card) => card.dataset.state === "done");
  const labels = done.map((card) => card.dataset.answer);
  const failed = cards.length - done.length;
  $("status").textContent =
    (done.length ? `Classified ${done.length}: ${labels.join(", ")}.` : "") +
    (failed ? ` ${failed} could not be classified: ${cards.find((c) => c.dataset.state === "error")
      .querySelector(".error").textContent}` : "");
}

const fromFiles = (fileList) => Array.from(fileList, (file) => ({ blob: file, name: file.name || "pasted image" }));

function setUpInputs() {
  $("files").addEventListener("change", (event) => {
    classifyAll(fromFiles(event.target.files));
    event.target.value = ""; // choosing the same files again classifies them again
  });
  const drop = $("drop");
  document.addEventListener("dragover", (event) => {
    event.preventDefault(); // without this the browser opens the dropped file instead
    drop.classList.add("active");
  });
  document.addEventListener("dragleave", (event) => {
    if (!event.relatedTarget) drop.classList.remove("active");
  });
  document.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("active");
    classifyAll(fromFiles(event.dataTransfer.files));
  });
  document.addEventListener("paste", (event) => {
    const images = Array.from(event.clipboardData.files).filter((file) => file.type.startsWith("image/"));
    if (images.length) {
      event.preventDefault();
      classifyAll(fromFiles(images));
    }
  });
}

function setUpCanvas() {
  const canvas = $("canvas");
  const context = canvas.getContext("2d");
  let drawn = false;
  let last = null;
  const clear = () => {
    context.fillStyle = "#000";
    context.fillRect(0, 0, canvas.width, canvas.height);
    drawn = false;
  };
  const point = (event) => {
    const box = canvas.getBoundingClientRect(); // the canvas may be shown smaller than 280 px
    return [(event.clientX - box.left) * (canvas.width / box.width),
      (event.clientY - box.top) * (canvas.height / box.height)];
  };
  const line = (from, to) => {
    context.strokeStyle = "#fff";
    context.lineWidth = STROKE;
    context.lineCap = context.lineJoin = "round";
    context.beginPath();
    context.moveTo(...from);
    context.lineTo(...to);
    context.stroke();
    drawn = true;
  };
  canvas.addEventListener("pointerdown", (event) => {
    canvas.setPointerCapture(event.pointerId);
    last = point(event);
    line(last, last);
  });
  canvas.addEventListener("pointermove", (event) => {
    if (last === null) return;
    const here = point(event);
    line(last, here);
    last = here;
  });
  for (const type of ["pointerup", "pointercancel"]) canvas.addEventListener(type, () => { last = null; });
  $("clear").addEventListener("click", () => {
    clear();
    $("status").textContent = "Drawing cleared.";
  });
  $("classify").addEventListener("click", () => {
    if (!drawn) {
      $("status").textContent = "Draw a garment first, then classify it.";
      return;
    }
    canvas.toBlob((blob) => classifyAll([{ blob, name: "drawing.png" }]), "image/png");
  });
  clear();
}

// The artifact's pictures: shown when the served model folder has them (GET /artifacts/<name>, 404 otherwise),
// fetched with the token like any API call, then shown from a blob: URL.
async function showPictures() {
  for (const image of document.querySelectorAll(".pictures img")) {
    const response = await api(image.dataset.src).catch(() => null);
    if (!response || !response.ok) continue;
    image.src = URL.createObjectURL(await response.blob());
    image.closest("figure").hidden = false;
    $("no-pictures").hidden = true;
  }
}

setUpInputs();
setUpCanvas();
showModel().then(showPictures);
