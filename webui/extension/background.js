"use strict";
// Service worker: every call to the Lector server goes through here, with the paired token.

const DEFAULTS = { server: "http://127.0.0.1:8765", token: "" };

async function settings() {
  return { ...DEFAULTS, ...(await chrome.storage.local.get(["server", "token"])) };
}

async function callServer(path, { method = "GET", body } = {}) {
  const { server, token } = await settings();
  if (!token) throw new Error("Not paired: open the extension's options and enter the server's token.");
  let res;
  try {
    res = await fetch(server.replace(/\/$/, "") + path, {
      method,
      headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    throw new Error(`Lector server not reachable at ${server}: ${err.message}`);
  }
  const data = res.status === 204 ? null : await res.json();
  if (!res.ok) throw new Error((data && data.error && data.error.message) || `HTTP ${res.status}`);
  return data;
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

async function ask(question, scope, tabUrl) {
  let pageIds;
  if (scope === "page") {
    const pages = await callServer(`/pages?q=${encodeURIComponent(tabUrl)}&limit=50`);
    pageIds = pages.filter((p) => p.url === tabUrl).map((p) => p.id).slice(0, 1);
    if (!pageIds.length) throw new Error("This page is not in your library yet: add it first.");
  }
  return callServer("/pages/ask", { method: "POST", body: { question, page_ids: pageIds } });
}

chrome.runtime.onInstalled.addListener(() => {
  chrome.contextMenus.create({ id: "lector-add", title: "Add this page to Lector", contexts: ["page"] });
  chrome.sidePanel.setPanelBehavior({ openPanelOnActionClick: false }).catch(() => {});
});

chrome.action.onClicked.addListener((tab) => {
  addTab(tab).catch(() => chrome.action.setBadgeText({ tabId: tab.id, text: "!" }));
});

chrome.contextMenus.onClicked.addListener((info, tab) => {
  if (info.menuItemId === "lector-add" && tab) addTab(tab).catch(() => chrome.action.setBadgeText({ tabId: tab.id, text: "!" }));
});

chrome.runtime.onMessage.addListener((message, _sender, reply) => {
  const handlers = {
    pair: () => pair(message.server, message.token),
    addActiveTab: async () => addTab((await chrome.tabs.query({ active: true, lastFocusedWindow: true }))[0]),
    ask: () => ask(message.question, message.scope, message.url),
    listPages: () => callServer(`/pages?limit=50${message.q ? `&q=${encodeURIComponent(message.q)}` : ""}`),
    deletePage: () => callServer(`/pages/${encodeURIComponent(message.id)}`, { method: "DELETE" }),
    settings: () => settings(),
  };
  const handler = handlers[message.type];
  if (!handler) return false;
  handler().then((data) => reply({ ok: true, data }), (err) => reply({ ok: false, error: err.message }));
  return true;
});
