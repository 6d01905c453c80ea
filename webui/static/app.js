"use strict";
// Lector chat page: plain JS, no build. Talks to the JSON/SSE API with the access token.

const params = new URLSearchParams(location.search);
if (params.get("token")) {
  sessionStorage.setItem("lector-token", params.get("token"));
  history.replaceState(null, "", location.pathname);
}
const TOKEN = sessionStorage.getItem("lector-token") || "";
const $ = (sel) => document.querySelector(sel);
const state = { session: null, running: false, sources: {} };

function headers(extra = {}) {
  return { Authorization: `Bearer ${TOKEN}`, ...extra };
}

async function api(path, options = {}) {
  const res = await fetch(path, { ...options, headers: headers(options.headers || {}) });
  if (!res.ok) {
    let message = `${res.status} ${res.statusText}`;
    try { message = (await res.json()).error.message; } catch (_) { /* not JSON */ }
    throw new Error(message);
  }
  return res.status === 204 ? null : res.json();
}

function showError(message) {
  const banner = $("#banner");
  banner.textContent = message;
  banner.hidden = !message;
}

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

function renderMarkdown(node, text) {
  const fragment = DOMPurify.sanitize(marked.parse(text || ""), PURIFY);
  for (const img of fragment.querySelectorAll("img[data-remote-src]")) {
    const href = img.getAttribute("data-remote-src");
    const link = el("a", { href, rel: "noopener noreferrer nofollow", target: "_blank", referrerpolicy: "no-referrer" },
      `image: ${img.getAttribute("alt") || href}`);
    img.replaceWith(link);
  }
  node.replaceChildren(fragment);
}

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

function messageBox(role) {
  const body = el("div", { class: "body" });
  const box = el("div", { class: `msg ${role}` }, el("div", { class: "role" }, role === "user" ? "You" : "Lector"), body);
  $("#messages").append(box);
  box.scrollIntoView({ block: "end" });
  return { box, body };
}

function toolBlock(parent, name, args) {
  const result = el("pre", { class: "result" }, "running…");
  const details = el("details", { class: "tool" },
    el("summary", {}, `Tool: ${name}`),
    el("div", {}, el("b", {}, "arguments"), el("pre", {}, args)),
    el("div", {}, el("b", {}, "result"), result));
  parent.append(details);
  return { details, result };
}

function finishTool(block, event) {
  block.result.textContent = event.content;
  if (event.error) block.details.classList.add("error");
  for (const src of event.images || []) {
    if (src.startsWith("data:image/")) block.details.append(el("img", { src, alt: "figure from the code" }));
  }
  const took = typeof event.elapsed === "number" ? ` in ${event.elapsed}s` : "";
  block.details.querySelector("summary").textContent += event.error ? " — failed" : ` — done${took}`;
}

function renderCitations(parent, citations) {
  if (!citations || !citations.length) return;
  const bar = el("div", { class: "citations" }, "Sources: ");
  citations.forEach((c, i) => {
    const where = c.page ? `p. ${c.page}` : `chunk ${c.chunk_id}`;
    bar.append(el("button", { type: "button", class: "citation", onclick: () => openSource(c) }, `[${i + 1}] ${c.source}, ${where}`));
  });
  parent.append(bar);
}

function openSource(c) {
  $("#source-title").textContent = `${c.source}${c.page ? `, page ${c.page}` : ""} (characters ${c.start}–${c.end})`;
  $("#source-text").textContent = c.text;
  $("#source").showModal();
}

async function loadSessions() {
  const sessions = await api("/api/sessions");
  const list = $("#sessions");
  list.replaceChildren();
  for (const s of sessions) {
    const item = el("li", { "data-id": s.id, onclick: () => openSession(s.id) }, s.title || "New chat");
    if (state.session && s.id === state.session.id) item.classList.add("active");
    list.append(item);
  }
  return sessions;
}

async function openSession(id) {
  state.session = await api(`/api/sessions/${id}`);
  $("#messages").replaceChildren();
  $("#model").value = state.session.settings.model || "";
  $("#level").value = state.session.settings.level || "auto";
  let current = null;
  const tools = {};
  for (const m of state.session.messages) {
    if (m.role === "user") { messageBox("user").body.textContent = m.content; current = null; continue; }
    if (!current) current = messageBox("assistant");
    if (m.role === "assistant") {
      for (const call of m.tool_calls) tools[call.id] = toolBlock(current.body, call.name, call.arguments);
      if (m.content) current.body.append(el("div", { class: "text" }));
      if (m.content) renderMarkdown(current.body.lastChild, m.content);
      renderCitations(current.body, m.extra.citations);
    } else if (m.role === "tool" && tools[m.tool_call_id]) {
      finishTool(tools[m.tool_call_id], { content: m.content, error: m.extra.error, images: m.extra.images, elapsed: "?" });
    }
  }
  renderDocuments();
  await loadSessions();
}

function renderDocuments() {
  const box = $("#documents");
  box.replaceChildren();
  for (const d of (state.session && state.session.documents) || []) {
    box.append(el("span", { class: "doc", "data-status": d.status }, `${d.filename} — ${d.status}`));
  }
}

