"use strict";
// The side panel: add the open page, ask about it or the whole library, see earlier answers, and manage the
// saved pages.
// Every call to the server goes through the service worker (background.js), which holds the paired token.
const $ = (id) => document.getElementById(id);

function send(message) {
  return new Promise((resolve, reject) => chrome.runtime.sendMessage(message, (r) => (r && r.ok ? resolve(r.data) : reject(new Error(r ? r.error : "no reply")))));
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else node.setAttribute(key, value);
  }
  node.append(...children);
  return node;
}

async function activeTab() {
  const [tab] = await chrome.tabs.query({ active: true, lastFocusedWindow: true });
  return tab || null;
}

function setStatus(text, { busy = false, error = false } = {}) {
  $("status").textContent = text;
  $("status").dataset.busy = String(busy);
  $("status").dataset.error = String(error);
}

// ---------------------------------------------------------------- asking

function whereOf(c) {
  return c.page ? `page ${c.page}` : `passage ${c.chunk_id + 1}`;
}

// Runs in the open tab (so it must stand alone): find the quote as runs of six words (its text may join a heading
// and a paragraph that the page shows apart, so a run that is not found is skipped), mark everything from the
// first run found to the last, and scroll it to the middle of the screen.
function highlightOnPage(quote) {
  for (const old of document.querySelectorAll("mark.lector-quote")) {
    const parent = old.parentNode;
    old.replaceWith(...old.childNodes);
    parent.normalize();
  }
  const words = quote.trim().split(/\s+/).slice(0, 400);
  const runs = [];
  for (let i = 0; i < words.length; i += 3) runs.push(words.slice(i, i + 6).join(" "));
  const selection = window.getSelection();
  let first = null;
  let last = null;
  for (const run of runs) {
    selection.removeAllRanges();
    if (last) { const after = document.createRange(); after.setStart(last.endContainer, last.endOffset); selection.addRange(after); }
    if (!window.find(run, false, false, !last)) continue;
    const found = selection.getRangeAt(0).cloneRange();
    if (!first) first = found;
    last = found;
  }
  selection.removeAllRanges();
  if (!first) return false;
  const range = document.createRange();
  range.setStart(first.startContainer, first.startOffset);
  range.setEnd(last.endContainer, last.endOffset);
  const texts = [];
  const root = range.commonAncestorContainer;
  if (root.nodeType === Node.TEXT_NODE) texts.push(root);
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) if (range.intersectsNode(walker.currentNode)) texts.push(walker.currentNode);
  const marks = [];
  for (const node of texts) {
    const from = node === range.startContainer ? range.startOffset : 0;
    const to = node === range.endContainer ? range.endOffset : node.length;
    if (!node.data.slice(from, to).trim()) continue;
    const piece = node.splitText(from);
    piece.splitText(to - from);
    const mark = document.createElement("mark");
    mark.className = "lector-quote";
    mark.style.cssText = "background: #fff1a8; color: #1d2330; border-radius: 2px;";
    piece.replaceWith(mark);
    mark.append(piece);
    marks.push(mark);
  }
  if (marks.length) marks[0].scrollIntoView({ block: "center", behavior: "smooth" });
  return marks.length > 0;
}

// The tab that shows a cited page: the active one, another open one (brought forward), or a new one.
async function tabShowing(url) {
  const active = await activeTab();
  if (active && active.url === url) return active;
  const open = (await chrome.tabs.query({})).find((t) => t.url === url);
  if (open) return chrome.tabs.update(open.id, { active: true });
  const created = await chrome.tabs.create({ url });
  await new Promise((resolve) => {
    const loaded = (id, info) => {
      if (id === created.id && info.status === "complete") { chrome.tabs.onUpdated.removeListener(loaded); resolve(); }
    };
    chrome.tabs.onUpdated.addListener(loaded);
  });
  return created;
}

