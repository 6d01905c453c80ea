"use strict";
// Lector chat page: plain JS, no build. Talks to the JSON/SSE API with the access token.

const $ = (sel) => document.querySelector(sel);
const state = {
  session: null, // the open chat, as GET /api/sessions/{id} gives it; null for a new chat not yet created
  creating: null, // the pending creation of that chat
  running: false,
  sessions: [],
  uploads: new Set(), // uploads and ingestions still running in this chat
  stopWaiting: null, // while a question waits for them: call to give up waiting
  editing: null, // the question being edited (its bubble), while it is
  truncateApi: true, // false once the server has shown it cannot drop messages
  modelLoaded: undefined, // whether /api/status says the model is ready, when it says
  passageApi: true, // false once the server has shown it has no GET /api/passage
  fileApi: true, // false once it has shown it has no GET /api/documents/{id}/file
  librarySearch: 0,
  chatSearch: 0,
  found: null, // the chats the server found for the search box: { query, sessions }
};

// ---------------------------------------------------------------- access token

const TOKEN_KEY = "lector-token";

function takeTokenFromUrl() {
  const params = new URLSearchParams(location.search);
  if (!params.get("token")) return;
  sessionStorage.setItem(TOKEN_KEY, params.get("token"));
  params.delete("token");
  const query = params.toString();
  history.replaceState(null, "", location.pathname + (query ? `?${query}` : "") + location.hash);
}

takeTokenFromUrl();
let TOKEN = sessionStorage.getItem(TOKEN_KEY) || localStorage.getItem(TOKEN_KEY) || "";

function headers(extra = {}) {
  return { Authorization: `Bearer ${TOKEN}`, ...extra };
}

function askForToken(message) {
  $("#token-error").textContent = message && TOKEN ? "That token was not accepted. Paste the current one." : "";
  const dialog = $("#token-dialog");
  if (!dialog.open) dialog.showModal();
  $("#token-input").focus();
}

async function submitToken(event) {
  event.preventDefault();
  const candidate = $("#token-input").value.trim();
  const res = await fetch("/api/sessions", { headers: { Authorization: `Bearer ${candidate}` } }).catch(() => null);
  if (!res || !res.ok) {
    $("#token-error").textContent = res ? "That token was not accepted." : "Could not reach the Lector server.";
    return;
  }
  TOKEN = candidate;
  sessionStorage.setItem(TOKEN_KEY, TOKEN);
  if ($("#token-remember").checked) localStorage.setItem(TOKEN_KEY, TOKEN);
  $("#token-dialog").close();
  start();
}

// ---------------------------------------------------------------- API

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

const UNREACHABLE = "Could not reach the Lector server. Is `lector serve` still running?";

