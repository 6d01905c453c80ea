"use strict";
const $ = (id) => document.getElementById(id);

function send(message) {
  return new Promise((resolve, reject) => chrome.runtime.sendMessage(message, (r) => (r && r.ok ? resolve(r.data) : reject(new Error(r ? r.error : "no reply")))));
}

async function activeUrl() {
  const [tab] = await chrome.tabs.query({ active: true, lastFocusedWindow: true });
  return tab ? tab.url : "";
}

$("add").addEventListener("click", async () => {
  $("status").textContent = "Adding…";
  try {
    const page = await send({ type: "addActiveTab" });
    $("status").textContent = `Added: ${page.title || page.url}`;
  } catch (err) { $("status").textContent = err.message; }
});

$("ask").addEventListener("click", async () => {
  const question = $("question").value.trim();
  if (!question) return;
  const scope = document.querySelector("input[name=scope]:checked").value;
  $("status").textContent = "Thinking…";
  $("answer").textContent = "";
  $("citations").replaceChildren();
  try {
    const answer = await send({ type: "ask", question, scope, url: await activeUrl() });
    $("status").textContent = `Level ${answer.level} · ${answer.usage.llm_calls} model calls`;
    $("answer").textContent = answer.answer;
    for (const c of answer.citations) {
      const div = document.createElement("div");
      div.className = "cite";
      div.textContent = `${c.source}: “${c.text.slice(0, 300)}”`;
      $("citations").append(div);
    }
  } catch (err) { $("status").textContent = err.message; }
});