async function showOnPage(c, item) {
  item.classList.add("flash");
  setTimeout(() => item.classList.remove("flash"), 1200);
  if (!/^https?:/.test(c.source || "")) return;
  const tab = await tabShowing(c.source);
  const [{ result } = {}] = await chrome.scripting.executeScript({ target: { tabId: tab.id }, func: highlightOnPage, args: [c.text] }).catch(() => []);
  if (!result) setStatus("The quote is not on the page as it looks now (it may have changed since it was saved).");
}

function renderCitations(citations) {
  const items = citations.map((c, i) => {
    const item = el("li", { class: "cite", id: `cite-${i + 1}`, title: "Show this passage on the page" },
      el("span", { class: "where" }, `[${i + 1}] ${c.source} · ${whereOf(c)}`), `“${c.text.slice(0, 300)}”`);
    item.addEventListener("click", () => showOnPage(c, item));
    return item;
  });
  $("citations").replaceChildren(...items);
}

// The answer as plain text, each [n] a link to its citation below.
function renderAnswer(text, citations) {
  const parts = text.split(/(\[\d+\])/);
  $("answer").replaceChildren(...parts.map((part) => {
    const n = /^\[(\d+)\]$/.exec(part);
    if (!n || !citations[n[1] - 1]) return part;
    const ref = el("a", { href: `#cite-${n[1]}`, class: "cite-ref" }, n[1]);
    ref.addEventListener("click", (e) => {
      e.preventDefault();
      const item = $(`cite-${n[1]}`);
      item.scrollIntoView({ block: "nearest" });
      showOnPage(citations[n[1] - 1], item);
    });
    return ref;
  }));
}

// `liveRate`: the panel's own measure (" · 9.1 tok/s" or ""). The server's `writing_s`, the time the model spent
// writing over every call, counts the JSON the panel never sees, so it is the better measure where it is sent.
function answerSummary(final, seconds, liveRate) {
  const u = final.usage;
  const served = u && u.completion_tokens && final.writing_s > 0.3;
  const rate = served ? ` · ${(u.completion_tokens / final.writing_s).toFixed(1)} tok/s` : liveRate;
  const used = u ? ` · ${u.prompt_tokens} + ${u.completion_tokens} tokens${rate}` : rate;
  if (final.stopped_reason === "cancelled") return `Stopped after ${seconds} s${used}`;
  return `Answered in ${seconds} s${final.level !== undefined ? ` · reading level ${final.level}` : ""}${used}`;
}

const WRITING_GAP_MS = 1500;

const LEVEL_WORDS = { 0: "the whole text", 1: "quick look-up", 2: "careful reading", 3: "step by step" };

// One answer as it streams: the step it is at, a timer, the quotes found, then the answer with its citations.
class LiveAnswer {
  constructor() {
    this.started = performance.now();
    this.activity = "Sending your question…";
    this.text = "";
    this.writingMs = 0; // time spent writing: pauses longer than WRITING_GAP_MS are reading or tools
    this.pieces = 0;
    this.lastPiece = 0;
    this.tick = setInterval(() => this.paint(), 500);
    this.paint();
  }

  seconds() {
    return ((performance.now() - this.started) / 1000).toFixed(1);
  }

  // Pieces of the answer written per second (each is about one token), once there is enough to tell.
  rate() {
    return this.writingMs > 300 ? ` · ≈ ${(this.pieces / (this.writingMs / 1000)).toFixed(1)} tok/s` : "";
  }

  paint() {
    setStatus(`${this.activity} · ${this.seconds()} s${this.rate()}`, { busy: true });
  }

  set(activity) {
    this.activity = activity;
    this.beforePrompt = undefined;
    this.paint();
  }

  // While the model reads a long prompt; what it did before comes back once it writes.
  promptProgress(e) {
    const before = this.beforePrompt === undefined ? this.activity : this.beforePrompt;
    this.set(`Reading the prompt: ${Math.round((100 * e.done) / Math.max(1, e.total))} %`);
    this.beforePrompt = before;
  }

  promptRead() {
    if (this.beforePrompt !== undefined) this.set(this.beforePrompt);
  }