// Server messages may name internal paths (an upload folder): show only the file's name.
function plainError(message) {
  return String(message).replace(/(?<![\w:./\\])(?:[A-Za-z]:)?[\\/](?:[^\s\\/'"]+[\\/])+([^\s\\/'"]+)/g, "$1");
}

async function errorOf(res) {
  let message = `${res.status} ${res.statusText}`;
  try { message = (await res.json()).error.message; } catch (_) { /* not JSON */ }
  if (res.status === 401) askForToken(message);
  return new ApiError(res.status, plainError(message));
}

async function request(path, options = {}) {
  try {
    return await fetch(path, { ...options, headers: headers(options.headers || {}) });
  } catch (_) {
    throw new ApiError(0, UNREACHABLE);
  }
}

// A 404 or 405 from a server without this route (not one saying that a document or chat does not exist).
async function routeMissing(res) {
  if (!res || (res.status !== 404 && res.status !== 405)) return false;
  const body = await res.clone().json().catch(() => ({}));
  return !(body.error && /^no /.test(body.error.message || ""));
}

async function api(path, options = {}) {
  const res = await request(path, options);
  if (!res.ok) throw await errorOf(res);
  return res.status === 204 ? null : res.json();
}

function jsonBody(method, body) {
  return { method, headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
}

async function* readSSE(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const frame = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const data = frame.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n");
      if (data) yield JSON.parse(data);
    }
  }
}

// ---------------------------------------------------------------- banner

// `a command` in a message shows as code; the rest stays plain text (messages can quote what the server said).
function withCode(text) {
  const parts = String(text).split("`");
  if (parts.length % 2 === 0) return [text];
  return parts.map((part, i) => (i % 2 ? el("code", {}, part) : part));
}

function showBanner(message, retry, label = "Retry") {
  $("#banner-text").replaceChildren(...withCode(message));
  $("#banner").hidden = !message;
  const button = $("#banner-retry");
  button.hidden = !retry;
  button.textContent = label;
  button.onclick = retry ? () => { hideBanner(); retry(); } : null;
}

function hideBanner() {
  showBanner("");
}

// ---------------------------------------------------------------- DOM helpers

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function fileName(path) {
  return String(path || "").split(/[\\/]/).pop();
}

function seconds(ms) {
  return `${(ms / 1000).toFixed(1)} s`;
}

async function copyText(text, button) {
  try {
    await navigator.clipboard.writeText(text);
  } catch (_) {
    const area = el("textarea", {}, text);
    document.body.append(area);
    area.select();
    document.execCommand("copy");
    area.remove();
  }
  const label = button.textContent;
  button.textContent = "Copied";
  setTimeout(() => { button.textContent = label; }, 1200);
}

function copyButton(getText, label = "Copy") {
  const button = el("button", { type: "button", class: "copy", title: "Copy to the clipboard" }, label);
  button.addEventListener("click", () => copyText(getText(), button));
  return button;
}

function nearEnd(box) {
  return box.scrollHeight - box.scrollTop - box.clientHeight < 200;
}

// Follow a streaming answer only while the person has not scrolled up to read something else.
function scrollToEnd() {
  const box = $("#messages");
  if (nearEnd(box)) box.scrollTop = box.scrollHeight;
  $("#to-bottom").hidden = nearEnd(box);
}

// ---------------------------------------------------------------- markdown, code and math

// What the model writes is untrusted (a fetched page or a document can inject it). It must neither run script
// nor make the browser fetch anything by itself: no <style>, no style attributes, no media, and an image that
// is not a data: URL becomes a link the person may click. The server's Content-Security-Policy backs this up.
const PURIFY = {
  FORBID_TAGS: ["style", "link", "meta", "base", "image", "video", "audio", "source", "track", "picture",
    "iframe", "frame", "object", "embed", "form", "input", "button", "textarea", "select", "svg", "math"],
  FORBID_ATTR: ["style", "srcset", "poster", "background", "formaction", "action", "ping", "lowsrc", "dynsrc"],
  ALLOW_DATA_ATTR: false,
  RETURN_DOM_FRAGMENT: true,
};
const DATA_IMAGE = /^data:image\/(png|jpeg|gif|webp);base64,/i;

// Runs inside the sanitiser, before any node reaches the page: a remote image loses its src at once.
DOMPurify.addHook("afterSanitizeAttributes", (node) => {
  if (node.tagName === "IMG") {
    const src = node.getAttribute("src") || "";
    if (!DATA_IMAGE.test(src)) {
      node.removeAttribute("src");
      node.setAttribute("data-remote-src", src);
    }
  } else if (node.tagName === "A") {
    node.setAttribute("rel", "noopener noreferrer nofollow");
    node.setAttribute("target", "_blank");
    node.setAttribute("referrerpolicy", "no-referrer");
  }
});

// Math is cut out before markdown (which would eat its backslashes and underscores) and put back, rendered by
// KaTeX from its text, after sanitising. Code spans and fences keep their dollars.
const CODE_PARTS = /(```[\s\S]*?(?:```|$)|`[^`\n]*`)/;
const MATH = /\$\$([\s\S]+?)\$\$|\\\[([\s\S]+?)\\\]|\\\(([\s\S]+?)\\\)|\$(?=[^\s$])([^$\n]*?[^\s\\$])\$(?!\d)/g;
const MATH_MARK = /\uE000(\d+)\uE001/g;

function protectMath(text) {
  const maths = [];
  const parts = text.split(CODE_PARTS).map((part, i) => (i % 2 ? part : part.replace(MATH, (whole, d1, d2, i1, i2) => {
    maths.push({ tex: d1 || d2 || i1 || i2, display: Boolean(d1 || d2), whole });
    return `\uE000${maths.length - 1}\uE001`;
  })));
  return { text: parts.join(""), maths };
}

function mathNode(math) {
  if (typeof katex === "undefined") return document.createTextNode(math.whole);
  const span = el("span", { class: math.display ? "math display" : "math" });
  katex.render(math.tex, span, { displayMode: math.display, throwOnError: false, trust: false, strict: "ignore" });
  return span;
}

function textNodes(root, test) {
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  const found = [];
  while (walker.nextNode()) if (test(walker.currentNode)) found.push(walker.currentNode);
  return found;
}

// Replace each match of `pattern` in the text nodes under `root` by what `make(match, node)` returns.
function replaceInText(root, pattern, make, skip = "code, pre, a, button") {
  const skipped = (n) => Boolean(skip) && n.parentElement.closest(skip);
  for (const node of textNodes(root, (n) => n.data.search(pattern) >= 0 && !skipped(n))) {
    const pieces = [];
    let last = 0;
    for (const match of node.data.matchAll(pattern)) {
      pieces.push(node.data.slice(last, match.index), make(match, node));
      last = match.index + match[0].length;
    }
    pieces.push(node.data.slice(last));
    node.replaceWith(...pieces.filter((p) => p !== ""));
  }
}

function codeBlock(code, language) {
  const node = el("code", language ? { class: `language-${language}` } : {});
  node.textContent = code;
  const pre = el("pre", {}, node);
  decorateCode(pre);
  return pre;
}

// Highlighting reads the code's text and writes escaped markup: it runs on sanitised nodes only.
function decorateCode(pre, highlight = true) {
  const code = pre.querySelector("code") || pre;
  if (highlight && typeof hljs !== "undefined" && code.tagName === "CODE") hljs.highlightElement(code);
  pre.classList.add("code");
  pre.append(copyButton(() => code.textContent));
}

// `highlight` false while an answer streams: code is coloured once, when its text is complete.
function renderMarkdown(node, text, highlight = true) {
  const { text: source, maths } = protectMath(text || "");
  const fragment = DOMPurify.sanitize(marked.parse(source), PURIFY);
  for (const img of fragment.querySelectorAll("img[data-remote-src]")) {
    const href = img.getAttribute("data-remote-src");
    const link = el("a", { href, rel: "noopener noreferrer nofollow", target: "_blank", referrerpolicy: "no-referrer" },
      `image: ${img.getAttribute("alt") || href}`);
    img.replaceWith(link);
  }
  for (const pre of fragment.querySelectorAll("pre")) decorateCode(pre, highlight);
  replaceInText(fragment, MATH_MARK, (m, at) => {
    const math = maths[m[1]];
    if (!math) return m[0];
    return at.parentElement.closest("code, pre") ? math.whole : mathNode(math);
  }, "");
  node.replaceChildren(fragment);
}

// ---------------------------------------------------------------- citations

const CITE_MARK = /\[(\d+(?:\s*,\s*\d+)*)\]/g;

function whereOf(c) {
  return c.page ? `page ${c.page}` : `passage ${c.chunk_id + 1}`;
}

function citeButton(citations, n) {
  const c = citations[n - 1];
  if (!c) return `[${n}]`;
  const where = `${fileName(c.source)}, ${whereOf(c)}`;
  return el("button", { type: "button", class: "cite-ref", title: where, "aria-label": `Source ${n}: ${where}`,
    onclick: () => openSource(c) }, `${n}`);
}

// Every [n] (or [n, m]) in the answer becomes a button opening the cited passage.
function linkCitations(root, citations) {
  if (!citations || !citations.length) return;
  replaceInText(root, CITE_MARK, (m) => {
    const span = el("span", { class: "cite-group" });
    for (const n of m[1].split(",")) span.append(citeButton(citations, Number(n.trim())));
    return span;
  });
}

function renderCitations(parent, citations) {
  if (!citations || !citations.length) return;
  const bar = el("div", { class: "citations" }, "Sources: ");
  citations.forEach((c, i) => {
    bar.append(el("button", { type: "button", class: "citation", onclick: () => openSource(c) },
      `[${i + 1}] ${fileName(c.source)}, ${whereOf(c)}`));
  });
  parent.append(bar);
}

// The passage with its surroundings, when the server offers them (GET /api/passage); else the quote alone.
async function passageContext(c) {
  if (!state.passageApi) return null;
  const query = new URLSearchParams(c.doc_id ? { doc_id: c.doc_id, start: c.start, end: c.end }
    : { source: c.source, start: c.start, end: c.end });
  const res = await request(`/api/passage?${query}`).catch(() => null);
  if (await routeMissing(res)) state.passageApi = false;
  return res && res.ok ? res.json() : null;
}

// A saved web page opens at the quote: the browser scrolls to and highlights a #:~:text= fragment.
function pageAddress(c) {
  if (!/^https?:\/\//i.test(c.source)) return null;
  const words = c.text.trim().split(/\s+/);
  const fragment = words.length > 8 ? `${words.slice(0, 4).join(" ")},${words.slice(-4).join(" ")}` : words.join(" ");
  return `${c.source.split("#")[0]}#:~:text=${fragment.split(",").map(encodeURIComponent).join(",")}`;
}

async function openSource(c) {
  const address = pageAddress(c);
  $("#source-open").hidden = !address;
  if (address) $("#source-open").href = address;
  $("#source-title").textContent = fileName(c.source);
  $("#source-where").textContent = `${whereOf(c)} · characters ${c.start}–${c.end}`;
  const mark = el("mark", {}, c.text);
  $("#source-text").replaceChildren(mark);
  $("#source-pdf").hidden = true;
  $("#source").showModal();
  const [context, pdf] = await Promise.all([passageContext(c), pdfOf(c)]);
  if (context) {
    $("#source-text").replaceChildren(context.before || "", mark, context.after || "");
    mark.scrollIntoView({ block: "center" });
  }
  if (pdf) await showPdfPage(pdf, c).catch((err) => { $("#source-pdf").hidden = true; console.warn("PDF viewer:", err); });
}

// ---------------------------------------------------------------- PDF viewer (vendored pdf.js)

let pdfjs = null;

async function loadPdfjs() {
  if (!pdfjs) {
    pdfjs = await import("/static/vendor/pdfjs/pdf.min.mjs");
    pdfjs.GlobalWorkerOptions.workerSrc = "/static/vendor/pdfjs/pdf.worker.min.mjs";
  }
  return pdfjs;
}

function documentOf(c) {
  const docs = (state.session && state.session.documents) || [];
  return (c.doc_id && docs.find((d) => d.doc_id === c.doc_id)) || docs.find((d) => d.filename === fileName(c.source)) || null;
}