async function ensureSession() {
  if (!state.session) {
    const s = await api("/api/sessions", { method: "POST", headers: { "Content-Type": "application/json" }, body: "{}" });
    state.session = { ...s, messages: [], documents: [] };
    await loadSessions();
  }
  return state.session;
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

function setRunning(running) {
  state.running = running;
  $("#send").hidden = running;
  $("#stop").hidden = !running;
}

async function send(text) {
  showError("");
  const session = await ensureSession();
  messageBox("user").body.textContent = text;
  const answer = messageBox("assistant");
  let textNode = null;
  let buffer = "";
  const tools = {};
  setRunning(true);
  try {
    const settings = { model: $("#model").value || undefined, level: $("#level").value };
    const res = await fetch(`/api/sessions/${session.id}/chat`, {
      method: "POST",
      headers: headers({ "Content-Type": "application/json" }),
      body: JSON.stringify({ content: text, settings }),
    });
    if (!res.ok) throw new Error((await res.json()).error.message);
    for await (const event of readSSE(res)) {
      if (event.type === "text") {
        if (!textNode) { textNode = el("div", { class: "text" }); answer.body.append(textNode); buffer = ""; }
        buffer += event.text;
        renderMarkdown(textNode, buffer);
        answer.box.scrollIntoView({ block: "end" });
      } else if (event.type === "tool_call_started") {
        tools[event.call_id] = toolBlock(answer.body, event.name, event.arguments);
        textNode = null;
      } else if (event.type === "tool_call_finished" && tools[event.call_id]) {
        finishTool(tools[event.call_id], event);
      } else if (event.type === "level") {
        answer.body.append(el("div", { class: "level-note" }, `Level ${event.level}: ${event.reason}`));
      } else if (event.type === "sub_question") {
        tools[`sub-${event.index}`] = toolBlock(answer.body, `Sub-question ${event.index}: ${event.question}`, event.question);
      } else if (event.type === "sub_answer" && tools[`sub-${event.index}`]) {
        finishTool(tools[`sub-${event.index}`], { content: event.answer, error: !event.found, elapsed: "?" });
        renderCitations(tools[`sub-${event.index}`].details, event.citations);
      } else if (event.type === "final") {
        if (!textNode && event.message.content) {
          answer.body.append(el("div", { class: "text" }));
          renderMarkdown(answer.body.lastChild, event.message.content);
        }
        renderCitations(answer.body, event.citations);
        const u = event.usage || {};
        answer.body.append(el("div", { class: "usage" },
          `${event.stopped_reason !== "done" ? event.stopped_reason + " · " : ""}${u.prompt_tokens || 0} prompt + ${u.completion_tokens || 0} completion tokens`));
      } else if (event.type === "error") {
        showError(event.message);
      }
    }
  } catch (err) {
    showError(err.message);
  } finally {
    setRunning(false);
    loadSessions();
  }
}

function upload(file) {
  return ensureSession().then((session) => new Promise((resolve, reject) => {
    const chip = el("span", { class: "doc" }, `${file.name} `, el("progress", { max: 100, value: 0 }), el("span", { class: "status" }, " uploading"));
    $("#documents").append(chip);
    const form = new FormData();
    form.append("file", file);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `/api/sessions/${session.id}/documents`);
    xhr.setRequestHeader("Authorization", `Bearer ${TOKEN}`);
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) chip.querySelector("progress").value = (100 * e.loaded) / e.total; };
    xhr.onload = async () => {
      if (xhr.status >= 400) {
        chip.querySelector(".status").textContent = " failed: " + JSON.parse(xhr.responseText).error.message;
        return reject(new Error("upload failed"));
      }
      const doc = JSON.parse(xhr.responseText);
      chip.querySelector("progress").removeAttribute("value");
      const res = await fetch(`/api/documents/${doc.id}/events`, { headers: headers() });
      for await (const event of readSSE(res)) {
        chip.querySelector(".status").textContent = ` ${event.status}${event.error ? ": " + event.error : ""}`;
        chip.dataset.status = event.status;
      }
      chip.querySelector("progress").value = 100;
      resolve(doc);
    };
    xhr.onerror = () => reject(new Error("upload failed"));
    xhr.send(form);
  }));
}

async function loadModels() {
  const { models } = await api("/api/models");
  const select = $("#model");
  select.replaceChildren(el("option", { value: "" }, "server default"));
  for (const m of models) select.append(el("option", { value: m.id }, m.id));
}

$("#composer").addEventListener("submit", (e) => {
  e.preventDefault();
  const text = $("#input").value.trim();
  if (!text || state.running) return;
  $("#input").value = "";
  send(text);
});
$("#input").addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); $("#composer").requestSubmit(); }
});
$("#stop").addEventListener("click", () => state.session && api(`/api/sessions/${state.session.id}/stop`, { method: "POST" }));
$("#new-session").addEventListener("click", () => { state.session = null; $("#messages").replaceChildren(); renderDocuments(); loadSessions(); });
$("#file").addEventListener("change", (e) => { for (const f of e.target.files) upload(f).catch((err) => showError(err.message)); e.target.value = ""; });
for (const id of ["#model", "#level"]) {
  $(id).addEventListener("change", () => {
    if (!state.session) return;
    api(`/api/sessions/${state.session.id}`, {
      method: "PATCH", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ settings: { model: $("#model").value || null, level: $("#level").value } }),
    });
  });
}

if (!TOKEN) showError("No access token: open the address that `lector serve` printed (it ends in ?token=…).");
else Promise.all([loadSessions(), loadModels()]).catch((err) => showError(err.message));