  on(event) {
    const steps = {
      status: () => this.set(event.text),
      level: () => this.set(`Reading level ${event.level} (${LEVEL_WORDS[event.level] || "reading"})…`),
      reading: () => this.set(`${event.sub ? `Sub-question ${event.sub}: reading` : "Reading"} ${event.first === event.last ? `passage ${event.first}` : `passages ${event.first}–${event.last}`} of ${event.total}…`),
      chunk_read: () => {
        for (const quote of event.quotes) $("found").append(el("li", {}, `“${quote}”`));
      },
      sub_question: () => this.set(`Sub-question ${event.index}: ${event.question}`),
      prompt_progress: () => this.promptProgress(event),
      draft: () => { this.promptRead(); this.write(event.text, event.reset, true); },
      text: () => { this.promptRead(); this.write(event.text, this.drafted, false); },
      final: () => this.finish(event),
      error: () => this.fail(event.message),
    };
    if (steps[event.type]) steps[event.type]();
  }

  // The answer's text as it comes: a draft while the reader writes it, replaced by the final text.
  write(text, replace, draft) {
    const now = performance.now();
    if (draft && this.lastPiece && now - this.lastPiece < WRITING_GAP_MS) {
      this.writingMs += now - this.lastPiece;
      this.pieces += 1;
    }
    if (draft) this.lastPiece = now;
    if (replace) this.text = "";
    this.drafted = draft;
    this.text += text;
    $("answer").textContent = this.text;
    if (draft) this.set("Writing the answer…");
  }

  finish(final) {
    clearInterval(this.tick);
    const content = (final.message && final.message.content) || this.text;
    setStatus(answerSummary(final, this.seconds(), this.rate().replace("≈ ", "")));
    renderAnswer(content || "The reader found no answer in these pages.", final.citations || []);
    renderCitations(final.citations || []);
    $("found").replaceChildren();
    this.done = true;
    loadAnswers();
  }

  fail(message) {
    clearInterval(this.tick);
    setStatus(message, { error: true });
    this.done = true;
  }
}

let asking = null; // the port of the answer being streamed

function endAsking() {
  if (asking) asking.disconnect();
  asking = null;
  $("ask").hidden = false;
  $("stop").hidden = true;
}

async function ask() {
  const question = $("question").value.trim();
  if (!question || asking) return;
  const scope = document.querySelector("input[name=scope]:checked").value;
  const tab = await activeTab();
  $("answer").textContent = "";
  $("citations").replaceChildren();
  $("found").replaceChildren();
  $("ask").hidden = true;
  $("stop").hidden = false;
  const live = new LiveAnswer();
  asking = chrome.runtime.connect({ name: "ask" });
  asking.onMessage.addListener((message) => {
    if (message.event) live.on(message.event);
    if (message.error) live.fail(message.error);
    if (message.done && !live.done) live.fail("The server ended the answer early.");
    if (message.error || message.done) endAsking();
  });
  asking.onDisconnect.addListener(() => { if (!live.done) live.fail("The connection to the extension was lost."); endAsking(); });
  asking.postMessage({ question, scope, url: tab ? tab.url : "" });
  $("stop").onclick = () => { live.fail(`Stopped after ${live.seconds()} s.`); endAsking(); };
}

// ---------------------------------------------------------------- saved pages

function pageItem(page) {
  const date = new Date(page.created * 1000).toLocaleDateString();
  let host = page.url;
  try { host = new URL(page.url).host; } catch (_) { /* keep the address */ }
  const state = page.status === "error" ? `failed: ${page.error || ""}` : page.status;
  const remove = el("button", { type: "button", class: "delete", title: "Delete from the library", "aria-label": `Delete ${page.title || page.url}` }, "✕");
  remove.addEventListener("click", () => deletePage(remove, page));
  return el("li", { "data-id": page.id },
    el("div", { class: "info" },
      el("div", { class: "title", title: page.url }, page.title || page.url),
      el("div", { class: "meta", "data-status": page.status }, `${host} · ${date} · `, el("span", { class: "state" }, state))),
    remove);
}

let refresh = 0;