// The original PDF of a citation, when the server offers it (GET /api/documents/{id}/file).
async function pdfOf(c) {
  const doc = documentOf(c);
  if (!state.fileApi || !doc || !/\.pdf$/i.test(doc.filename)) return null;
  const res = await request(`/api/documents/${doc.id}/file`).catch(() => null);
  if (await routeMissing(res)) state.fileApi = false;
  return res && res.ok ? new Uint8Array(await res.arrayBuffer()) : null;
}

async function renderPdfPage(page, box) {
  const scale = (box.clientWidth || 700) / page.getViewport({ scale: 1 }).width;
  const viewport = page.getViewport({ scale });
  const ratio = window.devicePixelRatio || 1;
  const canvas = el("canvas", { width: Math.floor(viewport.width * ratio), height: Math.floor(viewport.height * ratio) });
  canvas.style.width = `${viewport.width}px`;
  canvas.style.height = `${viewport.height}px`;
  const layer = el("div", { class: "textLayer" });
  layer.style.setProperty("--total-scale-factor", String(scale));
  box.replaceChildren(canvas, layer);
  const transform = ratio === 1 ? null : [ratio, 0, 0, ratio, 0, 0];
  await page.render({ canvasContext: canvas.getContext("2d"), viewport, transform }).promise;
  return { layer, viewport };
}

async function showPdfPage(data, c) {
  const lib = await loadPdfjs();
  const pdf = await lib.getDocument({ data, isEvalSupported: false }).promise;
  const number = Math.min(Math.max(1, c.page || 1), pdf.numPages);
  const page = await pdf.getPage(number);
  const box = $("#source-pdf");
  box.hidden = false;
  const { layer, viewport } = await renderPdfPage(page, box);
  const text = new lib.TextLayer({ textContentSource: page.streamTextContent(), container: layer, viewport });
  await text.render();
  const hits = markQuote(text.textDivs, c.text);
  $("#source-where").textContent = `page ${number} of ${pdf.numPages} · ${hits.length ? "the quote is highlighted" : "quote not found on this page"}`;
  if (hits.length) hits[0].scrollIntoView({ block: "center" });
}

// Where the quote is in the page's text: whole, or (when it runs over a page break) its start or its end.
function findQuote(all, wanted) {
  const probes = [wanted, wanted.slice(0, 40), wanted.slice(-40)].filter(Boolean);
  for (const probe of probes) {
    const at = all.indexOf(probe);
    if (at >= 0) return [at, probe.length];
  }
  return [-1, 0];
}

// Mark the text-layer spans that hold the quote, comparing letters only (PDF text splits and spaces oddly).
function markQuote(spans, quote) {
  const squash = (t) => t.replace(/\s+/g, "").toLowerCase();
  const ranges = [];
  let all = "";
  for (const span of spans) {
    const start = all.length;
    all += squash(span.textContent);
    ranges.push([span, start, all.length]);
  }
  const [at, length] = findQuote(all, squash(quote));
  if (at < 0) return [];
  const hits = ranges.filter(([, start, end]) => end > at && start < at + length).map(([span]) => span);
  for (const span of hits) span.classList.add("quote-hit");
  return hits;
}

// ---------------------------------------------------------------- messages

function messageBox(role) {
  $("#welcome").hidden = true;
  const body = el("div", { class: "body" });
  const actions = el("div", { class: "actions" });
  const box = el("div", { class: `msg ${role}` }, el("div", { class: "role" }, role === "user" ? "You" : "Lector"),
    body, actions);
  $("#messages").append(box);
  box.scrollIntoView({ block: "end" });
  return { box, body, actions };
}

function userMessage(text, id) {
  const msg = messageBox("user");
  if (id) msg.box.dataset.id = id;
  msg.body.textContent = text;
  msg.actions.append(copyButton(() => text), el("button", { type: "button", class: "edit", title: "Edit this question and send it again",
    onclick: () => startEdit(msg.box, text) }, "Edit"));
  return msg;
}

const TOOL_TITLES = { code_interpreter: "Python", calculator: "calculator", web_fetch: "web page", web_search: "web search" };

function parseArguments(raw) {
  try { return JSON.parse(raw); } catch (_) { return null; }
}

function toolBlock(parent, name, rawArgs) {
  const args = parseArguments(rawArgs);
  const summary = el("summary", {}, `${name} · running…`);
  const details = el("details", { class: "tool" }, summary);
  if (args && typeof args.code === "string") {
    details.append(el("div", { class: "tool-label" }, `${TOOL_TITLES[name] || name} code`), codeBlock(args.code, "python"));
    details.open = true;
  } else {
    const shown = args && typeof args === "object" ? JSON.stringify(args, null, 2) : rawArgs;
    details.append(el("div", { class: "tool-label" }, "input"), el("pre", { class: "args" }, shown));
  }
  const result = el("pre", { class: "result" }, "running…");
  details.append(el("div", { class: "tool-label" }, "output"), result);
  parent.append(details);
  return { details, result, summary, name, parent };
}

function finishTool(block, event) {
  block.result.textContent = event.content;
  if (event.error) block.details.classList.add("error");
  const took = typeof event.elapsed === "number" ? ` in ${event.elapsed.toFixed(2)} s` : "";
  block.summary.textContent = `${block.name} · ${event.error ? "failed" : `done${took}`}`;
  for (const src of event.images || []) {
    if (!DATA_IMAGE.test(src)) continue;
    const figure = el("figure", { class: "tool-figure" }, el("img", { src, alt: `figure made by ${block.name}` }));
    block.details.after(figure);
  }
}

function stepBlock(parent, title) {
  const result = el("div", { class: "result" }, "reading…");
  const summary = el("summary", {}, title);
  const details = el("details", { class: "tool sub", open: "" }, summary, result);
  parent.append(details);
  return { details, result, summary, title, read: 0, quotes: 0 };
}

function askAgainButton(questionBox, question) {
  return el("button", { type: "button", class: "regenerate", title: "Ask the same question again",
    onclick: () => askAgain(questionBox, question) }, "Ask again");
}

// `rate`: how fast the model wrote (tokens/s while writing, not while it read prompts or ran tools), 0 when unknown.
// A document answer's own writing time (`writing_s`, measured by the server over every call) counts its JSON too,
// which the page never sees, so it is the better measure where the server sends it.
function usageLine(final, elapsedMs, rate) {
  const u = final.usage || {};
  if (final.writing_s > 0.3 && u.completion_tokens) rate = u.completion_tokens / final.writing_s;
  const parts = [];
  if (final.stopped_reason && final.stopped_reason !== "done") parts.push(final.stopped_reason);
  if (u.prompt_tokens || u.completion_tokens) parts.push(`${u.prompt_tokens || 0} prompt + ${u.completion_tokens || 0} completion tokens`);
  if (elapsedMs) parts.push(seconds(elapsedMs));
  if (rate > 0) parts.push(`${rate.toFixed(1)} tok/s`);
  return el("div", { class: "usage" }, parts.join(" · ") || "no tokens counted");
}

// A pause between two pieces longer than this is the model reading a prompt or a tool running, not writing.
const WRITING_GAP_MS = 1500;

function emptyAnswerSentence(final, ranTools) {
  if (final.stopped_reason === "cancelled") return "Stopped before any answer was written.";
  if (ranTools) return "The model ran the tools above but wrote no answer. Press Retry to ask again.";
  return "The model finished without writing an answer. Press Retry to ask again, or rephrase the question.";
}

// ---------------------------------------------------------------- one live answer

