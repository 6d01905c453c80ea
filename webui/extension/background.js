"use strict";
// Service worker: every call to the Lector server goes through here, with the paired token.

const DEFAULTS = { server: "http://127.0.0.1:8765", token: "" };

async function settings() {
  return { ...DEFAULTS, ...(await chrome.storage.local.get(["server", "token"])) };
}

// The server's response to one call; an error with the server's own message when it refuses.
async function serverResponse(path, { method = "GET", body, signal } = {}) {
  const { server, token } = await settings();
  if (!token) throw new Error("Not paired: open the extension's options and enter the server's token.");
  let res;
  try {
    res = await fetch(server.replace(/\/$/, "") + path, {
      method,
      headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
    });
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new Error(`Lector server not reachable at ${server}: ${err.message}`);
  }
  if (!res.ok) {
    const data = await res.json().catch(() => null);
    throw new Error((data && data.error && data.error.message) || `HTTP ${res.status}`);
  }
  return res;
}

async function callServer(path, options = {}) {
  const res = await serverResponse(path, options);
  return res.status === 204 ? null : res.json();
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
      const data = buffer.slice(0, cut).split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n");
      buffer = buffer.slice(cut + 2);
      if (data) yield JSON.parse(data);
    }
  }
}

function pageSnapshot() {
  return { url: location.href, title: document.title, html: document.documentElement.outerHTML };
}

async function addTab(tab) {
  const [{ result }] = await chrome.scripting.executeScript({ target: { tabId: tab.id }, func: pageSnapshot });
  const page = await callServer("/pages", { method: "POST", body: result });
  await chrome.action.setBadgeText({ tabId: tab.id, text: "✓" });
  return page;
}

async function pair(server, token) {
  await chrome.storage.local.set({ server, token });
  const sessions = await callServer("/api/sessions");
  return { ok: true, sessions: sessions.length };
}

// The saved pages a question is about: the open page, or (undefined) the whole library.
async function scopePages(scope, tabUrl) {
  if (scope !== "page") return undefined;
  const pages = await callServer(`/pages?q=${encodeURIComponent(tabUrl)}&limit=50`);
  const pageIds = pages.filter((p) => p.url === tabUrl).map((p) => p.id).slice(0, 1);
  if (!pageIds.length) throw new Error("This page is not in your library yet: add it first.");
  return pageIds;
}

// A streamed answer: each server event goes to the side panel's port as it comes; closing the port stops it.
async function askStreaming(port, { question, scope, url }, signal) {
  const body = { question, page_ids: await scopePages(scope, url), stream: true };
  const res = await serverResponse("/pages/ask", { method: "POST", body, signal });
  for await (const event of readSSE(res)) port.postMessage({ event });
}

chrome.runtime.onConnect.addListener((port) => {
  if (port.name !== "ask") return;
  const controller = new AbortController();
  let open = true;
  port.onDisconnect.addListener(() => { open = false; controller.abort(); });
  port.onMessage.addListener((message) => {
    askStreaming(port, message, controller.signal).then(
      () => open && port.postMessage({ done: true }),
      (err) => open && port.postMessage({ error: err.message }),
    );
  });
});

// The toolbar button opens the side panel; "Add this page" is in the page's context menu and in the panel.
chrome.sidePanel.setPanelBehavior({ openPanelOnActionClick: true }).catch(() => {});

chrome.runtime.onInstalled.addListener(() => {
  chrome.contextMenus.create({ id: "lector-add", title: "Add this page to Lector", contexts: ["page"] });
});

chrome.contextMenus.onClicked.addListener((info, tab) => {
  if (info.menuItemId === "lector-add" && tab) addTab(tab).catch(() => chrome.action.setBadgeText({ tabId: tab.id, text: "!" }));
});

chrome.runtime.onMessage.addListener((message, _sender, reply) => {
  const handlers = {
    pair: () => pair(message.server, message.token),
    addActiveTab: async () => addTab((await chrome.tabs.query({ active: true, lastFocusedWindow: true }))[0]),
    listPages: () => callServer(`/pages?limit=50${message.q ? `&q=${encodeURIComponent(message.q)}` : ""}`),
    deletePage: () => callServer(`/pages/${encodeURIComponent(message.id)}`, { method: "DELETE" }),
    // Earlier answers: each question asked here is kept as a chat (the chat page lists the same ones).
    listAnswers: () => callServer(`/api/sessions${message.q ? `?q=${encodeURIComponent(message.q)}` : ""}`),
    getAnswer: () => callServer(`/api/sessions/${encodeURIComponent(message.id)}`),
    deleteAnswer: () => callServer(`/api/sessions/${encodeURIComponent(message.id)}`, { method: "DELETE" }),
    settings: () => settings(),
  };
  const handler = handlers[message.type];
  if (!handler) return false;
  handler().then((data) => reply({ ok: true, data }), (err) => reply({ ok: false, error: err.message }));
  return true;
});
