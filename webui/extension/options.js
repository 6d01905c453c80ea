"use strict";
const $ = (id) => document.getElementById(id);
chrome.runtime.sendMessage({ type: "settings" }, (r) => {
  if (r && r.ok) { $("server").value = r.data.server; $("token").value = r.data.token; }
});
$("pair").addEventListener("click", () => {
  $("status").textContent = "Pairing…";
  chrome.runtime.sendMessage({ type: "pair", server: $("server").value.trim(), token: $("token").value.trim() }, (r) => {
    $("status").textContent = r.ok ? "Paired with the Lector server." : `Failed: ${r.error}`;
    $("status").dataset.ok = String(r.ok);
  });
});