class AnswerView {
  constructor(question, questionBox) {
    this.question = question;
    this.questionBox = questionBox;
    this.msg = messageBox("assistant");
    this.status = el("div", { class: "live-status", role: "status" });
    this.msg.box.insertBefore(this.status, this.msg.body);
    this.textNode = null;
    this.buffer = "";
    this.fullText = "";
    this.tools = {};
    this.deltas = 0;
    this.sent = performance.now();
    this.firstText = 0;
    this.lastText = 0;
    this.writingMs = 0;
    this.gaps = 0;
    this.activity = "Sending your question…";
    this.renderTimer = 0;
    this.clock = setInterval(() => this.paintStatus(), 200);
    this.paintStatus();
  }

  setActivity(text) {
    this.activity = text;
    this.beforePrompt = undefined;
    this.paintStatus();
  }

  // While the model reads a long prompt; what it did before comes back once it writes.
  promptProgress(e) {
    const before = this.beforePrompt === undefined ? this.activity : this.beforePrompt;
    this.setActivity(`Reading the prompt: ${Math.round((100 * e.done) / Math.max(1, e.total))} %`);
    this.beforePrompt = before;
  }

  promptRead() {
    if (this.beforePrompt !== undefined) this.setActivity(this.beforePrompt);
  }

  paintStatus() {
    const now = performance.now();
    const parts = [this.activity, seconds(now - this.sent)];
    if (this.writingMs > 300) parts.push(`≈ ${this.rate().toFixed(1)} tok/s`);
    this.status.textContent = parts.join(" · ");
  }

  // Pieces written per second, counting only the time spent writing (each piece is about one token).
  rate() {
    return this.gaps / (this.writingMs / 1000);
  }

  appendText(text) {
    if (!this.textNode) {
      this.textNode = el("div", { class: "text" });
      this.msg.body.append(this.textNode);
      this.buffer = "";
    }
    const now = performance.now();
    if (!this.firstText) this.firstText = now;
    if (this.lastText && now - this.lastText < WRITING_GAP_MS) {
      this.writingMs += now - this.lastText;
      this.gaps += 1;
    }
    this.lastText = now;
    this.deltas += 1;
    this.buffer += text;
    this.fullText += text;
    this.dirty = true;
    this.complete = false;
    this.activity = "Writing…";
    if (!this.renderTimer) this.renderTimer = setTimeout(() => this.flush(), 40);
  }

  // A document answer while it is written (the chat stream sends it in `draft` pieces); the final text replaces it.
  draft(event) {
    if (event.reset) this.resetText();
    this.drafted = true;
    if (event.text) this.appendText(event.text);
  }

  resetText() {
    clearTimeout(this.renderTimer);
    this.renderTimer = 0;
    if (this.textNode) this.textNode.remove();
    this.textNode = null;
    this.buffer = "";
    this.fullText = "";
  }

  // `complete`: the text so far is all this part will get, so render it in full (with highlighted code).
  flush(complete = false) {
    clearTimeout(this.renderTimer);
    this.renderTimer = 0;
    if (!this.textNode || (!this.dirty && (!complete || this.complete))) return;
    this.dirty = false;
    this.complete = complete;
    renderMarkdown(this.textNode, this.buffer, complete);
    scrollToEnd();
  }

  startTool(event) {
    this.flush(true);
    this.textNode = null;
    this.tools[event.call_id] = toolBlock(this.msg.body, event.name, event.arguments);
    this.setActivity(`Running ${TOOL_TITLES[event.name] || event.name}…`);
  }

  finishTool(event) {
    const block = this.tools[event.call_id];
    if (block) finishTool(block, event);
    this.setActivity(event.error ? `${event.name} failed; the model is reading the error…` : "Reading the result…");
  }

  note(text) {
    this.msg.body.append(el("div", { class: "level-note" }, text));
  }

  findings() {
    if (!this.reading) {
      this.reading = { count: 0, quotes: 0, list: el("div", { class: "quotes" }), summary: el("summary", {}) };
      this.msg.body.append(el("details", { class: "tool reading", open: "" }, this.reading.summary, this.reading.list));
    }
    return this.reading;
  }

  chunkRead(event) {
    const found = this.findings();
    found.count += 1;
    found.quotes += event.quotes.length;
    for (const quote of event.quotes) found.list.append(el("blockquote", {}, quote, el("cite", {}, ` — ${fileName(event.source)}`)));
    const sub = event.sub && this.tools[`sub-${event.sub}`];
    if (sub) { // Level 3: each sub-question counts the passages read for it, of those it chose
      sub.read += 1;
      sub.quotes += event.quotes.length;
      const of = event.total ? ` of ${event.total}` : "";
      sub.summary.textContent = `${sub.title} · read ${sub.read}${of} passage${(event.total || sub.read) > 1 ? "s" : ""}, ${sub.quotes} verified quote${sub.quotes === 1 ? "" : "s"}`;
    }
    const of = event.total && !event.sub ? ` of ${event.total}` : "";
    found.summary.textContent = `Read ${found.count}${of} passage${((!event.sub && event.total) || found.count) > 1 ? "s" : ""}, ${found.quotes} verified quote${found.quotes === 1 ? "" : "s"}`;
  }

  subQuestion(event) {
    this.tools[`sub-${event.index}`] = stepBlock(this.msg.body, `Sub-question ${event.index}: ${event.question}`);
    this.setActivity(`Answering sub-question ${event.index}…`);
  }

  subAnswer(event) {
    const block = this.tools[`sub-${event.index}`];
    if (!block) return;
    const found = event.found !== false;
    block.result.textContent = found ? event.answer : `Not found: ${event.answer}`;
    if (!found) block.details.classList.add("error");
    linkCitations(block.result, event.citations);
    renderCitations(block.details, event.citations);
  }

  finish(final) {
    this.final = final;
    const content = final.message && final.message.content;
    if (!this.textNode && content) this.appendText(content);
    this.flush(true);
    if (!this.fullText.trim() && !this.failed) this.msg.body.append(el("p", { class: "empty-answer" }, emptyAnswerSentence(final, Object.keys(this.tools).length)));
    if (this.textNode) linkCitations(this.textNode, final.citations);
    renderCitations(this.msg.body, final.citations);
    this.msg.body.append(usageLine(final, performance.now() - this.sent, this.writingMs > 300 ? this.rate() : 0));
  }

  fail(message) {
    this.failed = plainError(message);
    this.msg.body.append(el("p", { class: "error-note" }, this.failed));
  }

  end() {
    clearInterval(this.clock);
    this.flush(true);
    this.status.remove();
    const text = this.fullText;
    if (text) this.msg.actions.append(copyButton(() => text));
    this.msg.actions.append(askAgainButton(this.questionBox, this.question));
    scrollToEnd(); // what the end added (an error, the sources, the usage line) is seen without scrolling
  }
}

// "Reading passage 3 of 8 in keeper.txt…"; "passages 5–8" when the model reads several at once.
function readingText(e) {
  const which = e.first === e.last ? `passage ${e.first}` : `passages ${e.first}–${e.last}`;
  const names = (e.sources || []).map(fileName);
  const where = names.length === 1 ? ` in ${names[0]}` : names.length > 1 ? ` in ${names.length} documents` : "";
  return `Reading ${which} of ${e.total}${where}…`;
}

const LEVEL_WORDS = { 0: "the whole document", 1: "quick look-up", 2: "careful reading", 3: "step by step" };

const MODEL_WAIT = {
  true: "Waiting for the model…",
  false: "Loading the model (the first answer takes longer)…",
  undefined: "Waiting for the model (the first answer after the server starts also loads it)…",
};

