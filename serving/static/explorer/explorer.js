// The recommendations explorer. Everything it shows comes from this API: the real endpoints
// (POST /recommend, GET /items/{id}/similar) for what clients get, /explorer/* for the rest.
"use strict";

const $ = (id) => document.getElementById(id);

async function api(path, options) {
  const response = await fetch(path, options);
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    throw new Error(`${options?.method || "GET"} ${path}: ${response.status} ${body.detail || ""}`);
  }
  return body;
}

function showError(error) {
  $("error").textContent = error ? String(error.message || error) : "";
  $("error").hidden = !error;
}

// Cards for items by id (display name, category, image), in the order given.
async function cards(ids) {
  if (!ids.length) return new Map();
  const query = ids.map((id) => `ids=${encodeURIComponent(id)}`).join("&");
  const found = await api(`/explorer/items?${query}`);
  return new Map(found.items.map((item) => [item.item_id, item]));
}

function renderCards(list, items, onPick) {
  list.replaceChildren();
  for (const item of items) {
    const li = document.createElement("li");
    li.dataset.itemId = item.item_id;
    const picture = document.createElement(item.image ? "img" : "div");
    if (item.image) {
      picture.src = item.image;
      picture.alt = "";
    } else {
      picture.className = "no-image";
    }
    const text = document.createElement("div");
    const title = document.createElement("div");
    title.className = "title";
    title.textContent = item.title;
    const meta = document.createElement("div");
    meta.className = "meta";
    meta.textContent = [item.category, item.item_id, `${item.interactions} interactions`]
      .filter(Boolean).join(" · ");
    text.append(title, meta);
    if (item.why) {
      const why = document.createElement("div");
      why.className = "why";
      why.textContent = item.why.text;
      why.title = item.why.details;
      text.append(why);
    }
    const score = document.createElement("div");
    score.className = "score";
    score.textContent = item.score === undefined ? "" : item.score.toFixed(3);
    li.append(picture, text, score);
    li.addEventListener("click", () => onPick(item));
    list.append(li);
  }
}

// Scored items from the API, as cards with their scores.
async function scoredCards(items) {
  const known = await cards(items.map((item) => item.item_id));
  return items.map((item) => ({ ...known.get(item.item_id), ...item }));
}

// Why a two-stage version recommended each item: the retrievers that proposed it and the
// features that raised its score most (nothing to add for a single-stage version).
async function explain(userId, items) {
  if (!items.some((item) => item.sources)) return new Map();
  const query = items.map((item) => `ids=${encodeURIComponent(item.item_id)}`).join("&");
  const why = await api(`/explorer/users/${encodeURIComponent(userId)}/why?${query}`);
  return new Map(why.items.map((item) => [item.item_id, whyLine(item)]));
}

function whyLine(item) {
  const sources = item.sources.length ? `proposed by ${item.sources.join(", ")}` : "a popular fill-in";
  const raised = item.features.map((f) => `${f.feature} +${f.contribution.toFixed(2)}`).join(", ");
  return {
    text: `why: ${sources}${raised ? `; raised by ${raised}` : ""}`,
    details: item.features.map((f) => `${f.feature}: ${f.description}`).join("\n"),
  };
}

async function similar(item) {
  showError(null);
  try {
    document.querySelectorAll("ol.cards li.picked").forEach((li) => li.classList.remove("picked"));
    document.querySelectorAll(`ol.cards li[data-item-id="${CSS.escape(item.item_id)}"]`)
      .forEach((li) => li.classList.add("picked"));
    const k = Number($("k").value) || 10;
    const found = await api(`/items/${encodeURIComponent(item.item_id)}/similar?k=${k}`);
    $("similar-to").textContent = item.title;
    renderCards($("similar"), await scoredCards(found.items), similar);
  } catch (error) {
    showError(error);
  }
}

async function recommend(userId) {
  showError(null);
  const k = Number($("k").value) || 10;
  const [user, served] = await Promise.all([
    api(`/explorer/users/${encodeURIComponent(userId)}`),
    api("/recommend", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ user_id: userId, k }),
    }),
  ]);
  $("history-count").textContent = user.known
    ? `(${user.history_total} items${user.history_total > user.history.length ? `, first ${user.history.length}` : ""})`
    : "(a user the model has never seen)";
  renderCards($("history"), user.history, similar);
  const [scored, why] = await Promise.all([scoredCards(served.items), explain(served.user_id, served.items)]);
  renderCards($("recommendations"), scored.map((item) => ({ ...item, why: why.get(item.item_id) })), similar);
  const experiment = served.experiment ? `experiment ${served.experiment}, ` : "";
  $("served-line").textContent =
    `${served.items.length} items for ${served.user_id} by strategy ${served.strategy}, ` +
    `version ${served.model_version}, ${experiment}arm ${served.arm} (request ${served.request_id})`;
  $("served").hidden = false;
}

async function start() {
  const users = await api("/explorer/users");
  $("version").textContent = `serving version ${users.model_version}: ${users.total} users`;
  for (const user of users.users) {
    const option = document.createElement("option");
    option.value = user.user_id;
    option.label = `${user.history} items`;
    $("users").append(option);
  }
  $("user").value = users.users.length ? users.users[0].user_id : "";
  $("user-form").addEventListener("submit", (event) => {
    event.preventDefault();
    recommend($("user").value.trim()).catch(showError);
  });
  $("new-user").addEventListener("click", () => {
    $("user").value = `new-user-${Math.random().toString(36).slice(2, 10)}`;
    recommend($("user").value).catch(showError);
  });
  document.body.dataset.ready = "true";
}

start().catch(showError);
