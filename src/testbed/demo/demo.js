// The demo page: draws the team chat from /api/state, follows /api/events (server-sent events),
// and sends presses and messages as the person chosen at the top. No build step.
"use strict";

const chat = document.getElementById("chat");
const who = document.getElementById("who");
const live = document.getElementById("live");
const toast = document.getElementById("toast");
const text = document.getElementById("text");
const replying = document.getElementById("replying");
const messages = new Map();
const myQueries = new Set();
// Answers can arrive over the event stream before the press's own POST returns.
const earlyAnswers = new Map();
let people = [];
let replyTo = null;

// Telegram's HTML: only these tags survive; everything else becomes its text.
const ALLOWED = new Set(["B", "STRONG", "I", "EM", "U", "INS", "S", "STRIKE", "DEL", "CODE", "PRE", "A", "BLOCKQUOTE", "TG-SPOILER", "SPAN"]);
function telegramHtml(html) {
  const doc = new DOMParser().parseFromString(`<body>${html.replace(/\n/g, "<br>")}</body>`, "text/html");
  const out = document.createDocumentFragment();
  const copy = (node, into) => {
    for (const child of node.childNodes) {
      if (child.nodeType === Node.TEXT_NODE) { into.appendChild(document.createTextNode(child.textContent)); continue; }
      if (child.nodeType !== Node.ELEMENT_NODE) continue;
      if (child.tagName === "BR") { into.appendChild(document.createTextNode("\n")); continue; }
      if (!ALLOWED.has(child.tagName)) { copy(child, into); continue; }
      const el = document.createElement(child.tagName === "TG-SPOILER" ? "span" : child.tagName);
      if (child.tagName === "A") {
        const href = child.getAttribute("href") || "";
        if (/^https?:\/\//i.test(href)) { el.href = href; el.target = "_blank"; el.rel = "noopener"; }
      }
      copy(child, el);
      into.appendChild(el);
    }
  };
  copy(doc.body, out);
  return out;
}

function me() { return people.find((p) => String(p.id) === who.value) || people[0]; }

function showToast(message, alert) {
  toast.textContent = message;
  toast.className = alert ? "alert" : "";
  toast.hidden = false;
  clearTimeout(showToast.timer);
  showToast.timer = setTimeout(() => { toast.hidden = true; }, alert ? 4000 : 2000);
}

async function post(path, body) {
  const response = await fetch(path, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  if (!response.ok) throw new Error(await response.text());
  return response.json();
}

// Events that arrive while the state loads wait for it; a message event never rolls a message
// back to an older version than the one shown.
let loading = false;
let queued = [];
function apply(handler, data) { if (loading) queued.push([handler, data]); else handler(data); }
function onMessage(m) {
  const known = messages.get(m.id);
  if (!known || m.edits >= known.edits) render(m);
}

function render(m) {
  let el = document.getElementById(`m${m.id}`);
  const fresh = !el;
  if (fresh) { el = document.createElement("div"); el.id = `m${m.id}`; }
  messages.set(m.id, m);
  el.className = "msg" + (m.from_bot ? " bot" : " person") + (!m.from_bot && m.from === me().name ? " mine" : "");
  if (m.from_bot && m.text.startsWith("🧩")) el.classList.add("card");
  el.dataset.id = m.id;
  el.replaceChildren();
  const from = document.createElement("div");
  from.className = "from";
  from.textContent = m.from_bot ? `@${m.from}` : m.from;
  el.appendChild(from);
  if (m.reply_to && messages.has(m.reply_to)) {
    const quote = document.createElement("div");
    quote.className = "quote";
    quote.textContent = messages.get(m.reply_to).text.split("\n")[0];
    el.appendChild(quote);
  }
  const body = document.createElement("div");
  body.className = "body";
  if (m.html !== null && m.html !== undefined) body.appendChild(telegramHtml(m.html)); else body.textContent = m.text;
  el.appendChild(body);
  if (m.buttons.length) {
    const keyboard = document.createElement("div");
    keyboard.className = "keyboard";
    for (const row of m.buttons) {
      const line = document.createElement("div");
      line.className = "row";
      for (const b of row) {
        let button;
        if (b.url) { button = document.createElement("a"); button.className = "url"; button.href = b.url; button.target = "_blank"; button.rel = "noopener"; }
        else { button = document.createElement("button"); button.type = "button"; button.addEventListener("click", () => press(m.id, b.data)); }
        button.textContent = b.text;
        line.appendChild(button);
      }
      keyboard.appendChild(line);
    }
    el.appendChild(keyboard);
  }
  if (m.force_reply) {
    const prompt = document.createElement("div");
    prompt.className = "prompt";
    prompt.textContent = TEXTS.asks_reply;
    el.appendChild(prompt);
  }
  const meta = document.createElement("div");
  meta.className = "meta";
  meta.textContent = (m.edits ? `${TEXTS.edited} · ` : "") + new Date(m.date * 1000).toLocaleTimeString();
  el.appendChild(meta);
  if (fresh) {
    const atBottom = chat.scrollHeight - chat.scrollTop - chat.clientHeight < 80;
    chat.appendChild(el);
    if (atBottom) chat.scrollTop = chat.scrollHeight;
    if (m.force_reply) setReply(m);
  }
}

function setReply(m) {
  replyTo = m ? m.id : null;
  replying.hidden = !m;
  if (m) document.getElementById("replying-to").textContent = m.text.split("\n")[0];
}

async function press(id, data) {
  if (!data) return;
  try {
    const { query } = await post("/api/press", { user: me().id, message_id: id, data });
    const early = earlyAnswers.get(query);
    if (early) { earlyAnswers.delete(query); if (early.text) showToast(early.text, early.alert); }
    else myQueries.add(query);
  } catch (e) { showToast(`${TEXTS.could_not_press}: ${e.message}`, true); }
}

async function load() {
  loading = true;
  try { await loadState(); } finally {
    loading = false;
    const events = queued;
    queued = [];
    for (const [handler, data] of events) handler(data);
  }
}

async function loadState() {
  const state = await (await fetch("/api/state")).json();
  document.getElementById("chat-title").textContent = state.chat.title;
  if (!people.length) {
    people = state.people;
    for (const p of people) {
      const option = document.createElement("option");
      option.value = p.id;
      option.textContent = `${p.name} (@${p.username}) — ${p.approver ? TEXTS.approver : TEXTS.not_approver}`;
      who.appendChild(option);
    }
  }
  chat.replaceChildren();
  messages.clear();
  for (const m of state.messages) render(m);
  chat.scrollTop = chat.scrollHeight;
}

// Subscribe first, then load the state on every (re)connection: nothing said in between is lost.
function connect() {
  const events = new EventSource("/api/events");
  events.addEventListener("open", () => {
    load().then(() => { live.textContent = TEXTS.live; document.body.dataset.live = "1"; })
      .catch((e) => { live.textContent = `${TEXTS.failed}: ${e.message}`; });
  });
  events.addEventListener("error", () => { live.textContent = TEXTS.reconnecting; document.body.dataset.live = "0"; });
  events.addEventListener("message", (e) => apply(onMessage, JSON.parse(e.data)));
  events.addEventListener("deleted", (e) => apply((id) => {
    messages.delete(id);
    document.getElementById(`m${id}`)?.remove();
    if (replyTo === id) setReply(null);
  }, JSON.parse(e.data).id));
  events.addEventListener("answer", (e) => {
    const a = JSON.parse(e.data);
    if (myQueries.delete(a.query)) { if (a.text) showToast(a.text, a.alert); return; }
    earlyAnswers.set(a.query, a);
    if (earlyAnswers.size > 50) earlyAnswers.delete(earlyAnswers.keys().next().value);
  });
  events.addEventListener("reload", () => load());
}

document.getElementById("composer").addEventListener("submit", async (e) => {
  e.preventDefault();
  const value = text.value.trim();
  if (!value) return;
  try {
    await post("/api/send", { user: me().id, text: value, reply_to: replyTo });
    text.value = "";
    setReply(null);
  } catch (err) { showToast(`${TEXTS.could_not_send}: ${err.message}`, true); }
});
document.getElementById("reply-cancel").addEventListener("click", () => setReply(null));
who.addEventListener("change", () => { for (const m of messages.values()) render(m); });

connect();