const EVENT_HANDLERS = {
  ack: (view, e) => {
    if (e.message_id) view.questionBox.dataset.id = e.message_id;
    view.setActivity(MODEL_WAIT[state.modelLoaded]);
    if (state.modelLoaded === false) loadModelState();
  },
  status: (view, e) => view.setActivity(e.text || e.message || "Working…"),
  prompt_progress: (view, e) => view.promptProgress(e),
  step: (view, e) => {
    const thinking = e.final ? "Writing the final answer…" : `Thinking (step ${e.step})…`;
    if (state.modelLoaded === false) followModelLoad(view, thinking);
    else view.setActivity(thinking);
  },
  text: (view, e) => {
    view.promptRead();
    if (view.drafted) { view.resetText(); view.drafted = false; }
    view.appendText(e.text);
  },
  draft: (view, e) => { view.promptRead(); view.draft(e); },
  tool_call_started: (view, e) => view.startTool(e),
  tool_call_finished: (view, e) => view.finishTool(e),
  call_retried: (view, e) => view.note(`The model wrote a tool call that could not be used (${e.error}); it was asked to write it again.`),
  level: (view, e) => {
    const how = LEVEL_WORDS[e.level] || "reading";
    view.note(`Level ${e.level} (${how})${e.reason ? `: ${e.reason}` : ""}`);
    view.setActivity(`Reading your documents: ${how}…`);
  },
  reading: (view, e) => view.setActivity(e.sub ? `Sub-question ${e.sub}: ${readingText(e).replace(/^R/, "r")}` : readingText(e)),
  chunk_read: (view, e) => view.chunkRead(e),
  sub_question: (view, e) => view.subQuestion(e),
  sub_answer: (view, e) => view.subAnswer(e),
  final: (view, e) => { view.finish(e); state.modelLoaded = true; },
  error: (view, e) => view.fail(e.message),
};

// ---------------------------------------------------------------- sending

function setRunning(running) {
  state.running = running;
  $("#send").hidden = running;
  $("#stop").hidden = !running;
}

const STOPPED = Symbol("stopped");

async function waitForUploads(view) {
  if (!state.uploads.size) return;
  const reading = [...document.querySelectorAll(".doc[data-status=uploading] .name, .doc[data-status=ingesting] .name")];
  const names = reading.map((n) => n.textContent).join(", ");
  view.setActivity(`Waiting for ${names || "your documents"} to finish reading, so the answer can use ${reading.length > 1 ? "them" : "it"}…`);
  const stopped = new Promise((resolve) => { state.stopWaiting = resolve; });
  const outcome = await Promise.race([Promise.allSettled([...state.uploads]), stopped]);
  state.stopWaiting = null;
  if (outcome === STOPPED) throw new ApiError(-1, "Stopped before sending.");
}

async function openChatStream(session, text) {
  const res = await request(`/api/sessions/${session.id}/chat`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ content: text, settings: currentSettings() }),
  });
  if (!res.ok) throw await errorOf(res);
  return res;
}

// The message could not be sent: take its bubbles away and give the text back, so nothing typed is lost.
function unsend(question, view, text, err) {
  clearInterval(view.clock);
  question.box.remove();
  view.msg.box.remove();
  if (!$("#input").value) $("#input").value = text;
  if (err.status === 401 || err.status === -1) return;
  if (err.status === 409) showBanner(`${err.message} Your message is still in the box.`, () => stopThenSend(text), "Stop it and send");
  else showBanner(`${err.message} Your message is still in the box.`, () => send(text));
}

const CUT_OFF = "The connection to the Lector server was lost before the answer finished.";

async function streamAnswer(res, view, text) {
  let finished = false;
  try {
    for await (const event of readSSE(res)) {
      const handler = EVENT_HANDLERS[event.type];
      if (handler) handler(view, event);
      if (event.type === "final") finished = true;
    }
  } catch (err) {
    if (err instanceof TypeError) throw new ApiError(0, CUT_OFF);
    throw err;
  }
  if (view.failed) showBanner(view.failed, () => send(text));
  else if (!finished) throw new ApiError(0, CUT_OFF);
}

async function send(text) {
  if (!text || state.running) return;
  hideBanner();
  setRunning(true);
  const question = userMessage(text);
  const view = new AnswerView(text, question.box);
  let res = null;
  try {
    await waitForUploads(view);
    res = await openChatStream(await ensureSession(), text);
    loadSessions().catch(() => {});  // the server has just named a new chat after its first message
    if ($("#input").value === text) $("#input").value = "";  // sent at last from the banner's button
  } catch (err) {
    unsend(question, view, text, err);
    setRunning(false);
    return;
  }
  try {
    await streamAnswer(res, view, text);
  } catch (err) {
    view.fail(err.message || String(err));
    showBanner(view.failed, () => send(text));
  } finally {
    view.end();
    setRunning(false);
    loadSessions().catch(() => {});
  }
}

function stop() {
  if (state.stopWaiting) return state.stopWaiting(STOPPED);
  if (state.running && state.session) api(`/api/sessions/${state.session.id}/stop`, { method: "POST" }).catch(() => {});
}

// Another tab (or a reload) left an answer running in this chat: stop it, then send.
async function stopThenSend(text) {
  await api(`/api/sessions/${state.session.id}/stop`, { method: "POST" }).catch(() => {});
  await new Promise((resolve) => setTimeout(resolve, 500));
  send(text);
}

// ---------------------------------------------------------------- edit and ask again

// Drop a question and all that followed it, in the chat and on the page, where the server can
// (DELETE /api/sessions/{sid}/messages/{id}); elsewhere the question is simply asked again below.
async function dropFrom(box) {
  if (!state.session || !box.dataset.id || !state.truncateApi) return false;
  const res = await request(`/api/sessions/${state.session.id}/messages/${box.dataset.id}`, { method: "DELETE" }).catch(() => null);
  if (await routeMissing(res)) state.truncateApi = false;
  if (!res || !res.ok) return false;
  while (box.nextElementSibling) box.nextElementSibling.remove();
  box.remove();
  return true;
}

async function askAgain(box, question) {
  if (state.running) return;
  await dropFrom(box);
  send(question);
}

function startEdit(box, text) {
  state.editing = box;
  $("#editing").hidden = false;
  $("#input").value = text;
  $("#input").focus();
}

function cancelEdit() {
  state.editing = null;
  $("#editing").hidden = true;
}

async function submitQuestion(text) {
  const edited = state.editing;
  cancelEdit();
  if (edited) await dropFrom(edited);
  send(text);
}

// ---------------------------------------------------------------- settings (per chat)

const DEFAULT_SETTINGS = { model: "", level: "auto", system: "" };

function currentSettings() {
  return { model: $("#model").value || null, level: $("#level").value, system: $("#system").value.trim() || null };
}

function showSettings(settings) {
  const s = { ...DEFAULT_SETTINGS, ...settings };
  const model = s.model || "";
  if (model && ![...$("#model").options].some((o) => o.value === model)) $("#model").append(el("option", { value: model }, model));
  $("#model").value = model;
  $("#level").value = String(s.level);
  $("#system").value = s.system || "";
}

function saveSettings() {
  if (!state.session) return;
  api(`/api/sessions/${state.session.id}`, jsonBody("PATCH", { settings: currentSettings() }))
    .then((s) => { state.session.settings = s.settings; })
    .catch((err) => showBanner(`Settings not saved: ${err.message}`));
}

// Whether the model is loaded yet (GET /api/status), for the note shown while the first answer waits.
async function loadModelState() {
  const status = await api("/api/status").catch(() => null);
  const model = status && status.model;
  state.modelLoaded = model ? model.state === "ready" : undefined;
  if (model && model.state === "error") showBanner(`The model could not be loaded: ${plainError(model.message)}`);
}