async function loadPages() {
  clearTimeout(refresh);
  try {
    const pages = await send({ type: "listPages", q: $("page-search").value.trim() });
    $("pages").replaceChildren(...pages.map(pageItem));
    $("no-pages").hidden = pages.length > 0;
    if (pages.some((p) => p.status === "pending" || p.status === "ingesting")) refresh = setTimeout(loadPages, 1500);
  } catch (err) {
    $("pages").replaceChildren();
    $("no-pages").hidden = false;
    $("no-pages").textContent = err.message;
  }
}

// A first click arms a delete button (true once armed), a second one deletes.
function confirmed(button) {
  if (button.classList.contains("armed")) return true;
  button.classList.add("armed");
  button.textContent = "Delete?";
  setTimeout(() => { button.classList.remove("armed"); button.textContent = "✕"; }, 3000);
  return false;
}

async function deletePage(button, page) {
  if (!confirmed(button)) return;
  try {
    await send({ type: "deletePage", id: page.id });
    setStatus(`Deleted: ${page.title || page.url}`);
  } catch (err) {
    setStatus(err.message, { error: true });
  }
  loadPages();
}

// ---------------------------------------------------------------- earlier answers

const HISTORY_SHOWN = 20;

function answerItem(chat) {
  const when = new Date(chat.updated * 1000).toLocaleString([], { dateStyle: "short", timeStyle: "short" });
  const open = el("button", { type: "button", class: "open", title: "Show this answer again" },
    el("span", { class: "title" }, chat.title || "Untitled"), el("span", { class: "meta" }, when));
  open.addEventListener("click", () => showEarlier(chat));
  const remove = el("button", { type: "button", class: "delete", title: "Delete this answer", "aria-label": `Delete ${chat.title}` }, "✕");
  remove.addEventListener("click", () => deleteAnswer(remove, chat));
  return el("li", { "data-id": chat.id }, open, remove);
}

async function loadAnswers() {
  try {
    const chats = await send({ type: "listAnswers" });
    $("answers").replaceChildren(...chats.slice(0, HISTORY_SHOWN).map(answerItem));
    $("no-answers").hidden = chats.length > 0;
  } catch (err) {
    $("answers").replaceChildren();
    $("no-answers").hidden = false;
    $("no-answers").textContent = err.message;
  }
}

// An earlier question and the last answer it got, with its citations.
async function showEarlier(chat) {
  if (asking) return;
  try {
    const messages = (await send({ type: "getAnswer", id: chat.id })).messages;
    const question = messages.filter((m) => m.role === "user").pop();
    const answer = messages.filter((m) => m.role === "assistant").pop();
    const citations = (answer && answer.extra && answer.extra.citations) || [];
    $("question").value = question ? question.content : "";
    $("found").replaceChildren();
    renderAnswer((answer && answer.content) || "No answer was kept for this question.", citations);
    renderCitations(citations);
    setStatus(`Answered ${new Date(chat.updated * 1000).toLocaleString()}`);
    document.querySelectorAll("#answers li").forEach((li) => li.classList.toggle("current", li.dataset.id === chat.id));
  } catch (err) {
    setStatus(err.message, { error: true });
  }
}

async function deleteAnswer(button, chat) {
  if (!confirmed(button)) return;
  try {
    await send({ type: "deleteAnswer", id: chat.id });
    setStatus(`Deleted the answer to: ${chat.title}`);
  } catch (err) {
    setStatus(err.message, { error: true });
  }
  loadAnswers();
}

// ---------------------------------------------------------------- wiring

$("add").addEventListener("click", async () => {
  setStatus("Adding…", { busy: true });
  try {
    const page = await send({ type: "addActiveTab" });
    setStatus(`Added: ${page.title || page.url}`);
  } catch (err) {
    setStatus(err.message, { error: true });
  }
  loadPages();
});
$("ask").addEventListener("click", ask);
$("question").addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); ask(); }
});
let searchTimer = 0;
$("page-search").addEventListener("input", () => { clearTimeout(searchTimer); searchTimer = setTimeout(loadPages, 200); });
loadPages();
loadAnswers();