// A step has begun while the model still loads: the loading note stays up (no word can come before the model is
// ready) until /api/status says it is ready, then the step is shown, unless something newer is already.
async function followModelLoad(view, next) {
  view.setActivity(MODEL_WAIT[false]);
  if (view.followingLoad) { view.afterLoad = next; return; }
  view.followingLoad = true;
  view.afterLoad = next;
  while (state.modelLoaded === false) {
    await new Promise((resolve) => setTimeout(resolve, 500));
    await loadModelState();
  }
  view.followingLoad = false;
  if (view.activity === MODEL_WAIT[false]) view.setActivity(view.afterLoad);
}

async function loadModels() {
  loadModelState();
  const { models, default: standard } = await api("/api/models");
  const select = $("#model");
  select.replaceChildren(el("option", { value: "" }, standard ? `The server's model (${standard})` : "The server's model"));
  for (const m of models) select.append(el("option", { value: m.id }, m.id));
}

// ---------------------------------------------------------------- sessions

function chatIdFromUrl() {
  return new URLSearchParams(location.search).get("chat") || location.hash.replace(/^#/, "") || null;
}

function setUrl(id) {
  const url = id ? `${location.pathname}?chat=${encodeURIComponent(id)}` : location.pathname;
  if (location.pathname + location.search !== url) history.pushState(null, "", url);
}

function setTitle(title) {
  $("#chat-title").textContent = title || "New chat";
  $("#export").hidden = !state.session;
  document.title = title ? `${title} · Lector` : "Lector";
}

async function loadSessions() {
  state.sessions = await api("/api/sessions");
  const current = state.session && state.sessions.find((s) => s.id === state.session.id);
  if (current) setTitle(current.title);
  renderSessions();
  return state.sessions;
}

// The search box filters by title at once, then by what the chats say once the server answers (GET /api/sessions?q=).
async function searchSessions() {
  const query = $("#chat-search").value.trim();
  const sessions = query ? await api(`/api/sessions?q=${encodeURIComponent(query)}`).catch(() => null) : null;
  state.found = sessions && { query, sessions };
  renderSessions();
}

function renderSessions() {
  const query = $("#chat-search").value.trim().toLowerCase();
  const found = state.found && state.found.query.toLowerCase() === query ? state.found.sessions.map((s) => s.id) : null;
  const shown = state.sessions.filter((s) => (found ? found.includes(s.id) : (s.title || "New chat").toLowerCase().includes(query)));
  $("#sessions").replaceChildren(...shown.map(sessionItem));
  $("#no-chats").hidden = shown.length > 0;
  $("#no-chats").textContent = query ? "No chat matches." : "No chats yet.";
}

function sessionItem(s) {
  const title = el("span", { class: "title" }, s.title || "New chat");
  const rename = el("button", { type: "button", class: "icon rename", title: "Rename", "aria-label": "Rename chat" }, "✎");
  const remove = el("button", { type: "button", class: "icon delete", title: "Delete", "aria-label": "Delete chat" }, "✕");
  const item = el("li", { "data-id": s.id, title: s.title || "New chat" }, title, rename, remove);
  if (state.session && s.id === state.session.id) item.classList.add("active");
  item.addEventListener("click", () => switchTo(s.id));
  rename.addEventListener("click", (e) => { e.stopPropagation(); startRename(title, s); });
  remove.addEventListener("click", (e) => { e.stopPropagation(); confirmDelete(remove, s); });
  return item;
}

function startRename(title, s) {
  const input = el("input", { class: "rename-input", value: s.title || "", "aria-label": "New name" });
  title.replaceWith(input);
  input.focus();
  input.select();
  let done = false;
  const finish = async (save) => {
    if (done) return;
    done = true;
    const name = input.value.trim();
    if (save && name && name !== s.title) {
      await api(`/api/sessions/${s.id}`, jsonBody("PATCH", { title: name })).catch((err) => showBanner(err.message));
      if (state.session && state.session.id === s.id) setTitle(name);
    }
    loadSessions().catch(() => {});
  };
  input.addEventListener("click", (e) => e.stopPropagation());
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter") finish(true);
    if (e.key === "Escape") { e.stopPropagation(); finish(false); }
  });
  input.addEventListener("blur", () => finish(true));
}

// A first click arms the button, a second one within a few seconds deletes: no modal, no accident.
async function confirmDelete(button, s) {
  if (!button.classList.contains("armed")) {
    button.classList.add("armed");
    button.textContent = "Delete?";
    setTimeout(() => { button.classList.remove("armed"); button.textContent = "✕"; }, 3000);
    return;
  }
  try {
    await api(`/api/sessions/${s.id}`, { method: "DELETE" });
  } catch (err) {
    showBanner(err.message);
  }
  if (state.session && state.session.id === s.id) newChat();
  loadSessions().catch(() => {});
}

async function switchTo(id) {
  closeSidebar();
  if (state.running) return showBanner("An answer is still running: stop it before switching chats.");
  setUrl(id);
  await openSession(id).catch((err) => showBanner(err.message, () => switchTo(id)));
}

function renderStored(messages) {
  let current = null;
  let question = "";
  let questionBox = null;
  const tools = {};
  for (const m of messages) {
    if (m.role === "user") { questionBox = userMessage(m.content, m.id).box; question = m.content; current = null; continue; }
    if (!current) current = { ...messageBox("assistant"), question, questionBox };
    if (m.role === "assistant") renderStoredAssistant(current, m, tools);
    else if (m.role === "tool" && tools[m.tool_call_id]) {
      const extra = m.extra || {};
      finishTool(tools[m.tool_call_id], { content: m.content, error: extra.error, images: extra.images });
    }
  }
}

function renderStoredAssistant(current, m, tools) {
  const extra = m.extra || {};
  for (const call of m.tool_calls) tools[call.id] = toolBlock(current.body, call.name, call.arguments);
  if (m.content) {
    const text = el("div", { class: "text" });
    current.body.append(text);
    renderMarkdown(text, m.content);
    linkCitations(text, extra.citations);
    current.actions.append(copyButton(() => m.content), askAgainButton(current.questionBox, current.question));
  } else if (!m.tool_calls.length) {
    current.body.append(el("p", { class: "empty-answer" }, "(no answer was written)"));
  }
  renderCitations(current.body, extra.citations);
}

async function openSession(id) {
  const session = await api(`/api/sessions/${id}`);
  state.session = session;
  cancelEdit();
  $("#messages").replaceChildren($("#welcome"));
  $("#welcome").hidden = session.messages.length > 0;
  showSettings(session.settings);
  setTitle(session.title);
  renderStored(session.messages);
  renderDocuments(session.documents);
  renderSessions();
}

function newChat() {
  if (state.running) return;
  state.session = null;
  cancelEdit();
  setUrl(null);
  setTitle("");
  $("#messages").replaceChildren($("#welcome"));
  $("#welcome").hidden = false;
  showSettings(DEFAULT_SETTINGS);
  renderDocuments([]);
  renderSessions();
  closeSidebar();
  $("#input").focus();
}

// Several uploads and a message may all need the chat at once: they share one creation.
function ensureSession() {
  if (state.session) return Promise.resolve(state.session);
  if (!state.creating) {
    state.creating = api("/api/sessions", jsonBody("POST", { settings: currentSettings() }))
      .then(async (s) => {
        state.session = { ...s, messages: [], documents: [] };
        setUrl(s.id);
        await loadSessions();
        return state.session;
      })
      .finally(() => { state.creating = null; });
  }
  return state.creating;
}

// ---------------------------------------------------------------- documents

const FORMATS = $("#file").accept.split(",");

function docChip(name, status) {
  const label = el("span", { class: "status" }, "");
  const bar = el("progress", { max: 100 });
  const remove = el("button", { type: "button", class: "icon remove", title: "Remove from this chat", "aria-label": `Remove ${name}` }, "×");
  const chip = el("span", { class: "doc", "data-status": status }, el("span", { class: "name" }, name), bar, label, remove);
  remove.addEventListener("click", () => removeChip(chip));
  $("#documents").append(chip);
  return { chip, bar, label };
}

// A chip of a document the server holds takes it out of the chat (DELETE /api/sessions/{sid}/documents/{id}).
async function removeChip(chip) {
  const id = chip.dataset.id;
  if (id && state.session) {
    const res = await request(`/api/sessions/${state.session.id}/documents/${id}`, { method: "DELETE" }).catch((err) => err);
    if (res instanceof Error || (!res.ok && res.status !== 404)) return showBanner(res instanceof Error ? res.message : (await errorOf(res)).message);
    state.session.documents = (state.session.documents || []).filter((d) => d.id !== id);
  }
  chip.remove();
}

function setChip(view, status, text, percent) {
  view.chip.dataset.status = status;
  view.label.textContent = text;
  if (percent === undefined) view.bar.removeAttribute("value");
  else view.bar.value = percent;
}

// A question sent while a document of its chat is still being read waits for it (see waitForUploads).
function track(job) {
  const tracked = job.catch(() => {});
  state.uploads.add(tracked);
  tracked.finally(() => state.uploads.delete(tracked));
}

function renderDocuments(documents) {
  $("#documents").replaceChildren();
  state.uploads.clear();
  for (const d of documents || []) {
    const view = docChip(d.filename, d.status);
    view.chip.dataset.id = d.id;
    if (d.status === "ready") setChip(view, "ready", "ready", 100);
    else if (d.status === "error") setChip(view, "error", `failed: ${plainError(d.error || "")}`, 0);
    else track(followIngest(view, d.id));
  }
}

// The chip says what the server is doing with the document and, past a second, for how long.
async function followIngest(view, did) {
  const started = performance.now();
  let detail = "";
  let percent;
  const paint = () => {
    const took = performance.now() - started;
    setChip(view, "ingesting", `reading…${detail}${took >= 1000 ? ` · ${Math.floor(took / 1000)} s` : ""}`, percent);
  };
  paint();
  const clock = setInterval(paint, 1000);
  try {
    const res = await request(`/api/documents/${did}/events`);
    for await (const event of readSSE(res)) {
      const p = event.progress || {};
      const share = p.percent === undefined ? "" : ` ${p.percent} % ·`;
      detail = p.chunks_total ? `${share} ${(p.chunks_done || 0).toLocaleString()} of ${p.chunks_total.toLocaleString()} passages indexed` : p.stage ? `${share} ${p.stage}` : "";
      percent = p.percent;
      if (event.status === "ready") setChip(view, "ready", "ready", 100);
      else if (event.status === "error") setChip(view, "error", `failed: ${plainError(event.error || "")}`, 0);
      else paint();
      if (event.status === "ready" || event.status === "error") break;
    }
  } finally {
    clearInterval(clock);
  }
}

function extension(name) {
  const dot = name.lastIndexOf(".");
  return dot < 0 ? "" : name.slice(dot).toLowerCase();
}

function sendFile(session, file, view) {
  return new Promise((resolve, reject) => {
    const form = new FormData();
    form.append("file", file);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `/api/sessions/${session.id}/documents`);
    xhr.setRequestHeader("Authorization", `Bearer ${TOKEN}`);
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable) setChip(view, "uploading", `uploading ${Math.round((100 * e.loaded) / e.total)} %`, (100 * e.loaded) / e.total);
    };
    xhr.onload = () => {
      let body = {};
      try { body = JSON.parse(xhr.responseText); } catch (_) { /* not JSON */ }
      if (xhr.status === 401) askForToken("rejected");
      if (xhr.status >= 400) reject(new Error(plainError((body.error && body.error.message) || `HTTP ${xhr.status}`)));
      else resolve(body);
    };
    xhr.onerror = () => reject(new Error(UNREACHABLE));
    xhr.send(form);
  });
}

async function uploadOne(file) {
  const view = docChip(file.name, "uploading");
  const ext = extension(file.name);
  if (ext && !FORMATS.includes(ext)) {
    setChip(view, "error", `failed: Lector cannot read ${ext} files`, 0);
    view.chip.title = `Lector reads ${FORMATS.join(" ")}`;
    return;
  }
  setChip(view, "uploading", "uploading 0 %", 0);
  try {
    const session = await ensureSession();
    const doc = await sendFile(session, file, view);
    view.chip.dataset.id = doc.id;
    session.documents = [...(session.documents || []), doc];
    await followIngest(view, doc.id);
  } catch (err) {
    setChip(view, "error", `failed: ${err.message}`, 0);
  }
}

function upload(files) {
  for (const file of files) track(uploadOne(file));
}

function setupDragAndDrop() {
  let depth = 0;
  const overlay = $("#drop-overlay");
  const hasFiles = (e) => e.dataTransfer && [...e.dataTransfer.types].includes("Files");
  document.addEventListener("dragenter", (e) => { if (hasFiles(e)) { depth += 1; overlay.hidden = false; } });
  document.addEventListener("dragleave", () => { depth = Math.max(0, depth - 1); if (!depth) overlay.hidden = true; });
  document.addEventListener("dragover", (e) => { if (hasFiles(e)) e.preventDefault(); });
  document.addEventListener("drop", (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    depth = 0;
    overlay.hidden = true;
    upload(e.dataTransfer.files);
  });
}

// ---------------------------------------------------------------- export

function chatAsMarkdown(session) {
  const lines = [`# ${session.title || "Chat"}`, ""];
  for (const m of session.messages) {
    if (m.role === "user") lines.push("## You", "", m.content, "");
    else if (m.role === "assistant" && m.content) lines.push("## Lector", "", m.content, "");
    else if (m.role === "tool") lines.push(`<details><summary>${m.name || "tool"} output</summary>`, "", "```", m.content, "```", "</details>", "");
  }
  return lines.join("\n");
}

async function exportChat() {
  if (!state.session) return;
  const session = await api(`/api/sessions/${state.session.id}`).catch((err) => showBanner(err.message));
  if (!session) return;
  const url = URL.createObjectURL(new Blob([chatAsMarkdown(session)], { type: "text/markdown" }));
  const name = `${(session.title || "chat").replace(/[^\w.-]+/g, "-").slice(0, 60)}.md`;
  el("a", { href: url, download: name }).click();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

// ---------------------------------------------------------------- library

function when(epochSeconds) {
  return new Date(epochSeconds * 1000).toLocaleDateString();
}

function libraryItem(name, meta, status, ...extra) {
  return el("li", {}, el("span", { class: "name" }, name), el("span", { class: "meta", "data-status": status }, meta), ...extra);
}

function sizeOf(bytes) {
  if (bytes == null) return "";
  return bytes < 1024 ? `${bytes} B · ` : bytes < 1048576 ? `${Math.round(bytes / 1024)} kB · ` : `${(bytes / 1048576).toFixed(1)} MB · `;
}

function pageLink(page) {
  const title = page.title || page.url;
  return /^https?:\/\//i.test(page.url)
    ? el("a", { href: page.url, target: "_blank", rel: "noopener noreferrer", referrerpolicy: "no-referrer" }, title) : title;
}

function button(cls, text, label, onclick) {
  return el("button", { type: "button", class: cls, title: label, "aria-label": label, onclick }, text);
}

// Let this chat read a document of another chat or a saved page (POST /api/sessions/{sid}/documents/attach).
async function useInChat(ids) {
  const session = await ensureSession().catch((err) => showBanner(err.message));
  if (!session) return;
  const sources = await api(`/api/sessions/${session.id}/documents/attach`, jsonBody("POST", ids)).catch((err) => showBanner(err.message));
  if (!sources) return;
  session.documents = sources.documents;
  session.pages = sources.pages;
  renderDocuments(session.documents);
  loadLibrary();
}

async function leaveChat(path) {
  await api(`/api/sessions/${state.session.id}/${path}`, { method: "DELETE" }).catch((err) => showBanner(err.message));
  const session = await api(`/api/sessions/${state.session.id}`).catch(() => null);
  if (session) Object.assign(state.session, { documents: session.documents, pages: session.pages });
  renderDocuments(state.session.documents);
  loadLibrary();
}

function savedPageItem(page) {
  const remove = button("icon delete", "✕", `Delete ${page.title || page.url} from the library`, () => deleteSavedPage(remove, page));
  const status = page.status === "error" ? `failed: ${plainError(page.error || "")}` : page.status;
  const attached = ((state.session && state.session.pages) || []).some((p) => p.id === page.id);
  const use = attached ? "" : button("use", "Use in this chat", `Let this chat read ${page.title || page.url}`, () => useInChat({ page_ids: [page.id] }));
  return libraryItem(pageLink(page), `${when(page.created)} · ${status}`, page.status, use, remove);
}

// This chat's documents and pages (each can leave the chat), then the other chats' documents (each can join it).
function chatSources(library) {
  const session = state.session || {};
  const docs = session.documents || [];
  const own = docs.map((d) => libraryItem(d.filename, `${sizeOf((library.find((l) => l.id === d.id) || {}).size)}${when(d.created)} · ${d.status}`, d.status,
    button("icon delete", "✕", `Remove ${d.filename} from this chat`, () => leaveChat(`documents/${d.id}`))));
  const pages = (session.pages || []).map((p) => libraryItem(pageLink(p), `saved page · ${p.status}`, p.status,
    button("icon delete", "✕", `Stop this chat reading ${p.title || p.url}`, () => leaveChat(`pages/${p.id}`))));
  const here = new Set(docs.map((d) => `${d.sha256}/${d.filename}`));
  const others = library.filter((d) => d.status === "ready" && !here.has(`${d.sha256}/${d.filename}`) && here.add(`${d.sha256}/${d.filename}`));
  const elsewhere = others.map((d) => libraryItem(d.filename, `another chat · ${sizeOf(d.size)}${when(d.created)} · ${d.status}`, d.status,
    button("use", "Use in this chat", `Let this chat read ${d.filename}`, () => useInChat({ document_ids: [d.id] }))));
  return [...own, ...pages, ...elsewhere];
}

async function loadLibrary() {
  const library = await api("/api/documents").catch(() => []);
  const items = chatSources(library);
  $("#library-docs").replaceChildren(...(items.length ? items
    : [el("li", { class: "none" }, "No documents in this chat: attach some with + or drop them on the page.")]));
  const query = $("#library-search").value.trim();
  const pages = await api(`/pages?limit=200${query ? `&q=${encodeURIComponent(query)}` : ""}`).catch((err) => err);
  if (pages instanceof Error) return $("#library-pages").replaceChildren(el("li", { class: "none" }, pages.message));
  $("#library-pages").replaceChildren(...(pages.length ? pages.map(savedPageItem)
    : [el("li", { class: "none" }, query ? "No saved page matches." : "No pages saved yet: the browser extension adds them.")]));
}

async function deleteSavedPage(button, page) {
  if (!button.classList.contains("armed")) {
    button.classList.add("armed");
    button.textContent = "Delete?";
    setTimeout(() => { button.classList.remove("armed"); button.textContent = "✕"; }, 3000);
    return;
  }
  await api(`/pages/${page.id}`, { method: "DELETE" }).catch((err) => showBanner(err.message));
  loadLibrary();
}

async function openLibrary() {
  closeSidebar();
  if (state.session) {
    const session = await api(`/api/sessions/${state.session.id}`).catch(() => state.session);
    Object.assign(state.session, { documents: session.documents, pages: session.pages });
  }
  await loadLibrary();
  $("#library").showModal();
}

// ---------------------------------------------------------------- layout and keys

function closeSidebar() {
  document.body.classList.remove("sidebar-open");
  $("#scrim").hidden = true;
}

function toggleSidebar() {
  const open = document.body.classList.toggle("sidebar-open");
  $("#scrim").hidden = !open;
}

function growInput() {
  const input = $("#input");
  input.style.height = "auto";
  input.style.height = `${Math.min(input.scrollHeight + 2, window.innerHeight * 0.4)}px`;
}

function onGlobalKey(e) {
  if (e.key === "Escape" && state.running) { e.preventDefault(); stop(); }
  else if (e.key === "Escape" && state.editing) cancelEdit();
  if ((e.ctrlKey || e.metaKey) && e.shiftKey && e.key.toLowerCase() === "o") { e.preventDefault(); newChat(); }
}

function wireEvents() {
  $("#composer").addEventListener("submit", (e) => {
    e.preventDefault();
    const text = $("#input").value.trim();
    if (!text || state.running) return;
    $("#input").value = "";
    submitQuestion(text);
  });
  $("#input").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); $("#composer").requestSubmit(); }
  });
  document.addEventListener("keydown", onGlobalKey);
  $("#stop").addEventListener("click", stop);
  $("#new-session").addEventListener("click", newChat);
  $("#chat-search").addEventListener("input", () => {
    renderSessions();
    clearTimeout(state.chatSearch);
    state.chatSearch = setTimeout(searchSessions, 200);
  });
  $("#file").addEventListener("change", (e) => { upload(e.target.files); e.target.value = ""; });
  for (const id of ["#model", "#level", "#system"]) $(id).addEventListener("change", saveSettings);
  $("#open-settings").addEventListener("click", () => $("#settings").showModal());
  $("#open-library").addEventListener("click", openLibrary);
  $("#export").addEventListener("click", exportChat);
  $("#messages").addEventListener("scroll", () => { $("#to-bottom").hidden = nearEnd($("#messages")); });
  $("#to-bottom").addEventListener("click", () => { $("#messages").scrollTop = $("#messages").scrollHeight; });
  $("#library-search").addEventListener("input", () => { clearTimeout(state.librarySearch); state.librarySearch = setTimeout(loadLibrary, 200); });
  $("#input").addEventListener("input", growInput);
  $("#banner-close").addEventListener("click", hideBanner);
  $("#cancel-edit").addEventListener("click", () => { cancelEdit(); $("#input").value = ""; });
  $("#menu").addEventListener("click", toggleSidebar);
  $("#scrim").addEventListener("click", closeSidebar);
  $("#token-form").addEventListener("submit", submitToken);
  $("#token-dialog").addEventListener("cancel", (e) => e.preventDefault());
  window.addEventListener("popstate", () => openFromUrl().catch((err) => showBanner(err.message)));
  setupDragAndDrop();
}

async function openFromUrl() {
  const id = chatIdFromUrl();
  if (!id) return newChat();
  try {
    await openSession(id);
  } catch (err) {
    if (err.status === 404) { newChat(); showBanner("That chat no longer exists."); } else throw err;
  }
}

async function start() {
  if (!TOKEN) return askForToken("");
  try {
    await Promise.all([loadSessions(), loadModels()]);
    await openFromUrl();
  } catch (err) {
    if (err.status !== 401) showBanner(err.message, start);
  }
}

wireEvents();
start();
